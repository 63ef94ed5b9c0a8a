//! Validation of an event batch: all of it is good, or none of it is stored.
//!
//! The shape is the one the gati 0.0.3 SDK posts to `/api/events`: `{"events": [...]}`, each
//! event with `event_id`, `run_id`, `run_name`, `agent_name`, `event_type`, `timestamp`
//! (Python's naive `utcnow().isoformat()`), `parent_event_id`, `previous_event_id`, `data`, and
//! for some types more top-level fields (`model`, `tokens_in`, `tokens_out`, `cost`, ...).

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

/// Accepts `{"events": [...]}` (what the gati SDKs send) or a bare array of events.
pub fn parse_batch(body: &[u8]) -> Result<Vec<Event>, BatchError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(BatchError::too_large(body.len()));
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

fn parse_event(index: usize, value: &Value) -> Result<Event, BatchError> {
    let Value::Object(object) = value else {
        return Err(BatchError::at(index, "event", "each event must be a JSON object"));
    };
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
    let metrics = metrics(&event_type, object, data);
    let model = model(object, data);
    Ok(Event {
        // The 0.0.3 SDK always sends one; without it, the same event sent twice gets the same id.
        event_id: match optional("event_id")? {
            Some(id) => id,
            None => format!("derived-{:032x}", fnv1a_128(value.to_string().as_bytes())),
        },
        run_id: text("run_id")?,
        run_name: optional("run_name")?,
        agent_name: text("agent_name")?,
        event_type,
        timestamp: normalize_timestamp(&timestamp).ok_or_else(|| {
            BatchError::at(
                index,
                "timestamp",
                format!("`timestamp` {timestamp:?} is not an ISO 8601 date-time like 2026-01-31T12:00:00Z"),
            )
        })?,
        parent_event_id: optional("parent_event_id")?,
        previous_event_id: optional("previous_event_id")?,
        data: serde_json::to_string(data).expect("a JSON object is written"),
        attributes: serde_json::to_string(&attributes).expect("JSON values are written"),
        metrics,
        model,
    })
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

/// The tokens, cost, duration and error status an event reports, in any spelling we know.
pub fn metrics(event_type: &str, top: &Map<String, Value>, data: &Map<String, Value>) -> Metrics {
    let place = |path: &[&str]| -> Option<&Map<String, Value>> {
        let (first, rest) = match path.split_first() {
            None => return Some(top),
            Some((&"data", rest)) => (data, rest),
            Some((key, rest)) => (top.get(*key)?.as_object()?, rest),
        };
        rest.iter().try_fold(first, |object, key| object.get(*key)?.as_object())
    };
    let places: Vec<&Map<String, Value>> = TOKEN_PLACES.iter().filter_map(|p| place(p)).collect();
    let count = |object: &Map<String, Value>, keys: &[&str]| keys.iter().find_map(|k| number(object.get(*k)?));
    let tokens = |object: &Map<String, Value>| {
        [count(object, &TOKENS_IN), count(object, &TOKENS_OUT), count(object, &TOKENS_TOTAL)]
    };
    let chosen = places
        .iter()
        .map(|p| tokens(p))
        .find(|t| t.iter().any(|n| n.is_some_and(|n| n != 0.0)))
        .or_else(|| places.iter().map(|p| tokens(p)).find(|t| t.iter().any(Option::is_some)));
    let [tokens_in, tokens_out, total] = chosen.unwrap_or_default().map(|n| n.map(|n| n.round() as i64));
    let total_tokens = total.or(match (tokens_in, tokens_out) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
    });
    let first_nonzero = |keys: &[&str]| {
        let values: Vec<f64> =
            [data, top].iter().flat_map(|o| keys.iter().filter_map(|k| number(o.get(*k)?))).collect();
        values.iter().copied().find(|v| *v != 0.0).or(values.first().copied())
    };
    Metrics {
        tokens_in,
        tokens_out,
        total_tokens,
        cost: first_nonzero(&COST),
        duration_ms: first_nonzero(&DURATION),
        error: is_error(event_type, top, data),
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

/// A number, or a string holding one; never negative or NaN.
fn number(value: &Value) -> Option<f64> {
    let n = match value {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    (n.is_finite() && n >= 0.0).then_some(n)
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
