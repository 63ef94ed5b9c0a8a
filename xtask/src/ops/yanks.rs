//! Which releases are yanked, recorded where a fresh machine sees it: a ref
//! `refs/yanked/vX.Y.Z` on origin, naming an annotated tag object that points at the release's
//! commit and carries the reason (its tagger line says who and when). A fresh CI runner with
//! only the origin and the registry reads it with one `git fetch`; no journal is involved.
//!
//! Refs outside `refs/tags` and `refs/heads` are not fetched by a plain clone, so every reader
//! fetches them itself (`+refs/yanked/*:refs/yanked/*`, pruned: an undone yank disappears
//! here too). A clone without an origin knows only its own refs.

use anyhow::{bail, Context};
use xshell::{cmd, Shell};

use crate::model::version::ReleaseVersion;

/// Where the yanks live, on origin and in every clone that read them.
pub const REFS: &str = "refs/yanked/";

/// One yanked release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Yank {
    /// The semver spelling, `0.1.2`.
    pub version: String,
    pub reason: String,
    /// When it was yanked, ISO 8601 (the tag object's tagger date).
    pub when: String,
}

/// The yanks, as read once for a command; or why they could not be read (a command that needs
/// them fails with that, one that does not, such as a build, goes on).
#[derive(Debug, Clone, Default)]
pub struct Yanks {
    list: Vec<Yank>,
    unreadable: Option<String>,
}

impl Yanks {
    /// The yanks origin records (fetched first), or this clone's own when it has no origin.
    pub fn read(sh: &Shell) -> Yanks {
        match fetch(sh).and_then(|()| local(sh)) {
            Ok(list) => Yanks { list, unreadable: None },
            Err(e) => Yanks { list: vec![], unreadable: Some(format!("{e:#}")) },
        }
    }

    #[cfg(test)]
    pub fn of_list(list: Vec<Yank>) -> Yanks {
        Yanks { list, unreadable: None }
    }

    fn known(&self) -> anyhow::Result<&[Yank]> {
        match &self.unreadable {
            Some(why) => bail!("cannot tell which releases are yanked: {why}"),
            None => Ok(&self.list),
        }
    }

    /// The yank of `version`, if it is yanked.
    pub fn of(&self, version: &ReleaseVersion) -> anyhow::Result<Option<&Yank>> {
        let version = version.to_string();
        Ok(self.known()?.iter().find(|y| y.version == version))
    }

    /// Every yanked version (semver spelling).
    pub fn versions(&self) -> anyhow::Result<Vec<String>> {
        Ok(self.known()?.iter().map(|y| y.version.clone()).collect())
    }

    /// Refuses `what` (`release`, `images --push`) of a yanked version, naming the yank.
    pub fn refuse(&self, version: &ReleaseVersion, what: &str) -> anyhow::Result<()> {
        if let Some(yank) = self.of(version)? {
            bail!(
                "{version} was yanked on {} ({REFS}v{version} on origin): {:?}. No {what} of it: release a new \
                 version (`cargo xtask bump patch`), or take the yank back with `cargo xtask yank {version} --undo`",
                yank.when,
                yank.reason
            );
        }
        Ok(())
    }
}

fn has_origin(sh: &Shell) -> bool {
    cmd!(sh, "git remote get-url origin").quiet().ignore_stderr().read().is_ok()
}

/// Brings origin's yanks into this clone, dropping those origin no longer has.
fn fetch(sh: &Shell) -> anyhow::Result<()> {
    if !has_origin(sh) {
        return Ok(());
    }
    let refspec = format!("+{REFS}*:{REFS}*");
    let out = cmd!(sh, "git fetch --quiet --prune --no-tags origin {refspec}").quiet().ignore_status().output()?;
    if !out.status.success() {
        bail!("fetching {REFS}* from origin: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// The yanks this clone has.
fn local(sh: &Shell) -> anyhow::Result<Vec<Yank>> {
    let (format, prefix) = ("--format=%(refname)", REFS.trim_end_matches('/'));
    let names = cmd!(sh, "git for-each-ref {format} {prefix}").quiet().read()?;
    let mut yanks = Vec::new();
    for name in names.lines().filter(|l| !l.is_empty()) {
        let Some(version) = name.strip_prefix(REFS).and_then(|t| t.strip_prefix('v')) else { continue };
        let object = cmd!(sh, "git cat-file -p {name}").quiet().read().with_context(|| format!("reading {name}"))?;
        let date = "--format=%(taggerdate:iso-strict)";
        let when = cmd!(sh, "git for-each-ref {date} {name}").quiet().read()?;
        yanks.push(Yank { version: version.to_string(), reason: reason_of(&object), when });
    }
    Ok(yanks)
}

/// The message of a tag object as `git cat-file -p` prints it: what follows the headers.
fn reason_of(tag_object: &str) -> String {
    tag_object.split_once("\n\n").map(|(_, message)| message.trim().to_string()).unwrap_or_default()
}

/// Whether origin has the yank of `tag` (`vX.Y.Z`): the proof that it is recorded.
pub fn on_origin(sh: &Shell, tag: &str) -> anyhow::Result<bool> {
    let name = format!("{REFS}{tag}");
    if !has_origin(sh) {
        return Ok(cmd!(sh, "git rev-parse --verify --quiet {name}").quiet().ignore_stderr().read().is_ok());
    }
    let out = cmd!(sh, "git ls-remote origin {name}").quiet().read().context("asking origin for its yanks")?;
    Ok(!out.trim().is_empty())
}

/// Records the yank of `tag` with `reason`: the tag object, the ref here, then on origin.
pub fn record(sh: &Shell, tag: &str, reason: &str) -> anyhow::Result<()> {
    let commit = commit_of_tag(sh, tag)?;
    let ident = cmd!(sh, "git var GIT_COMMITTER_IDENT").quiet().ignore_stderr().read().unwrap_or_else(|_| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        format!("gati release <release@gati.invalid> {now} +0000")
    });
    let object = format!("object {commit}\ntype commit\ntag yanked/{tag}\ntagger {ident}\n\n{}\n", reason.trim());
    let oid = cmd!(sh, "git mktag").stdin(object).quiet().read().context("git mktag: the yank's tag object")?;
    let name = format!("{REFS}{tag}");
    cmd!(sh, "git update-ref {name} {oid}").quiet().run()?;
    if has_origin(sh) {
        let refspec = format!("{name}:{name}");
        cmd!(sh, "git push --quiet origin {refspec}")
            .quiet()
            .run()
            .with_context(|| format!("pushing {name} to origin"))?;
    }
    Ok(())
}

/// Removes the yank of `tag`: on origin first (what others read), then here.
pub fn remove(sh: &Shell, tag: &str) -> anyhow::Result<()> {
    let name = format!("{REFS}{tag}");
    if has_origin(sh) && on_origin(sh, tag)? {
        let refspec = format!(":{name}");
        cmd!(sh, "git push --quiet origin {refspec}")
            .quiet()
            .run()
            .with_context(|| format!("deleting {name} on origin"))?;
    }
    let _ = cmd!(sh, "git update-ref -d {name}").quiet().ignore_stderr().run();
    Ok(())
}

/// The commit of a release tag, fetched from origin when this clone lacks it.
fn commit_of_tag(sh: &Shell, tag: &str) -> anyhow::Result<String> {
    if let Some(commit) = crate::ops::git::local_tag(sh, tag) {
        return Ok(commit);
    }
    if has_origin(sh) {
        let refspec = format!("+refs/tags/{tag}:refs/tags/{tag}");
        let _ = cmd!(sh, "git fetch --quiet --no-tags origin {refspec}").quiet().ignore_stderr().run();
    }
    crate::ops::git::local_tag(sh, tag)
        .with_context(|| format!("{tag} is neither a tag here nor on origin: only a release can be yanked"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_is_the_tag_objects_message() {
        let object =
            "object 0123\ntype commit\ntag yanked/v0.1.2\ntagger A <a@b> 1 +0000\n\nthe backend crashes\non start\n";
        assert_eq!(reason_of(object), "the backend crashes\non start");
    }

    #[test]
    fn a_yanked_version_is_refused_naming_the_reason_and_unknown_yanks_refuse_everything() {
        let v = |s| ReleaseVersion::parse(s).unwrap();
        let yank = Yank { version: "0.1.2".into(), reason: "crashes on start".into(), when: "2026-01-01".into() };
        let yanks = Yanks::of_list(vec![yank]);
        let refused = yanks.refuse(&v("0.1.2"), "release").unwrap_err().to_string();
        assert!(refused.contains("crashes on start") && refused.contains("--undo"), "{refused}");
        assert!(yanks.refuse(&v("0.1.3"), "release").is_ok());
        let unknown = Yanks { list: vec![], unreadable: Some("origin is not answering".into()) };
        assert!(unknown.refuse(&v("0.1.3"), "release").unwrap_err().to_string().contains("not answering"));
    }
}
