//! The package users install: the sdist and the wheel of the release commit's `sdk/`, whose
//! compose file pins the release's images, built reproducibly and checked, and what a built or
//! installed package pins.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use xshell::{cmd, Shell};

use super::IndexFile;
use crate::{images::Plan, model::version::ReleaseVersion, ops::interrupt};

/// One service's image as the package names it: `registry/namespace/gati-<service>:X`, and
/// `@sha256:…` once the release has verified the digest on the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub service: String,
    pub reference: String,
}

impl Pin {
    /// Each image of `plan` by the tag of `version`.
    pub fn of_tags(plan: &Plan, version: &ReleaseVersion) -> Vec<Pin> {
        (plan.images.iter())
            .map(|image| Pin { service: image.service.clone(), reference: format!("{}:{version}", image.reference) })
            .collect()
    }

    /// Each image of `plan` by the tag of `version` and its verified digest (in the images' order).
    pub fn of_digests(plan: &Plan, version: &ReleaseVersion, digests: &[String]) -> Vec<Pin> {
        let pins = Pin::of_tags(plan, version).into_iter().zip(digests);
        pins.map(|(pin, digest)| Pin { reference: format!("{}@{digest}", pin.reference), ..pin }).collect()
    }

    /// The references, separated by spaces.
    pub fn references(pins: &[Pin]) -> String {
        pins.iter().map(|p| p.reference.as_str()).collect::<Vec<_>>().join(" ")
    }
}

/// The package of `commit`, built into `out` (emptied first): the sdist and the wheel, checked
/// (`twine check --strict`), and what the wheel pins.
///
/// The source is the commit's `sdk/` (`git archive`), not the work tree, and its compose file
/// names `pins` — each service's full reference, `registry/namespace/gati-<service>:X`, with
/// `@sha256:…` once the images are pushed — so the package points at exactly what this release
/// pushed. The commit's time as `SOURCE_DATE_EPOCH` and a normalised sdist make both files
/// byte-for-byte reproducible: a release rebuilt elsewhere (a CI re-run) uploads the files the
/// index may already have. `out`'s stamp (see [`built_as`]) is removed first; [`build_checked`]
/// writes it once the package is checked.
fn build(sh: &Shell, python: &Path, out: &Path, commit: &str, pins: &[Pin]) -> anyhow::Result<Pins> {
    let _ = std::fs::remove_file(stamp_path(out));
    let source = sibling(out, "src");
    for dir in [out, &source] {
        if dir.exists() {
            sh.remove_path(dir)?;
        }
    }
    sh.create_dir(&source)?;
    let root = sh.current_dir();
    duct::cmd!("git", "archive", "--format=tar", commit, "sdk")
        .dir(&root)
        .pipe(duct::cmd!("tar", "-x", "-C", &source))
        .run()
        .with_context(|| format!("extracting sdk/ of {commit}"))?;
    // The archives record file modes: the same ones on every machine, whatever its umask.
    cmd!(sh, "chmod -R u=rwX,go=rX {source}").quiet().run()?;
    let compose = source.join(crate::model::surfaces::COMPOSE);
    let text = sh.read_file(&compose)?;
    sh.write_file(&compose, with_images(&text, pins)?)?;

    let format = "--format=%ct";
    let epoch = cmd!(sh, "git show -s {format} {commit}").quiet().read()?;
    let sdk = source.join("sdk");
    // The pinned setuptools of the tools' environment, not a fresh one from the index: faster,
    // offline, and the same wheel for a rebuild months later.
    // Quiet unless something fails: then stderr says why (the backend's output included).
    let build = duct::cmd!(python, "-c", PACKAGE_PY, "build", &sdk, out, &epoch).stdout_capture().unchecked();
    let output = interrupt::output(build)?;
    anyhow::ensure!(output.status.success(), "building the package from sdk/ of {commit} failed (above)");
    let built: serde_json::Value = serde_json::from_slice(&output.stdout).context("reading what the build made")?;
    let names: Vec<String> = IndexFile::of_dir(sh, out)?.into_iter().map(|f| f.name).collect();
    let mut made: Vec<String> =
        built["files"].as_array().into_iter().flatten().filter_map(|f| f.as_str().map(String::from)).collect();
    made.sort();
    if names != made || names.len() != 2 {
        bail!("building the package made {} in {}, expected an sdist and a wheel", names.join(", "), out.display());
    }
    Pins::from_json(&built)
}

/// Where the SBOM of the package built into `out` is kept: `<out>.cdx.json`.
pub fn sbom_path(out: &Path) -> PathBuf {
    sibling(out, "cdx.json")
}

/// The package's SBOM (CycloneDX): the environment a user gets, `gati==version` installed by
/// name from the wheel in `out` (never by path: pip then records no `direct_url.json`, and the
/// SBOM names no file of this machine) into a fresh venv, with its dependencies. It names no
/// file's hash and nothing of the compose file, so the trial package's wheel and the released
/// one, which differ only in the digests their compose files pin, give the same SBOM.
pub fn sbom(sh: &Shell, python: &Path, out: &Path, version: &ReleaseVersion) -> anyhow::Result<Vec<u8>> {
    let venv = sibling(out, "sbom-venv");
    let _ = std::fs::remove_dir_all(&venv);
    cmd!(sh, "{python} -m venv --without-pip {venv}").quiet().run().context("a venv for the package's SBOM")?;
    let venv_python = venv.join("bin").join("python");
    let requirement = format!("gati=={}", version.pep440());
    let quiet = ["--quiet", "--disable-pip-version-check", "--no-index"];
    cmd!(sh, "{python} -m pip --python {venv_python} install {quiet...} --find-links {out} {requirement}")
        .quiet()
        .run()
        .context("installing the wheel for its SBOM")?;
    let epoch = cmd!(sh, "git show -s --format=%ct HEAD").quiet().read()?.parse()?;
    let sbom = crate::ops::audit::python_sbom(sh, python, &venv_python, epoch);
    let _ = std::fs::remove_dir_all(&venv);
    sbom
}

/// Builds and checks the package in one Python process; see its docstring.
const PACKAGE_PY: &str = include_str!("package.py");

/// What a wheel, or an installed `gati`, pins: its `__version__`, and the image references of
/// its compose file (with the default prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pins {
    pub version: String,
    pub images: Vec<String>,
}

impl Pins {
    fn from_json(value: &serde_json::Value) -> anyhow::Result<Pins> {
        let version = value["version"].as_str().context("the package has no __version__ in version.py")?;
        let images = value["images"].as_array().into_iter().flatten().filter_map(|i| i.as_str().map(String::from));
        Ok(Pins { version: version.to_string(), images: images.collect() })
    }

    /// The pins of `path`: a wheel, or the directory of an installed `gati`.
    pub fn of(sh: &Shell, python: &Path, path: &Path) -> anyhow::Result<Pins> {
        let out = cmd!(sh, "{python} -c {PACKAGE_PY} pins {path}")
            .quiet()
            .read()
            .with_context(|| format!("reading what {} pins", path.display()))?;
        Pins::from_json(&serde_json::from_str(&out)?)
    }
}

/// `dir` + `.suffix`: beside `out`, whatever dots its name has (`release-0.1.1-dist`).
fn sibling(out: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}.{suffix}", out.display()))
}

fn stamp_path(out: &Path) -> PathBuf {
    sibling(out, "stamp")
}

fn stamp_text(commit: &str, pins: &[Pin]) -> String {
    format!("{commit} {}", Pin::references(pins))
}

/// Whether the package files in `out` were built completely from `commit` naming `pins`.
pub fn built_as(out: &Path, commit: &str, pins: &[Pin]) -> bool {
    std::fs::read_to_string(stamp_path(out)).is_ok_and(|s| s == stamp_text(commit, pins))
}

/// The compose file with each service's image set to its pin, behind the
/// `${GATI_IMAGE_PREFIX:-…}` that lets users pull the same image from a mirror. Every `image:`
/// line must name a service of `pins`, and every service must have one.
pub fn with_images(compose: &str, pins: &[Pin]) -> anyhow::Result<String> {
    const OPEN: &str = "${GATI_IMAGE_PREFIX:-";
    let mut out = String::with_capacity(compose.len());
    let mut seen = Vec::new();
    for line in compose.split_inclusive('\n') {
        if !line.trim_start().starts_with("image:") {
            out.push_str(line);
            continue;
        }
        let unexpected = || {
            format!("{}: `{}` is not `image: {OPEN}…}}/gati-<service>:…`", crate::model::surfaces::COMPOSE, line.trim())
        };
        let (indent, rest) = line.split_once(OPEN).with_context(unexpected)?;
        let (_, image) = rest.split_once("}/").with_context(unexpected)?;
        let name = image.split([':', '@']).next().unwrap_or_default().trim();
        let Pin { service, reference } = pins
            .iter()
            .find(|pin| name == format!("gati-{}", pin.service))
            .with_context(|| format!("{}: {name} is not an image of this release", crate::model::surfaces::COMPOSE))?;
        // registry/namespace/gati-<service>… → ${GATI_IMAGE_PREFIX:-registry/namespace}/gati-<service>…
        let (prefix, tail) = reference.rsplit_once(&format!("/gati-{service}")).with_context(unexpected)?;
        out.push_str(&format!("{indent}{OPEN}{prefix}}}/gati-{service}{tail}\n"));
        seen.push(service.clone());
    }
    for Pin { service, .. } in pins {
        anyhow::ensure!(seen.contains(service), "{} has no image for {service}", crate::model::surfaces::COMPOSE);
    }
    Ok(out)
}

/// [`build`] from HEAD, then proof that the wheel says `version` and names exactly `pins`; only
/// then the stamp that says `out` holds the package of that commit naming those pins.
pub fn build_checked(
    sh: &Shell,
    python: &Path,
    out: &Path,
    version: &ReleaseVersion,
    pins: &[Pin],
) -> anyhow::Result<()> {
    let commit = crate::ops::git::head(sh)?;
    let built = build(sh, python, out, &commit, pins)?;
    check(&built, version, pins)?;
    sh.write_file(stamp_path(out), stamp_text(&commit, pins))?;
    Ok(())
}

fn check(built: &Pins, version: &ReleaseVersion, pins: &[Pin]) -> anyhow::Result<()> {
    if built.version != version.pep440() {
        bail!(
            "the wheel's version.py says {}, not {}: the version surfaces are out of step; run `cargo xtask version`",
            built.version,
            version.pep440()
        );
    }
    let mut found = built.images.clone();
    let mut expected: Vec<String> = pins.iter().map(|p| p.reference.clone()).collect();
    expected.sort();
    found.sort();
    if found != expected {
        bail!(
            "the wheel's docker-compose.yml names {}, not {}: check the `image:` lines of {}",
            found.join(", "),
            expected.join(", "),
            crate::model::surfaces::COMPOSE
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_package_names_exactly_the_images_of_the_release() {
        let compose =
            "services:\n  backend:\n    image: ${GATI_IMAGE_PREFIX:-docker.io/gatidev}/gati-backend:0.1.1\n    \
                       ports: []\n  mcp:\n    image: ${GATI_IMAGE_PREFIX:-docker.io/gatidev}/gati-mcp-server:0.1.1\n";
        let pin = |service: &str, reference: &str| Pin { service: service.into(), reference: reference.into() };
        let images = [
            pin("backend", "127.0.0.1:5000/gatidev/gati-backend:0.1.1@sha256:aa"),
            pin("mcp-server", "127.0.0.1:5000/gatidev/gati-mcp-server:0.1.1@sha256:bb"),
        ];
        let pinned = with_images(compose, &images).unwrap();
        assert_eq!(
            pinned,
            "services:\n  backend:\n    image: ${GATI_IMAGE_PREFIX:-127.0.0.1:5000/gatidev}/gati-backend:0.1.1@sha256:aa\n    \
             ports: []\n  mcp:\n    image: ${GATI_IMAGE_PREFIX:-127.0.0.1:5000/gatidev}/gati-mcp-server:0.1.1@sha256:bb\n"
        );
        // Pinning again replaces the digest: the file in git keeps tags only, but either works.
        assert_eq!(with_images(&pinned, &images).unwrap(), pinned);
        assert!(with_images("services:\n  a:\n    image: gati-backend:1\n", &images).is_err());
        assert!(with_images(compose, &images[..1]).is_err(), "an image of no service of the release");
    }
}
