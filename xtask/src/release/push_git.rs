//! push-git: the release commit and its tag to origin, in one atomic push. Done when origin's
//! tag names the release commit.

use anyhow::{bail, Context};
use xshell::{cmd, Shell};

use super::{Release, Step};
use crate::ops::{
    git, interrupt,
    retry::{self, Backoff},
};

pub struct PushGit;

impl Step for PushGit {
    fn name(&self) -> &'static str {
        "push-git"
    }

    fn describe(&self) -> &'static str {
        "push the release commit and the tag to origin, atomically"
    }

    fn done_by_whoever_tagged(&self) -> bool {
        true
    }

    fn publishes(&self) -> bool {
        true
    }

    fn is_done(&self, release: &Release, commit: &str) -> anyhow::Result<bool> {
        Ok(git::remote_tag(release.sh, &release.tag)?.as_deref() == Some(commit))
    }

    fn run(&self, release: &mut Release) -> anyhow::Result<()> {
        let sh = release.sh;
        let branch = format!("HEAD:refs/heads/{}", release.config.branch);
        let tag = format!("refs/tags/{}", release.tag);
        let what = format!("git push --atomic origin {branch} {tag}");
        release.exec.run(&what, || {
            push(sh, &release.tag, &branch, &tag).with_context(|| {
                format!(
                    "pushing the release commit and {} to origin: the images and the package are published; \
                     once origin accepts pushes again, run the same command to push them",
                    release.tag
                )
            })
        })?;
        Ok(())
    }
}

/// `git push --atomic`, again while it fails for a passing reason (within GATI_RETRY_SECONDS);
/// after a failure, origin is asked first whether the push arrived all the same (the answer
/// was lost): its tag naming HEAD is done.
fn push(sh: &Shell, release_tag: &str, branch: &str, tag: &str) -> anyhow::Result<()> {
    let head = git::head(sh)?;
    let mut backoff = Backoff::default();
    loop {
        let command = cmd!(sh, "git push --quiet --atomic origin {branch} {tag}").quiet().ignore_status();
        let output = interrupt::output_of(command.into())?;
        if output.status.success() {
            return Ok(());
        }
        let said = String::from_utf8_lossy(&output.stderr).trim().to_string();
        if git::remote_tag(sh, release_tag).ok().flatten().as_deref() == Some(&head) {
            println!("  origin has {release_tag} at {}, though git push failed: {said}", git::short(&head));
            return Ok(());
        }
        match retry::transient_failure(&said) {
            Some(why) => backoff.wait(&format!("git push to origin: {why}"), None).context(said)?,
            None => bail!("git push failed: {said}"),
        }
    }
}
