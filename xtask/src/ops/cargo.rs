//! The service binaries: static, built once on the host for every image.

use std::{
    io::{BufRead, BufReader},
    os::unix::process::CommandExt,
    path::PathBuf,
    process::{Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use anyhow::Context;
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
    crate::ops::ui::provision(sh)?;
    crate::ops::interrupt::run_checked(build_command(sh, services), "building the static service binaries")?;
    Ok(bin_dir(sh))
}

/// The folder the binaries are built into.
pub fn bin_dir(sh: &Shell) -> PathBuf {
    crate::target_dir(sh).join(TARGET).join("release")
}

/// The `cargo build` of [`build_binaries_as_landed`]: cargo reports each binary written on
/// stdout (`--message-format=json-render-diagnostics`; its progress and errors stay on stderr).
pub fn reporting_build_command<'a>(sh: &'a Shell, services: &[String]) -> xshell::Cmd<'a> {
    build_command(sh, services).arg("--message-format=json-render-diagnostics")
}

/// Builds the binaries like [`build_binaries`], calling `landed(service)` as soon as cargo has
/// written that service's binary, while the others still compile.
pub fn build_binaries_as_landed(sh: &Shell, services: &[String], mut landed: impl FnMut(&str)) -> anyhow::Result<()> {
    crate::ops::ui::provision(sh)?;
    let mut command: Command = reporting_build_command(sh, services).into();
    // A group of its own, so that Ctrl-C stops cargo's rustc processes too, not cargo alone.
    let mut child = command.stdout(Stdio::piped()).process_group(0).spawn().context("starting cargo build")?;
    let stdout = child.stdout.take().context("cargo build's stdout")?;
    // A reader thread hands over the lines, so that this one can also watch for Ctrl-C.
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    loop {
        match received.recv_timeout(Duration::from_millis(50)) {
            Ok(line) => {
                if let Some(service) = binary_written(&line, services) {
                    landed(service);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if crate::ops::interrupt::check().is_err() {
            crate::ops::interrupt::terminate_group(child.id());
            let _ = child.wait();
            return crate::ops::interrupt::check();
        }
    }
    let status = child.wait()?;
    // Interrupted while cargo was ending: interrupted, whatever cargo's status says.
    crate::ops::interrupt::check()?;
    anyhow::ensure!(status.success(), "building the static service binaries failed ({status})");
    Ok(())
}

/// The service whose binary a line of cargo's JSON output reports written, if it does.
fn binary_written<'a>(line: &str, services: &'a [String]) -> Option<&'a str> {
    let message: serde_json::Value = serde_json::from_str(line).ok()?;
    let is_binary = message["reason"] == "compiler-artifact"
        && message["target"]["kind"].as_array().is_some_and(|kinds| kinds.iter().any(|k| k == "bin"))
        && !message["executable"].is_null();
    let name = message["target"]["name"].as_str()?;
    services.iter().find(|s| is_binary && name == format!("gati-{s}")).map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_binary_is_known_from_cargos_artifact_message() {
        let services = ["backend".to_string(), "dashboard".to_string()];
        let artifact = |name: &str, kind: &str, executable: &str| {
            format!(
                r#"{{"reason":"compiler-artifact","package_id":"path+file:///g/{name}#0.1.0","target":{{"kind":["{kind}"],"name":"{name}"}},"executable":{executable},"fresh":false}}"#
            )
        };
        let line = artifact("gati-dashboard", "bin", r#""/t/release/gati-dashboard""#);
        assert_eq!(binary_written(&line, &services), Some("dashboard"));
        // The library of the same package, another package's binary, a build script: not yet.
        assert_eq!(binary_written(&artifact("gati_backend", "lib", "null"), &services), None);
        assert_eq!(binary_written(&artifact("gati-mcp-server", "bin", r#""/t/m""#), &services), None);
        assert_eq!(binary_written(&artifact("gati-backend", "custom-build", "null"), &services), None);
        assert_eq!(binary_written(r#"{"reason":"build-finished","success":true}"#, &services), None);
        assert_eq!(binary_written("not json", &services), None);
    }
}
