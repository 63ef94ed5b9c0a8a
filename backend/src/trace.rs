//! A run's execution tree: each event under the one its `parent_event_id` names, with what it
//! and everything below it cost.
//!
//! As in 0.0.3, an `agent_end` is a root (its SDKs give it the agent_start as parent): the run's
//! last step beside its first, not inside it. An event whose parent is not in the run, or whose
//! parent chain loops, is a root too. Each level is in time order (the events come in it).

use std::collections::{HashMap, HashSet};

use chrono::DateTime;
use serde_json::Value;

use crate::model::{Event, Run, Subtree, Trace, TraceNode};

pub fn trace(run: &Run, events: &[Event]) -> Trace {
    let index: HashMap<&str, usize> = events.iter().enumerate().map(|(i, e)| (e.event_id.as_str(), i)).collect();
    let parent_of = |i: usize| -> Option<usize> {
        let e = &events[i];
        if e.event_type == "agent_end" {
            return None;
        }
        let parent = *index.get(e.parent_event_id.as_deref()?)?;
        (parent != i).then_some(parent)
    };
    // A parent chain that comes back to where it started: the event that closes it is a root.
    let mut parents: Vec<Option<usize>> = (0..events.len()).map(parent_of).collect();
    for start in 0..events.len() {
        let mut seen = HashSet::from([start]);
        let mut at = start;
        while let Some(parent) = parents[at] {
            if !seen.insert(parent) {
                parents[at] = None;
                break;
            }
            at = parent;
        }
    }
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); events.len()];
    let mut roots = Vec::new();
    for (i, parent) in parents.iter().enumerate() {
        match parent {
            Some(p) => children[*p].push(i),
            None => roots.push(i),
        }
    }
    let execution_tree = roots.into_iter().map(|i| node(events, &children, i, 0)).collect();
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
    }
}

/// `data[key]`, or `data.metadata[key]` (where 0.0.3's LangGraph instrumentation put it first).
fn found(data: &Value, key: &str) -> Option<Value> {
    [&data[key], &data["metadata"][key]].into_iter().find(|v| !v.is_null()).cloned()
}

fn node(events: &[Event], children: &[Vec<usize>], i: usize, depth: u32) -> TraceNode {
    let e = &events[i];
    let below: Vec<TraceNode> = children[i].iter().map(|c| node(events, children, *c, depth + 1)).collect();
    let mut subtree = Subtree {
        events: 1,
        cost: e.cost.unwrap_or(0.0),
        tokens_in: e.tokens_in.unwrap_or(0),
        tokens_out: e.tokens_out.unwrap_or(0),
        total_tokens: e.total_tokens.unwrap_or(0),
        errors: i64::from(e.error),
        duration_ms: e.duration_ms.unwrap_or(0.0),
    };
    let start = millis(&e.timestamp);
    for child in &below {
        let s = &child.subtree;
        subtree.events += s.events;
        subtree.cost += s.cost;
        subtree.tokens_in += s.tokens_in;
        subtree.tokens_out += s.tokens_out;
        subtree.total_tokens += s.total_tokens;
        subtree.errors += s.errors;
        // The child ends when it started plus its own span.
        if let (Some(start), Some(child_start)) = (start, millis(&child.timestamp)) {
            subtree.duration_ms = subtree.duration_ms.max(child_start - start + s.duration_ms);
        }
    }
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
        depth,
        subtree,
        children: below,
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
