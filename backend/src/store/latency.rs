//! Latency percentiles, kept at ingest as the totals are: per UTC day, agent and what was
//! called, a histogram of the calls' latencies (`daily_latency`).
//!
//! What was called is a model (the LLM calls, events that name a model), a tool (`tool_call`
//! events, by `data.tool_name`) or the agent itself (its LLM and tool calls together); only
//! calls that report a duration count. A histogram's buckets are log-spaced, so a percentile
//! read from it is within [`RELATIVE_ERROR`] of the exact one, for any latencies, with a fixed
//! number of buckets (fewer than 1,000 from 1 µs to `MAX_DURATION_MS`).
//!
//! Ingest merges a batch's histograms into the stored ones ([`BatchLatency`]); what takes
//! events away or moves them recomputes the agent's days from the events ([`recompute_days`]),
//! as the totals do.

use std::collections::{BTreeMap, HashMap};

use rusqlite::{params, params_from_iter, types::Value as Sql, Connection, Transaction};
use serde_json::Value;

use super::{metrics::split, totals::day, Range, Store};
use crate::ingest::Event;

/// A percentile read from a histogram is within this fraction of the exact one (for latencies
/// of 1 µs or more; shorter ones are read as 0).
pub const RELATIVE_ERROR: f64 = 0.02;
/// Each bucket's upper bound is this many times its lower: a bucket's middle value is then
/// within `RELATIVE_ERROR` of everything in it.
const GAMMA: f64 = (1.0 + RELATIVE_ERROR) / (1.0 - RELATIVE_ERROR);
/// Latencies under this many milliseconds (1 µs) share bucket 0, read as 0.
const SMALLEST_MS: f64 = 0.001;
/// The bucket of `MAX_DURATION_MS`, the longest latency ingest accepts; longer is clamped.
const LAST_BUCKET: u16 = 1000;
/// The longest tool name kept, as ingest's identifiers.
const MAX_NAME_LEN: usize = 256;

/// What latencies are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum By {
    Agent,
    Model,
    Tool,
}

impl By {
    pub fn as_str(self) -> &'static str {
        match self {
            By::Agent => "agent",
            By::Model => "model",
            By::Tool => "tool",
        }
    }
}

/// The bucket a latency falls in: bucket b ≥ 1 holds (SMALLEST·γ^(b−2), SMALLEST·γ^(b−1)].
/// `None` for what is no latency (ingest has refused those already).
fn bucket(ms: f64) -> Option<u16> {
    if !ms.is_finite() || ms < 0.0 {
        return None;
    }
    if ms < SMALLEST_MS {
        return Some(0);
    }
    let b = 1.0 + ((ms / SMALLEST_MS).ln() / GAMMA.ln()).ceil();
    Some(b.clamp(1.0, f64::from(LAST_BUCKET)) as u16)
}

/// The value a bucket stands for: the one within `RELATIVE_ERROR` of both its bounds.
fn value(bucket: u16) -> f64 {
    match bucket {
        0 => 0.0,
        b => SMALLEST_MS * GAMMA.powi(i32::from(b) - 1) * 2.0 / (GAMMA + 1.0),
    }
}

/// How many latencies fell in each bucket.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Histogram {
    counts: BTreeMap<u16, u64>,
}

impl Histogram {
    pub fn add(&mut self, ms: f64) {
        if let Some(b) = bucket(ms) {
            let count = self.counts.entry(b).or_default();
            *count = count.saturating_add(1);
        }
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (&b, &n) in &other.counts {
            let count = self.counts.entry(b).or_default();
            *count = count.saturating_add(n);
        }
    }

    pub fn calls(&self) -> u64 {
        self.counts.values().fold(0, |sum, &n| sum.saturating_add(n))
    }

    /// The `permille`-th percentile by nearest rank (the smallest latency that at least that
    /// share of calls took no longer than), as its bucket's value; `None` without calls.
    pub fn percentile(&self, permille: u64) -> Option<f64> {
        let calls = self.calls();
        if calls == 0 {
            return None;
        }
        let rank = (u128::from(calls) * u128::from(permille.min(1000))).div_ceil(1000).max(1);
        let mut seen: u128 = 0;
        for (&b, &n) in &self.counts {
            seen += u128::from(n);
            if seen >= rank {
                return Some(value(b));
            }
        }
        self.counts.keys().next_back().map(|&b| value(b))
    }

    /// As stored: (bucket as u16, count as u64) pairs, little-endian, by bucket.
    fn to_blob(&self) -> Vec<u8> {
        let mut blob = Vec::with_capacity(self.counts.len() * 10);
        for (&b, &n) in &self.counts {
            blob.extend_from_slice(&b.to_le_bytes());
            blob.extend_from_slice(&n.to_le_bytes());
        }
        blob
    }

    #[cfg(test)]
    fn from_blob(blob: &[u8]) -> Histogram {
        let mut h = Histogram::default();
        h.add_blob(blob);
        h
    }

    /// Adds a stored histogram to this one (a torn last pair is left out).
    fn add_blob(&mut self, blob: &[u8]) {
        for pair in blob.chunks_exact(10) {
            let b = u16::from_le_bytes([pair[0], pair[1]]);
            let n = u64::from_le_bytes(pair[2..].try_into().expect("eight bytes"));
            let count = self.counts.entry(b).or_default();
            *count = count.saturating_add(n);
        }
    }
}

/// The tool a tool call's `data` (as JSON text) names, if it names one.
fn tool_name(data: &str) -> Option<String> {
    let Ok(Value::Object(data)) = serde_json::from_str::<Value>(data) else { return None };
    let name = data.get("tool_name")?.as_str()?.trim();
    (!name.is_empty() && name.len() <= MAX_NAME_LEN).then(|| name.to_string())
}

/// A histogram's key: (day, agent, kind, name); an agent's own is (day, agent, Agent, agent).
type Key = (String, String, By, String);

/// What a set of events adds to the histograms.
#[derive(Debug, Default)]
pub struct BatchLatency {
    days: HashMap<Key, Histogram>,
}

impl BatchLatency {
    /// Counts an event that was stored (not a duplicate), credited to `agent`.
    pub fn add(&mut self, e: &Event, agent: &str) {
        let tool = (e.event_type == "tool_call").then_some(e.data.as_str());
        self.add_call(&e.timestamp, agent, e.model.as_deref(), tool, e.metrics.duration_ms);
    }

    /// A call at `timestamp` of `agent`: of `model` if it names one, a tool call if `tool_data`
    /// (its `data`) is given; nothing unless it took `ms`.
    fn add_call(
        &mut self,
        timestamp: &str,
        agent: &str,
        model: Option<&str>,
        tool_data: Option<&str>,
        ms: Option<f64>,
    ) {
        let Some(ms) = ms.filter(|ms| bucket(*ms).is_some()) else { return };
        if model.is_none() && tool_data.is_none() {
            return;
        }
        let mut count = |by: By, name: &str| {
            let key = (day(timestamp).to_string(), agent.to_string(), by, name.to_string());
            self.days.entry(key).or_default().add(ms);
        };
        count(By::Agent, agent);
        if let Some(model) = model {
            count(By::Model, model);
        }
        if let Some(tool) = tool_data.and_then(tool_name) {
            count(By::Tool, &tool);
        }
    }

    /// Merges the batch into the stored histograms.
    pub fn apply(self, tx: &Transaction) -> rusqlite::Result<()> {
        let mut read = tx.prepare_cached(
            "SELECT buckets FROM daily_latency WHERE day = ?1 AND agent_name = ?2 AND kind = ?3 AND name = ?4",
        )?;
        let mut write = tx.prepare_cached(
            "INSERT OR REPLACE INTO daily_latency (day, agent_name, kind, name, calls, buckets)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for ((d, agent, by, name), mut h) in self.days {
            let stored = read.query_map(params![d, agent, by.as_str(), name], |r| r.get::<_, Vec<u8>>(0))?;
            for blob in stored {
                h.add_blob(&blob?);
            }
            let calls = i64::try_from(h.calls()).unwrap_or(i64::MAX);
            write.execute(params![d, agent, by.as_str(), name, calls, h.to_blob()])?;
        }
        Ok(())
    }
}

/// The calls among the events matching `condition` (over `events`), added to `latency`.
fn add_events(
    conn: &Connection,
    condition: &str,
    args: &[Sql],
    mut add: impl FnMut(&str, &str, Option<&str>, Option<&str>, Option<f64>),
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT timestamp, agent_name, model, CASE WHEN event_type = 'tool_call' THEN data END, duration_ms
         FROM events WHERE duration_ms IS NOT NULL AND (model IS NOT NULL OR event_type = 'tool_call') AND {condition}"
    ))?;
    let mut rows = stmt.query(params_from_iter(args))?;
    while let Some(r) = rows.next()? {
        let (timestamp, agent): (String, String) = (r.get(0)?, r.get(1)?);
        let (model, data): (Option<String>, Option<String>) = (r.get(2)?, r.get(3)?);
        add(&timestamp, &agent, model.as_deref(), data.as_deref(), r.get(4)?);
    }
    Ok(())
}

/// An agent's histograms from `first` to `last` (timestamps; their days, inclusive), from its
/// events.
pub fn recompute_days(tx: &Transaction, agent: &str, first: &str, last: &str) -> rusqlite::Result<()> {
    let (first, last) = (day(first), day(last));
    tx.prepare_cached("DELETE FROM daily_latency WHERE agent_name = ?1 AND day >= ?2 AND day <= ?3")?
        .execute(params![agent, first, last])?;
    let mut batch = BatchLatency::default();
    let args = [Sql::Text(agent.into()), Sql::Text(first.into()), Sql::Text(last.into())];
    add_events(
        tx,
        "agent_name = ?1 AND timestamp >= ?2 AND timestamp < date(?3, '+1 day')",
        &args,
        |t, a, m, d, ms| batch.add_call(t, a, m, d, ms),
    )?;
    batch.apply(tx)
}

/// Drops the histograms of agents that are gone.
pub fn forget_missing_agents(tx: &Transaction) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "DELETE FROM daily_latency WHERE NOT EXISTS (SELECT 1 FROM agents WHERE agents.name = daily_latency.agent_name)",
    )?
    .execute([])
    .map(|_| ())
}

/// The histograms' table: `kind` is `agent`, `model` or `tool`, `calls` the histogram's count
/// and `buckets` the histogram (`Histogram::to_blob`). Created with the others, before any
/// migration, since those that drop agents drop their histograms too.
pub const TABLE: &str = "CREATE TABLE IF NOT EXISTS daily_latency (
    day         TEXT NOT NULL,
    agent_name  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    calls       INTEGER NOT NULL,
    buckets     BLOB NOT NULL,
    PRIMARY KEY (day, agent_name, kind, name)
) WITHOUT ROWID;";

/// Every histogram anew, from the events (a migration's step).
pub fn recompute_all(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch("DELETE FROM daily_latency")?;
    let mut batch = BatchLatency::default();
    add_events(tx, "1", &[], |t, a, m, d, ms| batch.add_call(t, a, m, d, ms))?;
    batch.apply(tx)
}

/// One name's latencies over a range: by UTC day.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Latencies {
    pub name: String,
    pub days: BTreeMap<String, Histogram>,
}

impl Store {
    /// The latencies in `range` (of `agent`'s calls, if given) by agent, model or tool, each
    /// by day, by name. Whole days are read from the histograms, the part days at the range's
    /// edges from the events.
    pub fn latency(&self, range: &Range, agent: Option<&str>, by: By) -> rusqlite::Result<Vec<Latencies>> {
        self.read(|conn| {
            let ((from, to), edges) = split(range);
            let mut out: BTreeMap<String, Latencies> = BTreeMap::new();
            let mut conditions = vec!["kind = ?".to_string()];
            let mut args = vec![Sql::Text(by.as_str().into())];
            for (condition, value) in
                [("day >= ?", &from), ("day < ?", &to), ("agent_name = ?", &agent.map(String::from))]
            {
                if let Some(value) = value {
                    conditions.push(condition.into());
                    args.push(Sql::Text(value.clone()));
                }
            }
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT name, day, buckets FROM daily_latency WHERE {}",
                conditions.join(" AND ")
            ))?;
            let mut rows = stmt.query(params_from_iter(&args))?;
            while let Some(r) = rows.next()? {
                let (name, date, blob): (String, String, Vec<u8>) = (r.get(0)?, r.get(1)?, r.get(2)?);
                day_of(&mut out, &name, &date).add_blob(&blob);
            }
            for (since, until) in edges {
                let mut batch = BatchLatency::default();
                let mut args = vec![Sql::Text(since), Sql::Text(until)];
                let mut condition = "timestamp >= ?1 AND timestamp < ?2".to_string();
                if let Some(agent) = agent {
                    condition.push_str(" AND agent_name = ?3");
                    args.push(Sql::Text(agent.into()));
                }
                add_events(conn, &condition, &args, |t, a, m, d, ms| batch.add_call(t, a, m, d, ms))?;
                for ((date, _, kind, name), h) in &batch.days {
                    if *kind == by {
                        day_of(&mut out, name, date).merge(h);
                    }
                }
            }
            Ok(out.into_values().collect())
        })
    }
}

/// `name`'s histogram of `date` in `out`, made if missing.
fn day_of<'a>(out: &'a mut BTreeMap<String, Latencies>, name: &str, date: &str) -> &'a mut Histogram {
    let entry = out.entry(name.to_string()).or_insert_with(|| Latencies { name: name.into(), ..Default::default() });
    entry.days.entry(date.to_string()).or_default()
}

/// Every stored histogram that differs from the one computed from the events, as text.
#[cfg(test)]
pub fn disagreements(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut computed = BatchLatency::default();
    add_events(conn, "1", &[], |t, a, m, d, ms| computed.add_call(t, a, m, d, ms))?;
    let mut computed: BTreeMap<_, _> = computed.days.into_iter().collect();
    let mut out = Vec::new();
    let mut stmt = conn.prepare("SELECT day, agent_name, kind, name, calls, buckets FROM daily_latency")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let (d, agent, kind, name): (String, String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        let (calls, kept) = (r.get::<_, i64>(4)?, Histogram::from_blob(&r.get::<_, Vec<u8>>(5)?));
        let by = [By::Agent, By::Model, By::Tool].into_iter().find(|b| b.as_str() == kind).unwrap_or(By::Agent);
        let key = (d, agent, by, name);
        match computed.remove(&key) {
            Some(h) if h == kept && calls == h.calls() as i64 => {}
            other => out.push(format!("latency kept {key:?}: {kept:?} ({calls} calls), computed {other:?}")),
        }
    }
    out.extend(computed.into_keys().map(|key| format!("latency computed only: {key:?}")));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The exact nearest-rank percentile of `values`.
    fn exact(values: &[f64], permille: u64) -> f64 {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let rank = (sorted.len() as u64 * permille).div_ceil(1000).max(1);
        sorted[rank as usize - 1]
    }

    fn histogram(values: &[f64]) -> Histogram {
        let mut h = Histogram::default();
        values.iter().for_each(|&v| h.add(v));
        h
    }

    /// Whether `read` is within the stated error of `exact` (and 1 µs of it under 1 µs).
    fn close(read: f64, exact: f64) -> bool {
        if exact < SMALLEST_MS {
            return read == 0.0;
        }
        (read - exact).abs() <= exact * RELATIVE_ERROR * (1.0 + 1e-9)
    }

    #[test]
    fn buckets_cover_every_latency_ingest_accepts() {
        assert_eq!(bucket(0.0), Some(0));
        assert_eq!(bucket(0.000_9), Some(0));
        assert_eq!(bucket(SMALLEST_MS), Some(1));
        assert_eq!((bucket(-1.0), bucket(f64::NAN), bucket(f64::INFINITY)), (None, None, None));
        let last = bucket(crate::ingest::MAX_DURATION_MS).unwrap();
        assert!(last < LAST_BUCKET, "{last} buckets reach MAX_DURATION_MS");
        assert_eq!(bucket(f64::MAX), Some(LAST_BUCKET), "clamped, never wrapped");
        for ms in [0.001, 0.5, 1.0, 812.5, 1e4, 1e9, crate::ingest::MAX_DURATION_MS] {
            assert!(close(value(bucket(ms).unwrap()), ms), "{ms}");
        }
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let h = histogram(&[100.0, 200.0, 300.0, 400.0]);
        assert_eq!(h.calls(), 4);
        assert!(close(h.percentile(500).unwrap(), 200.0));
        assert!(close(h.percentile(950).unwrap(), 400.0));
        assert!(close(h.percentile(0).unwrap(), 100.0));
        assert_eq!(Histogram::default().percentile(500), None);
        let mut huge = Histogram::default();
        huge.counts.insert(5, u64::MAX);
        huge.merge(&huge.clone());
        assert_eq!(huge.calls(), u64::MAX, "saturates");
        assert_eq!(huge.percentile(990), Some(value(5)));
    }

    #[test]
    fn blobs_round_trip_and_tolerate_garbage() {
        let h = histogram(&[0.0, 1.5, 1.5, 9e12]);
        assert_eq!(Histogram::from_blob(&h.to_blob()), h);
        let mut torn = h.to_blob();
        torn.extend_from_slice(&[1, 2, 3]);
        assert_eq!(Histogram::from_blob(&torn), h, "a torn pair is left out");
    }

    #[test]
    fn calls_are_keyed_by_day_agent_model_and_tool() {
        let mut batch = BatchLatency::default();
        let t = "2026-01-31T12:00:00.000000Z";
        batch.add_call(t, "a", Some("gpt"), None, Some(10.0));
        batch.add_call(t, "a", None, Some(r#"{"tool_name": " search "}"#), Some(20.0));
        batch.add_call(t, "a", None, Some(r#"{"tool_name": ""}"#), Some(30.0));
        batch.add_call(t, "a", None, None, Some(40.0));
        batch.add_call(t, "a", Some("gpt"), None, None);
        let calls = |by: By, name: &str| {
            batch.days.get(&("2026-01-31".into(), "a".into(), by, name.into())).map(Histogram::calls)
        };
        assert_eq!(calls(By::Agent, "a"), Some(3), "LLM and tool calls with a duration");
        assert_eq!(calls(By::Model, "gpt"), Some(1));
        assert_eq!(calls(By::Tool, "search"), Some(1));
        assert_eq!(batch.days.len(), 3, "an unnamed tool counts for its agent only");
    }

    proptest! {
        #[test]
        fn percentiles_are_within_the_stated_error(
            values in prop::collection::vec(
                prop_oneof![Just(0.0), 0.0..SMALLEST_MS, 0.001..10.0, 10.0..1e6, 1e6..crate::ingest::MAX_DURATION_MS],
                1..400,
            ),
            permille in 0u64..=1000,
        ) {
            let h = histogram(&values);
            prop_assert_eq!(h.calls(), values.len() as u64);
            for p in [permille, 500, 950, 990] {
                let (read, exact) = (h.percentile(p).unwrap(), exact(&values, p));
                prop_assert!(close(read, exact), "p{} read {} exact {}", p, read, exact);
            }
        }
    }
}
