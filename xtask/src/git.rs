//! What the images and the release need to know from git.

use anyhow::Context;
use xshell::{cmd, Shell};

#[derive(Debug, Clone)]
pub struct Head {
    pub commit: String,
    /// Uncommitted changes to tracked or untracked (not ignored) files.
    pub dirty: bool,
    /// The commit's date, ISO 8601: the images' `created` label, so that an unchanged tree
    /// builds byte-identical images.
    pub date: String,
}

impl Head {
    pub fn read(sh: &Shell) -> anyhow::Result<Head> {
        let commit = cmd!(sh, "git rev-parse HEAD").quiet().read().context("reading HEAD: is this a git clone?")?;
        let dirty = !cmd!(sh, "git status --porcelain").quiet().read()?.trim().is_empty();
        let format = "--format=%cI";
        let date = cmd!(sh, "git show -s {format} HEAD").quiet().read()?;
        Ok(Head { commit, dirty, date })
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
