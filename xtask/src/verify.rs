//! `cargo xtask verify VERSION`: a release, checked from outside as a user meets it, on any
//! machine, with no journal and no credentials.
//!
//! 1. The index has the wheel and the sdist of VERSION; the wheel it serves has the sha256 it
//!    lists (and, from a release, the sha256 of the files the release uploaded).
//! 2. The wheel's compose file pins every image as `…/gati-<service>:VERSION@sha256:…`; the
//!    registry serves each digest, labelled with VERSION (and the release's commit), and the
//!    tag VERSION still points at it: a moved tag is named.
//! 3. A fresh venv `pip install gati==VERSION` from the index, and `gati start` pulls the
//!    pinned images anonymously; `/health` reports VERSION. Then everything is stopped and
//!    removed.

use std::path::Path;

use anyhow::{bail, Context};
use xshell::{cmd, Shell};

use crate::{
    config::{self, Config},
    flags, provision, python,
    registry::Registry,
    sandbox,
    version::ReleaseVersion,
};

impl flags::Verify {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let config = config::load_default(sh)?;
        let version = ReleaseVersion::parse(self.version.strip_prefix('v').unwrap_or(&self.version))?;
        let python = provision::python_tools(sh)?;
        let _dockerd = provision::Dockerd::ensure(sh)?;
        verify(sh, &python, &config, &version, &Expected::default())
    }
}

/// What the release itself knows it published, checked too when given.
#[derive(Default)]
pub struct Expected {
    /// The commit the images were built from.
    pub revision: Option<String>,
    /// `(file name, sha256)` of the uploaded files.
    pub files: Vec<(String, String)>,
}

pub fn verify(
    sh: &Shell,
    python: &Path,
    config: &Config,
    version: &ReleaseVersion,
    expected: &Expected,
) -> anyhow::Result<()> {
    let pep440 = version.pep440();
    let dir = crate::target_dir(sh).join("xtask").join(format!("verify-{version}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let result = verify_in(sh, python, config, version, expected, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    println!("verified gati {version} (Python {pep440}) from outside: index, registry, pip install, gati start");
    Ok(())
}

fn verify_in(
    sh: &Shell,
    python: &Path,
    config: &Config,
    version: &ReleaseVersion,
    expected: &Expected,
    dir: &Path,
) -> anyhow::Result<()> {
    let pep440 = version.pep440();
    let simple = &config.index_simple;

    // 1. The index.
    let listed = python::files_of_version(simple, &pep440)?;
    let mut problems = Vec::new();
    for name in python::dist_names(&pep440) {
        if !listed.iter().any(|(n, _)| *n == name) {
            problems.push(format!("the index at {simple} does not list {name}"));
        }
    }
    for (name, sha) in &expected.files {
        match listed.iter().find(|(n, _)| n == name) {
            Some((_, listed_sha)) if listed_sha != sha => {
                problems.push(format!("the index serves {name} with sha256 {listed_sha}, the release uploaded {sha}"))
            }
            _ => {}
        }
    }
    if !problems.is_empty() {
        bail!("gati {version} does not verify:\n  - {}", problems.join("\n  - "));
    }

    // 2. The wheel users get, and what it pins.
    let venv = dir.join("venv");
    cmd!(sh, "{python} -m venv {venv}").quiet().run().context("creating a fresh venv")?;
    let pip = venv.join("bin").join("pip");
    let requirement = format!("{}=={pep440}", python::PROJECT);
    let quiet = ["--quiet", "--disable-pip-version-check", "--no-cache-dir"];
    let downloads = dir.join("downloads");
    cmd!(sh, "{pip} download {quiet...} --no-deps --index-url {simple} --dest {downloads} {requirement}")
        .quiet()
        .run()
        .with_context(|| format!("downloading {requirement} from {simple}"))?;
    let wheel = downloads.join(&python::dist_names(&pep440)[0]);
    let sha = python::sha256(sh, &wheel)?;
    let listed_sha = listed.iter().find(|(n, _)| wheel.ends_with(n)).map(|(_, s)| s.as_str());
    if listed_sha != Some(sha.as_str()) {
        problems.push(format!("the index lists the wheel with sha256 {listed_sha:?} but serves bytes with {sha}"));
    }
    let (wheel_version, references) = python::wheel_pins(sh, python, &wheel)?;
    if wheel_version != pep440 {
        problems.push(format!("the wheel's version.py says {wheel_version}, not {pep440}"));
    }
    let registry = Registry::new(&config.registry, None);
    for reference in &references {
        problems.extend(check_pin(&registry, config, version, reference, expected.revision.as_deref())?);
    }
    for service in &config.services {
        let name = format!("{}/{}/gati-{service}:", config.registry, config.namespace);
        let pins = references.iter().filter(|r| r.starts_with(&name)).count();
        if pins != 1 {
            problems.push(format!("the wheel pins {pins} images for {service}, not one ({name}{version}@sha256:…)"));
        }
    }
    if !problems.is_empty() {
        bail!("gati {version} does not verify:\n  - {}", problems.join("\n  - "));
    }
    for reference in &references {
        println!("  pinned   {reference}: served by the registry, labelled {version}");
    }

    // 3. What a user runs.
    cmd!(sh, "{pip} install {quiet...} --index-url {simple} {requirement}")
        .quiet()
        .run()
        .with_context(|| format!("pip install {requirement} from {simple}"))?;
    let gati = venv.join("bin").join("gati");
    let ports: Vec<u16> = (0..3).map(|_| sandbox::free_port()).collect::<Result<_, _>>()?;
    let project = format!("gati-verify-{}", std::process::id());
    let docker_config = dir.join("docker-config");
    std::fs::create_dir_all(&docker_config)?;
    let stack_env = [
        ("DOCKER_CONFIG", docker_config.display().to_string()),
        ("GATI_PROJECT", project.clone()),
        ("GATI_BACKEND_PORT", ports[0].to_string()),
        ("GATI_DASHBOARD_PORT", ports[1].to_string()),
        ("GATI_MCP_PORT", ports[2].to_string()),
    ];
    let started = with_env(cmd!(sh, "{gati} start --detach --pull always"), &stack_env).quiet().ignore_stdout().run();
    let health = started.map_err(anyhow::Error::from).and_then(|()| {
        let url = format!("http://127.0.0.1:{}/health", ports[0]);
        Ok(cmd!(sh, "curl --silent --show-error --max-time 5 {url}").quiet().read()?)
    });
    let _ = with_env(cmd!(sh, "{gati} stop"), &stack_env).quiet().ignore_stdout().ignore_stderr().run();
    let volume = format!("{project}_gati-data");
    let _ = cmd!(sh, "docker volume rm {volume}").quiet().ignore_stdout().ignore_stderr().run();
    let health = health.with_context(|| format!("gati {pep440}, installed from {simple}, did not start"))?;
    let answer: serde_json::Value =
        serde_json::from_str(&health).with_context(|| format!("/health answered {health}"))?;
    if answer["version"].as_str() != Some(&version.to_string()) {
        bail!("gati {pep440} started, but its backend reports {health}, not version {version}");
    }
    println!("  started  gati {pep440} from {simple}: /health reports {version}");
    Ok(())
}

/// A user's `gati` command: its own ports, project and Docker client configuration, no mirror.
fn with_env<'a>(command: xshell::Cmd<'a>, env: &[(&str, String)]) -> xshell::Cmd<'a> {
    command.env_remove("GATI_IMAGE_PREFIX").envs(env.iter().map(|(k, v)| (k, v)))
}

/// What is wrong with one pinned reference, `registry/namespace/gati-<service>:X@sha256:…`.
fn check_pin(
    registry: &Registry,
    config: &Config,
    version: &ReleaseVersion,
    reference: &str,
    revision: Option<&str>,
) -> anyhow::Result<Vec<String>> {
    let Some((name, digest)) = reference.split_once('@') else {
        return Ok(vec![format!("the wheel names {reference}, which is not pinned by digest")]);
    };
    let prefix = format!("{}/", config.registry);
    let Some(repo_and_tag) = name.strip_prefix(&prefix) else {
        return Ok(vec![format!("the wheel pins {reference}, not an image on {}", config.registry)]);
    };
    let (repo, tag) = repo_and_tag.rsplit_once(':').unwrap_or((repo_and_tag, ""));
    let mut problems = Vec::new();
    if tag != version.to_string() || !repo.starts_with(&format!("{}/gati-", config.namespace)) {
        problems
            .push(format!("the wheel pins {reference}, not {}/{}/gati-…:{version}", config.registry, config.namespace));
    }
    match registry.remote(repo, digest)? {
        None => problems.push(format!("{name}@{digest}: the registry does not serve this digest")),
        Some(image) => {
            if image.version.as_deref() != Some(&version.to_string()) {
                problems.push(format!("{name}@{digest} is labelled version {:?}, not {version}", image.version));
            }
            if let Some(revision) = revision.filter(|r| image.revision.as_deref() != Some(*r)) {
                problems.push(format!("{name}@{digest} was built from {:?}, not {revision}", image.revision));
            }
        }
    }
    match registry.digest(repo, tag)? {
        Some(now) if now != digest => problems.push(format!(
            "the tag {name} was moved: it points at {now}, the release pinned {digest} (users of gati {} still run \
             the pinned bytes; whoever pushed over an immutable tag must put it back)",
            version.pep440()
        )),
        None => problems.push(format!("the tag {name} is gone from the registry (the pinned digest is what counts)")),
        Some(_) => {}
    }
    Ok(problems)
}
