//! The totals kept beside the events: per run (in `runs`), per agent (in `agents`), per UTC day,
//! agent and model (in `daily_totals`).
//!
//! Ingest adds to them as events arrive ([`BatchTotals`]); the rare changes that take events
//! away or move them (a deleted run or agent, retention, a run credited to another agent)
//! recompute what they touched from the events themselves, exactly, in the same transaction.

use std::collections::HashMap;

use rusqlite::{params, Transaction};

use crate::ingest::{Event, TotalTooLarge};

/// What one event adds to a total. Token counts are summed wider than they are stored: a batch
/// may hold counts no total can (see `check_room`).
#[derive(Debug, Default, Clone, Copy)]
struct Sums {
    events: i64,
    tokens_in: i128,
    tokens_out: i128,
    total_tokens: i128,
    cost: f64,
    errors: i64,
    /// Sum and count of the durations reported (for an average latency).
    duration_ms: f64,
    timed: i64,
}

impl Sums {
    fn add(&mut self, e: &Event) {
        let m = &e.metrics;
        self.events += 1;
        self.tokens_in += i128::from(m.tokens_in.unwrap_or(0));
        self.tokens_out += i128::from(m.tokens_out.unwrap_or(0));
        self.total_tokens += i128::from(m.total_tokens.unwrap_or(0));
        self.cost += m.cost.unwrap_or(0.0);
        self.errors += i64::from(m.error);
        if let Some(ms) = m.duration_ms {
            self.duration_ms += ms;
            self.timed += 1;
        }
    }
}

/// A run's share of a batch: its sums, time span, longest event and agent_start/agent_end.
#[derive(Debug, Default)]
struct RunShare {
    agent: String,
    sums: Sums,
    first: Option<String>,
    last: Option<String>,
    max_duration_ms: f64,
    starts: i64,
    ends: i64,
    /// The latest agent_end: its time and whether it reports an error.
    end: Option<(String, bool)>,
}

/// What a batch's stored events add, by run, by agent and by day, agent and model.
#[derive(Debug, Default)]
pub struct BatchTotals {
    runs: HashMap<String, RunShare>,
    /// By (day, agent, model): a batch has few of them, so a list searched from the end.
    days: Vec<((String, String, String), Sums)>,
}

impl BatchTotals {
    /// Counts an event that was stored (not a duplicate), credited to `agent`.
    pub fn add(&mut self, e: &Event, agent: &str) {
        // Looked up before inserting: most events belong to a run and day already seen.
        if !self.runs.contains_key(&e.run_id) {
            self.runs.insert(e.run_id.clone(), RunShare::default());
        }
        let run = self.runs.get_mut(&e.run_id).expect("inserted above");
        if run.agent.is_empty() {
            run.agent = agent.to_string();
        }
        run.sums.add(e);
        if run.first.as_ref().is_none_or(|t| e.timestamp < *t) {
            run.first = Some(e.timestamp.clone());
        }
        if run.last.as_ref().is_none_or(|t| e.timestamp > *t) {
            run.last = Some(e.timestamp.clone());
        }
        run.max_duration_ms = run.max_duration_ms.max(e.metrics.duration_ms.unwrap_or(0.0));
        run.starts += i64::from(e.starts_run);
        if let Some(at) = &e.ends_run_at {
            run.ends += 1;
            if run.end.as_ref().is_none_or(|(t, _)| at >= t) {
                run.end = Some((at.clone(), e.metrics.error));
            }
        }
        let model = e.model.as_deref().unwrap_or_default();
        let key = self.days.iter().rposition(|((d, a, m), _)| d == day(&e.timestamp) && a == agent && m == model);
        match key {
            Some(i) => self.days[i].1.add(e),
            None => {
                let mut sums = Sums::default();
                sums.add(e);
                self.days.push(((day(&e.timestamp).to_string(), agent.to_string(), model.to_string()), sums));
            }
        }
    }

    /// Adds the batch to the stored totals, or refuses it (`TotalTooLarge`, nothing written)
    /// if a total could not hold it. Each run's duration and status are the database's to
    /// compute (generated columns); the agent's change by how much its runs' did.
    pub fn apply(self, tx: &Transaction) -> rusqlite::Result<()> {
        self.check_room(tx)?;
        let mut before = tx.prepare_cached("SELECT duration_ms, status FROM runs WHERE run_id = ?1")?;
        let mut update = tx.prepare_cached(
            "UPDATE runs SET event_count = event_count + ?2, tokens_in = tokens_in + ?3, tokens_out = tokens_out + ?4,
                total_tokens = total_tokens + ?5, total_cost = total_cost + ?6, error_count = error_count + ?7,
                started_at = min(coalesce(started_at, ?8), ?8), last_event_at = max(coalesce(last_event_at, ?9), ?9),
                max_duration_ms = max(max_duration_ms, ?10), agent_starts = agent_starts + ?11,
                agent_ends = agent_ends + ?12,
                end_error = CASE WHEN ?13 IS NOT NULL AND (ended_at IS NULL OR ?13 >= ended_at) THEN ?14 ELSE end_error END,
                ended_at = CASE WHEN ?13 IS NOT NULL AND (ended_at IS NULL OR ?13 >= ended_at) THEN ?13 ELSE ended_at END
             WHERE run_id = ?1 RETURNING duration_ms, status",
        )?;
        let mut agent = tx.prepare_cached(
            "UPDATE agents SET event_count = event_count + ?2, tokens_in = tokens_in + ?3, tokens_out = tokens_out + ?4,
                total_tokens = total_tokens + ?5, total_cost = total_cost + ?6, error_count = error_count + ?7,
                duration_ms = duration_ms + ?8, active_runs = active_runs + ?9,
                last_event_at = max(coalesce(last_event_at, ?10), ?10), first_seen = min(first_seen, ?11)
             WHERE name = ?1",
        )?;
        for (run_id, share) in &self.runs {
            let (Some(first), Some(last)) = (&share.first, &share.last) else { continue };
            let (old_duration, old_status): (f64, String) =
                before.query_row([run_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            let s = &share.sums;
            let (tokens_in, tokens_out, total_tokens) = s.tokens()?;
            let (end_at, end_error) = share.end.clone().map_or((None, false), |(t, e)| (Some(t), e));
            let (duration, status): (f64, String) = update.query_row(
                params![
                    run_id,
                    s.events,
                    tokens_in,
                    tokens_out,
                    total_tokens,
                    s.cost,
                    s.errors,
                    first,
                    last,
                    share.max_duration_ms,
                    share.starts,
                    share.ends,
                    end_at,
                    end_error
                ],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let active = i64::from(status == "active") - i64::from(old_status == "active");
            agent.execute(params![
                share.agent,
                s.events,
                tokens_in,
                tokens_out,
                total_tokens,
                s.cost,
                s.errors,
                duration - old_duration,
                active,
                last,
                first
            ])?;
        }
        let mut day = tx.prepare_cached(
            "INSERT INTO daily_totals (day, agent_name, model, events, tokens_in, tokens_out, total_tokens, cost, errors,
                duration_ms, timed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT DO UPDATE SET events = events + excluded.events, tokens_in = tokens_in + excluded.tokens_in,
                tokens_out = tokens_out + excluded.tokens_out, total_tokens = total_tokens + excluded.total_tokens,
                cost = cost + excluded.cost, errors = errors + excluded.errors,
                duration_ms = duration_ms + excluded.duration_ms, timed = timed + excluded.timed",
        )?;
        for ((d, agent, model), s) in &self.days {
            let (tokens_in, tokens_out, total_tokens) = s.tokens()?;
            day.execute(params![
                d,
                agent,
                model,
                s.events,
                tokens_in,
                tokens_out,
                total_tokens,
                s.cost,
                s.errors,
                s.duration_ms,
                s.timed
            ])?;
        }
        Ok(())
    }
}

impl BatchTotals {
    /// Refuses the batch if the sum of a token count over every event, those stored and the
    /// batch's, would not fit a total: every total (a run's, an agent's, a day's, the metrics'
    /// sums over agents) is part of that sum, so then each fits. The agents' totals are the
    /// sum over every event.
    fn check_room(&self, tx: &Transaction) -> rusqlite::Result<()> {
        let mut added = Sums::default();
        for share in self.runs.values() {
            added.tokens_in += share.sums.tokens_in;
            added.tokens_out += share.sums.tokens_out;
            added.total_tokens += share.sums.total_tokens;
        }
        if added.tokens_in == 0 && added.tokens_out == 0 && added.total_tokens == 0 {
            return Ok(());
        }
        let stored: [i64; 3] = tx
            .prepare_cached(
                "SELECT coalesce(sum(tokens_in), 0), coalesce(sum(tokens_out), 0), coalesce(sum(total_tokens), 0)
                 FROM agents",
            )?
            .query_row([], |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?]))?;
        let fields =
            [("tokens_in", added.tokens_in), ("tokens_out", added.tokens_out), ("total_tokens", added.total_tokens)];
        for ((field, added), stored) in fields.into_iter().zip(stored) {
            let stored = i128::from(stored);
            if stored + added > i128::from(i64::MAX) {
                return Err(TotalTooLarge { field, stored, added }.into());
            }
        }
        Ok(())
    }
}

impl Sums {
    /// The token counts, as stored (`check_room` has made sure they fit).
    fn tokens(&self) -> rusqlite::Result<(i64, i64, i64)> {
        let narrow = |field: &'static str, n: i128| {
            i64::try_from(n).map_err(|_| rusqlite::Error::from(TotalTooLarge { field, stored: 0, added: n }))
        };
        Ok((
            narrow("tokens_in", self.tokens_in)?,
            narrow("tokens_out", self.tokens_out)?,
            narrow("total_tokens", self.total_tokens)?,
        ))
    }
}

/// The UTC day of a stored timestamp (`2026-01-31T12:00:00.000000Z` is `2026-01-31`).
pub fn day(timestamp: &str) -> &str {
    timestamp.get(..10).unwrap_or(timestamp)
}

/// (Run by the migrations to versions 3 and 4 only, of databases from before OTLP ingest: every
/// event in them is the SDK's, whose agent_start / agent_end open and end runs. A span's event
/// opens nothing and a root span's ends its run: `Event::starts_run`, `Event::ends_run_at`.)
const RUN_FROM_EVENTS: &str = "UPDATE runs SET (event_count, tokens_in, tokens_out, total_tokens, total_cost,
        error_count, started_at, last_event_at, max_duration_ms, agent_starts, agent_ends, ended_at, end_error) =
    (SELECT count(*), coalesce(sum(e.tokens_in), 0), coalesce(sum(e.tokens_out), 0), coalesce(sum(e.total_tokens), 0),
            coalesce(sum(e.cost), 0.0), coalesce(sum(e.error), 0), coalesce(min(e.timestamp), runs.first_seen),
            max(e.timestamp), coalesce(max(e.duration_ms), 0.0),
            count(*) FILTER (WHERE e.event_type = 'agent_start'), count(*) FILTER (WHERE e.event_type = 'agent_end'),
            max(e.timestamp) FILTER (WHERE e.event_type = 'agent_end'),
            coalesce((SELECT x.error FROM events x WHERE x.run_id = runs.run_id AND x.event_type = 'agent_end'
                      ORDER BY x.timestamp DESC, x.id DESC LIMIT 1), 0)
     FROM events e WHERE e.run_id = runs.run_id)";

/// (An agent was created when its earliest event happened, whatever order they arrived in.)
const AGENT_FROM_RUNS: &str = "UPDATE agents SET (run_count, active_runs, event_count, tokens_in, tokens_out,
        total_tokens, total_cost, error_count, duration_ms, last_event_at, first_seen) =
    (SELECT count(*), count(*) FILTER (WHERE r.status = 'active'), coalesce(sum(r.event_count), 0),
            coalesce(sum(r.tokens_in), 0), coalesce(sum(r.tokens_out), 0), coalesce(sum(r.total_tokens), 0),
            coalesce(sum(r.total_cost), 0.0), coalesce(sum(r.error_count), 0), coalesce(sum(r.duration_ms), 0.0),
            max(r.last_event_at), coalesce(min(r.started_at), agents.first_seen)
     FROM runs r WHERE r.agent_name = agents.name)";

const DAYS_FROM_EVENTS: &str = "INSERT INTO daily_totals (day, agent_name, model, events, tokens_in, tokens_out,
        total_tokens, cost, errors, duration_ms, timed)
    SELECT substr(timestamp, 1, 10), agent_name, coalesce(model, ''), count(*), coalesce(sum(tokens_in), 0),
           coalesce(sum(tokens_out), 0), coalesce(sum(total_tokens), 0), coalesce(sum(cost), 0.0),
           coalesce(sum(error), 0), coalesce(sum(duration_ms), 0.0), count(duration_ms)
    FROM events";

/// One agent's totals, from its runs'.
pub fn recompute_agent(tx: &Transaction, agent: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(&format!("{AGENT_FROM_RUNS} WHERE name = ?1"))?.execute([agent])?;
    Ok(())
}

/// An agent's daily totals and latencies from `first` to `last` (days, inclusive), from its events.
pub fn recompute_days(tx: &Transaction, agent: &str, first: &str, last: &str) -> rusqlite::Result<()> {
    let (first, last) = (day(first), day(last));
    tx.prepare_cached("DELETE FROM daily_totals WHERE agent_name = ?1 AND day >= ?2 AND day <= ?3")?
        .execute(params![agent, first, last])?;
    tx.prepare_cached(&format!(
        "{DAYS_FROM_EVENTS} WHERE agent_name = ?1 AND timestamp >= ?2 AND timestamp < date(?3, '+1 day') GROUP BY 1, 3"
    ))?
    .execute(params![agent, first, last])?;
    super::latency::recompute_days(tx, agent, first, last)
}

/// Every total, from the events (a migration's last step).
pub fn recompute_all(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch(&format!(
        "{RUN_FROM_EVENTS};
         {AGENT_FROM_RUNS};
         DELETE FROM daily_totals;
         {DAYS_FROM_EVENTS} GROUP BY 1, 2, 3;"
    ))
}

/// The span of days a run's events cover: (first, last) timestamps, if it has events.
pub fn run_span(tx: &Transaction, run_id: &str) -> rusqlite::Result<Option<(String, String)>> {
    tx.prepare_cached("SELECT min(timestamp), max(timestamp) FROM events WHERE run_id = ?1")?
        .query_row([run_id], |r| Ok(r.get::<_, Option<String>>(0)?.zip(r.get::<_, Option<String>>(1)?)))
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use crate::{
        ingest::{parse_batch, BatchError},
        store::{Page, Store},
    };

    fn batch(id: &str, agent: &str, data: Value) -> Vec<crate::ingest::Event> {
        let e = json!({"event_id": id, "run_id": format!("run-{id}"), "agent_name": agent, "event_type": "llm_call",
                       "timestamp": "2026-01-31T12:00:00Z", "data": data});
        parse_batch(json!([e]).to_string().as_bytes()).unwrap()
    }

    fn tokens(store: &Store) -> Vec<(String, i64, i64)> {
        let (agents, _) = store.agents(Page { limit: 100, offset: 0 }).unwrap();
        agents.into_iter().map(|a| (a.name, a.event_count, a.tokens_in)).collect()
    }

    #[test]
    fn a_batch_that_would_overflow_a_total_is_refused_whole_and_nothing_changes() {
        let dir = std::env::temp_dir().join(format!("gati-totals-overflow-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open(&dir.join("gati.db")).unwrap();
        let near = i64::MAX - 10;
        store.ingest(batch("a", "big", json!({"tokens_in": near}))).unwrap();
        let before = tokens(&store);
        assert_eq!(before, vec![("big".to_string(), 1, near)]);
        // Past i64 in the same agent, in another agent (the metrics sum over agents), and in
        // one batch of two events that each fit.
        let mut two = batch("c", "big", json!({"tokens_in": 6}));
        two.extend(batch("d", "big", json!({"tokens_in": 5})));
        for refused in [batch("b", "big", json!({"tokens_in": 11})), batch("x", "other", json!({"tokens_in": 11})), two]
        {
            let err = store.ingest(refused).unwrap_err();
            let err = BatchError::from_store(&err).unwrap_or_else(|| panic!("not a refusal: {err}"));
            assert_eq!((err.status, err.field.as_deref()), (422, Some("tokens_in")), "{err:?}");
            assert!(err.error.contains(&i64::MAX.to_string()) && err.error.contains("11"), "{}", err.error);
            assert_eq!(tokens(&store), before, "nothing of a refused batch is stored");
        }
        store.ingest(batch("e", "big", json!({"tokens_in": 10}))).unwrap();
        assert_eq!(tokens(&store), vec![("big".to_string(), 2, i64::MAX)]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
