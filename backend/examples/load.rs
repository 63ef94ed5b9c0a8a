//! gati-load — the load generator and probe of `cargo xtask bench backend`.
//!
//! USAGE
//!     gati-load ingest URL EVENTS [THREADS] [BATCH]
//!         posts EVENTS synthetic events (runs of 100: agent_start, LLM calls with tokens and
//!         cost, tool calls, agent_end; 20 agents; spread over the last 30 days) in batches of
//!         BATCH (500) from THREADS (4) threads, each on one keep-alive connection
//!     gati-load otlp URL SPANS [THREADS] [BATCH]
//!         posts SPANS GenAI spans to URL/v1/traces as an OpenTelemetry exporter does: traces of
//!         100 (an `invoke_agent` root, `chat` spans with model and tokens, `execute_tool` spans),
//!         the same agents and days as `ingest`, protobuf requests of BATCH (512) spans from
//!         THREADS (4) threads, each on one keep-alive connection
//!     gati-load probe URL ROUNDS PATH...
//!         GETs each PATH ROUNDS times (after one warm-up) on one keep-alive connection
//!     gati-load get URL PATH
//!         GETs PATH once and prints its body (exit status 1 unless it answered 200)
//!     gati-load post URL PATH JSON
//!         POSTs the JSON body to PATH once and prints the answer (a GraphQL query, say)
//!
//! Each prints one JSON object on stdout: `ingest` and `otlp` what they sent per second and
//! their own CPU time (so the report can show that the generator is not the bottleneck), `probe`
//! each path's latencies in milliseconds. Plain HTTP/1.1 over std's TcpStream: no client
//! library, no async; protobuf through the official OTLP types, never by hand.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    ops::Range,
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use opentelemetry_proto::tonic::{
    collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse},
    common::v1::{any_value::Value as Any, AnyValue, ArrayValue, InstrumentationScope, KeyValue},
    resource::v1::Resource,
    trace::v1::{span, span::SpanKind, status::StatusCode, ResourceSpans, ScopeSpans, Span, Status},
};
use prost::Message;
use serde_json::{json, Value};

pub const AGENTS: usize = 20;
pub const EVENTS_PER_RUN: usize = 100;
const MODELS: [(&str, f64, f64); 3] =
    [("gpt-4o-mini", 0.15e-6, 0.6e-6), ("gpt-4o", 2.5e-6, 10e-6), ("claude-3-5-haiku", 0.8e-6, 4e-6)];
const WORDS: [&str; 48] = [
    "order",
    "refund",
    "shipping",
    "invoice",
    "customer",
    "account",
    "password",
    "delivery",
    "weather",
    "flight",
    "hotel",
    "booking",
    "schedule",
    "meeting",
    "summary",
    "report",
    "analysis",
    "forecast",
    "budget",
    "contract",
    "policy",
    "warranty",
    "return",
    "address",
    "payment",
    "card",
    "balance",
    "transfer",
    "loan",
    "interest",
    "recipe",
    "ingredient",
    "restaurant",
    "table",
    "review",
    "rating",
    "product",
    "catalog",
    "stock",
    "price",
    "discount",
    "coupon",
    "ticket",
    "support",
    "escalate",
    "priority",
    "status",
    "tracking",
];

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: usize| args.get(i).map_or(Ok(default), |v| v.parse::<usize>());
    let out = match args.first().map(String::as_str) {
        Some("ingest") if args.len() >= 3 => ingest(&args[1], arg(2, 0)?, arg(3, 4)?, arg(4, 500)?)?,
        Some("otlp") if args.len() >= 3 => otlp(&args[1], arg(2, 0)?, arg(3, 4)?, arg(4, 512)?)?,
        Some("probe") if args.len() >= 4 => probe(&args[1], arg(2, 20)?.max(1), &args[3..])?,
        Some("get") if args.len() == 3 => {
            let (status, body) = Connection::open(&args[1])?.request("GET", &args[2], None)?;
            anyhow::ensure!(status == 200, "GET {} answered {status}: {}", args[2], String::from_utf8_lossy(&body));
            serde_json::from_slice(&body)?
        }
        Some("post") if args.len() == 4 => {
            let body = Some(("application/json", args[3].as_bytes()));
            let (status, answer) = Connection::open(&args[1])?.request("POST", &args[2], body)?;
            let answer = String::from_utf8_lossy(&answer);
            anyhow::ensure!(status == 200, "POST {} answered {status}: {answer}", args[2]);
            serde_json::from_str(&answer)?
        }
        _ => anyhow::bail!(
            "usage: gati-load ingest URL EVENTS [THREADS] [BATCH] | otlp URL SPANS [THREADS] [BATCH] \
             | probe URL ROUNDS PATH... | get URL PATH | post URL PATH JSON"
        ),
    };
    println!("{out}");
    Ok(())
}

/// Where the runs (or traces) of a load start: evenly over the last 30 days, one agent after
/// another.
struct Spread {
    first: i64,
    spacing: i64,
}

impl Spread {
    fn new(runs: usize) -> anyhow::Result<Spread> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
        Ok(Spread { first: now - 30 * 86_400, spacing: (30 * 86_400 / runs.max(1) as i64).max(1) })
    }

    fn start(&self, run: usize) -> i64 {
        self.first + run as i64 * self.spacing
    }
}

/// Posts `events` events; returns `{sent, seconds, per_second, generator_cpu_seconds, threads, batch}`.
fn ingest(url: &str, events: usize, threads: usize, batch: usize) -> anyhow::Result<Value> {
    let runs = events.div_ceil(EVENTS_PER_RUN);
    let runs_per_batch = (batch / EVENTS_PER_RUN).max(1);
    let spread = Spread::new(runs)?;
    let body = |b: usize| -> anyhow::Result<(Vec<u8>, usize)> {
        let mut body = Vec::with_capacity(batch);
        for run in b * runs_per_batch..((b + 1) * runs_per_batch).min(runs) {
            let count = EVENTS_PER_RUN.min(events - run * EVENTS_PER_RUN);
            body.extend(run_events(run, count, spread.start(run)));
        }
        Ok((serde_json::to_vec(&json!({ "events": body }))?, body.len()))
    };
    let check = |status: u16, answer: &[u8]| {
        anyhow::ensure!(status == 200, "POST /api/events answered {status}: {}", String::from_utf8_lossy(answer));
        Ok(())
    };
    let post = Post { url, path: "/api/events", content_type: "application/json", threads };
    post.batches(runs.div_ceil(runs_per_batch), runs_per_batch * EVENTS_PER_RUN, body, check)
}

/// Posts `spans` spans to OTLP/HTTP's `/v1/traces` as an OpenTelemetry exporter does: protobuf
/// `ExportTraceServiceRequest`s of `batch` spans (the batch span processor's 512), a trace's
/// children before its root (a root ends last), traces cut wherever a batch ends. Returns what
/// [`ingest`] does, `sent` counting spans.
fn otlp(url: &str, spans: usize, threads: usize, batch: usize) -> anyhow::Result<Value> {
    let batch = batch.max(1);
    let traces = spans.div_ceil(EVENTS_PER_RUN);
    let spread = Spread::new(traces)?;
    let body = |b: usize| -> anyhow::Result<(Vec<u8>, usize)> {
        let (first, last) = (b * batch, ((b + 1) * batch).min(spans));
        Ok((otlp_request(first..last, spans, &spread).encode_to_vec(), last - first))
    };
    let check = |status: u16, answer: &[u8]| {
        anyhow::ensure!(status == 200, "POST /v1/traces answered {status}: {}", String::from_utf8_lossy(answer));
        // An empty body is a full success; a partial one names the spans refused.
        let answer = ExportTraceServiceResponse::decode(answer)?;
        if let Some(partial) = answer.partial_success.filter(|p| p.rejected_spans > 0) {
            anyhow::bail!("POST /v1/traces rejected {} spans: {}", partial.rejected_spans, partial.error_message);
        }
        Ok(())
    };
    let post = Post { url, path: "/v1/traces", content_type: "application/x-protobuf", threads };
    post.batches(spans.div_ceil(batch), batch, body, check)
}

/// Batches posted to one path from several threads, each on one keep-alive connection.
struct Post<'a> {
    url: &'a str,
    path: &'a str,
    content_type: &'a str,
    threads: usize,
}

impl Post<'_> {
    /// Posts batches `0..batches` (`body(b)`: its bytes and how many items it holds), each
    /// answer checked by `check`; returns the JSON figures [`ingest`] documents.
    fn batches<B, C>(&self, batches: usize, batch: usize, body: B, check: C) -> anyhow::Result<Value>
    where
        B: Fn(usize) -> anyhow::Result<(Vec<u8>, usize)> + Sync,
        C: Fn(u16, &[u8]) -> anyhow::Result<()> + Sync,
    {
        let next = AtomicUsize::new(0);
        let cpu_before = cpu_seconds();
        let started = Instant::now();
        let sent = std::thread::scope(|scope| -> anyhow::Result<usize> {
            let workers: Vec<_> = (0..self.threads.max(1))
                .map(|_| {
                    scope.spawn(|| -> anyhow::Result<usize> {
                        let mut connection = Connection::open(self.url)?;
                        let mut sent = 0;
                        loop {
                            let b = next.fetch_add(1, Ordering::Relaxed);
                            if b >= batches {
                                return Ok(sent);
                            }
                            let (bytes, items) = body(b)?;
                            let (status, answer) =
                                connection.request("POST", self.path, Some((self.content_type, &bytes)))?;
                            check(status, &answer)?;
                            sent += items;
                        }
                    })
                })
                .collect();
            let mut sent = 0;
            for worker in workers {
                sent += worker.join().map_err(|_| anyhow::anyhow!("a load thread panicked"))??;
            }
            Ok(sent)
        })?;
        let seconds = started.elapsed().as_secs_f64();
        Ok(json!({
            "sent": sent, "seconds": seconds, "per_second": sent as f64 / seconds,
            "generator_cpu_seconds": cpu_seconds() - cpu_before, "threads": self.threads, "batch": batch,
        }))
    }
}

/// The events of run number `run`: agent_start, LLM calls (three of four) and tool calls, agent_end.
fn run_events(run: usize, count: usize, start: i64) -> Vec<Value> {
    let agent = format!("agent-{:02}", run % AGENTS);
    let run_id = format!("run-{run:06}");
    let run_name = format!("run {}", run / AGENTS + 1);
    let mut random = Random(run as u64 * 7919 + 1);
    let root = format!("{run_id}-0");
    let mut events = Vec::with_capacity(count);
    for i in 0..count {
        let ts = timestamp(start, i);
        let event_id = format!("{run_id}-{i}");
        let (event_type, data) = if i == 0 {
            ("agent_start", json!({ "name": agent, "input": { "query": sentence(&mut random, 12) } }))
        } else if i == count - 1 {
            (
                "agent_end",
                json!({ "name": agent, "output": sentence(&mut random, 20), "total_duration_ms": (count * 1000) as f64 }),
            )
        } else if i.is_multiple_of(4) {
            let mut data = json!({
                "tool_name": "lookup", "input": { "id": format!("order-{run}-{i}") },
                "output": { "status": WORDS[random.below(WORDS.len())] }, "latency_ms": 20.0 + random.below(200) as f64,
            });
            if random.below(100) == 0 {
                data["error"] =
                    json!({ "type": "RateLimitError", "message": "rate limit exceeded for region eu-west-7" });
            }
            ("tool_call", data)
        } else {
            let (model, price_in, price_out) = MODELS[random.below(MODELS.len())];
            let (tokens_in, tokens_out) = (200 + random.below(1800), 50 + random.below(600));
            (
                "llm_call",
                json!({
                    "model": model, "prompt": sentence(&mut random, 24), "completion": sentence(&mut random, 32),
                    "tokens_in": tokens_in, "tokens_out": tokens_out,
                    "cost": tokens_in as f64 * price_in + tokens_out as f64 * price_out,
                    "latency_ms": 300.0 + random.below(2500) as f64,
                }),
            )
        };
        let parent = if i == 0 { Value::Null } else { json!(root) };
        events.push(json!({
            "event_id": event_id, "run_id": run_id, "run_name": run_name, "agent_name": agent,
            "event_type": event_type, "timestamp": ts, "parent_event_id": parent, "data": data,
        }));
    }
    events
}

/// The spans `range` of a load of `total` spans in traces of [`EVENTS_PER_RUN`]: each piece of a
/// trace in a `ResourceSpans` of its own, its agent's service, as each agent's process would send.
fn otlp_request(range: Range<usize>, total: usize, spread: &Spread) -> ExportTraceServiceRequest {
    let mut resource_spans: Vec<ResourceSpans> = Vec::new();
    for g in range {
        let (trace, position) = (g / EVENTS_PER_RUN, g % EVENTS_PER_RUN);
        let count = EVENTS_PER_RUN.min(total - trace * EVENTS_PER_RUN);
        // Children first, in the order they end; the root, which ends last, last.
        let span = trace_span(trace, (position + 1) % count, count, spread.start(trace));
        match resource_spans.last_mut() {
            Some(last) if last.scope_spans[0].spans[0].trace_id == span.trace_id => {
                last.scope_spans[0].spans.push(span)
            }
            _ => resource_spans.push(agent_resource(trace, span)),
        }
    }
    ExportTraceServiceRequest { resource_spans }
}

/// The `ResourceSpans` of trace `trace`'s agent, holding `span`, as the Python SDK describes itself.
fn agent_resource(trace: usize, span: Span) -> ResourceSpans {
    let resource = Resource {
        attributes: vec![
            text("service.name", &format!("agent-{:02}", trace % AGENTS)),
            text("telemetry.sdk.language", "python"),
            text("telemetry.sdk.name", "opentelemetry"),
            text("telemetry.sdk.version", "1.39.1"),
        ],
        ..Default::default()
    };
    let scope = InstrumentationScope { name: "gati-load".into(), version: "1".into(), ..Default::default() };
    ResourceSpans {
        resource: Some(resource),
        scope_spans: vec![ScopeSpans { scope: Some(scope), spans: vec![span], ..Default::default() }],
        ..Default::default()
    }
}

/// Span `i` of trace `trace` (of `count` spans, started at `start`), with the attributes of the
/// GenAI semantic conventions the instrumentations emit: the root an `invoke_agent` span, then
/// `chat` LLM calls (three of four, with model and tokens) and `execute_tool` calls (1% failing).
fn trace_span(trace: usize, i: usize, count: usize, start: i64) -> Span {
    let agent = format!("agent-{:02}", trace % AGENTS);
    let mut random = Random(trace as u64 * 7919 + i as u64 * 104_729 + 1);
    let mut trace_id = *b"gatiload\0\0\0\0\0\0\0\0";
    trace_id[8..].copy_from_slice(&(trace as u64 + 1).to_be_bytes());
    // Unique across traces too, as random ids are: Phoenix keys spans by span id alone.
    let span_id = |i: usize| ((trace as u64 + 1) << 16 | (i as u64 + 1)).to_be_bytes().to_vec();
    let begin = (start + i as i64) * 1_000_000_000;
    let ms = |ms: usize| begin + ms as i64 * 1_000_000;
    let mut span = Span {
        trace_id: trace_id.to_vec(),
        span_id: span_id(i),
        parent_span_id: if i == 0 { vec![] } else { span_id(0) },
        kind: SpanKind::Internal as i32,
        start_time_unix_nano: begin as u64,
        ..Default::default()
    };
    if i == 0 {
        span.name = format!("invoke_agent {agent}");
        span.end_time_unix_nano = ms(count * 1000) as u64;
        span.attributes = vec![
            text("gen_ai.operation.name", "invoke_agent"),
            text("gen_ai.agent.name", &agent),
            text("gen_ai.provider.name", "openai"),
            text("gen_ai.input.messages", &messages("user", &sentence(&mut random, 12), None)),
            text("gen_ai.output.messages", &messages("assistant", &sentence(&mut random, 20), Some("stop"))),
        ];
    } else if i.is_multiple_of(4) {
        span.name = "execute_tool lookup".into();
        span.end_time_unix_nano = ms(20 + random.below(200)) as u64;
        span.attributes = vec![
            text("gen_ai.operation.name", "execute_tool"),
            text("gen_ai.tool.name", "lookup"),
            text("gen_ai.tool.type", "function"),
            text("gen_ai.tool.call.id", &format!("call_{trace}_{i}")),
            text("gen_ai.tool.call.arguments", &json!({ "id": format!("order-{trace}-{i}") }).to_string()),
            text("gen_ai.tool.call.result", &json!({ "status": WORDS[random.below(WORDS.len())] }).to_string()),
        ];
        if random.below(100) == 0 {
            let message = "rate limit exceeded for region eu-west-7";
            span.status = Some(Status { code: StatusCode::Error as i32, message: message.into() });
            span.events = vec![span::Event {
                time_unix_nano: span.end_time_unix_nano,
                name: "exception".into(),
                attributes: vec![text("exception.type", "RateLimitError"), text("exception.message", message)],
                ..Default::default()
            }];
        }
    } else {
        let (model, _, _) = MODELS[random.below(MODELS.len())];
        let (tokens_in, tokens_out) = (200 + random.below(1800), 50 + random.below(600));
        let provider = if model.starts_with("claude") { "anthropic" } else { "openai" };
        span.name = format!("chat {model}");
        span.kind = SpanKind::Client as i32;
        span.end_time_unix_nano = ms(300 + random.below(2500)) as u64;
        span.attributes = vec![
            text("gen_ai.operation.name", "chat"),
            text("gen_ai.provider.name", provider),
            text("gen_ai.request.model", model),
            text("gen_ai.response.model", model),
            text("gen_ai.response.id", &format!("chatcmpl-{trace}-{i}")),
            KeyValue {
                key: "gen_ai.response.finish_reasons".into(),
                value: Some(AnyValue {
                    value: Some(Any::ArrayValue(ArrayValue {
                        values: vec![AnyValue { value: Some(Any::StringValue("stop".into())) }],
                    })),
                }),
                ..Default::default()
            },
            int("gen_ai.usage.input_tokens", tokens_in),
            int("gen_ai.usage.output_tokens", tokens_out),
            text("server.address", "api.openai.com"),
            int("server.port", 443),
            text("gen_ai.input.messages", &messages("user", &sentence(&mut random, 24), None)),
            text("gen_ai.output.messages", &messages("assistant", &sentence(&mut random, 32), Some("stop"))),
        ];
    }
    span
}

/// One message as `gen_ai.input.messages` / `gen_ai.output.messages` hold it (a JSON string).
fn messages(role: &str, content: &str, finish_reason: Option<&str>) -> String {
    let mut message = json!({ "role": role, "parts": [{ "type": "text", "content": content }] });
    if let Some(reason) = finish_reason {
        message["finish_reason"] = reason.into();
    }
    json!([message]).to_string()
}

fn text(key: &str, value: &str) -> KeyValue {
    let value = Some(AnyValue { value: Some(Any::StringValue(value.into())) });
    KeyValue { key: key.into(), value, ..Default::default() }
}

fn int(key: &str, value: usize) -> KeyValue {
    let value = Some(AnyValue { value: Some(Any::IntValue(value as i64)) });
    KeyValue { key: key.into(), value, ..Default::default() }
}

fn timestamp(start: i64, offset_seconds: usize) -> String {
    let t = start + offset_seconds as i64;
    let (days, seconds) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", seconds / 3600, seconds / 60 % 60, seconds % 60)
}

/// Howard Hinnant's days-to-civil: the UTC date `days` after 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn sentence(random: &mut Random, words: usize) -> String {
    (0..words).map(|_| WORDS[random.below(WORDS.len())]).collect::<Vec<_>>().join(" ")
}

/// xorshift64: the same events on every run, without a dependency.
struct Random(u64);

impl Random {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// GETs each path `rounds` times; returns `{path: {p50_ms, p95_ms, max_ms, bytes, status}}`.
fn probe(url: &str, rounds: usize, paths: &[String]) -> anyhow::Result<Value> {
    let mut connection = Connection::open(url)?;
    let mut out = serde_json::Map::new();
    for path in paths {
        let (status, body) = connection.request("GET", path, None)?;
        let mut times = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let started = Instant::now();
            connection.request("GET", path, None)?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        let at = |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1];
        out.insert(
            path.clone(),
            json!({ "status": status, "bytes": body.len(), "p50_ms": at(0.5), "p95_ms": at(0.95), "max_ms": at(1.0) }),
        );
    }
    Ok(Value::Object(out))
}

/// One keep-alive HTTP/1.1 connection.
struct Connection {
    host: String,
    reader: BufReader<TcpStream>,
}

impl Connection {
    fn open(url: &str) -> anyhow::Result<Connection> {
        let host = url.strip_prefix("http://").unwrap_or(url).trim_end_matches('/').to_string();
        let stream = TcpStream::connect(&host)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(300)))?;
        Ok(Connection { host, reader: BufReader::new(stream) })
    }

    /// One request, `body` with its content type; the answer's status and bytes.
    fn request(&mut self, method: &str, path: &str, body: Option<(&str, &[u8])>) -> anyhow::Result<(u16, Vec<u8>)> {
        let (content_type, body) = body.unwrap_or(("application/json", &[]));
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let stream = self.reader.get_mut();
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("{method} {path} on {}: not an HTTP answer: {line:?}", self.host))?;
        let mut length = 0;
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            if line.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse()?;
                }
            }
        }
        let mut answer = vec![0; length];
        self.reader.read_exact(&mut answer)?;
        Ok((status, answer))
    }
}

/// This process's user and system CPU time so far, from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}
