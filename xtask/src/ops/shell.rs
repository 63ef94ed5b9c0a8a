//! Where commands run: a shell in a directory, and cargo's target directory.

use std::path::PathBuf;

use xshell::Shell;

/// A shell of its own in `dir`: xshell's `Shell` is not shared between threads, so each thread
/// that runs commands makes one.
pub fn shell_in(dir: &std::path::Path) -> anyhow::Result<Shell> {
    let sh = Shell::new()?;
    sh.change_dir(dir);
    Ok(sh)
}

/// Cargo's target directory: `CARGO_TARGET_DIR`, or `target/` in the workspace.
pub fn target_dir(sh: &Shell) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => sh.current_dir().join(dir),
        None => sh.current_dir().join("target"),
    }
}
