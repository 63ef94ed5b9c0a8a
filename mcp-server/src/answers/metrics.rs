//! Totals across gati: the summary, gati 0.0.3's global metrics, days, models.

use std::fmt::Write;

use rmcp::schemars;
use serde::Deserialize;

use super::{agents::AgentTotals, count, duration, plural, usd};

/// `GET /api/summary`, with every agent's totals (`GET /api/agents`) under `by_agent`.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct Summary {
    pub agents: u64,
    pub runs: u64,
    pub events: u64,
    pub tokens_in: f64,
    pub tokens_out: f64,
    pub total_tokens: f64,
    /// In US dollars.
    pub total_cost: f64,
    pub total_duration_ms: f64,
    pub error_count: u64,
    pub by_agent: Vec<AgentTotals>,
}

impl Summary {
    pub fn summary(&self) -> String {
        let mut text = format!(
            "gati holds {}, {}, {}: {} tokens ({} in, {} out), {}, {}, {}.\n",
            plural(self.agents as f64, "agent"),
            plural(self.runs as f64, "run"),
            plural(self.events as f64, "event"),
            count(self.total_tokens),
            count(self.tokens_in),
            count(self.tokens_out),
            usd(self.total_cost),
            duration(self.total_duration_ms),
            plural(self.error_count as f64, "error"),
        );
        for agent in &self.by_agent {
            let _ = writeln!(text, "- {}", agent.line());
        }
        text
    }
}

/// `GET /api/metrics/summary`: gati 0.0.3's global metrics.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct GlobalMetrics {
    pub total_agents: u64,
    pub total_runs: u64,
    pub total_events: u64,
    /// In US dollars.
    pub total_cost: f64,
    pub avg_cost_per_run: f64,
    pub total_tokens_in: f64,
    pub total_tokens_out: f64,
    pub avg_tokens_in_per_run: f64,
    pub avg_tokens_out_per_run: f64,
    pub total_duration_hours: f64,
    /// At most five, costliest first.
    pub top_agents_by_cost: Vec<AgentCost>,
    /// At most five, most runs first.
    pub top_agents_by_runs: Vec<AgentRuns>,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct AgentCost {
    pub agent_name: String,
    pub cost: f64,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct AgentRuns {
    pub agent_name: String,
    pub runs: u64,
}

impl GlobalMetrics {
    pub fn summary(&self) -> String {
        let mut text = format!(
            "Global metrics: {}, {}, {}, {} of runs in all.\n\
             - Cost: {} in all, {} per run on average.\n\
             - Tokens: {} in and {} out in all; {} in and {} out per run on average.\n",
            plural(self.total_agents as f64, "agent"),
            plural(self.total_runs as f64, "run"),
            plural(self.total_events as f64, "event"),
            duration(self.total_duration_hours * 3_600_000.0),
            usd(self.total_cost),
            usd(self.avg_cost_per_run),
            count(self.total_tokens_in),
            count(self.total_tokens_out),
            count(self.avg_tokens_in_per_run),
            count(self.avg_tokens_out_per_run),
        );
        if !self.top_agents_by_cost.is_empty() {
            let top: Vec<String> =
                self.top_agents_by_cost.iter().map(|a| format!("{} ({})", a.agent_name, usd(a.cost))).collect();
            let _ = writeln!(text, "- Costliest agents: {}.", top.join(", "));
        }
        if !self.top_agents_by_runs.is_empty() {
            let top: Vec<String> = self
                .top_agents_by_runs
                .iter()
                .map(|a| format!("{} ({})", a.agent_name, plural(a.runs as f64, "run")))
                .collect();
            let _ = writeln!(text, "- Busiest agents: {}.", top.join(", "));
        }
        text
    }
}

/// `GET /api/metrics/cost-timeline`, as `{"days": [...]}`: cost per day (UTC, by the events'
/// own times), days without cost included as zero.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct CostTimeline {
    pub days: Vec<CostDay>,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct CostDay {
    /// The UTC day, `2026-01-31`.
    pub date: String,
    pub cost: f64,
    /// Since the first day shown.
    pub cumulative_cost: f64,
}

impl CostTimeline {
    pub fn summary(&self) -> String {
        let (Some(first), Some(last)) = (self.days.first(), self.days.last()) else {
            return "No days in this range.".into();
        };
        let mut text = format!(
            "Cost per day from {} to {} ({}): {} in all.\n",
            first.date,
            last.date,
            plural(self.days.len() as f64, "day"),
            usd(last.cumulative_cost)
        );
        let spent: Vec<String> =
            self.days.iter().filter(|d| d.cost > 0.0).map(|d| format!("{} {}", d.date, usd(d.cost))).collect();
        match spent.as_slice() {
            [] => text.push_str("No cost on any day.\n"),
            days => {
                let _ = writeln!(text, "Days with cost: {}.", days.join("; "));
            }
        }
        text
    }
}

/// `GET /api/metrics/tokens-timeline`, as `{"days": [...]}`: tokens per day, as the cost.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct TokensTimeline {
    pub days: Vec<TokensDay>,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct TokensDay {
    /// The UTC day, `2026-01-31`.
    pub date: String,
    pub tokens_in: f64,
    pub tokens_out: f64,
    pub cumulative_tokens_in: f64,
    pub cumulative_tokens_out: f64,
}

impl TokensTimeline {
    pub fn summary(&self) -> String {
        let (Some(first), Some(last)) = (self.days.first(), self.days.last()) else {
            return "No days in this range.".into();
        };
        let mut text = format!(
            "Tokens per day from {} to {} ({}): {} in and {} out in all.\n",
            first.date,
            last.date,
            plural(self.days.len() as f64, "day"),
            count(last.cumulative_tokens_in),
            count(last.cumulative_tokens_out)
        );
        let used: Vec<String> = self
            .days
            .iter()
            .filter(|d| d.tokens_in + d.tokens_out > 0.0)
            .map(|d| format!("{} {} in / {} out", d.date, count(d.tokens_in), count(d.tokens_out)))
            .collect();
        match used.as_slice() {
            [] => text.push_str("No tokens on any day.\n"),
            days => {
                let _ = writeln!(text, "Days with tokens: {}.", days.join("; "));
            }
        }
        text
    }
}

/// `GET /api/metrics/models`, as `{"models": [...]}`: LLM calls per model, costliest first.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct ModelCosts {
    pub models: Vec<ModelCost>,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct ModelCost {
    /// `null` for calls that named no model.
    pub model: Option<String>,
    pub calls: u64,
    /// In US dollars.
    pub cost: f64,
    pub tokens_in: f64,
    pub tokens_out: f64,
    /// `null` when no call recorded its latency.
    pub avg_latency_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<u64>,
}

impl ModelCosts {
    pub fn summary(&self, of: &str) -> String {
        if self.models.is_empty() {
            return format!("No LLM calls{of}.");
        }
        let mut text = format!("Cost by model{of}, costliest first:\n\n");
        text.push_str("| Model | Calls | Cost | Tokens in | Tokens out | Avg latency | Errors |\n");
        text.push_str("|---|---|---|---|---|---|---|\n");
        for m in &self.models {
            let _ = writeln!(
                text,
                "| {} | {} | {} | {} | {} | {} | {} |",
                m.model.as_deref().unwrap_or("(no model named)"),
                m.calls,
                usd(m.cost),
                count(m.tokens_in),
                count(m.tokens_out),
                m.avg_latency_ms.map_or("-".into(), duration),
                m.errors.map_or("?".into(), |e| e.to_string())
            );
        }
        text
    }
}
