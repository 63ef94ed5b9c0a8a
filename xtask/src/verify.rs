//! `cargo xtask verify VERSION`: a release, checked from outside as a user meets it, on any
//! machine, with no journal.
//!
//! 1. The index has the wheel and the sdist of VERSION, with the sha256s the release uploaded
//!    (when run by the release).
//! 2. A fresh venv `pip install gati==VERSION` from the index gets the wheel, with the sha256
//!    the index lists. Its compose file pins every image as `…/gati-<service>:VERSION@sha256:…`;
//!    the registry serves each digest, labelled with VERSION (and the release's commit), and the
//!    tag VERSION still points at it: a moved tag is named.
//! 3. `gati start` pulls the pinned images; `/health` reports VERSION. Then everything is
//!    stopped and removed.
//!
//! The registry is read as a user of a public image reads it: anonymously. Where it refuses
//! anonymous reads (htpasswd, private packages), verify reads it, and `gati start` pulls, with
//! the release's credentials (`DOCKER_USERNAME`/`DOCKER_PASSWORD`), and says that users of that
//! registry must `docker login` first.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use xshell::{cmd, Shell};

mod attestations;
mod rebuild;

use crate::{
    flags,
    model::{
        config::{self, Config},
        version::ReleaseVersion,
    },
    ops::{
        docker, interrupt, provision,
        retry::{self, Backoff},
        sandbox,
    },
    python::{index, package::Pins, IndexFile},
    registry::{Credentials, Registry},
};

impl flags::Verify {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        // Ctrl-C stops what runs and everything verify started is stopped and removed.
        interrupt::install();
        let config = config::load_default(sh)?;
        let version = ReleaseVersion::parse(self.version.strip_prefix('v').unwrap_or(&self.version))?;
        if self.json {
            let registry = Registry::new(&config.registry, Credentials::from_env());
            let world = crate::release::manifest::world(&registry, &config, &version)?;
            println!("{}", serde_json::to_string_pretty(&world)?);
            return Ok(());
        }
        yank_state(sh, &config, &version)?;
        let python = provision::python_tools(sh)?;
        let _dockerd = provision::Dockerd::ensure(sh)?;
        verify(sh, &python, &config, &version, &Expected { rebuild: self.rebuild, ..Expected::default() })
    }
}

/// Whether `version` is yanked: as origin records it (`cargo xtask yank`), and as the index
/// says through PEP 691's JSON simple API (its `yanked` field). An index that answers only
/// HTML (pypiserver) cannot say: then that is what is printed, never a guess.
fn yank_state(sh: &Shell, config: &Config, version: &ReleaseVersion) -> anyhow::Result<()> {
    let yanks = crate::ops::yanks::Yanks::read(sh);
    match yanks.of(version) {
        Ok(Some(yank)) => println!("  yank     recorded on origin on {}: {:?}", yank.when, yank.reason),
        Ok(None) => println!("  yank     none recorded on origin"),
        Err(e) => println!("  yank     {e:#}"),
    }
    let said = crate::yank::index_says(config, version)?;
    println!("  index    {said}");
    Ok(())
}

/// What the release itself knows it published, checked too when given.
#[derive(Default)]
pub struct Expected {
    /// The commit the images were built from.
    pub revision: Option<String>,
    /// The uploaded files.
    pub files: Vec<IndexFile>,
    /// Rebuild the images from the tag and compare their digests with the pins.
    pub rebuild: bool,
}

/// Who reads the registry and pulls the images: anyone, or only an account.
enum Access {
    Anonymous,
    /// The registry refuses anonymous reads: the release's own account.
    Login(Credentials),
}

pub fn verify(
    sh: &Shell,
    python: &Path,
    config: &Config,
    version: &ReleaseVersion,
    expected: &Expected,
) -> anyhow::Result<()> {
    let pep440 = version.pep440();
    let dir = crate::ops::shell::target_dir(sh).join("xtask").join(format!("verify-{version}-{}", std::process::id()));
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
    let listed = check_index(config, version, expected)?;
    let venv = dir.join("venv");
    let mut problems = install(sh, python, config, version, &listed, dir, &venv)?;
    let pins = Pins::of(sh, python, &installed_package(&venv)?)?;
    if pins.version != version.pep440() {
        problems.push(format!("the installed gati/version.py says {}, not {}", pins.version, version.pep440()));
    }
    let access = access(config, &pins.images)?;
    let registry = Registry::new(&config.registry, access.credentials());
    for reference in &pins.images {
        problems.extend(check_pin(&registry, config, version, reference, expected.revision.as_deref())?);
    }
    problems.extend(one_pin_per_service(config, version, &pins.images));
    if problems.is_empty() {
        problems.extend(attested(sh, &registry, config, &pins.images, expected.revision.as_deref(), dir)?);
    }
    if expected.rebuild && problems.is_empty() {
        problems.extend(rebuild::compare(sh, config, &registry, version, &pins.images)?);
    }
    if !problems.is_empty() {
        bail!("gati {version} does not verify:\n  - {}", problems.join("\n  - "));
    }
    for reference in &pins.images {
        println!("  pinned   {reference}: served by the registry, labelled {version}");
    }
    start(sh, config, version, &venv, &access)
}

/// The index lists both files of the version, with the sha256s the release uploaded.
fn check_index(config: &Config, version: &ReleaseVersion, expected: &Expected) -> anyhow::Result<Vec<IndexFile>> {
    let (pep440, simple) = (version.pep440(), &config.index_simple);
    let listed = index::files_of_version(simple, &pep440)?;
    let mut problems = Vec::new();
    for name in index::dist_names(&pep440) {
        if !listed.iter().any(|f| f.name == name) {
            problems.push(format!("the index at {simple} does not list {name}"));
        }
    }
    for file in &expected.files {
        if let Some(theirs) = listed.iter().find(|f| f.name == file.name && f.sha256 != file.sha256) {
            problems.push(format!(
                "the index serves {} with sha256 {}, the release uploaded {}",
                file.name, theirs.sha256, file.sha256
            ));
        }
    }
    if !problems.is_empty() {
        bail!("gati {version} does not verify:\n  - {}", problems.join("\n  - "));
    }
    Ok(listed)
}

/// A fresh venv without pip of its own (seconds faster); the tools' pip installs into it,
/// reporting what it downloaded: pip checks the bytes against the sha256 the index lists, and
/// the report names the file and its sha256. Returns what is wrong with what was installed.
fn install(
    sh: &Shell,
    python: &Path,
    config: &Config,
    version: &ReleaseVersion,
    listed: &[IndexFile],
    dir: &Path,
    venv: &Path,
) -> anyhow::Result<Vec<String>> {
    let (pep440, simple) = (version.pep440(), &config.index_simple);
    cmd!(sh, "{python} -m venv --without-pip {venv}").quiet().run().context("creating a fresh venv")?;
    let venv_python = venv.join("bin").join("python");
    let requirement = format!("{}=={pep440}", index::PROJECT);
    let quiet = ["--quiet", "--disable-pip-version-check", "--no-cache-dir"];
    let report = dir.join("pip-report.json");
    // pip retries a lost connection and some 5xx by itself, but not a 429: again, while it fails
    // for a passing reason.
    let mut backoff = Backoff::default();
    loop {
        let pip = cmd!(
            sh,
            "{python} -m pip --python {venv_python} install {quiet...} --index-url {simple} --report {report} {requirement}"
        )
        .quiet();
        let output = interrupt::output_of(pip.into())?;
        if output.status.success() {
            break;
        }
        let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        let failed = || format!("pip install {requirement} from {simple}: {}", said.trim());
        // pip says no more than that it found nothing when its read of the listing failed (a
        // 429 it does not retry): the index listed the wheel a moment ago, so that is passing.
        let unread = said.contains("No matching distribution found")
            && listed.iter().any(|f| f.name == index::dist_names(&pep440)[0]);
        let transient = retry::transient_failure(&said).or(unread.then(|| "the listing was not read".to_string()));
        match transient {
            Some(why) => backoff.wait(&format!("pip install {requirement}: {why}"), None).with_context(failed)?,
            None => bail!("{}", failed()),
        }
    }
    let report: serde_json::Value = serde_json::from_str(&sh.read_file(&report)?).context("reading pip's report")?;
    let (file, sha) = installed_file(&report)?;
    let wheel = &index::dist_names(&pep440)[0];
    let listed_sha = listed.iter().find(|f| f.name == file).map(|f| f.sha256.as_str());
    Ok(if file != *wheel {
        vec![format!("pip installed {file}, not the wheel {wheel}")]
    } else if listed_sha != Some(sha.as_str()) {
        vec![format!("the index lists {file} with sha256 {listed_sha:?} but served bytes with {sha}")]
    } else {
        vec![]
    })
}

/// Anonymous, as a user of a public image reads; the release's credentials where the registry
/// refuses the anonymous.
fn access(config: &Config, pinned: &[String]) -> anyhow::Result<Access> {
    let Some(repo) = pinned.iter().find_map(|r| repository(config, r)) else { return Ok(Access::Anonymous) };
    if Registry::new(&config.registry, None).reads_anonymously(&repo)? {
        return Ok(Access::Anonymous);
    }
    let Some(credentials) = Credentials::from_env() else {
        bail!(
            "{} refuses anonymous reads of {repo}: set DOCKER_USERNAME and DOCKER_PASSWORD to an account that may pull \
             (its users must `docker login {}` before `gati start`)",
            config.registry,
            config.registry
        );
    };
    println!(
        "  {} refuses anonymous reads: verifying as {:?}, as its users must (`docker login {}` before `gati start`)",
        config.registry, credentials.user, config.registry
    );
    Ok(Access::Login(credentials))
}

impl Access {
    fn credentials(&self) -> Option<Credentials> {
        match self {
            Access::Anonymous => None,
            Access::Login(credentials) => Some(credentials.clone()),
        }
    }
}

/// `namespace/gati-<service>` of a pinned reference on the configured registry.
fn repository(config: &Config, reference: &str) -> Option<String> {
    let name = reference.split('@').next()?.strip_prefix(&format!("{}/", config.registry))?;
    Some(name.rsplit_once(':').map_or(name, |(repo, _)| repo).to_string())
}

/// The wheel pins exactly one image of each service.
fn one_pin_per_service(config: &Config, version: &ReleaseVersion, pinned: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    for service in &config.services {
        let name = format!("{}/{}/gati-{service}:", config.registry, config.namespace);
        let pins = pinned.iter().filter(|r| r.starts_with(&name)).count();
        if pins != 1 {
            problems.push(format!("the wheel pins {pins} images for {service}, not one ({name}{version}@sha256:…)"));
        }
    }
    problems
}

/// What a user runs: `gati start` from the fresh venv, on free ports, pulling the pinned images
/// (with a private login where the registry needs one); `/health` must report the version.
/// Everything it started is stopped and removed.
fn start(sh: &Shell, config: &Config, version: &ReleaseVersion, venv: &Path, access: &Access) -> anyhow::Result<()> {
    let (pep440, simple) = (version.pep440(), &config.index_simple);
    let gati = venv.join("bin").join("gati");
    let ports: Vec<u16> = (0..4).map(|_| sandbox::free_port()).collect::<Result<_, _>>()?;
    let project = format!("gati-verify-{}", std::process::id());
    let login = match access {
        Access::Login(credentials) => Some(docker::Login::new(sh, &config.registry, credentials)?),
        Access::Anonymous => None,
    };
    let docker_config = match &login {
        Some(login) => login.dir.clone(),
        None => empty_docker_config(venv)?,
    };
    let stack_env = [
        ("DOCKER_CONFIG", docker_config.display().to_string()),
        ("GATI_PROJECT", project.clone()),
        ("GATI_BACKEND_PORT", ports[0].to_string()),
        ("GATI_DASHBOARD_PORT", ports[1].to_string()),
        ("GATI_MCP_PORT", ports[2].to_string()),
        ("GATI_OTLP_PORT", ports[3].to_string()),
    ];
    let started = start_stack(sh, &gati, &stack_env);
    let health = started.and_then(|()| {
        let url = format!("http://127.0.0.1:{}/health", ports[0]);
        Ok(cmd!(sh, "curl --silent --show-error --max-time 5 {url}").quiet().read()?)
    });
    let _ = with_env(cmd!(sh, "{gati} stop"), &stack_env).quiet().ignore_stdout().ignore_stderr().run();
    let volume = format!("{project}_gati-data");
    let _ = cmd!(sh, "docker volume rm {volume}").quiet().ignore_stdout().ignore_stderr().run();
    drop(login);
    let health = health.with_context(|| format!("gati {pep440}, installed from {simple}, did not start"))?;
    let answer: serde_json::Value =
        serde_json::from_str(&health).with_context(|| format!("/health answered {health}"))?;
    if answer["version"].as_str() != Some(&version.to_string()) {
        bail!("gati {pep440} started, but its backend reports {health}, not version {version}");
    }
    println!("  started  gati {pep440} from {simple}: /health reports {version}");
    Ok(())
}

/// `gati start`, again while its pull fails for a passing reason (the registry's 5xx, 429, a
/// dropped connection), within GATI_RETRY_SECONDS; stopped when the user interrupts.
fn start_stack(sh: &Shell, gati: &Path, stack_env: &[(&str, String)]) -> anyhow::Result<()> {
    let mut backoff = Backoff::default();
    loop {
        let start = with_env(cmd!(sh, "{gati} start --detach --pull always"), stack_env).quiet();
        let output = interrupt::output_of(start.into())?;
        if output.status.success() {
            return Ok(());
        }
        let said = String::from_utf8_lossy(&output.stderr).trim().to_string();
        let Some(why) = retry::transient_failure(&said) else { bail!("`gati start` failed: {said}") };
        let _ = with_env(cmd!(sh, "{gati} stop"), stack_env).quiet().ignore_stdout().ignore_stderr().run();
        backoff
            .wait(&format!("`gati start` could not pull: {why}"), None)
            .with_context(|| format!("`gati start` failed: {said}"))?;
    }
}

/// A Docker client configuration with no login, beside the venv: a user who never logged in.
fn empty_docker_config(venv: &Path) -> anyhow::Result<PathBuf> {
    let dir = venv.with_file_name("docker-config");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The file pip installed `gati` from, and its sha256, from pip's installation report.
fn installed_file(report: &serde_json::Value) -> anyhow::Result<(String, String)> {
    let entries = report["install"].as_array().context("pip's report lists no installs")?;
    let gati = entries
        .iter()
        .find(|e| e["metadata"]["name"].as_str() == Some(index::PROJECT))
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
fn installed_package(venv: &Path) -> anyhow::Result<PathBuf> {
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
    let Some(repo) = repository(config, reference) else {
        return Ok(vec![format!("the wheel pins {reference}, not an image on {}", config.registry)]);
    };
    let tag = name.rsplit_once(':').map_or("", |(_, tag)| tag);
    let mut problems = Vec::new();
    if tag != version.to_string() || !repo.starts_with(&format!("{}/gati-", config.namespace)) {
        problems
            .push(format!("the wheel pins {reference}, not {}/{}/gati-…:{version}", config.registry, config.namespace));
    }
    match registry.remote(&repo, digest)? {
        None => problems.push(format!("{name}@{digest}: the registry does not serve this digest")),
        Some(image) => {
            if image.version.as_deref() != Some(&version.to_string()) {
                problems.push(format!("{name}@{digest} is labelled version {:?}, not {version}", image.version));
            }
            if let Some(revision) = revision.filter(|r| image.revision.as_deref() != Some(*r)) {
                problems.push(format!("{name}@{digest} was built from {:?}, not {revision}", image.revision));
            }
            problems.extend(check_platforms(registry, config, version, &repo, digest, revision)?);
        }
    }
    match registry.digest(&repo, tag)? {
        Some(now) if now != digest => problems.push(format!(
            "the tag {name} was moved: it points at {now}, the release pinned {digest} (users of gati {} still run \
             the pinned bytes; whoever pushed over an immutable tag must put it back)",
            version.pep440()
        )),
        None => problems.push(format!(
            "the tag {name} is gone from the registry: users still get the pinned digest; push the tag back to it \
             (`cargo xtask images --push` from the release's tag)"
        )),
        Some(_) => {}
    }
    Ok(problems)
}

/// The attestations of every pinned index, about the commit the release names (or, run alone,
/// the one its images are labelled with).
fn attested(
    sh: &Shell,
    registry: &Registry,
    config: &Config,
    pinned: &[String],
    revision: Option<&str>,
    dir: &Path,
) -> anyhow::Result<Vec<String>> {
    crate::ops::audit::ensure(sh)?;
    let mut problems = Vec::new();
    for reference in pinned {
        let (Some(repo), Some((_, digest))) = (repository(config, reference), reference.split_once('@')) else {
            continue;
        };
        let labelled = registry.remote(&repo, digest)?.and_then(|r| r.revision);
        let Some(commit) = revision.map(str::to_owned).or(labelled) else {
            problems.push(format!("{reference}: labelled with no revision, so no commit to hold its provenance to"));
            continue;
        };
        problems.extend(attestations::check(sh, registry, &repo, digest, &commit, dir)?);
    }
    Ok(problems)
}

/// Every configured platform has its image in the index: listed under its platform, its config
/// of that architecture, labelled with the version (and the release's commit).
fn check_platforms(
    registry: &Registry,
    config: &Config,
    version: &ReleaseVersion,
    repo: &str,
    digest: &str,
    revision: Option<&str>,
) -> anyhow::Result<Vec<String>> {
    let images = registry.platform_images(repo, digest)?;
    let mut problems = Vec::new();
    for platform in &config.platforms {
        let wanted = format!("{}/{}", platform.os, platform.architecture);
        let Some(image) = images.iter().find(|i| i.listed_as.as_deref().unwrap_or(&i.platform) == wanted) else {
            problems.push(format!("{repo}@{digest} has no image for {}: users there cannot run it", platform.name));
            continue;
        };
        if image.platform != wanted {
            problems.push(format!(
                "{repo}@{digest} lists {} for {wanted}, but its config says {}",
                image.digest, image.platform
            ));
        }
        if image.label("version").as_deref() != Some(&version.to_string()) {
            problems.push(format!(
                "{repo}@{digest}: the {wanted} image is labelled {:?}, not {version}",
                image.label("version")
            ));
        }
        if let Some(revision) = revision.filter(|r| image.label("revision").as_deref() != Some(*r)) {
            problems.push(format!(
                "{repo}@{digest}: the {wanted} image was built from {:?}, not {revision}",
                image.label("revision")
            ));
        }
    }
    if problems.is_empty() {
        println!(
            "  platforms {repo}@{}: {}",
            crate::ops::git::short(digest),
            images.iter().map(|i| i.platform.as_str()).collect::<Vec<_>>().join(", ")
        );
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

    #[test]
    fn a_pin_names_its_repository_on_the_configured_registry() {
        let config = crate::model::config::Config {
            registry: "127.0.0.1:5000".into(),
            namespace: "gatidev".into(),
            services: vec!["backend".into()],
            index: "http://i/".into(),
            index_simple: "http://i/simple/".into(),
            branch: "main".into(),
            platforms: crate::model::platform::PLATFORMS.iter().collect(),
            rust: "1.96.0".into(),
        };
        let pinned = "127.0.0.1:5000/gatidev/gati-backend:0.1.1@sha256:aa";
        assert_eq!(repository(&config, pinned).as_deref(), Some("gatidev/gati-backend"));
        assert_eq!(repository(&config, "docker.io/gatidev/gati-backend:0.1.1@sha256:aa"), None);
        assert!(one_pin_per_service(&config, &ReleaseVersion::parse("0.1.1").unwrap(), &[pinned.into()]).is_empty());
        assert_eq!(one_pin_per_service(&config, &ReleaseVersion::parse("0.1.1").unwrap(), &[]).len(), 1);
    }

    /// A platform missing from an index, and an image labelled for another commit, are named.
    #[test]
    fn every_platform_is_checked_on_the_registry() {
        use crate::images::{assembled, dockerfile::ImageSpec, oci};
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let sh = crate::ops::shell::shell_in(root).unwrap();
        let dir =
            crate::ops::shell::target_dir(&sh).join("xtask").join(format!("test-platforms-{}", std::process::id()));
        let _one = crate::ops::sandbox::one_at_a_time();
        let local = crate::ops::sandbox::LocalRegistry::start(&sh, &dir).unwrap();
        let registry = Registry::new(&local.address, Some(local.credentials.clone()));
        let repo = format!("{}/gati-backend", local.namespace);
        let dockerfile = std::fs::read_to_string(root.join("backend/Dockerfile")).unwrap();
        let args = [("VERSION", "1.2.3"), ("REVISION", "c1")].map(|(k, v)| (k.to_string(), v.to_string())).into();
        let spec = ImageSpec::from_dockerfile(&dockerfile, "gati-backend", &args).unwrap();
        let push = |platforms: &[&'static oci::Platform], tag: &str| {
            let images = (platforms.iter())
                .map(|p| assembled::platform_image(&spec, p, p.name.as_bytes(), "2026-05-01T12:00:00Z").unwrap())
                .collect();
            let index = assembled::Assembled::new("backend", &spec, images).unwrap();
            registry.push_index(&repo, tag, &index.index, &index.manifests(), &index.blobs()).unwrap();
            index.index.digest
        };
        let both = push(&oci::PLATFORMS.iter().collect::<Vec<_>>(), "1.2.3");
        let amd64 = push(&[&oci::PLATFORMS[0]], "amd64-only");
        let config = crate::model::config::Config {
            registry: local.address.clone(),
            namespace: local.namespace.clone(),
            services: vec!["backend".into()],
            index: "http://i/".into(),
            index_simple: "http://i/simple/".into(),
            branch: "main".into(),
            platforms: oci::PLATFORMS.iter().collect(),
            rust: "1.96.0".into(),
        };
        let version = ReleaseVersion::parse("1.2.3").unwrap();
        assert_eq!(
            check_platforms(&registry, &config, &version, &repo, &both, Some("c1")).unwrap(),
            Vec::<String>::new()
        );
        let missing = check_platforms(&registry, &config, &version, &repo, &amd64, Some("c1")).unwrap();
        assert!(missing.len() == 1 && missing[0].contains("has no image for linux/arm64"), "{missing:?}");
        let other = check_platforms(&registry, &config, &version, &repo, &both, Some("c2")).unwrap();
        assert_eq!(other.len(), 2, "each platform's image names the commit it was built from: {other:?}");
        drop(local);
        let _ = std::fs::remove_dir_all(dir);
    }
}
