//! NAME
//!     cargo xtask — gati's automation: tests, version bumps; images and release next.
//!
//! SYNOPSIS
//!     cargo xtask test [-k EXPR] [--no-images]
//!     cargo xtask bump <major|minor|patch|alpha|beta|rc|release|VERSION> [--dry-run]
//!     cargo xtask version
//!
//! DESCRIPTION
//!     Runs from anywhere in the repository: the shell moves to the workspace root first.
//!     `main` only parses flags and dispatches; each task is a module with a `run` method.

mod bump;
mod config;
mod context;
mod docker;
mod flags;
mod git;
mod images;
mod provision;
mod registry;
mod services;
mod surfaces;
mod tags;
mod test;
mod version;

use std::path::PathBuf;

use clap::Parser;
use xshell::Shell;

fn main() -> anyhow::Result<()> {
    let flags = flags::Xtask::parse();
    let sh = Shell::new()?;
    sh.change_dir(project_root());
    match flags.command {
        flags::Command::Test(cmd) => cmd.run(&sh),
        flags::Command::Bump(cmd) => cmd.run(&sh),
        flags::Command::Version(cmd) => cmd.run(&sh),
        flags::Command::Images(cmd) => cmd.run(&sh),
    }
}

/// The workspace root: xtask's manifest sits one level below it.
fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}
