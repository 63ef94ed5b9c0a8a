//! `cargo xtask bench backend [--events N]`: the backend on a database of a user's size.
//!
//! Builds the static backend (as the images have it) and its load generator
//! (`backend/examples/load.rs`), starts the backend on an empty database in
//! `target/bench-backend`, and loads N events (default 1,000,000: 20 agents, runs of 100 events,
//! LLM calls with tokens and cost, over the last 30 days) from 4 threads posting batches of 500
//! on keep-alive connections. Then it prints ingest events/s (and the generator's own CPU time,
//! to show it is not the bottleneck), how long the search index took to catch up, the p50 and
//! p95 of every route a dashboard or assistant calls, the database's size and the backend's
//! memory (RSS). Figures only: nothing passes or fails.

use std::{
    net::TcpStream,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use serde_json::Value;
use xshell::{cmd, Shell};

use crate::{model::platform::Platform, ops::cargo};

const THREADS: usize = 4;
const BATCH: usize = 500;
const ROUNDS: usize = 50;

pub fn run(sh: &Shell, events: usize) -> anyhow::Result<()> {
    if events < 2_000 {
        bail!("--events {events} is too few to measure; give at least 2000 (20 agents with a run each)");
    }
    let (backend, load) = build(sh)?;
    let dir = crate::target_dir(sh).join("bench-backend");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing the last bench's {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir)?;
    let port = crate::ops::sandbox::free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    let log = std::fs::File::create(dir.join("backend.log"))?;
    let mut server = Server(
        Command::new(&backend)
            .env("GATI_DATA_DIR", dir.join("data"))
            .env("GATI_HOST", "127.0.0.1")
            .env("GATI_PORT", port.to_string())
            .env_remove("GATI_RETENTION_DAYS")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", backend.display()))?,
    );
    wait_for(port, &mut server.0)?;
    let loaded = ingest(sh, &load, &url, events, server.0.id())?;
    let routes = routes(events);
    let paths: Vec<&str> = routes.iter().map(|(_, path)| path.as_str()).collect();
    eprintln!("timing {} routes, {ROUNDS} requests each", paths.len());
    let rounds = ROUNDS.to_string();
    let probe = json(cmd!(sh, "{load} probe {url} {rounds} {paths...}"))?;
    let rss_probe = rss_kib(server.0.id())?;
    let size = database_bytes(&dir.join("data"))?;
    drop(server);
    report(events, &loaded, size, rss_probe);
    report_routes(&routes, &probe)
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

/// What loading the events cost.
struct Loaded {
    ingest: Value,
    rss: f64,
    cpu_ingest: f64,
    cpu_indexed: f64,
    catch_up: Duration,
}

/// Loads `events` into the backend `pid` at `url`, then waits for its search index.
fn ingest(sh: &Shell, load: &std::path::Path, url: &str, events: usize, pid: u32) -> anyhow::Result<Loaded> {
    eprintln!("loading {events} events into {url} ({THREADS} threads, batches of {BATCH})");
    let (count, threads, batch) = (events.to_string(), THREADS.to_string(), BATCH.to_string());
    let cpu_start = cpu_seconds(pid)?;
    let ingest = json(cmd!(sh, "{load} ingest {url} {count} {threads} {batch}"))?;
    let rss = rss_kib(pid)?;
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
    Ok(Loaded { ingest, rss, cpu_ingest, cpu_indexed: cpu_seconds(pid)? - cpu_start, catch_up })
}

fn report(events: usize, loaded: &Loaded, size: u64, rss_probe: f64) {
    let per_second = loaded.ingest["events_per_second"].as_f64().unwrap_or(0.0);
    let seconds = loaded.ingest["seconds"].as_f64().unwrap_or(0.0);
    let generator = loaded.ingest["generator_cpu_seconds"].as_f64().unwrap_or(0.0);
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
    println!("  database        {:.0} MB ({:.0} bytes per event)", size as f64 / 1e6, size as f64 / events as f64);
    println!(
        "  memory (RSS)    {:.0} MB after ingest, {:.0} MB after the reads",
        loaded.rss / 1024.0,
        rss_probe / 1024.0
    );
}

fn report_routes(routes: &[(&'static str, String)], probe: &Value) -> anyhow::Result<()> {
    println!("  {:<38} {:>8} {:>8}  path", "route (ms)", "p50", "p95");
    for (name, path) in routes {
        let figures = &probe[path];
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

/// The backend, stopped (SIGTERM, then waited for) when the bench ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

fn wait_for(port: u16, child: &mut Child) -> anyhow::Result<()> {
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = child.try_wait()? {
            bail!("the backend exited ({status}) before listening: see target/bench-backend/backend.log");
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("the backend did not listen on port {port} within 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn json(command: xshell::Cmd<'_>) -> anyhow::Result<Value> {
    let out = command.read()?;
    serde_json::from_str(&out).with_context(|| format!("gati-load printed no JSON: {out}"))
}

/// A process's user and system CPU time so far, from /proc/<pid>/stat (clock ticks of 1/100 s).
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    Ok((ticks(11) + ticks(12)) / 100.0)
}

fn rss_kib(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).context("no VmRSS in /proc/<pid>/status")?;
    Ok(line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0.0))
}

fn database_bytes(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        total += entry?.metadata()?.len();
    }
    Ok(total)
}
