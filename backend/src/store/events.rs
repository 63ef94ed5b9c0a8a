//! A run's events, one event, and an event's children.

use rusqlite::{params, OptionalExtension};

use super::{
    rows::{event_row, EVENT_SELECT},
    Page, Store,
};
use crate::model::Event;

impl Store {
    /// A run's events in time order, all of them (tests; requests read `run_events_page`).
    #[allow(dead_code)]
    pub fn run_events(&self, run_id: &str) -> rusqlite::Result<Vec<Event>> {
        self.read(|conn| {
            conn.prepare_cached(&format!("{EVENT_SELECT} WHERE e.run_id = ?1 ORDER BY e.timestamp, e.id"))?
                .query_map([run_id], event_row)?
                .collect()
        })
    }

    /// A page of a run's events in time order, cut short before `max_bytes` of stored text
    /// (`data` and `attributes`; one event at least): what a request may build in memory.
    /// Whether it was cut short.
    pub fn run_events_page(&self, run_id: &str, page: Page, max_bytes: usize) -> rusqlite::Result<(Vec<Event>, bool)> {
        self.read(|conn| {
            // The sizes first (SQLite reads them without building the events), then the events
            // that fit, in the same read transaction.
            let mut fit = 0u32;
            let mut bytes = 0usize;
            let sizes = conn
                .prepare_cached(
                    "SELECT octet_length(data) + octet_length(attributes) FROM events
                     WHERE run_id = ?1 ORDER BY timestamp, id LIMIT ?2 OFFSET ?3",
                )?
                .query_map(params![run_id, page.limit, page.offset], |r| r.get::<_, i64>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            for size in sizes {
                bytes = bytes.saturating_add(usize::try_from(size).unwrap_or(usize::MAX));
                if fit > 0 && bytes > max_bytes {
                    break;
                }
                fit += 1;
            }
            let events = conn
                .prepare_cached(&format!(
                    "{EVENT_SELECT} WHERE e.run_id = ?1 ORDER BY e.timestamp, e.id LIMIT ?2 OFFSET ?3"
                ))?
                .query_map(params![run_id, fit, page.offset], event_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let cut = (events.len() as u32) < page.limit && bytes > max_bytes;
            Ok((events, cut))
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
}
