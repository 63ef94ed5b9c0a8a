//! tag: `vX.Y.Z`, locally, on the commit that was built and tested. Done when the tag is there.

use xshell::cmd;

use super::{Release, Step};
use crate::ops::git;

pub struct Tag;

impl Step for Tag {
    fn name(&self) -> &'static str {
        "tag"
    }

    fn describe(&self) -> &'static str {
        "tag vX on the commit that was built and tested"
    }

    fn done_by_whoever_tagged(&self) -> bool {
        true
    }

    fn is_done(&self, release: &Release, commit: &str) -> anyhow::Result<bool> {
        Ok(git::local_tag(release.sh, &release.tag).as_deref() == Some(commit))
    }

    fn run(&self, release: &mut Release) -> anyhow::Result<()> {
        let (sh, tag) = (release.sh, &release.tag);
        let message = format!("gati {}", release.version);
        let what = format!("git tag --annotate {tag} --message \"{message}\"");
        release.exec.run(&what, || Ok(cmd!(sh, "git tag --annotate {tag} --message {message}").quiet().run()?))?;
        Ok(())
    }
}
