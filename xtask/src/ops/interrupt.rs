//! Ctrl-C and SIGTERM during a release: the running child is stopped, the step fails with
//! [`Interrupted`], and the release saves its journal and prints the command that continues.

use std::{
    process::{Command, ExitStatus},
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use anyhow::Context;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// The error a step fails with when the user interrupted it.
#[derive(Debug)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

extern "C" fn on_signal(_: i32) {
    // Only an atomic store: nothing else is safe in a signal handler.
    INTERRUPTED.store(true, Ordering::SeqCst);
}

extern "C" {
    fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
    fn kill(pid: i32, signum: i32) -> i32;
}

const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

/// From now on SIGINT and SIGTERM no longer kill xtask: they set a flag that the waits check.
pub fn install() {
    // SAFETY: `on_signal` is async-signal-safe (one atomic store) and lives for the program.
    unsafe {
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
    }
}

/// Sends SIGTERM to the process group `leader` leads (a child spawned with `process_group(0)`):
/// the child and everything it started, e.g. cargo and its rustc processes.
pub fn terminate_group(leader: u32) {
    if let Ok(pid) = i32::try_from(leader) {
        // SAFETY: kill(2) with a negative pid signals that process group; no memory is shared.
        unsafe {
            kill(-pid, SIGTERM);
        }
    }
}

pub fn check() -> anyhow::Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        return Err(Interrupted.into());
    }
    Ok(())
}

/// Sleeps for `duration`, or less when the user interrupts.
pub fn sleep(duration: Duration) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + duration;
    loop {
        check()?;
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// Runs a command to completion, or kills it when interrupted.
pub fn run(command: impl Into<Command>) -> anyhow::Result<ExitStatus> {
    let mut command = command.into();
    let mut child = command.spawn().with_context(|| format!("starting {command:?}"))?;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if INTERRUPTED.load(Ordering::SeqCst) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Interrupted.into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Like [`run`], failing on a non-zero exit with `what` in the message.
pub fn run_checked(command: impl Into<Command>, what: &str) -> anyhow::Result<()> {
    let status = run(command)?;
    anyhow::ensure!(status.success(), "{what} failed ({status})");
    Ok(())
}

/// Runs a duct expression to completion and returns its output, or kills it when interrupted.
pub fn output(expression: duct::Expression) -> anyhow::Result<std::process::Output> {
    let handle = expression.start()?;
    loop {
        if let Some(output) = handle.try_wait()? {
            return Ok(output.clone());
        }
        if INTERRUPTED.load(Ordering::SeqCst) {
            let _ = handle.kill();
            return Err(Interrupted.into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
