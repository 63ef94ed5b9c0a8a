//! twine: how it authenticates to the index, and the upload. Credentials reach twine only
//! through its environment (`TWINE_USERNAME`/`TWINE_PASSWORD`), `~/.pypirc` or trusted
//! publishing, never its arguments.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use xshell::{cmd, Shell};

use super::{index, IndexFile};
use crate::ops::{
    interrupt,
    retry::{self, Backoff},
    secrets::Secret,
};

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
    if env("TWINE_USERNAME") && Secret::TwinePassword.get().is_some() {
        return Some(IndexCredentials::Environment);
    }
    if env("ACTIONS_ID_TOKEN_REQUEST_URL") && Secret::ActionsIdTokenRequestToken.get().is_some() {
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

/// `twine upload` of `paths` to `index`, one file at a time, stopped if the user interrupts.
/// The files go in name order: the (reproducible) wheel before the sdist, so that an
/// interrupted upload never leaves on the index an sdist that a rebuild could not match.
///
/// A file name can be uploaded only once, and twine retries no upload, so a failed one is
/// retried here, within `GATI_RETRY_SECONDS`, only when the failure was transient (no
/// connection, 5xx, 429) — and only after asking the index (`simple`) whether the file arrived
/// all the same (the answer was lost, not the upload): listed with our sha256, it is done.
pub fn upload(
    sh: &Shell,
    python: &Path,
    index: &str,
    simple: &str,
    files: &[IndexFile],
    dir: &Path,
) -> anyhow::Result<()> {
    let paths: Vec<PathBuf> = files.iter().map(|f| dir.join(&f.name)).collect();
    let signed = match pep740_signer(python, index) {
        Some(signer) => Some(sign(sh, &signer, &paths)?),
        None => None,
    };
    let uploaded = (|| {
        for (i, file) in files.iter().enumerate() {
            let sent = match &signed {
                Some(pairs) => vec![pairs[i].0.clone(), pairs[i].1.clone()],
                None => vec![paths[i].clone()],
            };
            upload_one(sh, python, index, simple, file, &sent)?;
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(
        crate::ops::shell::target_dir(sh).join("xtask").join(format!("pep740-{}", std::process::id())),
    );
    uploaded
}

/// One file (with its attestation, if signed) until the index lists it with our sha256.
fn upload_one(
    sh: &Shell,
    python: &Path,
    index: &str,
    simple: &str,
    file: &IndexFile,
    sent: &[PathBuf],
) -> anyhow::Result<()> {
    let attest: Vec<&str> = if sent.len() > 1 { vec!["--attestations"] } else { vec![] };
    // `.pypirc` credentials reach twine only by naming their section.
    let target = match credentials_source(index) {
        Some(IndexCredentials::Pypirc(section)) => ["--repository".to_string(), section],
        _ => ["--repository-url".to_string(), index.to_string()],
    };
    let log = crate::ops::shell::target_dir(sh).join("xtask").join(format!("twine-{}.log", std::process::id()));
    let mut backoff = Backoff::default();
    let (attest, target) = (&attest, &target);
    loop {
        let mut command = cmd!(
            sh,
            "{python} -m twine upload --non-interactive --disable-progress-bar {attest...} {target...} {sent...}"
        )
        .quiet();
        // An absent CI secret arrives as an empty variable, which twine takes as the password
        // itself (so it never tries trusted publishing, nor ~/.pypirc): twine must not see it.
        for key in empty_twine_variables(std::env::vars()) {
            command = command.env_remove(key);
        }
        // twine is the one process that gets the index's password (or the OIDC request token).
        command = Secret::TwinePassword.pass_to(command);
        command = Secret::ActionsIdTokenRequestToken.pass_to(command);
        let said = run_logged(command, &log)?;
        let Some(said) = said else { return Ok(()) };
        // Before anything else, the world: the index may have stored the file and lost its answer.
        let listed = index::index_files(simple, index::PROJECT)?;
        match listed.iter().find(|f| f.name == file.name) {
            Some(theirs) if theirs.sha256 == file.sha256 => {
                println!("  {} is on the index with our sha256, though twine's answer was lost", file.name);
                return Ok(());
            }
            Some(theirs) => bail!(
                "the index has {} with other bytes (sha256 {}, ours {}): this version is burned; release a new version",
                file.name,
                theirs.sha256,
                file.sha256
            ),
            None => {}
        }
        match retry::transient_failure(&said) {
            None => bail!("twine upload of {} failed:\n{}", file.name, said.trim()),
            Some(why) => backoff
                .wait(&format!("uploading {} to {index}: {why}", file.name), None)
                .with_context(|| format!("twine upload of {} failed:\n{}", file.name, said.trim()))?,
        }
    }
}

/// Runs `command` with its output in `log`: `None` when it succeeded, else what it printed.
fn run_logged(command: xshell::Cmd<'_>, log: &Path) -> anyhow::Result<Option<String>> {
    let mut command = std::process::Command::from(command);
    let out = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    command.stdout(out.try_clone()?).stderr(out);
    let status = interrupt::run(command);
    let said = std::fs::read_to_string(log).unwrap_or_default();
    let _ = std::fs::remove_file(log);
    Ok((!status?.success()).then_some(said))
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
    let dir = crate::ops::shell::target_dir(sh).join("xtask").join(format!("pep740-{}", std::process::id()));
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
    // The signer asks GitHub for the job's OIDC identity: that token, and no other credential.
    let signing = Secret::ActionsIdTokenRequestToken.pass_to(cmd!(sh, "{program} {args...} {files...}"));
    signing.run().context("signing the package's PEP 740 attestations")?;
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
