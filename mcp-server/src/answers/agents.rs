//! Agents: the list, one agent's statistics, agents side by side.

use std::fmt::Write;

use rmcp::schemars;
use serde::Deserialize;

use super::{count, duration, page_note, plural, usd};

/// `GET /api/agents` (a bare array, as in gati 0.0.3) as `{"agents": [...], "total": N,
/// "offset": N}`: a page of agents with their totals, most recently active first.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct AgentList {
    pub agents: Vec<AgentTotals>,
    /// How many agents there are in all (the backend's `X-Total-Count`).
    pub total: Option<u64>,
    /// Where this page starts.
    pub offset: u64,
}

/// One agent's totals over all its runs.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct AgentTotals {
    pub name: String,
    pub run_count: u64,
    pub event_count: u64,
    /// The time of its latest event.
    pub last_activity: Option<String>,
    pub tokens_in: f64,
    pub tokens_out: f64,
    pub total_tokens: f64,
    /// In US dollars.
    pub total_cost: f64,
    pub total_duration_ms: f64,
    pub error_count: u64,
}

impl AgentList {
    pub fn summary(&self) -> String {
        let total = self.total.unwrap_or(self.offset + self.agents.len() as u64);
        if total == 0 {
            return "No agents yet: gati has recorded nothing. Agents appear once the gati SDK sends events.".into();
        }
        let page = page_note(self.agents.len(), total, self.offset);
        let mut text = format!("{}{page}, most recently active first:\n", plural(total as f64, "agent"));
        for agent in &self.agents {
            let _ = writeln!(text, "- {}", agent.line());
        }
        text
    }
}

impl AgentTotals {
    /// `support-bot: 2 runs, 8 events, 300 tokens (200 in, 100 out), $0.0015, 6.0 s, 0 errors, last active …`
    pub fn line(&self) -> String {
        let mut line = format!(
            "{}: {}, {}, {} tokens ({} in, {} out), {}, {}, {}",
            self.name,
            plural(self.run_count as f64, "run"),
            plural(self.event_count as f64, "event"),
            count(self.total_tokens),
            count(self.tokens_in),
            count(self.tokens_out),
            usd(self.total_cost),
            duration(self.total_duration_ms),
            plural(self.error_count as f64, "error"),
        );
        if let Some(last) = &self.last_activity {
            let _ = write!(line, ", last active {last}");
        }
        line
    }
}

/// `GET /api/agents/{name}/metrics`: one agent's totals and per-run averages (gati 0.0.3's
/// fields, and ours).
#[derive(Deserialize, schemars::JsonSchema)]
pub struct AgentMetrics {
    pub agent_name: String,
    pub total_runs: u64,
    pub total_events: u64,
    /// In US dollars.
    pub total_cost: f64,
    pub avg_cost_per_run: f64,
    pub total_tokens_in: f64,
    pub total_tokens_out: f64,
    pub avg_tokens_in: f64,
    pub avg_tokens_out: f64,
    pub total_duration_ms: f64,
    pub avg_duration_ms: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_count: Option<u64>,
}

impl AgentMetrics {
    pub fn summary(&self) -> String {
        let mut text = format!(
            "Agent {}: {}, {}.\n\
             - Cost: {} in all, {} per run on average.\n\
             - Tokens: {} in and {} out in all; {} in and {} out per run on average.\n\
             - Duration: {} in all, {} per run on average.\n",
            self.agent_name,
            plural(self.total_runs as f64, "run"),
            plural(self.total_events as f64, "event"),
            usd(self.total_cost),
            usd(self.avg_cost_per_run),
            count(self.total_tokens_in),
            count(self.total_tokens_out),
            count(self.avg_tokens_in),
            count(self.avg_tokens_out),
            duration(self.total_duration_ms),
            duration(self.avg_duration_ms),
        );
        if let Some(errors) = self.error_count {
            let _ = writeln!(text, "- Errors: {errors}.");
        }
        text
    }
}

/// `GET /api/metrics/agents-comparison`, as `{"agents": [...]}`: every agent, costliest first.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct AgentsComparison {
    pub agents: Vec<AgentComparison>,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct AgentComparison {
    pub agent_name: String,
    pub runs: u64,
    /// In US dollars.
    pub cost: f64,
    pub avg_cost_per_run: f64,
    pub total_tokens: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<u64>,
}

impl AgentsComparison {
    pub fn summary(&self) -> String {
        if self.agents.is_empty() {
            return "No agents to compare: gati has recorded no runs in this range.".into();
        }
        let mut text = format!("{} side by side, costliest first:\n\n", plural(self.agents.len() as f64, "agent"));
        text.push_str("| Agent | Runs | Events | Cost | Avg cost/run | Tokens | Errors |\n");
        text.push_str("|---|---|---|---|---|---|---|\n");
        let known = |n: Option<u64>| n.map_or("?".to_string(), |n| n.to_string());
        for a in &self.agents {
            let _ = writeln!(
                text,
                "| {} | {} | {} | {} | {} | {} | {} |",
                a.agent_name,
                a.runs,
                known(a.events),
                usd(a.cost),
                usd(a.avg_cost_per_run),
                count(a.total_tokens),
                known(a.errors)
            );
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_agent_reads_as_one_line() {
        let list: AgentList = serde_json::from_value(json!({"total": 3, "offset": 1, "agents": [{
            "name": "support-bot", "run_count": 2, "event_count": 8, "last_activity": "2026-01-31T12:05:03Z",
            "tokens_in": 200, "tokens_out": 100, "total_tokens": 300, "total_cost": 0.0015,
            "total_duration_ms": 6000.0, "error_count": 1, "extra": "kept"}]}))
        .unwrap();
        assert_eq!(
            list.summary(),
            "3 agents (showing 2-2; page on with `offset`), most recently active first:\n- support-bot: 2 runs, 8 \
             events, 300 tokens (200 in, 100 out), $0.0015, 6.0 s, 1 error, last active 2026-01-31T12:05:03Z\n"
        );
    }
}
