//! `cargo xtask rehearse [VERSION]`: the whole release, for real, into throwaway places.
//!
//! A registry that behaves like Docker Hub (Debian's docker-registry behind token auth, blob
//! redirects and paged tag lists) and an index (pypiserver), from `tests/sandbox.py`, on
//! loopback; a clone of HEAD whose `origin` is a new bare repository. The release runs there as
//! `cargo xtask release VERSION --yes`, ending with its verify step (`pip install` from the
//! index into a fresh venv, `gati start` pulling the pinned digests). Then the tag's CI run on a
//! fresh clone of the origin finds it released, and the same command again changes nothing.
//! Prints the release notes (changes, pinned images) and the timings, and stops everything.

use std::time::Instant;

use anyhow::{bail, Context};
use xshell::{cmd, Shell};

use crate::{
    flags,
    model::config,
    model::surfaces::Surfaces,
    model::version::ReleaseVersion,
    ops::provision,
    ops::sandbox::{self, LocalIndex, LocalRegistry},
};

impl flags::Rehearse {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let phases = rehearse(sh, self.version.as_deref())?;
        println!("\n{:<16} {:>8}", "REHEARSAL", "SECONDS");
        for (name, seconds) in &phases {
            println!("{name:<16} {seconds:>8.1}");
        }
        Ok(())
    }
}

/// The rehearsal; returns how long each phase took, `release` and `release again` among them.
pub fn rehearse(sh: &Shell, version: Option<&str>) -> anyhow::Result<Vec<(&'static str, f64)>> {
    let started = Instant::now();
    let mut phases = Vec::new();
    let phase = |phases: &mut Vec<(&'static str, f64)>, name: &'static str, since: &mut Instant| {
        phases.push((name, since.elapsed().as_secs_f64()));
        *since = Instant::now();
    };
    let mut since = Instant::now();

    provision::debian_packages(sh, &["docker.io", "docker-compose", "docker-registry", "apache2-utils", "curl"])?;
    let python = provision::python_tools(sh)?;
    let _dockerd = provision::Dockerd::ensure(sh)?;
    let config = config::load_default(sh)?;
    let current = Surfaces::read(&sh.current_dir())?.current(&config.services)?;
    let root = sh.current_dir();
    let version = match version {
        Some(v) => ReleaseVersion::parse(v)?,
        None => current.bump("patch")?,
    };
    // Not under a cargo target directory: cargo records source files found there relative to
    // it, and would then take a later copy's sources for the clone's (stale builds).
    let dir = root.join(provision::TOOLS_DIR).join("rehearsal");
    if dir.exists() {
        sh.remove_path(&dir)?;
    }
    let docker_config = sandbox::private_docker_config(&dir)?;
    let registry = LocalRegistry::start(sh, &dir.join("registry"))?;
    let index = LocalIndex::start(sh, &python, &dir.join("index"))?;
    println!("rehearsing {version}: registry {}, index {}", registry.address, index.simple_url);
    println!("the rehearsal registry behaves like Docker Hub: {}", registry.describe());
    println!(
        "  login {}, pushing to the namespace {}; the index refuses a file name twice",
        registry.credentials.user, registry.namespace
    );

    // A clone of HEAD on the release branch, pushing to a bare repository of its own.
    let clone = dir.join("clone");
    let origin = dir.join("origin.git");
    let branch = &config.branch;
    cmd!(sh, "git init --quiet --bare {origin}").run()?;
    cmd!(sh, "git clone --quiet --no-hardlinks {root} {clone}").run()?;
    {
        let _in_clone = sh.push_dir(&clone);
        cmd!(sh, "git checkout --quiet -B {branch}").run()?;
        cmd!(sh, "git remote set-url origin {origin}").run()?;
        cmd!(sh, "git push --quiet origin {branch}").run()?;
        if cmd!(sh, "git config user.email").quiet().ignore_status().read()?.is_empty() {
            cmd!(sh, "git config user.name 'gati rehearsal'").run()?;
            cmd!(sh, "git config user.email rehearsal@gati.invalid").run()?;
        }
        // The clone uses this tree's Python tools instead of installing its own; its release
        // state (journal, kept artifacts) stays its own.
        let tools = clone.join(provision::TOOLS_DIR);
        sh.create_dir(&tools)?;
        std::os::unix::fs::symlink(root.join(provision::TOOLS_DIR).join("venv"), tools.join("venv"))?;
    }
    phase(&mut phases, "set up", &mut since);

    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| crate::target_dir(sh).join("rehearsal-build"));
    // `cargo xtask ARGS` in `tree`, as a maintainer or CI would run it against the sandboxes.
    let xtask = |tree: &std::path::Path, args: &[String]| -> anyhow::Result<String> {
        let _in_tree = sh.push_dir(tree);
        let output = cmd!(sh, "cargo xtask {args...}")
            .env("CARGO_TARGET_DIR", &target_dir)
            .env("DOCKER_CONFIG", &docker_config)
            .env("GATI_REGISTRY", &registry.address)
            .env("GATI_NAMESPACE", &registry.namespace)
            .env("DOCKER_USERNAME", &registry.credentials.user)
            .env("DOCKER_PASSWORD", &registry.credentials.password)
            .env("GATI_INDEX", &index.upload_url)
            .env("GATI_INDEX_SIMPLE", &index.simple_url)
            .env("TWINE_USERNAME", &index.credentials.user)
            .env("TWINE_PASSWORD", &index.credentials.password)
            .env("CI", "true")
            .ignore_status()
            .output()?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        print!("{stdout}");
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
        if !output.status.success() {
            bail!("`cargo xtask {}` failed (above); the throwaway services are in {}", args.join(" "), dir.display());
        }
        Ok(stdout)
    };
    // xtask itself, compiled for the clone (a maintainer's is compiled already): not the release.
    {
        let _in_clone = sh.push_dir(&clone);
        cmd!(sh, "cargo build --quiet --package xtask").env("CARGO_TARGET_DIR", &target_dir).run()?;
    }
    phase(&mut phases, "compile xtask", &mut since);
    let release = [String::from("release"), version.to_string(), "--yes".into()];
    let released = xtask(&clone, &release)?;
    // The release's last step is `cargo xtask verify`: pip install and gati start, as a user.
    if !released.contains(&format!("verified gati {version}")) {
        bail!("the rehearsed release did not verify {version} from outside");
    }
    phase(&mut phases, "release", &mut since);

    // The tag's CI run, on a fresh runner: a clone of origin at the tag, no journal, no images.
    let ci = dir.join("ci");
    let tag = format!("v{version}");
    cmd!(sh, "git clone --quiet --branch {tag} {origin} {ci}").quiet().ignore_stderr().run()?;
    sh.create_dir(ci.join(provision::TOOLS_DIR))?;
    std::os::unix::fs::symlink(
        root.join(provision::TOOLS_DIR).join("venv"),
        ci.join(provision::TOOLS_DIR).join("venv"),
    )?;
    let from_tag = [String::from("release"), "--from-tag".into(), tag.clone(), "--yes".into()];
    if !xtask(&ci, &from_tag)?.contains("is already released") {
        bail!("the tag's CI run on a fresh clone did not find {tag} released");
    }
    phase(&mut phases, "CI on the tag", &mut since);

    // The same command again, after success: it must change nothing and say so.
    if !xtask(&clone, &release)?.contains("is already released") {
        bail!("running the release again did not find it complete");
    }
    phase(&mut phases, "release again", &mut since);

    let notes =
        clone.join(provision::TOOLS_DIR).join("state").join(format!("release-{version}-files")).join("NOTES.md");
    let notes = sh.read_file(&notes).with_context(|| format!("the release notes of {version}"))?;
    println!("\nthe release notes of {version} (CHANGELOG.md's section and the pinned images):\n\n{notes}");
    phases.push(("total", started.elapsed().as_secs_f64()));
    println!("nothing left this machine: the registry, index, clone and origin were throwaway ({})", dir.display());
    Ok(phases)
}
