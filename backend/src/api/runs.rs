//! Runs: listed, looked up by id or name (within an agent or not), their timeline and trace,
//! renamed and deleted.

use axum::{
    body::Bytes,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::{
    blocking, counted, error, given,
    params::{bounded, PageQuery, Paged, RangeQuery, TimeRange, DEFAULT_LIMIT, MAX_OFFSET},
    respond, App, Refused,
};
use crate::{
    model::{ErrorBody, Rename, Run, RunDeleted, RunDetail, RunPage, RunStatus, Timeline, Trace},
    store::{Found, Page, RenameError, RunFilter},
};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunQuery {
    /// Only this agent's runs (an agent that does not exist: 404).
    agent: Option<String>,
    /// Only runs of this name, e.g. `run 3`.
    name: Option<String>,
    /// `active`, `completed` or `failed`.
    status: Option<String>,
}

/// Runs with their totals, newest first.
#[utoipa::path(get, path = "/api/runs", tag = "runs", params(RunQuery, RangeQuery, PageQuery), responses(
    (status = 200, body = RunPage),
    (status = 400, body = ErrorBody),
    (status = 404, description = "`agent` names no agent", body = ErrorBody),
))]
pub async fn list_runs(
    State(app): State<App>,
    Query(q): Query<RunQuery>,
    Paged(page): Paged<DEFAULT_LIMIT>,
    TimeRange(range): TimeRange,
) -> Response {
    let status = match given(&q.status).map(|s| RunStatus::parse(&s).ok_or(s)).transpose() {
        Ok(status) => status,
        Err(s) => {
            let message = format!("`status` must be active, completed or failed, got {s:?}");
            return error(StatusCode::BAD_REQUEST, message);
        }
    };
    let filter = RunFilter { agent: given(&q.agent), name: given(&q.name), status, range };
    let missing = format!("no agent named {:?}", filter.agent.clone().unwrap_or_default());
    let store = app.store;
    match blocking(move || store.runs(&filter, page)).await {
        Ok(Some((runs, total))) => {
            Json(RunPage { runs, total, limit: page.limit, offset: page.offset }).into_response()
        }
        Ok(None) => error(StatusCode::NOT_FOUND, missing),
        Err(response) => response,
    }
}

/// An agent's runs, newest first: a bare array, as 0.0.3's; how many there are (without
/// paging) is in `X-Total-Count`.
#[utoipa::path(get, path = "/api/agents/{name}/runs", tag = "agents",
    params(("name" = String, Path), RangeQuery, PageQuery),
    responses(
        (status = 200, body = [Run], headers(("x-total-count" = i64, description = "How many runs match"))),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub async fn list_agent_runs(
    State(app): State<App>,
    Path(name): Path<String>,
    Paged(page): Paged<DEFAULT_LIMIT>,
    TimeRange(range): TimeRange,
) -> Response {
    let missing = format!("no agent named {name:?}");
    let filter = RunFilter { agent: Some(name), range, ..Default::default() };
    let store = app.store;
    match blocking(move || store.runs(&filter, page)).await {
        Ok(Some((runs, total))) => counted(runs, total),
        Ok(None) => error(StatusCode::NOT_FOUND, missing),
        Err(response) => response,
    }
}

/// The run `run` (an id, or a name) of `agent` (any, if `None`), or the answer saying why not.
async fn resolve(app: &App, agent: Option<String>, run: String) -> Result<Run, Response> {
    let store = app.store.clone();
    let missing = match &agent {
        Some(agent) => format!("agent {agent:?} has no run named {run:?}"),
        None => format!("no run with id or name {run:?}"),
    };
    match blocking(move || store.find_run(agent.as_deref(), &run)).await? {
        Found::One(run) => Ok(*run),
        Found::None => Err(error(StatusCode::NOT_FOUND, missing)),
        Found::Several(runs) => {
            let message = format!("{} runs have this name; ask for one by its run_id", runs.len());
            Err((StatusCode::CONFLICT, Json(json!({ "error": message, "runs": runs }))).into_response())
        }
    }
}

/// At most this many of a run's events in one answer: a detail's or timeline's page (its
/// `limit`), a trace.
const MAX_RUN_EVENTS: u32 = 10_000;
/// And at most this much of their stored text (`data` and `attributes`): what one batch holds.
const MAX_RUN_BYTES: usize = crate::ingest::MAX_BODY_BYTES;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// How many of the run's events, in time order: 1-10000 (default 10000). An answer also
    /// stops before 16 MiB of their `data` and `attributes`.
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    /// How many of the run's first events to skip: 0-1000000 (default 0).
    #[param(value_type = Option<u32>)]
    offset: Option<String>,
}

/// Which of its run's events an answer holds.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventsShown {
    /// How many events the run has.
    pub events_total: i64,
    pub events_offset: u32,
    pub events_limit: u32,
    /// Events after these are left out (by `limit`, or past 16 MiB): ask from `events_next_offset`.
    pub events_truncated: bool,
    pub events_next_offset: Option<u32>,
}

/// A run with a page of its events.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunDetailPage {
    #[serde(flatten)]
    pub detail: RunDetail,
    #[serde(flatten)]
    pub shown: EventsShown,
}

/// 0.0.3's timeline, with a page of its events.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimelinePage {
    #[serde(flatten)]
    pub timeline: Timeline,
    #[serde(flatten)]
    pub shown: EventsShown,
}

/// A trace, of the run's first 10,000 events (and 16 MiB) at most.
#[derive(Serialize, ToSchema)]
pub struct TracePage {
    #[serde(flatten)]
    pub trace: Trace,
    /// The run has events the tree leaves out (past the first `trace_max_events`, or 16 MiB).
    pub truncated: bool,
    /// How many events the tree holds.
    pub trace_events: usize,
    pub trace_max_events: u32,
}

/// The run and one page of its events, bounded in number and bytes.
async fn detail(app: &App, agent: Option<String>, run: String, q: &EventsQuery) -> Result<RunDetailPage, Response> {
    let (limit, offset) =
        match (bounded("limit", &q.limit, 1, MAX_RUN_EVENTS), bounded("offset", &q.offset, 0, MAX_OFFSET)) {
            (Ok(limit), Ok(offset)) => (limit.unwrap_or(MAX_RUN_EVENTS), offset.unwrap_or(0)),
            (Err(e), _) | (_, Err(e)) => return Err(*e),
        };
    let run = resolve(app, agent, run).await?;
    let (store, run_id) = (app.store.clone(), run.run_id.clone());
    let page = Page { limit, offset };
    let (events, _) = blocking(move || store.run_events_page(&run_id, page, MAX_RUN_BYTES)).await?;
    let next = offset.saturating_add(events.len() as u32);
    let truncated = i64::from(next) < run.event_count;
    let shown = EventsShown {
        events_total: run.event_count,
        events_offset: offset,
        events_limit: limit,
        events_truncated: truncated,
        events_next_offset: truncated.then_some(next),
    };
    Ok(RunDetailPage { detail: RunDetail { run, events }, shown })
}

/// A run by id, or by a name only one run has, with a page of its events in time order.
#[utoipa::path(get, path = "/api/runs/{run}", tag = "runs",
    params(("run" = String, Path, description = "The run's id or name"), EventsQuery),
    responses(
        (status = 200, body = RunDetailPage),
        (status = 400, description = "A bad `limit` or `offset`", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Several runs have this name: `runs` lists them", body = ErrorBody),
    ))]
pub async fn get_run(State(app): State<App>, Path(run): Path<String>, Query(q): Query<EventsQuery>) -> Response {
    respond(detail(&app, None, run, &q).await)
}

/// An agent's run, by name or id, with a page of its events in time order (0.0.3's run
/// details and ours).
#[utoipa::path(get, path = "/api/runs/{agent}/{run}", tag = "runs",
    params(("agent" = String, Path), ("run" = String, Path, description = "The run's name or id"), EventsQuery),
    responses(
        (status = 200, body = RunDetailPage),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody),
    ))]
pub async fn get_agent_run(
    State(app): State<App>,
    Path((agent, run)): Path<(String, String)>,
    Query(q): Query<EventsQuery>,
) -> Response {
    respond(detail(&app, Some(agent), run, &q).await)
}

/// An agent's run with a page of its events in time order, as 0.0.3's timeline.
#[utoipa::path(get, path = "/api/runs/{agent}/{run}/timeline", tag = "runs",
    params(("agent" = String, Path), ("run" = String, Path, description = "The run's name or id"), EventsQuery),
    responses(
        (status = 200, body = TimelinePage),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody),
    ))]
pub async fn timeline(
    State(app): State<App>,
    Path((agent, run)): Path<(String, String)>,
    Query(q): Query<EventsQuery>,
) -> Response {
    respond(detail(&app, Some(agent), run, &q).await.map(
        |RunDetailPage { detail: RunDetail { run, events }, shown }| TimelinePage {
            timeline: Timeline {
                run_id: run.run_id,
                run_name: run.run_name,
                agent_name: run.agent_name,
                status: run.status,
                total_duration_ms: run.total_duration_ms,
                created_at: run.created_at,
                events,
            },
            shown,
        },
    ))
}

/// An agent's run as its nested execution tree, with each node's latency, cost and tokens and
/// what its subtree adds up to, and LangGraph's graph where the events carry it. The tree holds
/// the run's first 10,000 events (and 16 MiB) at most; `truncated` says it left some out.
#[utoipa::path(get, path = "/api/runs/{agent}/{run}/trace", tag = "runs",
    params(("agent" = String, Path), ("run" = String, Path, description = "The run's name or id")),
    responses((status = 200, body = TracePage), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn trace(State(app): State<App>, Path((agent, run)): Path<(String, String)>) -> Response {
    let all = EventsQuery { limit: None, offset: None };
    respond(detail(&app, Some(agent), run, &all).await.map(|page| TracePage {
        trace: crate::trace::trace(&page.detail.run, &page.detail.events),
        truncated: page.shown.events_truncated,
        trace_events: page.detail.events.len(),
        trace_max_events: MAX_RUN_EVENTS,
    }))
}

/// Rename a run: `{"new_run_name": "..."}`.
#[utoipa::path(patch, path = "/api/runs/{run}", tag = "runs",
    params(("run" = String, Path, description = "The run's id or name")),
    request_body = Rename,
    responses(
        (status = 200, body = Run),
        (status = 400, description = "Its agent already has a run of that name", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody),
        (status = 422, description = "A bad body", body = ErrorBody),
    ))]
pub async fn rename_run(State(app): State<App>, Path(run): Path<String>, body: Bytes) -> Response {
    rename(&app, None, run, &body).await
}

/// Rename an agent's run: `{"new_run_name": "..."}` (0.0.3's PATCH).
#[utoipa::path(patch, path = "/api/runs/{agent}/{run}", tag = "runs",
    params(("agent" = String, Path), ("run" = String, Path, description = "The run's name or id")),
    request_body = Rename,
    responses(
        (status = 200, body = Run),
        (status = 400, description = "The agent already has a run of that name", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody),
        (status = 422, description = "A bad body", body = ErrorBody),
    ))]
pub async fn rename_agent_run(
    State(app): State<App>,
    Path((agent, run)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    rename(&app, Some(agent), run, &body).await
}

const MAX_RUN_NAME: usize = 255;

/// The new name in a rename's body, or the 422 saying what is wrong with it.
fn new_name(body: &[u8]) -> Result<String, Refused> {
    let refuse = |message: String| {
        let body = Json(json!({ "error": message, "field": "new_run_name" }));
        Box::new((StatusCode::UNPROCESSABLE_ENTITY, body).into_response())
    };
    let Rename { new_run_name: name } = serde_json::from_slice(body)
        .map_err(|e| refuse(format!("the body must be {{\"new_run_name\": \"...\"}}: {e}")))?;
    if name.trim().is_empty() {
        return Err(refuse("`new_run_name` must not be empty".into()));
    }
    if name.chars().count() > MAX_RUN_NAME {
        return Err(refuse(format!("`new_run_name` is longer than {MAX_RUN_NAME} characters")));
    }
    Ok(name)
}

async fn rename(app: &App, agent: Option<String>, run: String, body: &[u8]) -> Response {
    let name = match new_name(body) {
        Ok(name) => name,
        Err(response) => return *response,
    };
    let run = match resolve(app, agent, run).await {
        Ok(run) => run,
        Err(response) => return response,
    };
    let store = app.store.clone();
    let (run_id, wanted) = (run.run_id.clone(), name.clone());
    let renamed = tokio::task::spawn_blocking(move || store.rename_run(&run_id, &wanted)).await;
    match renamed {
        Ok(Ok(run)) => Json(run).into_response(),
        Ok(Err(RenameError::Taken)) => error(
            StatusCode::BAD_REQUEST,
            format!("Run name {name:?} already exists for agent {:?}; choose another name", run.agent_name),
        ),
        Ok(Err(RenameError::Gone)) => error(StatusCode::NOT_FOUND, gone(&run)),
        Ok(Err(RenameError::Database(e))) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("database error: {e}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("internal error: {e}")),
    }
}

/// Delete a run with its events and totals (its agent stays).
#[utoipa::path(delete, path = "/api/runs/{run}", tag = "runs",
    params(("run" = String, Path, description = "The run's id or name")),
    responses((status = 200, body = RunDeleted), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_run(State(app): State<App>, Path(run): Path<String>) -> Response {
    delete(&app, None, run).await
}

/// Delete an agent's run with its events and totals (0.0.3's DELETE).
#[utoipa::path(delete, path = "/api/runs/{agent}/{run}", tag = "runs",
    params(("agent" = String, Path), ("run" = String, Path, description = "The run's name or id")),
    responses((status = 200, body = RunDeleted), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_agent_run(State(app): State<App>, Path((agent, run)): Path<(String, String)>) -> Response {
    delete(&app, Some(agent), run).await
}

async fn delete(app: &App, agent: Option<String>, run: String) -> Response {
    let run = match resolve(app, agent, run).await {
        Ok(run) => run,
        Err(response) => return response,
    };
    let (store, run_id) = (app.store.clone(), run.run_id.clone());
    let events = match blocking(move || store.remove_run(&run_id)).await {
        Ok(Some(events)) => events,
        Ok(None) => return error(StatusCode::NOT_FOUND, gone(&run)),
        Err(response) => return response,
    };
    Json(RunDeleted {
        status: "success".into(),
        message: format!(
            "Run '{}' for agent '{}' and all associated events deleted ({events} events)",
            run.label, run.agent_name
        ),
        run_id: run.run_id,
        run_name: run.run_name,
        agent_name: run.agent_name,
        deleted_events: events,
    })
    .into_response()
}

/// Why a run found a moment ago is not there: a delete came first.
fn gone(run: &Run) -> String {
    format!("run {:?} of agent {:?} was deleted meanwhile", run.run_id, run.agent_name)
}
