//! The SQLite database: one connection behind a mutex, used from blocking tasks.

use std::{
    path::Path,
    sync::{Arc, Mutex},
};

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::{json, Value};

use crate::ingest::{self, Event};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS agents (
    name        TEXT PRIMARY KEY,
    first_seen  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id      TEXT PRIMARY KEY,
    agent_name  TEXT NOT NULL REFERENCES agents(name),
    first_seen  TEXT NOT NULL,
    run_name    TEXT
);
CREATE TABLE IF NOT EXISTS events (
    event_id          TEXT PRIMARY KEY,
    run_id            TEXT NOT NULL REFERENCES runs(run_id),
    agent_name        TEXT NOT NULL REFERENCES agents(name),
    event_type        TEXT NOT NULL,
    timestamp         TEXT NOT NULL,
    parent_event_id   TEXT,
    data              TEXT NOT NULL,
    previous_event_id TEXT,
    attributes        TEXT NOT NULL DEFAULT '{}',
    tokens_in         INTEGER,
    tokens_out        INTEGER,
    total_tokens      INTEGER,
    cost              REAL,
    duration_ms       REAL,
    error             INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_by_run ON events(run_id, timestamp);
CREATE INDEX IF NOT EXISTS events_by_agent ON events(agent_name, timestamp);
";

/// Columns added since the first schema, for databases created before them.
const ADDED_COLUMNS: [(&str, &str, &str); 9] = [
    ("runs", "run_name", "TEXT"),
    ("events", "previous_event_id", "TEXT"),
    ("events", "attributes", "TEXT NOT NULL DEFAULT '{}'"),
    ("events", "tokens_in", "INTEGER"),
    ("events", "tokens_out", "INTEGER"),
    ("events", "total_tokens", "INTEGER"),
    ("events", "cost", "REAL"),
    ("events", "duration_ms", "REAL"),
    ("events", "error", "INTEGER NOT NULL DEFAULT 0"),
];
/// `PRAGMA user_version` once every event's metrics columns are filled.
const SCHEMA_VERSION: i64 = 1;

/// One row per run with its totals. A run lasts from its first to its last event, or as long
/// as its longest event says it took, whichever is longer. Recreated at every start, so it
/// always matches this binary.
const RUN_TOTALS: &str = "
DROP VIEW IF EXISTS run_totals;
CREATE VIEW run_totals AS
SELECT r.run_id, r.run_name, r.agent_name,
       min(e.timestamp) AS started_at, max(e.timestamp) AS last_event_at, count(e.event_id) AS event_count,
       coalesce(sum(e.tokens_in), 0) AS tokens_in, coalesce(sum(e.tokens_out), 0) AS tokens_out,
       coalesce(sum(e.total_tokens), 0) AS total_tokens, coalesce(sum(e.cost), 0.0) AS total_cost,
       max(coalesce((julianday(max(e.timestamp)) - julianday(min(e.timestamp))) * 86400000.0, 0.0),
           coalesce(max(e.duration_ms), 0.0)) AS total_duration_ms,
       coalesce(sum(e.error), 0) AS error_count
FROM runs r LEFT JOIN events e ON e.run_id = r.run_id
GROUP BY r.run_id;
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
    pub run_name: Option<String>,
    /// Case-insensitive text to find in the event's `data` or other fields.
    pub text: Option<String>,
}

/// Which runs to list; every filter given must match.
#[derive(Debug, Default)]
pub struct RunFilter {
    pub agent: Option<String>,
    pub name: Option<String>,
}

/// A run looked up by name: none, exactly one, or several to choose from.
pub enum Found {
    One(Value),
    None,
    Several(Vec<Value>),
}

#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
}

impl Store {
    pub fn open(path: &Path) -> rusqlite::Result<Store> {
        let mut conn = Connection::open(path)?;
        // WAL with synchronous=FULL: a batch is on disk before its response is sent.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        migrate(&mut conn)?;
        conn.execute_batch(RUN_TOTALS)?;
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
                let mut agent = tx.prepare_cached("INSERT OR IGNORE INTO agents (name, first_seen) VALUES (?1, ?2)")?;
                let mut event = tx.prepare_cached(
                    "INSERT OR IGNORE INTO events (event_id, run_id, agent_name, event_type, timestamp,
                        parent_event_id, data, previous_event_id, attributes,
                        tokens_in, tokens_out, total_tokens, cost, duration_ms, error)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                )?;
                for e in events {
                    agent.execute(params![e.agent_name, e.timestamp])?;
                    ensure_run(&tx, e)?;
                    let m = &e.metrics;
                    stored += event.execute(params![
                        e.event_id,
                        e.run_id,
                        e.agent_name,
                        e.event_type,
                        e.timestamp,
                        e.parent_event_id,
                        e.data,
                        e.previous_event_id,
                        e.attributes,
                        m.tokens_in,
                        m.tokens_out,
                        m.total_tokens,
                        m.cost,
                        m.duration_ms,
                        m.error
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
            let mut stmt = conn.prepare_cached(&format!(
                "{AGENT_SELECT} GROUP BY a.name ORDER BY last_activity DESC, a.name LIMIT ?1 OFFSET ?2"
            ))?;
            let agents =
                stmt.query_map(params![page.limit, page.offset], agent_json)?.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(json!({ "agents": agents, "total": total, "limit": page.limit, "offset": page.offset }))
        })
    }

    /// One agent with its totals; `None` if the agent is unknown.
    pub fn agent(&self, name: &str) -> rusqlite::Result<Option<Value>> {
        self.with(|conn| {
            conn.query_row(&format!("{AGENT_SELECT} WHERE a.name = ?1 GROUP BY a.name"), [name], agent_json).optional()
        })
    }

    /// An agent's runs, newest first; `None` if the agent is unknown.
    pub fn runs(&self, agent: &str, page: Page) -> rusqlite::Result<Option<Value>> {
        let known =
            self.with(|conn| conn.query_row("SELECT 1 FROM agents WHERE name = ?1", [agent], |_| Ok(())).optional())?;
        if known.is_none() {
            return Ok(None);
        }
        self.list_runs(&RunFilter { agent: Some(agent.to_string()), name: None }, page).map(Some)
    }

    /// Runs matching the filter, newest first.
    pub fn list_runs(&self, filter: &RunFilter, page: Page) -> rusqlite::Result<Value> {
        self.with(|conn| {
            let condition = "(?1 IS NULL OR agent_name = ?1) AND (?2 IS NULL OR run_name = ?2)";
            let total: i64 = conn.query_row(
                &format!("SELECT count(*) FROM runs WHERE {condition}"),
                params![filter.agent, filter.name],
                |r| r.get(0),
            )?;
            let mut stmt = conn.prepare_cached(&format!(
                "{RUN_SELECT} WHERE {condition} ORDER BY started_at DESC, run_id LIMIT ?3 OFFSET ?4"
            ))?;
            let runs = stmt
                .query_map(params![filter.agent, filter.name, page.limit, page.offset], run_json)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(json!({ "runs": runs, "total": total, "limit": page.limit, "offset": page.offset }))
        })
    }

    /// One run and all its events in time order; `None` if the run is unknown.
    pub fn run(&self, run_id: &str) -> rusqlite::Result<Option<Value>> {
        self.with(|conn| {
            let run = conn.query_row(&format!("{RUN_SELECT} WHERE run_id = ?1"), [run_id], run_json).optional()?;
            let Some(mut run) = run else { return Ok(None) };
            let mut stmt =
                conn.prepare_cached(&format!("{EVENT_SELECT} WHERE e.run_id = ?1 ORDER BY e.timestamp, e.rowid"))?;
            let events = stmt.query_map([run_id], event_json)?.collect::<rusqlite::Result<Vec<_>>>()?;
            run["events"] = Value::Array(events);
            Ok(Some(run))
        })
    }

    /// A run by its name (within one agent, if given), with its events.
    pub fn run_by_name(&self, agent: Option<&str>, name: &str) -> rusqlite::Result<Found> {
        let runs = self.list_runs(
            &RunFilter { agent: agent.map(String::from), name: Some(name.to_string()) },
            Page { limit: 20, offset: 0 },
        )?;
        let runs = runs["runs"].as_array().cloned().unwrap_or_default();
        match runs.as_slice() {
            [] => Ok(Found::None),
            [one] => Ok(self.run(one["run_id"].as_str().unwrap_or_default())?.map_or(Found::None, Found::One)),
            _ => Ok(Found::Several(runs)),
        }
    }

    /// Events matching every given filter, newest first.
    pub fn search(&self, filter: &EventFilter, page: Page) -> rusqlite::Result<Value> {
        self.with(|conn| {
            let condition = "(?1 IS NULL OR e.agent_name = ?1) AND (?2 IS NULL OR e.event_type = ?2)
                 AND (?3 IS NULL OR e.run_id = ?3) AND (?4 IS NULL OR r.run_name = ?4)
                 AND (?5 IS NULL OR instr(lower(e.data), lower(?5)) > 0 OR instr(lower(e.attributes), lower(?5)) > 0)";
            let args = params![filter.agent, filter.event_type, filter.run_id, filter.run_name, filter.text];
            let total: i64 = conn.query_row(
                &format!("SELECT count(*) FROM events e LEFT JOIN runs r ON r.run_id = e.run_id WHERE {condition}"),
                args,
                |r| r.get(0),
            )?;
            let mut stmt = conn.prepare_cached(&format!(
                "{EVENT_SELECT} WHERE {condition} ORDER BY e.timestamp DESC, e.rowid DESC LIMIT ?6 OFFSET ?7"
            ))?;
            let events = stmt
                .query_map(
                    params![
                        filter.agent,
                        filter.event_type,
                        filter.run_id,
                        filter.run_name,
                        filter.text,
                        page.limit,
                        page.offset
                    ],
                    event_json,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(json!({ "events": events, "total": total, "limit": page.limit, "offset": page.offset }))
        })
    }

    /// Totals across every agent and run.
    pub fn summary(&self) -> rusqlite::Result<Value> {
        self.with(|conn| {
            conn.query_row(
                "SELECT (SELECT count(*) FROM agents), (SELECT count(*) FROM runs), count(*),
                        coalesce(sum(tokens_in), 0), coalesce(sum(tokens_out), 0), coalesce(sum(total_tokens), 0),
                        coalesce(sum(cost), 0.0), coalesce(sum(error), 0),
                        (SELECT coalesce(sum(total_duration_ms), 0.0) FROM run_totals)
                 FROM events",
                [],
                |r| {
                    Ok(json!({
                        "agents": r.get::<_, i64>(0)?,
                        "runs": r.get::<_, i64>(1)?,
                        "events": r.get::<_, i64>(2)?,
                        "tokens_in": r.get::<_, i64>(3)?,
                        "tokens_out": r.get::<_, i64>(4)?,
                        "total_tokens": r.get::<_, i64>(5)?,
                        "total_cost": r.get::<_, f64>(6)?,
                        "error_count": r.get::<_, i64>(7)?,
                        "total_duration_ms": r.get::<_, f64>(8)?,
                    }))
                },
            )
        })
    }
}

/// Creates the event's run on first sight, and names it when its name first arrives. A
/// `temp_…` name (the 0.0.3 SDK's "number it for me") becomes `run N`, the next number among
/// the agent's runs, as the upstream backend did.
fn ensure_run(tx: &rusqlite::Transaction, e: &Event) -> rusqlite::Result<()> {
    // None: a new run; Some(None): a run without a name yet.
    let existing: Option<Option<String>> = tx
        .prepare_cached("SELECT run_name FROM runs WHERE run_id = ?1")?
        .query_row([&e.run_id], |r| r.get(0))
        .optional()?;
    if matches!(existing, Some(Some(_))) {
        return Ok(()); // the first name stays
    }
    let name = match e.run_name.as_deref() {
        None => None,
        Some(temporary) if temporary.starts_with("temp_") => {
            let agent = existing_agent(tx, &e.run_id)?.unwrap_or_else(|| e.agent_name.clone());
            let last: i64 = tx
                .prepare_cached(
                    "SELECT coalesce(max(CAST(substr(run_name, 5) AS INTEGER)), 0) FROM runs
                     WHERE agent_name = ?1 AND run_name GLOB 'run [0-9]*' AND substr(run_name, 5) NOT GLOB '*[^0-9]*'",
                )?
                .query_row([&agent], |r| r.get(0))?;
            Some(format!("run {}", last + 1))
        }
        Some(name) => Some(name.to_string()),
    };
    insert_run(tx, e, existing.is_none(), name)
}

fn insert_run(tx: &rusqlite::Transaction, e: &Event, new: bool, name: Option<String>) -> rusqlite::Result<()> {
    if new {
        tx.prepare_cached("INSERT INTO runs (run_id, agent_name, first_seen, run_name) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![e.run_id, e.agent_name, e.timestamp, name])?;
    } else if name.is_some() {
        tx.prepare_cached("UPDATE runs SET run_name = ?2 WHERE run_id = ?1 AND run_name IS NULL")?
            .execute(params![e.run_id, name])?;
    }
    Ok(())
}

fn existing_agent(tx: &rusqlite::Transaction, run_id: &str) -> rusqlite::Result<Option<String>> {
    tx.prepare_cached("SELECT agent_name FROM runs WHERE run_id = ?1")?.query_row([run_id], |r| r.get(0)).optional()
}

/// Brings a database of an older gati to this schema: adds the new columns, then computes
/// every stored event's metrics with the same code that ingests new ones.
fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version >= SCHEMA_VERSION {
        return Ok(());
    }
    let tx = conn.transaction()?;
    for (table, column, definition) in ADDED_COLUMNS {
        let present: bool = tx.query_row(
            &format!("SELECT count(*) FROM pragma_table_info('{table}') WHERE name = ?1"),
            [column],
            |r| r.get(0),
        )?;
        if !present {
            tx.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {definition}"))?;
        }
    }
    {
        let mut read = tx.prepare("SELECT rowid, event_type, data FROM events")?;
        let rows = read
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut write = tx.prepare(
            "UPDATE events SET tokens_in = ?2, tokens_out = ?3, total_tokens = ?4, cost = ?5, duration_ms = ?6,
                error = ?7 WHERE rowid = ?1",
        )?;
        for (rowid, event_type, data) in rows {
            let data = match serde_json::from_str::<Value>(&data) {
                Ok(Value::Object(data)) => data,
                _ => Default::default(),
            };
            let m = ingest::metrics(&event_type, &Default::default(), &data);
            write.execute(params![rowid, m.tokens_in, m.tokens_out, m.total_tokens, m.cost, m.duration_ms, m.error])?;
        }
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()
}

const AGENT_SELECT: &str = "SELECT a.name, count(t.run_id), coalesce(sum(t.event_count), 0),
        max(t.last_event_at) AS last_activity, coalesce(sum(t.tokens_in), 0), coalesce(sum(t.tokens_out), 0),
        coalesce(sum(t.total_tokens), 0), coalesce(sum(t.total_cost), 0.0),
        coalesce(sum(t.total_duration_ms), 0.0), coalesce(sum(t.error_count), 0)
    FROM agents a LEFT JOIN run_totals t ON t.agent_name = a.name";

fn agent_json(r: &Row) -> rusqlite::Result<Value> {
    Ok(json!({
        "name": r.get::<_, String>(0)?,
        "run_count": r.get::<_, i64>(1)?,
        "event_count": r.get::<_, i64>(2)?,
        "last_activity": r.get::<_, Option<String>>(3)?,
        "tokens_in": r.get::<_, i64>(4)?,
        "tokens_out": r.get::<_, i64>(5)?,
        "total_tokens": r.get::<_, i64>(6)?,
        "total_cost": r.get::<_, f64>(7)?,
        "total_duration_ms": r.get::<_, f64>(8)?,
        "error_count": r.get::<_, i64>(9)?,
    }))
}

const RUN_SELECT: &str = "SELECT run_id, run_name, agent_name, started_at, last_event_at, event_count,
        tokens_in, tokens_out, total_tokens, total_cost, total_duration_ms, error_count
    FROM run_totals";

fn run_json(r: &Row) -> rusqlite::Result<Value> {
    let run_id: String = r.get(0)?;
    let run_name: Option<String> = r.get(1)?;
    Ok(json!({
        "run_id": run_id,
        "run_name": run_name,
        // What to call the run: its name, or its id when it has none.
        "label": run_name.as_deref().unwrap_or(&run_id),
        "agent_name": r.get::<_, String>(2)?,
        "started_at": r.get::<_, Option<String>>(3)?,
        "last_event_at": r.get::<_, Option<String>>(4)?,
        "event_count": r.get::<_, i64>(5)?,
        "tokens_in": r.get::<_, i64>(6)?,
        "tokens_out": r.get::<_, i64>(7)?,
        "total_tokens": r.get::<_, i64>(8)?,
        "total_cost": r.get::<_, f64>(9)?,
        "total_duration_ms": r.get::<_, f64>(10)?,
        "error_count": r.get::<_, i64>(11)?,
    }))
}

const EVENT_SELECT: &str = "SELECT e.event_id, e.run_id, r.run_name, e.agent_name, e.event_type, e.timestamp,
        e.parent_event_id, e.previous_event_id, e.data, e.attributes,
        e.tokens_in, e.tokens_out, e.total_tokens, e.cost, e.duration_ms, e.error
    FROM events e LEFT JOIN runs r ON r.run_id = e.run_id";

fn event_json(r: &Row) -> rusqlite::Result<Value> {
    let parse = |text: String| serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text));
    Ok(json!({
        "event_id": r.get::<_, String>(0)?,
        "run_id": r.get::<_, String>(1)?,
        "run_name": r.get::<_, Option<String>>(2)?,
        "agent_name": r.get::<_, String>(3)?,
        "event_type": r.get::<_, String>(4)?,
        "timestamp": r.get::<_, String>(5)?,
        "parent_event_id": r.get::<_, Option<String>>(6)?,
        "previous_event_id": r.get::<_, Option<String>>(7)?,
        "data": parse(r.get(8)?),
        "attributes": parse(r.get(9)?),
        "tokens_in": r.get::<_, Option<i64>>(10)?,
        "tokens_out": r.get::<_, Option<i64>>(11)?,
        "total_tokens": r.get::<_, Option<i64>>(12)?,
        "cost": r.get::<_, Option<f64>>(13)?,
        "duration_ms": r.get::<_, Option<f64>>(14)?,
        "error": r.get::<_, bool>(15)?,
    }))
}
