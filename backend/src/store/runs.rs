//! Runs: listed, found by id or name, renamed, deleted one by one or by retention.

use rusqlite::{params, params_from_iter, types::Value as Sql, OptionalExtension, Transaction};

use super::{
    agents::{agent_exists, forget_agents_without_runs},
    metrics::Range,
    rows::{run_row, RUN_SELECT},
    totals, Page, Store,
};
use crate::model::{Run, RunStatus};

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
    /// The run is not there (any more: a delete came first).
    Gone,
    Database(rusqlite::Error),
}

impl From<rusqlite::Error> for RenameError {
    fn from(e: rusqlite::Error) -> Self {
        RenameError::Database(e)
    }
}

impl Store {
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

    /// Deletes a run with its events and totals; how many events went. Its agent stays.
    #[cfg(test)]
    pub fn delete_run(&self, run_id: &str) -> rusqlite::Result<i64> {
        self.remove_run(run_id).map(Option::unwrap_or_default)
    }

    /// Deletes a run with its events and totals: how many events went, or `None` if the run is
    /// not there (any more: another delete came first). Its agent stays.
    pub fn remove_run(&self, run_id: &str) -> rusqlite::Result<Option<i64>> {
        self.with(|conn| {
            let tx = conn.transaction()?;
            let (runs, events) = delete_runs(&tx, "run_id = ?1", params![run_id])?;
            tx.commit()?;
            Ok((runs > 0).then_some(events))
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
            if tx.execute("UPDATE runs SET run_name = ?2 WHERE run_id = ?1", params![run_id, new_name])? == 0 {
                return Ok(Err(RenameError::Gone));
            }
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
