//! `cargo xtask bench backend [--events N] [--otlp [--against phoenix]]`: the backend on a
//! database of a user's size.
//!
//! Builds the static backend (as the images have it) and its load generator
//! (`backend/examples/load.rs`), starts the backend on an empty database in
//! `target/bench-backend/native`, and loads N events (default 1,000,000: 20 agents, runs of 100
//! events, LLM calls with tokens and cost, over the last 30 days) from 4 threads posting batches
//! of 500 on keep-alive connections. Then it prints ingest events/s (and the generator's own CPU
//! time, to show it is not the bottleneck), how long the search index took to catch up, the p50
//! and p95 of every route a dashboard or assistant calls, the database's size and the backend's
//! memory (RSS).
//!
//! With `--otlp`, the same number of spans then goes through OpenTelemetry's front door into a
//! second backend on a fresh database (`target/bench-backend/otlp`): GenAI spans as the
//! instrumentations send them (traces of 100: an `invoke_agent` root, `chat` spans with model
//! and tokens, `execute_tool` spans; the same agents and days), protobuf batches of 512 (the
//! batch span processor's) to `/v1/traces` from 4 threads. It prints spans/s beside events/s,
//! the backend's CPU per span beside its CPU per native event (`/proc/PID/stat`), their ratio,
//! each database's size and memory, and each figure beside its goal: at least 20,000 spans/s,
//! CPU per span at most 2× the native event's; and the latency route's p95
//! (`/api/metrics/latency?by=model`) on each database, at most 50 ms (a backend without the
//! route is said to be so). `--against phoenix` (implies `--otlp`) sends the
//! same spans to Arize Phoenix too ([`super::phoenix`]) and prints the two side by side.
//! Figures only: nothing passes or fails.

use std::{
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use serde_json::Value;
use xshell::{cmd, Shell};

use super::phoenix;
use crate::{flags, model::platform::Platform, ops::cargo};

pub const THREADS: usize = 4;
const BATCH: usize = 500;
/// What OpenTelemetry's batch span processor sends at most in one export.
pub const OTLP_BATCH: usize = 512;
const ROUNDS: usize = 50;
/// The goals of issue 28 for OTLP ingest on this machine.
const GOAL_SPANS_PER_SECOND: f64 = 20_000.0;
const GOAL_CPU_RATIO: f64 = 2.0;
const GOAL_LATENCY_P95_MS: f64 = 50.0;
/// The latency percentiles a dashboard's chart asks for, per model over all time.
const LATENCY: &str = "/api/metrics/latency?by=model";

pub fn run(sh: &Shell, events: usize, otlp: bool, against: Option<flags::Rival>) -> anyhow::Result<()> {
    if events < 2_000 {
        bail!("--events {events} is too few to measure; give at least 2000 (20 agents with a run each)");
    }
    let (backend, load) = build(sh)?;
    let dir = crate::target_dir(sh).join("bench-backend");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing the last bench's {}", dir.display()))?;
    }
    let server = Backend::start(&backend, &dir.join("native"))?;
    let native = server.load(sh, &load, Mode::Native, events)?;
    let routes = routes(events);
    let paths: Vec<&str> = routes.iter().map(|(_, path)| path.as_str()).collect();
    eprintln!("timing {} routes, {ROUNDS} requests each", paths.len());
    let (url, rounds) = (&server.url, ROUNDS.to_string());
    let probe = json(cmd!(sh, "{load} probe {url} {rounds} {paths...}"))?;
    let rss_probe = rss_kib(server.pid(), "VmRSS")?;
    drop(server);
    report(events, &native, rss_probe);
    report_routes(&routes, &probe)?;
    if !otlp && against.is_none() {
        return Ok(());
    }

    let server = Backend::start(&backend, &dir.join("otlp"))?;
    let spans = server.load(sh, &load, Mode::Otlp, events)?;
    let url = &server.url;
    let latency = json(cmd!(sh, "{load} probe {url} {rounds} {LATENCY}"))?;
    drop(server);
    report_otlp(events, &spans, &native);
    report_latency(&latency[LATENCY], &probe[LATENCY]);
    match against {
        Some(flags::Rival::Phoenix) => {
            let rival = phoenix::run(sh, &load, events)?;
            println!("{}", side_by_side(events, &spans, &rival));
        }
        None => {}
    }
    Ok(())
}

/// The backend and its load generator, static, for the host.
fn build(sh: &Shell) -> anyhow::Result<(std::path::PathBuf, std::path::PathBuf)> {
    // The release's toolchain and flags, for the host: the backend users run.
    let config = crate::model::config::load_default(sh)?;
    let toolchain = format!("+{}", crate::ops::toolchain::find(sh, &config.rust, &config.platforms)?.name);
    let host = Platform::host().context("the benchmark runs on linux/amd64 or linux/arm64")?;
    let target = host.rust_target;
    cmd!(sh, "cargo {toolchain} build --release --target {target} --package gati-backend --bin gati-backend --example gati-load")
        .env(host.cargo_env("RUSTFLAGS"), cargo::rustflags())
        .run()
        .context("building the backend and its load generator")?;
    let bin_dir = crate::target_dir(sh).join(target).join("release");
    Ok((bin_dir.join("gati-backend"), bin_dir.join("examples").join("gati-load")))
}

/// How a load reaches the backend: the SDK's batches of events, or an OTLP exporter's of spans.
#[derive(Clone, Copy)]
enum Mode {
    Native,
    Otlp,
}

impl Mode {
    /// The `gati-load` subcommand and its batch size.
    fn load(self) -> (&'static str, usize) {
        match self {
            Mode::Native => ("ingest", BATCH),
            Mode::Otlp => ("otlp", OTLP_BATCH),
        }
    }
}

/// What loading the events (or spans) cost the backend.
pub struct Loaded {
    /// `gati-load`'s figures: `sent`, `seconds`, `per_second`, `generator_cpu_seconds`.
    pub sent: Value,
    pub rss: f64,
    pub peak_rss: f64,
    pub cpu_ingest: f64,
    pub cpu_indexed: f64,
    pub catch_up: Duration,
    pub bytes: u64,
}

impl Loaded {
    fn figure(&self, key: &str) -> f64 {
        self.sent[key].as_f64().unwrap_or(0.0)
    }
}

/// A backend on a database of its own in `dir`, stopped (SIGTERM, then waited for) when the
/// bench ends, however it ends.
struct Backend {
    child: Child,
    url: String,
    dir: PathBuf,
}

impl Backend {
    fn start(binary: &Path, dir: &Path) -> anyhow::Result<Backend> {
        std::fs::create_dir_all(dir)?;
        let port = crate::ops::sandbox::free_port()?;
        let log = dir.join("backend.log");
        let mut child = Command::new(binary)
            .env("GATI_DATA_DIR", dir.join("data"))
            .env("GATI_HOST", "127.0.0.1")
            .env("GATI_PORT", port.to_string())
            .env_remove("GATI_RETENTION_DAYS")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        if let Err(e) = wait_for(port, &mut child, &log) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
        Ok(Backend { child, url: format!("http://127.0.0.1:{port}"), dir: dir.to_owned() })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Loads `count` events (or spans) into the backend, then waits for its search index.
    fn load(&self, sh: &Shell, load: &Path, mode: Mode, count: usize) -> anyhow::Result<Loaded> {
        let (subcommand, batch) = mode.load();
        let url = &self.url;
        eprintln!("{subcommand}: {count} into {url} ({THREADS} threads, batches of {batch})");
        let (count, threads, batch) = (count.to_string(), THREADS.to_string(), batch.to_string());
        let pid = self.pid();
        let cpu_start = cpu_seconds(pid)?;
        let sent = json(cmd!(sh, "{load} {subcommand} {url} {count} {threads} {batch}"))?;
        let rss = rss_kib(pid, "VmRSS")?;
        let cpu_ingest = cpu_seconds(pid)? - cpu_start;
        let started = Instant::now();
        loop {
            let health = json(cmd!(sh, "{load} get {url} /health"))?;
            if health["search_pending_events"] == 0 {
                break;
            }
            if started.elapsed() > Duration::from_secs(600) {
                bail!("the search index did not catch up within 10 minutes: {health}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let catch_up = started.elapsed();
        let cpu_indexed = cpu_seconds(pid)? - cpu_start;
        let (peak_rss, bytes) = (rss_kib(pid, "VmHWM")?, database_bytes(&self.dir.join("data"))?);
        Ok(Loaded { sent, rss, peak_rss, cpu_ingest, cpu_indexed, catch_up, bytes })
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

fn report(events: usize, loaded: &Loaded, rss_probe: f64) {
    let per_second = loaded.figure("per_second");
    let seconds = loaded.figure("seconds");
    let generator = loaded.figure("generator_cpu_seconds");
    println!("gati backend at {events} events ({} agents, {} runs)", 20, events.div_ceil(100));
    println!(
        "  ingest          {per_second:>9.0} events/s ({seconds:.1} s; the load generator used {generator:.1} s of CPU, \
         {:.0}% of one core)",
        100.0 * generator / seconds.max(1e-9)
    );
    println!(
        "  backend CPU     {:.1} s while loading ({:.1} µs per event), {:.1} s until searchable \
         ({:.1} µs per event): the figure a busy machine does not blur",
        loaded.cpu_ingest,
        1e6 * loaded.cpu_ingest / events as f64,
        loaded.cpu_indexed,
        1e6 * loaded.cpu_indexed / events as f64
    );
    println!(
        "  search index    caught up {:.1} s after the last batch was acknowledged",
        loaded.catch_up.as_secs_f64()
    );
    let size = loaded.bytes as f64;
    println!("  database        {:.0} MB ({:.0} bytes per event)", size / 1e6, size / events as f64);
    println!(
        "  memory (RSS)    {:.0} MB after ingest, {:.0} MB after the reads",
        loaded.rss / 1024.0,
        rss_probe / 1024.0
    );
}

/// The OTLP figures, each beside the native one of the same run and its goal.
fn report_otlp(spans: usize, otlp: &Loaded, native: &Loaded) {
    let (per_second, seconds) = (otlp.figure("per_second"), otlp.figure("seconds"));
    let generator = otlp.figure("generator_cpu_seconds");
    println!(
        "gati backend, OTLP: {spans} spans to /v1/traces ({} traces of 100, protobuf batches of {OTLP_BATCH} \
         from {THREADS} threads), on a fresh database",
        spans.div_ceil(100)
    );
    println!(
        "  ingest          {per_second:>9.0} spans/s ({seconds:.1} s; the load generator used {generator:.1} s of \
         CPU), native {:.0} events/s    {}",
        native.figure("per_second"),
        goal(per_second >= GOAL_SPANS_PER_SECOND, &format!("≥ {GOAL_SPANS_PER_SECOND:.0} spans/s"))
    );
    let per = |cpu: f64| 1e6 * cpu / spans as f64;
    for (when, (span, event)) in [
        ("while loading", (otlp.cpu_ingest, native.cpu_ingest)),
        ("until searchable", (otlp.cpu_indexed, native.cpu_indexed)),
    ] {
        let ratio = span / event.max(1e-9);
        println!(
            "  backend CPU     {:.1} µs per span {when}, native {:.1} µs per event: {ratio:.2}×    {}",
            per(span),
            per(event),
            goal(ratio <= GOAL_CPU_RATIO, &format!("≤ {GOAL_CPU_RATIO}×"))
        );
    }
    println!(
        "  search index    caught up {:.1} s after the last batch was acknowledged (native {:.1} s)",
        otlp.catch_up.as_secs_f64(),
        native.catch_up.as_secs_f64()
    );
    let (size, native_size) = (otlp.bytes as f64, native.bytes as f64);
    println!(
        "  database        {:.0} MB ({:.0} bytes per span), native {:.0} MB ({:.0} bytes per event)",
        size / 1e6,
        size / spans as f64,
        native_size / 1e6,
        native_size / spans as f64
    );
    println!(
        "  memory (RSS)    {:.0} MB after ingest ({:.0} MB at most), native {:.0} MB ({:.0} MB at most)",
        otlp.rss / 1024.0,
        otlp.peak_rss / 1024.0,
        native.rss / 1024.0,
        native.peak_rss / 1024.0
    );
}

/// The latency route's p95 on each database, beside its goal; a backend without the route says so.
fn report_latency(otlp: &Value, native: &Value) {
    if otlp["status"] != 200 || native["status"] != 200 {
        println!(
            "  latency route   {LATENCY} answered {} (OTLP) and {} (native): this backend does not serve it",
            otlp["status"], native["status"]
        );
        return;
    }
    let p95 = |figures: &Value| figures["p95_ms"].as_f64().unwrap_or(f64::NAN);
    let worst = p95(otlp).max(p95(native));
    println!(
        "  latency route   p95 {:.1} ms on the spans, {:.1} ms on the native events ({LATENCY})    {}",
        p95(otlp),
        p95(native),
        goal(worst <= GOAL_LATENCY_P95_MS, &format!("≤ {GOAL_LATENCY_P95_MS:.0} ms"))
    );
}

fn goal(met: bool, goal: &str) -> String {
    format!("goal {goal}: {}", if met { "met" } else { "not met" })
}

/// gati and Phoenix on the same spans, a column each.
fn side_by_side(spans: usize, gati: &Loaded, rival: &phoenix::Figures) -> String {
    let gati_cpu = 1e3 * gati.cpu_indexed / spans as f64;
    let stored = if rival.stored >= spans as u64 {
        format!("{:.0}", rival.stored as f64 / rival.stored_seconds)
    } else {
        format!(
            "{:.0} ({} of {spans} in {:.0} s)",
            rival.stored as f64 / rival.stored_seconds,
            rival.stored,
            rival.stored_seconds
        )
    };
    let rows = [
        [
            "acknowledged, spans/s".to_string(),
            format!("{:.0}", gati.figure("per_second")),
            format!("{:.0}", rival.sent["per_second"].as_f64().unwrap_or(0.0)),
        ],
        // gati answers once the batch is committed: acknowledged is stored.
        ["stored, spans/s".into(), format!("{:.0}", gati.figure("per_second")), stored],
        [
            "CPU per span, ms".into(),
            format!("{gati_cpu:.3}"),
            format!("{:.3}", 1e3 * rival.cpu / rival.stored.max(1) as f64),
        ],
        [
            "memory at most (RSS), MiB".into(),
            format!("{:.0}", gati.peak_rss / 1024.0),
            format!("{:.0}", rival.peak_rss / 1024.0),
        ],
        ["database, MB".into(), format!("{:.1}", gati.bytes as f64 / 1e6), format!("{:.1}", rival.bytes as f64 / 1e6)],
    ];
    let title = format!("{spans} spans through OTLP/HTTP, {THREADS} clients, batches of {OTLP_BATCH}");
    format!("{title}\n{}", table(["", "gati", phoenix::NAME], &rows))
}

/// Rows under a header, the first column left-aligned, the others right-aligned, each as wide
/// as its widest cell.
fn table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; N]| {
        let mut line = String::from(" ");
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            let pad = " ".repeat(width - cell.chars().count());
            line += &if i == 0 { format!(" {cell}{pad}") } else { format!("   {pad}{cell}") };
        }
        line
    };
    let mut out = vec![line(header)];
    out.extend(rows.iter().map(|row| line(row.each_ref().map(String::as_str))));
    out.join("\n")
}

fn report_routes(routes: &[(&'static str, String)], probe: &Value) -> anyhow::Result<()> {
    println!("  {:<38} {:>8} {:>8}  path", "route (ms)", "p50", "p95");
    for (name, path) in routes {
        let figures = &probe[path];
        if figures["status"] == 404 {
            println!("  {name:<38} {:>17}  {path}", "not served (404)");
            continue;
        }
        if figures["status"] != 200 {
            bail!("{path} answered {}: the bench's data is not what it expects", figures["status"]);
        }
        let ms = |key: &str| figures[key].as_f64().unwrap_or(f64::NAN);
        println!("  {name:<38} {:>8.1} {:>8.1}  {path}", ms("p50_ms"), ms("p95_ms"));
    }
    Ok(())
}

/// What a dashboard and an assistant ask, on the data `gati-load` made: its run numbers
/// `run N` per agent `agent-NN`, its order ids `order-<run>-<event>` in tool calls.
fn routes(events: usize) -> Vec<(&'static str, String)> {
    let runs = events / 100;
    let run = runs / 2 + 7 - (runs / 2) % 20; // a run of agent-07 in the middle
    let name = format!("run%20{}", run / 20 + 1);
    [
        ("agents", "/api/agents".to_string()),
        ("one agent", "/api/agents/agent-07".into()),
        ("an agent's runs", "/api/agents/agent-07/runs?limit=200".into()),
        ("runs in a time range", "/api/runs?since=SINCE&limit=50".into()),
        ("a run by name, with its events", format!("/api/runs/agent-07/{name}")),
        ("a run by id", format!("/api/runs/run-{run:06}")),
        ("a run's timeline", format!("/api/runs/agent-07/{name}/timeline")),
        ("a run's trace", format!("/api/runs/agent-07/{name}/trace")),
        ("summary", "/api/summary".into()),
        ("metrics summary", "/api/metrics/summary".into()),
        ("metrics summary, last week", "/api/metrics/summary?since=SINCE".into()),
        ("cost timeline, 30 days", "/api/metrics/cost-timeline?days=30".into()),
        ("tokens timeline, 30 days", "/api/metrics/tokens-timeline?days=30".into()),
        ("daily timeline, 30 days", "/api/metrics/timeline?days=30".into()),
        ("agents comparison", "/api/metrics/agents-comparison".into()),
        ("agent metrics", "/api/agents/agent-07/metrics".into()),
        ("cost per model", "/api/metrics/models".into()),
        ("events of a type", "/api/events?type=tool_call".into()),
        ("search: an order id (1 event)", format!("/api/events?q=order-{run}-16")),
        ("search: an error (1% of tool calls)", "/api/events?q=rate%20limit%20exceeded".into()),
        ("search: a word in most events", "/api/events?q=weather".into()),
        ("search: a two-word phrase", "/api/events?q=weather%20forecast".into()),
        ("search: a model, one agent", "/api/events?agent=agent-07&q=gpt-4o-mini".into()),
        ("latency percentiles per model", LATENCY.into()),
    ]
    .into_iter()
    .map(|(name, path)| (name, path.replace("SINCE", &week_ago())))
    .collect()
}

/// Seven days ago, as a date: `gati-load` spreads its runs over the last 30 days.
fn week_ago() -> String {
    let days = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()) / 86_400;
    // Howard Hinnant's civil-from-days.
    let z = days as i64 - 7 + 719_468;
    let (era, doe) = (z.div_euclid(146_097), z.rem_euclid(146_097));
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let (d, m) = (doy - (153 * mp + 2) / 5 + 1, if mp < 10 { mp + 3 } else { mp - 9 });
    format!("{:04}-{m:02}-{d:02}", yoe + era * 400 + i64::from(m <= 2))
}

/// Waits until `port` takes connections, or `child` exits (its log at `log` tells why).
pub fn wait_for(port: u16, child: &mut Child, log: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = child.try_wait()? {
            bail!("it exited ({status}) before listening: see {}", log.display());
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!("nothing listened on port {port} within 120 s: see {}", log.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

pub fn json(command: xshell::Cmd<'_>) -> anyhow::Result<Value> {
    let out = command.read()?;
    serde_json::from_str(&out).with_context(|| format!("gati-load printed no JSON: {out}"))
}

/// A process's user and system CPU time so far, in seconds.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    cpu_of_stat(&stat).with_context(|| format!("/proc/{pid}/stat has no CPU times: {stat}"))
}

/// utime + stime of a /proc/PID/stat line (its 14th and 15th fields, in clock ticks of 1/100 s;
/// the name in parentheses may hold spaces).
fn cpu_of_stat(stat: &str) -> Option<f64> {
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
    Some((ticks(11)? + ticks(12)?) / 100.0)
}

/// A memory figure of /proc/PID/status in KiB: `VmRSS` now, `VmHWM` the most it has held.
pub fn rss_kib(pid: u32, field: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|rest| rest.starts_with(':')))
        .with_context(|| format!("no {field} in /proc/{pid}/status"))?;
    Ok(line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0.0))
}

/// The bytes of the files in `dir` (the database and its write-ahead log).
pub fn database_bytes(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            total += entry.metadata()?.len();
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_past_a_name_with_spaces_and_parentheses() {
        let stat = "4242 (phoenix (serve) x) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 75 0 0 20 0 9 0 100 1 2";
        assert_eq!(cpu_of_stat(stat), Some(3.25));
        assert_eq!(cpu_of_stat("4242 (truncated) S 1"), None);
    }

    #[test]
    fn a_table_aligns_its_columns() {
        let rows = [
            ["spans/s".to_string(), "25000".into(), "160".into()],
            ["CPU per span".into(), "0.050".into(), "7.400".into()],
        ];
        let table = table(["", "gati", "Phoenix"], &rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines.iter().all(|l| l.chars().count() == lines[0].chars().count()), "{table}");
        assert!(lines[0].ends_with("gati   Phoenix") && lines[1].ends_with("25000       160"), "{table}");
        assert!(lines[2].starts_with("  CPU per span "), "{table}");
    }
}
