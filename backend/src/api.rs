//! The HTTP API. Every handler runs its SQLite work on a blocking thread.

use std::collections::HashMap;

use axum::{
    body::Bytes,
    extract::{DefaultBodyLimit, Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde_json::{json, Value};

use crate::{
    ingest::{self, BatchError},
    store::{EventFilter, Page, Store},
};

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;

pub fn router(store: Store) -> Router {
    Router::new()
        .route("/health", get(|| async { Json(json!({ "status": "ok", "version": crate::VERSION })) }))
        .route("/api/events", post(post_events).get(search_events))
        .route("/api/agents", get(list_agents))
        .route("/api/agents/{name}/runs", get(list_runs))
        .route("/api/runs/{run_id}", get(get_run))
        .route("/api/summary", get(summary))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint".into()) })
        // Oversized bodies are refused by `parse_batch` with a JSON error, not by axum's limit.
        .layer(DefaultBodyLimit::max(ingest::MAX_BODY_BYTES + 1))
        .with_state(store)
}

type Params = Query<HashMap<String, String>>;

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

impl IntoResponse for BatchError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        (status, Json(json!({ "error": self.error, "field": self.field, "index": self.index }))).into_response()
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

async fn post_events(State(store): State<Store>, body: Bytes) -> Response {
    let events = match ingest::parse_batch(&body) {
        Ok(events) => events,
        Err(e) => return e.into_response(),
    };
    // The response is sent only after the transaction has committed.
    match blocking(move || store.ingest(&events)).await {
        Ok((stored, duplicates)) => Json(json!({ "stored": stored, "duplicates": duplicates })).into_response(),
        Err(response) => response,
    }
}

async fn list_agents(State(store): State<Store>, Query(params): Params) -> Response {
    let page = match page(&params) {
        Ok(page) => page,
        Err(response) => return response,
    };
    respond(blocking(move || store.agents(page)).await)
}

async fn list_runs(State(store): State<Store>, Path(name): Path<String>, Query(params): Params) -> Response {
    let page = match page(&params) {
        Ok(page) => page,
        Err(response) => return response,
    };
    let what = format!("no agent named {name:?}");
    found(blocking(move || store.runs(&name, page)).await, what)
}

async fn get_run(State(store): State<Store>, Path(run_id): Path<String>) -> Response {
    let what = format!("no run with id {run_id:?}");
    found(blocking(move || store.run(&run_id)).await, what)
}

async fn search_events(State(store): State<Store>, Query(params): Params) -> Response {
    let page = match page(&params) {
        Ok(page) => page,
        Err(response) => return response,
    };
    let filter = EventFilter {
        agent: params.get("agent").cloned(),
        event_type: params.get("type").cloned(),
        run_id: params.get("run_id").cloned(),
        text: params.get("q").cloned(),
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
