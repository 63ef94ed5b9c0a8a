//! package: the sdist and wheel users install, whose compose file pins every image by tag and
//! by the digest verified on the registry (`…/gati-backend:X@sha256:…`), so `gati start` runs
//! exactly the released bytes even if a tag is moved later; `twine check`; and the release
//! files for the GitHub Release. Done when the kept package was built from the release commit
//! naming exactly the digests the registry serves.

use std::path::Path;

use anyhow::Context;

use super::{Release, Step};
use crate::{
    images::{self, attest, attest_check},
    model::{changelog, version::ReleaseVersion},
    ops::git,
    python::{package::Pin, IndexFile},
};

pub struct Package;

impl Step for Package {
    fn name(&self) -> &'static str {
        "package"
    }

    fn describe(&self) -> &'static str {
        "sdist and wheel pinning every image by tag and verified digest; twine check"
    }

    fn is_done(&self, release: &Release, commit: &str) -> anyhow::Result<bool> {
        Ok(match verified_pins(release) {
            Ok(pins) => crate::python::package::built_as(&release.files.dist, commit, &pins),
            Err(_) => false,
        })
    }

    fn run(&self, release: &mut Release) -> anyhow::Result<()> {
        let what = format!(
            "sdist and wheel of <sdk/ of the release commit, pinning {} by their verified digests> into {} \
             (build, no isolation), twine check --strict, the wheel's pins; the release files in {}",
            Pin::references(&Pin::of_tags(&release.plan, &release.version)),
            release.files.dist.display(),
            release.files.release.display()
        );
        release.exec.run(&what, || {
            let pins = verified_pins(release)?;
            let (sh, version) = (release.sh, &release.version);
            crate::python::package::build_checked(sh, &release.python, &release.files.dist, version, &pins)?;
            for pin in &pins {
                println!("pinned {}", pin.reference);
            }
            write_release_files(release, &pins)
        })?;
        Ok(())
    }
}

/// The references the package pins: the digests the registry serves for this version.
fn verified_pins(release: &Release) -> anyhow::Result<Vec<Pin>> {
    let tag = release.version.to_string();
    let digests = release.plan.each_image(|_, image, registry| {
        registry.digest(&image.repo, &tag)?.with_context(|| {
            format!("{}:{tag} is not on the registry: the push-images step puts it there", image.reference)
        })
    })?;
    Ok(Pin::of_digests(&release.plan, &release.version, &digests))
}

/// The files of the release, together, for a GitHub Release: the sdist and the wheel,
/// `SHA256SUMS`, `digests.txt` (the pinned image references) and `NOTES.md` (the changelog
/// section, the images, the `pip install` line).
fn write_release_files(release: &Release, pins: &[Pin]) -> anyhow::Result<()> {
    let (sh, dir) = (release.sh, &release.files.release);
    if dir.exists() {
        sh.remove_path(dir)?;
    }
    sh.create_dir(dir)?;
    let mut sums = String::new();
    for file in IndexFile::of_dir(sh, &release.files.dist)? {
        sh.copy_file(release.files.dist.join(&file.name), dir.join(&file.name))?;
        sums.push_str(&format!("{}  {}\n", file.sha256, file.name));
    }
    sh.write_file(dir.join("SHA256SUMS"), sums)?;
    let digests: String = pins.iter().map(|p| format!("{}\n", p.reference)).collect();
    sh.write_file(dir.join("digests.txt"), &digests)?;
    let recorded = sh.read_file(changelog::CHANGELOG).ok().and_then(|c| changelog::section_of(&c, &release.version));
    let section = match recorded {
        Some(section) => section,
        None => changelog::section(&git::cliff(sh, &release.python, &release.version)?, &release.version),
    };
    let images: String = pins.iter().map(|p| format!("- `{}`\n", p.reference)).collect();
    let notes = format!(
        "{}\n### Images, pinned by digest\n\n{images}\nEach image index carries, per platform, an SBOM and a SLSA \
         provenance statement (also attached here as `*.cdx.json` and `*.provenance.json`).\n",
        section.trim_end()
    );
    sh.write_file(dir.join("NOTES.md"), notes)?;
    // The registry's reads beside the package's SBOM (local processes).
    let (plan, version, files) = (&release.plan, &release.version, &release.files.release);
    std::thread::scope(|scope| {
        let attestations = scope.spawn(|| attestation_files(plan, version, files, pins));
        let sbom = python_sbom(release);
        let attestations = attestations.join().map_err(|_| anyhow::anyhow!("reading the attestations panicked"))?;
        sbom.and(attestations)
    })?;
    println!("release files: {}", dir.display());
    Ok(())
}

/// Each image's statements, as the registry serves them: `gati-<service>-X-<arch>.cdx.json`
/// (the SBOM's predicate, CycloneDX) and `….provenance.json` (the whole in-toto statement).
/// Every image's read side by side.
fn attestation_files(plan: &images::Plan, version: &ReleaseVersion, dir: &Path, pins: &[Pin]) -> anyhow::Result<()> {
    plan.each_image(|_, image, registry| {
        let Some(pin) = pins.iter().find(|p| p.service == image.service) else { return Ok(()) };
        let Some((_, digest)) = pin.reference.split_once('@') else { return Ok(()) };
        let index = registry.blob_or_manifest(&image.repo, digest)?;
        let (platforms, _) =
            attest_check::read(&pin.reference, &index, &mut |d| registry.blob_or_manifest(&image.repo, d))?;
        for platform in platforms {
            let arch = platform.platform.rsplit('/').next().unwrap_or("unknown");
            let stem = format!("gati-{}-{version}-{arch}", pin.service);
            for statement in &platform.statements {
                let (name, value) = match statement["predicateType"].as_str() {
                    Some(attest::CYCLONEDX) => (format!("{stem}.cdx.json"), &statement["predicate"]),
                    Some(attest::SLSA_PROVENANCE_V1) => (format!("{stem}.provenance.json"), statement),
                    _ => continue,
                };
                std::fs::write(dir.join(name), serde_json::to_vec_pretty(value)?)?;
            }
        }
        Ok(())
    })?;
    Ok(())
}

/// The Python package's SBOM, `gati-X.cdx.json`: the environment a user gets, the wheel
/// installed by name (so that no path of this machine is named) into a fresh venv.
fn python_sbom(release: &Release) -> anyhow::Result<()> {
    let (sh, python) = (release.sh, &release.python);
    let venv = release.files.release.with_extension("sbom-venv");
    let _ = std::fs::remove_dir_all(&venv);
    xshell::cmd!(sh, "{python} -m venv --without-pip {venv}").quiet().run().context("a venv for the package's SBOM")?;
    let (venv_python, dist) = (venv.join("bin").join("python"), &release.files.dist);
    let requirement = format!("gati=={}", release.version.pep440());
    let quiet = ["--quiet", "--disable-pip-version-check", "--no-index"];
    xshell::cmd!(sh, "{python} -m pip --python {venv_python} install {quiet...} --find-links {dist} {requirement}")
        .quiet()
        .run()
        .context("installing the wheel for its SBOM")?;
    let epoch = xshell::cmd!(sh, "git show -s --format=%ct HEAD").quiet().read()?.parse()?;
    let sbom = crate::ops::audit::python_sbom(sh, python, &venv_python, epoch)?;
    let _ = std::fs::remove_dir_all(&venv);
    let name = format!("gati-{}.cdx.json", release.version.pep440());
    std::fs::write(release.files.release.join(name), sbom)?;
    Ok(())
}
