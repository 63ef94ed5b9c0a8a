//! The service binaries: static, one per service and platform, all from one `cargo build` with
//! the release's toolchain (`cargo +TOOLCHAIN build --target T1 --target T2 …`).
//!
//! They are reproducible: `+crt-static`, dependency sources remapped (`--remap-path-prefix` of
//! `CARGO_HOME`; the workspace's own are relative already), the same toolchain, the Cargo.lock.
//! So the same sources give the same bytes in any clone, and a build whose inputs — the
//! committed sources of the crates the services are made of, the lock file, the toolchain, the
//! C compilers, the flags — were built before reuses those binaries (`target/xtask/binaries/
//! <key>`) rather than compiling them again. `GATI_BUILD_CACHE=off` (and `verify --rebuild`)
//! always compiles.

use std::{
    io::{BufRead, BufReader},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{mpsc, Arc},
    time::Duration,
};

use anyhow::Context;
use xshell::{cmd, Shell};

use crate::{
    model::{blob::sha256, platform::Platform},
    ops::{interrupt, toolchain::Toolchain},
};

/// One build of every service's binary for every platform.
pub struct Build<'a> {
    pub services: &'a [String],
    pub platforms: &'a [&'static Platform],
    pub toolchain: &'a Toolchain,
    /// Compile, even when these inputs were built before.
    pub fresh: bool,
    /// Through cargo-auditable, from this directory (`ops::audit::wrapper_dir`): each binary
    /// then embeds the list of the crates it is made of.
    pub auditable: Option<PathBuf>,
}

/// A binary as cargo reports it written, not read yet.
#[derive(Debug, Clone)]
struct Artifact {
    service: String,
    platform: &'static Platform,
    path: PathBuf,
}

/// One binary a build made, read once, as it was written: its image's layer, its SBOM and its
/// provenance are all made from these bytes, never from the file again. The file is in a target
/// directory that other builds share (every copy of the repository a test makes builds there),
/// and any cargo build in it, even one with nothing to compile, links its own version's binary
/// at that same path.
#[derive(Debug, Clone)]
pub struct Binary {
    pub service: String,
    pub platform: &'static Platform,
    /// Where it was read from.
    pub path: PathBuf,
    pub bytes: Arc<[u8]>,
    /// `sha256:<hex>` of `bytes`.
    pub digest: String,
}

impl Binary {
    fn read(artifact: Artifact) -> anyhow::Result<Binary> {
        let Artifact { service, platform, path } = artifact;
        let bytes: Arc<[u8]> = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?.into();
        Ok(Binary { service, platform, digest: sha256(&bytes), path, bytes })
    }

    /// Fails when the file no longer holds the bytes read, naming it and both digests.
    pub fn unchanged(&self) -> anyhow::Result<()> {
        let now = std::fs::read(&self.path).with_context(|| format!("reading {} again", self.path.display()))?;
        same_binary(&self.path, &self.digest, &now)
    }
}

/// Fails unless `now` is the binary of digest `was`, read from `path`.
fn same_binary(path: &Path, was: &str, now: &[u8]) -> anyhow::Result<()> {
    let now = sha256(now);
    anyhow::ensure!(
        now == was,
        "{} changed after it was read: it was {was} when cargo wrote it, it is {now} now. Another build is writing \
         into the same target directory (a `cargo build` left running by a stopped test or run?): stop it, then \
         build again",
        path.display()
    );
    Ok(())
}

/// `-C target-feature=+crt-static` and the remapped dependency sources: set per target
/// (`CARGO_TARGET_<T>_RUSTFLAGS`), so build scripts and proc macros stay ordinary host programs.
pub fn rustflags() -> String {
    format!("-C target-feature=+crt-static --remap-path-prefix={}=/cargo", cargo_home().display())
}

fn cargo_home() -> PathBuf {
    match std::env::var_os("CARGO_HOME") {
        Some(home) => PathBuf::from(home),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo"),
    }
}

impl Build<'_> {
    /// The environment of every cargo call for these platforms: flags, cross linkers.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = Vec::new();
        for platform in self.platforms {
            env.push((platform.cargo_env("RUSTFLAGS"), rustflags()));
            if Platform::host() != Some(*platform) {
                env.push((platform.cargo_env("LINKER"), platform.linker.to_string()));
            }
        }
        env
    }

    /// `cargo +TOOLCHAIN build --release --target … --package …`, reporting each binary as
    /// cargo writes it (`--message-format=json-render-diagnostics`; progress and errors stay on
    /// stderr).
    pub fn command<'s>(&self, sh: &'s Shell) -> xshell::Cmd<'s> {
        let toolchain = format!("+{}", self.toolchain.name);
        let targets: Vec<String> =
            self.platforms.iter().flat_map(|p| ["--target".into(), p.rust_target.into()]).collect();
        let packages: Vec<String> =
            self.services.iter().flat_map(|s| ["--package".into(), format!("gati-{s}")]).collect();
        let message = "--message-format=json-render-diagnostics";
        let auditable: &[&str] = if self.auditable.is_some() { &["auditable"] } else { &[] };
        let mut command =
            cmd!(sh, "cargo {toolchain} {auditable...} build --release {targets...} {packages...} {message}");
        if let Some(dir) = &self.auditable {
            // cargo finds the `auditable` subcommand on the PATH.
            let path = std::env::var_os("PATH").unwrap_or_default();
            let paths = std::iter::once(dir.clone()).chain(std::env::split_paths(&path));
            command = command.env("PATH", std::env::join_paths(paths).unwrap_or(path));
        }
        // What would override these flags, or the C compiler, is not the release's.
        for key in OVERRIDES {
            command = command.env_remove(key);
        }
        command.envs(self.env())
    }

    /// The build as a person would type it: its settings, then the command.
    pub fn shown(&self, sh: &Shell) -> String {
        let settings: Vec<String> = self.env().iter().map(|(k, v)| format!("{k}='{v}'")).collect();
        format!("{} {}", settings.join(" "), self.command(sh))
    }

    /// Builds every binary, calling `landed` as soon as each is written, while the others still
    /// compile (or at once for each, when these inputs were built before). Returns them all.
    pub fn run(&self, sh: &Shell, mut landed: impl FnMut(&Binary)) -> anyhow::Result<Vec<Binary>> {
        interrupt::install();
        let key = match self.fresh || cache_off() {
            true => None,
            false => self.key(sh).unwrap_or_else(|e| {
                eprintln!("binaries: cannot tell whether these sources were built before ({e:#}); compiling");
                None
            }),
        };
        let cached = key.as_ref().map(|key| crate::ops::shell::target_dir(sh).join("xtask").join("binaries").join(key));
        if let Some(dir) = cached.as_ref().filter(|dir| dir.join(DIGESTS).exists()) {
            match self.binaries_in(dir) {
                Ok(binaries) => {
                    println!(
                        "binaries: these sources, lock file and toolchain were built before: reusing {}",
                        dir.display()
                    );
                    // Most recently used, for the eviction in `keep`.
                    let _ = std::fs::File::open(dir).and_then(|d| d.set_modified(std::time::SystemTime::now()));
                    binaries.iter().for_each(&mut landed);
                    return Ok(binaries);
                }
                Err(e) => eprintln!("binaries: the ones kept in {} are unusable ({e:#}); compiling", dir.display()),
            }
        }
        let mut binaries = Vec::new();
        self.compile(sh, |binary| {
            landed(&binary);
            binaries.push(binary);
        })?;
        anyhow::ensure!(
            binaries.len() == self.services.len() * self.platforms.len(),
            "cargo reported {} binaries, not one per service and platform: see its output above",
            binaries.len()
        );
        // Kept only when the inputs are still those of the key: nothing changed while it compiled.
        if let Some(dir) = cached.filter(|_| self.key(sh).ok().flatten() == key) {
            if let Err(e) = keep(&dir, &binaries) {
                eprintln!("binaries: not kept for a later build ({e:#}); the next one compiles");
            }
        }
        Ok(binaries)
    }

    /// The binaries of a kept build in `dir` (`<target>/gati-<service>`), each the one whose
    /// digest `keep` recorded.
    fn binaries_in(&self, dir: &Path) -> anyhow::Result<Vec<Binary>> {
        let recorded: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join(DIGESTS))?)
            .with_context(|| format!("{} is damaged", dir.join(DIGESTS).display()))?;
        let mut binaries = Vec::new();
        for platform in self.platforms {
            for service in self.services {
                let name = kept_name(platform, service);
                let binary = Binary::read(Artifact { service: service.clone(), platform, path: dir.join(&name) })?;
                let was = recorded[&name].as_str().with_context(|| format!("no digest recorded for {name}"))?;
                same_binary(&binary.path, was, &binary.bytes)?;
                binaries.push(binary);
            }
        }
        Ok(binaries)
    }

    /// The key of this build's inputs, or `None` when some input has uncommitted changes (what
    /// git does not name cannot be recognised again).
    fn key(&self, sh: &Shell) -> anyhow::Result<Option<String>> {
        // The price table is the backend's too (`include_str!` of the SDK's file).
        let mut inputs = vec![
            "Cargo.toml".to_string(),
            "Cargo.lock".to_string(),
            ".cargo".to_string(),
            "sdk/gati/prices.json".into(),
        ];
        let (crates, packages) = service_crates(sh)?;
        inputs.extend(crates);
        // Ignored files too: a build script may read them (a `dashboard/node_modules` left from
        // before the bundled packages were kept in dashboard/vendor/ is not read, and not asked).
        let mut asked = inputs.clone();
        asked.push(":(exclude)dashboard/node_modules".into());
        let changed =
            cmd!(sh, "git status --porcelain --untracked-files=all --ignored -- {asked...}").quiet().read()?;
        if !changed.trim().is_empty() {
            return Ok(None);
        }
        let trees = cmd!(sh, "git ls-tree HEAD -- {inputs...}").quiet().read()?;
        let platforms: Vec<&str> = self.platforms.iter().map(|p| p.name).collect();
        let c = crate::ops::toolchain::c_compilers(sh, self.platforms);
        let home = std::fs::read_to_string(cargo_home().join("config.toml")).unwrap_or_default();
        // The packages' versions, stated: two versions never share kept binaries, whatever the
        // trees say (the version is in the root Cargo.toml's tree today).
        let what = format!(
            "{trees}\n{packages}\n{}\n{c}\n{}\n{}\n{}\n{home}\n{}",
            self.toolchain.rustc,
            rustflags(),
            platforms.join(" "),
            self.services.join(" "),
            self.auditable.as_ref().map_or("", |_| crate::ops::audit::CARGO_AUDITABLE.version),
        );
        Ok(Some(sha256(what.as_bytes()).trim_start_matches("sha256:")[..32].to_string()))
    }

    /// The one `cargo build`; `landed` for each binary as cargo reports it written.
    fn compile(&self, sh: &Shell, mut landed: impl FnMut(Binary)) -> anyhow::Result<()> {
        let mut command: Command = self.command(sh).into();
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
                // Read at once, while cargo still holds the target directory's lock: no other
                // cargo build can be linking there meanwhile.
                Ok(line) => match binary_written(&line, self.services, self.platforms).map(Binary::read) {
                    Some(Ok(binary)) => landed(binary),
                    Some(Err(e)) => {
                        interrupt::terminate_group(child.id());
                        let _ = child.wait();
                        return Err(e);
                    }
                    None => {}
                },
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if interrupt::check().is_err() {
                interrupt::terminate_group(child.id());
                let _ = child.wait();
                return interrupt::check();
            }
        }
        let status = child.wait()?;
        // Interrupted while cargo was ending: interrupted, whatever cargo's status says.
        interrupt::check()?;
        anyhow::ensure!(status.success(), "building the static service binaries failed ({status}): see above");
        Ok(())
    }
}

/// Settings of the caller's environment that would change the binaries behind the release's
/// back (cargo takes `RUSTFLAGS` over the per-target flags; cc-rs takes `CC`, `CFLAGS`): unset
/// for the build.
const OVERRIDES: [&str; 9] = [
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_PROFILE_RELEASE_OPT_LEVEL",
    "CARGO_PROFILE_RELEASE_LTO",
    "CARGO_PROFILE_RELEASE_CODEGEN_UNITS",
    "CC",
    "CFLAGS",
    "CARGO_BUILD_TARGET",
];

/// `GATI_BUILD_CACHE=off`: compile whatever was built before.
fn cache_off() -> bool {
    std::env::var("GATI_BUILD_CACHE").is_ok_and(|v| v == "off" || v == "0")
}

/// The folders of the crates the services are built from: every workspace member but xtask
/// (`cargo metadata`), relative to the root; and their names and versions, a line each.
fn service_crates(sh: &Shell) -> anyhow::Result<(Vec<String>, String)> {
    let metadata = cmd!(sh, "cargo metadata --no-deps --format-version 1 --offline").quiet().read()?;
    let metadata: serde_json::Value = serde_json::from_str(&metadata).context("reading cargo metadata")?;
    let root = sh.current_dir();
    let (mut crates, mut packages) = (Vec::new(), Vec::new());
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let Some(manifest) = package["manifest_path"].as_str() else { continue };
        let dir = Path::new(manifest).parent().unwrap_or(Path::new(""));
        let relative = dir.strip_prefix(&root).unwrap_or(dir).display().to_string();
        if package["name"] != "xtask" && !relative.is_empty() {
            crates.push(relative);
            packages.push(format!("{} {}", package["name"], package["version"]));
        }
    }
    crates.sort();
    packages.sort();
    Ok((crates, packages.join("\n")))
}

/// The file of a kept build that records each binary's digest, written last: a kept build
/// without it is incomplete.
const DIGESTS: &str = "digests.json";

/// Where a kept build holds the binary of `service` for `platform`.
fn kept_name(platform: &Platform, service: &str) -> String {
    format!("{}/gati-{service}", platform.rust_target)
}

/// Keeps `binaries` (their bytes as read, not the files, which another build may have replaced
/// since) under `dir`: written to a folder of this process beside it, then renamed into place,
/// so that `dir` is complete or absent; keeps the four newest such builds.
fn keep(dir: &Path, binaries: &[Binary]) -> anyhow::Result<()> {
    let parent = dir.parent().context("the binaries' folder has no parent")?;
    if dir.join(DIGESTS).exists() {
        return Ok(());
    }
    let partial = parent.join(format!(".partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    let mut digests = serde_json::Map::new();
    for binary in binaries {
        let name = kept_name(binary.platform, &binary.service);
        let to = partial.join(&name);
        std::fs::create_dir_all(to.parent().unwrap())?;
        std::fs::write(&to, &binary.bytes).with_context(|| format!("keeping {}", binary.path.display()))?;
        std::fs::set_permissions(&to, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        std::fs::File::open(&to)?.sync_all()?;
        digests.insert(name, binary.digest.clone().into());
    }
    std::fs::write(partial.join(DIGESTS), serde_json::Value::Object(digests).to_string())?;
    std::fs::File::open(partial.join(DIGESTS))?.sync_all()?;
    // A build kept before `digests.json` was written is replaced.
    let _ = std::fs::remove_dir_all(dir);
    std::fs::rename(&partial, dir)?;
    let mut kept: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(parent)?
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    kept.sort();
    for (_, old) in kept.iter().rev().skip(4) {
        let _ = std::fs::remove_dir_all(old);
    }
    Ok(())
}

/// The binary a line of cargo's JSON output reports written, if it is a service's.
fn binary_written(line: &str, services: &[String], platforms: &[&'static Platform]) -> Option<Artifact> {
    let message: serde_json::Value = serde_json::from_str(line).ok()?;
    let is_binary = message["reason"] == "compiler-artifact"
        && message["target"]["kind"].as_array().is_some_and(|kinds| kinds.iter().any(|k| k == "bin"));
    let path = PathBuf::from(message["executable"].as_str()?);
    let name = message["target"]["name"].as_str()?;
    let service = services.iter().find(|s| is_binary && name == format!("gati-{s}"))?;
    // target/<triple>/release/gati-<service>
    let platform = platforms.iter().find(|p| path.components().any(|c| c.as_os_str() == p.rust_target))?;
    Some(Artifact { service: service.clone(), platform, path })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::platform::PLATFORMS;

    #[test]
    fn a_service_binary_is_known_from_cargos_artifact_message() {
        let services = ["backend".to_string(), "dashboard".to_string()];
        let platforms: Vec<&Platform> = PLATFORMS.iter().collect();
        let artifact = |name: &str, kind: &str, executable: &str| {
            format!(
                r#"{{"reason":"compiler-artifact","package_id":"path+file:///g/{name}#0.1.0","target":{{"kind":["{kind}"],"name":"{name}"}},"executable":{executable},"fresh":false}}"#
            )
        };
        let line = artifact("gati-dashboard", "bin", r#""/t/aarch64-unknown-linux-gnu/release/gati-dashboard""#);
        let binary = binary_written(&line, &services, &platforms).unwrap();
        assert_eq!((binary.service.as_str(), binary.platform.name), ("dashboard", "linux/arm64"));
        let amd64 = artifact("gati-backend", "bin", r#""/t/x86_64-unknown-linux-gnu/release/gati-backend""#);
        assert_eq!(binary_written(&amd64, &services, &platforms).unwrap().platform.name, "linux/amd64");
        // The library of the same package, another package's binary, a build script: not yet.
        assert!(binary_written(&artifact("gati_backend", "lib", "null"), &services, &platforms).is_none());
        assert!(binary_written(
            &artifact("gati-mcp-server", "bin", r#""/t/x86_64-unknown-linux-gnu/m""#),
            &services,
            &platforms
        )
        .is_none());
        assert!(binary_written(&artifact("gati-backend", "custom-build", "null"), &services, &platforms).is_none());
        assert!(binary_written(r#"{"reason":"build-finished","success":true}"#, &services, &platforms).is_none());
        assert!(binary_written("not json", &services, &platforms).is_none());
    }

    fn scratch(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-cargo-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn binary_at(dir: &Path, platform: &'static Platform, bytes: &[u8]) -> Binary {
        let path = dir.join(format!("gati-backend-{}", platform.architecture));
        std::fs::write(&path, bytes).unwrap();
        Binary::read(Artifact { service: "backend".into(), platform, path }).unwrap()
    }

    #[test]
    fn a_binary_rewritten_after_it_was_read_is_named_with_both_digests() {
        let dir = scratch("rewritten");
        let binary = binary_at(&dir, &PLATFORMS[1], b"the 0.1.2 binary");
        assert_eq!(binary.digest, sha256(b"the 0.1.2 binary"));
        binary.unchanged().unwrap();
        std::fs::write(&binary.path, b"the 0.1.1 binary").unwrap();
        let e = binary.unchanged().unwrap_err().to_string();
        assert!(e.contains(&binary.path.display().to_string()), "{e}");
        assert!(e.contains(&format!("it was {}", sha256(b"the 0.1.2 binary"))), "{e}");
        assert!(e.contains(&format!("it is {} now", sha256(b"the 0.1.1 binary"))), "{e}");
        // What was read stays what was read.
        assert_eq!(&binary.bytes[..], b"the 0.1.2 binary");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_kept_build_holds_the_bytes_read_and_is_refused_once_changed() {
        let dir = scratch("kept");
        let toolchain = Toolchain { name: "debian-1.96.0".into(), rustc: String::new() };
        let platforms: Vec<&Platform> = PLATFORMS.iter().collect();
        let services = ["backend".to_string()];
        let build =
            Build { services: &services, platforms: &platforms, toolchain: &toolchain, fresh: false, auditable: None };
        let binaries: Vec<Binary> =
            platforms.iter().map(|p| binary_at(&dir, p, format!("built for {}", p.name).as_bytes())).collect();
        // Another build replaces the files once they are read: the bytes read are kept.
        for binary in &binaries {
            std::fs::write(&binary.path, b"another version's binary").unwrap();
        }
        let kept = dir.join("binaries").join("key");
        keep(&kept, &binaries).unwrap();
        let again = build.binaries_in(&kept).unwrap();
        let digests = |b: &[Binary]| b.iter().map(|b| b.digest.clone()).collect::<Vec<_>>();
        assert_eq!(digests(&again), digests(&binaries));
        assert!(!kept.with_file_name(format!(".partial-{}", std::process::id())).exists());
        let arm64 = kept.join(kept_name(&PLATFORMS[1], "backend"));
        std::fs::write(&arm64, b"changed in the cache").unwrap();
        let e = build.binaries_in(&kept).unwrap_err().to_string();
        assert!(e.contains(&binaries[1].digest) && e.contains(&sha256(b"changed in the cache")), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn every_platform_gets_the_static_flags_and_each_other_one_its_linker() {
        let toolchain = Toolchain { name: "debian-1.96.0".into(), rustc: String::new() };
        let platforms: Vec<&Platform> = PLATFORMS.iter().collect();
        let build =
            Build { services: &[], platforms: &platforms, toolchain: &toolchain, fresh: false, auditable: None };
        let env = build.env();
        let flags = env.iter().filter(|(k, v)| k.ends_with("_RUSTFLAGS") && v.contains("+crt-static")).count();
        assert_eq!(flags, 2, "{env:?}");
        let linkers: Vec<&(String, String)> = env.iter().filter(|(k, _)| k.ends_with("_LINKER")).collect();
        assert_eq!(linkers.len(), 1, "only the platform that is not the host's: {env:?}");
        assert!(rustflags().contains("--remap-path-prefix=") && rustflags().ends_with("=/cargo"));
    }
}
