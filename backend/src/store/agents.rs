//! Agents: listed with their totals, looked up, deleted.

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::{
    rows::{agent_row, AGENT_SELECT},
    Page, Store,
};
use crate::model::Agent;

impl Store {
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
                tx.execute("DELETE FROM daily_latency WHERE agent_name = ?1", [name])?;
                tx.execute("DELETE FROM agents WHERE name = ?1", [name])?;
            }
            tx.commit()?;
            Ok(counts)
        })
    }
}

pub(super) fn agent_exists(conn: &Connection, agent: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM agents WHERE name = ?1)")?.query_row([agent], |r| r.get(0))
}

/// Drops the agents no run is credited to; no event may be stored under them any more.
pub(super) fn forget_agents_without_runs(tx: &Transaction) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM agents WHERE NOT EXISTS (SELECT 1 FROM runs WHERE runs.agent_name = agents.name)")?
        .execute([])?;
    tx.prepare_cached(
        "DELETE FROM daily_totals WHERE NOT EXISTS (SELECT 1 FROM agents WHERE agents.name = daily_totals.agent_name)",
    )?
    .execute([])?;
    super::latency::forget_missing_agents(tx)
}
