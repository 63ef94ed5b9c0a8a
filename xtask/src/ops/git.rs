//! What the images and the release need to know from git.

use anyhow::Context;
use xshell::{cmd, Shell};

use crate::model::version::ReleaseVersion;

#[derive(Debug, Clone)]
pub struct Head {
    pub commit: String,
    /// Uncommitted changes to tracked or untracked (not ignored) files.
    pub dirty: bool,
    /// The commit's time, in UTC (`2026-05-01T12:00:00Z`): when the images were `created`, so
    /// that the same commit builds byte-identical images anywhere, whatever the clock says.
    pub created: String,
}

impl Head {
    pub fn read(sh: &Shell) -> anyhow::Result<Head> {
        let commit = cmd!(sh, "git rev-parse HEAD").quiet().read().context("reading HEAD: is this a git clone?")?;
        let dirty = !cmd!(sh, "git status --porcelain").quiet().read()?.trim().is_empty();
        let (format, date) = ("--format=%cd", "--date=format-local:%Y-%m-%dT%H:%M:%SZ");
        let created = cmd!(sh, "git show -s {format} {date} HEAD").env("TZ", "UTC").quiet().read()?;
        Ok(Head { commit, dirty, created })
    }

    /// The revision label: the commit, marked `-dirty` when the tree has changes.
    pub fn revision(&self) -> String {
        if self.dirty {
            format!("{}-dirty", self.commit)
        } else {
            self.commit.clone()
        }
    }
}

/// The commit at HEAD.
pub fn head(sh: &Shell) -> anyhow::Result<String> {
    cmd!(sh, "git rev-parse HEAD").quiet().read().context("reading HEAD: is this a git clone with a commit?")
}

pub fn branch(sh: &Shell) -> anyhow::Result<String> {
    Ok(cmd!(sh, "git rev-parse --abbrev-ref HEAD").quiet().read()?)
}

/// The commit a local tag points at.
pub fn local_tag(sh: &Shell, tag: &str) -> Option<String> {
    let reference = format!("refs/tags/{tag}^{{commit}}");
    cmd!(sh, "git rev-parse --verify --quiet {reference}").quiet().ignore_stderr().read().ok()
}

/// The commit `origin` has for a tag, if any (annotated tags are peeled).
pub fn remote_tag(sh: &Shell, tag: &str) -> anyhow::Result<Option<String>> {
    let refs = [format!("refs/tags/{tag}"), format!("refs/tags/{tag}^{{}}")];
    let out = cmd!(sh, "git ls-remote origin {refs...}")
        .quiet()
        .ignore_stderr()
        .read()
        .context("asking origin for its tags")?;
    let mut found = None;
    for line in out.lines() {
        let (commit, name) = line.split_once('\t').unwrap_or((line, ""));
        // The peeled line, when present, names the commit; the plain one names the tag object.
        if name.ends_with("^{}") || found.is_none() {
            found = Some(commit.to_string());
        }
    }
    Ok(found)
}

/// Files that differ from HEAD, tracked or not (ignored ones excluded).
pub fn changed_files(sh: &Shell) -> anyhow::Result<Vec<String>> {
    let out = cmd!(sh, "git status --porcelain --untracked-files=all").quiet().read()?;
    Ok(out.lines().filter(|l| l.len() > 3).map(|l| l[3..].to_string()).collect())
}

/// Whether `origin/<branch>` has commits that HEAD lacks (fetched first): a push of HEAD to
/// the branch would then be refused.
pub fn behind_origin(sh: &Shell, branch: &str) -> anyhow::Result<bool> {
    let fetched = cmd!(sh, "git fetch --quiet origin {branch}").quiet().ignore_status().output()?;
    if !fetched.status.success() {
        let said = String::from_utf8_lossy(&fetched.stderr);
        let said = said.lines().find(|l| l.starts_with("fatal:")).unwrap_or(said.trim());
        anyhow::bail!("fetching {branch} from origin: {said}");
    }
    let remote = format!("refs/remotes/origin/{branch}");
    let fetched = cmd!(sh, "git rev-parse --verify --quiet FETCH_HEAD").quiet().ignore_stderr().read().ok();
    let Some(theirs) = fetched.or_else(|| cmd!(sh, "git rev-parse --verify --quiet {remote}").quiet().read().ok())
    else {
        return Ok(false);
    };
    Ok(cmd!(sh, "git merge-base --is-ancestor {theirs} HEAD").quiet().run().is_err())
}

/// A commit (or a revision label) as people read it: its first 12 characters.
pub fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

/// The commits after the previous release tag up to HEAD, rendered by git-cliff (`cliff.toml`;
/// the binary pinned in the tools' environment beside `python`) under this release's heading.
pub fn cliff(sh: &Shell, python: &std::path::Path, version: &ReleaseVersion) -> anyhow::Result<String> {
    let cliff = python.with_file_name("git-cliff");
    let tag = format!("v{version}");
    let own_tag = format!("--exclude=v{version}");
    // The newest release tag below HEAD, other than this release's own (a re-run, or CI).
    let previous =
        cmd!(sh, "git describe --tags --abbrev=0 --match v[0-9]* {own_tag} HEAD").quiet().ignore_stderr().read().ok();
    let range: Vec<String> = previous.map(|p| vec![format!("{p}..HEAD")]).unwrap_or_default();
    cmd!(sh, "{cliff} --config cliff.toml --tag {tag} --strip all {range...}")
        .quiet()
        .ignore_stderr()
        .read()
        .with_context(|| {
            format!(
                "git-cliff: the changes of {version} (is {} installed? delete .tools/venv and run again)",
                cliff.display()
            )
        })
}
