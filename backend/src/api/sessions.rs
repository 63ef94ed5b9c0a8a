//! Sessions: the conversations runs are part of, listed with their totals, and one read turn by
//! turn.

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
    params::{PageQuery, Paged, RangeQuery, TimeRange, DEFAULT_LIMIT, MAX_LIMIT},
    App,
};
use crate::{
    model::{ErrorBody, SessionDetail, SessionPage},
    store::SessionFilter,
};

/// No session id is longer: ingest refuses longer ones, and OTLP's are cut to it.
const MAX_SESSION_ID_BYTES: usize = 256;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SessionQuery {
    /// Only sessions with a run of this agent (an agent that does not exist: 404).
    agent: Option<String>,
}

/// Sessions with the totals of their runs, latest activity first; how many match is in `total`
/// and in `X-Total-Count`.
#[utoipa::path(get, path = "/api/sessions", tag = "sessions", params(SessionQuery, RangeQuery, PageQuery),
    responses(
        (status = 200, body = SessionPage, headers(("x-total-count" = i64, description = "How many sessions match"))),
        (status = 400, body = ErrorBody),
        (status = 404, description = "`agent` names no agent", body = ErrorBody),
    ))]
pub async fn list_sessions(
    State(app): State<App>,
    Query(q): Query<SessionQuery>,
    Paged(page): Paged<DEFAULT_LIMIT>,
    TimeRange(range): TimeRange,
) -> Response {
    let filter = SessionFilter { agent: given(&q.agent), range };
    let missing = format!("no agent named {:?}", filter.agent.clone().unwrap_or_default());
    let store = app.store;
    match blocking(move || store.sessions(&filter, page)).await {
        Ok(Some((sessions, total))) => {
            let mut response =
                Json(SessionPage { sessions, total, limit: page.limit, offset: page.offset }).into_response();
            response.headers_mut().insert("x-total-count", total.into());
            response
        }
        Ok(None) => error(StatusCode::NOT_FOUND, missing),
        Err(response) => response,
    }
}

/// A session's totals and its runs in time order, each with its first input and last output,
/// so that the conversation reads turn by turn. `limit` (default 1000) and `offset` page the runs.
#[utoipa::path(get, path = "/api/sessions/{id}", tag = "sessions", params(("id" = String, Path), PageQuery),
    responses(
        (status = 200, body = SessionDetail),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub async fn get_session(State(app): State<App>, Path(id): Path<String>, Paged(page): Paged<MAX_LIMIT>) -> Response {
    if id.len() > MAX_SESSION_ID_BYTES {
        let message = format!("a session id is at most {MAX_SESSION_ID_BYTES} bytes; this one has {}", id.len());
        return error(StatusCode::BAD_REQUEST, message);
    }
    let store = app.store;
    let wanted = id.clone();
    match blocking(move || store.session(&wanted, page)).await {
        Ok(Some((session, runs))) => {
            Json(SessionDetail { session, runs, runs_limit: page.limit, runs_offset: page.offset }).into_response()
        }
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no session with id {id:?}")),
        Err(response) => response,
    }
}
