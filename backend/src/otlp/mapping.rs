//! From OTLP spans to gati's runs and events: pure, table-driven, bounded.
//!
//! A trace is a run (run id: the trace id in hex; its name: the root span's), a span an event
//! (event id: trace id and span id, so unique across traces; parent from `parentSpanId`). What
//! kind of event a span is, and where its model, tokens, prompt... are, comes from the tables
//! below, each a list of attribute names, most specific first: the GenAI semantic conventions'
//! current names, their older ones, OpenInference's, OpenLLMetry's. backend/API.md documents
//! them. Every span gets a bounded amount of work: attributes and span events are capped, strings
//! truncated, `AnyValue` nesting bounded by [`MAX_VALUE_DEPTH`]; a span that cannot be taken is
//! rejected with a reason (counted in the answer's `partial_success`), never the whole request.

use std::collections::{HashMap, HashSet};

use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::{any_value::Value as Any, AnyValue, KeyValue},
    trace::v1::{span::Event as SpanEvent, status::StatusCode, Span},
};
use serde_json::{json, Map, Value};

use super::prices;
use crate::ingest::{Event, Metrics};

/// The deepest `AnyValue` nesting kept: an attribute sits two levels into the event's JSON
/// (`span_attributes.KEY`), and the whole must fit gati's bound on event data.
pub const MAX_VALUE_DEPTH: usize = gati_service::limits::DATA_DEPTH - 2;
/// Attributes of a span (or of one of its events) beyond this many are dropped, and counted.
pub const MAX_ATTRIBUTES: usize = 1024;
/// Span events beyond this many are dropped, and counted.
pub const MAX_SPAN_EVENTS: usize = 256;
/// Longer strings are cut (at a character boundary) and marked.
pub const MAX_STRING_BYTES: usize = 1024 * 1024;
/// Names and ids longer than this are cut: the native ingest's bound on ids.
const MAX_NAME_BYTES: usize = 256;

/// What a span is to gati.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Llm,
    Tool,
    /// The agent's own span: it names the run's agent, as the SDK's `agent_start` does.
    Agent,
    Chain,
    Retriever,
    Generic,
}

impl Kind {
    /// The event type the native SDK gives the same thing.
    pub fn event_type(self) -> &'static str {
        match self {
            Kind::Llm => "llm_call",
            Kind::Tool | Kind::Retriever => "tool_call",
            Kind::Agent => "agent_start",
            Kind::Chain => "step",
            Kind::Generic => "span",
        }
    }
}

/// Which attribute value makes a span which kind, first match wins: the GenAI conventions'
/// `gen_ai.operation.name`, then OpenInference's span kind, then OpenLLMetry's request type and
/// span kind (its decorators'). Values compare case-insensitively.
pub const KINDS: &[(&str, &str, Kind)] = &[
    ("gen_ai.operation.name", "chat", Kind::Llm),
    ("gen_ai.operation.name", "text_completion", Kind::Llm),
    ("gen_ai.operation.name", "generate_content", Kind::Llm),
    ("gen_ai.operation.name", "embeddings", Kind::Llm),
    ("gen_ai.operation.name", "execute_tool", Kind::Tool),
    ("gen_ai.operation.name", "invoke_agent", Kind::Agent),
    ("gen_ai.operation.name", "create_agent", Kind::Agent),
    ("gen_ai.operation.name", "invoke_workflow", Kind::Agent),
    ("openinference.span.kind", "LLM", Kind::Llm),
    ("openinference.span.kind", "EMBEDDING", Kind::Llm),
    ("openinference.span.kind", "TOOL", Kind::Tool),
    ("openinference.span.kind", "AGENT", Kind::Agent),
    ("openinference.span.kind", "CHAIN", Kind::Chain),
    ("openinference.span.kind", "RETRIEVER", Kind::Retriever),
    ("llm.request.type", "chat", Kind::Llm),
    ("llm.request.type", "completion", Kind::Llm),
    ("llm.request.type", "embedding", Kind::Llm),
    ("llm.request.type", "rerank", Kind::Llm),
    ("traceloop.span.kind", "workflow", Kind::Agent),
    ("traceloop.span.kind", "agent", Kind::Agent),
    ("traceloop.span.kind", "tool", Kind::Tool),
    ("traceloop.span.kind", "task", Kind::Chain),
];

/// Where each field is, most specific first (current GenAI names, older ones, OpenInference,
/// OpenLLMetry).
pub const MODEL: &[&str] = &["gen_ai.response.model", "gen_ai.request.model", "llm.model_name"];
pub const TOKENS_IN: &[&str] = &["gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt"];
pub const TOKENS_OUT: &[&str] =
    &["gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.token_count.completion"];
pub const TOKENS_TOTAL: &[&str] = &["gen_ai.usage.total_tokens", "llm.usage.total_tokens", "llm.token_count.total"];
pub const PROVIDER: &[&str] = &["gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system"];
pub const SESSION: &[&str] = &["gen_ai.conversation.id", "session.id", "traceloop.association.properties.session_id"];
pub const AGENT: &[&str] = &["gen_ai.agent.name", "agent.name"];
pub const TOOL_NAME: &[&str] = &["gen_ai.tool.name", "tool.name", "traceloop.entity.name"];
/// What went in: prompts of an LLM call, arguments of a tool call, an agent's input.
pub const INPUT: &[&str] =
    &["gen_ai.input.messages", "gen_ai.prompt", "gen_ai.tool.call.arguments", "input.value", "traceloop.entity.input"];
/// What came out: completions, a tool's result, an agent's output.
pub const OUTPUT: &[&str] = &[
    "gen_ai.output.messages",
    "gen_ai.completion",
    "gen_ai.tool.call.result",
    "output.value",
    "traceloop.entity.output",
];
pub const SYSTEM_PROMPT: &[&str] = &["gen_ai.system_instructions"];
/// Indexed messages (OpenLLMetry's older `gen_ai.prompt.0.content`): (prefix, role, content),
/// read when no attribute of INPUT / OUTPUT is set.
pub const INDEXED_INPUT: (&str, &str, &str) = ("gen_ai.prompt.", "role", "content");
pub const INDEXED_OUTPUT: (&str, &str, &str) = ("gen_ai.completion.", "role", "content");
/// Span events that carry content (older GenAI conventions): their attributes are read as the
/// span's own where the span lacks them, and `content` of the per-message events becomes a line
/// `role: content` of the input (or, for `gen_ai.choice`, the output).
pub const CONTENT_EVENTS: &[(&str, Option<&str>)] = &[
    ("gen_ai.content.prompt", None),
    ("gen_ai.content.completion", None),
    ("gen_ai.client.inference.operation.details", None),
    ("gen_ai.system.message", Some("system")),
    ("gen_ai.user.message", Some("user")),
    ("gen_ai.assistant.message", Some("assistant")),
    ("gen_ai.tool.message", Some("tool")),
    ("gen_ai.choice", Some("assistant")),
];

/// A span as one of gati's events: the event the store takes (the native ingest's), and what
/// the mapping knew besides. It reads as its event (`Deref`).
///
/// The event's `run_id` is the trace id, `run_name` the root span's name (on the root span's
/// event only), `timestamp` the span's start (RFC 3339 in UTC with microseconds), `data` like the
/// SDK's `data` of the same event type (`model`, `prompt`, `tokens_in`...), `attributes` the
/// span's attributes, its resource's, scope, ids, kind and session. A root span ends its run;
/// the event's `session_id` is the trace's.
#[derive(Debug, Clone, PartialEq)]
pub struct MappedEvent {
    pub event: Event,
    pub kind: Kind,
}

impl std::ops::Deref for MappedEvent {
    type Target = Event;
    fn deref(&self) -> &Event {
        &self.event
    }
}

/// A span that could not be taken, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub span: String,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct Mapped {
    pub events: Vec<MappedEvent>,
    pub rejected: Vec<Rejected>,
}

impl Mapped {
    /// `partial_success.error_message`: the distinct reasons, the first 8 of them.
    pub fn rejection_message(&self) -> String {
        let mut reasons: Vec<&str> = Vec::new();
        for r in &self.rejected {
            if !reasons.contains(&r.reason.as_str()) && reasons.len() < 8 {
                reasons.push(&r.reason);
            }
        }
        let first = self.rejected.first().map(|r| r.span.as_str()).unwrap_or("");
        format!("{} spans rejected (the first: {first}): {}", self.rejected.len(), reasons.join("; "))
    }
}

/// Every span of a request, mapped or rejected; a span sent twice in it is taken once.
pub fn map_request(request: &ExportTraceServiceRequest) -> Mapped {
    let mut mapped = Mapped::default();
    let mut seen = HashSet::new();
    // The agent a trace names on any of its spans (the first one met), else None.
    let mut trace_agents: HashMap<Vec<u8>, String> = HashMap::new();
    let mut trace_sessions: HashMap<Vec<u8>, String> = HashMap::new();
    for span in request.resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans) {
        let attrs = Attributes::of(&span.attributes);
        if let Some(agent) = attrs.text(AGENT) {
            trace_agents.entry(span.trace_id.clone()).or_insert_with(|| name(agent));
        }
        // Cut, it may be blank, which names no session (as a native event's blank one).
        if let Some(session) = attrs.text(SESSION).map(name).filter(|s| !s.trim().is_empty()) {
            trace_sessions.entry(span.trace_id.clone()).or_insert(session);
        }
    }
    for resource_spans in &request.resource_spans {
        let resource: &[KeyValue] = resource_spans.resource.as_ref().map(|r| &r.attributes[..]).unwrap_or(&[]);
        let service = Attributes::of(resource).text(&["service.name"]).map(name);
        for scope_spans in &resource_spans.scope_spans {
            let scope = scope_spans.scope.as_ref().map(|s| json!({"name": name(&s.name), "version": name(&s.version)}));
            for span in &scope_spans.spans {
                let context = Context {
                    agent: trace_agents.get(&span.trace_id).or(service.as_ref()).map(String::as_str),
                    session: trace_sessions.get(&span.trace_id).map(String::as_str),
                    resource,
                    scope: scope.as_ref(),
                };
                match map_span(span, &context) {
                    Ok(event) if seen.insert(event.event_id.clone()) => mapped.events.push(event),
                    Ok(_) => {}
                    Err(reason) => mapped.rejected.push(Rejected { span: span_label(span), reason }),
                }
            }
        }
    }
    mapped
}

/// What a span's event takes from the rest of the request.
pub struct Context<'a> {
    pub agent: Option<&'a str>,
    pub session: Option<&'a str>,
    pub resource: &'a [KeyValue],
    pub scope: Option<&'a Value>,
}

/// One span as an event, or why it cannot be one.
pub fn map_span(span: &Span, context: &Context) -> Result<MappedEvent, String> {
    let trace = id(&span.trace_id, 16, "traceId")?;
    let span_id = id(&span.span_id, 8, "spanId")?;
    let parent = match span.parent_span_id.len() {
        0 => None,
        _ => Some(id(&span.parent_span_id, 8, "parentSpanId")?),
    };
    let start = nanos(span.start_time_unix_nano, "startTimeUnixNano")?;
    let end = nanos(span.end_time_unix_nano, "endTimeUnixNano")?;
    if start == 0 {
        return Err("startTimeUnixNano is missing".into());
    }
    let duration = end.checked_sub(start).filter(|d| *d >= 0).ok_or("endTimeUnixNano is before startTimeUnixNano")?;
    let timestamp = time(start).ok_or("startTimeUnixNano is not a time")?;
    let end_time = time(end).ok_or("endTimeUnixNano is not a time")?;

    let attrs = Attributes::of(&span.attributes);
    let events = &span.events[..span.events.len().min(MAX_SPAN_EVENTS)];
    // The content events' attributes: read where the span's own lack a field.
    let content: Vec<&KeyValue> = events
        .iter()
        .filter(|e| CONTENT_EVENTS.iter().any(|(name, _)| *name == e.name))
        .flat_map(|e| e.attributes.iter().take(MAX_ATTRIBUTES))
        .collect();
    let from_events = Attributes::from_pairs(content.iter().map(|kv| (kv.key.as_str(), kv.value.as_ref())));
    let text = |keys: &[&str]| attrs.text(keys).or_else(|| from_events.text(keys)).map(|s| cut(s, MAX_STRING_BYTES));
    let kind = kind(&attrs);

    let model = attrs.text(MODEL).map(name);
    let tokens_in = attrs.count(TOKENS_IN);
    let tokens_out = attrs.count(TOKENS_OUT);
    let total_tokens = attrs.count(TOKENS_TOTAL).or(match (tokens_in, tokens_out) {
        (None, None) => None,
        (a, b) => a.unwrap_or(0).checked_add(b.unwrap_or(0)),
    });
    let cost = match (&model, tokens_in, tokens_out) {
        (Some(model), i, o) if i.is_some() || o.is_some() => {
            prices::cost(model, i.unwrap_or(0) as u64, o.unwrap_or(0) as u64)
        }
        _ => None,
    };
    // The native ingest's bound on one event's cost: tokens no call can use would pass it.
    if let Some(cost) = cost.filter(|c| *c > crate::ingest::MAX_COST) {
        return Err(format!(
            "the tokens' cost of {cost:e} dollars is past {:e}, the most one event may cost",
            crate::ingest::MAX_COST
        ));
    }
    let latency_ms = duration as f64 / 1e6;
    let (error, error_message) = error(span, events);

    let input = text(INPUT).or_else(|| attrs.indexed(INDEXED_INPUT)).or_else(|| message_lines(events, false));
    let output = text(OUTPUT).or_else(|| attrs.indexed(INDEXED_OUTPUT)).or_else(|| message_lines(events, true));

    let mut data = Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            data.insert(key.into(), value);
        }
    };
    match kind {
        Kind::Llm => {
            put("model", model.clone().map(Value::from));
            put("prompt", input.map(Value::from));
            put("completion", output.map(Value::from));
            put("system_prompt", text(SYSTEM_PROMPT).map(Value::from));
            put("tokens_in", tokens_in.map(Value::from));
            put("tokens_out", tokens_out.map(Value::from));
            put("cost", cost.map(Value::from));
            put("provider", attrs.text(PROVIDER).map(|p| Value::from(name(p))));
        }
        Kind::Tool | Kind::Retriever => {
            let tool = attrs.text(TOOL_NAME).map(name).unwrap_or_else(|| name(&span.name));
            put("tool_name", Some(tool.into()));
            put("input", input.map(Value::from));
            put("output", output.map(Value::from));
        }
        Kind::Agent | Kind::Chain | Kind::Generic => {
            put("input", input.map(Value::from));
            put("output", output.map(Value::from));
        }
    }
    put("name", Some(name(&span.name).into()));
    put("latency_ms", Some(latency_ms.into()));
    put("status", Some(if error { "error" } else { "completed" }.into()));
    put("error", error_message.map(Value::from));

    let mut attributes = Map::new();
    attributes.insert("trace_id".into(), trace.clone().into());
    attributes.insert("span_id".into(), span_id.clone().into());
    if let Some(parent) = &parent {
        attributes.insert("parent_span_id".into(), parent.clone().into());
    }
    attributes.insert("span_kind".into(), span.kind.into());
    // An attribute whose text is `data`'s prompt, completion... is stored there alone: messages
    // are most of a span, and twice in the event they cost twice to store and to index.
    let mut moved = vec![attrs.key(INPUT), attrs.key(OUTPUT)];
    if kind == Kind::Llm {
        moved.push(attrs.key(SYSTEM_PROMPT));
    }
    let moved: Vec<&str> = moved.into_iter().flatten().collect();
    attributes.insert("span_attributes".into(), Value::Object(to_json(&span.attributes, &moved)?));
    attributes.insert("resource_attributes".into(), Value::Object(to_json(context.resource, &[])?));
    if let Some(scope) = context.scope {
        attributes.insert("scope".into(), scope.clone());
    }
    let dropped = span.attributes.len().saturating_sub(MAX_ATTRIBUTES) as u64
        + u64::from(span.dropped_attributes_count)
        + span.events.len().saturating_sub(MAX_SPAN_EVENTS) as u64
        + u64::from(span.dropped_events_count);
    if dropped > 0 {
        attributes.insert("dropped".into(), dropped.into());
    }
    if let Some(session) = context.session {
        attributes.insert("session_id".into(), session.into());
    }

    let root = parent.is_none();
    let event = Event {
        event_id: format!("{trace}-{span_id}"),
        run_id: trace.clone(),
        run_name: root.then(|| name(&span.name)),
        agent_name: context.agent.unwrap_or("unknown_service").to_string(),
        event_type: kind.event_type().into(),
        timestamp,
        parent_event_id: parent.map(|p| format!("{trace}-{p}")),
        previous_event_id: None,
        data: Value::Object(data).to_string(),
        attributes: Value::Object(attributes).to_string(),
        metrics: Metrics { tokens_in, tokens_out, total_tokens, cost, duration_ms: Some(latency_ms), error },
        model,
        // A span is both started and ended when it is exported: only the root's end ends a run.
        starts_run: false,
        ends_run_at: root.then_some(end_time),
        session_id: context.session.map(str::to_string),
    };
    Ok(MappedEvent { event, kind })
}

/// Nanoseconds since the epoch as stored: RFC 3339 in UTC with microseconds.
fn time(nanos: i64) -> Option<String> {
    chrono::DateTime::from_timestamp(nanos.div_euclid(1_000_000_000), nanos.rem_euclid(1_000_000_000) as u32)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

/// The first row of [`KINDS`] whose attribute has its value.
pub fn kind(attrs: &Attributes) -> Kind {
    KINDS
        .iter()
        .find(|(key, value, _)| attrs.text(&[key]).is_some_and(|v| v.trim().eq_ignore_ascii_case(value)))
        .map_or(Kind::Generic, |(_, _, kind)| *kind)
}

/// Status ERROR, or an `exception` event: (failed, what failed).
fn error(span: &Span, events: &[SpanEvent]) -> (bool, Option<String>) {
    let exception = events.iter().find(|e| e.name == "exception").map(|e| {
        let attrs = Attributes::of(&e.attributes);
        let parts: Vec<&str> =
            [attrs.text(&["exception.type"]), attrs.text(&["exception.message"])].into_iter().flatten().collect();
        cut(&parts.join(": "), MAX_STRING_BYTES)
    });
    let status = span.status.as_ref().filter(|s| s.code == StatusCode::Error as i32);
    let message = status
        .map(|s| s.message.trim())
        .filter(|m| !m.is_empty())
        .map(|m| cut(m, MAX_STRING_BYTES))
        .or(exception.clone().filter(|e| !e.is_empty()));
    (status.is_some() || exception.is_some(), message)
}

/// `role: content` lines of the per-message content events; the choices' when `output`.
fn message_lines(events: &[SpanEvent], output: bool) -> Option<String> {
    let lines: Vec<String> = events
        .iter()
        .filter_map(|e| {
            let (name, role) = CONTENT_EVENTS.iter().find(|(name, _)| *name == e.name)?;
            let role = (*role)?;
            if (*name == "gen_ai.choice") != output {
                return None;
            }
            let attrs = Attributes::of(&e.attributes);
            let content = attrs.text(&["content", "gen_ai.event.content"]).or_else(|| attrs.text(&["message"]))?;
            Some(format!("{role}: {content}"))
        })
        .collect();
    (!lines.is_empty()).then(|| cut(&lines.join("\n"), MAX_STRING_BYTES))
}

/// A span's attributes by name (the first [`MAX_ATTRIBUTES`]; the first of a repeated key),
/// hashed: every lookup is constant work, however many attributes a span has.
pub struct Attributes<'a>(HashMap<&'a str, Option<&'a AnyValue>>);

impl<'a> Attributes<'a> {
    pub fn of(kvs: &'a [KeyValue]) -> Self {
        Self::from_pairs(kvs.iter().take(MAX_ATTRIBUTES).map(|kv| (kv.key.as_str(), kv.value.as_ref())))
    }

    fn from_pairs(pairs: impl Iterator<Item = (&'a str, Option<&'a AnyValue>)>) -> Self {
        let mut map = HashMap::new();
        for (key, value) in pairs {
            map.entry(key).or_insert(value);
        }
        Attributes(map)
    }

    fn get(&self, key: &str) -> Option<&'a Any> {
        self.0.get(key).copied().flatten().and_then(|v| v.value.as_ref())
    }

    /// The first of `keys` that holds a non-empty string.
    pub fn text(&self, keys: &[&str]) -> Option<&'a str> {
        self.key(keys).and_then(|k| match self.get(k)? {
            Any::StringValue(s) => Some(s.as_str()),
            _ => None,
        })
    }

    /// The first of `keys` that holds a non-empty string: the one [`Self::text`] reads.
    pub fn key<'k>(&self, keys: &[&'k str]) -> Option<&'k str> {
        keys.iter().copied().find(|k| matches!(self.get(k), Some(Any::StringValue(s)) if !s.trim().is_empty()))
    }

    /// The first of `keys` that holds a count: a non-negative integer (or a string or whole
    /// double holding one, as some exporters write them).
    pub fn count(&self, keys: &[&str]) -> Option<i64> {
        keys.iter()
            .find_map(|k| match self.get(k)? {
                Any::IntValue(n) => Some(*n),
                Any::StringValue(s) => s.trim().parse().ok(),
                Any::DoubleValue(d) if d.fract() == 0.0 && *d >= 0.0 && *d < 9.0e15 => Some(*d as i64),
                _ => None,
            })
            .filter(|n| *n >= 0)
    }

    /// `role: content` lines of indexed messages (`PREFIX0.role`, `PREFIX0.content`, ...), in
    /// index order; None when there are none.
    fn indexed(&self, (prefix, role, content): (&str, &str, &str)) -> Option<String> {
        let mut messages: Vec<(u32, Option<&str>, &str)> = Vec::new();
        for key in self.0.keys() {
            let Some(rest) = key.strip_prefix(prefix) else { continue };
            let Some((index, field)) = rest.split_once('.') else { continue };
            if field != content {
                continue;
            }
            let Ok(index) = index.parse::<u32>() else { continue };
            let Some(text) = self.text(&[key]) else { continue };
            let role = self.text(&[&format!("{prefix}{index}.{role}")]);
            messages.push((index, role, text));
        }
        messages.sort_by_key(|m| m.0);
        let lines: Vec<String> = messages
            .iter()
            .map(|(_, role, text)| match role {
                Some(role) => format!("{role}: {text}"),
                None => text.to_string(),
            })
            .collect();
        (!lines.is_empty()).then(|| cut(&lines.join("\n"), MAX_STRING_BYTES))
    }
}

/// Attributes as a JSON object (key to value; the first of a repeated key), at most
/// [`MAX_ATTRIBUTES`] of them, but for the keys `left_out`; an error for a value nested deeper
/// than [`MAX_VALUE_DEPTH`].
pub fn to_json(kvs: &[KeyValue], left_out: &[&str]) -> Result<Map<String, Value>, String> {
    let mut object = Map::new();
    let mut seen = HashSet::new();
    for kv in kvs.iter().take(MAX_ATTRIBUTES) {
        // The first of a repeated key is the one read (and maybe left out), never a later one.
        if !seen.insert(kv.key.as_str()) || left_out.contains(&kv.key.as_str()) {
            continue;
        }
        let value = any_to_json(kv.value.as_ref(), 1)
            .ok_or_else(|| format!("attribute {:?} nests deeper than {MAX_VALUE_DEPTH} levels", cut(&kv.key, 64)))?;
        object.insert(name(&kv.key), value);
    }
    Ok(object)
}

/// An `AnyValue` as JSON; None when deeper than [`MAX_VALUE_DEPTH`]. Recursive, but never past
/// that depth (the decoders bound the tree's depth too: prost's recursion limit, serde_json's).
fn any_to_json(value: Option<&AnyValue>, depth: usize) -> Option<Value> {
    if depth > MAX_VALUE_DEPTH {
        return None;
    }
    Some(match value.and_then(|v| v.value.as_ref()) {
        None => Value::Null,
        Some(Any::StringValue(s)) => cut(s, MAX_STRING_BYTES).into(),
        Some(Any::BoolValue(b)) => (*b).into(),
        Some(Any::IntValue(i)) => (*i).into(),
        // NaN and infinities have no JSON spelling.
        Some(Any::DoubleValue(d)) => serde_json::Number::from_f64(*d).map_or(Value::Null, Value::Number),
        Some(Any::BytesValue(b)) => format!("<{} bytes>", b.len()).into(),
        // An index into a profile's string table: no such table in a trace.
        Some(Any::StringValueStrindex(i)) => format!("<string {i}>").into(),
        Some(Any::ArrayValue(a)) => Value::Array(
            a.values.iter().take(MAX_ATTRIBUTES).map(|v| any_to_json(Some(v), depth + 1)).collect::<Option<_>>()?,
        ),
        Some(Any::KvlistValue(kv)) => {
            let mut object = Map::new();
            for kv in kv.values.iter().take(MAX_ATTRIBUTES) {
                let value = any_to_json(kv.value.as_ref(), depth + 1)?;
                object.entry(name(&kv.key)).or_insert(value);
            }
            Value::Object(object)
        }
    })
}

/// An id in lowercase hex; an error unless it has `len` bytes and is not all zero (OTLP's
/// invalid id).
fn id(bytes: &[u8], len: usize, field: &str) -> Result<String, String> {
    if bytes.len() != len || bytes.iter().all(|b| *b == 0) {
        return Err(format!("{field} must be {len} bytes, not all zero (got {} bytes)", bytes.len()));
    }
    Ok(hex(bytes))
}

/// Bytes in lowercase hex: a character at a time (every span has two or three ids).
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes.iter().flat_map(|b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 15)]]).map(char::from).collect()
}

/// Nanoseconds since the epoch as i64: a time past 2262 cannot be a timestamp here.
fn nanos(value: u64, field: &str) -> Result<i64, String> {
    i64::try_from(value).map_err(|_| format!("{field} {value} is past the year 2262"))
}

/// `s`, cut to at most `max` bytes at a character boundary and marked when cut.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[cut: {} bytes]", &s[..end], s.len())
}

/// A name or id, cut to the native ingest's bound on them (at a character boundary).
fn name(s: &str) -> String {
    let mut end = s.len().min(MAX_NAME_BYTES);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// How a rejected span is named in the answer: its ids as sent, if readable.
fn span_label(span: &Span) -> String {
    let hex = |b: &[u8]| hex(&b[..b.len().min(16)]);
    format!("span {:?} (traceId {}, spanId {})", cut(&span.name, 64), hex(&span.trace_id), hex(&span.span_id))
}

#[cfg(test)]
mod tests;
