//! The Python package: build the sdist and the wheel, check them, prove what the wheel pins,
//! ask the index which files it has, upload. The tools come from the project's pinned
//! environment (`.tools/venv`); credentials reach twine only through its environment
//! (`TWINE_USERNAME`/`TWINE_PASSWORD`), `~/.pypirc` or the keyring, never its arguments.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use xshell::{cmd, Shell};

use crate::ops::interrupt;

/// A built distribution file and its sha256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistFile {
    pub path: PathBuf,
    pub sha256: String,
}

impl DistFile {
    pub fn name(&self) -> String {
        self.path.file_name().unwrap().to_string_lossy().into_owned()
    }
}

/// The package of `commit`, built into `out` (emptied first): the sdist and the wheel, checked
/// (`twine check --strict`), and what the wheel pins.
///
/// The source is the commit's `sdk/` (`git archive`), not the work tree, and its compose file
/// names `images` — each service's full reference, `registry/namespace/gati-<service>:X`, with
/// `@sha256:…` once the images are pushed — so the package points at exactly what this release
/// pushed. The commit's time as `SOURCE_DATE_EPOCH` and a normalised sdist make both files
/// byte-for-byte reproducible: a release rebuilt elsewhere (a CI re-run) uploads the files the
/// index may already have. `out`'s stamp (see [`built_as`]) records the commit and the references.
pub fn build(sh: &Shell, python: &Path, out: &Path, commit: &str, images: &[(String, String)]) -> anyhow::Result<Pins> {
    let source = sibling(out, "src");
    for dir in [out, &source] {
        if dir.exists() {
            sh.remove_path(dir)?;
        }
    }
    sh.create_dir(&source)?;
    let stamp = stamp_path(out);
    let _ = std::fs::remove_file(&stamp);
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
    sh.write_file(&compose, with_images(&text, images)?)?;

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
    let files = dist_files(sh, out)?;
    let names: Vec<String> = files.iter().map(DistFile::name).collect();
    let mut made: Vec<String> =
        built["files"].as_array().into_iter().flatten().filter_map(|f| f.as_str().map(String::from)).collect();
    made.sort();
    if names != made || names.len() != 2 {
        bail!("building the package made {} in {}, expected an sdist and a wheel", names.join(", "), out.display());
    }
    let pins = Pins::from_json(&built)?;
    sh.write_file(stamp, stamp_text(commit, images))?;
    Ok(pins)
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

fn stamp_text(commit: &str, images: &[(String, String)]) -> String {
    let references: Vec<&str> = images.iter().map(|(_, r)| r.as_str()).collect();
    format!("{commit} {}", references.join(" "))
}

/// Whether the package files in `out` were built completely from `commit` naming `images`.
pub fn built_as(out: &Path, commit: &str, images: &[(String, String)]) -> bool {
    std::fs::read_to_string(stamp_path(out)).is_ok_and(|s| s == stamp_text(commit, images))
}

/// The compose file with each service's image set to `images`' reference for it, behind the
/// `${GATI_IMAGE_PREFIX:-…}` that lets users pull the same image from a mirror. Every `image:`
/// line must name a service of `images`, and every service must have one.
pub fn with_images(compose: &str, images: &[(String, String)]) -> anyhow::Result<String> {
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
        let (service, reference) = images
            .iter()
            .find(|(service, _)| name == format!("gati-{service}"))
            .with_context(|| format!("{}: {name} is not an image of this release", crate::model::surfaces::COMPOSE))?;
        // registry/namespace/gati-<service>… → ${GATI_IMAGE_PREFIX:-registry/namespace}/gati-<service>…
        let (prefix, tail) = reference.rsplit_once(&format!("/gati-{service}")).with_context(unexpected)?;
        out.push_str(&format!("{indent}{OPEN}{prefix}}}/gati-{service}{tail}\n"));
        seen.push(service.clone());
    }
    for (service, _) in images {
        anyhow::ensure!(seen.contains(service), "{} has no image for {service}", crate::model::surfaces::COMPOSE);
    }
    Ok(out)
}

/// The files in `dir`, each with its sha256, sorted by name.
pub fn dist_files(sh: &Shell, dir: &Path) -> anyhow::Result<Vec<DistFile>> {
    let mut files = Vec::new();
    for path in sh.read_dir(dir)? {
        let sha256 = sha256(sh, &path)?;
        files.push(DistFile { path, sha256 });
    }
    files.sort_by_key(|f| f.name());
    Ok(files)
}

pub fn sha256(sh: &Shell, path: &Path) -> anyhow::Result<String> {
    let out = cmd!(sh, "sha256sum {path}").quiet().read()?;
    Ok(out.split_whitespace().next().context("sha256sum printed nothing")?.to_string())
}

/// Which of `modules` `python` cannot import (found without importing them: one fast start).
pub fn missing_modules(python: &Path, modules: &[&str]) -> anyhow::Result<Vec<String>> {
    const SCRIPT: &str =
        "import importlib.util, sys; print(' '.join(m for m in sys.argv[1:] if not importlib.util.find_spec(m)))";
    let out = duct::cmd(python, ["-c", SCRIPT].iter().copied().chain(modules.iter().copied()))
        .read()
        .with_context(|| format!("starting {}", python.display()))?;
    Ok(out.split_whitespace().map(String::from).collect())
}

/// The Python package's name on the index.
pub const PROJECT: &str = "gati";

/// The file names of a version's wheel and sdist, wheel first: it is reproducible, so an
/// interrupted upload never leaves on the index an sdist that a rebuild could not match.
pub fn dist_names(pep440: &str) -> [String; 2] {
    [format!("{PROJECT}-{pep440}-py3-none-any.whl"), format!("{PROJECT}-{pep440}.tar.gz")]
}

/// The files the index has for one version of the package: `(file name, sha256)`.
pub fn files_of_version(simple_url: &str, pep440: &str) -> anyhow::Result<Vec<(String, String)>> {
    let prefix = format!("{PROJECT}-{pep440}");
    Ok(index_files(simple_url, PROJECT)?
        .into_iter()
        .filter(|(name, _)| name.starts_with(&format!("{prefix}-")) || *name == format!("{prefix}.tar.gz"))
        .collect())
}

/// PEP 691's JSON form of the simple API (PyPI's), asked for first; PEP 503's HTML otherwise.
const SIMPLE_JSON: &str = "application/vnd.pypi.simple.v1+json";

/// The files the index has for `project`: `(file name, sha256)`, from its simple API.
pub fn index_files(simple_url: &str, project: &str) -> anyhow::Result<Vec<(String, String)>> {
    let url = format!("{}/{project}/", simple_url.trim_end_matches('/'));
    let accept = format!("Accept: {SIMPLE_JSON}, text/html;q=0.1");
    let curl = duct::cmd!(
        "curl",
        "--silent",
        "--show-error",
        "--location",
        "--max-time",
        "30",
        "--header",
        accept,
        "--write-out",
        "\n%{http_code} %{content_type}",
        &url
    );
    let output = interrupt::output(curl.stdout_capture().stderr_capture().unchecked())?;
    if !output.status.success() {
        bail!("the index at {url} is not answering: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let (body, written) = text.rsplit_once('\n').unwrap_or(("", &text));
    let (status, content_type) = written.split_once(' ').unwrap_or((written, ""));
    match status {
        "404" => Ok(vec![]),
        "200" if content_type.starts_with(SIMPLE_JSON) => simple_json_files(body),
        "200" => Ok(simple_links(body)),
        status => bail!("the index at {url} answered HTTP {status}"),
    }
}

/// `files[].filename` and `files[].hashes.sha256` of a PEP 691 answer.
fn simple_json_files(json: &str) -> anyhow::Result<Vec<(String, String)>> {
    let answer: serde_json::Value = serde_json::from_str(json).context("the index's JSON answer")?;
    Ok(answer["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| Some((f["filename"].as_str()?.to_string(), f["hashes"]["sha256"].as_str()?.to_string())))
        .collect())
}

/// `<a href="…/name#sha256=hex">` links of a PEP 503 page.
fn simple_links(html: &str) -> Vec<(String, String)> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|rest| {
            let href = &rest[..rest.find('"')?];
            let (path, hash) = href.split_once("#sha256=")?;
            let name = path.rsplit('/').next()?.to_string();
            Some((name, hash.to_string()))
        })
        .collect()
}

/// How twine will authenticate to `index`, if it can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexCredentials {
    /// `TWINE_USERNAME` and `TWINE_PASSWORD`.
    Environment,
    /// GitHub Actions with `id-token: write`: twine exchanges the job's OIDC token for a
    /// short-lived upload token by itself when no password is set (trusted publishing).
    TrustedPublishing,
    /// The section of `~/.pypirc` whose `repository` is the index. twine reads `.pypirc` only
    /// for `--repository <section>`, never with `--repository-url`.
    Pypirc(String),
}

impl std::fmt::Display for IndexCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IndexCredentials::Environment => f.write_str("TWINE_USERNAME/TWINE_PASSWORD"),
            IndexCredentials::TrustedPublishing => f.write_str("trusted publishing (GitHub Actions OIDC)"),
            IndexCredentials::Pypirc(section) => write!(f, "~/.pypirc [{section}]"),
        }
    }
}

/// Whether index credentials for `index` are configured for twine, and how. Empty variables
/// count as unset (an absent CI secret arrives as one).
pub fn credentials_source(index: &str) -> Option<IndexCredentials> {
    let env = |k: &str| std::env::var(k).is_ok_and(|v| !v.is_empty());
    if env("TWINE_USERNAME") && env("TWINE_PASSWORD") {
        return Some(IndexCredentials::Environment);
    }
    if env("ACTIONS_ID_TOKEN_REQUEST_URL") && env("ACTIONS_ID_TOKEN_REQUEST_TOKEN") {
        return Some(IndexCredentials::TrustedPublishing);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from)?;
    let pypirc = std::fs::read_to_string(home.join(".pypirc")).ok()?;
    pypirc_section(&pypirc, index).map(IndexCredentials::Pypirc)
}

/// The `~/.pypirc` section that uploads to `index` with a password: the one whose `repository`
/// is `index`, or `[pypi]` (whose repository defaults to PyPI's upload URL).
fn pypirc_section(pypirc: &str, index: &str) -> Option<String> {
    const PYPI: &str = "https://upload.pypi.org/legacy/";
    let same = |a: &str, b: &str| a.trim_end_matches('/') == b.trim_end_matches('/');
    let mut sections: Vec<(String, Option<String>, bool)> = Vec::new();
    for line in pypirc.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            sections.push((name.trim().to_string(), None, false));
        } else if let (Some((key, value)), Some(section)) = (line.split_once(['=', ':']), sections.last_mut()) {
            match key.trim() {
                "repository" => section.1 = Some(value.trim().to_string()),
                "password" => section.2 = !value.trim().is_empty(),
                _ => {}
            }
        }
    }
    sections.into_iter().find_map(|(name, repository, password)| {
        let repository = repository.or_else(|| (name == "pypi").then(|| PYPI.to_string()))?;
        (password && name != "distutils" && same(&repository, index)).then_some(name)
    })
}

/// `twine upload` of `files` to `index`, stopped if the user interrupts. The files go in name
/// order: the (reproducible) wheel before the sdist, so that an interrupted upload never leaves
/// on the index an sdist that a rebuild could not match.
pub fn upload(sh: &Shell, python: &Path, index: &str, files: &[DistFile]) -> anyhow::Result<()> {
    let paths: Vec<&Path> = files.iter().map(|f| f.path.as_path()).collect();
    // `.pypirc` credentials reach twine only by naming their section.
    let target = match credentials_source(index) {
        Some(IndexCredentials::Pypirc(section)) => ["--repository".to_string(), section],
        _ => ["--repository-url".to_string(), index.to_string()],
    };
    let mut command =
        cmd!(sh, "{python} -m twine upload --non-interactive --disable-progress-bar {target...} {paths...}").quiet();
    // An absent CI secret arrives as an empty variable, which twine takes as the password itself
    // (so it never tries trusted publishing, nor ~/.pypirc): twine must not see it at all.
    for key in empty_twine_variables(std::env::vars()) {
        command = command.env_remove(key);
    }
    interrupt::run_checked(command, "twine upload")
}

/// The `TWINE_*` variables that are set but empty.
fn empty_twine_variables(vars: impl Iterator<Item = (String, String)>) -> Vec<String> {
    vars.filter(|(k, v)| k.starts_with("TWINE_") && v.is_empty()).map(|(k, _)| k).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_package_names_exactly_the_images_of_the_release() {
        let compose =
            "services:\n  backend:\n    image: ${GATI_IMAGE_PREFIX:-docker.io/gatidev}/gati-backend:0.1.1\n    \
                       ports: []\n  mcp:\n    image: ${GATI_IMAGE_PREFIX:-docker.io/gatidev}/gati-mcp-server:0.1.1\n";
        let images = [
            ("backend".to_string(), "127.0.0.1:5000/gatidev/gati-backend:0.1.1@sha256:aa".to_string()),
            ("mcp-server".to_string(), "127.0.0.1:5000/gatidev/gati-mcp-server:0.1.1@sha256:bb".to_string()),
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

    #[test]
    fn finds_the_pypirc_section_of_the_index() {
        let pypirc = "[distutils]\nindex-servers =\n    pypi\n    sandbox\n\n[pypi]\nusername = __token__\n\
                      password = pypi-abc\n\n[sandbox]\nrepository: http://127.0.0.1:9/\nusername = u\npassword = p\n\n\
                      [nopassword]\nrepository = http://127.0.0.1:8/\nusername = u\n";
        assert_eq!(pypirc_section(pypirc, "https://upload.pypi.org/legacy/").as_deref(), Some("pypi"));
        assert_eq!(pypirc_section(pypirc, "http://127.0.0.1:9").as_deref(), Some("sandbox"));
        assert_eq!(pypirc_section(pypirc, "http://127.0.0.1:8/"), None, "a section without a password");
        assert_eq!(pypirc_section(pypirc, "https://test.pypi.org/legacy/"), None);
    }

    #[test]
    fn empty_twine_variables_are_not_passed_on() {
        let vars = [("TWINE_USERNAME", "__token__"), ("TWINE_PASSWORD", ""), ("OTHER", ""), ("TWINE_REPOSITORY", "")];
        let vars = vars.into_iter().map(|(k, v)| (k.to_string(), v.to_string()));
        assert_eq!(empty_twine_variables(vars), ["TWINE_PASSWORD", "TWINE_REPOSITORY"]);
    }

    #[test]
    fn reads_a_json_simple_index_answer() {
        let json = r#"{"meta": {"api-version": "1.1"}, "name": "gati", "files": [
            {"filename": "gati-0.0.3-py3-none-any.whl", "url": "https://files.example/a", "hashes": {"sha256": "d736"}},
            {"filename": "gati-0.0.3.tar.gz", "url": "https://files.example/b", "hashes": {}}]}"#;
        assert_eq!(simple_json_files(json).unwrap(), [("gati-0.0.3-py3-none-any.whl".into(), "d736".into())]);
    }

    #[test]
    fn reads_a_simple_index_page() {
        let html = r#"<a href="/packages/gati-0.1.0-py3-none-any.whl#sha256=d736">gati-0.1.0-py3-none-any.whl</a><br>
            <a href="https://files.example/gati-0.1.0.tar.gz#sha256=994c" data-requires-python="&gt;=3.9">x</a>"#;
        assert_eq!(
            simple_links(html),
            [("gati-0.1.0-py3-none-any.whl".into(), "d736".into()), ("gati-0.1.0.tar.gz".into(), "994c".into())]
        );
    }
}
