//! Latency percentiles (p50, p95, p99) per agent, model or tool over a range and by UTC day,
//! read from the histograms the store keeps at ingest (`store::latency`).

use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::Response,
};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    blocking, given,
    params::{DayRange, DaysQuery, RangeQuery},
    refused, respond, App, Refused,
};
use crate::{
    model::ErrorBody,
    store::{By, Histogram, Latencies, RELATIVE_ERROR},
};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LatencyQuery {
    /// `agent` (its LLM and tool calls), `model` (LLM calls) or `tool` (tool calls); default
    /// `agent`.
    by: Option<String>,
    /// Only this agent's calls.
    agent: Option<String>,
}

/// Percentiles of a set of calls, in milliseconds; `null` without calls.
#[derive(Debug, Serialize, ToSchema)]
pub struct Percentiles {
    pub calls: u64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

impl From<&Histogram> for Percentiles {
    fn from(h: &Histogram) -> Percentiles {
        Percentiles {
            calls: h.calls(),
            p50_ms: h.percentile(500),
            p95_ms: h.percentile(950),
            p99_ms: h.percentile(990),
        }
    }
}

/// One UTC day's percentiles.
#[derive(Debug, Serialize, ToSchema)]
pub struct LatencyDay {
    pub date: String,
    #[serde(flatten)]
    pub percentiles: Percentiles,
}

/// An agent's, model's or tool's percentiles over the range, and by day.
#[derive(Debug, Serialize, ToSchema)]
pub struct LatencySeries {
    pub name: String,
    #[serde(flatten)]
    pub percentiles: Percentiles,
    pub days: Vec<LatencyDay>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LatencyReport {
    pub by: String,
    pub since: Option<String>,
    pub until: Option<String>,
    /// Each percentile is within this fraction of the exact one (nearest rank).
    pub relative_error: f64,
    /// Every call counted, whatever it called.
    pub total: LatencySeries,
    /// Most calls first; at most [`MAX_ITEMS`].
    pub items: Vec<LatencySeries>,
    /// How many agents, models or tools had calls in the range, `items` or not.
    pub item_count: usize,
}

/// The most series `items` holds (those with most calls): each has a day per date of the
/// range, so many names over years would otherwise answer gigabytes.
pub const MAX_ITEMS: usize = 100;

fn by(text: Option<String>) -> Result<By, Refused> {
    match text.as_deref() {
        None | Some("agent") => Ok(By::Agent),
        Some("model") => Ok(By::Model),
        Some("tool") => Ok(By::Tool),
        Some(other) => {
            Err(refused(StatusCode::BAD_REQUEST, format!("`by` must be agent, model or tool, got {other:?}")))
        }
    }
}

/// The UTC dates from `first` to `last`, inclusive (as `DayRange` gives them: at most ten years).
fn dates(first: &str, last: &str) -> Vec<String> {
    let parse = |d: &str| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok();
    let (Some(first), Some(last)) = (parse(first), parse(last)) else { return Vec::new() };
    first.iter_days().take_while(|d| *d <= last).map(|d| d.format("%Y-%m-%d").to_string()).collect()
}

/// `days` (a histogram per date) as one entry per date, zero-call days included, and their
/// histogram over the whole range.
fn series(name: &str, days: &Latencies, dates: &[String]) -> LatencySeries {
    let mut whole = Histogram::default();
    let days = dates
        .iter()
        .map(|date| {
            let day = days.days.get(date).cloned().unwrap_or_default();
            whole.merge(&day);
            LatencyDay { date: date.clone(), percentiles: (&day).into() }
        })
        .collect();
    LatencySeries { name: name.into(), percentiles: (&whole).into(), days }
}

/// p50, p95 and p99 latency of LLM and tool calls, per agent, model or tool, over the range
/// and per UTC day (days without calls are present, their percentiles `null`).
#[utoipa::path(get, path = "/api/metrics/latency", tag = "metrics", params(LatencyQuery, DaysQuery, RangeQuery),
    responses(
        (status = 200, body = LatencyReport),
        (status = 400, body = ErrorBody),
        (status = 422, description = "`days` outside 1-365", body = ErrorBody),
    ))]
pub async fn latency(State(app): State<App>, Query(q): Query<LatencyQuery>, days: DayRange) -> Response {
    let by = match by(given(&q.by)) {
        Ok(by) => by,
        Err(response) => return *response,
    };
    let agent = given(&q.agent);
    let store = app.store;
    let range = days.range.clone();
    let found = blocking(move || store.latency(&range, agent.as_deref(), by)).await;
    respond(found.map(|names| {
        let mut all = Latencies::default();
        for latencies in &names {
            for (date, h) in &latencies.days {
                all.days.entry(date.clone()).or_default().merge(h);
            }
        }
        let dates = dates(&days.first, &days.last);
        // Ranked before any series is built, so that only the kept ones take a day per date.
        let mut ranked: Vec<(u64, &Latencies)> =
            names.iter().map(|l| (l.days.values().fold(0, |sum: u64, h| sum.saturating_add(h.calls())), l)).collect();
        ranked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.name.cmp(&b.1.name)));
        let items = ranked.iter().take(MAX_ITEMS).map(|(_, l)| series(&l.name, l, &dates)).collect();
        LatencyReport {
            by: by.as_str().into(),
            since: days.range.since.clone(),
            until: days.range.until.clone(),
            relative_error: RELATIVE_ERROR,
            total: series("all", &all, &dates),
            items,
            item_count: names.len(),
        }
    }))
}
