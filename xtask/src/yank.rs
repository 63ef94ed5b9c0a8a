//! `cargo xtask yank X --reason "…"`: take a bad release back, in one command that can be run
//! again until it is done.
//!
//! 1. Record the yank where a fresh machine sees it: `refs/yanked/vX` on origin
//!    ([`crate::ops::yanks`]). From then on `release`, `images --push` and a resumed release
//!    of X are refused with the reason, and the floating tags skip X when they pick the newest.
//! 2. Move every floating tag that names X's indexes (`latest`, `X.Y`) back to the newest
//!    release of its scope that is not yanked: the one deliberate exception to "never
//!    backwards". X's immutable tag and digests stay, so whoever pinned them keeps running.
//! 3. Print PyPI's page for X and the reason to paste there (PyPI has no yank API).
//!
//! Every step is proven from the world (origin's refs, the registry's digests), so a run
//! interrupted midway, run again, completes. `--undo` removes the record and moves the floating
//! tags forward again, to the newest release that is not yanked (X, unless a newer one came).

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{bail, Context};
use xshell::Shell;

use crate::{
    flags,
    images::{Plan, PlanOptions},
    model::{config, tags, version::ReleaseVersion},
    ops::{
        exec::{Executor, Mode},
        interrupt, yanks,
    },
    python::index::PROJECT,
};

/// Where one floating tag of the yanked release goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub tag: String,
    /// The newest release of its scope that is not yanked; none when there is no other.
    pub to: Option<ReleaseVersion>,
}

/// For each floating tag a release of `version` gets, the newest stable release of its scope
/// among the registry's tags (`existing`) that is not `yanked`. Pure.
pub fn floating_targets(version: &ReleaseVersion, existing: &[String], yanked: &[String]) -> Vec<Target> {
    let stable: Vec<ReleaseVersion> = (existing.iter())
        .filter(|t| !yanked.contains(t))
        .filter_map(|t| ReleaseVersion::parse(t).ok())
        .filter(|v| !v.is_prerelease())
        .collect();
    let floating = tags::for_build(version, None).floating;
    floating
        .into_iter()
        .map(|tag| {
            let in_scope = |v: &&ReleaseVersion| match tag.as_str() {
                "latest" => true,
                line => format!("{}.{}", v.semver().major, v.semver().minor) == line,
            };
            let to = stable.iter().filter(in_scope).max().cloned();
            Target { tag, to }
        })
        .collect()
}

/// One floating tag of one image, to be pointed at `to`'s index.
struct TagMove {
    repo: String,
    tag: String,
    to: ReleaseVersion,
    digest: String,
    /// It names that digest already.
    done: bool,
}

impl flags::Yank {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        interrupt::install();
        let config = config::load_default(sh)?;
        let version = ReleaseVersion::parse(self.version.strip_prefix('v').unwrap_or(&self.version))?;
        let tag = format!("v{version}");
        let options = PlanOptions { allow_dirty: true, ..PlanOptions::default() };
        let plan = Plan::for_version(sh, config, version.clone(), &options)?;
        let recorded = plan.yanks.of(&version)?.cloned();
        let reason = match (self.undo, &recorded, &self.reason) {
            (true, _, _) => String::new(),
            (false, Some(yank), Some(asked)) if asked.trim() != yank.reason => {
                println!("{version} is yanked already, on {}, for {:?}: that reason stays", yank.when, yank.reason);
                yank.reason.clone()
            }
            (false, Some(yank), _) => yank.reason.clone(),
            (false, None, Some(asked)) if !asked.trim().is_empty() => asked.trim().to_string(),
            (false, None, _) => bail!("--reason \"…\" is required: it is recorded, and users read it on PyPI"),
        };
        let mut yanked = plan.yanks.versions()?;
        yanked.retain(|v| *v != version.to_string());
        if !self.undo {
            yanked.push(version.to_string());
        }
        let existing: Vec<String> = plan.each_image(|_, image, registry| registry.tags(&image.repo))?.concat();
        if !existing.contains(&version.to_string()) {
            bail!("{version} is not on {}: there is nothing to yank", plan.config.registry);
        }
        let targets = floating_targets(&version, &existing, &yanked);
        let moves = tag_moves(&plan, &targets)?;
        let recorded_on_origin = yanks::on_origin(sh, &tag)?;
        show_plan(&self, &version, &reason, &targets, &moves, recorded_on_origin);
        let exec = Executor::new(Mode::dry_run_if(self.dry_run));
        exec.after(|| confirm(&self))?;
        act(sh, &self, &plan, &exec, &tag, &reason, recorded_on_origin, &moves)?;
        let done = if self.undo { "taken back" } else { "yanked" };
        exec.finish(
            || {
                println!("{version} is {done}");
                if !self.undo {
                    print!("{}", pypi_instructions(&plan.config.index_simple, &version, &reason));
                }
                match index_says(&plan.config, &version) {
                    Ok(said) => println!("{said}"),
                    Err(e) => println!("cannot tell what the index says of {version}: {e:#}"),
                }
            },
            &format!("To do it: cargo xtask yank {version}{} --yes", if self.undo { " --undo" } else { "" }),
        );
        Ok(())
    }
}

/// Each floating tag of each image, with the digest its target's index has there.
fn tag_moves(plan: &Plan, targets: &[Target]) -> anyhow::Result<Vec<TagMove>> {
    let per_image = plan.each_image(|_, image, registry| {
        let mut moves = Vec::new();
        for target in targets {
            let Some(to) = &target.to else { continue };
            let digest = registry.digest(&image.repo, &to.to_string())?.with_context(|| {
                format!("{}:{to} is listed but not served: the floating tags cannot go there", image.reference)
            })?;
            let done = registry.digest(&image.repo, &target.tag)?.as_deref() == Some(digest.as_str());
            moves.push(TagMove { repo: image.repo.clone(), tag: target.tag.clone(), to: to.clone(), digest, done });
        }
        Ok(moves)
    })?;
    Ok(per_image.into_iter().flatten().collect())
}

fn show_plan(
    flags: &flags::Yank,
    version: &ReleaseVersion,
    reason: &str,
    targets: &[Target],
    moves: &[TagMove],
    recorded: bool,
) {
    match (flags.undo, recorded) {
        (false, true) => println!("the yank of {version} is recorded on origin already: {reason:?}"),
        (false, false) => {
            println!("the yank of {version} is recorded on origin as {}v{version}: {reason:?}", yanks::REFS)
        }
        (true, true) => println!("the yank of {version} ({}v{version} on origin) is removed", yanks::REFS),
        (true, false) => println!("no yank of {version} is recorded on origin"),
    }
    if !flags.undo && moves.iter().any(|m| !m.done) {
        println!(
            "the floating tags go back to the newest release that is not yanked: the one deliberate exception to \
             \"never backwards\""
        );
    }
    for target in targets.iter().filter(|t| t.to.is_none()) {
        println!(
            "{} has no release that is not yanked: it stays on {version} (a registry deletes a tag only with its \
             image, which {version}'s pins still name); release a fix to move it",
            target.tag
        );
    }
    for m in moves {
        let state = if m.done { "  (there already)" } else { "" };
        println!("  {}:{} -> {} ({}){state}", m.repo, m.tag, m.to, m.digest);
    }
    println!("{version}'s own tag and digests stay: whoever pinned them keeps running");
}

/// Asks on a terminal; without one, stops after the plan unless `--yes`.
fn confirm(flags: &flags::Yank) -> anyhow::Result<()> {
    if flags.yes {
        return Ok(());
    }
    let again = format!("cargo xtask yank {}{} --yes", flags.version, if flags.undo { " --undo" } else { "" });
    if !std::io::stdin().is_terminal() {
        bail!("stopping here because there is no terminal to confirm on: nothing was changed. Run `{again}`");
    }
    print!("{}? [y/N] ", if flags.undo { "Take the yank back" } else { "Yank" });
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if !matches!(answer.trim(), "y" | "Y" | "yes") {
        bail!("nothing was changed");
    }
    Ok(())
}

/// The record first (so that nothing publishes X or moves a tag to it meanwhile), then the
/// tags; undoing, the record goes first too (the tags' targets were decided without it).
#[allow(clippy::too_many_arguments)]
fn act(
    sh: &Shell,
    flags: &flags::Yank,
    plan: &Plan,
    exec: &Executor,
    tag: &str,
    reason: &str,
    recorded: bool,
    moves: &[TagMove],
) -> anyhow::Result<()> {
    let name = format!("{}{tag}", yanks::REFS);
    match (flags.undo, recorded) {
        (false, false) => {
            let what = format!("git mktag <yanked/{tag}: {reason:?}> && git push origin {name}");
            exec.run(&what, || yanks::record(sh, tag, reason))?;
        }
        (true, true) => {
            exec.run(&format!("git push origin :{name}"), || yanks::remove(sh, tag))?;
        }
        _ => {}
    }
    let pending: Vec<&TagMove> = moves.iter().filter(|m| !m.done).collect();
    let lines: Vec<String> = pending
        .iter()
        .map(|m| format!("registry: {}:{} -> the digest of {}:{}", m.repo, m.tag, m.repo, m.to))
        .collect();
    let fix =
        || format!("not every floating tag moved: run the same command again once {} answers", plan.config.registry);
    exec.run_all(&lines, || {
        for m in &pending {
            interrupt::check()?;
            plan.registry().put_tag(&m.repo, &m.digest, &m.tag)?;
            println!("moved {}:{} to {}", m.repo, m.tag, m.to);
        }
        Ok(())
    })
    .with_context(fix)?;
    Ok(())
}

/// Whether the index has yanked `version`, as it says through PEP 691's JSON simple API (the
/// `yanked` field of its files). An index that answers only HTML (pypiserver) cannot say, and
/// then that is the answer: never a guess.
pub fn index_says(config: &config::Config, version: &ReleaseVersion) -> anyhow::Result<String> {
    let page = format!("{}/{PROJECT}/", config.index_simple.trim_end_matches('/'));
    let listing = crate::release::manifest::simple_page(&page)?;
    let names = crate::python::index::dist_names(&version.pep440());
    let files: Vec<_> = listing.files.iter().filter(|f| names.contains(&f.name)).collect();
    let pep440 = version.pep440();
    Ok(match (listing.json, files.iter().find_map(|f| f.yanked.as_ref())) {
        (false, _) => format!(
            "cannot tell whether the index has yanked {pep440}: {page} answers no PEP 691 JSON (Accept: \
             application/vnd.pypi.simple.v1+json), where an index says what is yanked"
        ),
        (true, _) if files.is_empty() => format!("the index lists no file of {pep440}"),
        (true, Some(reason)) => format!("the index has yanked {pep440}: {reason:?}"),
        (true, None) => format!("the index has not yanked {pep440}"),
    })
}

/// PyPI's page for the release (built from the configured index) and what to paste there:
/// PyPI has no API to yank (warehouse #12708).
pub fn pypi_instructions(index_simple: &str, version: &ReleaseVersion, reason: &str) -> String {
    format!(
        "\nPyPI has no API to yank: open\n\n    {}\n\nchoose \"Yank\", and paste as the reason:\n\n    {reason}\n\n\
         `cargo xtask verify {version}` then says whether the index has yanked it.\n",
        pypi_release_page(index_simple, &version.pep440())
    )
}

/// `https://pypi.org/manage/project/gati/release/X/` for `https://pypi.org/simple/`; the same
/// path on any other index's host.
pub fn pypi_release_page(index_simple: &str, pep440: &str) -> String {
    let base = index_simple.trim_end_matches('/');
    let base = base.strip_suffix("/simple").unwrap_or(base);
    format!("{base}/manage/project/{PROJECT}/release/{pep440}/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> ReleaseVersion {
        ReleaseVersion::parse(s).unwrap()
    }

    fn strings(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    fn target(tag: &str, to: Option<&str>) -> Target {
        Target { tag: tag.into(), to: to.map(v) }
    }

    #[test]
    fn a_yank_sends_each_floating_tag_to_the_newest_release_of_its_scope_that_is_not_yanked() {
        let existing = strings(&["0.1.0", "0.1.1", "0.1.2", "0.1", "0.2.0", "0.2.1", "latest", "0.3.0-rc.1"]);
        // 0.2.1 yanked: 0.2 and latest go back to 0.2.0; a pre-release never counts.
        assert_eq!(
            floating_targets(&v("0.2.1"), &existing, &strings(&["0.2.1"])),
            [target("0.2", Some("0.2.0")), target("latest", Some("0.2.0"))]
        );
        // 0.2.0 yanked too: 0.2 has nothing left; latest goes back to the 0.1 line.
        assert_eq!(
            floating_targets(&v("0.2.1"), &existing, &strings(&["0.2.1", "0.2.0"])),
            [target("0.2", None), target("latest", Some("0.1.2"))]
        );
        // Undone (not yanked any more): forward again to it.
        assert_eq!(
            floating_targets(&v("0.2.1"), &existing, &[]),
            [target("0.2", Some("0.2.1")), target("latest", Some("0.2.1"))]
        );
        // A pre-release has no floating tag to move.
        assert_eq!(floating_targets(&v("0.3.0-rc.1"), &existing, &strings(&["0.3.0-rc.1"])), []);
    }

    #[test]
    fn the_pypi_page_is_built_from_the_configured_index() {
        assert_eq!(
            pypi_release_page("https://pypi.org/simple/", "0.2.0rc1"),
            "https://pypi.org/manage/project/gati/release/0.2.0rc1/"
        );
        assert_eq!(
            pypi_release_page("https://test.pypi.org/simple", "1.0.0"),
            "https://test.pypi.org/manage/project/gati/release/1.0.0/"
        );
    }
}
