//! push-git: the release commit and its tag to origin, in one atomic push. Done when origin's
//! tag names the release commit.

use anyhow::Context;
use xshell::cmd;

use super::{Release, Step};
use crate::ops::git;

pub struct PushGit;

impl Step for PushGit {
    fn name(&self) -> &'static str {
        "push-git"
    }

    fn describe(&self) -> &'static str {
        "push the release commit and the tag to origin, atomically"
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
            cmd!(sh, "git push --atomic origin {branch} {tag}").quiet().run().with_context(|| {
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
