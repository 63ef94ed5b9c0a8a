//! Search: events by agent, type, run and time, and by the text they hold (the FTS5 index
//! finds candidates, a check keeps those that contain the text).

use rusqlite::{params, params_from_iter, types::Value as Sql};
use serde_json::{Map, Value};

use super::{
    metrics::Range,
    rows::{event_row, EVENT_SELECT},
    Page, Store,
};
use crate::model::Event;

#[derive(Debug, Default)]
pub struct EventFilter {
    pub agent: Option<String>,
    pub event_type: Option<String>,
    pub run_id: Option<String>,
    pub run_name: Option<String>,
    /// Text to find in the event's `data` or other fields, as they hold it (JSON escapes
    /// undone), case and diacritics folded.
    pub text: Option<String>,
    pub range: Range,
}

/// A search counts its matches up to this many.
pub const COUNT_CAP: i64 = 1_000;
/// Up to this many index candidates, a search sorts them all; past `DENSE`, the phrase is so
/// common that it is checked on the newest events directly, without the index.
const FEW: i64 = 2_000;
const DENSE: i64 = 50_000;

/// How many events match: `total`, exactly, unless there are more than `COUNT_CAP` (`capped`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Count {
    pub total: i64,
    pub capped: bool,
}

impl Store {
    /// Events matching every given filter, newest first, and how many match (counted up to
    /// `COUNT_CAP`: the count says whether it stopped there).
    ///
    /// Text is looked up in the search index (the words of `q` as a phrase, the last one a
    /// prefix), and each candidate is checked to hold `q` itself, case-insensitively: the index
    /// finds, the check keeps the meaning "contains this text". Events the indexer has not
    /// reached yet are checked directly, so a search finds everything stored. A phrase so common
    /// that the index would list much of the database is checked on the newest events instead,
    /// in time order, which finds a page of them at once; so are the few events of one run.
    pub fn search(&self, filter: &EventFilter, page: Page) -> rusqlite::Result<(Vec<Event>, Count)> {
        let mut conditions = Vec::new();
        let mut args = Vec::new();
        let mut add = |condition: &str, value: &Option<String>| {
            if let Some(value) = value {
                conditions.push(condition.to_string());
                args.push(Sql::Text(value.clone()));
            }
        };
        add("e.agent_name = ?", &filter.agent);
        add("e.event_type = ?", &filter.event_type);
        add("e.run_id = ?", &filter.run_id);
        add("e.run_id IN (SELECT run_id FROM runs WHERE run_name = ?)", &filter.run_name);
        add("e.timestamp >= ?", &filter.range.since);
        add("e.timestamp < ?", &filter.range.until);
        self.read(|conn| {
            // The text's conditions: for counting, and for the page in time order.
            let (mut count_only, mut page_only) = (None, None);
            if let Some(text) = &filter.text {
                if let (Some(words), None) = (fts_query(text), &filter.run_id) {
                    // The index is asked once; its candidates are handed to both queries.
                    let indexed: i64 = conn.query_row("SELECT indexed_up_to FROM search_index", [], |r| r.get(0))?;
                    let candidates = conn
                        .prepare_cached("SELECT rowid FROM events_fts WHERE events_fts MATCH ?1 LIMIT ?2")?
                        .query_map(params![words, DENSE + 1], |r| r.get::<_, i64>(0))?
                        .collect::<rusqlite::Result<Vec<_>>>()?;
                    if candidates.len() as i64 <= DENSE {
                        let found =
                            "e.id IN (SELECT value FROM json_each(?) UNION ALL SELECT id FROM events WHERE id > ?)";
                        let values =
                            vec![Sql::Text(Value::from(candidates.clone()).to_string()), Sql::Integer(indexed)];
                        count_only = Some((found.to_string(), values.clone()));
                        // Few candidates: fetch them all and sort them. More: walk the events in
                        // time order and keep those among them (`+` keeps SQLite from driving
                        // the query by the candidates), which finds a page after a few.
                        let walk = if candidates.len() as i64 <= FEW { found.to_string() } else { format!("+{found}") };
                        page_only = Some((walk, values));
                    }
                }
                conditions.push("gati_contains(e.data, e.attributes, ?)".into());
                args.push(Sql::Text(fold(text)));
            }
            let with = |extra: &Option<(String, Vec<Sql>)>| {
                let mut all = conditions.clone();
                let mut values = args.clone();
                if let Some((condition, more)) = extra {
                    all.push(condition.clone());
                    values.extend(more.iter().cloned());
                }
                (if all.is_empty() { "1".to_string() } else { all.join(" AND ") }, values)
            };
            let (condition, values) = with(&count_only);
            let counted: i64 = conn.query_row(
                &format!("SELECT count(*) FROM (SELECT 1 FROM events e WHERE {condition} LIMIT {})", COUNT_CAP + 1),
                params_from_iter(&values),
                |r| r.get(0),
            )?;
            let (condition, mut values) = with(&page_only);
            values.extend([Sql::Integer(page.limit.into()), Sql::Integer(page.offset.into())]);
            let events = conn
                .prepare_cached(&format!(
                    "{EVENT_SELECT} WHERE {condition} ORDER BY e.timestamp DESC, e.id DESC LIMIT ? OFFSET ?"
                ))?
                .query_map(params_from_iter(&values), event_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((events, Count { total: counted.min(COUNT_CAP), capped: counted > COUNT_CAP }))
        })
    }
}

/// The FTS5 query for `text`: its words as a phrase, the last one a prefix (`"rate limit exc" *`);
/// `None` if it has no word the index holds. Only letters and digits reach it, inside one
/// quoted phrase: whatever FTS5 syntax `text` holds (`"`, `NEAR`, `*`, `-`, `:`, parentheses)
/// is a separator, never an operator.
fn fts_query(text: &str) -> Option<String> {
    let words: Vec<&str> = text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    (!words.is_empty()).then(|| format!("\"{}\" *", words.join(" ")))
}

/// The text the search index holds for an event: what [`searched`] finds in it, strings
/// unescaped (a prompt's `\n` separates words, as it did when written).
pub(super) fn search_text(data: &str, attributes: &str) -> String {
    let mut out = String::with_capacity(data.len() + attributes.len());
    searched(data, attributes, |s| {
        out.push_str(s);
        out.push(' ');
        false
    });
    out
}

/// Calls `f` with each text of an event that a search finds it by, until it says it found what
/// it looked for (then `true`): every key and value of its `data` and `attributes` (the whole
/// text of one that is not JSON), but for a span's bookkeeping ([`span_texts`]).
fn searched(data: &str, attributes: &str, mut f: impl FnMut(&str) -> bool) -> bool {
    [(data, false), (attributes, true)].into_iter().any(|(text, attributes)| {
        match serde_json::from_str::<Value>(text) {
            Ok(value) => match span(&value) {
                Some(span) if attributes => span_texts(span, &mut f),
                _ => texts(&value, &mut f),
            },
            Err(_) => f(text),
        }
    })
}

/// The keys of a span's `attributes` (the OTLP mapping's) that no search is for: its ids (the
/// run's and the events' own), kind, scope and count of what was dropped.
const SPAN_BOOKKEEPING: &[&str] = &["trace_id", "span_id", "parent_span_id", "span_kind", "scope", "dropped"];
/// The keys of a span's `attributes` that hold its attributes by name.
const SPAN_ATTRIBUTES: &[&str] = &["span_attributes", "resource_attributes"];

/// `attributes` as the OTLP mapping writes them for a span: an object with a `span_id` and
/// `span_attributes`.
fn span(attributes: &Value) -> Option<&Map<String, Value>> {
    attributes.as_object().filter(|o| {
        o.get("span_id").is_some_and(Value::is_string) && o.get("span_attributes").is_some_and(Value::is_object)
    })
}

/// A span's attributes, as [`texts`] walks them, but for what nobody searches and every span
/// holds: its bookkeeping and the names of its keys and attributes (`gen_ai.usage.input_tokens`
/// on every LLM call). Their values (model, tool, server...) are searched.
fn span_texts(attributes: &Map<String, Value>, f: &mut impl FnMut(&str) -> bool) -> bool {
    attributes.iter().filter(|(key, _)| !SPAN_BOOKKEEPING.contains(&key.as_str())).any(|(key, value)| match value {
        Value::Object(named) if SPAN_ATTRIBUTES.contains(&key.as_str()) => named.values().any(|v| texts(v, &mut *f)),
        _ => texts(value, &mut *f),
    })
}

/// Calls `f` with each key, string and number of `value`, in document order, until it says
/// it found what it looked for (then `true`). A loop over a stack, not recursion: nesting
/// costs memory, never the thread's stack.
fn texts(value: &Value, mut f: impl FnMut(&str) -> bool) -> bool {
    enum Item<'a> {
        Key(&'a str),
        Value(&'a Value),
    }
    let mut stack = vec![Item::Value(value)];
    while let Some(item) = stack.pop() {
        let found = match item {
            Item::Key(key) => f(key),
            Item::Value(Value::Object(object)) => {
                for (key, value) in object.iter().rev() {
                    stack.push(Item::Value(value));
                    stack.push(Item::Key(key));
                }
                false
            }
            Item::Value(Value::Array(items)) => {
                stack.extend(items.iter().rev().map(Item::Value));
                false
            }
            Item::Value(Value::String(s)) => f(s),
            Item::Value(Value::Number(n)) => f(&n.to_string()),
            Item::Value(Value::Bool(_) | Value::Null) => false,
        };
        if found {
            return true;
        }
    }
    false
}

/// `text` with case and diacritics folded as the index's tokenizer does (`unicode61
/// remove_diacritics 2`): lower case, each character's canonical decomposition without its
/// combining marks (`Émile`, `émile` and `EMILE` are all `emile`).
pub(super) fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_ascii() {
            out.push(c);
        } else {
            unicode_normalization::char::decompose_canonical(c, |d| {
                if !unicode_normalization::char::is_combining_mark(d) {
                    out.push(d)
                }
            });
        }
    }
    out
}

/// Whether one key or value of an event's `data` or `attributes` (JSON escapes undone) holds
/// `folded`, a text already folded: the check beside the index, and alone on the events the
/// index has not reached.
pub(super) fn contains(data: &str, attributes: &str, folded: &str) -> bool {
    searched(data, attributes, |s| fold(s).contains(folded))
}
