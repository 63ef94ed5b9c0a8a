//! gati-load — the load generator and probe of `cargo xtask bench backend`.
//!
//! USAGE
//!     gati-load ingest URL EVENTS [THREADS] [BATCH]
//!         posts EVENTS synthetic events (runs of 100: agent_start, LLM calls with tokens and
//!         cost, tool calls, agent_end; 20 agents; spread over the last 30 days) in batches of
//!         BATCH (500) from THREADS (4) threads, each on one keep-alive connection
//!     gati-load probe URL ROUNDS PATH...
//!         GETs each PATH ROUNDS times (after one warm-up) on one keep-alive connection
//!     gati-load get URL PATH
//!         GETs PATH once and prints its body (exit status 1 unless it answered 200)
//!
//! Each prints one JSON object on stdout: `ingest` its events per second and its own CPU time
//! (so the report can show that the generator is not the bottleneck), `probe` each path's
//! latencies in milliseconds. Plain HTTP/1.1 over std's TcpStream: no client library, no async.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

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
        Some("probe") if args.len() >= 4 => probe(&args[1], arg(2, 20)?.max(1), &args[3..])?,
        Some("get") if args.len() == 3 => {
            let (status, body) = Connection::open(&args[1])?.request("GET", &args[2], None)?;
            anyhow::ensure!(status == 200, "GET {} answered {status}: {body}", args[2]);
            serde_json::from_str(&body)?
        }
        _ => anyhow::bail!(
            "usage: gati-load ingest URL EVENTS [THREADS] [BATCH] | probe URL ROUNDS PATH... | get URL PATH"
        ),
    };
    println!("{out}");
    Ok(())
}

/// Posts `events` events; returns `{events, seconds, events_per_second, generator_cpu_seconds}`.
fn ingest(url: &str, events: usize, threads: usize, batch: usize) -> anyhow::Result<Value> {
    let runs = events.div_ceil(EVENTS_PER_RUN);
    let runs_per_batch = (batch / EVENTS_PER_RUN).max(1);
    let batches = runs.div_ceil(runs_per_batch);
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
    let first = now - 30 * 86_400;
    // Runs start evenly over the 30 days, one agent after another.
    let spacing = (30 * 86_400 / runs.max(1) as i64).max(1);
    let next = Arc::new(AtomicUsize::new(0));
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let workers: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let (next, url) = (next.clone(), url.to_string());
            std::thread::spawn(move || -> anyhow::Result<usize> {
                let mut connection = Connection::open(&url)?;
                let mut sent = 0;
                loop {
                    let b = next.fetch_add(1, Ordering::Relaxed);
                    if b >= batches {
                        return Ok(sent);
                    }
                    let mut body = Vec::with_capacity(batch);
                    for run in b * runs_per_batch..((b + 1) * runs_per_batch).min(runs) {
                        let count = EVENTS_PER_RUN.min(events - run * EVENTS_PER_RUN);
                        body.extend(run_events(run, count, first + run as i64 * spacing));
                    }
                    sent += body.len();
                    let body = serde_json::to_vec(&json!({ "events": body }))?;
                    let (status, answer) = connection.request("POST", "/api/events", Some(&body))?;
                    anyhow::ensure!(status == 200, "POST /api/events answered {status}: {answer}");
                }
            })
        })
        .collect();
    let mut sent = 0;
    for worker in workers {
        sent += worker.join().map_err(|_| anyhow::anyhow!("a load thread panicked"))??;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(json!({
        "events": sent, "seconds": seconds, "events_per_second": sent as f64 / seconds,
        "generator_cpu_seconds": cpu_seconds() - cpu_before, "threads": threads, "batch": runs_per_batch * EVENTS_PER_RUN,
    }))
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
        } else if i % 4 == 0 {
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

    fn request(&mut self, method: &str, path: &str, body: Option<&[u8]>) -> anyhow::Result<(u16, String)> {
        let body = body.unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
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
        Ok((status, String::from_utf8_lossy(&answer).into_owned()))
    }
}

/// This process's user and system CPU time so far, from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}
