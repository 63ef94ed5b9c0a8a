//! build: the static binaries; each image as soon as its binary lands, while the rest still
//! compiles; the backend image's /health (the smoke test) as soon as it exists; and beside it
//! all, a trial sdist and wheel from the release commit. A broken binary, image or package
//! stops the release before anything is public, and the compile is the only wait.
//!
//! Done when the local images carry the release commit's revision label, the backend's passed
//! the smoke test (the journal keeps the id of the image that did), and the trial package was
//! built from that commit.

use std::{sync::Mutex, time::Instant};

use anyhow::Context;
use xshell::{cmd, Shell};

use super::{Release, Step};
use crate::{
    images::{self, Plan},
    model::version::ReleaseVersion,
    ops::{cargo, docker, interrupt},
    python::{self, package::Pin},
};

pub struct Build;

/// The journal's record of the smoke test: the id of the backend image that passed it.
pub const SMOKE: &str = "smoke";

impl Step for Build {
    fn name(&self) -> &'static str {
        "build"
    }

    fn describe(&self) -> &'static str {
        "binaries, each image as its binary lands, the backend's /health, a trial package"
    }

    fn is_done(&self, release: &Release, commit: &str) -> anyhow::Result<bool> {
        let (sh, plan) = (release.sh, &release.plan);
        for image in &plan.images {
            let reference = format!("{}:{}", image.reference, release.version);
            if docker::revision(sh, &reference)?.as_deref() != Some(commit) {
                return Ok(false);
            }
        }
        let tested = docker::image_id(sh, &backend_image(plan, &release.version)?)?;
        if tested.is_none() || release.journal.proof(SMOKE) != tested.as_deref() {
            return Ok(false);
        }
        Ok(python::package::built_as(&release.files.trial, commit, &tag_pins(release)))
    }

    fn run(&self, release: &mut Release) -> anyhow::Result<()> {
        let (sh, plan, version) = (release.sh, &release.plan, &release.version);
        let pins = tag_pins(release);
        let backend = backend_image(plan, version)?;
        let mut lines = vec![
            cargo::reporting_build_command(sh, &release.config.services).to_string(),
            format!(
                "sdist and wheel of <sdk/ of the release commit, naming {}> into {} (build, no isolation), \
                 twine check --strict, the wheel's pins",
                Pin::references(&pins),
                release.files.trial.display()
            ),
        ];
        lines.extend(images::build_lines(sh, plan));
        lines
            .push(format!("docker run --detach --rm --publish 127.0.0.1::8000 {backend}, then GET /health: {version}"));
        let built = release.exec.run_all(&lines, || build_all(release, &pins, &backend))?;
        if let Some((compile, id)) = built {
            // Timed apart for `cargo xtask bench release`: compiling the new version is the wait.
            release.journal.time("compile", compile)?;
            release.journal.record(SMOKE, &id)?;
        }
        Ok(())
    }
}

/// The compile, the images and the backend's smoke test on one side, the trial package on the
/// other; returns the compile's seconds and the id of the smoke-tested image.
fn build_all(release: &Release, pins: &[Pin], backend: &str) -> anyhow::Result<(f64, String)> {
    let (sh, plan, version) = (release.sh, &release.plan, &release.version);
    let (root, trial, python) = (sh.current_dir(), &release.files.trial, &release.python);
    let smoke_tested: Mutex<Option<String>> = Mutex::new(None);
    std::thread::scope(|scope| {
        let package = scope.spawn(|| {
            let sh = crate::shell_in(&root)?;
            python::package::build_checked(&sh, python, trial, version, pins)
        });
        let images = images::build_as_compiled(sh, plan, |image, sh| {
            if image.service == "backend" {
                let id = smoke_test(sh, backend, version)?;
                *smoke_tested.lock().unwrap_or_else(|e| e.into_inner()) = Some(id);
            }
            Ok(())
        });
        let packaged = package.join().map_err(|_| anyhow::anyhow!("the trial package build panicked"))?;
        let (_, compile) = images?;
        packaged.context("the trial package")?;
        let id = smoke_tested.into_inner().ok().flatten().context("the backend image was not smoke-tested")?;
        Ok((compile, id))
    })
}

/// Each service's image by its tag, as the trial package names them.
fn tag_pins(release: &Release) -> Vec<Pin> {
    Pin::of_tags(&release.plan, &release.version)
}

/// The backend's image of this version, `registry/namespace/gati-backend:X`: the one the smoke
/// test runs.
fn backend_image(plan: &Plan, version: &ReleaseVersion) -> anyhow::Result<String> {
    let backend = plan.images.iter().find(|i| i.service == "backend").with_context(|| {
        format!(
            "{} [workspace.metadata.release] services has no \"backend\": the release smoke-tests the backend's \
             image, so the services must include it",
            crate::model::config::CONFIG_FILE
        )
    })?;
    Ok(format!("{}:{version}", backend.reference))
}

/// Runs `image` (the new backend) and asks it for /health, which must report `version`; returns
/// the id of the image it tested.
fn smoke_test(sh: &Shell, image: &str, version: &ReleaseVersion) -> anyhow::Result<String> {
    let name = format!("gati-smoke-{}", std::process::id());
    cmd!(sh, "docker run --detach --rm --name {name} --publish 127.0.0.1::8000 {image}")
        .quiet()
        .ignore_stdout()
        .run()?;
    let result = wait_for_health(sh, &name, image, version);
    let _ = cmd!(sh, "docker rm --force {name}").quiet().ignore_stdout().ignore_stderr().run();
    result?;
    docker::image_id(sh, image)?.with_context(|| format!("{image} is gone from Docker after its smoke test"))
}

/// Asks the smoke container's /health until it answers (30 s at most); it must report `version`.
fn wait_for_health(sh: &Shell, name: &str, image: &str, version: &ReleaseVersion) -> anyhow::Result<()> {
    let address = cmd!(sh, "docker port {name} 8000").quiet().read()?;
    let address = address.lines().next().context("the smoke container publishes no port")?.to_string();
    let url = format!("http://{address}/health");
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    loop {
        interrupt::check()?;
        let answer = cmd!(sh, "curl --silent --max-time 2 {url}").quiet().ignore_status().read().unwrap_or_default();
        if let Ok(health) = serde_json::from_str::<serde_json::Value>(&answer) {
            let reported = health["version"].as_str().unwrap_or_default();
            anyhow::ensure!(reported == version.to_string(), "{image} answers {answer}, not version {version}");
            println!("smoke test: {image} answers {answer}");
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{image} did not answer {url} within 30 s: see `docker logs` of a `docker run {image}`"
        );
        interrupt::sleep(std::time::Duration::from_millis(200))?;
    }
}
