//! Events: one line each in lists, timelines and traces; in full in `get_event_details`.

use std::fmt::Write;

use rmcp::schemars;
use serde::Deserialize;
use serde_json::Value;

use super::{count, duration, page_note, plural, usd};

/// An event as the backend answers it. The metrics (`tokens_in` ... `error`) are the ones the
/// backend read from the event when it was stored, the same that its totals add up.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct Event {
    pub event_id: String,
    pub event_type: String,
    pub timestamp: String,
    /// What the SDK recorded: model, prompt, completion, tool input and output, ...
    pub data: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_event_id: Option<String>,
    /// The LLM model the event names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_in: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_out: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_tokens: Option<f64>,
    /// In US dollars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    /// gati 0.0.3's name for `duration_ms` in traces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<bool>,
}

impl Event {
    /// The model of an LLM call, the tool of a tool call, the node of a graph step.
    pub fn subject(&self) -> Option<&str> {
        if let Some(model) = &self.model {
            return Some(model);
        }
        let keys: &[&str] = match self.event_type.as_str() {
            "llm_call" => &["model", "model_name"],
            "tool_call" => &["tool_name", "tool", "name"],
            _ => &["node_name", "agent_name", "name"],
        };
        keys.iter().find_map(|k| self.data.get(*k)?.as_str())
    }

    /// `2026-01-31T12:00:01Z llm_call gpt-4o: 100 in / 50 out tokens, $0.00075, 850 ms`
    pub fn line(&self) -> String {
        let mut line = format!("{} {}", self.timestamp, self.event_type);
        if let Some(subject) = self.subject() {
            let _ = write!(line, " {subject}");
        }
        let facts = self.facts();
        if !facts.is_empty() {
            let _ = write!(line, ": {}", facts.join(", "));
        }
        line
    }

    /// Tokens, cost, duration and failure, those the event has.
    fn facts(&self) -> Vec<String> {
        let mut facts = Vec::new();
        match (self.tokens_in, self.tokens_out, self.total_tokens) {
            (None, None, None) => {}
            (None, None, Some(total)) => facts.push(format!("{} tokens", count(total))),
            (tokens_in, tokens_out, _) => facts.push(format!(
                "{} in / {} out tokens",
                count(tokens_in.unwrap_or(0.0)),
                count(tokens_out.unwrap_or(0.0))
            )),
        }
        if let Some(cost) = self.cost {
            facts.push(usd(cost));
        }
        if let Some(ms) = self.duration_ms.or(self.latency_ms) {
            facts.push(duration(ms));
        }
        if self.error == Some(true) || !self.data.get("error").is_none_or(Value::is_null) {
            facts.push(match error_text(&self.data) {
                Some(error) => format!("failed: {error}"),
                None => "failed".into(),
            });
        }
        facts
    }

    /// The event with everything it recorded: prompts and completion of an LLM call, input and
    /// output of a tool call, the data of any other event.
    pub fn details(&self) -> String {
        let mut text = format!("## {}", self.event_type);
        if let Some(subject) = self.subject() {
            let _ = write!(text, " {subject}");
        }
        let _ = write!(text, "\nevent_id {}, at {}", self.event_id, self.timestamp);
        if let Some(parent) = &self.parent_event_id {
            let _ = write!(text, ", inside {parent}");
        }
        let facts = self.facts();
        if !facts.is_empty() {
            let _ = write!(text, "\n{}", facts.join(", "));
        }
        text.push('\n');
        let shown: &[(&str, &[&str])] = match self.event_type.as_str() {
            "llm_call" => &[
                ("System prompt", &["system_prompt", "system"]),
                ("Prompt", &["prompt", "prompts", "messages", "input"]),
                ("Completion", &["completion", "response", "output"]),
            ],
            "tool_call" => &[
                ("Input", &["input", "tool_input", "args", "arguments"]),
                ("Output", &["output", "tool_output", "result"]),
            ],
            _ => &[],
        };
        if shown.is_empty() {
            let _ = write!(text, "Data:\n{}\n", block(&self.data));
        }
        for (title, keys) in shown {
            let value = keys.iter().find_map(|k| self.data.get(*k)).unwrap_or(&Value::Null);
            let _ = write!(text, "{title}:\n{}\n", block(value));
        }
        if let Some(error) = error_text(&self.data) {
            let _ = writeln!(text, "Error: {error}");
        }
        text
    }
}

/// A value as the assistant should see it: text as is, anything else as indented JSON, and
/// nothing recorded said so (never `undefined`).
fn block(value: &Value) -> String {
    match value {
        Value::Null => "(none recorded)".into(),
        Value::String(s) if s.is_empty() => "(empty)".into(),
        Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}

/// What an event's `error` says: its message, or its text, or its JSON.
fn error_text(data: &Value) -> Option<String> {
    match data.get("error")? {
        Value::Null | Value::Bool(false) => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        error => Some(match (error["type"].as_str(), error["message"].as_str()) {
            (Some(kind), Some(message)) => format!("{kind}: {message}"),
            (None, Some(message)) => message.to_string(),
            _ => error.to_string(),
        }),
    }
}

/// `GET /api/events/{id}` with `children`: `GET /api/events/{id}/children`.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct EventWithChildren {
    #[serde(flatten)]
    pub event: Event,
    /// The events that happened inside it, in time order.
    pub children: Vec<Event>,
}

impl EventWithChildren {
    pub fn summary(&self) -> String {
        let mut text = self.event.details();
        if let (Some(run), Some(agent)) = (&self.event.run_name, &self.event.agent_name) {
            let _ = writeln!(text, "In run \"{run}\" of {agent}.");
        }
        if !self.children.is_empty() {
            let _ = writeln!(text, "Inside it, in time order:");
            for child in &self.children {
                let _ = writeln!(text, "- {} (event_id {})", child.line(), child.event_id);
            }
        }
        text
    }
}

/// `GET /api/events`: a page of events, newest first.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct EventList {
    pub events: Vec<Event>,
    /// How many events match in all.
    pub total: u64,
    pub offset: u64,
}

impl EventList {
    pub fn summary(&self, what: &str) -> String {
        if self.total == 0 {
            return format!("No events{what}.");
        }
        let mut text = format!(
            "{}{what}, newest first{}:\n",
            plural(self.total as f64, "event"),
            page_note(self.events.len(), self.total, self.offset)
        );
        for e in &self.events {
            let run = e.run_name.as_deref().or(e.run_id.as_deref()).unwrap_or("?");
            let agent = e.agent_name.as_deref().unwrap_or("?");
            let _ = writeln!(text, "- {} (event_id {}, run \"{run}\" of {agent})", e.line(), e.event_id);
        }
        text
    }

    /// Every event in full, for `get_event_details`.
    pub fn details(&self, what: &str) -> String {
        if self.total == 0 {
            return format!("No events{what}.");
        }
        let mut text = format!(
            "{}{what}, newest first{}.\n\n",
            plural(self.total as f64, "event"),
            page_note(self.events.len(), self.total, self.offset)
        );
        for e in &self.events {
            let _ = writeln!(text, "{}", e.details());
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(value: Value) -> Event {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_tool_call_shows_its_input_and_output() {
        let tool = event(json!({"event_id": "e3", "event_type": "tool_call", "timestamp": "2026-01-31T12:00:02Z",
            "duration_ms": 120.0, "data": {"tool_name": "lookup_order", "input": {"order": 42},
            "output": {"status": "shipped"}, "latency_ms": 120.0}}));
        let details = tool.details();
        assert!(details.contains("## tool_call lookup_order"), "{details}");
        assert!(details.contains("Input:\n{\n  \"order\": 42\n}"), "{details}");
        assert!(details.contains("Output:\n{\n  \"status\": \"shipped\"\n}"), "{details}");
        assert!(!details.contains("undefined") && !details.contains("null"), "{details}");
        assert_eq!(tool.line(), "2026-01-31T12:00:02Z tool_call lookup_order: 120 ms");
    }

    #[test]
    fn a_failed_tool_says_why_and_that_it_has_no_output() {
        let failed = event(json!({"event_id": "e4", "event_type": "tool_call", "timestamp": "t", "error": true,
            "data": {"tool_name": "flaky_tool", "input": {"query": "x"}, "output": null,
                     "error": {"type": "RuntimeError", "message": "tool exploded"}}}));
        assert_eq!(failed.line(), "t tool_call flaky_tool: failed: RuntimeError: tool exploded");
        let details = failed.details();
        assert!(details.contains("Output:\n(none recorded)"), "{details}");
        assert!(details.contains("Error: RuntimeError: tool exploded"), "{details}");
    }

    #[test]
    fn an_llm_call_shows_prompts_completion_tokens_and_cost() {
        let llm = event(json!({"event_id": "e2", "event_type": "llm_call", "timestamp": "t",
            "tokens_in": 100, "tokens_out": 50, "total_tokens": 150, "cost": 0.00075, "duration_ms": 850.0,
            "data": {"model": "gpt-4o-mini", "system_prompt": "You are helpful.", "prompt": "Find order 42",
                     "completion": "Calling lookup_order"}}));
        assert_eq!(llm.line(), "t llm_call gpt-4o-mini: 100 in / 50 out tokens, $0.00075, 850 ms");
        let details = llm.details();
        for part in ["System prompt:\nYou are helpful.", "Prompt:\nFind order 42", "Completion:\nCalling lookup_order"]
        {
            assert!(details.contains(part), "{part:?} not in {details}");
        }
    }
}
