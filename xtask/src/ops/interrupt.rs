//! Ctrl-C and SIGTERM during a release: the running child is stopped, the step fails with
//! [`Interrupted`], and the release saves its journal and prints the command that continues.
//!
//! In every command, the files that hold a credential (a Docker login) are removed by the
//! signal handler itself, at once, whatever the command was waiting for: unlink(2) and
//! rmdir(2) are async-signal-safe. A command that does not take interrupts then dies of the
//! signal as before; one that does ([`install`]) stops at its next wait.

use std::{
    ffi::c_char,
    process::{Command, ExitStatus},
    sync::atomic::{AtomicBool, AtomicPtr, Ordering},
    time::Duration,
};

use anyhow::Context;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// Whether this command takes interrupts ([`install`]) rather than dying of them.
static TAKES_INTERRUPTS: AtomicBool = AtomicBool::new(false);
/// Paths a signal removes (files, then their directories), as C strings; never freed (a
/// handler on another thread may be reading one).
static ON_SIGNAL_REMOVE: [AtomicPtr<c_char>; 8] = [const { AtomicPtr::new(std::ptr::null_mut()) }; 8];

/// The error a step fails with when the user interrupted it.
#[derive(Debug)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

extern "C" fn on_signal(signum: i32) {
    // Only atomics and async-signal-safe calls: nothing else is safe in a signal handler.
    // Twice: a directory listed before its file is empty only the second time.
    for slot in ON_SIGNAL_REMOVE.iter().chain(&ON_SIGNAL_REMOVE) {
        let path = slot.load(Ordering::SeqCst);
        if !path.is_null() {
            // SAFETY: a NUL-terminated string that lives for the program (see `remove_on_signal`).
            unsafe {
                unlink(path);
                rmdir(path);
            }
        }
    }
    if TAKES_INTERRUPTS.load(Ordering::SeqCst) {
        INTERRUPTED.store(true, Ordering::SeqCst);
    } else {
        // Die of the signal, as without a handler: it is delivered once this handler returns.
        // SAFETY: signal(2) and raise(3) are async-signal-safe.
        unsafe {
            signal(signum, SIG_DFL);
            raise(signum);
        }
    }
}

extern "C" {
    fn signal(signum: i32, handler: usize) -> usize;
    fn raise(signum: i32) -> i32;
    fn kill(pid: i32, signum: i32) -> i32;
    fn unlink(path: *const c_char) -> i32;
    fn rmdir(path: *const c_char) -> i32;
}

const SIG_DFL: usize = 0;

const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

/// From now on SIGINT and SIGTERM no longer kill xtask: they set a flag that the waits check.
pub fn install() {
    TAKES_INTERRUPTS.store(true, Ordering::SeqCst);
    handle_signals();
}

/// From now on SIGINT and SIGTERM remove the files registered by [`remove_on_signal`] before
/// they kill xtask (or, after [`install`], set the flag). `main` calls it first thing.
pub fn remove_logins_on_signal() {
    handle_signals();
}

fn handle_signals() {
    // SAFETY: `on_signal` is async-signal-safe and lives for the program.
    unsafe {
        signal(SIGINT, on_signal as extern "C" fn(i32) as usize);
        signal(SIGTERM, on_signal as extern "C" fn(i32) as usize);
    }
}

/// Registers `paths` to be removed by SIGINT or SIGTERM (files first, then directories: each is
/// tried as both); their owner removes them itself on every other way out, and calls
/// [`forget_on_signal`]. Fails when every slot is taken.
pub fn remove_on_signal(paths: &[&std::path::Path]) -> anyhow::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    for path in paths {
        let c = std::ffi::CString::new(path.as_os_str().as_bytes())?.into_raw();
        let free = ON_SIGNAL_REMOVE
            .iter()
            .any(|slot| slot.compare_exchange(std::ptr::null_mut(), c, Ordering::SeqCst, Ordering::SeqCst).is_ok());
        anyhow::ensure!(free, "more than {} credential files at once", ON_SIGNAL_REMOVE.len());
    }
    Ok(())
}

/// Takes `paths` off the list of [`remove_on_signal`].
pub fn forget_on_signal(paths: &[&std::path::Path]) {
    use std::os::unix::ffi::OsStrExt;
    for slot in &ON_SIGNAL_REMOVE {
        let registered = slot.load(Ordering::SeqCst);
        if registered.is_null() {
            continue;
        }
        // SAFETY: a registered pointer is a NUL-terminated string that is never freed.
        let bytes = unsafe { std::ffi::CStr::from_ptr(registered) }.to_bytes();
        if paths.iter().any(|p| p.as_os_str().as_bytes() == bytes) {
            // Left allocated: a handler on another thread may be reading it.
            let _ = slot.compare_exchange(registered, std::ptr::null_mut(), Ordering::SeqCst, Ordering::SeqCst);
        }
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

/// Runs `command` to completion with its output captured (stdin closed), or kills it when
/// interrupted.
pub fn output_of(mut command: Command) -> anyhow::Result<std::process::Output> {
    use std::process::Stdio;
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {command:?}"))?;
    let pid = child.id();
    // The pipes are read to the end on a thread of their own (a full pipe would stop the child).
    let waiting = std::thread::spawn(move || child.wait_with_output());
    loop {
        if waiting.is_finished() {
            return Ok(waiting.join().map_err(|_| anyhow::anyhow!("waiting for {command:?} panicked"))??);
        }
        if INTERRUPTED.load(Ordering::SeqCst) {
            if let Ok(pid) = i32::try_from(pid) {
                // SAFETY: kill(2) of our own child, which `waiting` has not reaped yet.
                unsafe {
                    kill(pid, SIGTERM);
                }
            }
            let _ = waiting.join();
            return Err(Interrupted.into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
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
