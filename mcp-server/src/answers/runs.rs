//! Runs: lists, one run, its timeline and execution trace, runs side by side.

use std::fmt::Write;

use rmcp::schemars;
use serde::Deserialize;
use serde_json::Value;

use super::{count, duration, events::Event, page_note, plural, usd, view};
use crate::backend::Failure;

/// A page of runs, newest first.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct RunList {
    pub runs: Vec<Run>,
    /// How many runs match in all.
    pub total: u64,
    pub offset: u64,
}

/// A run with its totals, and its events when the route gives them.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct Run {
    pub run_id: String,
    /// The run's name (`run 3`, or one the agent gave it); `null` when it has none.
    pub run_name: Option<String>,
    pub agent_name: String,
    pub event_count: u64,
    pub tokens_in: f64,
    pub tokens_out: f64,
    /// In US dollars.
    pub total_cost: f64,
    pub total_duration_ms: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_tokens: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Its events in time order; `parent_event_id` links an event to the one it happened in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<Event>>,
}

impl RunList {
    pub fn summary(&self, of: &str) -> String {
        if self.total == 0 {
            return format!("No runs{of}.");
        }
        let mut text = format!(
            "{}{of}, newest first{}:\n",
            plural(self.total as f64, "run"),
            page_note(self.runs.len(), self.total, self.offset)
        );
        for run in &self.runs {
            let _ = writeln!(text, "- {}", run.line());
        }
        text
    }
}

impl Run {
    /// What to call the run: its name, or its id when it has none.
    pub fn label(&self) -> &str {
        self.run_name.as_deref().unwrap_or(&self.run_id)
    }

    /// `"checkout flow" (run_id …) of support-bot: started …, 4 events, 150 tokens (100 in, 50 out), $0.00075, 3.0 s, 0 errors`
    pub fn line(&self) -> String {
        let mut line = format!("\"{}\" (run_id {}) of {}", self.label(), self.run_id, self.agent_name);
        let mut facts = Vec::new();
        if let Some(started) = &self.started_at {
            facts.push(format!("started {started}"));
        }
        if let Some(status) = &self.status {
            facts.push(status.clone());
        }
        facts.push(plural(self.event_count as f64, "event"));
        let tokens = match self.total_tokens {
            Some(total) => {
                format!("{} tokens ({} in, {} out)", count(total), count(self.tokens_in), count(self.tokens_out))
            }
            None => format!("{} tokens in, {} out", count(self.tokens_in), count(self.tokens_out)),
        };
        facts.extend([tokens, usd(self.total_cost), duration(self.total_duration_ms)]);
        if let Some(errors) = self.error_count {
            facts.push(plural(errors as f64, "error"));
        }
        let _ = write!(line, ": {}", facts.join(", "));
        line
    }

    /// The run, then its events one per line.
    pub fn summary(&self) -> String {
        let mut text = format!("Run {}.\n", self.line());
        if let Some(events) = &self.events {
            let _ = writeln!(text, "Events in time order:");
            for (i, event) in events.iter().enumerate() {
                let _ = writeln!(text, "{}. {}", i + 1, event.line());
            }
        }
        text
    }
}

/// `GET /api/runs/{agent}/{run}/timeline`: a run's events in time order.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct RunTimeline {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    pub run_name: Option<String>,
    pub agent_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_duration_ms: Option<f64>,
    pub events: Vec<Event>,
}

/// A run's name, or its id when it has none.
fn name<'a>(run_name: &'a Option<String>, run_id: &'a Option<String>) -> &'a str {
    run_name.as_deref().or(run_id.as_deref()).unwrap_or("?")
}

impl RunTimeline {
    pub fn summary(&self) -> String {
        let events = plural(self.events.len() as f64, "event");
        let mut text =
            format!("Timeline of run \"{}\" of {}: {events}", name(&self.run_name, &self.run_id), self.agent_name);
        if let Some(ms) = self.total_duration_ms {
            let _ = write!(text, " over {}", duration(ms));
        }
        if let Some(status) = &self.status {
            let _ = write!(text, ", {status}");
        }
        text.push_str(".\n");
        for (i, event) in self.events.iter().enumerate() {
            let _ = writeln!(text, "{}. {}", i + 1, event.line());
        }
        text
    }
}

/// `GET /api/runs/{agent}/{run}/trace`: the run's events as a tree, each under the one it
/// happened in.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct ExecutionTrace {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    pub run_name: Option<String>,
    pub agent_name: String,
    /// In US dollars.
    pub total_cost: f64,
    pub total_duration_ms: f64,
    pub total_tokens_in: f64,
    pub total_tokens_out: f64,
    /// Read as JSON and walked with a stack (`TraceNode` is what each node holds): the tree is as
    /// deep as the run's events nest, and nothing here recurses over it.
    #[schemars(with = "Vec<TraceNode>")]
    pub execution_tree: Vec<Value>,
    /// LangGraph's graph (nodes, edges), when the run was a graph.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph_structure: Option<Value>,
}

/// An event of the trace with the events that happened inside it: the output schema's view of
/// a node.
#[derive(schemars::JsonSchema)]
#[allow(dead_code)] // read node by node from the JSON (ExecutionTrace::summary), never as a whole
pub struct TraceNode {
    #[serde(flatten)]
    pub event: Event,
    /// This event and every event below it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtree: Option<Subtree>,
    pub children: Vec<TraceNode>,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct Subtree {
    pub events: u64,
    /// In US dollars.
    pub cost: f64,
    pub total_tokens: f64,
    pub duration_ms: f64,
}

impl ExecutionTrace {
    /// The run's totals, then each node on its line, indented by depth, with what its subtree
    /// adds up to when it has children; a node that is not what a trace node holds is an error.
    pub fn summary(&self) -> Result<String, Failure> {
        let mut text = format!(
            "Execution trace of run \"{}\" of {}: {}, {} tokens in, {} out, {}.\n",
            name(&self.run_name, &self.run_id),
            self.agent_name,
            usd(self.total_cost),
            count(self.total_tokens_in),
            count(self.total_tokens_out),
            duration(self.total_duration_ms)
        );
        if self.execution_tree.is_empty() {
            text.push_str("The run has no events.\n");
        }
        // Depth first, in order: the roots are pushed last first, and so is each node's children.
        let mut stack: Vec<(&Value, usize)> = self.execution_tree.iter().rev().map(|node| (node, 0)).collect();
        while let Some((node, depth)) = stack.pop() {
            let event: Event = view(node, "a node of the run's trace")?;
            let children = node.get("children").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
            let _ = write!(text, "{}- {}", "  ".repeat(depth), event.line());
            let below = node.get("subtree").filter(|s| !s.is_null());
            if let (Some(below), false) = (below, children.is_empty()) {
                let below: Subtree = view(below, "a node's subtree in the run's trace")?;
                let _ = write!(
                    text,
                    " [with what happened inside it: {}, {}, {} tokens, {}]",
                    plural(below.events as f64, "event"),
                    usd(below.cost),
                    count(below.total_tokens),
                    duration(below.duration_ms)
                );
            }
            text.push('\n');
            stack.extend(children.iter().rev().map(|child| (child, depth + 1)));
        }
        if let Some(graph) = &self.graph_structure {
            let nodes = graph["nodes"].as_array().map_or(0, Vec::len);
            let edges = graph["edges"].as_array().map_or(0, Vec::len);
            let (nodes, edges) = (plural(nodes as f64, "node"), plural(edges as f64, "edge"));
            let _ = writeln!(text, "Graph: {nodes}, {edges} (in `graph_structure`).");
        }
        Ok(text)
    }
}

/// Runs of one agent side by side, as `compare_runs` assembles them from the backend's runs.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct RunComparison {
    pub agent_name: String,
    /// The runs found, in the order asked, without their events.
    pub runs: Vec<Run>,
    /// The names asked for that are no run of the agent, with the backend's reason.
    pub missing: Vec<MissingRun>,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct MissingRun {
    pub run_name: String,
    pub error: String,
}

impl RunComparison {
    pub fn summary(&self) -> String {
        let mut text = format!("{} of {} side by side:\n\n", plural(self.runs.len() as f64, "run"), self.agent_name);
        text.push_str(
            "| Run | Events | Tokens in | Tokens out | Cost | Duration | Errors |\n|---|---|---|---|---|---|---|\n",
        );
        for r in &self.runs {
            let errors = r.error_count.map_or("?".to_string(), |e| e.to_string());
            let _ = writeln!(
                text,
                "| {} | {} | {} | {} | {} | {} | {errors} |",
                r.label(),
                r.event_count,
                count(r.tokens_in),
                count(r.tokens_out),
                usd(r.total_cost),
                duration(r.total_duration_ms)
            );
        }
        let by_cost = |a: &&Run, b: &&Run| a.total_cost.total_cmp(&b.total_cost);
        if let (Some(most), Some(least)) = (self.runs.iter().max_by(by_cost), self.runs.iter().min_by(by_cost)) {
            if self.runs.len() > 1 && most.total_cost > least.total_cost {
                let _ = write!(
                    text,
                    "\nMost expensive: \"{}\" ({}); cheapest: \"{}\" ({}).",
                    most.label(),
                    usd(most.total_cost),
                    least.label(),
                    usd(least.total_cost)
                );
            }
        }
        for m in &self.missing {
            let _ = write!(text, "\nNot found: \"{}\": {}", m.run_name, m.error);
        }
        text.push('\n');
        text
    }
}
