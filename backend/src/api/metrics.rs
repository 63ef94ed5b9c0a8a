//! Metrics: totals, averages and top agents, per agent, per UTC day and per model, over any
//! time range; all computed from the totals the store keeps.

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{
    blocking, error, given,
    params::{DayRange, DaysQuery, RangeQuery, TimeRange},
    respond, App,
};
use crate::{
    model::{
        AgentComparison, AgentMetrics, CostPoint, DayPoint, ErrorBody, MetricsSummary, ModelCost, Summary, TokensPoint,
        TopAgentByCost, TopAgentByRuns,
    },
    store::Totals,
};

/// Per-run averages, 0 without runs.
fn per(value: f64, runs: i64) -> f64 {
    if runs > 0 {
        value / runs as f64
    } else {
        0.0
    }
}

/// Our totals: agents, runs, events, tokens, cost, errors and run time.
#[utoipa::path(get, path = "/api/summary", tag = "metrics", params(RangeQuery),
    responses((status = 200, body = Summary), (status = 400, body = ErrorBody)))]
pub async fn summary(State(app): State<App>, TimeRange(range): TimeRange) -> Response {
    let store = app.store;
    respond(
        blocking(move || {
            let agents = store.agent_totals(&range, None)?;
            let count = if range.is_all() { store.agent_count()? } else { agents.len() as i64 };
            Ok((agents, count, range))
        })
        .await
        .map(|(agents, count, range)| {
            let mut t = Totals::default();
            let (mut runs, mut duration) = (0, 0.0);
            for a in &agents {
                add(&mut t, &a.events);
                runs += a.runs;
                duration += a.run_duration_ms;
            }
            Summary {
                agents: count,
                runs,
                events: t.events,
                tokens_in: t.tokens_in,
                tokens_out: t.tokens_out,
                total_tokens: t.total_tokens,
                total_cost: t.cost,
                error_count: t.errors,
                total_duration_ms: duration,
                version: crate::VERSION.into(),
                since: range.since,
                until: range.until,
            }
        }),
    )
}

fn add(total: &mut Totals, t: &Totals) {
    total.events += t.events;
    total.tokens_in += t.tokens_in;
    total.tokens_out += t.tokens_out;
    total.total_tokens += t.total_tokens;
    total.cost += t.cost;
    total.errors += t.errors;
}

/// 0.0.3's global metrics: totals, averages per run, and the top 5 agents by cost and by runs.
#[utoipa::path(get, path = "/api/metrics/summary", tag = "metrics", params(RangeQuery),
    responses((status = 200, body = MetricsSummary), (status = 400, body = ErrorBody)))]
pub async fn metrics_summary(State(app): State<App>, TimeRange(range): TimeRange) -> Response {
    let store = app.store;
    respond(
        blocking(move || {
            let agents = store.agent_totals(&range, None)?;
            let count = if range.is_all() { store.agent_count()? } else { agents.len() as i64 };
            Ok((agents, count, range))
        })
        .await
        .map(|(mut agents, count, range)| {
            let mut t = Totals::default();
            let (mut runs, mut duration) = (0, 0.0);
            for a in &agents {
                add(&mut t, &a.events);
                runs += a.runs;
                duration += a.run_duration_ms;
            }
            agents.sort_by(|a, b| b.events.cost.total_cmp(&a.events.cost).then_with(|| a.agent.cmp(&b.agent)));
            let top_agents_by_cost = agents
                .iter()
                .take(5)
                .map(|a| TopAgentByCost { agent_name: a.agent.clone(), cost: a.events.cost })
                .collect();
            agents.sort_by(|a, b| b.runs.cmp(&a.runs).then_with(|| a.agent.cmp(&b.agent)));
            let top_agents_by_runs =
                agents.iter().take(5).map(|a| TopAgentByRuns { agent_name: a.agent.clone(), runs: a.runs }).collect();
            MetricsSummary {
                total_agents: count,
                total_runs: runs,
                total_events: t.events,
                total_cost: t.cost,
                avg_cost_per_run: per(t.cost, runs),
                avg_tokens_in_per_run: per(t.tokens_in as f64, runs),
                avg_tokens_out_per_run: per(t.tokens_out as f64, runs),
                total_tokens_in: t.tokens_in,
                total_tokens_out: t.tokens_out,
                total_duration_hours: duration / 3_600_000.0,
                top_agents_by_cost,
                top_agents_by_runs,
                total_tokens: t.total_tokens,
                error_count: t.errors,
                total_duration_ms: duration,
                since: range.since,
                until: range.until,
            }
        }),
    )
}

/// 0.0.3's per-agent metrics: totals and averages per run.
#[utoipa::path(get, path = "/api/agents/{name}/metrics", tag = "agents",
    params(("name" = String, Path), RangeQuery),
    responses((status = 200, body = AgentMetrics), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn agent_metrics(State(app): State<App>, Path(name): Path<String>, TimeRange(range): TimeRange) -> Response {
    let store = app.store;
    let agent = name.clone();
    let result = blocking(move || {
        if store.agent(&agent)?.is_none() {
            return Ok(None);
        }
        Ok(Some((store.agent_totals(&range, Some(&agent))?.pop().unwrap_or_default(), range)))
    })
    .await;
    match result {
        Ok(Some((a, range))) => {
            let (t, runs) = (a.events, a.runs);
            Json(AgentMetrics {
                agent_name: name,
                total_runs: runs,
                total_events: t.events,
                total_cost: t.cost,
                avg_cost_per_run: per(t.cost, runs),
                avg_tokens_in: per(t.tokens_in as f64, runs),
                avg_tokens_out: per(t.tokens_out as f64, runs),
                avg_duration_ms: per(a.run_duration_ms, runs),
                total_tokens_in: t.tokens_in,
                total_tokens_out: t.tokens_out,
                total_duration_ms: a.run_duration_ms,
                total_tokens: t.total_tokens,
                error_count: t.errors,
                since: range.since,
                until: range.until,
            })
            .into_response()
        }
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no agent named {name:?}")),
        Err(response) => response,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AgentQuery {
    /// Only this agent's events.
    agent: Option<String>,
}

async fn days(app: App, q: AgentQuery, days: DayRange) -> Result<Vec<crate::store::Day>, Response> {
    let agent = given(&q.agent);
    let store = app.store;
    blocking(move || store.days(&days.range, agent.as_deref(), &days.first, &days.last)).await
}

fn midnight(date: &str) -> String {
    format!("{date}T00:00:00Z")
}

/// Cost per UTC day (by the events' own timestamps) with its running total; days without
/// events are zeros.
#[utoipa::path(get, path = "/api/metrics/cost-timeline", tag = "metrics", params(DaysQuery, RangeQuery, AgentQuery), responses(
    (status = 200, body = [CostPoint]),
    (status = 400, body = ErrorBody),
    (status = 422, description = "`days` outside 1-365", body = ErrorBody),
))]
pub async fn cost_timeline(State(app): State<App>, Query(q): Query<AgentQuery>, range: DayRange) -> Response {
    let mut cumulative = 0.0;
    respond(days(app, q, range).await.map(|days| {
        days.into_iter()
            .map(|d| {
                cumulative += d.all.cost;
                CostPoint {
                    timestamp: midnight(&d.date),
                    date: d.date,
                    cost: d.all.cost,
                    cumulative_cost: cumulative,
                    events: d.all.events,
                    runs: d.runs,
                }
            })
            .collect::<Vec<_>>()
    }))
}

/// Tokens per UTC day (by the events' own timestamps) with running totals; days without events
/// are zeros.
#[utoipa::path(get, path = "/api/metrics/tokens-timeline", tag = "metrics", params(DaysQuery, RangeQuery, AgentQuery), responses(
    (status = 200, body = [TokensPoint]),
    (status = 400, body = ErrorBody),
    (status = 422, description = "`days` outside 1-365", body = ErrorBody),
))]
pub async fn tokens_timeline(State(app): State<App>, Query(q): Query<AgentQuery>, range: DayRange) -> Response {
    let (mut tin, mut tout, mut total) = (0, 0, 0);
    respond(days(app, q, range).await.map(|days| {
        days.into_iter()
            .map(|d| {
                let t = d.all;
                (tin, tout, total) = (tin + t.tokens_in, tout + t.tokens_out, total + t.total_tokens);
                TokensPoint {
                    timestamp: midnight(&d.date),
                    date: d.date,
                    tokens_in: t.tokens_in,
                    tokens_out: t.tokens_out,
                    total_tokens: t.total_tokens,
                    cumulative_tokens_in: tin,
                    cumulative_tokens_out: tout,
                    cumulative_total_tokens: total,
                }
            })
            .collect::<Vec<_>>()
    }))
}

/// Everything per UTC day, for charts: events, LLM calls, errors, runs started, cost, tokens.
#[utoipa::path(get, path = "/api/metrics/timeline", tag = "metrics", params(DaysQuery, RangeQuery, AgentQuery), responses(
    (status = 200, body = [DayPoint]),
    (status = 400, body = ErrorBody),
    (status = 422, description = "`days` outside 1-365", body = ErrorBody),
))]
pub async fn timeline(State(app): State<App>, Query(q): Query<AgentQuery>, range: DayRange) -> Response {
    respond(days(app, q, range).await.map(|days| {
        days.into_iter()
            .map(|d| DayPoint {
                timestamp: midnight(&d.date),
                date: d.date,
                events: d.all.events,
                llm_calls: d.llm.events,
                errors: d.all.errors,
                runs: d.runs,
                cost: d.all.cost,
                tokens_in: d.all.tokens_in,
                tokens_out: d.all.tokens_out,
                total_tokens: d.all.total_tokens,
            })
            .collect::<Vec<_>>()
    }))
}

/// Each agent's runs, cost and tokens side by side, highest cost first.
#[utoipa::path(get, path = "/api/metrics/agents-comparison", tag = "metrics", params(RangeQuery),
    responses((status = 200, body = [AgentComparison]), (status = 400, body = ErrorBody)))]
pub async fn agents_comparison(State(app): State<App>, TimeRange(range): TimeRange) -> Response {
    let store = app.store;
    respond(blocking(move || store.agent_totals(&range, None)).await.map(|agents| {
        let mut rows: Vec<AgentComparison> = agents
            .into_iter()
            .map(|a| AgentComparison {
                avg_cost_per_run: per(a.events.cost, a.runs),
                agent_name: a.agent,
                runs: a.runs,
                cost: a.events.cost,
                total_tokens: a.events.total_tokens,
                tokens_in: a.events.tokens_in,
                tokens_out: a.events.tokens_out,
                events: a.events.events,
                errors: a.events.errors,
            })
            .collect();
        rows.sort_by(|a, b| b.cost.total_cmp(&a.cost).then_with(|| a.agent_name.cmp(&b.agent_name)));
        rows
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ModelsQuery {
    /// Only this agent's calls.
    agent: Option<String>,
    /// Only this run's calls.
    run_id: Option<String>,
}

/// The LLM calls per model: how many, their cost, tokens, average latency and errors, highest
/// cost first.
#[utoipa::path(get, path = "/api/metrics/models", tag = "metrics", params(ModelsQuery, RangeQuery),
    responses((status = 200, body = [ModelCost]), (status = 400, body = ErrorBody)))]
pub async fn models(State(app): State<App>, Query(q): Query<ModelsQuery>, TimeRange(range): TimeRange) -> Response {
    let (agent, run_id) = (given(&q.agent), given(&q.run_id));
    let store = app.store;
    respond(blocking(move || store.models(&range, agent.as_deref(), run_id.as_deref())).await.map(|models| {
        let mut rows: Vec<ModelCost> = models
            .into_iter()
            .map(|(model, t)| ModelCost {
                model,
                calls: t.events,
                cost: t.cost,
                tokens_in: t.tokens_in,
                tokens_out: t.tokens_out,
                total_tokens: t.total_tokens,
                avg_latency_ms: (t.timed > 0).then(|| t.duration_ms / t.timed as f64),
                errors: t.errors,
            })
            .collect();
        rows.sort_by(|a, b| b.cost.total_cmp(&a.cost).then_with(|| a.model.cmp(&b.model)));
        rows
    }))
}
