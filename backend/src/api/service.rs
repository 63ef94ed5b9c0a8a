//! What the service is, and whether its database answers.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};

use super::App;
use crate::model::{Health, Root};

/// What the service is.
#[utoipa::path(get, path = "/", tag = "service", responses((status = 200, body = Root)))]
pub async fn root() -> Json<Root> {
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
pub async fn health(State(app): State<App>) -> Response {
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
