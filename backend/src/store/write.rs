//! Ingest: batches written in groups, each event under its run's agent, with the totals.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde_json::Value;

use super::{agents::forget_agents_without_runs, latency, lock, totals, Store};
use crate::ingest::Event as Incoming;

/// At most this many events go to disk in one transaction.
const GROUP_EVENTS: usize = 20_000;

/// Where a waiting batch finds its answer.
type Slot = Arc<Mutex<Option<rusqlite::Result<(usize, usize)>>>>;
/// A batch waiting to be written, and where its answer goes.
pub(super) type Waiting = (Vec<Incoming>, Slot);

impl Store {
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

fn write_batch(tx: &Transaction, batch: &[Incoming]) -> rusqlite::Result<(usize, usize)> {
    // Only the events not stored yet (nor earlier in the batch) count: a duplicate, even one
    // sent under another run, creates no run and no agent, and names or moves none; every run
    // and agent has an event.
    let mut seen = HashSet::with_capacity(batch.len());
    let mut known = tx.prepare_cached("SELECT EXISTS (SELECT 1 FROM events WHERE event_id = ?1)")?;
    let mut events = Vec::with_capacity(batch.len());
    for e in batch {
        if seen.insert(e.event_id.as_str()) && !known.query_row([&e.event_id], |r| r.get::<_, bool>(0))? {
            events.push(e);
        }
    }
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
    for &e in &events {
        if let Some((_, has_name)) = agents.get(e.run_id.as_str()) {
            if *has_name || e.run_name.is_none() {
                continue;
            }
        }
        let resolved = ensure_run(tx, e, named.get(e.run_id.as_str()).copied())?;
        agents.insert(&e.run_id, resolved);
    }
    join_sessions(tx, &events)?;
    let mut sums = totals::BatchTotals::default();
    let mut latencies = latency::BatchLatency::default();
    let mut stored = 0;
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO events (event_id, run_id, agent_name, event_type, timestamp,
            parent_event_id, data, previous_event_id, attributes,
            tokens_in, tokens_out, total_tokens, cost, duration_ms, error, model)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?;
    for &e in &events {
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
            sums.add(e, agent);
            latencies.add(e, agent);
            stored += 1;
        }
    }
    sums.apply(tx)?;
    latencies.apply(tx)?;
    Ok((stored, batch.len() - stored))
}

/// Puts each run of the batch in the session its earliest event that names one says (the first
/// such of equal timestamps stored): a run belongs to at most one session, the same whatever
/// order its events come in (and the same as the upgrade to version 5 finds).
fn join_sessions(tx: &Transaction, events: &[&Incoming]) -> rusqlite::Result<()> {
    let mut earliest: HashMap<&str, &Incoming> = HashMap::new();
    for &e in events.iter().filter(|e| e.session_id.is_some()) {
        let kept = earliest.entry(e.run_id.as_str()).or_insert(e);
        if e.timestamp < kept.timestamp {
            *kept = e;
        }
    }
    // A run already in another session moves only if none of its stored events names one as
    // early: this reads the run's earlier events only when its events name different sessions.
    let mut join = tx.prepare_cached(
        "UPDATE runs SET session_id = ?2 WHERE run_id = ?1 AND (session_id IS NULL OR (session_id != ?2
            AND NOT EXISTS (SELECT 1 FROM events e WHERE e.run_id = ?1 AND e.timestamp <= ?3
                AND json_valid(e.attributes) AND json_type(e.attributes, '$.session_id') IN ('text', 'integer')
                AND length(CAST(json_extract(e.attributes, '$.session_id') AS BLOB)) BETWEEN 1 AND 256
                AND trim(json_extract(e.attributes, '$.session_id')) != '')))",
    )?;
    for (run, e) in earliest {
        join.execute(params![run, e.session_id, e.timestamp])?;
    }
    Ok(())
}

/// The model a stored event names (its `data` and `attributes` as text), as ingest reads it.
pub(super) fn stored_model(data: &str, attributes: &str) -> Option<String> {
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

/// Version 2's migration: what `ingest` does now, done to the events stored before. Each run
/// goes to the agent its first `agent_start` (else `agent_end`) names, every event to its
/// run's agent (the name it was stored under kept as `attributes.agent_name`), and the agents
/// left without a run, such as the name a 0.0.3 SDK was initialised with, are gone.
pub(super) fn attribute_to_runs(tx: &Transaction) -> rusqlite::Result<()> {
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
