//! What the tools answer. Each answer is the backend's JSON, unchanged, as the tool's structured
//! content, after a short summary in words that an assistant reads first. The summary is
//! written from a typed view of that JSON, and the view is also the tool's output schema: a
//! backend answer missing a field the summary needs is a readable tool error, never a wrong
//! sentence. Fields the backend adds pass through (no view forbids extra fields).
//!
//! Nothing here adds up: every total, average and per-day figure is the backend's.

pub mod agents;
pub mod events;
pub mod latency;
pub mod metrics;
pub mod runs;
pub mod sessions;

use std::fmt::Write;

use rmcp::{
    model::{CallToolResult, ContentBlock, JsonObject},
    schemars,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::backend::Failure;

/// A summary in words, then the data.
pub struct Answer {
    pub summary: String,
    pub data: Value,
}

impl From<Answer> for CallToolResult {
    /// The summary, then the data as structured content and, for clients that read only
    /// text, as JSON text too (as the MCP specification asks).
    fn from(answer: Answer) -> CallToolResult {
        let mut result = CallToolResult::structured(answer.data);
        result.content.insert(0, ContentBlock::text(answer.summary));
        result
    }
}

/// The backend's answer seen through a tool's view of it.
pub fn view<T: DeserializeOwned>(data: &Value, what: &str) -> Result<T, Failure> {
    T::deserialize(data).map_err(|e| format!("the gati backend's answer about {what} is not what this tool reads: {e}"))
}

/// The output schema of a tool answering `T`.
pub fn schema<T: schemars::JsonSchema + 'static>() -> std::sync::Arc<JsonObject> {
    rmcp::handler::server::tool::schema_for_output::<T>()
}

/// A JSON array the backend answered, as an object: structured content is always an object.
pub fn wrap(key: &str, data: Value) -> Value {
    let mut object = serde_json::Map::new();
    object.insert(key.to_string(), data);
    Value::Object(object)
}

/// US dollars with the digits small LLM costs need: `$0.00075`, `$1.50`, `$0.00`.
pub fn usd(cost: f64) -> String {
    let digits = format!("{cost:.6}");
    let trimmed = digits.trim_end_matches('0');
    let decimals = trimmed.split('.').nth(1).map_or(0, str::len);
    if decimals < 2 {
        format!("${cost:.2}")
    } else {
        format!("${trimmed}")
    }
}

/// A count of tokens or events: `1900`, `1.5` only when the backend says so.
pub fn count(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n:.1}")
    }
}

/// A duration given in milliseconds, in the unit that reads best.
pub fn duration(ms: f64) -> String {
    match ms {
        ms if ms < 1000.0 => format!("{} ms", ms.round() as i64),
        ms if ms < 60_000.0 => format!("{:.1} s", ms / 1000.0),
        ms if ms < 3_600_000.0 => format!("{:.1} min", ms / 60_000.0),
        ms => format!("{:.1} h", ms / 3_600_000.0),
    }
}

/// `n thing` or `n things`.
pub fn plural(n: impl Into<f64>, thing: &str) -> String {
    let n = n.into();
    if n == 1.0 {
        format!("1 {thing}")
    } else {
        format!("{} {thing}s", count(n))
    }
}

/// "showing 1-50 of 120" when a list is one page of more.
pub fn page_note(shown: usize, total: u64, offset: u64) -> String {
    let mut note = String::new();
    if shown as u64 != total {
        if shown == 0 {
            let _ = write!(note, " (none from offset {offset})");
        } else {
            let _ = write!(note, " (showing {}-{}; page on with `offset`)", offset + 1, offset + shown as u64);
        }
    }
    note
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_keeps_small_costs_readable() {
        assert_eq!(usd(0.00075), "$0.00075");
        assert_eq!(usd(0.0015), "$0.0015");
        assert_eq!(usd(1.5), "$1.50");
        assert_eq!(usd(0.0), "$0.00");
        assert_eq!(usd(12.0), "$12.00");
        assert_eq!(usd(0.0000001), "$0.00");
    }

    #[test]
    fn durations_and_counts_read_well() {
        assert_eq!(duration(850.0), "850 ms");
        assert_eq!(duration(3000.0), "3.0 s");
        assert_eq!(duration(90_000.0), "1.5 min");
        assert_eq!(duration(5_400_000.0), "1.5 h");
        assert_eq!(count(1900.0), "1900");
        assert_eq!(count(2.5), "2.5");
        assert_eq!(plural(1, "run"), "1 run");
        assert_eq!(plural(3, "run"), "3 runs");
    }

    #[test]
    fn a_page_says_where_it_is() {
        assert_eq!(page_note(2, 2, 0), "");
        assert_eq!(page_note(50, 120, 50), " (showing 51-100; page on with `offset`)");
        assert_eq!(page_note(0, 3, 10), " (none from offset 10)");
    }

    #[test]
    fn the_summary_comes_first_then_the_data() {
        let data = serde_json::json!({"total": 1});
        let result = CallToolResult::from(Answer { summary: "one".into(), data: data.clone() });
        assert_eq!(result.structured_content, Some(data.clone()));
        assert_eq!(result.content[0].as_text().unwrap().text, "one");
        assert_eq!(serde_json::from_str::<Value>(&result.content[1].as_text().unwrap().text).unwrap(), data);
        assert_eq!(result.is_error, Some(false));
    }
}
