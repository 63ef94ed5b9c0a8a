//! SQL rows into the API's types: the columns each read selects, and how a row maps.

use rusqlite::Row;
use serde_json::Value;

use crate::model::{Agent, Event, Run, RunStatus};

pub(super) const AGENT_SELECT: &str =
    "SELECT name, first_seen, run_count, event_count, active_runs, last_event_at, tokens_in,
        tokens_out, total_tokens, total_cost, duration_ms, error_count
    FROM agents";

pub(super) fn agent_row(r: &Row) -> rusqlite::Result<Agent> {
    let (runs, events, cost): (i64, i64, f64) = (r.get(2)?, r.get(3)?, r.get(9)?);
    Ok(Agent {
        name: r.get(0)?,
        description: None,
        created_at: r.get(1)?,
        total_runs: runs,
        total_events: events,
        total_cost: cost,
        avg_cost: if runs > 0 { cost / runs as f64 } else { 0.0 },
        run_count: runs,
        event_count: events,
        active_runs: r.get(4)?,
        last_activity: r.get(5)?,
        tokens_in: r.get(6)?,
        tokens_out: r.get(7)?,
        total_tokens: r.get(8)?,
        total_duration_ms: r.get(10)?,
        error_count: r.get(11)?,
    })
}

pub(super) const RUN_SELECT: &str = "SELECT run_id, run_name, agent_name, status, coalesce(started_at, first_seen),
        last_event_at, ended_at, event_count, tokens_in, tokens_out, total_tokens, total_cost, duration_ms,
        error_count, session_id
    FROM runs";

pub(super) fn run_row(r: &Row) -> rusqlite::Result<Run> {
    let run_id: String = r.get(0)?;
    let run_name: Option<String> = r.get(1)?;
    let started_at: String = r.get(4)?;
    let status: String = r.get(3)?;
    Ok(Run {
        label: run_name.clone().unwrap_or_else(|| run_id.clone()),
        run_id,
        run_name,
        agent_name: r.get(2)?,
        status: RunStatus::parse(&status).unwrap_or(RunStatus::Active),
        environment: None,
        metadata: None,
        created_at: started_at.clone(),
        started_at,
        last_event_at: r.get(5)?,
        ended_at: r.get(6)?,
        event_count: r.get(7)?,
        tokens_in: r.get(8)?,
        tokens_out: r.get(9)?,
        total_tokens: r.get(10)?,
        total_cost: r.get(11)?,
        total_duration_ms: r.get(12)?,
        error_count: r.get(13)?,
        session_id: r.get(14)?,
    })
}

pub(super) const EVENT_SELECT: &str =
    "SELECT e.event_id, e.run_id, r.run_name, e.agent_name, e.event_type, e.timestamp,
        e.parent_event_id, e.previous_event_id, e.data, e.attributes,
        e.tokens_in, e.tokens_out, e.total_tokens, e.cost, e.duration_ms, e.error, e.model
    FROM events e LEFT JOIN runs r ON r.run_id = e.run_id";

pub(super) fn event_row(r: &Row) -> rusqlite::Result<Event> {
    let parse = |text: String| serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text));
    Ok(Event {
        event_id: r.get(0)?,
        run_id: r.get(1)?,
        run_name: r.get(2)?,
        agent_name: r.get(3)?,
        event_type: r.get(4)?,
        timestamp: r.get(5)?,
        parent_event_id: r.get(6)?,
        previous_event_id: r.get(7)?,
        data: parse(r.get(8)?),
        attributes: parse(r.get(9)?),
        tokens_in: r.get(10)?,
        tokens_out: r.get(11)?,
        total_tokens: r.get(12)?,
        cost: r.get(13)?,
        duration_ms: r.get(14)?,
        error: r.get(15)?,
        model: r.get(16)?,
    })
}
