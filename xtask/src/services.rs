//! The deployable services: one folder, one static binary, one image each.

use std::path::PathBuf;

use anyhow::Context;
use xshell::{cmd, Shell};

pub struct Service {
    /// The folder, and the image's name after `gati-`.
    pub name: &'static str,
    /// Empty directories staged into the build context, for the image to own (see its Dockerfile).
    pub empty_dirs: &'static [&'static str],
}

pub const SERVICES: [Service; 3] = [
    Service {
        name: "backend",
        empty_dirs: &["data"],
    },
    Service {
        name: "dashboard",
        empty_dirs: &[],
    },
    Service {
        name: "mcp-server",
        empty_dirs: &[],
    },
];

/// The target the images are built for: static glibc binaries run in a `FROM scratch` image.
pub const TARGET: &str = "x86_64-unknown-linux-gnu";
/// Set on every cargo call for the image target: only the target's artifacts are static, build
/// scripts and proc macros stay ordinary host programs.
pub const STATIC_RUSTFLAGS: (&str, &str) = (
    "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS",
    "-C target-feature=+crt-static",
);

impl Service {
    pub fn binary(&self) -> String {
        format!("gati-{}", self.name)
    }
}

/// Builds the three static binaries in one `cargo build`; returns the folder that holds them.
pub fn build_binaries(sh: &Shell) -> anyhow::Result<PathBuf> {
    let packages: Vec<String> = SERVICES
        .iter()
        .flat_map(|s| ["--package".into(), s.binary()])
        .collect();
    cmd!(sh, "cargo build --release --target {TARGET} {packages...}")
        .env(STATIC_RUSTFLAGS.0, STATIC_RUSTFLAGS.1)
        .run()
        .context("building the static service binaries")?;
    Ok(sh.current_dir().join("target").join(TARGET).join("release"))
}
