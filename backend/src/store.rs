//! The SQLite database: one connection behind a mutex, used from blocking tasks.

use std::{
    collections::HashMap,
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
/// `PRAGMA user_version` of this schema: 1 once every event's metrics columns are filled, 2
/// once every event is stored under its run's agent.
const SCHEMA_VERSION: i64 = 2;

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
    ///
    /// Every event is stored under its run's agent (see `ensure_run`), so that agent lists,
    /// totals and agent filters agree. The agent the SDK named, when it is another one (the
    /// 0.0.3 SDK stamps the events inside an agent's run with the name given to
    /// `observe.init`), is kept as the event's `attributes.agent_name`.
    pub fn ingest(&self, events: &[Event]) -> rusqlite::Result<(usize, usize)> {
        // The agent each run of the batch is of, if the batch says: the one its agent_start
        // names, else its agent_end. A run is created under it whichever event comes first.
        let mut named: HashMap<&str, &str> = HashMap::new();
        for kind in AGENT_EVENTS {
            for e in events.iter().filter(|e| e.event_type == kind) {
                named.entry(&e.run_id).or_insert(&e.agent_name);
            }
        }
        self.with(|conn| {
            let tx = conn.transaction()?;
            let mut stored = 0;
            {
                let mut event = tx.prepare_cached(
                    "INSERT OR IGNORE INTO events (event_id, run_id, agent_name, event_type, timestamp,
                        parent_event_id, data, previous_event_id, attributes,
                        tokens_in, tokens_out, total_tokens, cost, duration_ms, error)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                )?;
                for e in events {
                    let agent = ensure_run(&tx, e, named.get(e.run_id.as_str()).copied())?;
                    let attributes = if agent == e.agent_name {
                        e.attributes.clone()
                    } else {
                        with_sent_agent(&e.attributes, &e.agent_name)
                    };
                    let m = &e.metrics;
                    stored += event.execute(params![
                        e.event_id,
                        e.run_id,
                        agent,
                        e.event_type,
                        e.timestamp,
                        e.parent_event_id,
                        e.data,
                        e.previous_event_id,
                        attributes,
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

/// The event types that name the agent a run is of.
const AGENT_EVENTS: [&str; 2] = ["agent_start", "agent_end"];

/// `attributes` (a JSON object's text) with `agent_name` set to the name the SDK sent.
fn with_sent_agent(attributes: &str, sent: &str) -> String {
    let mut object = match serde_json::from_str::<Value>(attributes) {
        Ok(Value::Object(object)) => object,
        _ => Default::default(),
    };
    object.entry("agent_name").or_insert_with(|| Value::String(sent.to_string()));
    Value::Object(object).to_string()
}

/// Creates the event's run on first sight, and names it when its name first arrives; returns
/// the agent the run (and so the event) is credited to.
///
/// A run is its agent's: the one its `agent_start` (or `agent_end`) names, wherever in the
/// batch that is (`named`), else the agent of its first event. A run first seen without either
/// moves to the agent named by the first batch that brings one.
///
/// A `temp_…` name (the 0.0.3 SDK's "number it for me") becomes `run N`, the next number among
/// the agent's runs, as the upstream backend did.
fn ensure_run(tx: &rusqlite::Transaction, e: &Event, named: Option<&str>) -> rusqlite::Result<String> {
    let existing: Option<(String, Option<String>)> = tx
        .prepare_cached("SELECT agent_name, run_name FROM runs WHERE run_id = ?1")?
        .query_row([&e.run_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((mut agent, name)) = existing else {
        let agent = named.unwrap_or(&e.agent_name);
        tx.prepare_cached("INSERT OR IGNORE INTO agents (name, first_seen) VALUES (?1, ?2)")?
            .execute(params![agent, e.timestamp])?;
        let name = run_name(tx, agent, e.run_name.as_deref())?;
        tx.prepare_cached("INSERT INTO runs (run_id, agent_name, first_seen, run_name) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![e.run_id, agent, e.timestamp, name])?;
        return Ok(agent.to_string());
    };
    if let Some(named) = named.filter(|named| *named != agent) {
        if !has_agent_event(tx, &e.run_id)? {
            credit_run(tx, &e.run_id, named, &e.timestamp)?;
            forget_agents_without_runs(tx)?;
            agent = named.to_string();
        }
    }
    if name.is_none() {
        if let Some(name) = run_name(tx, &agent, e.run_name.as_deref())? {
            tx.prepare_cached("UPDATE runs SET run_name = ?2 WHERE run_id = ?1 AND run_name IS NULL")?
                .execute(params![e.run_id, name])?;
        }
    }
    Ok(agent)
}

/// The name a run of `agent` gets from the name sent: `temp_…` is numbered.
fn run_name(tx: &rusqlite::Transaction, agent: &str, sent: Option<&str>) -> rusqlite::Result<Option<String>> {
    match sent {
        Some(temporary) if temporary.starts_with("temp_") => next_run_number(tx, agent).map(Some),
        other => Ok(other.map(String::from)),
    }
}

fn next_run_number(tx: &rusqlite::Transaction, agent: &str) -> rusqlite::Result<String> {
    let last: i64 = tx
        .prepare_cached(
            "SELECT coalesce(max(CAST(substr(run_name, 5) AS INTEGER)), 0) FROM runs
             WHERE agent_name = ?1 AND run_name GLOB 'run [0-9]*' AND substr(run_name, 5) NOT GLOB '*[^0-9]*'",
        )?
        .query_row([agent], |r| r.get(0))?;
    Ok(format!("run {}", last + 1))
}

/// Whether the run holds an `agent_start` or `agent_end`, which decided its agent.
fn has_agent_event(tx: &rusqlite::Transaction, run_id: &str) -> rusqlite::Result<bool> {
    tx.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM events WHERE run_id = ?1 AND event_type IN ('agent_start', 'agent_end'))",
    )?
    .query_row([run_id], |r| r.get(0))
}

/// Moves a run, with its events, to `agent`. A `run N` name the agent already has is numbered
/// anew.
fn credit_run(tx: &rusqlite::Transaction, run_id: &str, agent: &str, first_seen: &str) -> rusqlite::Result<()> {
    let name: Option<String> = tx.query_row("SELECT run_name FROM runs WHERE run_id = ?1", [run_id], |r| r.get(0))?;
    tx.prepare_cached("INSERT OR IGNORE INTO agents (name, first_seen) VALUES (?1, ?2)")?
        .execute(params![agent, first_seen])?;
    let taken = match &name {
        Some(name) if is_numbered(name) => tx
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM runs WHERE agent_name = ?1 AND run_name = ?2)")?
            .query_row(params![agent, name], |r| r.get(0))?,
        _ => false,
    };
    let name = if taken { Some(next_run_number(tx, agent)?) } else { name };
    tx.prepare_cached("UPDATE runs SET agent_name = ?2, run_name = ?3 WHERE run_id = ?1")?
        .execute(params![run_id, agent, name])?;
    attribute_events(tx, Some(run_id)).map(|_| ())
}

fn is_numbered(name: &str) -> bool {
    name.strip_prefix("run ").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Stores the events of one run (or of all) under their run's agent, keeping the agent they
/// were stored under as `attributes.agent_name` unless it is that agent.
fn attribute_events(tx: &rusqlite::Transaction, run_id: Option<&str>) -> rusqlite::Result<usize> {
    tx.prepare_cached(
        "UPDATE events AS e SET
            attributes = CASE
                WHEN json_extract(e.attributes, '$.agent_name') IS NULL
                    THEN json_insert(e.attributes, '$.agent_name', e.agent_name)
                WHEN json_extract(e.attributes, '$.agent_name') = r.agent_name
                    THEN json_remove(e.attributes, '$.agent_name')
                ELSE e.attributes END,
            agent_name = r.agent_name
         FROM runs AS r
         WHERE r.run_id = e.run_id AND e.agent_name != r.agent_name AND (?1 IS NULL OR e.run_id = ?1)",
    )?
    .execute([run_id])
}

/// Drops the agents no run is credited to; no event may be stored under them any more.
fn forget_agents_without_runs(tx: &rusqlite::Transaction) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM agents WHERE NOT EXISTS (SELECT 1 FROM runs WHERE runs.agent_name = agents.name)")?
        .execute([])?;
    Ok(())
}

/// Brings a database of an older gati to this schema, one version at a time.
fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version >= SCHEMA_VERSION {
        return Ok(());
    }
    let tx = conn.transaction()?;
    if version < 1 {
        add_metrics(&tx)?;
    }
    if version < 2 {
        attribute_to_runs(&tx)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()
}

/// Version 1: adds the new columns, then computes every stored event's metrics with the same
/// code that ingests new ones.
fn add_metrics(tx: &rusqlite::Transaction) -> rusqlite::Result<()> {
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
    Ok(())
}

/// Version 2: what `ingest` does now, done to the events stored before. Each run goes to the
/// agent its first `agent_start` (else `agent_end`) names, every event to its run's agent
/// (the name it was stored under kept as `attributes.agent_name`), and the agents left
/// without a run, such as the name a 0.0.3 SDK was initialised with, are gone.
fn attribute_to_runs(tx: &rusqlite::Transaction) -> rusqlite::Result<()> {
    let moved = tx
        .prepare(
            "SELECT run_id, named, first_seen FROM (
                SELECT r.run_id, r.agent_name, r.first_seen,
                       (SELECT e.agent_name FROM events e
                        WHERE e.run_id = r.run_id AND e.event_type IN ('agent_start', 'agent_end')
                        ORDER BY e.event_type = 'agent_start' DESC, e.timestamp, e.rowid LIMIT 1) AS named
                FROM runs r)
             WHERE named IS NOT NULL AND named != agent_name",
        )?
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (run_id, agent, first_seen) in moved {
        credit_run(tx, &run_id, &agent, &first_seen)?;
    }
    attribute_events(tx, None)?;
    forget_agents_without_runs(tx)
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
