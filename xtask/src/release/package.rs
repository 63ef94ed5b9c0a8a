//! package: the sdist and wheel users install, whose compose file pins every image by tag and
//! by the digest verified on the registry (`…/gati-backend:X@sha256:…`), so `gati start` runs
//! exactly the released bytes even if a tag is moved later; `twine check`; and the release
//! files for the GitHub Release. Done when the kept package was built from the release commit
//! naming exactly the digests the registry serves.

use anyhow::Context;

use super::{Release, Step};
use crate::{
    model::changelog,
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
    let notes = format!("{}\n### Images, pinned by digest\n\n{images}", section.trim_end());
    sh.write_file(dir.join("NOTES.md"), notes)?;
    println!("release files: {}", dir.display());
    Ok(())
}
