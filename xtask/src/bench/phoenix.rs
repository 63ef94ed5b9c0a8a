//! The same spans into Arize Phoenix, gati's closest rival (`bench backend --against phoenix`).
//!
//! Installs the pinned `arize-phoenix` into `target/bench-phoenix/venv` once (reused while the
//! pin holds), starts `phoenix serve` on free loopback ports with its SQLite database in
//! `target/bench-phoenix/work` (fresh each run, telemetry off), sends it the spans `gati-load
//! otlp` sends gati (Phoenix serves OTLP/HTTP's `/v1/traces` on its own port), then asks its
//! GraphQL API (`projects { recordCount }`: the spans stored, per project) until it has stored
//! them all, or [`STORE_TIMEOUT`] has passed. Phoenix acknowledges a batch before storing it
//! (a background task after the answer), so the two rates differ: here, by two orders of
//! magnitude.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context;
use serde_json::Value;
use xshell::{cmd, Shell};

use super::backend::{cpu_seconds, database_bytes, json, rss_kib, wait_for, OTLP_BATCH, THREADS};

/// The version measured, as PyPI spells it.
const PIN: &str = "arize-phoenix==20.26.1";
/// The column's name in the report.
pub const NAME: &str = "Phoenix 20.26.1";
/// How long the bench waits for Phoenix to store what it acknowledged.
const STORE_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Spans stored, summed over the projects: the figure Phoenix's own UI shows.
const STORED_QUERY: &str = r#"{"query":"{ projects { edges { node { name recordCount } } } }"}"#;

/// What the same spans cost Phoenix.
pub struct Figures {
    /// `gati-load otlp`'s figures for the acknowledged spans.
    pub sent: Value,
    /// Spans stored when the bench stopped waiting, and how long after the first batch.
    pub stored: u64,
    pub stored_seconds: f64,
    /// CPU seconds from the first batch until then.
    pub cpu: f64,
    pub peak_rss: f64,
    pub bytes: u64,
}

pub fn run(sh: &Shell, load: &Path, spans: usize) -> anyhow::Result<Figures> {
    let dir = crate::target_dir(sh).join("bench-phoenix");
    let phoenix = install(sh, &dir)?;
    let work = dir.join("work");
    if work.exists() {
        std::fs::remove_dir_all(&work).with_context(|| format!("removing the last bench's {}", work.display()))?;
    }
    std::fs::create_dir_all(&work)?;
    // Its log beside, not in, the working directory: the database's size is the directory's.
    let server = Server::start(&phoenix, &work, &dir.join("phoenix.log"))?;
    let pid = server.0.id();
    let url = &server.1;

    eprintln!("{NAME}: {spans} spans into {url}/v1/traces");
    let (count, threads, batch) = (spans.to_string(), THREADS.to_string(), OTLP_BATCH.to_string());
    let cpu_start = cpu_seconds(pid)?;
    let started = Instant::now();
    let sent = json(cmd!(sh, "{load} otlp {url} {count} {threads} {batch}"))?;
    eprintln!("{NAME}: acknowledged all; waiting for it to store them (at most {} s)", STORE_TIMEOUT.as_secs());
    let mut stored = 0;
    while started.elapsed() < STORE_TIMEOUT {
        let answer = json(cmd!(sh, "{load} post {url} /graphql {STORED_QUERY}"))?;
        stored = stored_spans(&answer).with_context(|| format!("Phoenix's GraphQL answered {answer}"))?;
        if stored >= spans as u64 {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let stored_seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid)? - cpu_start;
    let peak_rss = rss_kib(pid, "VmHWM")?;
    Ok(Figures { sent, stored, stored_seconds, cpu, peak_rss, bytes: database_bytes(&work)? })
}

/// `phoenix` of a virtual environment holding exactly [`PIN`], made once.
fn install(sh: &Shell, dir: &Path) -> anyhow::Result<PathBuf> {
    let venv = dir.join("venv");
    let (python, stamp) = (venv.join("bin").join("python"), venv.join("installed.txt"));
    if !(python.exists() && sh.read_file(&stamp).is_ok_and(|have| have == PIN)) {
        eprintln!("installing {PIN} into {} (once)", venv.display());
        cmd!(sh, "python3 -m venv --clear {venv}")
            .run()
            .context("creating Phoenix's virtual environment (Debian: `apt-get install python3-venv`)")?;
        cmd!(sh, "{python} -m pip install --quiet --disable-pip-version-check {PIN}")
            .run()
            .with_context(|| format!("installing {PIN}"))?;
        sh.write_file(&stamp, PIN)?;
    }
    Ok(venv.join("bin").join("phoenix"))
}

/// The total of `recordCount` over the projects of a GraphQL answer.
fn stored_spans(answer: &Value) -> Option<u64> {
    let edges = answer["data"]["projects"]["edges"].as_array()?;
    edges.iter().map(|edge| edge["node"]["recordCount"].as_u64()).sum()
}

/// `phoenix serve` and its URL, stopped (SIGTERM, then waited for) when the bench ends.
struct Server(Child, String);

impl Server {
    fn start(phoenix: &Path, work: &Path, log: &Path) -> anyhow::Result<Server> {
        let (port, grpc) = (crate::ops::sandbox::free_port()?, crate::ops::sandbox::free_port()?);
        let file = std::fs::File::create(log)?;
        let mut child = Command::new(phoenix)
            .arg("serve")
            .env("PHOENIX_WORKING_DIR", work)
            .env("PHOENIX_HOST", "127.0.0.1")
            .env("PHOENIX_PORT", port.to_string())
            // Its gRPC receiver would take OTLP's 4317 otherwise.
            .env("PHOENIX_GRPC_PORT", grpc.to_string())
            .env("PHOENIX_TELEMETRY_ENABLED", "false")
            .stdout(file.try_clone()?)
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {} serve", phoenix.display()))?;
        let started = wait_for(port, &mut child, log).context("phoenix serve");
        let server = Server(child, format!("http://127.0.0.1:{port}"));
        started.map(|()| server)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn stored_spans_are_summed_over_projects() {
        let answer = json!({"data": {"projects": {"edges": [
            {"node": {"name": "default", "recordCount": 300}},
            {"node": {"name": "agents", "recordCount": 212}},
        ]}}});
        assert_eq!(super::stored_spans(&answer), Some(512));
        assert_eq!(super::stored_spans(&json!({"errors": [{"message": "no"}]})), None);
    }
}
