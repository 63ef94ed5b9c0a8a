//! bump: the version into every surface and this release's section into CHANGELOG.md,
//! committed as "Release X". Done when HEAD is that commit: every surface says the version
//! and none of the release commit's files has changed since.

use xshell::cmd;

use super::{release_commit_files, Release, Step};
use crate::{
    model::{changelog, surfaces},
    ops::{files, git},
};

pub struct Bump;

impl Step for Bump {
    fn name(&self) -> &'static str {
        "bump"
    }

    fn describe(&self) -> &'static str {
        "the version into every surface, the changes into CHANGELOG.md; commit \"Release X\""
    }

    fn makes_the_release_commit(&self) -> bool {
        true
    }

    fn done_by_whoever_tagged(&self) -> bool {
        true
    }

    fn is_done(&self, _: &Release, _commit: &str) -> anyhow::Result<bool> {
        // Asked only of a tree whose release commit is HEAD.
        Ok(true)
    }

    fn run(&self, release: &mut Release) -> anyhow::Result<()> {
        let (sh, exec) = (release.sh, &release.exec);
        let root = sh.current_dir();
        let found = surfaces::Surfaces::read(&root)?;
        let edits = match found.current(&release.config.services).ok().as_ref() == Some(&release.version) {
            true => vec![],
            false => found.edits(&release.config.services, &release.version)?,
        };
        let new_changelog = changelog_with_section(release)?;
        for edit in edits.iter().filter(|e| e.before != e.after) {
            exec.preview(|| surfaces::unified_diff(edit));
        }
        let files = release_commit_files();
        if !edits.is_empty() || new_changelog.is_some() {
            let what = format!("write {} and {}", files[..4].join(", "), changelog::CHANGELOG);
            exec.run(&what, || {
                // The surfaces first: once they say the version, a run stopped here is continued.
                surfaces::write_all(&root, &edits)?;
                match &new_changelog {
                    Some(text) => files::replace(&root.join(changelog::CHANGELOG), text),
                    None => Ok(()),
                }
            })?;
        }
        // An earlier run may have written the files and been stopped before its commit.
        let uncommitted = git::changed_files(sh)?.iter().any(|f| files.contains(&f.as_str()));
        if edits.is_empty() && new_changelog.is_none() && !uncommitted {
            return Ok(());
        }
        let message = format!("Release {}", release.version);
        let what = format!("git commit -m \"{message}\" -- {}", files.join(" "));
        exec.run(&what, || {
            cmd!(sh, "git add -- {files...}").quiet().run()?;
            cmd!(sh, "git commit --quiet -m {message} -- {files...}").quiet().run().map_err(|e| {
                anyhow::anyhow!("committing the bump ({e}): check `git status`, then run the same command again")
            })
        })?;
        Ok(())
    }
}

/// CHANGELOG.md with this release's section first (git-cliff: the commits since the previous
/// tag), or `None` when it has the section already (an earlier run wrote it). A dry run shows
/// the new section.
fn changelog_with_section(release: &Release) -> anyhow::Result<Option<String>> {
    let path = release.sh.current_dir().join(changelog::CHANGELOG);
    let old = std::fs::read_to_string(&path).ok();
    if old.as_deref().and_then(|c| changelog::section_of(c, &release.version)).is_some() {
        return Ok(None);
    }
    let commits = git::cliff(release.sh, &release.python, &release.version)?;
    let section = changelog::section(&commits, &release.version);
    release.exec.preview(|| {
        let added: String = section.lines().map(|l| format!("+{l}\n")).collect();
        format!("--- {} (the new section, first)\n{added}", changelog::CHANGELOG)
    });
    Ok(changelog::with_section(old.as_deref(), &release.version, &section))
}
