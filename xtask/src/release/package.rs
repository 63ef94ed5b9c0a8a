//! package: the sdist and wheel users install, whose compose file pins every image by tag and
//! by the digest verified on the registry (`…/gati-backend:X@sha256:…`), so `gati start` runs
//! exactly the released bytes even if a tag is moved later; `twine check`; and the release
//! files for the GitHub Release. Done when the kept package was built from the release commit
//! naming exactly the digests the registry serves, and the kept release files name them too.

use std::path::Path;

use anyhow::Context;

use super::{Release, Step};
use crate::{
    images::{
        assembled::Assembled,
        attest::{self, check as attest_check},
    },
    model::changelog,
    ops::git,
    python::{
        package::{self, Pin},
        IndexFile,
    },
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
            Ok(pins) => package::built_as(&release.files.dist, commit, &pins) && release_files_name(release, &pins),
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
            let (sh, version, dist) = (release.sh, &release.version, &release.files.dist);
            if package::built_as(dist, &release.plan.head.commit, &pins) {
                println!("the package built beside the push pins exactly these digests: kept");
            } else {
                package::build_checked(sh, &release.python, dist, version, &pins)?;
            }
            for pin in &pins {
                println!("pinned {}", pin.reference);
            }
            write_release_files(release, &pins)
        })?;
        Ok(())
    }
}

/// What the push step prints for the package it builds beside the push: the package as this
/// step will build it, from the digests of the indexes built here, which the registry serves
/// once they are pushed (a digest is the hash of the bytes sent). Nothing of it is public: this
/// step checks the registry's digests against its stamp, and builds again if they differ.
pub fn prebuild_line(release: &Release) -> String {
    format!(
        "sdist and wheel pinning {} by the digests of the indexes being pushed (when all were built here), into {}, \
         beside the push (the package step keeps them if the registry serves those digests)",
        Pin::references(&Pin::of_tags(&release.plan, &release.version)),
        release.files.dist.display()
    )
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
/// section, the images, the `pip install` line). Written beside, then moved in place: the folder
/// is complete or absent.
fn write_release_files(release: &Release, pins: &[Pin]) -> anyhow::Result<()> {
    let (sh, kept) = (release.sh, &release.files.release);
    let dir = &std::path::PathBuf::from(format!("{}.new", kept.display()));
    for path in [dir, kept] {
        if path.exists() {
            sh.remove_path(path)?;
        }
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
    python_sbom(release, dir)?;
    attestation_files(release, dir, pins)?;
    std::fs::rename(dir, kept).with_context(|| format!("moving {} to {}", dir.display(), kept.display()))?;
    println!("release files: {}", kept.display());
    Ok(())
}

/// Whether the kept release files name exactly `pins` (they are written whole or not at all).
fn release_files_name(release: &Release, pins: &[Pin]) -> bool {
    let digests: String = pins.iter().map(|p| format!("{}\n", p.reference)).collect();
    std::fs::read_to_string(release.files.release.join("digests.txt")).is_ok_and(|kept| kept == digests)
}

/// Each image's statements, as its pinned index holds them: `gati-<service>-X-<arch>.cdx.json`
/// (the SBOM's predicate, CycloneDX) and `….provenance.json` (the whole in-toto statement).
/// Read from the index built here when it is the pinned one (a digest names its bytes, and
/// those of everything it names), from the registry otherwise (an index adopted from another
/// machine's run). Every image side by side.
fn attestation_files(release: &Release, dir: &Path, pins: &[Pin]) -> anyhow::Result<()> {
    let (plan, version, root) = (&release.plan, &release.version, release.sh.current_dir());
    plan.each_image(|_, image, registry| {
        let Some(pin) = pins.iter().find(|p| p.service == image.service) else { return Ok(()) };
        let Some((_, digest)) = pin.reference.split_once('@') else { return Ok(()) };
        let sh = crate::ops::shell::shell_in(&root)?;
        // An unreadable layout is no reason to stop: the registry has the same bytes.
        let built = (Assembled::read(&sh, &image.service, &plan.head.revision(), &version.to_string()).ok())
            .flatten()
            .filter(|built| built.index.digest == digest);
        let mut fetch = |d: &str| match built.as_ref().and_then(|b| b.blob(d)) {
            Some(blob) => Ok(blob.bytes.clone()),
            None => registry.blob_or_manifest(&image.repo, d),
        };
        let index = fetch(digest)?;
        let (platforms, _) = attest_check::read(&pin.reference, &index, &mut fetch)?;
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

/// The Python package's SBOM, `gati-X.cdx.json`: the one the build step made from the trial
/// package beside the compile (the same as this package's, see [`package::sbom`]), or, when
/// that is gone, one made from this package now.
fn python_sbom(release: &Release, dir: &Path) -> anyhow::Result<()> {
    let (sh, python, version) = (release.sh, &release.python, &release.version);
    let sbom = match std::fs::read(package::sbom_path(&release.files.trial)) {
        Ok(sbom) => sbom,
        Err(_) => package::sbom(sh, python, &release.files.dist, version)?,
    };
    let name = format!("gati-{}.cdx.json", version.pep440());
    std::fs::write(dir.join(name), sbom)?;
    Ok(())
}
