//! The database's schema, and the migrations that bring a database of an older gati to it.
//!
//! Totals live beside what they count and are written in the same transaction: each run's in
//! its `runs` row, each agent's in its `agents` row, and per UTC day, agent and model in
//! `daily_totals`. Search is an FTS5 index of the words in the events' `data` and `attributes`
//! (keys and values, JSON escapes undone: `gati_search_text`). New events are indexed in chunks
//! after their batch is committed (see `Store::index_pending`), and always before a search;
//! triggers keep the index when indexed events change or go.

use rusqlite::{params, Connection, Transaction};
use serde_json::Value;

use super::{latency, totals};
use crate::ingest;

/// `PRAGMA user_version` of this schema: 1 once every event's metrics columns are filled, 2
/// once every event is stored under its run's agent, 3 once totals, models and the search index
/// are kept as events arrive, 4 once event ids are never reused (the indexer's high-water mark
/// relies on it) and the index folds case and diacritics beyond ASCII, 5 once each run knows
/// its session, 6 once latency histograms are kept.
pub const SCHEMA_VERSION: i64 = 6;

const TABLES: &str = "
CREATE TABLE IF NOT EXISTS agents (
    name            TEXT PRIMARY KEY,
    first_seen      TEXT NOT NULL,
    run_count       INTEGER NOT NULL DEFAULT 0,
    active_runs     INTEGER NOT NULL DEFAULT 0,
    event_count     INTEGER NOT NULL DEFAULT 0,
    tokens_in       INTEGER NOT NULL DEFAULT 0,
    tokens_out      INTEGER NOT NULL DEFAULT 0,
    total_tokens    INTEGER NOT NULL DEFAULT 0,
    total_cost      REAL NOT NULL DEFAULT 0,
    error_count     INTEGER NOT NULL DEFAULT 0,
    duration_ms     REAL NOT NULL DEFAULT 0,
    last_event_at   TEXT
);
CREATE TABLE IF NOT EXISTS runs (
    run_id          TEXT PRIMARY KEY,
    agent_name      TEXT NOT NULL REFERENCES agents(name),
    first_seen      TEXT NOT NULL,
    run_name        TEXT,
    event_count     INTEGER NOT NULL DEFAULT 0,
    tokens_in       INTEGER NOT NULL DEFAULT 0,
    tokens_out      INTEGER NOT NULL DEFAULT 0,
    total_tokens    INTEGER NOT NULL DEFAULT 0,
    total_cost      REAL NOT NULL DEFAULT 0,
    error_count     INTEGER NOT NULL DEFAULT 0,
    started_at      TEXT,
    last_event_at   TEXT,
    max_duration_ms REAL NOT NULL DEFAULT 0,
    agent_starts    INTEGER NOT NULL DEFAULT 0,
    agent_ends      INTEGER NOT NULL DEFAULT 0,
    ended_at        TEXT,
    end_error       INTEGER NOT NULL DEFAULT 0,
    duration_ms     REAL GENERATED ALWAYS AS (DURATION_MS) VIRTUAL,
    status          TEXT GENERATED ALWAYS AS (STATUS) VIRTUAL,
    session_id      TEXT
);
-- AUTOINCREMENT: an id freed by a delete is never given again, so every new event is above
-- the search index's high-water mark (`search_index`).
CREATE TABLE IF NOT EXISTS events (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id          TEXT NOT NULL UNIQUE,
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
    error             INTEGER NOT NULL DEFAULT 0,
    model             TEXT
);
CREATE TABLE IF NOT EXISTS daily_totals (
    day             TEXT NOT NULL,
    agent_name      TEXT NOT NULL,
    model           TEXT NOT NULL DEFAULT '',
    events          INTEGER NOT NULL DEFAULT 0,
    tokens_in       INTEGER NOT NULL DEFAULT 0,
    tokens_out      INTEGER NOT NULL DEFAULT 0,
    total_tokens    INTEGER NOT NULL DEFAULT 0,
    cost            REAL NOT NULL DEFAULT 0,
    errors          INTEGER NOT NULL DEFAULT 0,
    duration_ms     REAL NOT NULL DEFAULT 0,
    timed           INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, agent_name, model)
) WITHOUT ROWID;
-- The search index holds the events up to this id; the ones above wait for the indexer.
CREATE TABLE IF NOT EXISTS search_index (indexed_up_to INTEGER NOT NULL);
INSERT INTO search_index SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM search_index);
";

/// A run lasts from its first to its last event, or as long as its longest event says it
/// took, whichever is longer (to the microsecond).
const DURATION_MS: &str =
    "max(coalesce(round((julianday(last_event_at) - julianday(started_at)) * 86400000.0, 3), 0.0), \
     max_duration_ms)";
/// Ended once it has as many agent_end events as agent_start ones (at least one); failed if
/// its latest agent_end reports an error.
const STATUS: &str = "CASE WHEN agent_ends > 0 AND agent_ends >= agent_starts \
     THEN (CASE WHEN end_error THEN 'failed' ELSE 'completed' END) ELSE 'active' END";

/// Indexes for every filter and order the API offers, and the search index with its triggers.
/// (An event type is found along the time index: there are few types, each frequent, and every
/// index costs each stored event a write.)
const INDEXES: &str = "
CREATE INDEX IF NOT EXISTS events_by_run ON events(run_id, timestamp);
CREATE INDEX IF NOT EXISTS events_by_agent ON events(agent_name, timestamp);
CREATE INDEX IF NOT EXISTS events_by_time ON events(timestamp);
CREATE INDEX IF NOT EXISTS runs_by_agent ON runs(agent_name, started_at);
CREATE INDEX IF NOT EXISTS runs_by_start ON runs(started_at);
CREATE INDEX IF NOT EXISTS runs_by_name ON runs(run_name);
CREATE INDEX IF NOT EXISTS runs_by_last_event ON runs(last_event_at);
CREATE INDEX IF NOT EXISTS runs_by_session ON runs(session_id, started_at) WHERE session_id IS NOT NULL;
CREATE VIRTUAL TABLE IF NOT EXISTS events_fts USING fts5(
    text, content='', contentless_delete=1, tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS events_fts_delete AFTER DELETE ON events
WHEN old.id <= (SELECT indexed_up_to FROM search_index) BEGIN
    DELETE FROM events_fts WHERE rowid = old.id;
END;
CREATE TRIGGER IF NOT EXISTS events_fts_update AFTER UPDATE OF data, attributes ON events
WHEN old.id <= (SELECT indexed_up_to FROM search_index) BEGIN
    DELETE FROM events_fts WHERE rowid = old.id;
    INSERT INTO events_fts(rowid, text) VALUES (new.id, gati_search_text(new.data, new.attributes));
END;
";

/// Columns added since the first schema, for databases created before them. (The events'
/// `id` came with version 3, which rebuilds that table.)
const ADDED_COLUMNS: [(&str, &str, &str); 10] = [
    ("runs", "run_name", "TEXT"),
    ("events", "previous_event_id", "TEXT"),
    ("events", "attributes", "TEXT NOT NULL DEFAULT '{}'"),
    ("events", "tokens_in", "INTEGER"),
    ("events", "tokens_out", "INTEGER"),
    ("events", "total_tokens", "INTEGER"),
    ("events", "cost", "REAL"),
    ("events", "duration_ms", "REAL"),
    ("events", "error", "INTEGER NOT NULL DEFAULT 0"),
    ("runs", "session_id", "TEXT"),
];

/// The columns version 3 added to agents and runs, for databases of versions 1 and 2.
const TOTALS_COLUMNS: [(&str, &str, &str); 23] = [
    ("agents", "run_count", "INTEGER NOT NULL DEFAULT 0"),
    ("agents", "active_runs", "INTEGER NOT NULL DEFAULT 0"),
    ("agents", "event_count", "INTEGER NOT NULL DEFAULT 0"),
    ("agents", "tokens_in", "INTEGER NOT NULL DEFAULT 0"),
    ("agents", "tokens_out", "INTEGER NOT NULL DEFAULT 0"),
    ("agents", "total_tokens", "INTEGER NOT NULL DEFAULT 0"),
    ("agents", "total_cost", "REAL NOT NULL DEFAULT 0"),
    ("agents", "error_count", "INTEGER NOT NULL DEFAULT 0"),
    ("agents", "duration_ms", "REAL NOT NULL DEFAULT 0"),
    ("agents", "last_event_at", "TEXT"),
    ("runs", "event_count", "INTEGER NOT NULL DEFAULT 0"),
    ("runs", "tokens_in", "INTEGER NOT NULL DEFAULT 0"),
    ("runs", "tokens_out", "INTEGER NOT NULL DEFAULT 0"),
    ("runs", "total_tokens", "INTEGER NOT NULL DEFAULT 0"),
    ("runs", "total_cost", "REAL NOT NULL DEFAULT 0"),
    ("runs", "error_count", "INTEGER NOT NULL DEFAULT 0"),
    ("runs", "started_at", "TEXT"),
    ("runs", "last_event_at", "TEXT"),
    ("runs", "max_duration_ms", "REAL NOT NULL DEFAULT 0"),
    ("runs", "agent_starts", "INTEGER NOT NULL DEFAULT 0"),
    ("runs", "agent_ends", "INTEGER NOT NULL DEFAULT 0"),
    ("runs", "ended_at", "TEXT"),
    ("runs", "end_error", "INTEGER NOT NULL DEFAULT 0"),
];

fn tables() -> String {
    TABLES.replace("DURATION_MS", DURATION_MS).replace("STATUS", STATUS)
}

/// Creates the schema, or brings an older database to it, in one transaction: a migration that
/// fails leaves the database as it was.
pub fn open(conn: &mut Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(newer_schema(version));
    }
    let tx = conn.transaction()?;
    // An events table of an older version keeps its shape until version 3 rebuilds it; the
    // columns the migrations before fill are added first.
    tx.execute_batch(&tables())?;
    tx.execute_batch(latency::TABLE)?;
    add_columns(&tx, &ADDED_COLUMNS)?;
    add_columns(&tx, &TOTALS_COLUMNS)?;
    for (column, kind, expression) in [("duration_ms", "REAL", DURATION_MS), ("status", "TEXT", STATUS)] {
        // Generated columns are hidden from `pragma_table_info`; `pragma_table_xinfo` lists them.
        let present: bool =
            tx.query_row("SELECT count(*) FROM pragma_table_xinfo('runs') WHERE name = ?1", [column], |r| r.get(0))?;
        if !present {
            tx.execute_batch(&format!(
                "ALTER TABLE runs ADD COLUMN {column} {kind} GENERATED ALWAYS AS ({expression}) VIRTUAL"
            ))?;
        }
    }
    if version < 1 {
        add_metrics(&tx)?;
    }
    if version < 2 {
        super::write::attribute_to_runs(&tx)?;
    }
    if version < 3 {
        to_version_3(&tx)?;
    } else if version == 3 {
        to_version_4(&tx)?;
    }
    if version < 6 {
        to_version_6(&tx)?;
    }
    tx.execute_batch(INDEXES)?;
    if version < 5 {
        to_version_5(&tx)?;
    }
    if version < 4 {
        // The index anew, all of it, and the indexer told so: it goes on after the last event.
        tx.execute_batch(
            "INSERT INTO events_fts(rowid, text) SELECT id, gati_search_text(data, attributes) FROM events;
             UPDATE search_index SET indexed_up_to = (SELECT coalesce(max(id), 0) FROM events);",
        )?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()
}

fn has_column(tx: &Transaction, table: &str, column: &str) -> rusqlite::Result<bool> {
    tx.query_row(&format!("SELECT count(*) FROM pragma_table_info('{table}') WHERE name = ?1"), [column], |r| r.get(0))
}

fn add_columns(tx: &Transaction, columns: &[(&str, &str, &str)]) -> rusqlite::Result<()> {
    for (table, column, definition) in columns {
        if !has_column(tx, table, column)? {
            tx.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {definition}"))?;
        }
    }
    Ok(())
}

/// Version 1: computes every stored event's metrics with the same code that ingests new ones.
fn add_metrics(tx: &Transaction) -> rusqlite::Result<()> {
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

/// Version 3: the events table gets an `id` (the search index's key, which VACUUM keeps) and a
/// `model` (read as ingest reads it: `gati_model`); runs and agents get their totals, and
/// `daily_totals` is filled, all from the events.
fn to_version_3(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch("DROP VIEW IF EXISTS run_totals")?;
    if !has_column(tx, "events", "id")? {
        rebuild_events(tx)?;
    }
    // The totals are read from the events by run, day and agent: indexes first.
    tx.execute_batch(INDEXES)?;
    totals::recompute_all(tx)
}

/// The events of an older schema, copied in time order into the current table.
fn rebuild_events(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch(&format!(
        "DROP INDEX IF EXISTS events_by_run;
         DROP INDEX IF EXISTS events_by_agent;
         DROP INDEX IF EXISTS events_by_time;
         ALTER TABLE events RENAME TO events_before_v3;
         {}
         INSERT INTO events (event_id, run_id, agent_name, event_type, timestamp, parent_event_id, data,
                             previous_event_id, attributes, tokens_in, tokens_out, total_tokens, cost, duration_ms,
                             error, model)
         SELECT event_id, run_id, agent_name, event_type, timestamp, parent_event_id, data, previous_event_id,
                attributes, tokens_in, tokens_out, total_tokens, cost, duration_ms, error,
                gati_model(data, attributes)
         FROM events_before_v3 ORDER BY timestamp, rowid;
         DROP TABLE events_before_v3;",
        events_table()
    ))
}

/// Version 4: the events table of version 3 copied, ids kept, into one whose ids are never
/// reused; the search index made anew (its tokenizer folds diacritics now), by the caller;
/// the runs without events gone.
///
/// In version 3, deleting the newest run freed its ids for the next events, which the
/// indexer, past them already, never took in: the new index holds every event.
fn to_version_4(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch(&format!(
        "DROP INDEX IF EXISTS events_by_run;
         DROP INDEX IF EXISTS events_by_agent;
         DROP INDEX IF EXISTS events_by_time;
         ALTER TABLE events RENAME TO events_before_v4;
         {}
         INSERT INTO events (id, event_id, run_id, agent_name, event_type, timestamp, parent_event_id, data,
                             previous_event_id, attributes, tokens_in, tokens_out, total_tokens, cost, duration_ms,
                             error, model)
         SELECT id, event_id, run_id, agent_name, event_type, timestamp, parent_event_id, data, previous_event_id,
                attributes, tokens_in, tokens_out, total_tokens, cost, duration_ms, error, model
         FROM events_before_v4 ORDER BY id;
         DROP TABLE events_before_v4;
         DROP TABLE IF EXISTS events_fts;
         DELETE FROM runs WHERE NOT EXISTS (SELECT 1 FROM events WHERE events.run_id = runs.run_id);",
        events_table()
    ))?;
    // Version 3 made a run, and maybe an agent, of an event it then found to be a duplicate:
    // they go, and the totals follow.
    super::agents::forget_agents_without_runs(tx)?;
    totals::recompute_all(tx)
}

/// Version 5: each run's session, the first its events name (`attributes.session_id`, where
/// OTLP spans had it kept), else none.
fn to_version_5(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch(
        "UPDATE runs SET session_id = (
            SELECT CAST(json_extract(e.attributes, '$.session_id') AS TEXT) FROM events e
            WHERE e.run_id = runs.run_id AND json_valid(e.attributes)
              AND json_type(e.attributes, '$.session_id') IN ('text', 'integer')
              AND length(CAST(json_extract(e.attributes, '$.session_id') AS BLOB)) BETWEEN 1 AND 256
              AND trim(json_extract(e.attributes, '$.session_id')) != ''
            ORDER BY e.timestamp, e.id LIMIT 1)
         WHERE session_id IS NULL",
    )
}

/// Version 6: latency histograms per day, agent, model and tool (`daily_latency`, see
/// `latency`), from the events stored.
fn to_version_6(tx: &Transaction) -> rusqlite::Result<()> {
    latency::recompute_all(tx)
}

/// The refusal to open a database a newer gati wrote: its schema may mean what this binary
/// cannot know, and a write of ours could break it.
fn newer_schema(version: i64) -> rusqlite::Error {
    let message = format!(
        "the database has schema version {version}, newer than the {SCHEMA_VERSION} of this gati-backend {}: \
         a newer gati wrote it. Run that gati (or a newer one) on it, or point GATI_DATA_DIR at another \
         directory to start afresh",
        crate::VERSION
    );
    rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN), Some(message))
}

pub(super) fn events_table() -> String {
    let tables = tables();
    let start = tables.find("CREATE TABLE IF NOT EXISTS events").expect("the events table is in TABLES");
    let end = start + tables[start..].find(");").expect("the events table ends") + 2;
    tables[start..end].to_string()
}
