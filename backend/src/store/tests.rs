//! The kept totals always equal what the events add up to, whatever path changed them.

use super::*;
use crate::ingest::parse_batch;

fn temp_store(name: &str) -> (PathBuf, Store) {
    let dir = std::env::temp_dir().join(format!("gati-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open(&dir.join("gati.db")).unwrap();
    (dir, store)
}

fn event(id: &str, run: &str, agent: &str, kind: &str, ts: &str, data: Value) -> Value {
    serde_json::json!({"event_id": id, "run_id": run, "agent_name": agent, "event_type": kind, "timestamp": ts,
                       "data": data})
}

fn ingest(store: &Store, events: Vec<Value>) -> (usize, usize) {
    store.ingest(parse_batch(Value::Array(events).to_string().as_bytes()).unwrap()).unwrap()
}

/// Every kept total that differs from the same total computed from the events, as text.
fn disagreements(store: &Store) -> Vec<String> {
    store.catch_up().unwrap();
    let queries = [
        (
            "run",
            "SELECT run_id, event_count, tokens_in, total_tokens, round(total_cost, 9), error_count, started_at,
                    last_event_at, status FROM runs",
            "SELECT r.run_id, count(e.id), coalesce(sum(e.tokens_in), 0), coalesce(sum(e.total_tokens), 0),
                    round(coalesce(sum(e.cost), 0.0), 9), coalesce(sum(e.error), 0),
                    coalesce(min(e.timestamp), r.first_seen), max(e.timestamp),
                    CASE WHEN count(e.id) FILTER (WHERE ENDS) > 0
                          AND count(e.id) FILTER (WHERE ENDS) >= count(e.id) FILTER (WHERE STARTS)
                         THEN CASE WHEN (SELECT e.error FROM events e WHERE e.run_id = r.run_id
                                         AND ENDS ORDER BY e.timestamp DESC, e.id DESC LIMIT 1)
                                   THEN 'failed' ELSE 'completed' END
                         ELSE 'active' END
             FROM runs r LEFT JOIN events e ON e.run_id = r.run_id GROUP BY r.run_id",
        ),
        (
            "agent",
            "SELECT name, run_count, active_runs, event_count, tokens_in, total_tokens, round(total_cost, 9),
                    error_count, round(duration_ms, 3), last_event_at, first_seen FROM agents",
            "SELECT a.name, count(r.run_id), count(r.run_id) FILTER (WHERE r.status = 'active'),
                    coalesce(sum(r.event_count), 0), coalesce(sum(r.tokens_in), 0), coalesce(sum(r.total_tokens), 0),
                    round(coalesce(sum(r.total_cost), 0.0), 9), coalesce(sum(r.error_count), 0),
                    round(coalesce(sum(r.duration_ms), 0.0), 3), max(r.last_event_at),
                    coalesce(min(r.started_at), a.first_seen)
             FROM agents a LEFT JOIN runs r ON r.agent_name = a.name GROUP BY a.name",
        ),
        (
            "day",
            "SELECT day, agent_name, model, events, tokens_in, total_tokens, round(cost, 9), errors FROM daily_totals",
            "SELECT substr(timestamp, 1, 10), agent_name, coalesce(model, ''), count(*), coalesce(sum(tokens_in), 0),
                    coalesce(sum(total_tokens), 0), round(coalesce(sum(cost), 0.0), 9), coalesce(sum(error), 0)
             FROM events GROUP BY 1, 2, 3",
        ),
    ];
    // An SDK's agent_start opens its run, its agent_end ends it; a span (OTLP: its event has a
    // `span_id`) opens nothing, a root span ends its trace's run.
    let span = "json_extract(e.attributes, '$.span_id') IS NOT NULL";
    let ends = format!("(e.event_type = 'agent_end' AND NOT {span} OR {span} AND e.parent_event_id IS NULL)");
    let starts = format!("(e.event_type = 'agent_start' AND NOT {span})");
    store
        .with(|conn| {
            let mut out = Vec::new();
            for (what, kept, computed) in queries {
                let computed = computed.replace("ENDS", &ends).replace("STARTS", &starts);
                let computed = computed.as_str();
                for (a, b, side) in [(kept, computed, "kept"), (computed, kept, "computed")] {
                    let mut stmt = conn.prepare(&format!("{a} EXCEPT {b}"))?;
                    let n = stmt.column_count();
                    let rows = stmt.query_map([], |r| {
                        (0..n)
                            .map(|i| r.get::<_, rusqlite::types::Value>(i).map(|v| format!("{v:?}")))
                            .collect::<Result<Vec<_>, _>>()
                    })?;
                    for row in rows {
                        out.push(format!("{what} {side} only: {}", row?.join(", ")));
                    }
                }
            }
            let indexed: i64 = conn.query_row("SELECT count(*) FROM events_fts", [], |r| r.get(0)).unwrap_or(-1);
            let events: i64 = conn.query_row("SELECT count(*) FROM events", [], |r| r.get(0))?;
            if indexed != events {
                out.push(format!("the search index holds {indexed} rows for {events} events"));
            }
            out.extend(super::latency::disagreements(conn)?);
            Ok(out)
        })
        .unwrap()
}

fn llm(id: &str, run: &str, agent: &str, ts: &str, tokens: i64, cost: f64, model: &str) -> Value {
    event(
        id,
        run,
        agent,
        "llm_call",
        ts,
        serde_json::json!({"tokens_in": tokens, "tokens_out": 1, "cost": cost,
        "model": model, "latency_ms": 100, "prompt": format!("question {id}")}),
    )
}

#[test]
fn totals_follow_ingest_moves_deletes_renames_and_retention() {
    let (dir, store) = temp_store("totals");
    // Two days, two agents, two models; a duplicate; a run whose agent_start comes later.
    ingest(
        &store,
        vec![
            event("s1", "r1", "alpha", "agent_start", "2026-01-30T23:59:00Z", serde_json::json!({})),
            llm("l1", "r1", "alpha", "2026-01-30T23:59:30Z", 100, 0.5, "gpt-4o"),
            llm("l2", "r1", "alpha", "2026-01-31T00:00:30Z", 50, 0.25, "gpt-4o-mini"),
            event("x1", "r1", "alpha", "tool_call", "2026-01-31T00:01:00Z", serde_json::json!({"error": "boom"})),
            llm("l3", "r2", "init-name", "2026-01-31T10:00:00Z", 10, 0.125, "gpt-4o"),
        ],
    );
    assert_eq!(disagreements(&store), Vec::<String>::new());
    let (stored, duplicates) = ingest(
        &store,
        vec![
            llm("l1", "r1", "alpha", "2026-01-30T23:59:30Z", 100, 0.5, "gpt-4o"),
            event("e1", "r1", "alpha", "agent_end", "2026-01-31T00:02:00Z", serde_json::json!({})),
            // r2's agent_start names beta: r2 moves from init-name, with its events and totals.
            event("s2", "r2", "beta", "agent_start", "2026-01-31T09:59:00Z", serde_json::json!({})),
            llm("l4", "r2", "init-name", "2026-01-31T10:00:01Z", 5, 0.0625, "gpt-4o"),
        ],
    );
    assert_eq!((stored, duplicates), (3, 1));
    assert_eq!(disagreements(&store), Vec::<String>::new());
    let agents: Vec<String> =
        store.agents(Page { limit: 10, offset: 0 }).unwrap().0.into_iter().map(|a| a.name).collect();
    assert_eq!(agents, ["beta", "alpha"], "init-name has no run left");
    let Found::One(r1) = store.find_run(None, "r1").unwrap() else { panic!("r1") };
    assert_eq!((r1.status, r1.event_count, r1.total_tokens, r1.error_count), (RunStatus::Completed, 5, 152, 1));
    let Found::One(r2) = store.find_run(Some("beta"), "r2").unwrap() else { panic!("r2") };
    assert_eq!((r2.status, r2.agent_name.as_str(), r2.total_tokens), (RunStatus::Active, "beta", 17));

    // Search: words at their starts, checked to be in the text.
    let search = |q: &str| {
        let filter = EventFilter { text: Some(q.into()), ..Default::default() };
        store
            .search(&filter, Page { limit: 10, offset: 0 })
            .unwrap()
            .0
            .into_iter()
            .map(|e| e.event_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(search("question l2"), ["l2"]);
    assert_eq!(search("QUESTION L"), ["l4", "l3", "l2", "l1"]);
    assert_eq!(search("boom"), ["x1"]);
    assert_eq!(search("init-name"), ["l4", "l3"], "the name the SDK sent is kept, and found");

    assert_eq!(store.delete_run("r1").unwrap(), 5);
    assert_eq!(disagreements(&store), Vec::<String>::new());
    assert!(search("question l2").is_empty(), "a deleted event leaves the index");
    assert!(matches!(store.rename_run("r2", "renamed"), Ok(run) if run.run_name.as_deref() == Some("renamed")));
    ingest(&store, vec![llm("l5", "r3", "beta", "2026-01-31T11:00:00Z", 1, 0.0, "gpt-4o")]);
    assert!(matches!(store.rename_run("r3", "renamed"), Err(RenameError::Taken)));

    // Retention: r2 ended its events before 10:30, r3 after.
    assert_eq!(store.sweep("2026-01-31T10:30:00.000000Z").unwrap(), 1);
    assert_eq!(disagreements(&store), Vec::<String>::new());
    assert_eq!(store.delete_agent("beta").unwrap(), Some((1, 1)));
    assert_eq!(store.delete_agent("beta").unwrap(), None);
    assert_eq!(disagreements(&store), Vec::<String>::new());
    assert_eq!(store.agents(Page { limit: 10, offset: 0 }).unwrap().1, 0);
    drop(store);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn ranges_cut_days_at_the_events_own_times() {
    let (dir, store) = temp_store("ranges");
    ingest(
        &store,
        vec![
            llm("a", "r1", "alpha", "2026-01-29T12:00:00Z", 1, 1.0, "m"),
            llm("b", "r1", "alpha", "2026-01-30T06:00:00Z", 2, 2.0, "m"),
            llm("c", "r1", "alpha", "2026-01-30T18:00:00Z", 4, 4.0, "m"),
            llm("d", "r2", "beta", "2026-01-31T01:00:00Z", 8, 8.0, "n"),
        ],
    );
    let range = |since: &str, until: &str| Range { since: Some(since.into()), until: Some(until.into()) };
    let tokens = |r: &Range| store.agent_totals(r, None).unwrap().iter().map(|a| a.events.tokens_in).sum::<i64>();
    assert_eq!(tokens(&Range::default()), 15);
    assert_eq!(tokens(&range("2026-01-30T00:00:00.000000Z", "2026-01-31T00:00:00.000000Z")), 6);
    assert_eq!(tokens(&range("2026-01-29T13:00:00.000000Z", "2026-01-31T00:30:00.000000Z")), 6);
    assert_eq!(tokens(&range("2026-01-30T12:00:00.000000Z", "2026-01-31T02:00:00.000000Z")), 12);
    assert_eq!(tokens(&range("2026-01-30T05:00:00.000000Z", "2026-01-30T07:00:00.000000Z")), 2);
    let days = store.days(&Range::default(), None, "2026-01-28", "2026-02-01").unwrap();
    let per_day: Vec<(String, i64, i64)> = days.iter().map(|d| (d.date.clone(), d.all.tokens_in, d.runs)).collect();
    assert_eq!(
        per_day,
        [
            ("2026-01-28".into(), 0, 0),
            ("2026-01-29".into(), 1, 1),
            ("2026-01-30".into(), 6, 0),
            ("2026-01-31".into(), 8, 1),
            ("2026-02-01".into(), 0, 0)
        ]
    );
    let models =
        store.models(&range("2026-01-30T12:00:00.000000Z", "2026-02-01T00:00:00.000000Z"), None, None).unwrap();
    assert_eq!(
        models.iter().map(|(m, t)| (m.as_str(), t.events, t.timed)).collect::<Vec<_>>(),
        [("m", 1, 1), ("n", 1, 1)]
    );
    // The check above can fail: a total that drifts from its events is named.
    assert_eq!(disagreements(&store), Vec::<String>::new());
    store.with(|conn| conn.execute("UPDATE daily_totals SET cost = cost + 1 WHERE model = 'n'", [])).unwrap();
    assert_eq!(disagreements(&store).len(), 2, "kept only, computed only");
    drop(store);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn concurrent_batches_are_written_together_and_each_counted_alone() {
    let (dir, store) = temp_store("group");
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let batch = |n: usize| {
                    (0..50)
                        .map(|i| {
                            llm(
                                &format!("t{t}-{n}-{i}"),
                                &format!("run-{t}"),
                                "alpha",
                                "2026-01-31T12:00:00Z",
                                1,
                                0.5,
                                "m",
                            )
                        })
                        .collect()
                };
                // Each thread's second batch repeats its first: all of it is duplicates.
                (ingest(&store, batch(0)), ingest(&store, batch(0)), ingest(&store, batch(1)))
            })
        })
        .collect();
    for thread in threads {
        assert_eq!(thread.join().unwrap(), ((50, 0), (0, 50), (50, 0)));
    }
    assert_eq!(disagreements(&store), Vec::<String>::new());
    let (agents, _) = store.agents(Page { limit: 10, offset: 0 }).unwrap();
    assert_eq!((agents[0].run_count, agents[0].event_count, agents[0].total_cost), (8, 800, 400.0));
    drop(store);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_search_finds_events_the_index_has_not_reached() {
    let (dir, store) = temp_store("tail");
    ingest(&store, vec![llm("old", "r1", "alpha", "2026-01-31T12:00:00Z", 1, 0.0, "m")]);
    store.catch_up().unwrap();
    ingest(&store, vec![llm("new", "r1", "alpha", "2026-01-31T12:00:01Z", 1, 0.0, "m")]);
    let pending = store.health().unwrap();
    let filter = EventFilter { text: Some("question".into()), ..Default::default() };
    let (found, count) = store.search(&filter, Page { limit: 10, offset: 0 }).unwrap();
    assert_eq!(found.iter().map(|e| e.event_id.as_str()).collect::<Vec<_>>(), ["new", "old"], "{pending} pending");
    assert_eq!(count, Count { total: 2, capped: false });
    drop(store);
    std::fs::remove_dir_all(dir).unwrap();
}

fn search_ids(store: &Store, q: &str) -> Vec<String> {
    let filter = EventFilter { text: Some(q.into()), ..Default::default() };
    store.search(&filter, Page { limit: 100, offset: 0 }).unwrap().0.into_iter().map(|e| e.event_id).collect()
}

fn note(id: &str, run: &str, ts: &str, text: &str) -> Value {
    event(id, run, "alpha", "tool_call", ts, serde_json::json!({ "note": text }))
}

#[test]
fn an_event_stored_after_the_newest_run_is_deleted_is_found() {
    let (dir, store) = temp_store("reuse");
    ingest(&store, vec![note("a", "r1", "2026-01-31T12:00:00Z", "kept")]);
    ingest(&store, vec![note("b", "r2", "2026-01-31T12:00:01Z", "gone"), note("c", "r2", "2026-01-31T12:00:02Z", "x")]);
    store.catch_up().unwrap();
    assert_eq!(store.delete_run("r2").unwrap(), 2);
    // The ids r2 had are not given again: the indexer, past them, still takes the new event in.
    ingest(&store, vec![note("q", "r3", "2026-01-31T12:00:03Z", "quokka")]);
    assert_eq!(search_ids(&store, "quokka"), ["q"], "found before the index has it");
    store.catch_up().unwrap();
    assert_eq!(search_ids(&store, "quokka"), ["q"], "and from the index");
    assert_eq!(store.health().unwrap(), 0);
    assert_eq!(disagreements(&store), Vec::<String>::new());
    drop(store);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_phrase_matches_the_text_as_stored_folding_case_and_diacritics() {
    let (dir, store) = temp_store("phrase");
    ingest(
        &store,
        vec![
            note("quote", "r1", "2026-01-31T12:00:00Z", r#"she said "hi" twice"#),
            note("slash", "r1", "2026-01-31T12:00:01Z", r"C:\Users\émile\notes.txt"),
            note("lines", "r1", "2026-01-31T12:00:02Z", "first line\nsecond line"),
            note("name", "r1", "2026-01-31T12:00:03Z", "Émile Zola wrote ÇA"),
        ],
    );
    for indexed in [false, true] {
        if indexed {
            store.catch_up().unwrap();
        }
        assert_eq!(search_ids(&store, r#"said "hi""#), ["quote"], "indexed: {indexed}");
        assert_eq!(search_ids(&store, r"Users\émile"), ["slash"], "indexed: {indexed}");
        assert_eq!(search_ids(&store, "line\nsecond"), ["lines"], "indexed: {indexed}");
        assert_eq!(search_ids(&store, "émile zola"), ["name"], "indexed: {indexed}");
        assert_eq!(search_ids(&store, "EMILE"), ["name", "slash"], "indexed: {indexed}");
        assert_eq!(search_ids(&store, "wrote ça"), ["name"], "indexed: {indexed}");
        // FTS5's syntax is text: never an error, and found where the text is.
        for q in [r#"""#, "said \"hi", "NEAR(said hi)", "hi*", "-said", "note:said", "((said", "said)", "a OR b", "^"] {
            let filter = EventFilter { text: Some(q.into()), ..Default::default() };
            assert!(store.search(&filter, Page { limit: 10, offset: 0 }).is_ok(), "{q:?}");
        }
        assert_eq!(search_ids(&store, "\"hi\" twice"), ["quote"]);
    }
    assert_eq!(search::fold("ÉMILE Ǆ ﬁ"), "emile ǆ ﬁ");
    drop(store);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A database as version 3 left it: ids that deletes freed, an event the indexer skipped.
#[test]
fn version_3_becomes_4_with_every_event_indexed_and_ids_never_reused() {
    let (dir, store) = temp_store("v3");
    ingest(
        &store,
        vec![note("a", "r1", "2026-01-31T12:00:00Z", "wombat"), note("b", "r2", "2026-01-31T12:00:01Z", "emu")],
    );
    store.catch_up().unwrap();
    let path = store.path.clone();
    drop(store);
    {
        // Back to version 3's shape: a plain INTEGER PRIMARY KEY, the default tokenizer, and the
        // bug's trace: the index's mark past an event it never took in.
        let conn = Connection::open(&path).unwrap();
        let v3_events = schema::events_table().replace(" AUTOINCREMENT", "");
        conn.execute_batch(&format!(
            "DROP TABLE events_fts;
             CREATE VIRTUAL TABLE events_fts USING fts5(text, content='', contentless_delete=1);
             INSERT INTO events_fts(rowid, text) SELECT id, 'wombat' FROM events WHERE event_id = 'a';
             ALTER TABLE events RENAME TO old; {v3_events}
             INSERT INTO events SELECT * FROM old; DROP TABLE old;
             DELETE FROM sqlite_sequence;
             UPDATE search_index SET indexed_up_to = 10;
             INSERT INTO agents (name, first_seen, run_count, active_runs) VALUES ('phantom', '2026-01-31', 1, 1);
             INSERT INTO runs (run_id, agent_name, first_seen) VALUES ('empty', 'phantom', '2026-01-31');
             PRAGMA user_version = 3;"
        ))
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.health().unwrap(), 0, "the index is whole and its mark at the last event");
    assert_eq!(search_ids(&store, "emu"), ["b"], "the event version 3 never indexed");
    assert_eq!(search_ids(&store, "wombat"), ["a"]);
    assert!(matches!(store.find_run(None, "empty").unwrap(), Found::None), "a run without events goes");
    assert_eq!(store.agents(Page { limit: 10, offset: 0 }).unwrap().1, 1, "and its agent");
    let ids = |store: &Store| {
        store
            .with(|c| {
                c.prepare("SELECT event_id, id FROM events ORDER BY id")?
                    .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .unwrap()
    };
    let before = ids(&store);
    assert_eq!(before.len(), 2);
    store.delete_run("r2").unwrap();
    ingest(&store, vec![note("c", "r3", "2026-01-31T12:00:02Z", "quokka")]);
    let after = ids(&store);
    assert!(after[1].1 > before[1].1, "a freed id is not given again: {before:?} {after:?}");
    assert_eq!(search_ids(&store, "quokka"), ["c"]);
    store.catch_up().unwrap();
    assert_eq!(search_ids(&store, "quokka"), ["c"]);
    assert_eq!(disagreements(&store), Vec::<String>::new());
    drop(store);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_database_of_a_newer_schema_is_refused_naming_both_versions() {
    let (dir, store) = temp_store("newer");
    let path = store.path.clone();
    drop(store);
    Connection::open(&path).unwrap().pragma_update(None, "user_version", 99).unwrap();
    let message = Store::open(&path).err().expect("refused").to_string();
    assert!(
        message.contains("schema version 99") && message.contains(&format!("the {}", schema::SCHEMA_VERSION)),
        "{message}"
    );
    let version: i64 = Connection::open(&path).unwrap().pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(version, 99, "untouched");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_duplicate_under_a_new_run_creates_no_run_and_no_agent() {
    let (dir, store) = temp_store("duplicate");
    ingest(&store, vec![note("a", "r1", "2026-01-31T12:00:00Z", "first")]);
    let mut again = note("a", "r2", "2026-01-31T12:00:01Z", "first");
    again["agent_name"] = "phantom".into();
    let mut start = event("a", "r3", "ghost", "agent_start", "2026-01-31T12:00:02Z", serde_json::json!({}));
    start["run_name"] = "named".into();
    assert_eq!(ingest(&store, vec![again.clone(), start, again]), (0, 3));
    // Twice in one new batch: stored once, under one run.
    assert_eq!(
        ingest(
            &store,
            vec![note("b", "r4", "2026-01-31T12:00:03Z", "x"), note("b", "r5", "2026-01-31T12:00:03Z", "x")]
        ),
        (1, 1)
    );
    let (agents, total) = store.agents(Page { limit: 10, offset: 0 }).unwrap();
    assert_eq!((total, agents[0].name.as_str(), agents[0].run_count, agents[0].event_count), (1, "alpha", 2, 2));
    for run in ["r2", "r3", "r5"] {
        assert!(matches!(store.find_run(None, run).unwrap(), Found::None), "{run}");
    }
    assert_eq!(disagreements(&store), Vec::<String>::new());
    drop(store);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_rename_or_delete_after_a_delete_says_the_run_is_gone() {
    let (dir, store) = temp_store("gone");
    ingest(&store, vec![note("a", "r1", "2026-01-31T12:00:00Z", "x"), note("b", "r2", "2026-01-31T12:00:00Z", "y")]);
    assert_eq!(store.remove_run("r1").unwrap(), Some(1));
    assert_eq!(store.remove_run("r1").unwrap(), None);
    assert!(matches!(store.rename_run("r1", "new"), Err(RenameError::Gone)));
    assert!(matches!(store.rename_run("r2", "new"), Ok(run) if run.run_name.as_deref() == Some("new")));
    assert_eq!(disagreements(&store), Vec::<String>::new());
    drop(store);
    std::fs::remove_dir_all(dir).unwrap();
}

/// OTLP/JSON spans of one trace, as an exporter sends them: `(span, parent, name, attributes)`
/// with ids as two hex digits repeated, each span 100 ms from `second` seconds past 12:00.
fn spans(service: &str, spans: &[(&str, Option<&str>, &str, u32, Value)]) -> Vec<crate::ingest::Event> {
    const START: u64 = 1_769_860_800_000_000_000; // 2026-01-31T12:00:00Z
    let spans: Vec<Value> = spans
        .iter()
        .map(|(id, parent, name, second, attributes)| {
            let start = START + u64::from(*second) * 1_000_000_000;
            let attributes: Vec<Value> = attributes
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => serde_json::json!({"key": k, "value": {"stringValue": s}}),
                    other => serde_json::json!({"key": k, "value": {"intValue": other}}),
                })
                .collect();
            let error = name.contains("fails");
            serde_json::json!({
                "traceId": "5b8efff798038103d269b633813fc60c", "spanId": id.repeat(8),
                "parentSpanId": parent.map(|p| p.repeat(8)).unwrap_or_default(), "name": name,
                "startTimeUnixNano": start.to_string(), "endTimeUnixNano": (start + 100_000_000).to_string(),
                "attributes": attributes,
                "status": if error { serde_json::json!({"code": 2, "message": format!("{name}: quota exhausted")}) }
                          else { serde_json::json!({"code": 0}) }})
        })
        .collect();
    let body = serde_json::json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"spans": spans}]}]});
    let (_, mapped) = crate::otlp::receive(Some("application/json"), None, body.to_string().as_bytes()).unwrap();
    assert!(mapped.rejected.is_empty(), "{:?}", mapped.rejected);
    mapped.events.into_iter().map(|m| m.event).collect()
}

/// Spans in any order, over several requests, some twice: the parents link whenever they come,
/// each span is stored once, the totals follow every request, the run ends with its root span
/// (and is named by it), and the agent its agent span names takes the run over.
#[test]
fn spans_out_of_order_and_twice_link_and_count_once() {
    let (dir, store) = temp_store("otlp");
    let chat = |tokens_in: i64, tokens_out: i64| {
        serde_json::json!({"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
                           "gen_ai.usage.input_tokens": tokens_in, "gen_ai.usage.output_tokens": tokens_out})
    };
    let tool = serde_json::json!({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather"});
    let agent = serde_json::json!({"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"});
    let run_id = "5b8efff798038103d269b633813fc60c";
    let id = |span: &str| format!("{run_id}-{}", span.repeat(8));
    let run = |store: &Store| {
        let Found::One(run) = store.find_run(None, run_id).unwrap() else { panic!("one run") };
        run
    };

    // A grandchild whose parent is not stored yet, and a child of the root.
    let first = spans("svc", &[("03", Some("02"), "execute_tool get_weather", 2, tool.clone())]);
    let child = spans("svc", &[("01", Some("aa"), "chat gpt-4o-mini", 1, chat(100, 20))]);
    assert_eq!(store.ingest([first, child.clone()].concat()).unwrap(), (2, 0));
    assert_eq!(disagreements(&store), Vec::<String>::new());
    let r = run(&store);
    assert_eq!((r.agent_name.as_str(), r.status, r.run_name.clone()), ("svc", RunStatus::Active, None));
    assert_eq!((r.event_count, r.tokens_in, r.tokens_out), (2, 100, 20));

    // The tool's parent (a failed chat) and the first child again: stored once.
    let second = spans("svc", &[("02", Some("aa"), "chat fails", 3, chat(10, 5))]);
    assert_eq!(store.ingest([second, child.clone()].concat()).unwrap(), (1, 1));
    assert_eq!(disagreements(&store), Vec::<String>::new());
    let r = run(&store);
    assert_eq!((r.event_count, r.tokens_in, r.tokens_out, r.error_count), (3, 110, 25, 1));
    assert_eq!(r.status, RunStatus::Active, "no root yet");

    // The root, last, as exporters send it: it names the run and its agent, and ends the run.
    let root = spans("svc", &[("aa", None, "invoke_agent planner", 0, agent)]);
    assert_eq!(store.ingest(root.clone()).unwrap(), (1, 0));
    assert_eq!(disagreements(&store), Vec::<String>::new());
    let r = run(&store);
    assert_eq!((r.agent_name.as_str(), r.run_name.as_deref()), ("planner", Some("invoke_agent planner")));
    assert_eq!(
        (r.status, r.event_count, r.tokens_in, r.tokens_out, r.error_count),
        (RunStatus::Completed, 4, 110, 25, 1)
    );
    let cost = crate::otlp::prices::cost("gpt-4o-mini", 100, 20).unwrap()
        + crate::otlp::prices::cost("gpt-4o-mini", 10, 5).unwrap();
    assert!((r.total_cost - cost).abs() < 1e-12, "{} {cost}", r.total_cost);
    assert_eq!(r.ended_at.as_deref(), Some("2026-01-31T12:00:00.100000Z"), "the root span's end");
    let agents: Vec<(String, i64, i64)> = store
        .agents(Page { limit: 10, offset: 0 })
        .unwrap()
        .0
        .into_iter()
        .map(|a| (a.name, a.event_count, a.active_runs))
        .collect();
    assert_eq!(agents, [("planner".to_string(), 4, 0)], "svc had only this run");

    // The whole trace again: nothing new, nothing counted twice.
    let all = [root, child, spans("svc", &[("03", Some("02"), "execute_tool get_weather", 2, tool)])].concat();
    assert_eq!(store.ingest(all).unwrap(), (0, 3));
    assert_eq!(disagreements(&store), Vec::<String>::new());
    assert_eq!(run(&store).event_count, 4);

    // The tree: each span under its parent, whatever order they came in.
    let events = store.run_events(run_id).unwrap();
    let tree = crate::trace::trace(&run(&store), &events);
    let [root] = &tree.execution_tree[..] else { panic!("one root: {:?}", tree.execution_tree.len()) };
    assert_eq!(root.event_id, id("aa"));
    let children: Vec<&str> = root.children.iter().map(|c| c.event_id.as_str()).collect();
    assert_eq!(children, [id("01"), id("02")]);
    assert_eq!(root.children[1].children[0].event_id, id("03"));
    assert_eq!(store.children(&id("02")).unwrap().unwrap()[0].event_type, "tool_call");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A root span that failed fails its run.
#[test]
fn a_failed_root_span_fails_its_run() {
    let (dir, store) = temp_store("otlp-failed");
    store.ingest(spans("svc", &[("aa", None, "root fails", 0, serde_json::json!({}))])).unwrap();
    let Found::One(run) = store.find_run(None, "5b8efff798038103d269b633813fc60c").unwrap() else { panic!() };
    assert_eq!((run.status, run.error_count, run.agent_name.as_str()), (RunStatus::Failed, 1, "svc"));
    assert_eq!(disagreements(&store), Vec::<String>::new());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A span's event is found by its prompt, completion, model, tool name, error text and the
/// values of its attributes and its resource's, before the search index has it and from the
/// index; not by its ids or the names of its attributes, nor by words it does not hold.
#[test]
fn spans_are_found_by_what_they_hold() {
    let (dir, store) = temp_store("otlp-search");
    let chat = serde_json::json!({"gen_ai.operation.name": "chat", "gen_ai.request.model": "claude-haiku-4-5",
        "gen_ai.input.messages": r#"[{"role":"user","parts":[{"type":"text","content":"Where is the ocelot?"}]}]"#,
        "gen_ai.output.messages": r#"[{"role":"assistant","parts":[{"type":"text","content":"With the pangolin."}]}]"#});
    let tool = serde_json::json!({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather"});
    store.ingest(spans("svc", &[("01", None, "chat", 0, chat), ("02", Some("01"), "lookup fails", 1, tool)])).unwrap();
    let id = |span: &str| format!("5b8efff798038103d269b633813fc60c-{}", span.repeat(8));
    for indexed in [false, true] {
        for (q, found) in [
            ("ocelot", id("01")),
            ("the pangolin", id("01")),
            ("claude-haiku-4-5", id("01")),
            ("get_weather", id("02")),
            ("quota exhausted", id("02")),
        ] {
            assert_eq!(search_ids(&store, q), [found], "{q}, indexed: {indexed}");
        }
        assert_eq!(search_ids(&store, "svc"), [id("02"), id("01")], "the resource's service.name");
        for q in ["narwhal", "0101010101010101", "5b8efff798038103d269b633813fc60c", "gen_ai.request.model"] {
            assert_eq!(search_ids(&store, q), Vec::<String>::new(), "{q}, indexed: {indexed}");
        }
        store.catch_up().unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
