//! A run's execution tree: each event under the one its `parent_event_id` names, with what it
//! and everything below it cost.
//!
//! As in 0.0.3, an `agent_end` is a root (its SDKs give it the agent_start as parent): the run's
//! last step beside its first, not inside it. An event whose parent is not in the run, or whose
//! parent chain loops, is a root too. Each level is in time order (the events come in it).
//!
//! Whatever the client sent, the tree is built without recursion, in time linear in the events,
//! and holds each event exactly once. It nests at most [`TRACE_DEPTH`] steps below a root, so
//! that its JSON fits every reader's recursion limit (`gati_service::limits`): an event deeper
//! than that is answered at that depth, among the children of its ancestor one step above, and
//! marked `depth_truncated` (as the trace is).

use std::collections::{HashMap, VecDeque};

use chrono::DateTime;
use gati_service::limits::TRACE_DEPTH;
use serde_json::Value;

use crate::model::{Event, Run, Subtree, Trace, TraceNode};

pub fn trace(run: &Run, events: &[Event]) -> Trace {
    let parents = parents(events);
    let (order, depths) = breadth_first(&parents);
    let subtrees = subtrees(events, &parents, &order);

    // Where each event is answered: under its parent, or, deeper than the limit, under its
    // ancestor one step above the limit (`holder`).
    let mut holder: Vec<Option<usize>> = vec![None; events.len()];
    let mut shown_parent: Vec<Option<usize>> = vec![None; events.len()];
    for &i in &order {
        if depths[i] + 1 == TRACE_DEPTH {
            holder[i] = Some(i);
        }
        let Some(parent) = parents[i] else { continue };
        if depths[i] >= TRACE_DEPTH {
            holder[i] = holder[parent];
        }
        shown_parent[i] = Some(if depths[i] > TRACE_DEPTH { holder[parent].unwrap_or(parent) } else { parent });
    }
    let mut shown_children: Vec<Vec<usize>> = vec![Vec::new(); events.len()];
    let mut roots = Vec::new();
    for (i, parent) in shown_parent.iter().enumerate() {
        match parent {
            Some(p) => shown_children[*p].push(i),
            None => roots.push(i),
        }
    }
    // Built from the deepest up: every event's children are built before it is.
    let mut nodes: Vec<Option<TraceNode>> = (0..events.len()).map(|_| None).collect();
    for &i in order.iter().rev() {
        let children = shown_children[i].iter().filter_map(|c| nodes[*c].take()).collect();
        nodes[i] = Some(node(&events[i], depths[i], subtrees[i], children));
    }
    let execution_tree: Vec<TraceNode> = roots.iter().filter_map(|r| nodes[*r].take()).collect();

    let start = events.iter().find(|e| e.event_type == "agent_start");
    let end = events.iter().rev().find(|e| e.event_type == "agent_end");
    let graph_structure = start
        .and_then(|e| found(&e.data, "graph_structure"))
        .or_else(|| end.and_then(|e| found(&e.data, "graph_structure")));
    Trace {
        run_name: run.run_name.clone(),
        agent_name: run.agent_name.clone(),
        total_cost: run.total_cost,
        total_duration_ms: run.total_duration_ms,
        total_tokens_in: run.tokens_in,
        total_tokens_out: run.tokens_out,
        execution_tree,
        graph_structure,
        execution_flow: end.and_then(|e| found(&e.data, "execution_flow")),
        run_id: run.run_id.clone(),
        status: run.status,
        total_tokens: run.total_tokens,
        event_count: run.event_count,
        error_count: run.error_count,
        depth_limit: TRACE_DEPTH as u32,
        depth_truncated: depths.iter().any(|d| *d > TRACE_DEPTH),
    }
}

/// Each event's parent in the tree: the event its `parent_event_id` names in the run, unless
/// it is an agent_end, names itself, or closes a loop of parents.
fn parents(events: &[Event]) -> Vec<Option<usize>> {
    let index: HashMap<&str, usize> = events.iter().enumerate().map(|(i, e)| (e.event_id.as_str(), i)).collect();
    let mut parents: Vec<Option<usize>> = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            if e.event_type == "agent_end" {
                return None;
            }
            let parent = *index.get(e.parent_event_id.as_deref()?)?;
            (parent != i).then_some(parent)
        })
        .collect();
    // Walks up from each event in time order, each event walked through once: a walk ends at a
    // root, at an event an earlier walk went through (no loop is left there), or back at an
    // event of its own, whose loop the event it came from closes: that one becomes a root.
    const UNSEEN: usize = usize::MAX;
    let mut walk = vec![UNSEEN; events.len()];
    for start in 0..events.len() {
        if walk[start] != UNSEEN {
            continue;
        }
        walk[start] = start;
        let mut at = start;
        while let Some(parent) = parents[at] {
            if walk[parent] == start {
                parents[at] = None;
                break;
            }
            if walk[parent] != UNSEEN {
                break;
            }
            walk[parent] = start;
            at = parent;
        }
    }
    parents
}

/// The events from the roots down, each after its parent, and each one's depth (0 for a root).
/// `parents` has no loops, so every event is reached from exactly one root.
fn breadth_first(parents: &[Option<usize>]) -> (Vec<usize>, Vec<usize>) {
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); parents.len()];
    let mut queue = VecDeque::new();
    for (i, parent) in parents.iter().enumerate() {
        match parent {
            Some(p) => children[*p].push(i),
            None => queue.push_back(i),
        }
    }
    let mut depths = vec![0; parents.len()];
    let mut order = Vec::with_capacity(parents.len());
    while let Some(i) = queue.pop_front() {
        order.push(i);
        for &c in &children[i] {
            depths[c] = depths[i] + 1;
            queue.push_back(c);
        }
    }
    (order, depths)
}

/// What each event and everything below it (in the run, however deep) adds up to, summed from
/// the deepest up.
fn subtrees(events: &[Event], parents: &[Option<usize>], order: &[usize]) -> Vec<Subtree> {
    let starts: Vec<Option<f64>> = events.iter().map(|e| millis(&e.timestamp)).collect();
    let mut subtrees: Vec<Subtree> = events
        .iter()
        .map(|e| Subtree {
            events: 1,
            cost: e.cost.unwrap_or(0.0),
            tokens_in: e.tokens_in.unwrap_or(0),
            tokens_out: e.tokens_out.unwrap_or(0),
            total_tokens: e.total_tokens.unwrap_or(0),
            errors: i64::from(e.error),
            duration_ms: e.duration_ms.unwrap_or(0.0),
        })
        .collect();
    for &i in order.iter().rev() {
        let Some(p) = parents[i] else { continue };
        let child = subtrees[i];
        let s = &mut subtrees[p];
        s.events += child.events;
        s.cost += child.cost;
        // Saturating: the run's totals can hold these sums, but an older database's may not.
        s.tokens_in = s.tokens_in.saturating_add(child.tokens_in);
        s.tokens_out = s.tokens_out.saturating_add(child.tokens_out);
        s.total_tokens = s.total_tokens.saturating_add(child.total_tokens);
        s.errors += child.errors;
        // The child ends when it started plus its own span.
        if let (Some(start), Some(child_start)) = (starts[p], starts[i]) {
            s.duration_ms = s.duration_ms.max(child_start - start + child.duration_ms);
        }
    }
    subtrees
}

/// `data[key]`, or `data.metadata[key]` (where 0.0.3's LangGraph instrumentation put it first).
fn found(data: &Value, key: &str) -> Option<Value> {
    [&data[key], &data["metadata"][key]].into_iter().find(|v| !v.is_null()).cloned()
}

fn node(e: &Event, depth: usize, subtree: Subtree, children: Vec<TraceNode>) -> TraceNode {
    TraceNode {
        event_id: e.event_id.clone(),
        event_type: e.event_type.clone(),
        timestamp: e.timestamp.clone(),
        data: e.data.clone(),
        parent_event_id: e.parent_event_id.clone(),
        previous_event_id: e.previous_event_id.clone(),
        latency_ms: e.duration_ms,
        cost: e.cost,
        tokens_in: e.tokens_in,
        tokens_out: e.tokens_out,
        total_tokens: e.total_tokens,
        model: e.model.clone(),
        error: e.error,
        depth: depth.min(TRACE_DEPTH) as u32,
        depth_truncated: depth > TRACE_DEPTH,
        subtree,
        children,
    }
}

fn millis(timestamp: &str) -> Option<f64> {
    DateTime::parse_from_rfc3339(timestamp).ok().map(|t| t.timestamp_micros() as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RunStatus;

    fn event(id: &str, kind: &str, parent: Option<&str>, second: u32, cost: f64) -> Event {
        Event {
            event_id: id.into(),
            run_id: "r".into(),
            run_name: Some("run 1".into()),
            agent_name: "a".into(),
            event_type: kind.into(),
            timestamp: format!("2026-01-31T12:00:{second:02}.000000Z"),
            parent_event_id: parent.map(String::from),
            previous_event_id: None,
            data: serde_json::json!({}),
            attributes: serde_json::json!({}),
            model: None,
            tokens_in: Some(10),
            tokens_out: None,
            total_tokens: Some(10),
            cost: Some(cost),
            duration_ms: Some(500.0),
            error: false,
        }
    }

    fn run() -> Run {
        Run {
            run_id: "r".into(),
            run_name: Some("run 1".into()),
            label: "run 1".into(),
            agent_name: "a".into(),
            status: RunStatus::Completed,
            environment: None,
            metadata: None,
            created_at: String::new(),
            started_at: String::new(),
            last_event_at: None,
            ended_at: None,
            event_count: 5,
            tokens_in: 50,
            tokens_out: 0,
            total_tokens: 50,
            total_cost: 0.5,
            total_duration_ms: 4000.0,
            error_count: 0,
            session_id: None,
        }
    }

    fn shape(nodes: &[TraceNode]) -> Vec<(String, Vec<String>)> {
        nodes.iter().map(|n| (n.event_id.clone(), n.children.iter().map(|c| c.event_id.clone()).collect())).collect()
    }

    #[test]
    fn nests_by_parent_with_agent_end_a_root_and_subtree_sums() {
        let events = [
            event("start", "agent_start", None, 0, 0.0),
            event("llm", "llm_call", Some("start"), 1, 0.25),
            event("tool", "tool_call", Some("llm"), 2, 0.0),
            event("orphan", "tool_call", Some("elsewhere"), 3, 0.25),
            event("end", "agent_end", Some("start"), 4, 0.0),
        ];
        let t = trace(&run(), &events);
        assert_eq!(
            shape(&t.execution_tree),
            vec![("start".into(), vec!["llm".into()]), ("orphan".into(), vec![]), ("end".into(), vec![])]
        );
        let start = &t.execution_tree[0];
        assert_eq!((start.subtree.events, start.subtree.cost, start.subtree.total_tokens), (3, 0.25, 30));
        // The tool call starts 2 s after the agent_start and lasts 0.5 s.
        assert_eq!(start.subtree.duration_ms, 2500.0);
        let tool = &start.children[0].children[0];
        assert_eq!((tool.event_id.as_str(), tool.depth, tool.latency_ms), ("tool", 2, Some(500.0)));
    }

    #[test]
    fn a_parent_cycle_is_broken() {
        let events = [event("a", "step", Some("b"), 0, 0.0), event("b", "step", Some("a"), 1, 0.0)];
        let t = trace(&run(), &events);
        assert_eq!(t.execution_tree.len(), 1);
        assert_eq!(t.execution_tree[0].subtree.events, 2);
    }

    /// Every event id in the tree, depth first, without recursion.
    fn ids(t: &Trace) -> Vec<String> {
        let mut stack: Vec<&TraceNode> = t.execution_tree.iter().rev().collect();
        let mut ids = Vec::new();
        while let Some(n) = stack.pop() {
            ids.push(n.event_id.clone());
            stack.extend(n.children.iter().rev());
        }
        ids
    }

    #[test]
    fn a_self_parent_and_a_loop_entered_from_outside() {
        // c hangs under the loop a -> b -> a; the walk from a (the earliest) breaks it at b.
        let events = [
            event("a", "step", Some("b"), 0, 0.0),
            event("b", "step", Some("a"), 1, 0.0),
            event("c", "step", Some("a"), 2, 0.0),
            event("me", "step", Some("me"), 3, 0.0),
        ];
        let t = trace(&run(), &events);
        assert_eq!(shape(&t.execution_tree), vec![("b".into(), vec!["a".into()]), ("me".into(), vec![])]);
        assert_eq!(t.execution_tree[0].children[0].children[0].event_id, "c");
        assert_eq!(t.execution_tree[0].subtree.events, 3);
    }

    /// `data` nested DATA_DEPTH deep.
    fn deepest_data() -> Value {
        let mut data = serde_json::json!("deepest");
        for _ in 0..gati_service::limits::DATA_DEPTH {
            data = serde_json::json!({ "d": data });
        }
        data
    }

    /// A chain of `n` events, each the parent of the next.
    fn chain(n: usize, data: Value) -> Vec<Event> {
        (0..n)
            .map(|i| {
                let parent = (i > 0).then(|| format!("e{}", i - 1));
                let mut e = event(&format!("e{i}"), "step", parent.as_deref(), 0, 0.001);
                e.data = data.clone();
                e
            })
            .collect()
    }

    #[test]
    fn a_chain_of_ten_thousand_is_answered_nested_to_the_limit() {
        let t = trace(&run(), &chain(10_000, serde_json::json!({"x": 1})));
        let mut want: Vec<String> = (0..10_000).map(|i| format!("e{i}")).collect();
        let mut got = ids(&t);
        got.sort();
        want.sort();
        assert_eq!(got, want, "each event exactly once");
        assert!(t.depth_truncated);
        assert_eq!(t.depth_limit as usize, TRACE_DEPTH);
        let mut at = &t.execution_tree[0];
        for depth in 0..TRACE_DEPTH - 1 {
            assert_eq!((at.depth as usize, at.depth_truncated, at.children.len()), (depth, false, 1));
            at = &at.children[0];
        }
        // The holder: e31, its child e32 at the limit, then every deeper event beside it, in order.
        assert_eq!((at.event_id.as_str(), at.children.len()), ("e31", 10_000 - TRACE_DEPTH));
        assert_eq!(at.subtree.events, (10_000 - TRACE_DEPTH + 1) as i64);
        let (first, last) = (&at.children[0], &at.children[at.children.len() - 1]);
        assert_eq!((first.event_id.as_str(), first.depth as usize, first.depth_truncated), ("e32", TRACE_DEPTH, false));
        assert_eq!((last.event_id.as_str(), last.depth as usize, last.depth_truncated), ("e9999", TRACE_DEPTH, true));
        assert!(at.children.iter().all(|c| c.children.is_empty()));
        assert_eq!(last.subtree.events, 1);
        assert_eq!(t.execution_tree[0].subtree.events, 10_000);
    }

    #[test]
    fn the_deepest_answer_fits_every_reader() {
        let t = trace(&run(), &chain(100, deepest_data()));
        let text = serde_json::to_string(&t).unwrap();
        let depth = crate::ingest::depth(&serde_json::from_str::<serde_json::Value>(&text).unwrap());
        // The MCP server wraps a trace in a few levels of its own.
        assert!(depth + 4 <= gati_service::limits::JSON_DEPTH, "the trace nests {depth} deep");
    }

    #[test]
    fn a_chain_is_traced_in_linear_time() {
        // Quadratic loop detection would take minutes here, recursion would overflow the stack.
        let events = chain(100_000, serde_json::json!({}));
        let t = trace(&run(), &events);
        assert_eq!(t.execution_tree[0].subtree.events, 100_000);
    }

    #[test]
    fn graph_structure_from_the_agent_start_or_its_metadata() {
        let mut start = event("start", "agent_start", None, 0, 0.0);
        start.data = serde_json::json!({"metadata": {"graph_structure": {"nodes": ["a", "b"]}}});
        let mut end = event("end", "agent_end", Some("start"), 1, 0.0);
        end.data = serde_json::json!({"execution_flow": {"execution_order": ["a", "b"]}});
        let t = trace(&run(), &[start, end]);
        assert_eq!(t.graph_structure, Some(serde_json::json!({"nodes": ["a", "b"]})));
        assert_eq!(t.execution_flow, Some(serde_json::json!({"execution_order": ["a", "b"]})));
    }
}
