//! Sessions: the runs that name the same session (a conversation), with their totals summed
//! from the runs' own (so they are as true as the runs', whatever order events came in), and a
//! session's runs read turn by turn.

use rusqlite::{params, params_from_iter, types::Value as Sql, Connection, OptionalExtension, Row};

use super::{
    agents::agent_exists,
    metrics::Range,
    rows::{run_row, RUN_SELECT},
    Page, Store,
};
use crate::model::{RunStatus, Session, Turn};

/// Which sessions to list: those with a run of `agent`, if given, active in the range.
#[derive(Debug, Default)]
pub struct SessionFilter {
    pub agent: Option<String>,
    pub range: Range,
}

/// A session's totals, from its runs (`GROUP BY session_id`).
const SESSION_SELECT: &str = "SELECT session_id, json_group_array(DISTINCT agent_name), count(*), sum(event_count),
        sum(tokens_in), sum(tokens_out), sum(total_tokens), sum(total_cost), sum(error_count),
        min(coalesce(started_at, first_seen)), max(coalesce(last_event_at, started_at, first_seen)),
        (SELECT status FROM runs AS latest WHERE latest.session_id = runs.session_id
         ORDER BY coalesce(latest.started_at, latest.first_seen) DESC, latest.run_id DESC LIMIT 1)
    FROM runs";

/// How much of a turn's input and output is answered, in characters.
const TURN_TEXT_CHARS: i64 = 10_000;

impl Store {
    /// Sessions matching the filter, latest activity first, and how many match; `None` if the
    /// filter names an agent that does not exist.
    pub fn sessions(&self, filter: &SessionFilter, page: Page) -> rusqlite::Result<Option<(Vec<Session>, i64)>> {
        self.read(|conn| {
            if let Some(agent) = &filter.agent {
                if !agent_exists(conn, agent)? {
                    return Ok(None);
                }
            }
            let (having, mut args) = session_condition(filter);
            let grouped = format!("FROM runs WHERE session_id IS NOT NULL GROUP BY session_id HAVING {having}");
            let total: i64 = conn.query_row(
                &format!("SELECT count(*) FROM (SELECT session_id {grouped})"),
                params_from_iter(&args),
                |r| r.get(0),
            )?;
            args.extend([Sql::Integer(page.limit.into()), Sql::Integer(page.offset.into())]);
            let select = SESSION_SELECT.strip_suffix("FROM runs").expect("the select ends with its table");
            let mut stmt =
                conn.prepare_cached(&format!("{select} {grouped} ORDER BY 11 DESC, session_id LIMIT ? OFFSET ?"))?;
            let sessions =
                stmt.query_map(params_from_iter(&args), session_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Some((sessions, total)))
        })
    }

    /// A session's totals and a page of its runs in time order, each with its first input and
    /// last output; `None` if no run names the session.
    pub fn session(&self, id: &str, page: Page) -> rusqlite::Result<Option<(Session, Vec<Turn>)>> {
        self.read(|conn| {
            let Some(session) = conn
                .prepare_cached(&format!("{SESSION_SELECT} WHERE session_id = ?1 GROUP BY session_id"))?
                .query_row([id], session_row)
                .optional()?
            else {
                return Ok(None);
            };
            let runs = conn
                .prepare_cached(&format!(
                    "{RUN_SELECT} WHERE session_id = ?1
                     ORDER BY coalesce(started_at, first_seen), run_id LIMIT ?2 OFFSET ?3"
                ))?
                .query_map(params![id, page.limit, page.offset], run_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let turns = runs
                .into_iter()
                .map(|run| {
                    let (input, output) = turn_text(conn, &run.run_id)?;
                    Ok(Turn { run, input, output })
                })
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Some((session, turns)))
        })
    }
}

/// A run's first input and last output: the `input` (else `prompt`) of its earliest event
/// that has one, and the `output` (else `completion`) of its latest.
fn turn_text(conn: &Connection, run_id: &str) -> rusqlite::Result<(Option<String>, Option<String>)> {
    let read = |fields: [&str; 2], order: &str| -> rusqlite::Result<Option<String>> {
        let [first, second] = fields;
        conn.prepare_cached(&format!(
            "SELECT substr(CAST(value AS TEXT), 1, ?2) FROM (
                SELECT coalesce(json_extract(data, '$.{first}'), json_extract(data, '$.{second}')) AS value,
                       timestamp, id
                FROM events WHERE run_id = ?1 AND json_valid(data))
             WHERE value IS NOT NULL ORDER BY timestamp {order}, id {order} LIMIT 1"
        ))?
        .query_row(params![run_id, TURN_TEXT_CHARS], |r| r.get(0))
        .optional()
    };
    Ok((read(["input", "prompt"], "ASC")?, read(["output", "completion"], "DESC")?))
}

/// The HAVING condition of a filter: a run of the agent, and activity in the range (its first
/// run started before the range's end, its last event at or after its start).
fn session_condition(filter: &SessionFilter) -> (String, Vec<Sql>) {
    let mut conditions = vec!["1".to_string()];
    let mut args = Vec::new();
    let mut add = |condition: &str, value: Option<String>| {
        if let Some(value) = value {
            conditions.push(condition.to_string());
            args.push(Sql::Text(value));
        }
    };
    add("max(agent_name = ?)", filter.agent.clone());
    add("min(coalesce(started_at, first_seen)) < ?", filter.range.until.clone());
    add("max(coalesce(last_event_at, started_at, first_seen)) >= ?", filter.range.since.clone());
    (conditions.join(" AND "), args)
}

fn session_row(r: &Row) -> rusqlite::Result<Session> {
    let agents: String = r.get(1)?;
    let mut agent_names: Vec<String> = serde_json::from_str(&agents).unwrap_or_default();
    agent_names.sort();
    let status: String = r.get(11)?;
    Ok(Session {
        session_id: r.get(0)?,
        agent_names,
        run_count: r.get(2)?,
        event_count: r.get(3)?,
        tokens_in: r.get(4)?,
        tokens_out: r.get(5)?,
        total_tokens: r.get(6)?,
        total_cost: r.get(7)?,
        error_count: r.get(8)?,
        started_at: r.get(9)?,
        last_event_at: r.get(10)?,
        status: RunStatus::parse(&status).unwrap_or(RunStatus::Active),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ingest::parse_batch;

    fn ingest(store: &Store, events: serde_json::Value) {
        store.ingest(parse_batch(events.to_string().as_bytes()).unwrap()).unwrap();
    }

    fn event(id: &str, run: &str, session: Option<&str>, ts: &str, data: serde_json::Value) -> serde_json::Value {
        json!({"event_id": id, "run_id": run, "agent_name": "a", "event_type": "llm_call", "timestamp": ts,
               "session_id": session, "data": data})
    }

    const ALL: Page = Page { limit: 100, offset: 0 };

    #[test]
    fn a_run_joins_its_first_session_and_totals_are_its_runs_in_any_order() {
        let dir = std::env::temp_dir().join(format!("gati-sessions-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open(&dir.join("gati.db")).unwrap();
        // The second turn's events come first, one without its session; one event comes twice.
        let later = event("e3", "r2", None, "2026-01-01T00:02:00Z", json!({"output": "bye", "cost": 0.5}));
        ingest(&store, json!([later]));
        let second = event("e4", "r2", Some("s"), "2026-01-01T00:01:00Z", json!({"input": "again", "cost": 0.25}));
        ingest(&store, json!([second, second]));
        let first = event("e1", "r1", Some("s"), "2026-01-01T00:00:00Z", json!({"input": "hi", "output": "hello"}));
        let moved = event("e2", "r1", Some("elsewhere"), "2026-01-01T00:00:01Z", json!({}));
        ingest(&store, json!([first, moved]));

        let (session, turns) = store.session("s", ALL).unwrap().unwrap();
        assert_eq!((session.run_count, session.event_count, session.total_cost), (2, 4, 0.75));
        let read: Vec<_> =
            turns.iter().map(|t| (t.run.run_id.as_str(), t.input.as_deref(), t.output.as_deref())).collect();
        assert_eq!(read, [("r1", Some("hi"), Some("hello")), ("r2", Some("again"), Some("bye"))]);
        assert!(store.session("elsewhere", ALL).unwrap().is_none());

        // A database of version 4 finds each run's session in its events.
        store.with(|c| c.execute_batch("UPDATE runs SET session_id = NULL; PRAGMA user_version = 4")).unwrap();
        drop(store);
        let store = Store::open(&dir.join("gati.db")).unwrap();
        let (sessions, total) = store.sessions(&SessionFilter::default(), ALL).unwrap().unwrap();
        assert_eq!((total, sessions[0].session_id.as_str(), sessions[0].run_count), (1, "s", 2));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_run_is_in_the_session_of_its_earliest_event_whatever_order_they_arrive_in() {
        let dir = std::env::temp_dir().join(format!("gati-sessions-order-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open(&dir.join("gati.db")).unwrap();
        let early = |run: &str| event(&format!("{run}-early"), run, Some("first"), "2026-01-01T00:00:00Z", json!({}));
        let late = |run: &str| event(&format!("{run}-late"), run, Some("second"), "2026-01-01T00:05:00Z", json!({}));
        // In order, late first in separate batches, late first in one batch.
        ingest(&store, json!([early("r1")]));
        ingest(&store, json!([late("r1")]));
        ingest(&store, json!([late("r2")]));
        ingest(&store, json!([early("r2")]));
        ingest(&store, json!([late("r3"), early("r3")]));
        let runs = |store: &Store| {
            let (session, turns) = store.session("first", ALL).unwrap().unwrap();
            (session.run_count, turns.into_iter().map(|t| t.run.run_id).collect::<Vec<_>>())
        };
        let expected = (3, vec!["r1".to_string(), "r2".into(), "r3".into()]);
        assert_eq!(runs(&store), expected);
        assert!(store.session("second", ALL).unwrap().is_none());
        // And as the upgrade from version 4 finds them.
        store.with(|c| c.execute_batch("UPDATE runs SET session_id = NULL; PRAGMA user_version = 4")).unwrap();
        drop(store);
        let store = Store::open(&dir.join("gati.db")).unwrap();
        assert_eq!(runs(&store), expected);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
