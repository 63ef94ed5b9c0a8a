//! The one Rust toolchain a release builds every binary with, on every platform: the release
//! the repository names (`[workspace.metadata.release] rust`), found among the machine's rustup
//! toolchains, with the standard library of every platform's target, the cross linkers, and
//! qemu to smoke-test what this machine cannot run. Its full `rustc -vV` goes into the images.

use std::{path::Path, sync::Mutex};

use anyhow::bail;
use xshell::{cmd, Shell};

use crate::model::platform::Platform;

/// A rustup toolchain of the release's Rust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toolchain {
    /// Its rustup name: `cargo +NAME`.
    pub name: String,
    /// `rustc -vV`: the compiler, its commit and its LLVM, as a rebuild must match.
    pub rustc: String,
}

/// The rustup names a toolchain of Rust `rust` is looked for under: `GATI_TOOLCHAIN` alone when
/// set; otherwise rustup's own (`1.96.0`), then a distribution's linked as `debian-1.96.0`
/// (rustup refuses a linked toolchain an official name).
pub fn candidates(rust: &str, chosen: Option<&str>) -> Vec<String> {
    match chosen.filter(|c| !c.is_empty()) {
        Some(name) => vec![name.to_string()],
        None => vec![rust.to_string(), format!("debian-{rust}")],
    }
}

/// The `release:` line of `rustc -vV`.
pub fn release_of(rustc_vv: &str) -> Option<&str> {
    rustc_vv.lines().find_map(|l| l.strip_prefix("release: ")).map(str::trim)
}

/// The machine's toolchain of Rust `rust`, or what to install: the first candidate that
/// builds every platform, else the first of that release.
pub fn find(sh: &Shell, rust: &str, platforms: &[&Platform]) -> anyhow::Result<Toolchain> {
    let chosen = std::env::var("GATI_TOOLCHAIN").ok();
    let asked = (format!("{rust} {chosen:?}"), names(platforms));
    if let Some(known) = lock_complete().iter().find(|k| (&k.rust, &k.platforms) == (&asked.0, &asked.1)) {
        return Ok(known.toolchain.clone());
    }
    let mut found = Vec::new();
    let mut usable = Vec::new();
    for name in candidates(rust, chosen.as_deref()) {
        let plus = format!("+{name}");
        let Ok(rustc) = cmd!(sh, "rustc {plus} -vV").quiet().ignore_stderr().read() else { continue };
        match release_of(&rustc) {
            Some(release) if release == rust => usable.push(Toolchain { name, rustc }),
            other => found.push(format!("{name} is Rust {}", other.unwrap_or("of an unknown release"))),
        }
    }
    if let Some(complete) = usable.iter().position(|t| problems(sh, t, platforms).is_empty()) {
        let complete = usable.swap_remove(complete);
        let (rust, platforms) = asked;
        lock_complete().push(Complete { rust, platforms, toolchain: complete.clone() });
        return Ok(complete);
    }
    if let Some(first) = usable.into_iter().next() {
        return Ok(first);
    }
    let found = if found.is_empty() { String::new() } else { format!(" ({})", found.join("; ")) };
    bail!(
        "no Rust {rust} toolchain{found}: the repository builds every release with Rust {rust} \
         ([workspace.metadata.release] rust in Cargo.toml). Install it: `rustup toolchain install {rust} \
         --profile minimal --target aarch64-unknown-linux-gnu`; on Debian bookworm, Debian's own \
         (`apt-get install rustc-web cargo-web libstd-rust-web-dev`, then `rustup toolchain link debian-{rust} /usr`); \
         or set GATI_TOOLCHAIN to the rustup name of a Rust {rust} toolchain"
    )
}

/// The toolchains found complete (nothing missing for their platforms) by this process, by
/// what was asked: found once, not again by every step. (An incomplete one is looked at again:
/// the command may install what it lacks.)
static COMPLETE: Mutex<Vec<Complete>> = Mutex::new(Vec::new());

struct Complete {
    /// The release and `GATI_TOOLCHAIN`, as asked.
    rust: String,
    platforms: String,
    toolchain: Toolchain,
}

fn lock_complete() -> std::sync::MutexGuard<'static, Vec<Complete>> {
    COMPLETE.lock().unwrap_or_else(|e| e.into_inner())
}

fn names(platforms: &[&Platform]) -> String {
    platforms.iter().map(|p| p.name).collect::<Vec<_>>().join(" ")
}

/// What is missing to build and smoke-test every platform with `toolchain`, each with the
/// command that installs it.
pub fn problems(sh: &Shell, toolchain: &Toolchain, platforms: &[&Platform]) -> Vec<String> {
    let asked = names(platforms);
    if lock_complete().iter().any(|known| known.toolchain == *toolchain && known.platforms == asked) {
        return Vec::new();
    }
    let host = Platform::host();
    let mut problems = Vec::new();
    for platform in platforms {
        let (plus, target) = (format!("+{}", toolchain.name), platform.rust_target);
        let libdir = cmd!(sh, "rustc {plus} --print target-libdir --target {target}").quiet().ignore_stderr().read();
        if !libdir.is_ok_and(|dir| has_std(Path::new(&dir))) {
            problems.push(format!(
                "{}: toolchain {} has no standard library for {target}: `rustup target add --toolchain {} {target}` \
                 (a Debian toolchain: `dpkg --add-architecture {arch} && apt-get update && apt-get install \
                 libstd-rust-web-dev:{arch}`)",
                platform.name,
                toolchain.name,
                toolchain.name,
                arch = platform.architecture
            ));
        }
        if host == Some(*platform) {
            continue;
        }
        let (linker, qemu) = (platform.linker, platform.qemu);
        if cmd!(sh, "{linker} --version").quiet().ignore_stdout().ignore_stderr().run().is_err() {
            problems.push(format!(
                "{}: no cross linker {linker}: `apt-get install {} libc6-dev-{}-cross` (Debian, Ubuntu)",
                platform.name,
                platform.cross_gcc_package(),
                platform.architecture
            ));
        }
        if cmd!(sh, "{qemu} --version").quiet().ignore_stdout().ignore_stderr().run().is_err() {
            problems.push(format!(
                "{}: no {qemu} to smoke-test its binaries on this machine: `apt-get install qemu-user-static`",
                platform.name
            ));
        }
    }
    problems
}

fn has_std(libdir: &Path) -> bool {
    std::fs::read_dir(libdir)
        .is_ok_and(|entries| entries.flatten().any(|e| e.file_name().to_string_lossy().starts_with("libstd-")))
}

/// What else goes into the bytes of a binary, per platform: the C compiler (the bundled
/// SQLite), the C library it links statically (the sha256 of its `libc.a`), and the linker.
pub fn c_compilers(sh: &Shell, platforms: &[&Platform]) -> String {
    let host = Platform::host();
    let mut versions = Vec::new();
    for platform in platforms {
        let cc = if host == Some(*platform) { "cc" } else { platform.linker };
        let first =
            |out: Result<String, xshell::Error>| out.unwrap_or_default().lines().next().unwrap_or("none").to_string();
        let version = first(cmd!(sh, "{cc} --version").quiet().ignore_stderr().read());
        let libc = cmd!(sh, "{cc} -print-file-name=libc.a").quiet().ignore_stderr().read().unwrap_or_default();
        let libc = std::fs::read(&libc).map_or_else(|_| "none".into(), |bytes| crate::model::blob::sha256(&bytes));
        let ld = cmd!(sh, "{cc} -print-prog-name=ld").quiet().ignore_stderr().read().unwrap_or_else(|_| "ld".into());
        let ld = first(cmd!(sh, "{ld} --version").quiet().ignore_stderr().read());
        versions.push(format!("{}: {version}; libc.a {libc}; {ld}", platform.name));
    }
    versions.join("\n")
}

impl Toolchain {
    /// What the images' `dev.gati.rustc` label says: the compiler, its commit, its LLVM.
    pub fn label(&self) -> String {
        let llvm = self.rustc.lines().find_map(|l| l.strip_prefix("LLVM version: ")).unwrap_or("?");
        format!("{}, LLVM {llvm}", self.rustc.lines().next().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_release_is_looked_for_under_rustups_names() {
        assert_eq!(candidates("1.96.0", None), ["1.96.0", "debian-1.96.0"]);
        assert_eq!(candidates("1.96.0", Some("mine")), ["mine"]);
        assert_eq!(candidates("1.96.0", Some("")), ["1.96.0", "debian-1.96.0"]);
        let vv = "rustc 1.96.0 (ac68faa20 2026-05-25)\nbinary: rustc\nrelease: 1.96.0\nLLVM version: 22.1.8\n";
        assert_eq!(release_of(vv), Some("1.96.0"));
        assert_eq!(release_of("rustc 1.95.0"), None);
        let toolchain = Toolchain { name: "1.96.0".into(), rustc: vv.into() };
        assert_eq!(toolchain.label(), "rustc 1.96.0 (ac68faa20 2026-05-25), LLVM 22.1.8");
    }
}
