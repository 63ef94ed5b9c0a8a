//! `cargo xtask verify VERSION`: a release, checked from outside as a user meets it, on any
//! machine, with no journal and no credentials.
//!
//! 1. The index has the wheel and the sdist of VERSION, with the sha256s the release uploaded
//!    (when run by the release).
//! 2. A fresh venv `pip install gati==VERSION` from the index gets the wheel, with the sha256
//!    the index lists. Its compose file pins every image as `…/gati-<service>:VERSION@sha256:…`;
//!    the registry serves each digest, labelled with VERSION (and the release's commit), and the
//!    tag VERSION still points at it: a moved tag is named.
//! 3. `gati start` pulls the pinned images anonymously; `/health` reports VERSION. Then
//!    everything is stopped and removed.

use std::path::Path;

use anyhow::{bail, Context};
use xshell::{cmd, Shell};

use crate::{
    flags,
    model::config::{self, Config},
    model::version::ReleaseVersion,
    ops::provision,
    ops::sandbox,
    python,
    registry::Registry,
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

    // 2. What a user installs, and what it pins. A fresh venv without pip of its own (seconds
    // faster); the tools' pip installs into it, reporting what it downloaded: pip checks the
    // bytes against the sha256 the index lists, and the report names the file and its sha256.
    let venv = dir.join("venv");
    cmd!(sh, "{python} -m venv --without-pip {venv}").quiet().run().context("creating a fresh venv")?;
    let venv_python = venv.join("bin").join("python");
    let requirement = format!("{}=={pep440}", python::PROJECT);
    let quiet = ["--quiet", "--disable-pip-version-check", "--no-cache-dir"];
    let report = dir.join("pip-report.json");
    cmd!(sh, "{python} -m pip --python {venv_python} install {quiet...} --index-url {simple} --report {report} {requirement}")
        .quiet()
        .run()
        .with_context(|| format!("pip install {requirement} from {simple}"))?;
    let report: serde_json::Value = serde_json::from_str(&sh.read_file(&report)?).context("reading pip's report")?;
    let (file, sha) = installed_file(&report)?;
    let listed_sha = listed.iter().find(|(n, _)| *n == file).map(|(_, s)| s.as_str());
    if file != python::dist_names(&pep440)[0] {
        problems.push(format!("pip installed {file}, not the wheel {}", python::dist_names(&pep440)[0]));
    } else if listed_sha != Some(sha.as_str()) {
        problems.push(format!("the index lists {file} with sha256 {listed_sha:?} but served bytes with {sha}"));
    }
    let pins = python::Pins::of(sh, python, &installed_package(&venv)?)?;
    if pins.version != pep440 {
        problems.push(format!("the installed gati/version.py says {}, not {pep440}", pins.version));
    }
    let references = pins.images;
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

/// The file pip installed `gati` from, and its sha256, from pip's installation report.
fn installed_file(report: &serde_json::Value) -> anyhow::Result<(String, String)> {
    let entries = report["install"].as_array().context("pip's report lists no installs")?;
    let gati = entries
        .iter()
        .find(|e| e["metadata"]["name"].as_str() == Some(python::PROJECT))
        .context("pip's report does not list gati")?;
    let url = gati["download_info"]["url"].as_str().context("pip's report has no URL for gati")?;
    let file = url.rsplit('/').next().unwrap_or(url).split('#').next().unwrap_or_default();
    let archive = &gati["download_info"]["archive_info"];
    let sha = match archive["hashes"]["sha256"].as_str() {
        Some(sha) => sha.to_string(),
        None => archive["hash"].as_str().and_then(|h| h.strip_prefix("sha256=")).unwrap_or_default().to_string(),
    };
    anyhow::ensure!(!sha.is_empty(), "pip's report has no sha256 for {file}");
    Ok((file.to_string(), sha))
}

/// The directory of the `gati` package installed in `venv`.
fn installed_package(venv: &Path) -> anyhow::Result<std::path::PathBuf> {
    for entry in std::fs::read_dir(venv.join("lib"))? {
        let package = entry?.path().join("site-packages").join("gati");
        if package.is_dir() {
            return Ok(package);
        }
    }
    bail!("gati is not installed in {}", venv.display())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pip_report_names_the_file_installed_and_its_sha256() {
        let report = |url: &str, archive: serde_json::Value| {
            serde_json::json!({"version": "1", "install": [
                {"metadata": {"name": "langchain-core"}, "download_info": {"url": "http://i/x.whl", "archive_info": {}}},
                {"metadata": {"name": "gati", "version": "0.1.1"}, "download_info": {"url": url, "archive_info": archive}},
            ]})
        };
        let wheel = report(
            "http://127.0.0.1:1/packages/gati-0.1.1-py3-none-any.whl",
            serde_json::json!({"hashes": {"sha256": "ab"}}),
        );
        assert_eq!(installed_file(&wheel).unwrap(), ("gati-0.1.1-py3-none-any.whl".into(), "ab".into()));
        // Older pips give only `hash`; a link's fragment is not part of the name.
        let sdist = report("http://i/gati-0.1.1.tar.gz#sha256=cd", serde_json::json!({"hash": "sha256=cd"}));
        assert_eq!(installed_file(&sdist).unwrap(), ("gati-0.1.1.tar.gz".into(), "cd".into()));
        assert!(installed_file(&report("http://i/gati-0.1.1.tar.gz", serde_json::json!({}))).is_err());
        assert!(installed_file(&serde_json::json!({"install": []})).is_err());
    }
}
