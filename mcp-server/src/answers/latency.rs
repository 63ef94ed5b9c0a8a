//! `GET /api/metrics/latency`: p50, p95 and p99 latency per agent, model or tool, and by day.

use std::fmt::Write;

use rmcp::schemars;
use serde::Deserialize;

use super::duration;

/// The backend's answer, unchanged: percentiles over the range and per UTC day.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct Latency {
    /// `agent`, `model` or `tool`: what `items` are.
    pub by: String,
    /// Each percentile is within this fraction of the exact one.
    pub relative_error: f64,
    /// Every call counted, whatever it called.
    pub total: Series,
    /// Most calls first; the backend answers at most 100.
    pub items: Vec<Series>,
    /// How many agents, models or tools had calls, listed in `items` or not.
    #[serde(default)]
    pub item_count: usize,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct Series {
    pub name: String,
    #[serde(flatten)]
    pub percentiles: Percentiles,
    /// One per UTC day of the range, days without calls included.
    pub days: Vec<Day>,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct Day {
    /// The UTC day, `2026-01-31`.
    pub date: String,
    #[serde(flatten)]
    pub percentiles: Percentiles,
}

/// In milliseconds; `null` without calls.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct Percentiles {
    pub calls: u64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

impl Percentiles {
    fn cells(&self) -> String {
        let ms = |p: Option<f64>| p.map_or("-".into(), duration);
        format!("{} | {} | {} | {}", self.calls, ms(self.p50_ms), ms(self.p95_ms), ms(self.p99_ms))
    }
}

impl Latency {
    pub fn summary(&self, of: &str) -> String {
        let (Some(first), Some(last)) = (self.total.days.first(), self.total.days.last()) else {
            return "No days in this range.".into();
        };
        if self.total.percentiles.calls == 0 {
            return format!("No timed calls{of} from {} to {}.", first.date, last.date);
        }
        let mut text = format!(
            "Latency by {}{of} from {} to {} (percentiles within {}%):\n\n| {} | Calls | p50 | p95 | p99 |\n|---|---|---|---|---|\n",
            self.by,
            first.date,
            last.date,
            self.relative_error * 100.0,
            self.by
        );
        for s in std::iter::once(&self.total).chain(&self.items) {
            let _ = writeln!(text, "| {} | {} |", s.name, s.percentiles.cells());
        }
        if self.item_count > self.items.len() {
            let _ = writeln!(
                text,
                "\n(The {} with most calls of {}; `all` counts every one.)",
                self.items.len(),
                self.item_count
            );
        }
        let busy: Vec<String> = self
            .total
            .days
            .iter()
            .filter(|d| d.percentiles.calls > 0)
            .map(|d| format!("{} p95 {}", d.date, d.percentiles.p95_ms.map_or("-".into(), duration)))
            .collect();
        let _ = writeln!(text, "\nDays with calls: {}.", busy.join("; "));
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_says_when_items_are_the_busiest_only() {
        let series = |name: &str| {
            serde_json::json!({"name": name, "calls": 1, "p50_ms": 1.0, "p95_ms": 1.0,
            "p99_ms": 1.0, "days": [{"date": "2026-01-31", "calls": 1, "p50_ms": 1.0, "p95_ms": 1.0, "p99_ms": 1.0}]})
        };
        let answer = |count: usize| {
            let latency: Latency = serde_json::from_value(serde_json::json!({"by": "tool", "relative_error": 0.02,
                "total": series("all"), "items": [series("search")], "item_count": count}))
            .unwrap();
            latency.summary("")
        };
        assert!(answer(250).contains("(The 1 with most calls of 250;"), "{}", answer(250));
        assert!(!answer(1).contains("most calls of"), "{}", answer(1));
    }
}
