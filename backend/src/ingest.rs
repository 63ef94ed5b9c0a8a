//! Validation of an event batch: all of it is good, or none of it is stored.
//!
//! The shape is the one the gati 0.0.3 SDK posts to `/api/events`: `{"events": [...]}`, each
//! event with `event_id`, `run_id`, `run_name`, `agent_name`, `event_type`, `timestamp`
//! (Python's naive `utcnow().isoformat()`), `parent_event_id`, `previous_event_id`, `data`, and
//! for some types more top-level fields (`model`, `tokens_in`, `tokens_out`, `cost`, ...).

use gati_service::limits::DATA_DEPTH;
use serde_json::{Map, Value};

/// Bodies above this are refused with 413 before they are parsed: 16 MiB.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Batches with more events are refused with 413: clients split them. The upstream backend's
/// limit, so that no batch the gati 0.0.3 SDK was allowed to send is refused here.
pub const MAX_EVENTS: usize = 10_000;
const MAX_ID_LEN: usize = 256;
/// Top-level fields with a column of their own; the others are kept as `attributes`.
const EVENT_FIELDS: [&str; 9] = [
    "event_id",
    "run_id",
    "run_name",
    "agent_name",
    "event_type",
    "timestamp",
    "parent_event_id",
    "previous_event_id",
    "data",
];

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event_id: String,
    pub run_id: String,
    /// The run's name as sent; `temp_…` names of the gati 0.0.3 SDK mean "number it for me".
    pub run_name: Option<String>,
    pub agent_name: String,
    pub event_type: String,
    /// RFC 3339 in UTC with microseconds, so text order is time order.
    pub timestamp: String,
    pub parent_event_id: Option<String>,
    pub previous_event_id: Option<String>,
    /// The event's `data` object, as JSON text.
    pub data: String,
    /// Every other top-level field as sent (the 0.0.3 SDK repeats `model`, `tokens_in`,
    /// `cost`... there), as a JSON object's text.
    pub attributes: String,
    pub metrics: Metrics,
    /// The LLM model the event names, if any.
    pub model: Option<String>,
    /// Whether it opens its run, as the SDK's `agent_start` does: a run is active until it has
    /// as many ends as starts.
    pub starts_run: bool,
    /// When it ends its run, if it does: the SDK's `agent_end`, at its timestamp; a trace's root
    /// span, at the span's end (a trace's spans all end before its root does).
    pub ends_run_at: Option<String>,
    /// The session (conversation) its run is part of, if it names one: a run's first event
    /// that names one decides. The native field `session_id`, kept in `attributes` as well.
    pub session_id: Option<String>,
}

/// What an event counts towards its run's and agent's totals.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    pub tokens_in: Option<i64>,
    pub tokens_out: Option<i64>,
    pub total_tokens: Option<i64>,
    pub cost: Option<f64>,
    pub duration_ms: Option<f64>,
    pub error: bool,
}

/// Why a batch was refused; becomes the JSON error body.
#[derive(Debug, PartialEq)]
pub struct BatchError {
    pub status: u16,
    pub error: String,
    pub field: Option<String>,
    pub index: Option<usize>,
    /// For a 413: the limit that was exceeded, as (`limit_bytes` | `limit_events`, value).
    pub limit: Option<(&'static str, usize)>,
}

impl BatchError {
    fn new(status: u16, error: impl Into<String>) -> Self {
        BatchError { status, error: error.into(), field: None, index: None, limit: None }
    }
    fn at(index: usize, field: &str, error: impl Into<String>) -> Self {
        BatchError { status: 422, error: error.into(), field: Some(field.into()), index: Some(index), limit: None }
    }
    pub fn too_large(size: impl std::fmt::Display) -> Self {
        BatchError {
            limit: Some(("limit_bytes", MAX_BODY_BYTES)),
            ..BatchError::new(413, format!("body of {size} bytes is larger than the limit of {MAX_BODY_BYTES} bytes"))
        }
    }
}

/// A batch whose token counts would take a total past what it can hold. Every total is a sum
/// of events' counts, so each fits if the sum over every event stored does: that is checked in
/// the batch's own transaction, before anything is added, and the batch is refused whole.
#[derive(Debug, Clone, PartialEq)]
pub struct TotalTooLarge {
    /// `tokens_in`, `tokens_out` or `total_tokens`.
    pub field: &'static str,
    /// The total of every stored event, and what the batch would add to it.
    pub stored: i128,
    pub added: i128,
}

impl std::fmt::Display for TotalTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}`: the batch adds {} to the {} stored, a total of {}, past {}, the largest total gati can hold; \
             nothing of the batch was stored",
            self.field,
            self.added,
            self.stored,
            self.stored + self.added,
            i64::MAX
        )
    }
}

impl std::error::Error for TotalTooLarge {}

impl From<TotalTooLarge> for rusqlite::Error {
    fn from(e: TotalTooLarge) -> Self {
        rusqlite::Error::ToSqlConversionFailure(Box::new(e))
    }
}

impl BatchError {
    /// The refusal a failed write of a batch means, if it was refused for what it holds (and
    /// not for a failure of the database).
    pub fn from_store(e: &rusqlite::Error) -> Option<BatchError> {
        let rusqlite::Error::ToSqlConversionFailure(e) = e else { return None };
        let e = e.downcast_ref::<TotalTooLarge>()?;
        Some(BatchError {
            field: Some(e.field.into()),
            limit: Some(("limit_total", i64::MAX as usize)),
            ..BatchError::new(422, e.to_string())
        })
    }
}

/// Accepts `{"events": [...]}` (what the gati SDKs send) or a bare array of events.
pub fn parse_batch(body: &[u8]) -> Result<Vec<Event>, BatchError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(BatchError::too_large(body.len()));
    }
    // Before any Value is built: serde_json would recurse once per level (up to its own limit
    // of 128) and every Value built would be dropped the same way.
    if let Some(deep) = too_deep(body, BODY_DEPTH) {
        let at = deep.event.map_or(String::new(), |i| format!(" in event {i}"));
        return Err(BatchError {
            index: deep.event,
            limit: Some(("limit_depth", DATA_DEPTH)),
            ..BatchError::new(
                422,
                format!(
                    "the body nests arrays and objects more than {BODY_DEPTH} deep{at}: an event's `data`, and each \
                     of its other fields, may nest at most {DATA_DEPTH} deep"
                ),
            )
        });
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| BatchError::new(400, format!("body is not valid JSON: {e}")))?;
    let events = match value {
        Value::Array(events) => events,
        Value::Object(mut object) => match object.remove("events") {
            Some(Value::Array(events)) => events,
            Some(_) => {
                let mut e = BatchError::new(422, "`events` must be an array");
                e.field = Some("events".into());
                return Err(e);
            }
            None => return Err(BatchError::new(422, "body must be an array of events or {\"events\": [...]}")),
        },
        _ => return Err(BatchError::new(422, "body must be an array of events or {\"events\": [...]}")),
    };
    if events.len() > MAX_EVENTS {
        return Err(BatchError {
            limit: Some(("limit_events", MAX_EVENTS)),
            ..BatchError::new(
                413,
                format!("batch has {} events; at most {MAX_EVENTS} are accepted at once", events.len()),
            )
        });
    }
    events.iter().enumerate().map(|(i, e)| parse_event(i, e)).collect()
}

/// How deep a body may nest: `{"events": [` and the event object around each field.
const BODY_DEPTH: usize = DATA_DEPTH + 3;

/// Where a body nests deeper than allowed: the event it is in, if the body is a batch.
#[derive(Debug, PartialEq)]
struct TooDeep {
    event: Option<usize>,
}

/// Whether JSON text nests arrays and objects deeper than `limit`, read byte by byte (no
/// recursion, nothing built). Text that is not JSON may be misread; the parser refuses it next.
fn too_deep(body: &[u8], limit: usize) -> Option<TooDeep> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    // The events are the items of the top-level array, or of the `events` array inside the
    // top-level object: counted by the commas at that level while it is open.
    let mut events: Option<(usize, usize)> = None; // (its depth, the event being read)
    let mut events_done = false;
    let (mut key_start, mut key): (usize, &[u8]) = (0, b"");
    for (at, &b) in body.iter().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => {
                    in_string = false;
                    if depth == 1 {
                        key = &body[key_start..at];
                    }
                }
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                key_start = at + 1;
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return Some(TooDeep { event: events.map(|(_, event)| event) });
                }
                let is_events = (depth == 1 && b == b'[') || (depth == 2 && b == b'[' && key == b"events");
                if is_events && events.is_none() && !events_done {
                    events = Some((depth, 0));
                }
            }
            b']' | b'}' => {
                if events.is_some_and(|(level, _)| level == depth) {
                    (events, events_done) = (None, true);
                }
                depth = depth.saturating_sub(1);
            }
            b',' => {
                if let Some((level, event)) = &mut events {
                    if *level == depth {
                        *event += 1;
                    }
                }
            }
            _ => {}
        }
    }
    None
}

/// How deep a value nests arrays and objects (a number is 0, `{}` and `[1]` are 1), without
/// recursion.
pub fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 1usize)];
    while let Some((value, level)) = stack.pop() {
        match value {
            Value::Array(items) => stack.extend(items.iter().map(|v| (v, level + 1))),
            Value::Object(object) => stack.extend(object.values().map(|v| (v, level + 1))),
            _ => continue,
        }
        deepest = deepest.max(level);
    }
    deepest
}

fn parse_event(index: usize, value: &Value) -> Result<Event, BatchError> {
    let Value::Object(object) = value else {
        return Err(BatchError::at(index, "event", "each event must be a JSON object"));
    };
    // Each field is answered as it was sent, `data` inside a trace too: none may nest deeper
    // than what every reader of the answers can take (gati_service::limits).
    for (field, value) in object {
        let depth = depth(value);
        if depth > DATA_DEPTH {
            return Err(BatchError {
                limit: Some(("limit_depth", DATA_DEPTH)),
                ..BatchError::at(
                    index,
                    field,
                    format!(
                        "`{}` nests arrays and objects {depth} deep; at most {DATA_DEPTH} are stored",
                        shown(field)
                    ),
                )
            });
        }
    }
    let text = |field: &str| required_text(index, object, field);
    let optional = |field: &str| match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(_) => text(field).map(Some),
    };
    let timestamp = text("timestamp")?;
    let empty = Map::new();
    let data = match object.get("data") {
        Some(Value::Object(data)) => data,
        None | Some(Value::Null) => &empty,
        Some(_) => return Err(BatchError::at(index, "data", "`data` must be a JSON object")),
    };
    // Written from borrowed values: copying an event's JSON to write it is half its parse.
    let attributes: std::collections::BTreeMap<&str, &Value> =
        object.iter().filter(|(k, _)| !EVENT_FIELDS.contains(&k.as_str())).map(|(k, v)| (k.as_str(), v)).collect();
    let event_type = text("event_type")?;
    let metrics = read_metrics(&event_type, object, data, Reading::Strict)
        .map_err(|bad| BatchError { limit: bad.limit, ..BatchError::at(index, &bad.field, bad.message) })?;
    let model = model(object, data);
    let timestamp = stored_timestamp(&timestamp).map_err(|why| BatchError::at(index, "timestamp", why))?;
    Ok(Event {
        // The 0.0.3 SDK always sends one; without it, the same event sent twice gets the same id.
        event_id: match optional("event_id")? {
            Some(id) => id,
            None => format!("derived-{:032x}", fnv1a_128(value.to_string().as_bytes())),
        },
        run_id: text("run_id")?,
        run_name: optional("run_name")?,
        agent_name: text("agent_name")?,
        starts_run: event_type == "agent_start",
        ends_run_at: (event_type == "agent_end").then(|| timestamp.clone()),
        // A whole number too: a field of that name that 0.0.3's SDK passed through untouched.
        session_id: match object.get("session_id") {
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Some(n.to_string()),
            _ => optional("session_id")?,
        },
        event_type,
        timestamp,
        parent_event_id: optional("parent_event_id")?,
        previous_event_id: optional("previous_event_id")?,
        data: serde_json::to_string(data).expect("a JSON object is written"),
        attributes: serde_json::to_string(&attributes).expect("JSON values are written"),
        metrics,
        model,
    })
}

/// The earliest and latest times stored: SQLite's date functions end at 9999-12-31 (the day
/// after it is NULL) and nothing an agent did happened before 1970.
const FIRST_YEAR: i32 = 1970;
const LAST_YEAR: i32 = 9998;

/// A timestamp as stored, or why it cannot be.
fn stored_timestamp(sent: &str) -> Result<String, String> {
    let Some(stored) = normalize_timestamp(sent) else {
        return Err(format!("`timestamp` {} is not an ISO 8601 date-time like 2026-01-31T12:00:00Z", shown(sent)));
    };
    match stored.get(..4).and_then(|year| year.parse::<i32>().ok()) {
        Some(FIRST_YEAR..=LAST_YEAR) => Ok(stored),
        _ => Err(format!(
            "`timestamp` {} is outside the years {FIRST_YEAR} to {LAST_YEAR} that gati stores",
            shown(sent)
        )),
    }
}

/// A value sent, quoted for an error message, cut short if it is long.
fn shown(text: &str) -> String {
    const SHOWN: usize = 80;
    match text.char_indices().nth(SHOWN) {
        None => format!("{text:?}"),
        Some((end, _)) => format!("{:?}... ({} bytes)", &text[..end], text.len()),
    }
}

/// Where token counts may be, most specific first: `data` itself, the usage objects of the
/// common providers and of LangChain inside it, then the event's top level (where the 0.0.3
/// SDK's dataclasses put `tokens_in: 0` by default, hence "first non-zero wins").
const TOKEN_PLACES: [&[&str]; 9] = [
    &["data"],
    &["data", "usage"],
    &["data", "token_usage"],
    &["data", "usage_metadata"],
    &["data", "llm_output", "token_usage"],
    &["data", "raw_llm_output", "token_usage"],
    &["data", "response_metadata", "token_usage"],
    &[],
    &["usage"],
];
const TOKENS_IN: [&str; 4] = ["tokens_in", "prompt_tokens", "input_tokens", "prompt_token_count"];
const TOKENS_OUT: [&str; 4] = ["tokens_out", "completion_tokens", "output_tokens", "candidates_token_count"];
const TOKENS_TOTAL: [&str; 3] = ["total_tokens", "tokens", "total_token_count"];
// `total_cost` is left out on purpose: the SDK's `agent_end` repeats the sum of its run's costs.
const COST: [&str; 2] = ["cost", "cost_usd"];
const DURATION: [&str; 4] = ["duration_ms", "latency_ms", "total_duration_ms", "elapsed_ms"];

/// The most one event may cost, in dollars: no real price comes near it, and the sum of any
/// number of such costs stays a finite number.
pub const MAX_COST: f64 = 1e12;
/// The longest one event may last, in milliseconds: about 317 years.
pub const MAX_DURATION_MS: f64 = 1e13;

/// How metrics are read: at ingest, a value under a metric's key that is no count, price or
/// duration gati can add up is refused; in events an older gati stored, it is left out.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Reading {
    Strict,
    Lenient,
}

/// A metric a batch cannot be stored with: where, why, and the limit it passed.
#[derive(Debug)]
struct BadMetric {
    field: String,
    message: String,
    limit: Option<(&'static str, usize)>,
}

/// What a metric's value is read as.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Tokens,
    Cost,
    Duration,
}

/// A metric's value as sent: an integer kept exact, or a float.
#[derive(Debug, Clone, Copy)]
enum Sent {
    Integer(i128),
    Float(f64),
}

impl Sent {
    /// As a token count (`metric` has checked that it is one).
    fn count(self) -> i64 {
        match self {
            Sent::Integer(i) => i64::try_from(i).unwrap_or(i64::MAX),
            Sent::Float(f) => f.round() as i64,
        }
    }

    fn float(self) -> f64 {
        match self {
            Sent::Integer(i) => i as f64,
            Sent::Float(f) => f,
        }
    }
}

/// The tokens, cost, duration and error status an event reports, in any spelling we know
/// (values that are no count, price or duration left out).
pub fn metrics(event_type: &str, top: &Map<String, Value>, data: &Map<String, Value>) -> Metrics {
    read_metrics(event_type, top, data, Reading::Lenient).unwrap_or_default()
}

fn read_metrics(
    event_type: &str,
    top: &Map<String, Value>,
    data: &Map<String, Value>,
    reading: Reading,
) -> Result<Metrics, BadMetric> {
    let place = |path: &[&str]| -> Option<&Map<String, Value>> {
        let (first, rest) = match path.split_first() {
            None => return Some(top),
            Some((&"data", rest)) => (data, rest),
            Some((key, rest)) => (top.get(*key)?.as_object()?, rest),
        };
        rest.iter().try_fold(first, |object, key| object.get(*key)?.as_object())
    };
    // Every place's counts are read (and so checked), then the first with a non-zero one wins.
    let mut counts: Vec<[Option<i64>; 3]> = Vec::new();
    for path in TOKEN_PLACES {
        let Some(object) = place(path) else { continue };
        let mut found = [None; 3];
        for (slot, keys) in found.iter_mut().zip([&TOKENS_IN[..], &TOKENS_OUT[..], &TOKENS_TOTAL[..]]) {
            for key in keys {
                let Some(value) = object.get(*key) else { continue };
                let n = metric(&field_name(path, key), value, Kind::Tokens, reading)?;
                *slot = slot.or(n.map(Sent::count));
            }
        }
        counts.push(found);
    }
    let chosen = counts
        .iter()
        .find(|t| t.iter().any(|n| n.is_some_and(|n| n != 0)))
        .or_else(|| counts.iter().find(|t| t.iter().any(Option::is_some)));
    let [tokens_in, tokens_out, total] = chosen.copied().unwrap_or_default();
    let total_tokens = match (total, tokens_in, tokens_out) {
        (Some(total), _, _) => Some(total),
        (None, None, None) => None,
        (None, a, b) => match a.unwrap_or(0).checked_add(b.unwrap_or(0)) {
            Some(sum) => Some(sum),
            None if reading == Reading::Lenient => None,
            None => {
                return Err(BadMetric {
                    field: "total_tokens".into(),
                    message: format!(
                        "`total_tokens`, tokens in ({}) and out ({}), would be more than {}, the largest token count gati can hold",
                        a.unwrap_or(0),
                        b.unwrap_or(0),
                        i64::MAX
                    ),
                    limit: Some(("limit_tokens", i64::MAX as usize)),
                })
            }
        },
    };
    let first_nonzero = |keys: &[&str], kind: Kind| -> Result<Option<f64>, BadMetric> {
        let mut values = Vec::new();
        for (path, object) in [(&["data"][..], data), (&[][..], top)] {
            for key in keys {
                if let Some(value) = object.get(*key) {
                    values.extend(metric(&field_name(path, key), value, kind, reading)?.map(Sent::float));
                }
            }
        }
        Ok(values.iter().copied().find(|v| *v != 0.0).or(values.first().copied()))
    };
    Ok(Metrics {
        tokens_in,
        tokens_out,
        total_tokens,
        cost: first_nonzero(&COST, Kind::Cost)?,
        duration_ms: first_nonzero(&DURATION, Kind::Duration)?,
        error: is_error(event_type, top, data),
    })
}

/// `data.usage.prompt_tokens`: where a metric was sent.
fn field_name(path: &[&str], key: &str) -> String {
    path.iter().chain([&key]).copied().collect::<Vec<_>>().join(".")
}

/// A metric's value (a number, or a string holding one), as a count (exact) or a float: `None`
/// for what is no number at all (a list of tokens, a word). A number no total can hold is
/// refused when `Strict`, left out when `Lenient`; so is a negative duration, always (a clock
/// that stepped back between start and end).
fn metric(field: &str, value: &Value, kind: Kind, reading: Reading) -> Result<Option<Sent>, BadMetric> {
    let sent = match value {
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Sent::Integer(i.into()),
            (_, Some(u), _) => Sent::Integer(u.into()),
            (_, _, Some(f)) => Sent::Float(f),
            _ => return Ok(None),
        },
        Value::String(s) => {
            let s = s.trim();
            match (s.parse::<i128>(), s.parse::<f64>()) {
                (Ok(i), _) => Sent::Integer(i),
                (_, Ok(f)) => Sent::Float(f),
                _ => return Ok(None),
            }
        }
        _ => return Ok(None),
    };
    let refuse = |why: String, limit: Option<(&'static str, usize)>| match reading {
        Reading::Lenient => Ok(None),
        Reading::Strict => Err(BadMetric {
            field: field.to_string(),
            message: format!("`{field}` is {}: {why}", sent_text(value)),
            limit,
        }),
    };
    let float = sent.float();
    if float.is_nan() || float.is_infinite() {
        return refuse("not a finite number".into(), None);
    }
    match kind {
        Kind::Tokens => {
            let limit = Some(("limit_tokens", i64::MAX as usize));
            let whole = format!("a token count is a whole number from 0 to {}", i64::MAX);
            match sent {
                Sent::Integer(i) if i < 0 => refuse(whole, limit),
                Sent::Integer(i) if i > i64::MAX as i128 => refuse(whole, limit),
                // 2^63: the first float past i64::MAX.
                Sent::Float(f) if f < 0.0 || f.round() >= 9_223_372_036_854_775_808.0 => refuse(whole, limit),
                Sent::Integer(_) | Sent::Float(_) => Ok(Some(sent)),
            }
        }
        Kind::Cost if !(0.0..=MAX_COST).contains(&float) => refuse(
            format!("a cost is a number of dollars from 0 to {MAX_COST:e}"),
            Some(("limit_cost", MAX_COST as usize)),
        ),
        Kind::Duration if float < 0.0 => Ok(None),
        Kind::Duration if float > MAX_DURATION_MS => refuse(
            format!("a duration is a number of milliseconds from 0 to {MAX_DURATION_MS:e} (about 317 years)"),
            Some(("limit_duration_ms", MAX_DURATION_MS as usize)),
        ),
        Kind::Cost | Kind::Duration => Ok(Some(sent)),
    }
}

/// A value sent, as an error message shows it.
fn sent_text(value: &Value) -> String {
    match value {
        Value::String(s) => shown(s),
        other => shown(&other.to_string()).trim_matches('"').to_string(),
    }
}

/// Where an LLM call names its model: our SDK and 0.0.3's write `model`; LangChain's
/// responses say `model_name` in their metadata or output; the 0.0.3 dataclass repeats `model`
/// at the top level.
const MODEL_PLACES: [&[&str]; 7] = [
    &["data", "model"],
    &["data", "model_name"],
    &["data", "response_metadata", "model_name"],
    &["data", "llm_output", "model_name"],
    &["data", "invocation_params", "model"],
    &["data", "invocation_params", "model_name"],
    &["model"],
];

/// The LLM model an event names (`top` is the event, `data` its `data`), if any.
pub fn model(top: &Map<String, Value>, data: &Map<String, Value>) -> Option<String> {
    MODEL_PLACES.iter().find_map(|path| {
        let (first, rest) = match path.split_first()? {
            (&"data", rest) => (data, rest),
            _ => (top, *path),
        };
        let (last, inner) = rest.split_last()?;
        let object = inner.iter().try_fold(first, |object, key| object.get(*key)?.as_object())?;
        let name = object.get(*last)?.as_str()?.trim();
        (!name.is_empty() && name.len() <= MAX_ID_LEN).then(|| name.to_string())
    })
}

/// An event of an `*error` type, or whose status says "error" (the SDK writes it into `data`,
/// or into `data.metadata` for a failed chain), or that carries an error message.
fn is_error(event_type: &str, top: &Map<String, Value>, data: &Map<String, Value>) -> bool {
    let failed = |o: &Map<String, Value>| {
        let status = o.get("status").and_then(Value::as_str).unwrap_or("");
        status.eq_ignore_ascii_case("error")
            || status.eq_ignore_ascii_case("failed")
            || ["error", "error_message", "exception"].iter().any(|k| match o.get(*k) {
                None | Some(Value::Null) | Some(Value::Bool(false)) => false,
                Some(Value::String(s)) => !s.is_empty(),
                Some(_) => true,
            })
    };
    let event_type = event_type.to_ascii_lowercase();
    event_type == "error"
        || event_type.ends_with("_error")
        || failed(top)
        || failed(data)
        || data.get("metadata").and_then(Value::as_object).is_some_and(failed)
}

/// FNV-1a, 128 bits: a stable id for an event sent without one.
fn fnv1a_128(bytes: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    bytes.iter().fold(OFFSET, |hash, b| (hash ^ *b as u128).wrapping_mul(PRIME))
}

fn required_text(index: usize, object: &Map<String, Value>, field: &str) -> Result<String, BatchError> {
    match object.get(field) {
        Some(Value::String(s)) if s.trim().is_empty() => {
            Err(BatchError::at(index, field, format!("`{field}` must not be empty")))
        }
        Some(Value::String(s)) if s.len() > MAX_ID_LEN && field != "timestamp" => {
            Err(BatchError::at(index, field, format!("`{field}` is longer than {MAX_ID_LEN} bytes")))
        }
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Null) | None => Err(BatchError::at(index, field, format!("`{field}` is missing"))),
        Some(other) => {
            Err(BatchError::at(index, field, format!("`{field}` must be a string, not {}", json_type(other))))
        }
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// RFC 3339 with an offset, or a naive ISO date-time (Python's `isoformat()`), read as UTC.
pub fn normalize_timestamp(s: &str) -> Option<String> {
    use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
    let utc: DateTime<Utc> = match DateTime::parse_from_rfc3339(s) {
        Ok(t) => t.with_timezone(&Utc),
        Err(_) => NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
            .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"))
            .ok()?
            .and_utc(),
    };
    Some(utc.to_rfc3339_opts(SecondsFormat::Micros, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(overrides: Value) -> Value {
        let mut e = serde_json::json!({
            "event_id": "e1", "run_id": "r1", "agent_name": "a", "event_type": "llm_call",
            "timestamp": "2026-01-31T12:00:00Z", "data": {"tokens": 3}
        });
        for (k, v) in overrides.as_object().unwrap() {
            if v.is_null() {
                e.as_object_mut().unwrap().remove(k);
            } else {
                e[k] = v.clone();
            }
        }
        e
    }

    fn refuse(batch: Value) -> BatchError {
        parse_batch(batch.to_string().as_bytes()).unwrap_err()
    }

    #[test]
    fn accepts_both_batch_shapes() {
        let one = event(serde_json::json!({}));
        assert_eq!(parse_batch(serde_json::json!([one]).to_string().as_bytes()).unwrap().len(), 1);
        let wrapped = serde_json::json!({"events": [one, event(serde_json::json!({"event_id": "e2"}))]});
        assert_eq!(parse_batch(wrapped.to_string().as_bytes()).unwrap().len(), 2);
    }

    #[test]
    fn names_the_field_and_index_of_a_bad_event() {
        let good = event(serde_json::json!({}));
        let cases = [
            (serde_json::json!({"run_id": null}), "run_id"),
            (serde_json::json!({"agent_name": 5}), "agent_name"),
            (serde_json::json!({"timestamp": "yesterday"}), "timestamp"),
            (serde_json::json!({"data": "text"}), "data"),
            (serde_json::json!({"event_id": 5}), "event_id"),
            (serde_json::json!({"run_id": ""}), "run_id"),
            (serde_json::json!({"parent_event_id": 7}), "parent_event_id"),
        ];
        for (overrides, field) in cases {
            let err = refuse(serde_json::json!([good, event(overrides)]));
            assert_eq!((err.status, err.field.as_deref(), err.index), (422, Some(field), Some(1)), "{err:?}");
        }
    }

    #[test]
    fn refuses_bodies_that_are_not_batches() {
        assert_eq!(parse_batch(b"{not json").unwrap_err().status, 400);
        assert_eq!(refuse(serde_json::json!({"events": 3})).status, 422);
        assert_eq!(refuse(serde_json::json!("x")).status, 422);
        let many: Vec<Value> = (0..=MAX_EVENTS).map(|_| Value::Null).collect();
        assert_eq!(refuse(Value::Array(many)).status, 413);
    }

    /// An `llm_call` as the gati 0.0.3 SDK's `LLMCallEvent.to_dict()` produces it.
    fn upstream_llm_call() -> Value {
        serde_json::json!({
            "event_type": "llm_call", "run_id": "7d0c6f0e-0000-4000-8000-000000000001",
            "run_name": "temp_1f3c", "timestamp": "2026-01-31T12:00:00", "agent_name": "support-bot",
            "event_id": "9a1b", "parent_event_id": null, "previous_event_id": null,
            "data": {"model": "gpt-4o", "prompt": "hi", "completion": "hello", "tokens_in": 100, "tokens_out": 50,
                     "latency_ms": 812.5, "cost": 0.00075, "system_prompt": ""},
            "model": "gpt-4o", "prompt": "hi", "completion": "hello", "tokens_in": 100, "tokens_out": 50,
            "latency_ms": 812.5, "cost": 0.00075, "system_prompt": ""
        })
    }

    #[test]
    fn reads_the_upstream_sdk_shape() {
        let batch = serde_json::json!({"events": [upstream_llm_call()]});
        let [e] = <[Event; 1]>::try_from(parse_batch(batch.to_string().as_bytes()).unwrap()).unwrap();
        assert_eq!(e.run_name.as_deref(), Some("temp_1f3c"));
        assert_eq!(e.timestamp, "2026-01-31T12:00:00.000000Z");
        let m = e.metrics;
        assert_eq!((m.tokens_in, m.tokens_out, m.total_tokens), (Some(100), Some(50), Some(150)));
        assert_eq!((m.cost, m.duration_ms, m.error), (Some(0.00075), Some(812.5), false));
        let attributes: Value = serde_json::from_str(&e.attributes).unwrap();
        assert_eq!(attributes["model"], "gpt-4o");
        assert!(attributes.get("data").is_none() && attributes.get("run_name").is_none());
    }

    #[test]
    fn token_counts_in_every_spelling() {
        let cases = [
            (serde_json::json!({"data": {"prompt_tokens": 7, "completion_tokens": 3}}), (7, 3, 10)),
            (serde_json::json!({"data": {"input_tokens": 7, "output_tokens": 3, "total_tokens": 11}}), (7, 3, 11)),
            (serde_json::json!({"data": {"usage": {"prompt_tokens": 7, "completion_tokens": 3}}}), (7, 3, 10)),
            (serde_json::json!({"data": {"usage_metadata": {"input_tokens": 7, "output_tokens": 3}}}), (7, 3, 10)),
            (serde_json::json!({"data": {"llm_output": {"token_usage": {"prompt_tokens": 7}}}}), (7, 0, 7)),
            (serde_json::json!({"data": {}, "usage": {"input_tokens": "7", "output_tokens": 3.0}}), (7, 3, 10)),
            // The dataclass's top-level zeros do not hide counts inside `data`, nor the reverse.
            (serde_json::json!({"tokens_in": 0, "tokens_out": 0, "data": {"usage": {"prompt_tokens": 7}}}), (7, 0, 7)),
            (serde_json::json!({"tokens_in": 7, "tokens_out": 3, "data": {"tokens_in": 0}}), (7, 3, 10)),
            (serde_json::json!({"data": {"tokens": 120}}), (0, 0, 120)),
        ];
        for (event, (tokens_in, tokens_out, total)) in cases {
            let m = metrics("llm_call", event.as_object().unwrap(), event["data"].as_object().unwrap());
            let got = (m.tokens_in.unwrap_or(0), m.tokens_out.unwrap_or(0), m.total_tokens.unwrap_or(0));
            assert_eq!(got, (tokens_in, tokens_out, total), "{event}");
        }
        let none = metrics("tool_call", &Map::new(), serde_json::json!({"tokens": [1, 2]}).as_object().unwrap());
        assert_eq!(none, Metrics::default());
    }

    #[test]
    fn cost_duration_and_errors() {
        let m = |event_type: &str, event: Value| {
            metrics(event_type, event.as_object().unwrap(), event["data"].as_object().unwrap_or(&Map::new()))
        };
        let end = m("agent_end", serde_json::json!({"data": {"total_cost": 0.5, "total_duration_ms": 900}}));
        assert_eq!((end.cost, end.duration_ms), (None, Some(900.0)), "total_cost repeats the run's costs");
        assert_eq!(m("llm_call", serde_json::json!({"cost": 0.0, "data": {"cost_usd": 0.25}})).cost, Some(0.25));
        assert!(m("llm_call", serde_json::json!({"data": {"status": "error", "error_message": "boom"}})).error);
        assert!(m("step", serde_json::json!({"data": {"metadata": {"status": "error"}}})).error);
        assert!(m("tool_error", serde_json::json!({"data": {}})).error);
        assert!(!m("llm_call", serde_json::json!({"data": {"status": "completed", "error": null}})).error);
    }

    #[test]
    fn the_model_an_event_names() {
        let model = |event: Value| model(event.as_object().unwrap(), event["data"].as_object().unwrap_or(&Map::new()));
        assert_eq!(model(upstream_llm_call()).as_deref(), Some("gpt-4o"));
        let langchain = serde_json::json!({"data": {"response_metadata": {"model_name": "gpt-4o-mini"}}});
        assert_eq!(model(langchain).as_deref(), Some("gpt-4o-mini"));
        assert_eq!(model(serde_json::json!({"data": {"model": "  "}, "model": "claude"})).as_deref(), Some("claude"));
        assert_eq!(model(serde_json::json!({"data": {"tool_name": "search"}})), None);
        assert_eq!(model(serde_json::json!({"data": {"model": 4}})), None);
    }

    #[test]
    fn event_ids_and_data_may_be_left_out() {
        let mut e = upstream_llm_call();
        e.as_object_mut().unwrap().remove("event_id");
        e.as_object_mut().unwrap().remove("data");
        let first = parse_batch(serde_json::json!([e]).to_string().as_bytes()).unwrap();
        let again = parse_batch(serde_json::json!([e]).to_string().as_bytes()).unwrap();
        assert_eq!(first[0].event_id, again[0].event_id, "the same event gets the same id");
        assert!(first[0].event_id.starts_with("derived-"));
        assert_eq!(first[0].data, "{}");
        assert_eq!(first[0].metrics.total_tokens, Some(150));
    }

    #[test]
    fn oversized_refusals_name_their_limit() {
        let many: Vec<Value> = (0..=MAX_EVENTS).map(|_| Value::Null).collect();
        assert_eq!(refuse(Value::Array(many)).limit, Some(("limit_events", MAX_EVENTS)));
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(parse_batch(&big).unwrap_err().limit, Some(("limit_bytes", 16 * 1024 * 1024)));
    }

    /// `{"d": {"d": ... 1}}`, `levels` objects deep.
    fn nested(levels: usize) -> Value {
        (0..levels).fold(Value::from(1), |inner, _| serde_json::json!({ "d": inner }))
    }

    #[test]
    fn data_deeper_than_the_limit_is_refused_naming_it() {
        let at_limit = event(serde_json::json!({"data": nested(DATA_DEPTH)}));
        assert!(parse_batch(serde_json::json!({"events": [at_limit]}).to_string().as_bytes()).is_ok());
        // A bare array leaves one level more for the event: the check after parsing finds it.
        let good = event(serde_json::json!({}));
        let deep = event(serde_json::json!({"data": nested(DATA_DEPTH + 1)}));
        let err = refuse(serde_json::json!([good, deep]));
        assert_eq!((err.status, err.field.as_deref(), err.index), (422, Some("data"), Some(1)), "{err:?}");
        assert_eq!(err.limit, Some(("limit_depth", DATA_DEPTH)));
        assert!(err.error.contains("33 deep") && err.error.contains("at most 32"), "{}", err.error);
        // Other fields are answered as sent too.
        let err = refuse(serde_json::json!([event(serde_json::json!({"extra": nested(DATA_DEPTH + 1)}))]));
        assert_eq!((err.field.as_deref(), err.limit), (Some("extra"), Some(("limit_depth", DATA_DEPTH))));
    }

    #[test]
    fn a_body_deeper_than_any_batch_is_refused_before_it_is_parsed() {
        let wrapped = |levels: usize| {
            let events =
                serde_json::json!([event(serde_json::json!({})), event(serde_json::json!({"data": nested(levels)}))]);
            serde_json::json!({"first": [1, 2], "events": events}).to_string()
        };
        let err = parse_batch(wrapped(DATA_DEPTH + 1).as_bytes()).unwrap_err();
        assert_eq!((err.status, err.index, err.limit), (422, Some(1), Some(("limit_depth", DATA_DEPTH))), "{err:?}");
        // Far past serde_json's recursion limit of 128, and a million levels: never parsed.
        for levels in [200, 1_000_000] {
            let body = format!("{}{}", "[".repeat(levels), "]".repeat(levels));
            let err = parse_batch(body.as_bytes()).unwrap_err();
            assert_eq!((err.status, err.index), (422, Some(0)), "{err:?}");
            assert!(err.error.contains("more than 35 deep"), "{}", err.error);
        }
        // Brackets inside strings do not count.
        let text = event(serde_json::json!({"data": {"prompt": "[[[[{{{{\\\"".repeat(50)}}));
        assert!(parse_batch(serde_json::json!([text]).to_string().as_bytes()).is_ok());
    }

    #[test]
    fn numbers_no_total_can_hold_are_refused_naming_field_value_and_limit() {
        let cases = [
            (serde_json::json!({"data": {"tokens_in": -5}}), "data.tokens_in", "-5", "limit_tokens"),
            (
                serde_json::json!({"data": {"usage": {"prompt_tokens": 9223372036854775808u64}}}),
                "data.usage.prompt_tokens",
                "9223372036854775808",
                "limit_tokens",
            ),
            (serde_json::json!({"tokens_out": 1e19}), "tokens_out", "1e+19", "limit_tokens"),
            (
                serde_json::json!({"data": {"tokens": "99999999999999999999"}}),
                "data.tokens",
                "99999999999999999999",
                "limit_tokens",
            ),
            (serde_json::json!({"data": {"cost": -0.5}}), "data.cost", "-0.5", "limit_cost"),
            (serde_json::json!({"cost": 1e300}), "cost", "1e+300", "limit_cost"),
            (serde_json::json!({"data": {"latency_ms": 1e20}}), "data.latency_ms", "1e+20", "limit_duration_ms"),
        ];
        for (overrides, field, value, limit) in cases {
            let err = refuse(serde_json::json!([event(overrides.clone())]));
            assert_eq!((err.status, err.field.as_deref(), err.index), (422, Some(field), Some(0)), "{overrides}");
            assert_eq!(err.limit.map(|l| l.0), Some(limit), "{overrides}");
            assert!(err.error.contains(value), "{overrides}: {}", err.error);
        }
        for text in ["NaN", "inf", "-Infinity"] {
            let err = refuse(serde_json::json!([event(serde_json::json!({"data": {"cost": text}}))]));
            assert!(err.error.contains("not a finite number"), "{}", err.error);
        }
        let max = i64::MAX;
        let err = refuse(serde_json::json!([event(serde_json::json!({"data": {"tokens_in": max, "tokens_out": 1}}))]));
        assert_eq!((err.field.as_deref(), err.limit), (Some("total_tokens"), Some(("limit_tokens", max as usize))));
    }

    #[test]
    fn numbers_at_the_limits_are_stored_exactly() {
        let parsed = |overrides: Value| parse_batch(serde_json::json!([event(overrides)]).to_string().as_bytes());
        let m = parsed(serde_json::json!({"data": {"tokens_in": i64::MAX}})).unwrap()[0].metrics.clone();
        assert_eq!((m.tokens_in, m.total_tokens), (Some(i64::MAX), Some(i64::MAX)));
        // Past 2^53 a float is not exact: the integer is read as one.
        let m = parsed(serde_json::json!({"data": {"tokens": 9007199254740993i64}})).unwrap()[0].metrics.clone();
        assert_eq!(m.total_tokens, Some(9007199254740993));
        let m = parsed(serde_json::json!({"data": {"tokens": "12", "cost": "0.25", "latency_ms": 2.5}})).unwrap()[0]
            .metrics
            .clone();
        assert_eq!((m.total_tokens, m.cost, m.duration_ms), (Some(12), Some(0.25), Some(2.5)));
        let m = parsed(serde_json::json!({"data": {"tokens": 12.6, "cost": MAX_COST}})).unwrap()[0].metrics.clone();
        assert_eq!((m.total_tokens, m.cost), (Some(13), Some(MAX_COST)));
        // A clock that stepped back: no duration, the event kept.
        let m = parsed(serde_json::json!({"data": {"latency_ms": -0.3}})).unwrap()[0].metrics.clone();
        assert_eq!(m.duration_ms, None);
        // What is no number is no metric: a list of tokens, a word.
        let m = parsed(serde_json::json!({"data": {"tokens": ["a", "b"], "cost": "free"}})).unwrap()[0].metrics.clone();
        assert_eq!((m.total_tokens, m.cost), (None, None));
    }

    #[test]
    fn stored_events_are_read_leniently() {
        // An older gati stored these: the migration leaves out what ingest now refuses.
        let data = serde_json::json!({"tokens_in": -5, "tokens_out": 3, "cost": "NaN"});
        let m = metrics("llm_call", &Map::new(), data.as_object().unwrap());
        assert_eq!((m.tokens_in, m.tokens_out, m.cost), (None, Some(3), None));
    }

    #[test]
    fn far_timestamps_are_refused_and_long_ones_cut_short_in_the_message() {
        for far in ["0000-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "9999-12-31T00:00:00Z", "+10000-01-01T00:00:00"] {
            let err = refuse(serde_json::json!([event(serde_json::json!({"timestamp": far}))]));
            assert_eq!((err.status, err.field.as_deref()), (422, Some("timestamp")), "{far}");
        }
        let err = refuse(serde_json::json!([event(serde_json::json!({"timestamp": 1e20}))]));
        assert!(err.error.contains("must be a string"), "{}", err.error);
        for near in ["1970-01-01T00:00:00Z", "9998-12-31T23:59:59.999999Z"] {
            assert!(parse_batch(
                serde_json::json!([event(serde_json::json!({"timestamp": near}))]).to_string().as_bytes()
            )
            .is_ok());
        }
        let err = refuse(serde_json::json!([event(serde_json::json!({"timestamp": "x".repeat(1_000_000)}))]));
        assert!(err.error.len() < 300, "{}", err.error.len());
    }

    #[test]
    fn timestamps_are_normalized_to_utc_micros() {
        let cases = [
            ("2026-01-31T12:00:00", "2026-01-31T12:00:00.000000Z"),
            ("2026-01-31 12:00:00.25", "2026-01-31T12:00:00.250000Z"),
            ("2026-01-31T12:00:00Z", "2026-01-31T12:00:00.000000Z"),
            ("2026-01-31T14:00:00.5+02:00", "2026-01-31T12:00:00.500000Z"),
            ("2026-01-31T12:00:00.123456", "2026-01-31T12:00:00.123456Z"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_timestamp(input).as_deref(), Some(want), "{input}");
        }
        for bad in ["", "2026-01-31", "2026-13-01T00:00:00Z", "12:00"] {
            assert_eq!(normalize_timestamp(bad), None, "{bad}");
        }
    }
}
