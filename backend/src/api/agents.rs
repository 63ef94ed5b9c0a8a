//! Agents: listed with their totals, one agent, deleted with all it has.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};

use super::{
    blocking, counted, error, found,
    params::{PageQuery, Paged, MAX_LIMIT},
    App,
};
use crate::model::{Agent, AgentDeleted, ErrorBody};

/// Agents with their totals, most recently active first: a bare array, as 0.0.3's; the number
/// of agents is in `X-Total-Count`.
#[utoipa::path(get, path = "/api/agents", tag = "agents", params(PageQuery), responses(
    (status = 200, body = [Agent], headers(("x-total-count" = i64, description = "How many agents there are"))),
    (status = 400, body = ErrorBody),
))]
pub async fn list_agents(State(app): State<App>, Paged(page): Paged<MAX_LIMIT>) -> Response {
    let store = app.store;
    match blocking(move || store.agents(page)).await {
        Ok((agents, total)) => counted(agents, total),
        Err(response) => response,
    }
}

/// One agent with its totals.
#[utoipa::path(get, path = "/api/agents/{name}", tag = "agents", params(("name" = String, Path)),
    responses((status = 200, body = Agent), (status = 404, body = ErrorBody)))]
pub async fn get_agent(State(app): State<App>, Path(name): Path<String>) -> Response {
    let missing = format!("no agent named {name:?}");
    let store = app.store;
    found(blocking(move || store.agent(&name)).await, missing)
}

/// Delete an agent with its runs, events and totals.
#[utoipa::path(delete, path = "/api/agents/{name}", tag = "agents", params(("name" = String, Path)),
    responses((status = 200, body = AgentDeleted), (status = 404, body = ErrorBody)))]
pub async fn delete_agent(State(app): State<App>, Path(name): Path<String>) -> Response {
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
