//! The SQLite database: one connection behind a mutex, used from blocking tasks.
//!
//! Every write keeps the totals (see `totals`) in the transaction that changes the events, so
//! totals and events never disagree, and every read a dashboard makes on open reads totals.
//!
//! `Store` is here, with its connections; what it does is one file per resource: `agents`,
//! `runs`, `events` (a run's events, one event, its children), `search`, `write` (ingest and
//! what it decides: a run's agent and name), `indexer` (the search index, kept in the
//! background), `rows` (SQL rows into the API's types), `metrics` (totals over time), `sessions`
//! (runs grouped by the conversation they are part of).

mod agents;
mod events;
mod indexer;
mod latency;
mod metrics;
mod rows;
mod runs;
mod schema;
mod search;
mod sessions;
mod totals;
mod write;

use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Instant,
};

use rusqlite::{functions::FunctionFlags, Connection, OpenFlags};
#[cfg(test)]
use serde_json::Value;

pub use latency::{By, Histogram, Latencies, RELATIVE_ERROR};
pub use metrics::{Day, Range, Totals};
pub use runs::{Found, RenameError, RunFilter};
#[cfg(test)]
use search::Count;
pub use search::EventFilter;
pub use sessions::SessionFilter;

#[cfg(test)]
use crate::model::RunStatus;

/// Page of a list: `limit` rows from `offset`.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub limit: u32,
    pub offset: u32,
}

#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    /// Batches waiting for the connection, in arrival order.
    pending: Arc<Mutex<Vec<write::Waiting>>>,
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

/// The functions our SQL calls: the search index's text and its check (`search`), and the
/// model an event names (for a migration).
fn functions(conn: &Connection) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("gati_search_text", 2, flags, |ctx| {
        Ok(search::search_text(&ctx.get::<String>(0)?, &ctx.get::<String>(1)?))
    })?;
    conn.create_scalar_function("gati_contains", 3, flags, |ctx| {
        Ok(search::contains(&ctx.get::<String>(0)?, &ctx.get::<String>(1)?, &ctx.get::<String>(2)?))
    })?;
    conn.create_scalar_function("gati_model", 2, flags, |ctx| {
        Ok(write::stored_model(&ctx.get::<String>(0)?, &ctx.get::<String>(1)?))
    })
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
        functions(&conn)?;
        schema::open(&mut conn)?;
        let written = Arc::new(LastWrite { start: Instant::now(), at_ms: AtomicU64::new(0) });
        let store = Store {
            conn: Arc::new(Mutex::new(conn)),
            pending: Default::default(),
            written,
            readers: Default::default(),
            path: path.to_path_buf(),
        };
        indexer::spawn(&store);
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
                functions(&conn)?;
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
            Ok((version, pending)) if version == schema::SCHEMA_VERSION => Ok(pending),
            Ok((version, _)) => Err(format!(
                "the database {} has schema version {version}, not {}",
                self.path.display(),
                schema::SCHEMA_VERSION
            )),
            Err(e) => Err(format!("the database {} cannot be read: {e}", self.path.display())),
        }
    }
}

#[cfg(test)]
mod tests;
