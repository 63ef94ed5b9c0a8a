//! Validation of an event batch: all of it is good, or none of it is stored.

use serde_json::{Map, Value};

/// Bodies above this are refused with 413 before they are parsed.
pub const MAX_BODY_BYTES: usize = 5 * 1024 * 1024;
/// Batches with more events are refused with 413: clients split them.
pub const MAX_EVENTS: usize = 1000;
const MAX_ID_LEN: usize = 256;

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event_id: String,
    pub run_id: String,
    pub agent_name: String,
    pub event_type: String,
    /// RFC 3339 in UTC with microseconds, so text order is time order.
    pub timestamp: String,
    pub parent_event_id: Option<String>,
    /// The event's `data` object, as JSON text.
    pub data: String,
}

/// Why a batch was refused; becomes the JSON error body.
#[derive(Debug, PartialEq)]
pub struct BatchError {
    pub status: u16,
    pub error: String,
    pub field: Option<String>,
    pub index: Option<usize>,
}

impl BatchError {
    fn new(status: u16, error: impl Into<String>) -> Self {
        BatchError { status, error: error.into(), field: None, index: None }
    }
    fn at(index: usize, field: &str, error: impl Into<String>) -> Self {
        BatchError { status: 422, error: error.into(), field: Some(field.into()), index: Some(index) }
    }
}

/// Accepts `{"events": [...]}` or a bare array of events.
pub fn parse_batch(body: &[u8]) -> Result<Vec<Event>, BatchError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(BatchError::new(413, format!("body is larger than {MAX_BODY_BYTES} bytes")));
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
        return Err(BatchError::new(
            413,
            format!("batch has {} events; at most {MAX_EVENTS} are accepted at once", events.len()),
        ));
    }
    events.iter().enumerate().map(|(i, e)| parse_event(i, e)).collect()
}

fn parse_event(index: usize, value: &Value) -> Result<Event, BatchError> {
    let Value::Object(object) = value else {
        return Err(BatchError::at(index, "event", "each event must be a JSON object"));
    };
    let text = |field: &str| required_text(index, object, field);
    let timestamp = text("timestamp")?;
    let data = match object.get("data") {
        Some(Value::Object(data)) => Value::Object(data.clone()).to_string(),
        Some(_) => return Err(BatchError::at(index, "data", "`data` must be a JSON object")),
        None => return Err(BatchError::at(index, "data", "`data` is missing")),
    };
    let parent_event_id = match object.get("parent_event_id") {
        None | Some(Value::Null) => None,
        Some(_) => Some(text("parent_event_id")?),
    };
    Ok(Event {
        event_id: text("event_id")?,
        run_id: text("run_id")?,
        agent_name: text("agent_name")?,
        event_type: text("event_type")?,
        timestamp: normalize_timestamp(&timestamp).ok_or_else(|| {
            BatchError::at(
                index,
                "timestamp",
                format!("`timestamp` {timestamp:?} is not an ISO 8601 date-time like 2026-01-31T12:00:00Z"),
            )
        })?,
        parent_event_id,
        data,
    })
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
        Err(_) => NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok()?.and_utc(),
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
            (serde_json::json!({"event_id": ""}), "event_id"),
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

    #[test]
    fn timestamps_are_normalized_to_utc_micros() {
        let cases = [
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
