//! `cargo xtask rehearse [VERSION]`: the whole release, for real, into throwaway places.
//!
//! A registry that behaves like Docker Hub (Debian's docker-registry behind token auth, blob
//! redirects and paged tag lists) and an index (pypiserver), from `tests/sandbox.py`, on
//! loopback; a clone of HEAD whose `origin` is a new bare repository. The release runs there as
//! `cargo xtask release VERSION --yes`; then the package is installed from the index into a
//! fresh venv and `gati start` runs the stack from the registry. Prints the stack's health and
//! the timings, and stops everything it started.

use std::time::Instant;

use anyhow::{bail, Context};
use xshell::{cmd, Shell};

use crate::{
    bump::load_config,
    flags, provision,
    sandbox::{self, LocalIndex, LocalRegistry},
    surfaces::Surfaces,
    version::ReleaseVersion,
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
    let config = load_config(sh)?;
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
    let release_in_clone = || -> anyhow::Result<String> {
        let _in_clone = sh.push_dir(&clone);
        let version = version.to_string();
        let output = cmd!(sh, "cargo xtask release {version} --yes")
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
            bail!("the rehearsed release failed (above); the throwaway services are in {}", dir.display());
        }
        Ok(stdout)
    };
    release_in_clone()?;
    phase(&mut phases, "release", &mut since);

    // What a user does: install from the index, start the stack from the registry.
    let venv = dir.join("venv");
    cmd!(sh, "{python} -m venv {venv}").run()?;
    let pip = venv.join("bin").join("pip");
    let requirement = format!("gati=={}", version.pep440());
    let simple = &index.simple_url;
    cmd!(sh, "{pip} install --quiet --disable-pip-version-check --no-cache-dir --index-url {simple} {requirement}")
        .run()
        .context("installing the rehearsed package from the index")?;
    phase(&mut phases, "pip install", &mut since);

    let gati = venv.join("bin").join("gati");
    let ports: Vec<u16> = (0..3).map(|_| sandbox::free_port()).collect::<Result<_, _>>()?;
    let project = format!("gati-rehearsal-{}", std::process::id());
    let prefix = format!("{}/{}", registry.address, registry.namespace);
    let stack_env = [
        ("DOCKER_CONFIG", docker_config.display().to_string()),
        ("GATI_IMAGE_PREFIX", prefix),
        ("GATI_PROJECT", project.clone()),
        ("GATI_BACKEND_PORT", ports[0].to_string()),
        ("GATI_DASHBOARD_PORT", ports[1].to_string()),
        ("GATI_MCP_PORT", ports[2].to_string()),
    ];
    let _stack_env: Vec<_> = stack_env.iter().map(|(k, v)| sh.push_env(k, v)).collect();
    let start = cmd!(sh, "{gati} start --detach --pull always").run();
    let health = start.and_then(|()| {
        let url = format!("http://127.0.0.1:{}/health", ports[0]);
        Ok(cmd!(sh, "curl --silent --show-error --max-time 5 {url}").read()?)
    });
    phase(&mut phases, "gati start", &mut since);
    let _ = cmd!(sh, "{gati} stop").quiet().ignore_stdout().ignore_stderr().run();
    let volume = format!("{project}_gati-data");
    let _ = cmd!(sh, "docker volume rm {volume}").quiet().ignore_stdout().ignore_stderr().run();
    let health = health.context("the rehearsed stack did not start")?;
    let want = format!("\"version\":\"{version}\"");
    if !health.contains(&want) {
        bail!("the rehearsed stack answers {health}, not version {version}");
    }

    println!("\nthe gati stack installed from the rehearsal index is healthy at {version}: {health}");

    // The same command again, after success: it must change nothing and say so.
    let again = release_in_clone()?;
    if !again.contains("is already released") {
        bail!("running the release again did not find it complete");
    }
    phase(&mut phases, "release again", &mut since);
    phases.push(("total", started.elapsed().as_secs_f64()));
    println!("\nnothing left this machine: the registry, index, clone and origin were throwaway ({})", dir.display());
    Ok(phases)
}
