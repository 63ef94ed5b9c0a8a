//! build: the static binaries of every service for every platform, in one compile; each
//! platform's image assembled as its binary lands, while the rest still compiles, and
//! smoke-tested at once (the host's in Docker, the others' binaries under qemu-user: /health
//! answers the version); each service's image index; and beside it all, a trial sdist and wheel
//! from the release commit, with the package's SBOM. A broken binary, image or package stops the
//! release before anything is public, and the compile is the only wait.
//!
//! Done when every index kept in `target/oci` was built from the release commit, the journal
//! says those very indexes passed the smoke test, and the trial package and its SBOM were built
//! from it.

use std::path::Path;

use anyhow::Context;
use xshell::Shell;

use super::{Release, Step};
use crate::{
    images::{self, assembled::Assembled, Finish},
    model::version::ReleaseVersion,
    python::{self, package::Pin},
};

pub struct Build;

/// The journal's record of the smoke test: the digests of the indexes that passed it.
pub const SMOKE: &str = "smoke";

impl Step for Build {
    fn name(&self) -> &'static str {
        "build"
    }

    fn describe(&self) -> &'static str {
        "binaries for every platform, each image as its binary lands, smoke-tested; a trial package"
    }

    fn is_done(&self, release: &Release, commit: &str) -> anyhow::Result<bool> {
        let (sh, version) = (release.sh, release.version.to_string());
        let mut digests = Vec::new();
        for image in &release.plan.images {
            match Assembled::read(sh, &image.service, commit, &version)? {
                Some(built) => digests.push(built.index.digest),
                None => return Ok(false),
            }
        }
        if release.journal.proof(SMOKE) != Some(digests.join(" ").as_str()) {
            return Ok(false);
        }
        let trial = &release.files.trial;
        Ok(python::package::built_as(trial, commit, &tag_pins(release)) && python::package::sbom_path(trial).exists())
    }

    fn run(&self, release: &mut Release) -> anyhow::Result<()> {
        let (sh, plan) = (release.sh, &release.plan);
        let pins = tag_pins(release);
        let mut lines = images::build_lines(sh, plan)?;
        lines.insert(
            1,
            format!(
                "sdist and wheel of <sdk/ of the release commit, naming {}> into {} (build, no isolation), \
                 twine check --strict, the wheel's pins; its SBOM (cyclonedx-py, of a venv it is installed in)",
                Pin::references(&pins),
                release.files.trial.display()
            ),
        );
        let built = release.exec.run_all(&lines, || build_all(release, &pins))?;
        if let Some(built) = built {
            // Timed apart for `cargo xtask bench release`: compiling the new version is the wait,
            // installing the tools a first release on a machine does once.
            release.journal.time("provision", built.provision)?;
            release.journal.time("compile", built.compile)?;
            let digests: Vec<&str> = built.assembled.iter().map(|a| a.index.digest.as_str()).collect();
            release.journal.record(SMOKE, &digests.join(" "))?;
            print!("{}", images::table(plan, &built.assembled.iter().map(images::Outcome::of).collect::<Vec<_>>()));
        }
        Ok(())
    }
}

/// The compile, the images and their smoke tests on one side, the trial package on the other.
fn build_all(release: &Release, pins: &[Pin]) -> anyhow::Result<images::Built> {
    let (sh, plan, version) = (release.sh, &release.plan, &release.version);
    let (root, trial, python) = (sh.current_dir(), &release.files.trial, &release.python);
    std::thread::scope(|scope| {
        let package = scope.spawn(|| {
            let sh = crate::ops::shell::shell_in(&root)?;
            trial_package(&sh, python, trial, version, pins)
        });
        let images = images::build_all(sh, plan, Finish::ALL);
        let packaged = package.join().map_err(|_| anyhow::anyhow!("the trial package build panicked"))?;
        let built = images?;
        packaged.context("the trial package")?;
        Ok(built)
    })
}

/// The trial package, checked, and its SBOM (made now, beside the compile: the package step's
/// package, which pins digests, has the same one). An SBOM kept from before is removed first,
/// so that a kept SBOM is always the kept trial package's.
fn trial_package(
    sh: &Shell,
    python: &Path,
    trial: &Path,
    version: &ReleaseVersion,
    pins: &[Pin],
) -> anyhow::Result<()> {
    let sbom = python::package::sbom_path(trial);
    let _ = std::fs::remove_file(&sbom);
    python::package::build_checked(sh, python, trial, version, pins)?;
    let made = python::package::sbom(sh, python, trial, version)?;
    // Written whole or not at all: an SBOM that exists is complete.
    let partial = sbom.with_extension("partial");
    std::fs::write(&partial, made).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, &sbom).with_context(|| format!("moving {} to {}", partial.display(), sbom.display()))
}

/// Each service's image by its tag, as the trial package names them.
fn tag_pins(release: &Release) -> Vec<Pin> {
    Pin::of_tags(&release.plan, &release.version)
}
