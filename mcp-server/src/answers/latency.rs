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
    /// Most calls first.
    pub items: Vec<Series>,
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
