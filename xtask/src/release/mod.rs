//! `cargo xtask release VERSION`: one version to the registry and the index, together.
//!
//! The release is its [`STEPS`], in an order that keeps every failure resumable; each step is
//! a file of this folder holding what it does (`run`) beside its proof that it is done
//! (`is_done`), read from the world alone: git, the registry (tags, digests, the images'
//! revision labels) and the index (file names and sha256s). The journal in `.tools/state` only
//! keeps timings and the smoke test's result, so a fresh CI runner with no journal continues a
//! release that a laptop began, and finds a finished one finished. Running the same command
//! again continues from the first step that is not done; after a complete release it changes
//! nothing and says so. A run that makes the release commit itself skips the proofs of the
//! later steps (nothing can come from a commit that did not exist); the steps still read the
//! registry and the index before they act.
//!
//! Before any step, the [`checks`] (the preflight) find every problem at once, changing
//! nothing. Every effect goes through the [`Executor`]: `--dry-run` runs this same code and
//! prints the commands instead of running them.

mod build;
mod bump;
pub mod checks;
mod floating_tags;
pub mod journal;
pub mod manifest;
pub mod mcp_registry;
mod package;
mod push_git;
mod push_images;
mod tag;
mod upload;
mod verify;

use std::{
    io::{BufRead, IsTerminal, Write},
    path::PathBuf,
    time::Instant,
};

use anyhow::{bail, Context};
use xshell::Shell;

use crate::{
    images::{Plan, PlanOptions},
    model::{
        changelog,
        config::{self, Config},
        surfaces::{self, Surfaces},
        version::ReleaseVersion,
    },
    ops::{
        exec::{Executor, Mode},
        git,
        interrupt::{self, Interrupted},
        provision,
    },
};
use journal::Journal;

/// One step of the release.
pub trait Step: Sync {
    /// Its name in the output, the journal and the help.
    fn name(&self) -> &'static str;
    /// What it does, in a line.
    fn describe(&self) -> &'static str;
    /// Whether it is done for the release commit `commit`, proven from the world alone. Only
    /// reads.
    fn is_done(&self, release: &Release, commit: &str) -> anyhow::Result<bool>;
    /// Does it, every effect through `release.exec`.
    fn run(&self, release: &mut Release) -> anyhow::Result<()>;
    /// It makes the release commit: the images are planned again after it, and no later step
    /// can be done already (nothing came from a commit that did not exist).
    fn makes_the_release_commit(&self) -> bool {
        false
    }
    /// A release of an existing tag leaves it out: whoever tagged did it.
    fn done_by_whoever_tagged(&self) -> bool {
        false
    }
    /// Users see what it does: once each such step is done, the release is complete.
    fn publishes(&self) -> bool {
        false
    }
    /// The command that continues after it failed, where that is not the release's own.
    fn continued_by(&self, _release: &Release) -> Option<String> {
        None
    }
}

/// The release, in order.
pub const STEPS: [&dyn Step; 9] = [
    &bump::Bump,
    &build::Build,
    &tag::Tag,
    &push_images::PushImages,
    &package::Package,
    &upload::Upload,
    &floating_tags::FloatingTags,
    &push_git::PushGit,
    &verify::Verify,
];

/// Where a release's commit comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The tree: this run bumps it, commits, tags and pushes.
    Tree,
    /// An existing tag (`--from-tag`, CI on a tag push): the commit and the tag exist, made and
    /// pushed by whoever tagged.
    Tag,
}

/// The steps, a line each, for `cargo xtask release --help`.
pub fn steps_help() -> String {
    let mut help = String::from("Steps, in order (each proves from the world whether it is done):\n");
    for step in STEPS {
        help.push_str(&format!("  {:<14} {}\n", step.name(), step.describe()));
    }
    help.push_str("\nRun the same command again after any failure to continue from the first unfinished step.");
    help
}

/// Everything one run of a release knows and carries from step to step.
pub struct Release<'a> {
    pub sh: &'a Shell,
    /// The tools' Python (`.tools/venv`): build, twine, git-cliff.
    pub python: PathBuf,
    pub config: Config,
    pub version: ReleaseVersion,
    /// `vX.Y.Z`.
    pub tag: String,
    /// Timings, and the smoke test's result.
    pub journal: Journal,
    /// Where its files are kept between runs.
    pub files: Files,
    /// From the tree, or from an existing tag (`--from-tag`).
    pub start: Start,
    /// Every effect goes through it; a dry run's prints the same commands and runs none.
    pub exec: Executor,
    /// The images of HEAD: read again once the bump has made the release commit.
    pub plan: Plan,
    /// The command that continues this release.
    resume_command: String,
}

/// The release's files in the state directory, kept between runs: a resumed upload sends the
/// same bytes, and the release files wait for the GitHub Release.
pub struct Files {
    /// The sdist and the wheel that are uploaded.
    pub dist: PathBuf,
    /// The package built beside the compile, naming tags: it proves the packaging works.
    pub trial: PathBuf,
    /// sdist, wheel, SHA256SUMS, digests.txt, NOTES.md.
    pub release: PathBuf,
}

impl Files {
    fn of(state: &std::path::Path, version: &ReleaseVersion) -> Files {
        Files {
            dist: state.join(format!("release-{version}-dist")),
            trial: state.join(format!("release-{version}-trial")),
            release: state.join(format!("release-{version}-files")),
        }
    }
}

/// What `cargo xtask release` is asked: which version, and how.
pub struct Request {
    pub asked: Asked,
    /// No question after the preflight.
    pub yes: bool,
    pub mode: Mode,
}

/// The version a release is asked for.
pub enum Asked {
    /// An explicit version (either spelling), or a kind of bump of the current one (`patch`, `rc`).
    Version(String),
    /// An existing tag, `vX.Y.Z` (`--from-tag`).
    Tag(String),
}

/// `cargo xtask release`: the preflight, a question, then each step not yet done.
pub fn run(sh: &Shell, request: &Request) -> anyhow::Result<()> {
    interrupt::install();
    let dry_run = request.mode == Mode::DryRun;
    let config = config::load_default(sh)?;
    if !dry_run && surfaces::recover(&sh.current_dir())? {
        println!("finished writing the version surfaces, which an interrupted run had begun");
    }
    let current = Surfaces::read(&sh.current_dir())?.current(&config.services)?;
    let version = resolve(sh, &request.asked, &current)?;
    let start = match request.asked {
        Asked::Tag(_) => Start::Tag,
        Asked::Version(_) => Start::Tree,
    };
    let mut release = Release::new(sh, config, version, start, request.mode)?;
    // A yanked version is never published again, whoever runs it, wherever.
    release.plan.yanks.refuse(&release.version, "release")?;

    // A release whose tree already says this version may be finished: prove it from the
    // world, before asking anything else of this machine.
    if release.version == current && release.commit_of_tree()?.is_some() {
        let started = Instant::now();
        if release.is_complete()? {
            println!("{} is already released ({:.1} s to verify)", release.tag, started.elapsed().as_secs_f64());
            if !dry_run && !manifest::kept(&release.files.release, &release.version) {
                release.describe_as_data(&release.journal_timings())?;
            }
            return Ok(());
        }
    }
    release.python = provision::python_tools(sh)?;
    provision::toolchain_on_ci(sh, &release.config)?;
    let problems = checks::preflight(&release, &current);
    if !problems.is_empty() {
        bail!("preflight found {} problem(s); nothing was changed:\n  - {}", problems.len(), problems.join("\n  - "));
    }
    release.exec.after(|| release.confirm(request.yes))?;
    println!("release {} (Python {}), tag {}", release.version, release.version.pep440(), release.tag);
    release.run_steps()
}

/// The version to release: the tag's, an explicit one, or the current one bumped by a kind
/// (`patch`, `rc`, ...) — unless this machine has an unfinished release of the current
/// version, which a kind would skip past.
fn resolve(sh: &Shell, asked: &Asked, current: &ReleaseVersion) -> anyhow::Result<ReleaseVersion> {
    let asked = match asked {
        Asked::Tag(tag) => {
            return ReleaseVersion::parse(tag.strip_prefix('v').unwrap_or(tag))
                .with_context(|| format!("--from-tag {tag}: not a release tag like v1.2.3"))
        }
        Asked::Version(asked) => asked,
    };
    if let Ok(explicit) = ReleaseVersion::parse(asked) {
        return Ok(explicit);
    }
    let unfinished = Journal::open(&state_dir(sh), &current.to_string())?.unfinished()
        && git::remote_tag(sh, &format!("v{current}")).ok().flatten().is_none();
    if unfinished {
        bail!("the release of {current} is not finished: run `cargo xtask release {current}` to continue it");
    }
    current.bump(asked)
}

/// The repository's release state: journals and kept files.
fn state_dir(sh: &Shell) -> PathBuf {
    sh.current_dir().join(provision::TOOLS_DIR).join("state")
}

impl<'a> Release<'a> {
    fn new(
        sh: &'a Shell,
        config: Config,
        version: ReleaseVersion,
        start: Start,
        mode: Mode,
    ) -> anyhow::Result<Release<'a>> {
        let state = state_dir(sh);
        let plan = release_plan(sh, &config, &version)?;
        Ok(Release {
            sh,
            python: provision::tools_python(sh),
            tag: format!("v{version}"),
            journal: Journal::open(&state, &version.to_string())?,
            files: Files::of(&state, &version),
            resume_command: match start {
                Start::Tag => format!("cargo xtask release --from-tag v{version} --yes"),
                Start::Tree => format!("cargo xtask release {version}"),
            },
            start,
            exec: Executor::new(mode),
            plan,
            config,
            version,
        })
    }

    /// A release of `version` that only its checks look at (`cargo xtask doctor`): changes
    /// nothing, and the tools may not be installed yet.
    pub fn for_checks(sh: &'a Shell, config: Config, version: ReleaseVersion) -> anyhow::Result<Release<'a>> {
        Release::new(sh, config, version, Start::Tree, Mode::DryRun)
    }

    /// This run's steps: all of them, or those of a release of an existing tag.
    fn steps(&self) -> impl Iterator<Item = &'static dyn Step> + '_ {
        STEPS.into_iter().filter(|s| !(self.start == Start::Tag && s.done_by_whoever_tagged()))
    }

    /// HEAD, when the release's version is committed there (every surface says it, unchanged):
    /// the commit this release builds, tags and publishes.
    pub fn commit_of_tree(&self) -> anyhow::Result<Option<String>> {
        let root = self.sh.current_dir();
        let says_it = Surfaces::read(&root)?.current(&self.config.services).ok().as_ref() == Some(&self.version);
        let changed = git::changed_files(self.sh)?;
        let committed = says_it && !changed.iter().any(|f| release_commit_files().contains(&f.as_str()));
        Ok(if committed { Some(git::head(self.sh)?) } else { None })
    }

    /// Everything a user sees is in place: the images, the package, the floating tags, the tag
    /// on origin.
    fn is_complete(&self) -> anyhow::Result<bool> {
        let Some(commit) = self.commit_of_tree()? else { return Ok(false) };
        for step in self.steps().filter(|s| s.publishes()) {
            if !step.is_done(self, &commit)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Each step in turn: skipped when the world shows it done, run otherwise. A failure or an
    /// interrupt saves the journal and says how to continue.
    fn run_steps(&mut self) -> anyhow::Result<()> {
        let mut timings = Vec::new();
        // Whether this run made the release commit: nothing can have been built, pushed or
        // uploaded from a commit that did not exist, so no later step needs the world asked.
        let mut made_commit = false;
        for step in self.steps().collect::<Vec<_>>() {
            if !made_commit && self.done(step)? {
                println!("\n== {}: done", step.name());
                timings.push((step.name(), self.journal.seconds(step.name()).unwrap_or(0.0), "done before"));
                continue;
            }
            let started = Instant::now();
            let result = interrupt::check().and_then(|()| {
                println!("\n== {}: {}", step.name(), step.describe());
                step.run(self)
            });
            if let Err(e) = result {
                return Err(self.stopped(step, e, &timings));
            }
            made_commit |= step.makes_the_release_commit();
            if step.makes_the_release_commit() {
                let plan = release_plan(self.sh, &self.config, &self.version)?;
                self.plan = plan.with_client_of(&mut self.plan);
            }
            let seconds = started.elapsed().as_secs_f64();
            self.exec.after(|| self.journal.time(step.name(), seconds))?;
            timings.push((step.name(), seconds, "done"));
        }
        self.exec.after(|| self.describe_as_data(&timings))?;
        self.exec.finish(
            || {
                print!("{}", timing_table(&timings));
                println!("{} is released", self.tag);
            },
            &format!("To release: {} --yes", self.resume_command.trim_end_matches(" --yes")),
        );
        Ok(())
    }

    /// The release as data among its release files, once everything is published: the
    /// manifest and the MCP Registry's `server.json`. Only where this machine kept the release
    /// files (a release finished elsewhere has them there).
    fn describe_as_data(&self, timings: &[(&str, f64, &str)]) -> anyhow::Result<()> {
        if !self.files.release.is_dir() {
            return Ok(());
        }
        let path = manifest::write(self, timings).context("writing the release manifest")?;
        println!("release manifest: {}", path.display());
        let path = mcp_registry::write(self).context("writing the MCP Registry's server.json")?;
        println!("MCP Registry entry: {}", path.display());
        Ok(())
    }

    /// The journal's timings, for a release finished before this run.
    fn journal_timings(&self) -> Vec<(&'static str, f64, &'static str)> {
        let steps = self.steps().filter_map(|s| Some((s.name(), self.journal.seconds(s.name())?, "done before")));
        steps.collect()
    }

    fn done(&self, step: &dyn Step) -> anyhow::Result<bool> {
        match self.commit_of_tree()? {
            Some(commit) => step.is_done(self, &commit),
            None => Ok(false),
        }
    }

    /// The error of a step that failed or was interrupted, after saving the journal and saying
    /// how to continue.
    fn stopped(&self, step: &dyn Step, error: anyhow::Error, timings: &[(&str, f64, &str)]) -> anyhow::Error {
        if let Err(e) = self.journal.save() {
            eprintln!("could not save the journal: {e:#}");
        }
        let what = if error.is::<Interrupted>() { "interrupted" } else { "failed" };
        print!("{}", timing_table(timings));
        let again = step.continued_by(self).unwrap_or_else(|| self.resume_command.clone());
        eprintln!("\n{} {what}. Nothing is lost; to continue, run:\n\n    {again}\n", step.name());
        error.context(format!("release of {}: step {} {what}", self.tag, step.name()))
    }

    /// Asks on a terminal before anything changes; without one, stops after the preflight
    /// unless `--yes`.
    fn confirm(&self, yes: bool) -> anyhow::Result<()> {
        if yes {
            return Ok(());
        }
        if !std::io::stdin().is_terminal() {
            bail!(
                "preflight passed; stopping here because there is no terminal to confirm on: run `{} --yes`",
                self.resume_command
            );
        }
        let tags: Vec<String> = self.plan.tags.immutable.iter().chain(&self.plan.tags.floating).cloned().collect();
        println!("release {} (Python {})", self.version, self.version.pep440());
        for image in &self.plan.images {
            println!("  image  {}:{}", image.reference, tags.join(","));
        }
        println!("  index  {}", self.config.index);
        println!("  git    {} and {} to origin", self.config.branch, self.tag);
        print!("Release? [y/N] ");
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            bail!("not released: nothing was changed");
        }
        Ok(())
    }
}

/// The plan of the images, for the commit at HEAD. The release checks the tree itself (its
/// preflight), and commits before it builds.
fn release_plan(sh: &Shell, config: &Config, version: &ReleaseVersion) -> anyhow::Result<Plan> {
    let options = PlanOptions { allow_dirty: true, ..PlanOptions::default() };
    Plan::for_version(sh, config.clone(), version.clone(), &options)
}

/// What the release commit changes: the version surfaces and the changelog.
pub fn release_commit_files() -> [&'static str; 5] {
    [surfaces::VERSION_PY, surfaces::COMPOSE, surfaces::CARGO_TOML, surfaces::CARGO_LOCK, changelog::CHANGELOG]
}

fn timing_table(timings: &[(&str, f64, &str)]) -> String {
    let mut out = format!("\n{:<14} {:>8}  {}\n", "STEP", "SECONDS", "");
    let mut total = 0.0;
    for (step, seconds, status) in timings {
        out.push_str(&format!("{step:<14} {seconds:>8.1}  {status}\n"));
        total += seconds;
    }
    out.push_str(&format!("{:<14} {total:>8.1}\n", "total"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_has_a_distinct_name_and_each_role_its_steps() {
        let names: Vec<&str> = STEPS.iter().map(|s| s.name()).collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        let named =
            |role: fn(&dyn Step) -> bool| STEPS.iter().filter(|s| role(**s)).map(|s| s.name()).collect::<Vec<_>>();
        assert_eq!(named(|s| s.makes_the_release_commit()), ["bump"]);
        assert_eq!(named(|s| s.done_by_whoever_tagged()), ["bump", "tag", "push-git"]);
        assert_eq!(named(|s| s.publishes()), ["push-images", "upload", "floating-tags", "push-git"]);
        assert!(steps_help().contains("floating-tags"));
    }
}
