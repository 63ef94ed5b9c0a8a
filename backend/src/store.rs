//! The SQLite database: one connection behind a mutex, used from blocking tasks.
//!
//! Every write keeps the totals (see `totals`) in the transaction that changes the events, so
//! totals and events never disagree, and every read a dashboard makes on open reads totals.

mod metrics;
mod schema;
mod totals;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Instant,
};

use rusqlite::{
    functions::FunctionFlags, params, params_from_iter, types::Value as Sql, Connection, OpenFlags, OptionalExtension,
    Row, Transaction,
};
use serde_json::Value;

pub use metrics::{Day, Range, Totals};

use crate::{
    ingest::Event as Incoming,
    model::{Agent, Event, Run, RunStatus},
};

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
    pub range: Range,
}

/// Which runs to list; every filter given must match.
#[derive(Debug, Default)]
pub struct RunFilter {
    pub agent: Option<String>,
    pub name: Option<String>,
    pub status: Option<RunStatus>,
    pub range: Range,
}

/// A run looked up by id or name: none, exactly one, or several to choose from.
pub enum Found {
    One(Box<Run>),
    None,
    Several(Vec<Run>),
}

/// Why a rename was refused.
pub enum RenameError {
    /// The agent already has a run of that name.
    Taken,
    Database(rusqlite::Error),
}

impl From<rusqlite::Error> for RenameError {
    fn from(e: rusqlite::Error) -> Self {
        RenameError::Database(e)
    }
}

/// A search counts its matches up to this many.
pub const COUNT_CAP: i64 = 1_000;
/// Up to this many index candidates, a search sorts them all; past `DENSE`, the phrase is so
/// common that it is checked on the newest events directly, without the index.
const FEW: i64 = 2_000;
const DENSE: i64 = 50_000;

/// How many events match: `total`, exactly, unless there are more than `COUNT_CAP` (`capped`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Count {
    pub total: i64,
    pub capped: bool,
}

/// At most this many events go to disk in one transaction.
const GROUP_EVENTS: usize = 20_000;

/// Where a waiting batch finds its answer.
type Slot = Arc<Mutex<Option<rusqlite::Result<(usize, usize)>>>>;
/// A batch waiting to be written, and where its answer goes.
type Waiting = (Vec<Incoming>, Slot);

#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    /// Batches waiting for the connection, in arrival order.
    pending: Arc<Mutex<Vec<Waiting>>>,
    written: Arc<LastWrite>,
    /// Idle read connections.
    readers: Arc<Mutex<Vec<Connection>>>,
    path: PathBuf,
}

/// At most this many idle read connections are kept.
const READERS: usize = 4;

/// When batches were last written: the indexer gives way while they keep coming.
struct LastWrite {
    start: Instant,
    at_ms: AtomicU64,
}

impl LastWrite {
    fn now(&self) {
        self.at_ms.store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn elapsed_ms(&self) -> u64 {
        (self.start.elapsed().as_millis() as u64).saturating_sub(self.at_ms.load(Ordering::Relaxed))
    }
}

/// A lock that a panicking holder left is still usable: every write is a transaction.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Store {
    pub fn open(path: &Path) -> rusqlite::Result<Store> {
        let mut conn = Connection::open(path)?;
        // WAL with synchronous=FULL: a batch is on disk before its response is sent.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // 32 MiB of pages: the indexes a batch touches stay in memory on a large database.
        conn.pragma_update(None, "cache_size", -32768)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.create_scalar_function(
            "gati_search_text",
            2,
            FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
            |ctx| Ok(search_text(&ctx.get::<String>(0)?, &ctx.get::<String>(1)?)),
        )?;
        conn.create_scalar_function(
            "gati_model",
            2,
            FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
            |ctx| Ok(stored_model(&ctx.get::<String>(0)?, &ctx.get::<String>(1)?)),
        )?;
        schema::open(&mut conn)?;
        let written = Arc::new(LastWrite { start: Instant::now(), at_ms: AtomicU64::new(0) });
        let store = Store {
            conn: Arc::new(Mutex::new(conn)),
            pending: Default::default(),
            written,
            readers: Default::default(),
            path: path.to_path_buf(),
        };
        spawn_indexer(&store);
        Ok(store)
    }

    /// Runs writes on the one writing connection.
    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
        f(&mut lock(&self.conn))
    }

    /// Runs reads on a connection of their own, in one read transaction: in WAL mode they
    /// see the last commit and never wait for a batch or the indexer being written.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
        let idle = lock(&self.readers).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let conn = Connection::open_with_flags(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
                conn.busy_timeout(std::time::Duration::from_secs(5))?;
                conn.pragma_update(None, "cache_size", -8192)?;
                conn
            }
        };
        let result = conn.unchecked_transaction().and_then(|tx| {
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        });
        let mut readers = lock(&self.readers);
        if readers.len() < READERS {
            readers.push(conn);
        }
        result
    }

    /// Whether the database file is there and readable at this schema, and how many events
    /// the search index has yet to take in. It opens a connection of its own, so it answers
    /// while the main one is busy, and never creates a missing file.
    pub fn health(&self) -> Result<i64, String> {
        let check = || -> rusqlite::Result<(i64, i64)> {
            let conn = Connection::open_with_flags(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
            conn.busy_timeout(std::time::Duration::from_secs(2))?;
            let version = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
            let pending = conn.query_row(
                "SELECT (SELECT coalesce(max(id), 0) FROM events) - indexed_up_to FROM search_index",
                [],
                |r| r.get(0),
            )?;
            Ok((version, pending))
        };
        match check() {
            Ok((version, pending)) if version >= schema::SCHEMA_VERSION => Ok(pending),
            Ok((version, _)) => Err(format!(
                "the database {} has schema version {version}, not {}",
                self.path.display(),
                schema::SCHEMA_VERSION
            )),
            Err(e) => Err(format!("the database {} cannot be read: {e}", self.path.display())),
        }
    }

    /// Stores a validated batch; returns (stored, already known) once it is committed.
    ///
    /// Batches that arrive while another is being written wait for it, then go to disk
    /// together, in one transaction (group commit): one sync and one search-index flush for
    /// all, so concurrent clients do not each pay for them. Each batch still counts alone.
    pub fn ingest(&self, events: Vec<Incoming>) -> rusqlite::Result<(usize, usize)> {
        let slot: Slot = Arc::new(Mutex::new(None));
        lock(&self.pending).push((events, slot.clone()));
        let mut conn = lock(&self.conn);
        if let Some(done) = lock(&slot).take() {
            return done; // a batch before ours wrote it with its own
        }
        let mut group = Vec::new();
        {
            let mut pending = lock(&self.pending);
            let mut size = 0;
            while !pending.is_empty() && (group.is_empty() || size + pending[0].0.len() <= GROUP_EVENTS) {
                let (events, slot) = pending.remove(0);
                size += events.len();
                group.push((events, slot));
            }
        }
        let batches: Vec<&[Incoming]> = group.iter().map(|(events, _)| events.as_slice()).collect();
        let results = match write(&mut conn, &batches) {
            Ok(counts) => counts.into_iter().map(Ok).collect(),
            // Alone, each batch gets its own answer.
            Err(_) if batches.len() > 1 => batches.iter().map(|b| write(&mut conn, &[b]).map(|c| c[0])).collect(),
            Err(e) => vec![Err(e)],
        };
        self.written.now();
        for ((_, s), result) in group.iter().zip(results) {
            *lock(s) = Some(result);
        }
        drop(conn);
        let done = lock(&slot).take();
        done.unwrap_or_else(|| self.ingest_again(slot))
    }

    /// Our batch was left for a later group (the one before was full): write it now.
    fn ingest_again(&self, slot: Slot) -> rusqlite::Result<(usize, usize)> {
        let mut conn = lock(&self.conn);
        if let Some(done) = lock(&slot).take() {
            return done;
        }
        let events = {
            let mut pending = lock(&self.pending);
            let at = pending.iter().position(|(_, s)| Arc::ptr_eq(s, &slot)).expect("an unanswered batch is pending");
            pending.remove(at).0
        };
        write(&mut conn, &[&events]).map(|c| c[0])
    }

    /// Brings the search index up to date; how many events it took in.
    #[cfg(test)]
    pub fn catch_up(&self) -> rusqlite::Result<i64> {
        self.with(|conn| index_pending(conn, None))
    }

    /// Agents, most recently active first, and how many there are.
    pub fn agents(&self, page: Page) -> rusqlite::Result<(Vec<Agent>, i64)> {
        self.read(|conn| {
            let total: i64 = conn.query_row("SELECT count(*) FROM agents", [], |r| r.get(0))?;
            let mut stmt = conn.prepare_cached(&format!(
                "{AGENT_SELECT} ORDER BY last_event_at IS NULL, last_event_at DESC, name LIMIT ?1 OFFSET ?2"
            ))?;
            let agents =
                stmt.query_map(params![page.limit, page.offset], agent_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((agents, total))
        })
    }

    /// One agent with its totals; `None` if the agent is unknown.
    pub fn agent(&self, name: &str) -> rusqlite::Result<Option<Agent>> {
        self.read(|conn| conn.query_row(&format!("{AGENT_SELECT} WHERE name = ?1"), [name], agent_row).optional())
    }

    /// Runs matching the filter, newest first, and how many match; `None` if the filter names
    /// an agent that does not exist.
    pub fn runs(&self, filter: &RunFilter, page: Page) -> rusqlite::Result<Option<(Vec<Run>, i64)>> {
        self.read(|conn| {
            if let Some(agent) = &filter.agent {
                if !agent_exists(conn, agent)? {
                    return Ok(None);
                }
            }
            let (condition, mut args) = run_condition(filter);
            let total: i64 = conn.query_row(
                &format!("SELECT count(*) FROM runs WHERE {condition}"),
                params_from_iter(&args),
                |r| r.get(0),
            )?;
            args.extend([Sql::Integer(page.limit.into()), Sql::Integer(page.offset.into())]);
            let mut stmt = conn.prepare_cached(&format!(
                "{RUN_SELECT} WHERE {condition} ORDER BY started_at DESC, run_id LIMIT ? OFFSET ?"
            ))?;
            let runs = stmt.query_map(params_from_iter(&args), run_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Some((runs, total)))
        })
    }

    /// A run by id (of `agent`, if given), or else by its name if only one run has it.
    pub fn find_run(&self, agent: Option<&str>, id_or_name: &str) -> rusqlite::Result<Found> {
        self.read(|conn| {
            let by_id = conn
                .prepare_cached(&format!("{RUN_SELECT} WHERE run_id = ?1 AND (?2 IS NULL OR agent_name = ?2)"))?
                .query_row(params![id_or_name, agent], run_row)
                .optional()?;
            if let Some(run) = by_id {
                return Ok(Found::One(Box::new(run)));
            }
            let mut runs = conn
                .prepare_cached(&format!(
                    "{RUN_SELECT} WHERE run_name = ?1 AND (?2 IS NULL OR agent_name = ?2)
                     ORDER BY started_at DESC, run_id LIMIT 20"
                ))?
                .query_map(params![id_or_name, agent], run_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(match runs.len() {
                0 => Found::None,
                1 => Found::One(Box::new(runs.remove(0))),
                _ => Found::Several(runs),
            })
        })
    }

    /// A run's events in time order.
    pub fn run_events(&self, run_id: &str) -> rusqlite::Result<Vec<Event>> {
        self.read(|conn| {
            conn.prepare_cached(&format!("{EVENT_SELECT} WHERE e.run_id = ?1 ORDER BY e.timestamp, e.id"))?
                .query_map([run_id], event_row)?
                .collect()
        })
    }

    pub fn event(&self, event_id: &str) -> rusqlite::Result<Option<Event>> {
        self.read(|conn| {
            conn.prepare_cached(&format!("{EVENT_SELECT} WHERE e.event_id = ?1"))?
                .query_row([event_id], event_row)
                .optional()
        })
    }

    /// The events of its run whose parent it is, in time order; `None` if the event is unknown.
    pub fn children(&self, event_id: &str) -> rusqlite::Result<Option<Vec<Event>>> {
        self.read(|conn| {
            let run: Option<String> = conn
                .prepare_cached("SELECT run_id FROM events WHERE event_id = ?1")?
                .query_row([event_id], |r| r.get(0))
                .optional()?;
            let Some(run) = run else { return Ok(None) };
            let children = conn
                .prepare_cached(&format!(
                    "{EVENT_SELECT} WHERE e.run_id = ?1 AND e.parent_event_id = ?2 ORDER BY e.timestamp, e.id"
                ))?
                .query_map(params![run, event_id], event_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Some(children))
        })
    }

    /// Events matching every given filter, newest first, and how many match (counted up to
    /// `COUNT_CAP`: the count says whether it stopped there).
    ///
    /// Text is looked up in the search index (the words of `q` as a phrase, the last one a
    /// prefix), and each candidate is checked to hold `q` itself, case-insensitively: the index
    /// finds, the check keeps the meaning "contains this text". Events the indexer has not
    /// reached yet are checked directly, so a search finds everything stored. A phrase so common
    /// that the index would list much of the database is checked on the newest events instead,
    /// in time order, which finds a page of them at once; so are the few events of one run.
    pub fn search(&self, filter: &EventFilter, page: Page) -> rusqlite::Result<(Vec<Event>, Count)> {
        let mut conditions = Vec::new();
        let mut args = Vec::new();
        let mut add = |condition: &str, value: &Option<String>| {
            if let Some(value) = value {
                conditions.push(condition.to_string());
                args.push(Sql::Text(value.clone()));
            }
        };
        add("e.agent_name = ?", &filter.agent);
        add("e.event_type = ?", &filter.event_type);
        add("e.run_id = ?", &filter.run_id);
        add("e.run_id IN (SELECT run_id FROM runs WHERE run_name = ?)", &filter.run_name);
        add("e.timestamp >= ?", &filter.range.since);
        add("e.timestamp < ?", &filter.range.until);
        self.read(|conn| {
            // The text's conditions: for counting, and for the page in time order.
            let (mut count_only, mut page_only) = (None, None);
            if let Some(text) = &filter.text {
                if let (Some(words), None) = (fts_query(text), &filter.run_id) {
                    // The index is asked once; its candidates are handed to both queries.
                    let indexed: i64 = conn.query_row("SELECT indexed_up_to FROM search_index", [], |r| r.get(0))?;
                    let candidates = conn
                        .prepare_cached("SELECT rowid FROM events_fts WHERE events_fts MATCH ?1 LIMIT ?2")?
                        .query_map(params![words, DENSE + 1], |r| r.get::<_, i64>(0))?
                        .collect::<rusqlite::Result<Vec<_>>>()?;
                    if candidates.len() as i64 <= DENSE {
                        let found =
                            "e.id IN (SELECT value FROM json_each(?) UNION ALL SELECT id FROM events WHERE id > ?)";
                        let values =
                            vec![Sql::Text(Value::from(candidates.clone()).to_string()), Sql::Integer(indexed)];
                        count_only = Some((found.to_string(), values.clone()));
                        // Few candidates: fetch them all and sort them. More: walk the events in
                        // time order and keep those among them (`+` keeps SQLite from driving
                        // the query by the candidates), which finds a page after a few.
                        let walk = if candidates.len() as i64 <= FEW { found.to_string() } else { format!("+{found}") };
                        page_only = Some((walk, values));
                    }
                }
                conditions
                    .push("(instr(lower(e.data), lower(?)) > 0 OR instr(lower(e.attributes), lower(?)) > 0)".into());
                args.extend([Sql::Text(text.clone()), Sql::Text(text.clone())]);
            }
            let with = |extra: &Option<(String, Vec<Sql>)>| {
                let mut all = conditions.clone();
                let mut values = args.clone();
                if let Some((condition, more)) = extra {
                    all.push(condition.clone());
                    values.extend(more.iter().cloned());
                }
                (if all.is_empty() { "1".to_string() } else { all.join(" AND ") }, values)
            };
            let (condition, values) = with(&count_only);
            let counted: i64 = conn.query_row(
                &format!("SELECT count(*) FROM (SELECT 1 FROM events e WHERE {condition} LIMIT {})", COUNT_CAP + 1),
                params_from_iter(&values),
                |r| r.get(0),
            )?;
            let (condition, mut values) = with(&page_only);
            values.extend([Sql::Integer(page.limit.into()), Sql::Integer(page.offset.into())]);
            let events = conn
                .prepare_cached(&format!(
                    "{EVENT_SELECT} WHERE {condition} ORDER BY e.timestamp DESC, e.id DESC LIMIT ? OFFSET ?"
                ))?
                .query_map(params_from_iter(&values), event_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((events, Count { total: counted.min(COUNT_CAP), capped: counted > COUNT_CAP }))
        })
    }

    /// Deletes an agent with its runs, events and totals; `None` if it is unknown, else how
    /// many runs and events went.
    pub fn delete_agent(&self, name: &str) -> rusqlite::Result<Option<(i64, i64)>> {
        self.with(|conn| {
            let tx = conn.transaction()?;
            let counts: Option<(i64, i64)> = tx
                .query_row("SELECT run_count, event_count FROM agents WHERE name = ?1", [name], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            if counts.is_some() {
                tx.execute("DELETE FROM events WHERE agent_name = ?1", [name])?;
                tx.execute("DELETE FROM runs WHERE agent_name = ?1", [name])?;
                tx.execute("DELETE FROM daily_totals WHERE agent_name = ?1", [name])?;
                tx.execute("DELETE FROM agents WHERE name = ?1", [name])?;
            }
            tx.commit()?;
            Ok(counts)
        })
    }

    /// Deletes a run with its events and totals; how many events went. Its agent stays.
    pub fn delete_run(&self, run_id: &str) -> rusqlite::Result<i64> {
        self.with(|conn| {
            let tx = conn.transaction()?;
            let deleted = delete_runs(&tx, "run_id = ?1", params![run_id])?;
            tx.commit()?;
            Ok(deleted.1)
        })
    }

    /// Names a run anew; the run as it is now.
    pub fn rename_run(&self, run_id: &str, new_name: &str) -> Result<Run, RenameError> {
        self.with(|conn| {
            let tx = conn.transaction()?;
            let taken: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM runs WHERE run_name = ?2 AND run_id != ?1
                    AND agent_name = (SELECT agent_name FROM runs WHERE run_id = ?1))",
                params![run_id, new_name],
                |r| r.get(0),
            )?;
            if taken {
                return Ok(Err(RenameError::Taken));
            }
            tx.execute("UPDATE runs SET run_name = ?2 WHERE run_id = ?1", params![run_id, new_name])?;
            let run = tx.query_row(&format!("{RUN_SELECT} WHERE run_id = ?1"), [run_id], run_row)?;
            tx.commit()?;
            Ok(Ok(run))
        })
        .map_err(RenameError::Database)?
    }

    /// Retention: deletes the runs whose last event is before `cutoff`, with their events and
    /// totals, and the agents left without runs; how many runs went.
    pub fn sweep(&self, cutoff: &str) -> rusqlite::Result<i64> {
        self.with(|conn| {
            let tx = conn.transaction()?;
            let (runs, _) = delete_runs(&tx, "last_event_at < ?1", params![cutoff])?;
            if runs > 0 {
                forget_agents_without_runs(&tx)?;
            }
            tx.commit()?;
            Ok(runs)
        })
    }
}

/// A group of batches in one transaction; (stored, already known) of each.
///
/// Every event is stored under its run's agent (see `ensure_run`), so that agent lists,
/// totals and agent filters agree. The agent the SDK named, when it is another one (the 0.0.3
/// SDK stamps the events inside an agent's run with the name given to `observe.init`), is kept
/// as the event's `attributes.agent_name`.
fn write(conn: &mut Connection, batches: &[&[Incoming]]) -> rusqlite::Result<Vec<(usize, usize)>> {
    let tx = conn.transaction()?;
    let mut counts = Vec::with_capacity(batches.len());
    for events in batches {
        counts.push(write_batch(&tx, events)?);
    }
    tx.commit()?;
    Ok(counts)
}

fn write_batch(tx: &Transaction, events: &[Incoming]) -> rusqlite::Result<(usize, usize)> {
    // The agent each run of the batch is of, if the batch says: the one its agent_start names,
    // else its agent_end. A run is created under it whichever event comes first.
    let mut named: HashMap<&str, &str> = HashMap::new();
    for kind in AGENT_EVENTS {
        for e in events.iter().filter(|e| e.event_type == kind) {
            named.entry(&e.run_id).or_insert(&e.agent_name);
        }
    }
    // First every run's agent, creating and moving runs (with their totals), so that each
    // event is then counted once, under its final agent.
    let mut agents: HashMap<&str, (String, bool)> = HashMap::new();
    for e in events {
        if let Some((_, has_name)) = agents.get(e.run_id.as_str()) {
            if *has_name || e.run_name.is_none() {
                continue;
            }
        }
        let resolved = ensure_run(tx, e, named.get(e.run_id.as_str()).copied())?;
        agents.insert(&e.run_id, resolved);
    }
    let mut batch = totals::BatchTotals::default();
    let mut stored = 0;
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO events (event_id, run_id, agent_name, event_type, timestamp,
            parent_event_id, data, previous_event_id, attributes,
            tokens_in, tokens_out, total_tokens, cost, duration_ms, error, model)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?;
    for e in events {
        let agent = &agents[e.run_id.as_str()].0;
        let attributes =
            if *agent == e.agent_name { e.attributes.clone() } else { with_sent_agent(&e.attributes, &e.agent_name) };
        let m = &e.metrics;
        let inserted = insert.execute(params![
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
            m.error,
            e.model
        ])?;
        if inserted == 1 {
            batch.add(e, agent);
            stored += 1;
        }
    }
    batch.apply(tx)?;
    Ok((stored, events.len() - stored))
}

/// Puts up to `limit` events (all, if `None`) that the search index does not hold yet into it,
/// in one transaction; how many.
///
/// Apart from ingest: the words of an event cost more to index than the rest of storing it,
/// and FTS5 writes its pending terms at each statement that touches it, so indexing a chunk
/// at once is cheaper than event by event, and batches are acknowledged without waiting for it.
fn index_pending(conn: &mut Connection, limit: Option<i64>) -> rusqlite::Result<i64> {
    let tx = conn.transaction()?;
    let (from, last): (i64, i64) =
        tx.query_row("SELECT indexed_up_to, (SELECT coalesce(max(id), 0) FROM events) FROM search_index", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let to = limit.map_or(last, |limit| last.min(from + limit));
    if to <= from {
        return Ok(0);
    }
    tx.prepare_cached("UPDATE search_index SET indexed_up_to = ?1")?.execute([to])?;
    tx.prepare_cached(
        "INSERT INTO events_fts(rowid, text) SELECT id, gati_search_text(data, attributes) FROM events
         WHERE id > ?1 AND id <= ?2",
    )?
    .execute([from, to])?;
    tx.commit()?;
    Ok(to - from)
}

/// How often the indexer looks for events to index, and how many it takes at once (so that a
/// batch waits for it at most about a tenth of a second).
const INDEX_EVERY: std::time::Duration = std::time::Duration::from_millis(200);
const INDEX_CHUNK: i64 = 5_000;
/// The indexer waits while a batch came less than this long ago (batches first: a burst is
/// acknowledged at the speed of storing alone and indexed once it has passed), unless it is this
/// far behind. A search meanwhile reads the events it has not reached directly.
const QUIET_MS: u64 = 300;
const MAX_BACKLOG: i64 = 1_000_000;

/// Indexes new events in the background, giving way to batches waiting to be written. It
/// holds the store weakly and ends with it.
fn spawn_indexer(store: &Store) {
    let (conn, pending, written) =
        (Arc::downgrade(&store.conn), Arc::downgrade(&store.pending), Arc::downgrade(&store.written));
    let indexer = move || loop {
        std::thread::sleep(INDEX_EVERY);
        loop {
            let (Some(conn), Some(pending), Some(written)) = (conn.upgrade(), pending.upgrade(), written.upgrade())
            else {
                return;
            };
            // Batches first: while they keep coming, the index waits (a search still finds
            // what it has not reached), unless it falls far behind.
            let backlog = lock(&conn).query_row(
                "SELECT (SELECT coalesce(max(id), 0) FROM events) - indexed_up_to FROM search_index",
                [],
                |r| r.get::<_, i64>(0),
            );
            let busy = !lock(&pending).is_empty() || written.elapsed_ms() < QUIET_MS;
            if busy && backlog.as_ref().is_ok_and(|b| *b < MAX_BACKLOG) {
                break;
            }
            let indexed = index_pending(&mut lock(&conn), Some(INDEX_CHUNK));
            match indexed {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    eprintln!("search index: {e}");
                    break;
                }
            }
        }
    };
    std::thread::Builder::new().name("search-index".into()).spawn(indexer).expect("starting the search indexer");
}

/// Deletes the runs matching `condition` with their events, then recomputes their agents'
/// totals and the days they covered; (runs, events) deleted.
fn delete_runs(tx: &Transaction, condition: &str, args: impl rusqlite::Params + Clone) -> rusqlite::Result<(i64, i64)> {
    let spans = tx
        .prepare(&format!(
            "SELECT agent_name, min(started_at), max(coalesce(last_event_at, started_at)), count(*)
             FROM runs WHERE {condition} GROUP BY agent_name"
        ))?
        .query_map(args.clone(), |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get(3)?))
        })?
        .collect::<rusqlite::Result<Vec<(String, String, String, i64)>>>()?;
    if spans.is_empty() {
        return Ok((0, 0));
    }
    let events = tx.execute(
        &format!("DELETE FROM events WHERE run_id IN (SELECT run_id FROM runs WHERE {condition})"),
        args.clone(),
    )?;
    tx.execute(&format!("DELETE FROM runs WHERE {condition}"), args)?;
    for (agent, first, last, _) in &spans {
        totals::recompute_agent(tx, agent)?;
        totals::recompute_days(tx, agent, first, last)?;
    }
    Ok((spans.iter().map(|s| s.3).sum(), events as i64))
}

fn agent_exists(conn: &Connection, agent: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM agents WHERE name = ?1)")?.query_row([agent], |r| r.get(0))
}

fn run_condition(filter: &RunFilter) -> (String, Vec<Sql>) {
    let mut conditions = vec!["1".to_string()];
    let mut args = Vec::new();
    let mut add = |condition: &str, value: Option<String>| {
        if let Some(value) = value {
            conditions.push(condition.to_string());
            args.push(Sql::Text(value));
        }
    };
    add("agent_name = ?", filter.agent.clone());
    add("run_name = ?", filter.name.clone());
    add("status = ?", filter.status.map(|s| s.as_str().to_string()));
    // In the range: it started before its end and had an event after its start.
    add("started_at < ?", filter.range.until.clone());
    add("coalesce(last_event_at, started_at) >= ?", filter.range.since.clone());
    (conditions.join(" AND "), args)
}

/// The FTS5 query for `text`: its words as a phrase, the last one a prefix (`"rate limit exc" *`);
/// `None` if it has no word the index holds.
fn fts_query(text: &str) -> Option<String> {
    let words: Vec<&str> = text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    (!words.is_empty()).then(|| format!("\"{}\" *", words.join(" ")))
}

/// The text the search index holds for an event: every key and value of its `data` and
/// `attributes`, strings unescaped (a prompt's `\n` separates words, as it did when written).
fn search_text(data: &str, attributes: &str) -> String {
    fn walk(value: &Value, out: &mut String) {
        match value {
            Value::Object(object) => {
                for (key, value) in object {
                    out.push_str(key);
                    out.push(' ');
                    walk(value, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            Value::String(s) => {
                out.push_str(s);
                out.push(' ');
            }
            Value::Number(n) => {
                out.push_str(&n.to_string());
                out.push(' ');
            }
            Value::Bool(_) | Value::Null => {}
        }
    }
    let mut out = String::with_capacity(data.len() + attributes.len());
    for text in [data, attributes] {
        match serde_json::from_str::<Value>(text) {
            Ok(value) => walk(&value, &mut out),
            Err(_) => out.push_str(text),
        }
    }
    out
}

/// The model a stored event names (its `data` and `attributes` as text), as ingest reads it.
fn stored_model(data: &str, attributes: &str) -> Option<String> {
    let object = |text: &str| match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(object)) => object,
        _ => Default::default(),
    };
    crate::ingest::model(&object(attributes), &object(data))
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
/// the agent the run (and so the event) is credited to, and whether the run has a name.
///
/// A run is its agent's: the one its `agent_start` (or `agent_end`) names, wherever in the
/// batch that is (`named`), else the agent of its first event. A run first seen without either
/// moves, with its events and totals, to the agent named by the first batch that brings one.
///
/// A `temp_…` name (the 0.0.3 SDK's "number it for me") becomes `run N`, the next number among
/// the agent's runs, as the upstream backend did.
fn ensure_run(tx: &Transaction, e: &Incoming, named: Option<&str>) -> rusqlite::Result<(String, bool)> {
    let existing: Option<(String, Option<String>)> = tx
        .prepare_cached("SELECT agent_name, run_name FROM runs WHERE run_id = ?1")?
        .query_row([&e.run_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((mut agent, name)) = existing else {
        let agent = named.unwrap_or(&e.agent_name);
        tx.prepare_cached("INSERT OR IGNORE INTO agents (name, first_seen) VALUES (?1, ?2)")?
            .execute(params![agent, e.timestamp])?;
        let name = run_name(tx, agent, e.run_name.as_deref())?;
        tx.prepare_cached(
            "INSERT INTO runs (run_id, agent_name, first_seen, run_name, started_at) VALUES (?1, ?2, ?3, ?4, ?3)",
        )?
        .execute(params![e.run_id, agent, e.timestamp, name])?;
        // A new run is active until its agent_end arrives.
        tx.prepare_cached(
            "UPDATE agents SET run_count = run_count + 1, active_runs = active_runs + 1 WHERE name = ?1",
        )?
        .execute([agent])?;
        return Ok((agent.to_string(), name.is_some()));
    };
    if let Some(named) = named.filter(|named| *named != agent) {
        if !has_agent_event(tx, &e.run_id)? {
            let span = totals::run_span(tx, &e.run_id)?;
            credit_run(tx, &e.run_id, named, &e.timestamp)?;
            for moved in [agent.as_str(), named] {
                totals::recompute_agent(tx, moved)?;
                if let Some((first, last)) = &span {
                    totals::recompute_days(tx, moved, first, last)?;
                }
            }
            forget_agents_without_runs(tx)?;
            agent = named.to_string();
        }
    }
    if name.is_some() {
        return Ok((agent, true));
    }
    let Some(name) = run_name(tx, &agent, e.run_name.as_deref())? else { return Ok((agent, false)) };
    tx.prepare_cached("UPDATE runs SET run_name = ?2 WHERE run_id = ?1 AND run_name IS NULL")?
        .execute(params![e.run_id, name])?;
    Ok((agent, true))
}

/// The name a run of `agent` gets from the name sent: `temp_…` is numbered.
fn run_name(tx: &Transaction, agent: &str, sent: Option<&str>) -> rusqlite::Result<Option<String>> {
    match sent {
        Some(temporary) if temporary.starts_with("temp_") => next_run_number(tx, agent).map(Some),
        other => Ok(other.map(String::from)),
    }
}

fn next_run_number(tx: &Transaction, agent: &str) -> rusqlite::Result<String> {
    let last: i64 = tx
        .prepare_cached(
            "SELECT coalesce(max(CAST(substr(run_name, 5) AS INTEGER)), 0) FROM runs
             WHERE agent_name = ?1 AND run_name GLOB 'run [0-9]*' AND substr(run_name, 5) NOT GLOB '*[^0-9]*'",
        )?
        .query_row([agent], |r| r.get(0))?;
    Ok(format!("run {}", last + 1))
}

/// Whether the run holds an `agent_start` or `agent_end`, which decided its agent.
fn has_agent_event(tx: &Transaction, run_id: &str) -> rusqlite::Result<bool> {
    tx.prepare_cached("SELECT agent_starts + agent_ends > 0 FROM runs WHERE run_id = ?1")?
        .query_row([run_id], |r| r.get(0))
}

/// Moves a run, with its events, to `agent`. A `run N` name the agent already has is numbered
/// anew. (Totals are the caller's: a migration recomputes them all afterwards.)
fn credit_run(tx: &Transaction, run_id: &str, agent: &str, first_seen: &str) -> rusqlite::Result<()> {
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
fn attribute_events(tx: &Transaction, run_id: Option<&str>) -> rusqlite::Result<usize> {
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
fn forget_agents_without_runs(tx: &Transaction) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM agents WHERE NOT EXISTS (SELECT 1 FROM runs WHERE runs.agent_name = agents.name)")?
        .execute([])?;
    tx.prepare_cached(
        "DELETE FROM daily_totals WHERE NOT EXISTS (SELECT 1 FROM agents WHERE agents.name = daily_totals.agent_name)",
    )?
    .execute([])?;
    Ok(())
}

/// Version 2's migration: what `ingest` does now, done to the events stored before. Each run
/// goes to the agent its first `agent_start` (else `agent_end`) names, every event to its
/// run's agent (the name it was stored under kept as `attributes.agent_name`), and the agents
/// left without a run, such as the name a 0.0.3 SDK was initialised with, are gone.
fn attribute_to_runs(tx: &Transaction) -> rusqlite::Result<()> {
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

const AGENT_SELECT: &str = "SELECT name, first_seen, run_count, event_count, active_runs, last_event_at, tokens_in,
        tokens_out, total_tokens, total_cost, duration_ms, error_count
    FROM agents";

fn agent_row(r: &Row) -> rusqlite::Result<Agent> {
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

const RUN_SELECT: &str = "SELECT run_id, run_name, agent_name, status, coalesce(started_at, first_seen),
        last_event_at, ended_at, event_count, tokens_in, tokens_out, total_tokens, total_cost, duration_ms,
        error_count
    FROM runs";

fn run_row(r: &Row) -> rusqlite::Result<Run> {
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
    })
}

const EVENT_SELECT: &str = "SELECT e.event_id, e.run_id, r.run_name, e.agent_name, e.event_type, e.timestamp,
        e.parent_event_id, e.previous_event_id, e.data, e.attributes,
        e.tokens_in, e.tokens_out, e.total_tokens, e.cost, e.duration_ms, e.error, e.model
    FROM events e LEFT JOIN runs r ON r.run_id = e.run_id";

fn event_row(r: &Row) -> rusqlite::Result<Event> {
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

#[cfg(test)]
mod tests;
