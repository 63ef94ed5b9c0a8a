//! twine: how it authenticates to the index, and the upload. Credentials reach twine only
//! through its environment (`TWINE_USERNAME`/`TWINE_PASSWORD`), `~/.pypirc` or trusted
//! publishing, never its arguments.

use std::path::{Path, PathBuf};

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
