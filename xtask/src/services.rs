//! The service binaries: static, built once on the host for every image.

use std::path::PathBuf;

use xshell::{cmd, Shell};

/// The target the images are built for: static glibc binaries run in a `FROM scratch` image.
pub const TARGET: &str = "x86_64-unknown-linux-gnu";
/// Set on every cargo call for the image target: only the target's artifacts are static, build
/// scripts and proc macros stay ordinary host programs.
pub const STATIC_RUSTFLAGS: (&str, &str) =
    ("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS", "-C target-feature=+crt-static");

/// The `cargo build` of every service's binary, in one invocation.
pub fn build_command<'a>(sh: &'a Shell, services: &[String]) -> xshell::Cmd<'a> {
    let packages: Vec<String> = services.iter().flat_map(|s| ["--package".into(), format!("gati-{s}")]).collect();
    cmd!(sh, "cargo build --release --target {TARGET} {packages...}").env(STATIC_RUSTFLAGS.0, STATIC_RUSTFLAGS.1)
}

/// Builds the binaries; returns the folder that holds them.
pub fn build_binaries(sh: &Shell, services: &[String]) -> anyhow::Result<PathBuf> {
    crate::interrupt::run_checked(build_command(sh, services), "building the static service binaries")?;
    Ok(crate::target_dir(sh).join(TARGET).join("release"))
}
