//! Property tests: whatever a client sends, in whatever order, the store stays consistent and
//! the trace stays whole.
//!
//! - Any sequence of batches (new events, the same events again, events whose ids another run
//!   has, counts near i64::MAX), deletes of agents and runs, renames, retention sweeps and
//!   search-index catch-ups keeps every total — each run's, each agent's, the metrics' over a
//!   time range — equal to what the events left add up to, never fails on the server's side
//!   (a refusal is a 4xx, named), and leaves every stored event findable by a word of its text.
//! - The trace of any parent graph (chains, cycles, forests, self-parents, dangling parents,
//!   chains deeper than TRACE_DEPTH) holds each event exactly once, nested at most TRACE_DEPTH.
//!
//! `cargo test --release -p gati-backend properties` runs them (PROPTEST_CASES overrides the
//! case counts).

use std::collections::{BTreeMap, HashMap};

use gati_service::limits::TRACE_DEPTH;
use proptest::prelude::*;
use serde_json::{json, Value};

use crate::{
    ingest::{parse_batch, BatchError},
    model::{Event, Run, RunStatus, TraceNode},
    store::{By, EventFilter, Histogram, Page, Range, RenameError, RunFilter, Store},
};

const ALL: Page = Page { limit: 1000, offset: 0 };
const KINDS: [&str; 4] = ["agent_start", "llm_call", "tool_call", "agent_end"];

/// An event as the generator picks it; its id is `e{id}`, and its text holds the word
/// `quokka{id}z` (so the same id always brings the same word).
#[derive(Debug, Clone)]
struct Spec {
    id: u8,
    run: u8,
    agent: u8,
    kind: usize,
    day: u8,
    tokens_in: Option<i64>,
    tokens_out: Option<i64>,
    cost: Option<f64>,
    latency_ms: Option<f64>,
    error: bool,
}

fn timestamp(day: u8, id: u8) -> String {
    format!("2026-01-{:02}T12:{:02}:{:02}.000000Z", 10 + day, id / 60, id % 60)
}

fn midnight(day: u8) -> String {
    format!("2026-01-{:02}T00:00:00.000000Z", 10 + day)
}

impl Spec {
    fn json(&self) -> Value {
        let mut data = json!({"text": format!("note quokka{}z from step {}", self.id, KINDS[self.kind])});
        let fields = [
            ("tokens_in", self.tokens_in.map(Value::from)),
            ("tokens_out", self.tokens_out.map(Value::from)),
            ("cost", self.cost.map(Value::from)),
            ("latency_ms", self.latency_ms.map(Value::from)),
        ];
        for (key, value) in fields {
            if let Some(value) = value {
                data[key] = value;
            }
        }
        if self.error {
            data["status"] = json!("error");
        }
        // Two models and two tools, for the latency histograms.
        match KINDS[self.kind] {
            "llm_call" => data["model"] = json!(format!("m{}", self.id % 2)),
            "tool_call" => data["tool_name"] = json!(format!("t{}", self.id % 2)),
            _ => {}
        }
        json!({
            "event_id": format!("e{}", self.id), "run_id": format!("r{}", self.run),
            "agent_name": format!("a{}", self.agent), "event_type": KINDS[self.kind],
            "timestamp": timestamp(self.day, self.id), "data": data,
        })
    }
}

fn count() -> impl Strategy<Value = Option<i64>> {
    prop_oneof![
        3 => Just(None),
        6 => (0i64..5_000).prop_map(Some),
        // Counts no total can hold twice: the batch that would overflow is refused whole.
        1 => (i64::MAX / 2..=i64::MAX).prop_map(Some),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        (0u8..40, 0u8..6, 0u8..3, 0usize..4, 0u8..4),
        (count(), count(), proptest::option::of(0.0f64..2.0), proptest::option::of(0.0f64..5_000.0), any::<bool>()),
    )
        .prop_map(|((id, run, agent, kind, day), (tokens_in, tokens_out, cost, latency_ms, error))| Spec {
            id,
            run,
            agent,
            kind,
            day,
            tokens_in,
            tokens_out,
            cost,
            latency_ms,
            error: error && kind == 3,
        })
}

#[derive(Debug, Clone)]
enum Op {
    Ingest(Vec<Spec>),
    /// An earlier batch sent again (the SDK retrying), by its position among them.
    Again(usize),
    DeleteAgent(u8),
    DeleteRun(u8),
    /// One of the runs there are (by position), to a name another run may have.
    Rename(usize, u8),
    /// Retention: the runs whose last event is before that day's midnight go.
    Sweep(u8),
    CatchUp,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => proptest::collection::vec(spec(), 1..8).prop_map(Op::Ingest),
        2 => any::<usize>().prop_map(Op::Again),
        1 => (0u8..3).prop_map(Op::DeleteAgent),
        2 => (0u8..6).prop_map(Op::DeleteRun),
        1 => (any::<usize>(), 0u8..3).prop_map(|(run, name)| Op::Rename(run, name)),
        1 => (0u8..5).prop_map(Op::Sweep),
        2 => Just(Op::CatchUp),
    ]
}

/// A store of its own, in a folder removed at the end.
struct TempStore {
    dir: std::path::PathBuf,
    store: Store,
}

impl TempStore {
    fn new() -> TempStore {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "gati-properties-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open(&dir.join("gati.db")).unwrap();
        TempStore { dir, store }
    }
}

impl Drop for TempStore {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `ops`, checking after each that nothing failed on the server's side and `check` holds.
fn run_ops(ops: &[Op], check: impl Fn(&Store) -> Result<(), TestCaseError>) -> Result<(), TestCaseError> {
    let temp = TempStore::new();
    let store = &temp.store;
    let mut batches: Vec<Vec<Value>> = Vec::new();
    for op in ops {
        match op {
            Op::Ingest(specs) => {
                let batch: Vec<Value> = specs.iter().map(Spec::json).collect();
                ingest(store, &batch)?;
                batches.push(batch);
            }
            Op::Again(k) if !batches.is_empty() => ingest(store, &batches[k % batches.len()].clone())?,
            Op::Again(_) => {}
            Op::DeleteAgent(a) => {
                store.delete_agent(&format!("a{a}")).map_err(server)?;
            }
            Op::DeleteRun(r) => {
                store.delete_run(&format!("r{r}")).map_err(server)?;
            }
            Op::Rename(k, name) => {
                let (runs, _) = store.runs(&RunFilter::default(), ALL).map_err(server)?.unwrap();
                if !runs.is_empty() {
                    let run = &runs[k % runs.len()];
                    match store.rename_run(&run.run_id, &format!("name {name}")) {
                        Ok(renamed) => prop_assert_eq!(renamed.run_name, Some(format!("name {name}"))),
                        Err(RenameError::Taken) => {}
                        Err(RenameError::Gone) => prop_assert!(false, "run {} was listed, then gone", run.run_id),
                        Err(RenameError::Database(e)) => return Err(server(e)),
                    }
                }
            }
            Op::Sweep(day) => {
                store.sweep(&midnight(*day)).map_err(server)?;
            }
            Op::CatchUp => {
                store.catch_up().map_err(server)?;
            }
        }
        check(store).map_err(|e| TestCaseError::fail(format!("after {op:?}: {e}")))?;
    }
    Ok(())
}

fn server(e: rusqlite::Error) -> TestCaseError {
    TestCaseError::fail(format!("a server-side failure (a 5xx): {e}"))
}

/// Ingests a batch; a refusal must be one a client is told about (a 4xx naming a field).
fn ingest(store: &Store, batch: &[Value]) -> Result<(), TestCaseError> {
    let events = match parse_batch(Value::from(batch.to_vec()).to_string().as_bytes()) {
        Ok(events) => events,
        Err(refused) => {
            prop_assert!((400..500).contains(&refused.status) && !refused.error.is_empty(), "{refused:?}");
            return Ok(());
        }
    };
    match store.ingest(events) {
        Ok(_) => Ok(()),
        Err(e) => match BatchError::from_store(&e) {
            Some(refused) => {
                prop_assert!((400..500).contains(&refused.status) && !refused.error.is_empty(), "{refused:?}");
                Ok(())
            }
            None => Err(server(e)),
        },
    }
}

/// Every stored event (newest first).
fn stored_events(store: &Store) -> Result<Vec<Event>, TestCaseError> {
    let (events, count) = store.search(&EventFilter::default(), ALL).map_err(server)?;
    prop_assert_eq!(count.total as usize, events.len());
    Ok(events)
}

/// What a set of events adds up to.
#[derive(Debug, Default, Clone, PartialEq)]
struct Sums {
    events: i64,
    tokens_in: i64,
    tokens_out: i64,
    total_tokens: i64,
    cost: f64,
    errors: i64,
}

impl Sums {
    fn add(&mut self, e: &Event) {
        self.events += 1;
        self.tokens_in += e.tokens_in.unwrap_or(0);
        self.tokens_out += e.tokens_out.unwrap_or(0);
        self.total_tokens += e.total_tokens.unwrap_or(0);
        self.cost += e.cost.unwrap_or(0.0);
        self.errors += i64::from(e.error);
    }

    fn equals(&self, other: &Sums) -> bool {
        let Sums { events, tokens_in, tokens_out, total_tokens, cost, errors } = other;
        (self.events, self.tokens_in, self.tokens_out, self.total_tokens, self.errors)
            == (*events, *tokens_in, *tokens_out, *total_tokens, *errors)
            && (self.cost - cost).abs() < 1e-6
    }
}

fn millis(timestamp: &str) -> f64 {
    chrono::DateTime::parse_from_rfc3339(timestamp).unwrap().timestamp_micros() as f64 / 1000.0
}

/// A run as its events say it is: sums, status, span and duration.
fn run_from_events(events: &[&Event]) -> (Sums, RunStatus, Option<(String, String)>, f64) {
    let mut sums = Sums::default();
    events.iter().for_each(|e| sums.add(e));
    let starts = events.iter().filter(|e| e.event_type == "agent_start").count();
    let ends: Vec<&&Event> = events.iter().filter(|e| e.event_type == "agent_end").collect();
    let status = match ends.iter().max_by(|a, b| a.timestamp.cmp(&b.timestamp)) {
        Some(last) if ends.len() >= starts => {
            if last.error {
                RunStatus::Failed
            } else {
                RunStatus::Completed
            }
        }
        _ => RunStatus::Active,
    };
    let first = events.iter().map(|e| e.timestamp.clone()).min();
    let last = events.iter().map(|e| e.timestamp.clone()).max();
    let span = first.zip(last);
    let longest = events.iter().filter_map(|e| e.duration_ms).fold(0.0, f64::max);
    let duration = span.as_ref().map_or(0.0, |(first, last)| millis(last) - millis(first)).max(longest);
    (sums, status, span, duration)
}

/// Every kept total against what the events left add up to.
fn totals_agree(store: &Store) -> Result<(), TestCaseError> {
    let events = stored_events(store)?;
    let (runs, total) = store.runs(&RunFilter::default(), ALL).map_err(server)?.unwrap();
    prop_assert_eq!(total as usize, runs.len());
    let by_id: HashMap<&str, &Run> = runs.iter().map(|r| (r.run_id.as_str(), r)).collect();
    let mut of_run: BTreeMap<&str, Vec<&Event>> = runs.iter().map(|r| (r.run_id.as_str(), Vec::new())).collect();
    for e in &events {
        let run = by_id.get(e.run_id.as_str());
        prop_assert!(run.is_some_and(|r| r.agent_name == e.agent_name), "{} is not under its run's agent", e.event_id);
        of_run.get_mut(e.run_id.as_str()).unwrap().push(e);
    }
    // (agent) -> (runs, active runs, sums, duration)
    let mut of_agent: BTreeMap<&str, (i64, i64, Sums, f64)> = BTreeMap::new();
    for run in &runs {
        let (sums, status, span, duration) = run_from_events(&of_run[run.run_id.as_str()]);
        prop_assert!(sums.events > 0, "run {} has no event", run.run_id);
        let kept = Sums {
            events: run.event_count,
            tokens_in: run.tokens_in,
            tokens_out: run.tokens_out,
            total_tokens: run.total_tokens,
            cost: run.total_cost,
            errors: run.error_count,
        };
        prop_assert!(kept.equals(&sums), "run {}: kept {:?}, its events add up to {:?}", run.run_id, kept, sums);
        prop_assert_eq!(run.status, status, "run {}", run.run_id);
        if let Some((first, last)) = span {
            prop_assert_eq!((&run.started_at, run.last_event_at.as_ref()), (&first, Some(&last)));
        }
        prop_assert!((run.total_duration_ms - duration).abs() < 1.0, "run {}: {} ms", run.run_id, duration);
        let agent = of_agent.entry(run.agent_name.as_str()).or_default();
        agent.0 += 1;
        agent.1 += i64::from(status == RunStatus::Active);
        let s = &mut agent.2;
        (s.events, s.tokens_in, s.tokens_out, s.total_tokens, s.cost, s.errors) = (
            s.events + sums.events,
            s.tokens_in + sums.tokens_in,
            s.tokens_out + sums.tokens_out,
            s.total_tokens + sums.total_tokens,
            s.cost + sums.cost,
            s.errors + sums.errors,
        );
        agent.3 += duration;
    }
    let (agents, _) = store.agents(ALL).map_err(server)?;
    // An agent whose last run was deleted stays (as in 0.0.3), with nothing to count.
    let names: std::collections::BTreeSet<&str> = agents.iter().map(|a| a.name.as_str()).collect();
    prop_assert!(of_agent.keys().all(|a| names.contains(a)), "a run's agent is not listed");
    for a in &agents {
        let (runs, active, sums, duration) = of_agent.get(a.name.as_str()).cloned().unwrap_or_default();
        let (runs, active, sums, duration) = (&runs, &active, &sums, &duration);
        let kept = Sums {
            events: a.event_count,
            tokens_in: a.tokens_in,
            tokens_out: a.tokens_out,
            total_tokens: a.total_tokens,
            cost: a.total_cost,
            errors: a.error_count,
        };
        prop_assert!(kept.equals(sums), "agent {}: kept {:?}, its events add up to {:?}", a.name, kept, sums);
        prop_assert_eq!((a.run_count, a.active_runs), (*runs, *active), "agent {}", a.name);
        prop_assert!((a.total_duration_ms - duration).abs() < 1.0, "agent {}", a.name);
    }
    // The metrics: over everything, and over a range whose edges cut days (daily totals inside,
    // events at the edges).
    let ranges = [
        (Range::default(), None),
        (
            Range {
                since: Some("2026-01-11T06:00:00.000000Z".into()),
                until: Some("2026-01-13T12:00:30.000000Z".into()),
            },
            Some(("2026-01-11T06:00:00.000000Z", "2026-01-13T12:00:30.000000Z")),
        ),
    ];
    for (range, bounds) in ranges {
        let mut want: BTreeMap<String, Sums> = BTreeMap::new();
        for e in &events {
            if bounds.is_none_or(|(since, until)| e.timestamp.as_str() >= since && e.timestamp.as_str() < until) {
                want.entry(e.agent_name.clone()).or_default().add(e);
            }
        }
        for t in store.agent_totals(&range, None).map_err(server)? {
            let e = &t.events;
            let kept = Sums {
                events: e.events,
                tokens_in: e.tokens_in,
                tokens_out: e.tokens_out,
                total_tokens: e.total_tokens,
                cost: e.cost,
                errors: e.errors,
            };
            let sums = want.remove(&t.agent).unwrap_or_default();
            prop_assert!(kept.equals(&sums), "metrics of {} over {:?}: {:?}, events: {:?}", t.agent, range, kept, sums);
        }
        prop_assert!(want.is_empty(), "metrics over {:?} leave out {:?}", range, want.keys());
        latency_agrees(store, &events, &range, bounds)?;
    }
    Ok(())
}

/// The latency histograms over `range` (within `bounds`) against the events' latencies: per
/// agent (its LLM and tool calls), per model and per tool.
fn latency_agrees(
    store: &Store,
    events: &[Event],
    range: &Range,
    bounds: Option<(&str, &str)>,
) -> Result<(), TestCaseError> {
    for by in [By::Agent, By::Model, By::Tool] {
        let mut want: BTreeMap<(String, String), Histogram> = BTreeMap::new();
        for e in events {
            let (Some(ms), true) = (e.duration_ms, bounds.is_none_or(|(s, u)| *e.timestamp >= *s && *e.timestamp < *u))
            else {
                continue;
            };
            let tool = (e.event_type == "tool_call").then(|| e.data["tool_name"].as_str()).flatten();
            let name = match by {
                By::Agent if e.model.is_some() || e.event_type == "tool_call" => Some(e.agent_name.as_str()),
                By::Model => e.model.as_deref(),
                By::Tool => tool,
                By::Agent => None,
            };
            if let Some(name) = name {
                want.entry((name.to_string(), e.timestamp[..10].to_string())).or_default().add(ms);
            }
        }
        let mut kept: BTreeMap<(String, String), Histogram> = BTreeMap::new();
        for l in store.latency(range, None, by).map_err(server)? {
            for (date, h) in l.days {
                kept.insert((l.name.clone(), date), h);
            }
        }
        prop_assert_eq!(kept, want, "latency by {:?} over {:?}", by, range);
    }
    Ok(())
}

/// Every stored event is found by the word its text holds.
fn search_finds_everything(store: &Store) -> Result<(), TestCaseError> {
    for e in stored_events(store)? {
        let word = e.data["text"].as_str().and_then(|t| t.split(' ').nth(1)).unwrap_or_default().to_string();
        let filter = EventFilter { text: Some(word.clone()), ..Default::default() };
        let (found, _) = store.search(&filter, ALL).map_err(server)?;
        prop_assert!(found.iter().any(|f| f.event_id == e.event_id), "{word:?} does not find {}", e.event_id);
        prop_assert!(found.iter().all(|f| f.data["text"].as_str().is_some_and(|t| t.contains(&word))));
    }
    Ok(())
}

/// How many cases a property runs: `PROPTEST_CASES`, or `default`.
fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(default);
    // No regression files written into the source tree: a failure prints its minimal case.
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config(250))]

    #[test]
    fn every_total_is_what_the_events_left_add_up_to(ops in proptest::collection::vec(op(), 1..12)) {
        run_ops(&ops, totals_agree)?;
    }

    #[test]
    fn search_finds_every_stored_event(ops in proptest::collection::vec(op(), 1..12)) {
        run_ops(&ops, search_finds_everything)?;
    }
}

// The trace of any parent graph.

/// Whom an event names as its parent.
#[derive(Debug, Clone)]
enum Parent {
    None,
    /// The event at this position (itself, one before or after it: loops of any length).
    Event(usize),
    /// An id no event of the run has.
    Dangling,
}

fn graph() -> impl Strategy<Value = Vec<(Parent, bool)>> {
    let parent = prop_oneof![
        1 => Just(Parent::None),
        6 => any::<usize>().prop_map(Parent::Event),
        1 => Just(Parent::Dangling),
    ];
    let random = proptest::collection::vec((parent, proptest::bool::weighted(0.1)), 0..120);
    // A chain deeper than the limit, with links of the random kind mixed in.
    let deep = (TRACE_DEPTH..TRACE_DEPTH * 4, proptest::collection::vec((any::<usize>(), any::<usize>()), 0..8))
        .prop_map(|(n, extra)| {
            let mut graph: Vec<(Parent, bool)> =
                (0..n).map(|i| (if i == 0 { Parent::None } else { Parent::Event(i - 1) }, false)).collect();
            for (at, to) in extra {
                graph[at % n].0 = Parent::Event(to % n);
            }
            graph
        });
    prop_oneof![2 => random, 1 => deep]
}

fn graph_events(graph: &[(Parent, bool)]) -> Vec<Event> {
    let n = graph.len();
    graph
        .iter()
        .enumerate()
        .map(|(i, (parent, is_end))| Event {
            event_id: format!("e{i}"),
            run_id: "r".into(),
            run_name: None,
            agent_name: "a".into(),
            event_type: if *is_end { "agent_end" } else { "step" }.into(),
            timestamp: timestamp((i / 3600) as u8, (i % 60) as u8),
            parent_event_id: match parent {
                Parent::None => None,
                Parent::Event(j) => Some(format!("e{}", j % n.max(1))),
                Parent::Dangling => Some("elsewhere".into()),
            },
            previous_event_id: None,
            data: json!({}),
            attributes: json!({}),
            model: None,
            tokens_in: Some(1),
            tokens_out: None,
            total_tokens: Some(1),
            cost: None,
            duration_ms: None,
            error: false,
        })
        .collect()
}

fn some_run() -> Run {
    Run {
        run_id: "r".into(),
        run_name: None,
        label: "r".into(),
        agent_name: "a".into(),
        status: RunStatus::Active,
        environment: None,
        metadata: None,
        created_at: String::new(),
        started_at: String::new(),
        last_event_at: None,
        ended_at: None,
        event_count: 0,
        tokens_in: 0,
        tokens_out: 0,
        total_tokens: 0,
        total_cost: 0.0,
        total_duration_ms: 0.0,
        error_count: 0,
        session_id: None,
    }
}

proptest! {
    #![proptest_config(config(3000))]

    #[test]
    fn a_trace_holds_each_event_once_nested_at_most_the_limit(graph in graph()) {
        let events = graph_events(&graph);
        let trace = crate::trace::trace(&some_run(), &events);
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut truncated = false;
        let mut roots_total = 0;
        // (node, the node it is shown under)
        let mut stack: Vec<(&TraceNode, Option<&TraceNode>)> = trace.execution_tree.iter().map(|n| (n, None)).collect();
        for root in &trace.execution_tree {
            prop_assert_eq!(root.depth, 0);
            roots_total += root.subtree.events;
        }
        while let Some((node, shown_under)) = stack.pop() {
            *seen.entry(node.event_id.clone()).or_default() += 1;
            prop_assert!(node.depth as usize <= TRACE_DEPTH);
            truncated |= node.depth_truncated;
            if let Some(parent) = shown_under {
                if node.depth_truncated {
                    prop_assert_eq!(node.depth as usize, TRACE_DEPTH);
                    prop_assert_eq!(parent.depth as usize, TRACE_DEPTH - 1);
                } else {
                    prop_assert_eq!(node.parent_event_id.as_ref(), Some(&parent.event_id));
                    prop_assert_eq!(node.depth, parent.depth + 1);
                }
            }
            if node.depth as usize == TRACE_DEPTH {
                prop_assert!(node.children.is_empty());
            }
            stack.extend(node.children.iter().map(|c| (c, Some(node))));
        }
        prop_assert_eq!(seen.len(), events.len());
        prop_assert!(seen.values().all(|n| *n == 1), "an event shown twice");
        prop_assert_eq!(roots_total as usize, events.len(), "the roots' subtrees count every event once");
        prop_assert_eq!(trace.depth_truncated, truncated);
    }
}
