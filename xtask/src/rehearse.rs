//! `cargo xtask rehearse [VERSION]`: the whole release, for real, into throwaway places.
//!
//! A registry that behaves like Docker Hub (Debian's docker-registry behind token auth, blob
//! redirects and paged tag lists) and an index (pypiserver), from `tests/sandbox.py`, on
//! loopback; a clone of HEAD whose `origin` is a new bare repository. The release runs there as
//! `cargo xtask release VERSION --yes`, ending with its verify step (`pip install` from the
//! index into a fresh venv, `gati start` pulling the pinned digests). Then the tag's CI run on a
//! fresh clone of the origin finds it released, and the same command again changes nothing.
//! Prints the release notes (changes, pinned images) and the timings, and stops everything.

use std::{
    path::{Path, PathBuf},
    time::Instant,
};

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
    let mut phases = Phases { list: Vec::new(), since: Instant::now() };
    let mut places = Places::set_up(sh, version)?;
    phases.end("set up");

    // xtask itself, compiled for the clone (a maintainer's is compiled already): not the release.
    {
        let _in_clone = sh.push_dir(&places.clone);
        cmd!(sh, "cargo build --quiet --package xtask").env("CARGO_TARGET_DIR", &places.target_dir).run()?;
    }
    phases.end("compile xtask");
    let version = places.version.clone();
    let release = [String::from("release"), version.to_string(), "--yes".into()];
    let released = places.xtask(sh, &places.clone, &release)?;
    // The release's last step is `cargo xtask verify`: pip install and gati start, as a user.
    if !released.contains(&format!("verified gati {version}")) {
        bail!("the rehearsed release did not verify {version} from outside");
    }
    phases.end("release");

    // The tag's CI run, on a fresh runner: a clone of origin at the tag, no journal, no images.
    let ci = places.fresh_runner(sh, &format!("v{version}"))?;
    let from_tag = [String::from("release"), "--from-tag".into(), format!("v{version}"), "--yes".into()];
    if !places.xtask(sh, &ci, &from_tag)?.contains("is already released") {
        bail!("the tag's CI run on a fresh clone did not find v{version} released");
    }
    phases.end("CI on the tag");

    // The same command again, after success: it must change nothing and say so.
    if !places.xtask(sh, &places.clone, &release)?.contains("is already released") {
        bail!("running the release again did not find it complete");
    }
    phases.end("release again");

    let notes = places.clone.join(provision::TOOLS_DIR).join("state").join(format!("release-{version}-files"));
    let notes = sh.read_file(notes.join("NOTES.md")).with_context(|| format!("the release notes of {version}"))?;
    println!("\nthe release notes of {version} (CHANGELOG.md's section and the pinned images):\n\n{notes}");
    phases.list.push(("total", started.elapsed().as_secs_f64()));
    println!(
        "nothing left this machine: the registry, index, clone and origin were throwaway ({})",
        places.dir.display()
    );
    places.sandboxes.take();
    Ok(phases.list)
}

/// How long each phase took.
struct Phases {
    list: Vec<(&'static str, f64)>,
    since: Instant,
}

impl Phases {
    fn end(&mut self, name: &'static str) {
        self.list.push((name, self.since.elapsed().as_secs_f64()));
        self.since = Instant::now();
    }
}

/// The throwaway places of a rehearsal: the services, the clone and its bare origin.
struct Places {
    version: ReleaseVersion,
    root: PathBuf,
    dir: PathBuf,
    clone: PathBuf,
    origin: PathBuf,
    target_dir: PathBuf,
    docker_config: PathBuf,
    /// Stopped when dropped.
    sandboxes: Option<(LocalRegistry, LocalIndex)>,
    /// A daemon this rehearsal started, stopped when dropped.
    _dockerd: provision::Dockerd,
}

impl Places {
    fn set_up(sh: &Shell, version: Option<&str>) -> anyhow::Result<Places> {
        provision::debian_packages(sh, &["docker.io", "docker-compose", "docker-registry", "apache2-utils", "curl"])?;
        let python = provision::python_tools(sh)?;
        let dockerd = provision::Dockerd::ensure(sh)?;
        let config = config::load_default(sh)?;
        provision::release_toolchain(sh, &config)?;
        let current = Surfaces::read(&sh.current_dir())?.current(&config.services)?;
        let version = match version {
            Some(v) => ReleaseVersion::parse(v)?,
            None => current.bump("patch")?,
        };
        let root = sh.current_dir();
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
        let target_dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| crate::ops::shell::target_dir(sh).join("rehearsal-build"));
        let places = Places {
            version,
            clone: dir.join("clone"),
            origin: dir.join("origin.git"),
            root,
            dir,
            target_dir,
            docker_config,
            sandboxes: Some((registry, index)),
            _dockerd: dockerd,
        };
        places.make_clone(sh, &config.branch)?;
        Ok(places)
    }

    /// A clone of HEAD on the release branch, pushing to a bare repository of its own, using
    /// this tree's Python tools.
    fn make_clone(&self, sh: &Shell, branch: &str) -> anyhow::Result<()> {
        let (root, clone, origin) = (&self.root, &self.clone, &self.origin);
        cmd!(sh, "git init --quiet --bare {origin}").run()?;
        cmd!(sh, "git clone --quiet --no-hardlinks {root} {clone}").run()?;
        let _in_clone = sh.push_dir(clone);
        cmd!(sh, "git checkout --quiet -B {branch}").run()?;
        cmd!(sh, "git remote set-url origin {origin}").run()?;
        cmd!(sh, "git push --quiet origin {branch}").run()?;
        if cmd!(sh, "git config user.email").quiet().ignore_status().read()?.is_empty() {
            cmd!(sh, "git config user.name 'gati rehearsal'").run()?;
            cmd!(sh, "git config user.email rehearsal@gati.invalid").run()?;
        }
        self.share_tools(clone)
    }

    /// The tools' environment of this tree, for another; its release state stays its own.
    fn share_tools(&self, tree: &Path) -> anyhow::Result<()> {
        let tools = tree.join(provision::TOOLS_DIR);
        std::fs::create_dir_all(&tools)?;
        std::os::unix::fs::symlink(self.root.join(provision::TOOLS_DIR).join("venv"), tools.join("venv"))?;
        Ok(())
    }

    /// What a CI runner has for a tag push: a fresh clone of origin at the tag.
    fn fresh_runner(&self, sh: &Shell, tag: &str) -> anyhow::Result<PathBuf> {
        let (ci, origin) = (self.dir.join("ci"), &self.origin);
        cmd!(sh, "git clone --quiet --branch {tag} {origin} {ci}").quiet().ignore_stderr().run()?;
        self.share_tools(&ci)?;
        Ok(ci)
    }

    /// `cargo xtask ARGS` in `tree`, as a maintainer or CI would run it against the sandboxes;
    /// returns what it printed on stdout.
    fn xtask(&self, sh: &Shell, tree: &Path, args: &[String]) -> anyhow::Result<String> {
        let (registry, index) = self.sandboxes.as_ref().context("the sandboxes are stopped")?;
        let _in_tree = sh.push_dir(tree);
        let output = cmd!(sh, "cargo xtask {args...}")
            .env("CARGO_TARGET_DIR", &self.target_dir)
            .env("DOCKER_CONFIG", &self.docker_config)
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
            bail!(
                "`cargo xtask {}` failed (above); the throwaway services are in {}",
                args.join(" "),
                self.dir.display()
            );
        }
        Ok(stdout)
    }
}
