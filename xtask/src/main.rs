//! NAME
//!     cargo xtask — gati's automation: tests, versions, images, releases.
//!
//! SYNOPSIS
//!     cargo xtask test [-k EXPR] [--no-images]
//!     cargo xtask version
//!     cargo xtask bump <major|minor|patch|alpha|beta|rc|release|VERSION> [--dry-run]
//!     cargo xtask images [--push] [--edge] [--only SERVICE] [--registry R] [--namespace N] [--dry-run]
//!     cargo xtask release <VERSION|KIND> [--yes] [--dry-run]
//!     cargo xtask release --from-tag vX.Y.Z [--yes] [--dry-run]
//!     cargo xtask rehearse [VERSION]
//!     cargo xtask verify VERSION [--rebuild|--json]
//!     cargo xtask yank VERSION --reason "…" [--undo] [--yes] [--dry-run]
//!     cargo xtask doctor [--json]
//!     cargo xtask lint
//!     cargo xtask bench <images [--rounds N]|release|backend [--events N] [--otlp] [--against phoenix]>
//!
//! DESCRIPTION
//!     Runs from anywhere in the repository: the shell moves to the workspace root first.
//!     `main` only parses flags and dispatches; each task is a module with a `run` method.

mod bench;
mod bump;
mod commands;
mod doctor;
mod flags;
mod images;
mod lint;
mod model;
mod ops;
mod python;
mod registry;
mod rehearse;
mod release;
mod test;
mod verify;
mod yank;

use std::path::PathBuf;

// Below the commands, where every layer may reach them; here too for the commands' callers.
pub use ops::shell::{shell_in, target_dir};

fn main() -> anyhow::Result<()> {
    // Before anything starts a thread or a process: no child inherits a credential.
    ops::secrets::take_from_environment();
    ops::interrupt::remove_logins_on_signal();
    // An error here is a message for a person, with its causes: a backtrace only buries it.
    // (RUST_BACKTRACE still applies to panics; set RUST_LIB_BACKTRACE=1 to see error backtraces.)
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    let flags = flags::parse(&release::steps_help());
    let sh = shell_in(&project_root())?;
    match flags.command {
        flags::Command::Test(cmd) => cmd.run(&sh),
        flags::Command::Bump(cmd) => cmd.run(&sh),
        flags::Command::Version(cmd) => cmd.run(&sh),
        flags::Command::Images(cmd) => cmd.run(&sh),
        flags::Command::Bench(cmd) => cmd.run(&sh),
        flags::Command::Release(cmd) => cmd.run(&sh),
        flags::Command::Rehearse(cmd) => cmd.run(&sh),
        flags::Command::Doctor(cmd) => cmd.run(&sh),
        flags::Command::Lint(cmd) => cmd.run(&sh),
        flags::Command::Verify(cmd) => cmd.run(&sh),
        flags::Command::Yank(cmd) => cmd.run(&sh),
    }
}

/// The workspace root: xtask's manifest sits one level below it. `cargo run` tells the running
/// binary where that manifest is; the compile-time path is only a fallback, since a binary
/// cargo reuses may have been built from another copy of the tree.
fn project_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    PathBuf::from(manifest_dir).parent().unwrap().to_owned()
}

#[cfg(test)]
mod tidy;
