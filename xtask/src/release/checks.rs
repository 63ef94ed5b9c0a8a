//! The preflight: every problem that would stop a release, found without changing anything.
//!
//! One list, [`CHECKS`]: the release runs every check side by side and reports every problem
//! at once, in the list's order; `cargo xtask doctor` prints the same checks, each `ok` or its
//! problems, for the next patch release. A check is a function from what the release knows
//! ([`Facts`]) to its [`Outcome`]: what it found, or each problem with its fix.

use std::path::{Path, PathBuf};

use super::{release_commit_files, Release};
use crate::{
    images::{checks as image_checks, Plan},
    model::{config::Config, version::ReleaseVersion},
    ops::git,
    python::{self, twine},
};

pub use crate::model::check::Outcome;

/// One check of the preflight.
pub struct Check {
    pub name: &'static str,
    pub run: fn(&Facts, &xshell::Shell) -> Outcome,
}

/// What the checks are asked about: a release of `version`, from a tree at `current`. (What a
/// [`Release`] knows, without its shell: each check runs on a thread of its own.)
pub struct Facts<'r> {
    pub config: &'r Config,
    pub version: &'r ReleaseVersion,
    pub current: &'r ReleaseVersion,
    pub tag: &'r str,
    pub from_tag: bool,
    pub python: &'r Path,
    pub plan: &'r Plan,
    head: Result<String, String>,
}

impl Facts<'_> {
    /// The tree already says this version: a release that began before (here or elsewhere),
    /// whose artifacts are recognised as its own by their commit and their bytes.
    fn continuing(&self) -> bool {
        *self.version == *self.current
    }

    /// `commit` is this release's own: it continues, and `commit` is HEAD.
    fn ours(&self, commit: &str) -> bool {
        self.continuing() && self.head.as_deref() == Ok(commit)
    }
}

/// The preflight, in the order its problems are reported.
pub const CHECKS: [Check; 14] = [
    Check { name: "git HEAD", run: head },
    Check { name: "version", run: version },
    Check { name: "release branch", run: branch },
    Check { name: "release tag", run: tag },
    Check { name: "origin", run: origin },
    Check { name: "clean tree", run: clean_tree },
    Check { name: "index", run: index },
    Check { name: "index credentials", run: index_credentials },
    Check { name: "python tools", run: python_tools },
    Check { name: "toolchain", run: |f, sh| image_checks::toolchain(sh, f.config) },
    Check { name: "docker daemon", run: |_, sh| image_checks::docker_daemon(sh) },
    Check { name: "build contexts", run: |f, sh| image_checks::build_contexts(&sh.current_dir(), f.plan) },
    Check { name: "registry login", run: |f, _| image_checks::push_rights(f.plan) },
    Check { name: "immutable tags", run: |f, _| image_checks::immutable_tags(f.plan) },
];

/// Every check side by side, each in a shell of its own; the results in the list's order.
pub fn run_all(release: &Release, current: &ReleaseVersion) -> Vec<(&'static str, Outcome)> {
    let facts = Facts {
        config: &release.config,
        version: &release.version,
        current,
        tag: &release.tag,
        from_tag: release.start == super::Start::Tag,
        python: &release.python,
        plan: &release.plan,
        head: git::head(release.sh).map_err(|e| format!("{e:#}")),
    };
    let root = release.sh.current_dir();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (CHECKS.iter())
            .map(|check| {
                let (facts, root) = (&facts, &root);
                scope.spawn(move || match crate::ops::shell::shell_in(root) {
                    Ok(sh) => (check.run)(facts, &sh),
                    Err(e) => Err(vec![format!("{}: {e:#}", check.name)]),
                })
            })
            .collect();
        let results = handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(vec!["the check panicked".into()])));
        CHECKS.iter().map(|c| c.name).zip(results).collect()
    })
}

/// Every problem of the preflight, in order; none means the release may go.
pub fn preflight(release: &Release, current: &ReleaseVersion) -> Vec<String> {
    run_all(release, current).into_iter().filter_map(|(_, outcome)| outcome.err()).flatten().collect()
}

fn fail(problem: String) -> Outcome {
    Err(vec![problem])
}

fn head(facts: &Facts, _: &xshell::Shell) -> Outcome {
    match &facts.head {
        Ok(commit) => Ok(format!("at {}", git::short(commit))),
        Err(e) => fail(format!("reading HEAD: {e}: run the release in a clone of the repository")),
    }
}

fn version(facts: &Facts, _: &xshell::Shell) -> Outcome {
    let (version, current) = (facts.version, facts.current);
    if facts.from_tag && !facts.continuing() {
        return fail(format!("tag {} does not match the version surfaces, which say {current}", facts.tag));
    }
    if version < current {
        return fail(format!("{version} is not greater than the current version {current}: release a higher version"));
    }
    Ok(format!("{version} (Python {}), after {current}", version.pep440()))
}

fn branch(facts: &Facts, sh: &xshell::Shell) -> Outcome {
    let wanted = &facts.config.branch;
    if facts.from_tag {
        return Ok("a release of a tag is made from the tag".into());
    }
    match git::branch(sh) {
        Ok(on) if on == *wanted => Ok(format!("on {on}")),
        Ok(on) => fail(format!("on branch {on:?}: releases are made from {wanted:?}; `git switch {wanted}`")),
        Err(e) => fail(format!("reading the branch: {e:#}")),
    }
}

fn tag(facts: &Facts, sh: &xshell::Shell) -> Outcome {
    let (tag, version) = (facts.tag, facts.version);
    let found = git::local_tag(sh, tag);
    if facts.from_tag {
        return match found {
            None => fail(format!("there is no tag {tag}: fetch it (`git fetch --tags`)")),
            Some(commit) if facts.head.as_deref() != Ok(commit.as_str()) => {
                fail(format!("tag {tag} is not HEAD: check it out (`git checkout {tag}`)"))
            }
            Some(_) => Ok(format!("{tag} is HEAD")),
        };
    }
    // The tag goes on the commit that is built and tested: HEAD, once the bump is made.
    match found.filter(|c| !facts.ours(c)) {
        Some(commit) => fail(format!(
            "tag {tag} already exists at {}, not at HEAD: if nothing of {version} was published, delete it \
             (`git tag -d {tag}`) and run again; otherwise release a new version",
            git::short(&commit),
        )),
        None => Ok(format!("{tag} is free")),
    }
}

fn origin(facts: &Facts, sh: &xshell::Shell) -> Outcome {
    let (branch, tag) = (&facts.config.branch, facts.tag);
    if facts.from_tag {
        return Ok("a release of a tag pushes nothing to git".into());
    }
    let mut problems = Vec::new();
    // The atomic push at the end must not be refused after everything else is public.
    match git::behind_origin(sh, branch) {
        Ok(true) => problems
            .push(format!("origin/{branch} has commits this tree lacks: `git pull --rebase origin {branch}` first")),
        Ok(false) => {}
        Err(e) => return fail(format!("{e:#}: the release pushes to origin; add it (`git remote add origin URL`)")),
    }
    match git::remote_tag(sh, tag) {
        Ok(Some(commit)) if !facts.ours(&commit) => problems.push(format!(
            "origin already has tag {tag} (at {}): this version is taken; release a new one",
            git::short(&commit)
        )),
        Ok(_) => {}
        Err(e) => problems.push(format!("{e:#}")),
    }
    if problems.is_empty() {
        Ok(format!("{branch} is up to date and {tag} is free on origin"))
    } else {
        Err(problems)
    }
}

fn clean_tree(facts: &Facts, sh: &xshell::Shell) -> Outcome {
    let changed = git::changed_files(sh).map_err(|e| vec![format!("{e:#}")])?;
    // A resumed release may find its own bump written but not committed; nothing else.
    let own = facts.continuing() && !facts.from_tag;
    let foreign: Vec<&str> =
        (changed.iter().map(String::as_str)).filter(|f| !(own && release_commit_files().contains(f))).collect();
    match foreign.is_empty() {
        true => Ok("nothing uncommitted".into()),
        false => fail(format!(
            "the tree has uncommitted changes ({}): commit or stash them",
            foreign.iter().take(5).copied().collect::<Vec<_>>().join(", ")
        )),
    }
}

/// A version the tree does not say yet is someone else's wherever it is found. One the tree
/// says is compared file by file (sha256) in the upload step.
fn index(facts: &Facts, _: &xshell::Shell) -> Outcome {
    let (config, version) = (facts.config, facts.version);
    if facts.continuing() {
        return Ok(format!("{} continues: the upload compares what {} has", version, config.index_simple));
    }
    let files =
        python::index::files_of_version(&config.index_simple, &version.pep440()).map_err(|e| vec![format!("{e:#}")])?;
    if files.is_empty() {
        return Ok(format!("{} has no {}", config.index_simple, version.pep440()));
    }
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    fail(format!(
        "the index already has {} ({}): this version is burned there; release a new one",
        version.pep440(),
        names.join(", ")
    ))
}

fn index_credentials(facts: &Facts, _: &xshell::Shell) -> Outcome {
    let index = &facts.config.index;
    match twine::credentials_source(index) {
        Some(source) => Ok(format!("{source}, for {index}")),
        None => fail(
            "no index credentials: set TWINE_USERNAME and TWINE_PASSWORD (for an API token, \
             TWINE_USERNAME=__token__), give the index a ~/.pypirc section (its `repository` and `password`), \
             or publish from GitHub Actions with `id-token: write` (trusted publishing)"
                .into(),
        ),
    }
}

fn python_tools(facts: &Facts, _: &xshell::Shell) -> Outcome {
    let python = &facts.python;
    if !python.exists() {
        return Ok(format!(
            "not installed yet: the release installs the pinned tools into {}",
            venv_of(python).display()
        ));
    }
    let mut missing =
        python::missing_modules(python, &["build", "twine", "setuptools"]).map_err(|e| vec![format!("{e:#}")])?;
    if !python.with_file_name("git-cliff").exists() {
        missing.push("git-cliff".into());
    }
    match missing.is_empty() {
        true => Ok(format!("build, twine, setuptools and git-cliff in {}", venv_of(python).display())),
        false => fail(format!(
            "{} missing from {}: delete {} and run again (the release reinstalls the pinned tools)",
            missing.join(" and "),
            venv_of(python).display(),
            venv_of(python).display()
        )),
    }
}

/// The virtual environment of `python` (`…/venv/bin/python`).
fn venv_of(python: &Path) -> PathBuf {
    python.parent().and_then(Path::parent).map_or_else(|| python.to_owned(), Path::to_owned)
}
