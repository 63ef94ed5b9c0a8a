//! Metrics over time: totals per agent, per UTC day and per model, for any time range.
//!
//! Without a range they are the agents' kept totals. With one, the whole UTC days inside it
//! come from `daily_totals` and only the part days at its edges are read from the events (by
//! their time index), so a range of a year costs what a range of a day does.

use std::collections::BTreeMap;

use chrono::{Datelike, Days, NaiveDate};
use rusqlite::{params_from_iter, types::Value as Sql, Connection};

use super::Store;

/// A time range as stored timestamps (UTC, microseconds): `since` inclusive, `until` exclusive.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Range {
    pub since: Option<String>,
    pub until: Option<String>,
}

impl Range {
    pub fn is_all(&self) -> bool {
        self.since.is_none() && self.until.is_none()
    }
}

/// Sums over events.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Totals {
    pub events: i64,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub total_tokens: i64,
    pub cost: f64,
    pub errors: i64,
    /// Sum and count of the durations events report.
    pub duration_ms: f64,
    pub timed: i64,
}

impl Totals {
    fn add(&mut self, other: &Totals) {
        self.events += other.events;
        self.tokens_in += other.tokens_in;
        self.tokens_out += other.tokens_out;
        self.total_tokens += other.total_tokens;
        self.cost += other.cost;
        self.errors += other.errors;
        self.duration_ms += other.duration_ms;
        self.timed += other.timed;
    }
}

/// An agent's totals over a range: its events there, and its runs that had events there.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct AgentTotals {
    pub agent: String,
    pub events: Totals,
    pub runs: i64,
    /// The summed durations of those runs.
    pub run_duration_ms: f64,
}

/// One UTC day: all its events, those that name a model (LLM calls), and the runs started.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Day {
    pub date: String,
    pub all: Totals,
    pub llm: Totals,
    pub runs: i64,
}

/// What event sums are grouped by.
#[derive(Debug, Clone, Copy)]
enum Key {
    Agent,
    /// Only the events that name a model.
    Model,
    DayAndModel,
}

impl Key {
    /// The key's expression over `daily_totals`, and over `events`.
    fn columns(self) -> (&'static str, &'static str) {
        match self {
            Key::Agent => ("agent_name", "agent_name"),
            Key::Model => ("model", "coalesce(model, '')"),
            Key::DayAndModel => {
                ("day || ' ' || (model != '')", "substr(timestamp, 1, 10) || ' ' || (model IS NOT NULL)")
            }
        }
    }
}

const DAILY_SUMS: &str = "sum(events), sum(tokens_in), sum(tokens_out), sum(total_tokens), sum(cost), sum(errors),
    sum(duration_ms), sum(timed)";
const EVENT_SUMS: &str = "count(*), coalesce(sum(tokens_in), 0), coalesce(sum(tokens_out), 0),
    coalesce(sum(total_tokens), 0), coalesce(sum(cost), 0.0), coalesce(sum(error), 0), coalesce(sum(duration_ms), 0.0),
    count(duration_ms)";

fn totals_at(r: &rusqlite::Row, first: usize) -> rusqlite::Result<Totals> {
    Ok(Totals {
        events: r.get(first)?,
        tokens_in: r.get(first + 1)?,
        tokens_out: r.get(first + 2)?,
        total_tokens: r.get(first + 3)?,
        cost: r.get(first + 4)?,
        errors: r.get(first + 5)?,
        duration_ms: r.get(first + 6)?,
        timed: r.get(first + 7)?,
    })
}

/// The midnight of a stored timestamp's day, and whether the timestamp is that midnight.
fn midnight(timestamp: &str) -> (String, bool) {
    let day = &timestamp[..10.min(timestamp.len())];
    (day.to_string(), timestamp.get(10..).is_none_or(|rest| rest == "T00:00:00.000000Z"))
}

/// The day after `day` (`2026-01-31` → `2026-02-01`), as text that sorts after it: after
/// 9999-12-31 (the last a range reaches), or what is no day, it is `9999-12-32`, since
/// `+10000-01-01` sorts before every day (a timeline to it never ended, a range inside it took
/// in every day).
pub fn next_day(day: &str) -> String {
    NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.checked_add_days(Days::new(1)))
        .filter(|d| d.year() <= 9999)
        .map_or_else(|| "9999-12-32".to_string(), |d| d.format("%Y-%m-%d").to_string())
}

/// `range` split into whole days (from, to: `to` exclusive, either open) and the part days at
/// its edges, as [since, until) pairs of timestamps.
type Split = ((Option<String>, Option<String>), Vec<(String, String)>);

pub(super) fn split(range: &Range) -> Split {
    let mut edges = Vec::new();
    let from = range.since.as_ref().map(|since| match midnight(since) {
        (day, true) => day,
        (day, false) => {
            let next = next_day(&day);
            edges.push((since.clone(), format!("{next}T00:00:00.000000Z")));
            next
        }
    });
    let to = range.until.as_ref().map(|until| {
        let (day, exact) = midnight(until);
        if !exact {
            edges.push((format!("{day}T00:00:00.000000Z"), until.clone()));
        }
        day
    });
    if let (Some(from), Some(to), Some(since), Some(until)) = (&from, &to, &range.since, &range.until) {
        if from > to {
            // Inside one day: only the events between.
            return ((Some(to.clone()), Some(to.clone())), vec![(since.clone(), until.clone())]);
        }
    }
    ((from, to), edges)
}

/// Event sums over `range` (of one agent, if given), grouped by `key`.
fn sums(conn: &Connection, range: &Range, agent: Option<&str>, key: Key) -> rusqlite::Result<BTreeMap<String, Totals>> {
    let ((from, to), edges) = split(range);
    let (daily_key, event_key) = key.columns();
    let model_only = matches!(key, Key::Model);
    let mut out: BTreeMap<String, Totals> = BTreeMap::new();

    let mut conditions = vec!["1".to_string()];
    let mut args = Vec::new();
    for (condition, value) in [("day >= ?", &from), ("day < ?", &to), ("agent_name = ?", &agent.map(String::from))] {
        if let Some(value) = value {
            conditions.push(condition.into());
            args.push(Sql::Text(value.clone()));
        }
    }
    if model_only {
        conditions.push("model != ''".into());
    }
    let sql =
        format!("SELECT {daily_key}, {DAILY_SUMS} FROM daily_totals WHERE {} GROUP BY 1", conditions.join(" AND "));
    let mut stmt = conn.prepare_cached(&sql)?;
    for row in stmt.query_map(params_from_iter(&args), |r| Ok((r.get::<_, String>(0)?, totals_at(r, 1)?)))? {
        let (k, t) = row?;
        out.entry(k).or_default().add(&t);
    }

    for (since, until) in edges {
        let mut args = vec![Sql::Text(since), Sql::Text(until)];
        let mut condition = "timestamp >= ?1 AND timestamp < ?2".to_string();
        if let Some(agent) = agent {
            condition.push_str(" AND agent_name = ?3");
            args.push(Sql::Text(agent.into()));
        }
        if model_only {
            condition.push_str(" AND model IS NOT NULL");
        }
        let sql = format!("SELECT {event_key}, {EVENT_SUMS} FROM events WHERE {condition} GROUP BY 1");
        let mut stmt = conn.prepare_cached(&sql)?;
        for row in stmt.query_map(params_from_iter(&args), |r| Ok((r.get::<_, String>(0)?, totals_at(r, 1)?)))? {
            let (k, t) = row?;
            out.entry(k).or_default().add(&t);
        }
    }
    Ok(out)
}

impl Store {
    /// Every agent's totals over `range` (or only `agent`'s), by name. Without a range, the
    /// kept totals; with one, the events in it and the runs that had events in it.
    pub fn agent_totals(&self, range: &Range, agent: Option<&str>) -> rusqlite::Result<Vec<AgentTotals>> {
        self.read(|conn| {
            if range.is_all() {
                let mut stmt = conn.prepare_cached(
                    "SELECT name, run_count, duration_ms, event_count, tokens_in, tokens_out, total_tokens,
                            total_cost, error_count
                     FROM agents WHERE ?1 IS NULL OR name = ?1 ORDER BY name",
                )?;
                let rows = stmt.query_map([agent], |r| {
                    Ok(AgentTotals {
                        agent: r.get(0)?,
                        runs: r.get(1)?,
                        run_duration_ms: r.get(2)?,
                        events: Totals {
                            events: r.get(3)?,
                            tokens_in: r.get(4)?,
                            tokens_out: r.get(5)?,
                            total_tokens: r.get(6)?,
                            cost: r.get(7)?,
                            errors: r.get(8)?,
                            ..Totals::default()
                        },
                    })
                })?;
                return rows.collect();
            }
            let events = sums(conn, range, agent, Key::Agent)?;
            let mut by_agent: BTreeMap<String, AgentTotals> = events
                .into_iter()
                .map(|(name, events)| (name.clone(), AgentTotals { agent: name, events, ..Default::default() }))
                .collect();
            let mut stmt = conn.prepare_cached(
                "SELECT agent_name, count(*), coalesce(sum(duration_ms), 0.0) FROM runs
                 WHERE (?1 IS NULL OR started_at < ?1) AND (?2 IS NULL OR coalesce(last_event_at, started_at) >= ?2)
                   AND (?3 IS NULL OR agent_name = ?3)
                 GROUP BY agent_name",
            )?;
            let runs = stmt.query_map(rusqlite::params![range.until, range.since, agent], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, f64>(2)?))
            })?;
            for row in runs {
                let (name, count, duration) = row?;
                let entry =
                    by_agent.entry(name.clone()).or_insert_with(|| AgentTotals { agent: name, ..Default::default() });
                entry.runs = count;
                entry.run_duration_ms = duration;
            }
            Ok(by_agent.into_values().collect())
        })
    }

    /// How many agents there are (without a range), for the summaries.
    pub fn agent_count(&self) -> rusqlite::Result<i64> {
        self.read(|conn| conn.query_row("SELECT count(*) FROM agents", [], |r| r.get(0)))
    }

    /// One entry per UTC day from `first` to `last` (inclusive), days without events as zeros:
    /// the events in `range` (of `agent`, if given) that day, and the runs started that day.
    pub fn days(&self, range: &Range, agent: Option<&str>, first: &str, last: &str) -> rusqlite::Result<Vec<Day>> {
        self.read(|conn| {
            let sums = sums(conn, range, agent, Key::DayAndModel)?;
            let mut days: BTreeMap<String, Day> = BTreeMap::new();
            let mut day = first.to_string();
            while day.as_str() <= last {
                let next = next_day(&day);
                days.insert(day.clone(), Day { date: day, ..Default::default() });
                day = next;
            }
            for (key, totals) in sums {
                let (date, llm) = key.split_once(' ').unwrap_or((&key, "0"));
                if let Some(entry) = days.get_mut(date) {
                    entry.all.add(&totals);
                    if llm == "1" {
                        entry.llm.add(&totals);
                    }
                }
            }
            let mut stmt = conn.prepare_cached(
                "SELECT substr(started_at, 1, 10), count(*) FROM runs
                 WHERE started_at >= ?1 AND started_at < ?2 AND (?3 IS NULL OR started_at >= ?3)
                   AND (?4 IS NULL OR started_at < ?4) AND (?5 IS NULL OR agent_name = ?5)
                 GROUP BY 1",
            )?;
            let started = stmt
                .query_map(rusqlite::params![first, next_day(last), range.since, range.until, agent], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })?;
            for row in started {
                let (date, count) = row?;
                if let Some(entry) = days.get_mut(&date) {
                    entry.runs = count;
                }
            }
            Ok(days.into_values().collect())
        })
    }

    /// The events that name a model, by model, over `range` (of `agent`, or of one run).
    pub fn models(
        &self,
        range: &Range,
        agent: Option<&str>,
        run_id: Option<&str>,
    ) -> rusqlite::Result<Vec<(String, Totals)>> {
        self.read(|conn| {
            let Some(run_id) = run_id else {
                return Ok(sums(conn, range, agent, Key::Model)?.into_iter().collect());
            };
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT model, {EVENT_SUMS} FROM events
                 WHERE run_id = ?1 AND model IS NOT NULL AND (?2 IS NULL OR timestamp >= ?2)
                   AND (?3 IS NULL OR timestamp < ?3) AND (?4 IS NULL OR agent_name = ?4)
                 GROUP BY model"
            ))?;
            let rows = stmt.query_map(rusqlite::params![run_id, range.since, range.until, agent], |r| {
                Ok((r.get::<_, String>(0)?, totals_at(r, 1)?))
            })?;
            rows.collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(since: Option<&str>, until: Option<&str>) -> Range {
        Range { since: since.map(String::from), until: until.map(String::from) }
    }

    #[test]
    fn ranges_split_into_whole_days_and_edges() {
        let at = |day: &str, time: &str| format!("{day}T{time}.000000Z");
        assert_eq!(split(&Range::default()), ((None, None), vec![]));
        let whole = range(Some(&at("2026-01-30", "00:00:00")), Some(&at("2026-02-02", "00:00:00")));
        assert_eq!(split(&whole), ((Some("2026-01-30".into()), Some("2026-02-02".into())), vec![]));
        let ragged = range(Some(&at("2026-01-30", "12:00:00")), Some(&at("2026-02-02", "06:00:00")));
        assert_eq!(
            split(&ragged),
            (
                (Some("2026-01-31".into()), Some("2026-02-02".into())),
                vec![
                    (at("2026-01-30", "12:00:00"), at("2026-01-31", "00:00:00")),
                    (at("2026-02-02", "00:00:00"), at("2026-02-02", "06:00:00"))
                ]
            )
        );
        let inside = range(Some(&at("2026-01-30", "12:00:00")), Some(&at("2026-01-30", "13:00:00")));
        let ((from, to), edges) = split(&inside);
        assert_eq!(from, to, "no whole day");
        assert_eq!(edges, vec![(at("2026-01-30", "12:00:00"), at("2026-01-30", "13:00:00"))]);
        assert_eq!(next_day("2024-02-28"), "2024-02-29");
        assert_eq!(next_day("2026-12-31"), "2027-01-01");
        assert!(next_day("9999-12-31").as_str() > "9999-12-31", "{}", next_day("9999-12-31"));
        let last = range(Some(&at("9999-12-31", "23:00:00")), Some(&at("9999-12-31", "23:30:00")));
        let ((from, to), _) = split(&last);
        assert_eq!(from, to, "no whole day inside the last one");
    }
}
