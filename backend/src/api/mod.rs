//! The HTTP API (backend/API.md). Each handler is annotated with its OpenAPI description, and
//! the router is built from those annotations (`utoipa-axum`), so `/openapi.json` lists exactly
//! the routes served. Every handler runs its SQLite work on a blocking thread; every error is
//! `{"error": ...}`.
//!
//! One file per resource (`events`, `agents`, `runs`, `sessions`, `metrics`, `service`, and OpenTelemetry's
//! `/v1/traces` in `otlp`), the query parameters every list shares in `params`, and here the
//! router and the answers they share.

mod agents;
mod events;
mod latency;
mod metrics;
mod otlp;
mod params;
mod runs;
mod service;
mod sessions;

use std::sync::{Arc, Mutex};

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{Html, IntoResponse, Response},
    Json, Router,
};
use gati_service::local_guard::{self, LocalGuard};
use serde::Serialize;
use serde_json::json;
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

pub use params::given;

use crate::{
    ingest::{self, BatchError},
    model::{ErrorBody, Retention},
    store::Store,
};

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
        (name = "service"), (name = "events"), (name = "agents"), (name = "runs"), (name = "metrics"), (name = "sessions"),
        (name = "otlp", description = "OpenTelemetry's OTLP/HTTP trace export: spans become runs and events")
    )
)]
struct Doc;

pub fn router(app: App, guard: LocalGuard) -> Router {
    let (router, doc) = OpenApiRouter::with_openapi(Doc::openapi())
        .routes(routes!(service::root))
        .routes(routes!(service::health))
        .routes(routes!(events::post_events, events::search_events))
        .routes(routes!(events::get_event))
        .routes(routes!(events::event_children))
        .routes(routes!(otlp::post_traces))
        .routes(routes!(agents::list_agents))
        .routes(routes!(agents::get_agent, agents::delete_agent))
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
        .routes(routes!(sessions::list_sessions))
        .routes(routes!(sessions::get_session))
        .routes(routes!(latency::latency))
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
    // OpenTelemetry exporters send protobuf; a page on another site still cannot (an Origin of
    // elsewhere is refused, and the type is preflighted).
    local_guard::protect(router, guard.accept_protobuf_at(otlp::PATH), Some(ingest::MAX_BODY_BYTES))
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

pub fn found<T: Serialize>(result: Result<Option<T>, Response>, missing: String) -> Response {
    match result {
        Ok(Some(value)) => Json(value).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, missing),
        Err(response) => response,
    }
}
