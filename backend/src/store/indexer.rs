//! The search index, kept apart from ingest: new events are indexed in chunks, in the
//! background, once batches stop coming.

use std::sync::Arc;

use rusqlite::Connection;

use super::{lock, Store};

impl Store {
    /// Brings the search index up to date; how many events it took in.
    #[cfg(test)]
    pub fn catch_up(&self) -> rusqlite::Result<i64> {
        self.with(|conn| index_pending(conn, None))
    }
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
pub(super) fn spawn(store: &Store) {
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
