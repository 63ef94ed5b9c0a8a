//! twine: how it authenticates to the index, and the upload. Credentials reach twine only
//! through its environment (`TWINE_USERNAME`/`TWINE_PASSWORD`), `~/.pypirc` or trusted
//! publishing, never its arguments.

use std::path::{Path, PathBuf};

use anyhow::Context;
use xshell::{cmd, Shell};

use crate::ops::interrupt;

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

/// `twine upload` of `paths` to `index`, stopped if the user interrupts. The files go in name
/// order: the (reproducible) wheel before the sdist, so that an interrupted upload never leaves
/// on the index an sdist that a rebuild could not match.
pub fn upload(sh: &Shell, python: &Path, index: &str, paths: &[PathBuf]) -> anyhow::Result<()> {
    let signed;
    let mut paths = paths.to_vec();
    let mut attest: Vec<&str> = vec![];
    if let Some(signer) = pep740_signer(python, index) {
        signed = sign(sh, &signer, &paths)?;
        paths = signed.iter().flat_map(|(file, attestation)| [file.clone(), attestation.clone()]).collect();
        attest.push("--attestations");
    }
    // `.pypirc` credentials reach twine only by naming their section.
    let target = match credentials_source(index) {
        Some(IndexCredentials::Pypirc(section)) => ["--repository".to_string(), section],
        _ => ["--repository-url".to_string(), index.to_string()],
    };
    let mut command = cmd!(
        sh,
        "{python} -m twine upload --non-interactive --disable-progress-bar {attest...} {target...} {paths...}"
    )
    .quiet();
    // An absent CI secret arrives as an empty variable, which twine takes as the password itself
    // (so it never tries trusted publishing, nor ~/.pypirc): twine must not see it at all.
    for key in empty_twine_variables(std::env::vars()) {
        command = command.env_remove(key);
    }
    let uploaded = interrupt::run_checked(command, "twine upload");
    let _ = std::fs::remove_dir_all(crate::target_dir(sh).join("xtask").join(format!("pep740-{}", std::process::id())));
    uploaded
}

/// Who signs the package's PEP 740 attestations, if anyone: `GATI_PEP740_SIGNER` (a command,
/// given the files), or in GitHub Actions, uploading to PyPI, `pypi-attestations sign` under the
/// job's OIDC identity (PyPI takes only attestations of its Trusted Publisher).
pub fn pep740_signer(python: &Path, index: &str) -> Option<Vec<String>> {
    if let Some(signer) = std::env::var("GATI_PEP740_SIGNER").ok().filter(|s| !s.trim().is_empty()) {
        return Some(signer.split_whitespace().map(String::from).collect());
    }
    let on_actions = std::env::var("ACTIONS_ID_TOKEN_REQUEST_URL").is_ok_and(|v| !v.is_empty());
    let to_pypi = index.trim_end_matches('/') == "https://upload.pypi.org/legacy";
    (on_actions && to_pypi)
        .then(|| vec![python.with_file_name("pypi-attestations").display().to_string(), "sign".into()])
}

/// Copies of `paths` beside their PEP 740 attestations (`<file>.publish.attestation`), made by
/// `signer`; the package files themselves are left alone (an attestation is no dist file).
fn sign(sh: &Shell, signer: &[String], paths: &[PathBuf]) -> anyhow::Result<Vec<(PathBuf, PathBuf)>> {
    let dir = crate::target_dir(sh).join("xtask").join(format!("pep740-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let mut signed = Vec::new();
    for path in paths {
        let copy = dir.join(path.file_name().context("a package file without a name")?);
        std::fs::copy(path, &copy)?;
        signed.push(copy);
    }
    let (program, args) = signer.split_first().context("an empty GATI_PEP740_SIGNER")?;
    let files = signed.clone();
    cmd!(sh, "{program} {args...} {files...}").run().context("signing the package's PEP 740 attestations")?;
    let mut pairs = Vec::new();
    for file in signed {
        let attestation = PathBuf::from(format!("{}.publish.attestation", file.display()));
        anyhow::ensure!(attestation.exists(), "the PEP 740 signer made no {}", attestation.display());
        pairs.push((file, attestation));
    }
    Ok(pairs)
}

/// The `TWINE_*` variables that are set but empty.
fn empty_twine_variables(vars: impl Iterator<Item = (String, String)>) -> Vec<String> {
    vars.filter(|(k, v)| k.starts_with("TWINE_") && v.is_empty()).map(|(k, _)| k).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
