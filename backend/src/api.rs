//! The HTTP API (backend/API.md). Each handler is annotated with its OpenAPI description, and
//! the router is built from those annotations (`utoipa-axum`), so `/openapi.json` lists exactly
//! the routes served. Every handler runs its SQLite work on a blocking thread; every error is
//! `{"error": ...}`.

mod metrics;
mod runs;

use std::sync::{Arc, Mutex};

use axum::{
    body::{Body, HttpBody},
    extract::{Path, Query, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{Html, IntoResponse, Response},
    Json, Router,
};
use gati_service::local_guard::{self, LocalGuard};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, OpenApi};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    ingest::{self, BatchError},
    model::{Agent, AgentDeleted, ErrorBody, Event, EventPage, Health, Ingested, Retention, Root},
    store::{EventFilter, Page, Range, Store},
};

const DEFAULT_LIMIT: u32 = 50;
/// Larger limits are clamped to this, as 0.0.3 did.
const MAX_LIMIT: u32 = 1000;

/// What every handler shares.
#[derive(Clone)]
pub struct App {
    pub store: Store,
    pub retention: Arc<Mutex<Retention>>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "gati backend",
        description = "Stores AI agents' events in SQLite and answers queries about them: agents, runs, events, \
                       traces and metrics over time. gati 0.0.3's routes answer at their paths with their fields."
    ),
    tags(
        (name = "service"), (name = "events"), (name = "agents"), (name = "runs"), (name = "metrics")
    )
)]
struct Doc;

pub fn router(app: App, guard: LocalGuard) -> Router {
    let (router, doc) = OpenApiRouter::with_openapi(Doc::openapi())
        .routes(routes!(root))
        .routes(routes!(health))
        .routes(routes!(post_events, search_events))
        .routes(routes!(get_event))
        .routes(routes!(event_children))
        .routes(routes!(list_agents))
        .routes(routes!(get_agent, delete_agent))
        .routes(routes!(runs::list_agent_runs))
        .routes(routes!(metrics::agent_metrics))
        .routes(routes!(runs::list_runs))
        .routes(routes!(runs::get_run, runs::rename_run, runs::delete_run))
        .routes(routes!(runs::get_agent_run, runs::rename_agent_run, runs::delete_agent_run))
        .routes(routes!(runs::timeline))
        .routes(routes!(runs::trace))
        .routes(routes!(metrics::summary))
        .routes(routes!(metrics::metrics_summary))
        .routes(routes!(metrics::cost_timeline))
        .routes(routes!(metrics::tokens_timeline))
        .routes(routes!(metrics::timeline))
        .routes(routes!(metrics::agents_comparison))
        .routes(routes!(metrics::models))
        .with_state(app)
        .split_for_parts();
    let document = Arc::new(doc.to_json().expect("the OpenAPI document is JSON"));
    let page = Arc::new(crate::docs::page(&doc));
    let router = router
        .route(
            "/openapi.json",
            axum::routing::get(move || async move {
                ([(header::CONTENT_TYPE, "application/json")], document.as_str().to_string())
            }),
        )
        .route("/docs", axum::routing::get(move || async move { Html(page.as_str().to_string()) }))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint; the API is at /docs".into()) });
    local_guard::protect(router, guard, Some(ingest::MAX_BODY_BYTES))
}

pub fn error(status: StatusCode, message: String) -> Response {
    (status, Json(ErrorBody { error: message })).into_response()
}

/// An error answer, boxed: what the parameter checks return (a `Response` is large).
pub type Refused = Box<Response>;

pub fn refused(status: StatusCode, message: String) -> Refused {
    Box::new(error(status, message))
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
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(value)) => Ok(value),
        // A batch refused for what it holds (a total it would overflow), not a failure.
        Ok(Err(e)) => Err(match BatchError::from_store(&e) {
            Some(refused) => refused.into_response(),
            None => error(StatusCode::INTERNAL_SERVER_ERROR, format!("database error: {e}")),
        }),
        Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, format!("internal error: {e}"))),
    }
}

/// `Json(value)`, or the error response.
pub fn respond<T: Serialize>(result: Result<T, Response>) -> Response {
    match result {
        Ok(value) => Json(value).into_response(),
        Err(response) => response,
    }
}

/// A bare array (0.0.3's lists), with the number of items without paging in `X-Total-Count`.
pub fn counted<T: Serialize>(items: Vec<T>, total: i64) -> Response {
    let mut response = Json(items).into_response();
    response.headers_mut().insert("x-total-count", HeaderValue::from(total));
    response
}

/// A `limit` and `offset` as given; bad ones are refused naming the parameter.
pub fn page(limit: &Option<String>, offset: &Option<String>, default: u32) -> Result<Page, Refused> {
    let number = |key: &str, value: &Option<String>| -> Result<Option<u32>, Refused> {
        match value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v.parse::<u64>().map(|n| Some(n.min(u32::MAX.into()) as u32)).map_err(|_| {
                refused(StatusCode::BAD_REQUEST, format!("`{key}` must be a non-negative integer, got {v:?}"))
            }),
        }
    };
    let limit = number("limit", limit)?.unwrap_or(default);
    if limit == 0 {
        return Err(refused(StatusCode::BAD_REQUEST, format!("`limit` must be between 1 and {MAX_LIMIT}, got 0")));
    }
    Ok(Page { limit: limit.min(MAX_LIMIT), offset: number("offset", offset)?.unwrap_or(0) })
}

/// `since` and `until` as stored timestamps; either may be left out.
pub fn range(since: &Option<String>, until: &Option<String>) -> Result<Range, Refused> {
    let range = Range { since: instant("since", since)?, until: instant("until", until)? };
    if let (Some(since), Some(until)) = (&range.since, &range.until) {
        if since >= until {
            return Err(refused(
                StatusCode::BAD_REQUEST,
                format!("`since` ({since}) must be before `until` ({until})"),
            ));
        }
    }
    Ok(range)
}

/// An ISO 8601 date-time (with an offset, or naive and read as UTC) or a date (its midnight, UTC).
fn instant(key: &str, value: &Option<String>) -> Result<Option<String>, Refused> {
    let Some(text) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) else { return Ok(None) };
    let parsed = ingest::normalize_timestamp(text).or_else(|| {
        chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .map(|day| format!("{}T00:00:00.000000Z", day.format("%Y-%m-%d")))
    });
    parsed.map(Some).ok_or_else(|| {
        refused(
            StatusCode::BAD_REQUEST,
            format!("`{key}` {text:?} is not an ISO 8601 date-time or date, like 2026-01-31T12:00:00Z or 2026-01-31"),
        )
    })
}

/// A non-empty parameter.
pub fn given(value: &Option<String>) -> Option<String> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(String::from)
}

/// What the service is.
#[utoipa::path(get, path = "/", tag = "service", responses((status = 200, body = Root)))]
async fn root() -> Json<Root> {
    Json(Root {
        name: "gati-backend".into(),
        version: crate::VERSION.into(),
        status: "running".into(),
        docs: "/docs".into(),
        openapi: "/openapi.json".into(),
    })
}

/// Whether the database can be read, and what retention does.
#[utoipa::path(get, path = "/health", tag = "service", responses(
    (status = 200, description = "The database answers", body = Health),
    (status = 503, description = "The database cannot be read; `error` says why", body = Health),
))]
async fn health(State(app): State<App>) -> Response {
    let store = app.store.clone();
    let checked = tokio::task::spawn_blocking(move || store.health()).await.unwrap_or_else(|e| Err(e.to_string()));
    let retention = app.retention.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let (status, health) = match checked {
        Ok(_) => (StatusCode::OK, "ok"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "unhealthy"),
    };
    let body = Health {
        status: health.into(),
        version: crate::VERSION.into(),
        database: if checked.is_ok() { "ok" } else { "error" }.into(),
        search_pending_events: checked.as_ref().ok().copied(),
        error: checked.err(),
        retention,
    };
    (status, Json(body)).into_response()
}

/// Store a batch of events: all of them, or none.
///
/// `{"events": [...]}` (what the SDKs send) or a bare array; at most 10,000 events and 16 MiB.
/// Events already stored (same `event_id`) are counted as duplicates.
#[utoipa::path(post, path = "/api/events", tag = "events", request_body(content = Object), responses(
    (status = 200, body = Ingested),
    (status = 400, description = "Not JSON", body = ErrorBody),
    (status = 413, description = "Too many events or bytes (`limit_events`, `limit_bytes`)", body = ErrorBody),
    (status = 422, description = "A bad event (`field`, `index`)", body = ErrorBody),
))]
async fn post_events(State(app): State<App>, headers: HeaderMap, body: Body) -> Response {
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
    // The response is sent only after the transaction has committed.
    let store = app.store;
    respond(blocking(move || store.ingest(events)).await.map(|(stored, duplicates)| Ingested {
        stored,
        duplicates,
        status: "success".into(),
        count: received,
        failed: 0,
    }))
}

/// How much of an oversized body is read and thrown away before the connection is dropped.
const DRAIN_BYTES: usize = 4 * ingest::MAX_BODY_BYTES;

/// The whole body, or how many bytes it had (at least) when it is over the limit. It is read
/// here, not by an extractor, so that one too large is refused with JSON naming the limit, and
/// read to its end (up to `DRAIN_BYTES`): a client answered while still sending sees a broken
/// connection instead of the 413.
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

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Only this agent's events.
    agent: Option<String>,
    /// Only events of this type, e.g. `llm_call`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    event_type: Option<String>,
    /// Only this run's events.
    run_id: Option<String>,
    /// Only the events of runs of this name.
    run_name: Option<String>,
    /// Text the event's `data` or other fields contain (case-insensitive), starting at a word.
    q: Option<String>,
    /// Events at or after this time (ISO 8601).
    since: Option<String>,
    /// Events before this time (ISO 8601).
    until: Option<String>,
    /// 1-1000 (default 50).
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    #[param(value_type = Option<u32>)]
    offset: Option<String>,
}

/// Search events, newest first.
#[utoipa::path(get, path = "/api/events", tag = "events", params(SearchQuery), responses(
    (status = 200, body = EventPage),
    (status = 400, description = "A bad parameter", body = ErrorBody),
))]
async fn search_events(State(app): State<App>, Query(q): Query<SearchQuery>) -> Response {
    let (page, range) = match (page(&q.limit, &q.offset, DEFAULT_LIMIT), range(&q.since, &q.until)) {
        (Ok(page), Ok(range)) => (page, range),
        (Err(e), _) | (_, Err(e)) => return *e,
    };
    let filter = EventFilter {
        agent: given(&q.agent),
        event_type: given(&q.event_type),
        run_id: given(&q.run_id),
        run_name: given(&q.run_name),
        text: q.q.filter(|t| !t.trim().is_empty()),
        range,
    };
    let store = app.store;
    respond(blocking(move || store.search(&filter, page)).await.map(|(events, count)| EventPage {
        events,
        total: count.total,
        total_capped: count.capped,
        limit: page.limit,
        offset: page.offset,
    }))
}

/// One event.
#[utoipa::path(get, path = "/api/events/{event_id}", tag = "events",
    params(("event_id" = String, Path)),
    responses((status = 200, body = Event), (status = 404, body = ErrorBody)))]
async fn get_event(State(app): State<App>, Path(event_id): Path<String>) -> Response {
    let missing = format!("no event with id {event_id:?}");
    let store = app.store;
    found(blocking(move || store.event(&event_id)).await, missing)
}

/// The events of its run whose parent it is, in time order.
#[utoipa::path(get, path = "/api/events/{event_id}/children", tag = "events",
    params(("event_id" = String, Path)),
    responses((status = 200, body = [Event]), (status = 404, body = ErrorBody)))]
async fn event_children(State(app): State<App>, Path(event_id): Path<String>) -> Response {
    let missing = format!("no event with id {event_id:?}");
    let store = app.store;
    found(blocking(move || store.children(&event_id)).await, missing)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1-1000 (default 1000: every agent, as 0.0.3 listed them).
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    #[param(value_type = Option<u32>)]
    offset: Option<String>,
}

/// Agents with their totals, most recently active first: a bare array, as 0.0.3's; the number
/// of agents is in `X-Total-Count`.
#[utoipa::path(get, path = "/api/agents", tag = "agents", params(PageQuery), responses(
    (status = 200, body = [Agent], headers(("x-total-count" = i64, description = "How many agents there are"))),
    (status = 400, body = ErrorBody),
))]
async fn list_agents(State(app): State<App>, Query(q): Query<PageQuery>) -> Response {
    let page = match page(&q.limit, &q.offset, MAX_LIMIT) {
        Ok(page) => page,
        Err(response) => return *response,
    };
    let store = app.store;
    match blocking(move || store.agents(page)).await {
        Ok((agents, total)) => counted(agents, total),
        Err(response) => response,
    }
}

/// One agent with its totals.
#[utoipa::path(get, path = "/api/agents/{name}", tag = "agents", params(("name" = String, Path)),
    responses((status = 200, body = Agent), (status = 404, body = ErrorBody)))]
async fn get_agent(State(app): State<App>, Path(name): Path<String>) -> Response {
    let missing = format!("no agent named {name:?}");
    let store = app.store;
    found(blocking(move || store.agent(&name)).await, missing)
}

/// Delete an agent with its runs, events and totals.
#[utoipa::path(delete, path = "/api/agents/{name}", tag = "agents", params(("name" = String, Path)),
    responses((status = 200, body = AgentDeleted), (status = 404, body = ErrorBody)))]
async fn delete_agent(State(app): State<App>, Path(name): Path<String>) -> Response {
    let store = app.store;
    let agent = name.clone();
    match blocking(move || store.delete_agent(&agent)).await {
        Ok(Some((runs, events))) => Json(AgentDeleted {
            status: "success".into(),
            message: format!("Agent '{name}' and all associated data deleted ({runs} runs, {events} events)"),
            agent_name: name,
            deleted_runs: runs,
            deleted_events: events,
        })
        .into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no agent named {name:?}")),
        Err(response) => response,
    }
}

pub fn found<T: Serialize>(result: Result<Option<T>, Response>, missing: String) -> Response {
    match result {
        Ok(Some(value)) => Json(value).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, missing),
        Err(response) => response,
    }
}
