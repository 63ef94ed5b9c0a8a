//! The HTTP API. Every handler runs its SQLite work on a blocking thread.
//!
//! ```text
//! POST /api/events                      a batch: {"events": [...]} or [...]; at most 16 MiB
//! GET  /api/events?agent&type&run_id&run_name&q     search, newest first
//! GET  /api/agents                      agents with their totals
//! GET  /api/agents/{name}               one agent's totals
//! GET  /api/agents/{name}/runs          its runs, newest first
//! GET  /api/runs?agent&name             runs, newest first; `name` finds runs by name
//! GET  /api/runs/{id or name}           one run with its events
//! GET  /api/runs/{agent}/{name or id}   the same, addressed as the upstream backend did
//! GET  /api/summary                     totals
//! GET  /health
//! ```
//! Totals are tokens in, out and overall, cost, duration and errors. Lists take `limit` and
//! `offset`. Every error is `{"error": ...}`.
//!
//! An agent is an agent of runs, and an event is the agent's its run is credited to (the one the
//! run's `agent_start` names): agent lists, totals and `agent` filters all count the same events.
//! An event sent under another agent's name keeps that name as `attributes.agent_name`.

use std::collections::HashMap;

use axum::{
    body::{Body, HttpBody},
    extract::{Path, Query, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde_json::{json, Value};

use gati_service::local_guard::{self, LocalGuard};

use crate::{
    ingest::{self, BatchError},
    store::{EventFilter, Found, Page, RunFilter, Store},
};

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;

pub fn router(store: Store, guard: LocalGuard) -> Router {
    let router = Router::new()
        .route("/health", get(|| async { Json(json!({ "status": "ok", "version": crate::VERSION })) }))
        .route("/api/events", post(post_events).get(search_events))
        .route("/api/agents", get(list_agents))
        .route("/api/agents/{name}", get(get_agent))
        .route("/api/agents/{name}/runs", get(list_agent_runs))
        .route("/api/runs", get(list_runs))
        .route("/api/runs/{run}", get(get_run))
        .route("/api/runs/{agent}/{run}", get(get_agent_run))
        .route("/api/summary", get(summary))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint".into()) })
        .with_state(store);
    local_guard::protect(router, guard, Some(ingest::MAX_BODY_BYTES))
}

type Params = Query<HashMap<String, String>>;

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

impl IntoResponse for BatchError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut body = json!({ "error": self.error, "field": self.field, "index": self.index });
        if let Some((name, value)) = self.limit {
            body[name] = json!(value);
        }
        (status, Json(body)).into_response()
    }
}

/// Runs a store call off the async threads; a database failure becomes a 500 with its message.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> rusqlite::Result<T> + Send + 'static) -> Result<T, Response> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, format!("database error: {e}"))),
        Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, format!("internal error: {e}"))),
    }
}

fn page(params: &HashMap<String, String>) -> Result<Page, Response> {
    let number = |key: &str, default: u32| match params.get(key) {
        None => Ok(default),
        Some(v) => v
            .parse::<u32>()
            .map_err(|_| error(StatusCode::BAD_REQUEST, format!("`{key}` must be a non-negative integer, got {v:?}"))),
    };
    let limit = number("limit", DEFAULT_LIMIT)?;
    if limit == 0 || limit > MAX_LIMIT {
        return Err(error(StatusCode::BAD_REQUEST, format!("`limit` must be between 1 and {MAX_LIMIT}")));
    }
    Ok(Page { limit, offset: number("offset", 0)? })
}

/// A non-empty query parameter.
fn param(params: &HashMap<String, String>, key: &str) -> Option<String> {
    params.get(key).filter(|v| !v.is_empty()).cloned()
}

/// The body is read here, not by an extractor, so that one too large is refused with JSON
/// naming the limit. It is still read to its end (up to `DRAIN_BYTES`): a client that is
/// answered while it is still sending sees a broken connection instead of the 413.
async fn post_events(State(store): State<Store>, headers: HeaderMap, body: Body) -> Response {
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let body = match read_body(body, declared).await {
        Ok(body) => body,
        Err(received) => return BatchError::too_large(received).into_response(),
    };
    let events = match ingest::parse_batch(&body) {
        Ok(events) => events,
        Err(e) => return e.into_response(),
    };
    let received = events.len();
    // The response is sent only after the transaction has committed. `status`, `count` and
    // `failed` are what the upstream backend answered.
    match blocking(move || store.ingest(&events)).await {
        Ok((stored, duplicates)) => Json(json!({
            "stored": stored, "duplicates": duplicates, "status": "success", "count": received, "failed": 0,
        }))
        .into_response(),
        Err(response) => response,
    }
}

/// How much of an oversized body is read and thrown away before the connection is dropped.
const DRAIN_BYTES: usize = 4 * ingest::MAX_BODY_BYTES;

/// The whole body, or how many bytes it had (at least) when it is over the limit.
async fn read_body(mut body: Body, declared: Option<u64>) -> Result<Vec<u8>, String> {
    let limit = ingest::MAX_BODY_BYTES;
    let mut kept = Vec::new();
    let mut received = 0usize;
    let too_large = declared.is_some_and(|length| length > limit as u64);
    while received <= DRAIN_BYTES {
        let frame = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await;
        let Some(Ok(frame)) = frame else { break };
        let Some(data) = frame.data_ref() else { continue };
        received += data.len();
        if !too_large && received <= limit {
            kept.extend_from_slice(data);
        }
    }
    match declared {
        Some(length) if too_large => Err(length.to_string()),
        _ if received > DRAIN_BYTES => Err(format!("more than {DRAIN_BYTES}")),
        _ if received > limit => Err(received.to_string()),
        _ => Ok(kept),
    }
}

async fn list_agents(State(store): State<Store>, Query(params): Params) -> Response {
    let page = match page(&params) {
        Ok(page) => page,
        Err(response) => return response,
    };
    respond(blocking(move || store.agents(page)).await)
}

async fn get_agent(State(store): State<Store>, Path(name): Path<String>) -> Response {
    let what = format!("no agent named {name:?}");
    found(blocking(move || store.agent(&name)).await, what)
}

async fn list_agent_runs(State(store): State<Store>, Path(name): Path<String>, Query(params): Params) -> Response {
    let page = match page(&params) {
        Ok(page) => page,
        Err(response) => return response,
    };
    let what = format!("no agent named {name:?}");
    found(blocking(move || store.runs(&name, page)).await, what)
}

async fn list_runs(State(store): State<Store>, Query(params): Params) -> Response {
    let page = match page(&params) {
        Ok(page) => page,
        Err(response) => return response,
    };
    let filter = RunFilter { agent: param(&params, "agent"), name: param(&params, "name") };
    respond(blocking(move || store.list_runs(&filter, page)).await)
}

/// A run by id, or else by name if exactly one run has that name.
async fn get_run(State(store): State<Store>, Path(run): Path<String>) -> Response {
    let what = format!("no run with id or name {run:?}");
    one_run(blocking(move || by_id_or_name(&store, None, &run)).await, what)
}

async fn get_agent_run(State(store): State<Store>, Path((agent, run)): Path<(String, String)>) -> Response {
    let what = format!("agent {agent:?} has no run named {run:?}");
    one_run(blocking(move || by_id_or_name(&store, Some(&agent), &run)).await, what)
}

fn by_id_or_name(store: &Store, agent: Option<&str>, run: &str) -> rusqlite::Result<Found> {
    if let Some(found) = store.run(run)? {
        if agent.is_none_or(|agent| found["agent_name"] == agent) {
            return Ok(Found::One(found));
        }
    }
    store.run_by_name(agent, run)
}

fn one_run(result: Result<Found, Response>, missing: String) -> Response {
    match result {
        Ok(Found::One(run)) => Json(run).into_response(),
        Ok(Found::None) => error(StatusCode::NOT_FOUND, missing),
        Ok(Found::Several(runs)) => {
            let message = format!("{} runs have this name; ask for one by its run_id", runs.len());
            (StatusCode::CONFLICT, Json(json!({ "error": message, "runs": runs }))).into_response()
        }
        Err(response) => response,
    }
}

async fn search_events(State(store): State<Store>, Query(params): Params) -> Response {
    let page = match page(&params) {
        Ok(page) => page,
        Err(response) => return response,
    };
    let filter = EventFilter {
        agent: param(&params, "agent"),
        event_type: param(&params, "type"),
        run_id: param(&params, "run_id"),
        run_name: param(&params, "run_name"),
        text: param(&params, "q"),
    };
    respond(blocking(move || store.search(&filter, page)).await)
}

async fn summary(State(store): State<Store>) -> Response {
    let mut result = blocking(move || store.summary()).await;
    if let Ok(summary) = &mut result {
        summary["version"] = json!(crate::VERSION);
    }
    respond(result)
}

fn respond(result: Result<Value, Response>) -> Response {
    match result {
        Ok(value) => Json(value).into_response(),
        Err(response) => response,
    }
}

fn found(result: Result<Option<Value>, Response>, missing: String) -> Response {
    match result {
        Ok(Some(value)) => Json(value).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, missing),
        Err(response) => response,
    }
}
