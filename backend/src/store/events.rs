//! A run's events, one event, and an event's children.

use rusqlite::{params, OptionalExtension};

use super::{
    rows::{event_row, EVENT_SELECT},
    Store,
};
use crate::model::Event;

impl Store {
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
}
