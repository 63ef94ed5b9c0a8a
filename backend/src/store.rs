//! The SQLite database: one connection behind a mutex, used from blocking tasks.

use std::{
    path::Path,
    sync::{Arc, Mutex},
};

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::{json, Value};

use crate::ingest::Event;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS agents (
    name        TEXT PRIMARY KEY,
    first_seen  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id      TEXT PRIMARY KEY,
    agent_name  TEXT NOT NULL REFERENCES agents(name),
    first_seen  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    event_id        TEXT PRIMARY KEY,
    run_id          TEXT NOT NULL REFERENCES runs(run_id),
    agent_name      TEXT NOT NULL REFERENCES agents(name),
    event_type      TEXT NOT NULL,
    timestamp       TEXT NOT NULL,
    parent_event_id TEXT,
    data            TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_run ON events(run_id, timestamp);
CREATE INDEX IF NOT EXISTS events_by_agent ON events(agent_name, timestamp);
";

/// Page of a list: `limit` rows from `offset`.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub limit: u32,
    pub offset: u32,
}

#[derive(Debug, Default)]
pub struct EventFilter {
    pub agent: Option<String>,
    pub event_type: Option<String>,
    pub run_id: Option<String>,
    /// Case-insensitive text to find in the event's `data`.
    pub text: Option<String>,
}

#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
}

impl Store {
    pub fn open(path: &Path) -> rusqlite::Result<Store> {
        let conn = Connection::open(path)?;
        // WAL with synchronous=FULL: a batch is on disk before its response is sent.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Store { conn: Arc::new(Mutex::new(conn)) })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
        let mut conn = self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut conn)
    }

    /// Stores a validated batch in one transaction; returns (stored, already known).
    pub fn ingest(&self, events: &[Event]) -> rusqlite::Result<(usize, usize)> {
        self.with(|conn| {
            let tx = conn.transaction()?;
            let mut stored = 0;
            {
                let mut agent = tx.prepare_cached("INSERT OR IGNORE INTO agents VALUES (?1, ?2)")?;
                let mut run = tx.prepare_cached("INSERT OR IGNORE INTO runs VALUES (?1, ?2, ?3)")?;
                let mut event =
                    tx.prepare_cached("INSERT OR IGNORE INTO events VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?;
                for e in events {
                    agent.execute(params![e.agent_name, e.timestamp])?;
                    run.execute(params![e.run_id, e.agent_name, e.timestamp])?;
                    stored += event.execute(params![
                        e.event_id,
                        e.run_id,
                        e.agent_name,
                        e.event_type,
                        e.timestamp,
                        e.parent_event_id,
                        e.data
                    ])?;
                }
            }
            tx.commit()?;
            Ok((stored, events.len() - stored))
        })
    }

    pub fn agents(&self, page: Page) -> rusqlite::Result<Value> {
        self.with(|conn| {
            let total: i64 = conn.query_row("SELECT count(*) FROM agents", [], |r| r.get(0))?;
            let mut stmt = conn.prepare_cached(
                "SELECT a.name,
                        (SELECT count(*) FROM runs r WHERE r.agent_name = a.name),
                        (SELECT count(*) FROM events e WHERE e.agent_name = a.name),
                        (SELECT max(timestamp) FROM events e WHERE e.agent_name = a.name) AS last
                 FROM agents a ORDER BY last DESC, a.name LIMIT ?1 OFFSET ?2",
            )?;
            let agents = stmt
                .query_map(params![page.limit, page.offset], |r| {
                    Ok(json!({
                        "name": r.get::<_, String>(0)?,
                        "run_count": r.get::<_, i64>(1)?,
                        "event_count": r.get::<_, i64>(2)?,
                        "last_activity": r.get::<_, Option<String>>(3)?,
                    }))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(json!({ "agents": agents, "total": total, "limit": page.limit, "offset": page.offset }))
        })
    }

    /// An agent's runs, newest first; `None` if the agent is unknown.
    pub fn runs(&self, agent: &str, page: Page) -> rusqlite::Result<Option<Value>> {
        self.with(|conn| {
            let total: i64 =
                conn.query_row("SELECT count(*) FROM runs WHERE agent_name = ?1", [agent], |r| r.get(0))?;
            if total == 0 {
                let known = conn.query_row("SELECT 1 FROM agents WHERE name = ?1", [agent], |_| Ok(())).optional()?;
                if known.is_none() {
                    return Ok(None);
                }
            }
            let mut stmt = conn.prepare_cached(&format!(
                "{RUN_SELECT} WHERE r.agent_name = ?1 GROUP BY r.run_id
                 ORDER BY started_at DESC, r.run_id LIMIT ?2 OFFSET ?3"
            ))?;
            let runs = stmt
                .query_map(params![agent, page.limit, page.offset], run_json)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Some(json!({ "runs": runs, "total": total, "limit": page.limit, "offset": page.offset })))
        })
    }

    /// One run and all its events in time order; `None` if the run is unknown.
    pub fn run(&self, run_id: &str) -> rusqlite::Result<Option<Value>> {
        self.with(|conn| {
            let run = conn
                .query_row(&format!("{RUN_SELECT} WHERE r.run_id = ?1 GROUP BY r.run_id"), [run_id], run_json)
                .optional()?;
            let Some(mut run) = run else { return Ok(None) };
            let mut stmt =
                conn.prepare_cached(&format!("{EVENT_SELECT} WHERE run_id = ?1 ORDER BY timestamp, rowid"))?;
            let events = stmt.query_map([run_id], event_json)?.collect::<rusqlite::Result<Vec<_>>>()?;
            run["events"] = Value::Array(events);
            Ok(Some(run))
        })
    }

    /// Events matching every given filter, newest first.
    pub fn search(&self, filter: &EventFilter, page: Page) -> rusqlite::Result<Value> {
        self.with(|conn| {
            let condition = "(?1 IS NULL OR agent_name = ?1) AND (?2 IS NULL OR event_type = ?2)
                 AND (?3 IS NULL OR run_id = ?3) AND (?4 IS NULL OR instr(lower(data), lower(?4)) > 0)";
            let args = params![filter.agent, filter.event_type, filter.run_id, filter.text];
            let total: i64 =
                conn.query_row(&format!("SELECT count(*) FROM events WHERE {condition}"), args, |r| r.get(0))?;
            let mut stmt = conn.prepare_cached(&format!(
                "{EVENT_SELECT} WHERE {condition} ORDER BY timestamp DESC, rowid DESC LIMIT ?5 OFFSET ?6"
            ))?;
            let events = stmt
                .query_map(
                    params![filter.agent, filter.event_type, filter.run_id, filter.text, page.limit, page.offset],
                    event_json,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(json!({ "events": events, "total": total, "limit": page.limit, "offset": page.offset }))
        })
    }

    /// Totals; tokens and cost are summed from events whose `data` carries them.
    pub fn summary(&self) -> rusqlite::Result<Value> {
        self.with(|conn| {
            conn.query_row(
                "SELECT (SELECT count(*) FROM agents), (SELECT count(*) FROM runs), count(*),
                        CAST(coalesce(sum(coalesce(json_extract(data, '$.tokens'),
                                                   json_extract(data, '$.total_tokens'),
                                                   json_extract(data, '$.usage.total_tokens'))), 0) AS INTEGER),
                        CAST(coalesce(sum(coalesce(json_extract(data, '$.cost'),
                                                   json_extract(data, '$.cost_usd'))), 0) AS REAL)
                 FROM events",
                [],
                |r| {
                    Ok(json!({
                        "agents": r.get::<_, i64>(0)?,
                        "runs": r.get::<_, i64>(1)?,
                        "events": r.get::<_, i64>(2)?,
                        "total_tokens": r.get::<_, i64>(3)?,
                        "total_cost": r.get::<_, f64>(4)?,
                    }))
                },
            )
        })
    }
}

const RUN_SELECT: &str = "SELECT r.run_id, r.agent_name, min(e.timestamp) AS started_at,
        max(e.timestamp), count(e.event_id)
    FROM runs r LEFT JOIN events e ON e.run_id = r.run_id";

fn run_json(r: &Row) -> rusqlite::Result<Value> {
    Ok(json!({
        "run_id": r.get::<_, String>(0)?,
        "agent_name": r.get::<_, String>(1)?,
        "started_at": r.get::<_, Option<String>>(2)?,
        "last_event_at": r.get::<_, Option<String>>(3)?,
        "event_count": r.get::<_, i64>(4)?,
    }))
}

const EVENT_SELECT: &str =
    "SELECT event_id, run_id, agent_name, event_type, timestamp, parent_event_id, data FROM events";

fn event_json(r: &Row) -> rusqlite::Result<Value> {
    let data: String = r.get(6)?;
    Ok(json!({
        "event_id": r.get::<_, String>(0)?,
        "run_id": r.get::<_, String>(1)?,
        "agent_name": r.get::<_, String>(2)?,
        "event_type": r.get::<_, String>(3)?,
        "timestamp": r.get::<_, String>(4)?,
        "parent_event_id": r.get::<_, Option<String>>(5)?,
        "data": serde_json::from_str::<Value>(&data).unwrap_or(Value::String(data)),
    }))
}
