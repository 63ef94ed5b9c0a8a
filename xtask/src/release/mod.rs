//! `cargo xtask release VERSION`: one version to the registry and the index, together.
//!
//! The release is its [`Step`]s, in an order that keeps every failure resumable:
//!
//!   bump           every version surface and the CHANGELOG.md section (git-cliff), committed
//!                  as "Release X"
//!   build          binaries; each image as soon as its binary lands, while the rest compiles;
//!                  the backend image's /health (smoke test) as soon as it exists; beside it all,
//!                  a trial sdist and wheel. A broken binary, image or package stops the release
//!                  before anything is public, and the compile is the only wait
//!   tag            vX.Y.Z, locally, on the commit that was built and tested
//!   push-images    every image's immutable tag, each digest verified on the registry
//!   package        sdist and wheel whose compose file pins every image by tag and verified digest
//!   upload         sdist and wheel to the index (a file name can never be uploaded twice)
//!   floating-tags  X.Y and latest, only now: `latest` never names a version users can't install
//!   push-git       the commit and the tag, atomically
//!   verify         from outside, as a user: the index, the pinned digests, pip install, gati start
//!
//! Each step knows how to prove, from the world alone, that it is done: git, the registry (tags,
//! digests, the images' revision labels) and the index (file names and sha256s). The journal in
//! `.tools/state` only keeps timings and the smoke test's result; a fresh CI runner with no
//! journal continues a release that a laptop began, and finds a finished one finished.
//! Running the same command again continues from the first step that is not done; after a
//! complete release it changes nothing and says so. A run that makes the release commit itself
//! skips those proofs for the later steps (nothing can come from a commit that did not exist);
//! the steps still read the registry and the index before they act.
//!
//! Speed: what can wait on the network or on another program does so side by side (preflight's
//! checks, the images, each image's registry calls), and nothing waits for the compile that
//! does not need its binaries. `cargo xtask bench release` shows the release beside its compile.

use std::{
    io::{BufRead, IsTerminal, Write},
    path::{Path, PathBuf},
    sync::Mutex,
    time::Instant,
};

use anyhow::{bail, Context};
use xshell::{cmd, Shell};

pub mod journal;

use crate::{
    flags,
    images::{self, Outcome, Plan},
    model::changelog,
    model::config::{self, Config},
    model::surfaces::{self, Surfaces},
    model::version::ReleaseVersion,
    ops::docker,
    ops::exec::Executor,
    ops::git,
    ops::interrupt::{self, Interrupted},
    ops::provision,
    python,
    release::journal::Journal,
    verify,
};

/// The steps of a release, in order. Every `match` on a step is exhaustive: a new step cannot
/// be forgotten in one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Bump,
    Build,
    Tag,
    PushImages,
    Package,
    Upload,
    FloatingTags,
    PushGit,
    Verify,
}

impl Step {
    const ALL: [Step; 9] = [
        Step::Bump,
        Step::Build,
        Step::Tag,
        Step::PushImages,
        Step::Package,
        Step::Upload,
        Step::FloatingTags,
        Step::PushGit,
        Step::Verify,
    ];
    /// A release of an existing tag (CI on a tag push): the commit and the tag exist already.
    const FROM_TAG: [Step; 6] =
        [Step::Build, Step::PushImages, Step::Package, Step::Upload, Step::FloatingTags, Step::Verify];

    fn name(self) -> &'static str {
        match self {
            Step::Bump => "bump",
            Step::Build => "build",
            Step::Tag => "tag",
            Step::PushImages => "push-images",
            Step::Package => "package",
            Step::Upload => "upload",
            Step::FloatingTags => "floating-tags",
            Step::PushGit => "push-git",
            Step::Verify => "verify",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Step::Bump => "the version into every surface, the changes into CHANGELOG.md; commit \"Release X\"",
            Step::Build => {
                "the static binaries, each image as its binary lands, the backend image's /health (smoke test), \
                 and a trial sdist and wheel (twine check)"
            }
            Step::Tag => "tag vX on the commit that was built and tested",
            Step::PushImages => "push every immutable tag, each digest verified on the registry",
            Step::Package => "sdist and wheel pinning every image by tag and verified digest; twine check",
            Step::Upload => "upload what the index lacks; files it has must have our sha256",
            Step::FloatingTags => "move X.Y and latest to the verified digests, never backwards",
            Step::PushGit => "push the release commit and the tag to origin, atomically",
            Step::Verify => "from outside, as a user: index, pinned digests, pip install, gati start",
        }
    }
}

struct Release<'a> {
    sh: &'a Shell,
    config: Config,
    version: ReleaseVersion,
    tag: String,
    /// Timings, and the smoke test's result.
    journal: Journal,
    /// The package files, kept between runs so that a resumed upload sends the same bytes.
    dist_dir: PathBuf,
    /// The command that continues this release.
    resume_command: String,
    /// Releasing an existing tag (`--from-tag`).
    from_tag: bool,
    steps: &'static [Step],
    /// Every effect goes through it; a dry run's prints the same commands and runs none.
    exec: Executor,
}

impl flags::Release {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        interrupt::install();
        let config = config::load_default(sh)?;
        if !self.dry_run && surfaces::recover(&sh.current_dir())? {
            println!("finished writing the version surfaces, which an interrupted run had begun");
        }
        let current = Surfaces::read(&sh.current_dir())?.current(&config.services)?;
        let state = sh.current_dir().join(provision::TOOLS_DIR).join("state");
        let version = match (&self.version, &self.from_tag) {
            (_, Some(tag)) => ReleaseVersion::parse(tag.strip_prefix('v').unwrap_or(tag))
                .with_context(|| format!("--from-tag {tag}: not a release tag like v1.2.3"))?,
            (Some(v), None) => match ReleaseVersion::parse(v) {
                Ok(explicit) => explicit,
                Err(_)
                    if Journal::open(&state, &current.to_string())?.unfinished()
                        && git::remote_tag(sh, &format!("v{current}")).ok().flatten().is_none() =>
                {
                    bail!(
                        "the release of {current} is not finished: run `cargo xtask release {current}` to continue it"
                    )
                }
                Err(_) => current.bump(v)?,
            },
            (None, None) => unreachable!("clap requires VERSION or --from-tag"),
        };
        let from_tag = self.from_tag.is_some();
        let mut release = Release {
            sh,
            tag: format!("v{version}"),
            journal: Journal::open(&state, &version.to_string())?,
            dist_dir: state.join(format!("release-{version}-dist")),
            resume_command: match from_tag {
                true => format!("cargo xtask release --from-tag v{version} --yes"),
                false => format!("cargo xtask release {version}"),
            },
            config,
            version,
            from_tag,
            steps: if from_tag { &Step::FROM_TAG } else { &Step::ALL },
            exec: Executor::new(self.dry_run),
        };

        // A release whose tree already says this version may be finished: prove it from the
        // world, before asking anything else of this machine.
        if release.version == current && release.commit_of_tree()?.is_some() {
            let started = Instant::now();
            if release.is_complete()? {
                println!("{} is already released ({:.1} s to verify)", release.tag, started.elapsed().as_secs_f64());
                return Ok(());
            }
        }

        let python = provision::python_tools(sh)?;
        let problems = release.preflight(&current, &python);
        if !problems.is_empty() {
            bail!(
                "preflight found {} problem(s); nothing was changed:\n  - {}",
                problems.len(),
                problems.join("\n  - ")
            );
        }
        if !self.dry_run {
            release.confirm(self.yes)?;
        }
        println!("release {} (Python {}), tag {}", release.version, release.version.pep440(), release.tag);

        let mut timings = Vec::new();
        // Whether this run made the release commit: nothing can have been built, pushed or
        // uploaded from a commit that did not exist, so no later step needs the world asked.
        let mut made_commit = false;
        for &step in release.steps {
            if !made_commit && release.is_done(step)? {
                println!("\n== {}: done", step.name());
                timings.push((step, release.journal.seconds(step.name()).unwrap_or(0.0), "done before"));
                continue;
            }
            let started = Instant::now();
            let result = interrupt::check().and_then(|()| {
                println!("\n== {}: {}", step.name(), step.describe());
                release.run(step, &python)
            });
            match result {
                Ok(()) if self.dry_run => {}
                Ok(()) => {
                    made_commit |= step == Step::Bump;
                    let seconds = started.elapsed().as_secs_f64();
                    release.journal.time(step.name(), seconds)?;
                    timings.push((step, seconds, "done"));
                }
                Err(e) => {
                    release.journal.save()?;
                    let what = if e.is::<Interrupted>() { "interrupted" } else { "failed" };
                    print!("{}", timing_table(&timings));
                    // Everything is published when verify fails: what remains is to find out why.
                    let again = match step {
                        Step::Verify => format!("cargo xtask verify {}", release.version),
                        _ => release.resume_command.clone(),
                    };
                    eprintln!("\n{} {what}. Nothing is lost; to continue, run:\n\n    {again}\n", step.name());
                    return Err(e.context(format!("release of {}: step {} {what}", release.tag, step.name())));
                }
            }
        }
        if self.dry_run {
            println!(
                "\ndry run: nothing was changed. To release: {} --yes",
                release.resume_command.trim_end_matches(" --yes")
            );
            return Ok(());
        }
        print!("{}", timing_table(&timings));
        println!("{} is released", release.tag);
        Ok(())
    }
}

impl Release<'_> {
    /// The plan of the images, for the commit at HEAD.
    fn plan(&self) -> anyhow::Result<Plan> {
        let mut plan = Plan::for_version(self.sh, self.config.clone(), self.version.clone(), &[], false)?;
        // The release checks the tree itself (its preflight), and commits before it builds.
        plan.allow_dirty = true;
        Ok(plan)
    }

    fn head(&self) -> anyhow::Result<String> {
        let sh = self.sh;
        Ok(cmd!(sh, "git rev-parse HEAD").quiet().read()?)
    }

    /// HEAD, when the release's version is committed there (every surface says it, unchanged):
    /// the commit this release builds, tags and publishes.
    fn commit_of_tree(&self) -> anyhow::Result<Option<String>> {
        let root = self.sh.current_dir();
        let committed = Surfaces::read(&root)?.current(&self.config.services).ok().as_ref() == Some(&self.version)
            && !git::changed_files(self.sh)?.iter().any(|f| release_commit_files().contains(&f.as_str()));
        Ok(if committed { Some(self.head()?) } else { None })
    }

    /// Whether `step` is done, proven from git, the registry and the index.
    fn is_done(&mut self, step: Step) -> anyhow::Result<bool> {
        let Some(commit) = self.commit_of_tree()? else { return Ok(false) };
        Ok(match step {
            Step::Bump => true,
            Step::Build => self.built_from(&commit)?,
            Step::Tag => git::local_tag(self.sh, &self.tag).as_deref() == Some(commit.as_str()),
            Step::PushImages => self.images_pushed_from(&commit)?,
            Step::Package => match self.pinned_references() {
                Ok(pinned) => python::built_as(&self.dist_dir, &commit, &pinned),
                Err(_) => false,
            },
            Step::Upload => self.uploaded()?,
            Step::FloatingTags => self.floating_tags_moved()?,
            Step::PushGit => git::remote_tag(self.sh, &self.tag)?.as_deref() == Some(commit.as_str()),
            // Read-only, and proven only by doing it: a finished release is not verified again
            // (`cargo xtask verify X` does that), a resumed one is.
            Step::Verify => false,
        })
    }

    /// Everything a user sees is in place: the images, the package, the floating tags, the tag
    /// on origin.
    fn is_complete(&mut self) -> anyhow::Result<bool> {
        for step in [Step::PushGit, Step::PushImages, Step::Upload, Step::FloatingTags] {
            if self.steps.contains(&step) && !self.is_done(step)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn run(&mut self, step: Step, python: &Path) -> anyhow::Result<()> {
        match step {
            Step::Bump => self.bump(python),
            Step::Build => self.build(python),
            Step::Tag => self.make_tag(),
            Step::PushImages => self.push_images(),
            Step::Package => self.package(python),
            Step::Upload => self.upload(python),
            Step::FloatingTags => self.move_floating_tags(),
            Step::PushGit => self.push_git(),
            Step::Verify => {
                let what = format!(
                    "cargo xtask verify {}   # the index, the pinned digests, pip install, gati start",
                    self.version
                );
                self.exec.run(&what, || {
                    let files = python::dist_files(self.sh, &self.dist_dir)?;
                    let expected = verify::Expected {
                        revision: Some(self.head()?),
                        files: files.iter().map(|f| (f.name(), f.sha256.clone())).collect(),
                    };
                    verify::verify(self.sh, python, &self.config, &self.version, &expected)
                })?;
                Ok(())
            }
        }
    }

    /// Every problem that would stop the release, found without changing anything. What asks
    /// the network or starts a program (origin, the index, the registry, the tools) is asked
    /// side by side, each in a shell of its own; the problems are listed in one order.
    fn preflight(&self, current: &ReleaseVersion, python: &Path) -> Vec<String> {
        let sh = self.sh;
        let root = sh.current_dir();
        // The tree already says this version: a release that began before (here or elsewhere),
        // whose artifacts are recognised as its own by their commit and their bytes.
        let continuing = self.version == *current;
        let head_read = self.head();
        let head = head_read.as_ref().ok();
        let plan = self.plan();
        let (branch, tag, version, from_tag) = (&self.config.branch, &self.tag, &self.version, self.from_tag);
        let index_simple = &self.config.index_simple;
        let ours = |commit: &String| continuing && head == Some(commit);

        let (origin, index, tools, images) = std::thread::scope(|scope| {
            let origin = scope.spawn(|| -> Vec<anyhow::Result<Option<String>>> {
                if from_tag {
                    return vec![];
                }
                let sh = match crate::shell_in(&root) {
                    Ok(sh) => sh,
                    Err(e) => return vec![Err(e)],
                };
                // The atomic push at the end must not be refused after everything else is public.
                let behind = git::behind_origin(&sh, branch).map(|behind| {
                    behind.then(|| {
                        format!(
                            "origin/{branch} has commits this tree lacks: `git pull --rebase origin {branch}` first"
                        )
                    })
                });
                let taken = git::remote_tag(&sh, tag).map(|remote| {
                    remote.filter(|c| !ours(c)).map(|c| {
                        format!(
                            "origin already has tag {tag} (at {}): this version is taken; release a new one",
                            git::short(&c)
                        )
                    })
                });
                vec![behind, taken]
            });
            // A version the tree does not say yet is someone else's wherever it is found. One the
            // tree says is compared file by file (sha256) in the upload step.
            let index = scope.spawn(|| -> anyhow::Result<Option<String>> {
                if continuing {
                    return Ok(None);
                }
                let files = python::files_of_version(index_simple, &version.pep440())?;
                Ok((!files.is_empty()).then(|| {
                    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
                    format!(
                        "the index already has {} ({}): this version is burned there; release a new one",
                        version.pep440(),
                        names.join(", ")
                    )
                }))
            });
            let tools = scope.spawn(|| python::missing_modules(python, &["build", "twine", "setuptools"]));
            // Images: the daemon, the contexts, the right to push, and immutable tags the registry
            // holds from another commit than HEAD (for a new version: any).
            let images = scope.spawn(|| match (&plan, crate::shell_in(&root)) {
                (Ok(plan), Ok(sh)) => plan.problems(&sh, true),
                (Err(e), _) => vec![format!("{e:#}")],
                (_, Err(e)) => vec![format!("{e:#}")],
            });
            let join = "a preflight check panicked";
            (
                origin.join().expect(join),
                index.join().expect(join),
                tools.join().expect(join),
                images.join().expect(join),
            )
        });

        // Each check: Ok(None) passes, Ok(Some(problem)) fails, Err is a problem too.
        let mut checks: Vec<anyhow::Result<Option<String>>> = Vec::new();
        if let Err(e) = &head_read {
            checks.push(Err(anyhow::anyhow!("reading HEAD: {e:#}")));
        }
        if from_tag {
            checks
                .push(Ok((!continuing)
                    .then(|| format!("tag {tag} does not match the version surfaces, which say {current}"))));
            checks.push(Ok(match git::local_tag(sh, tag) {
                None => Some(format!("there is no tag {tag}: fetch it (`git fetch --tags`)")),
                Some(commit) if head != Some(&commit) => {
                    Some(format!("tag {tag} is not HEAD: check it out (`git checkout {tag}`)"))
                }
                Some(_) => None,
            }));
        } else {
            checks.push(Ok((version < current).then(|| {
                format!("{version} is not greater than the current version {current}: release a higher version")
            })));
            checks.push(git::branch(sh).map(|on| {
                (on != *branch)
                    .then(|| format!("on branch {on:?}: releases are made from {branch:?}; `git switch {branch}`"))
            }));
            // The tag goes on the commit that is built and tested: HEAD, once the bump is made.
            checks.push(Ok(git::local_tag(sh, tag).filter(|c| !ours(c)).map(|commit| {
                format!(
                    "tag {tag} already exists at {}, not at HEAD: if nothing of {version} was published, delete it \
                     (`git tag -d {tag}`) and run again; otherwise release a new version",
                    git::short(&commit),
                )
            })));
            checks.extend(origin);
        }
        checks.push(git::changed_files(sh).map(|changed| {
            // A resumed release may find its own bump written but not committed; nothing else.
            let own = continuing && !from_tag;
            let foreign: Vec<_> =
                changed.iter().filter(|f| !(own && release_commit_files().contains(&f.as_str()))).collect();
            (!foreign.is_empty()).then(|| {
                let list: Vec<&str> = foreign.iter().take(5).map(|s| s.as_str()).collect();
                format!("the tree has uncommitted changes ({}): commit or stash them", list.join(", "))
            })
        }));
        checks.push(index);
        checks.push(Ok(python::credentials_source(&self.config.index).is_none().then(|| {
            "no index credentials: set TWINE_USERNAME and TWINE_PASSWORD (for an API token, \
             TWINE_USERNAME=__token__), give the index a ~/.pypirc section (its `repository` and `password`), \
             or publish from GitHub Actions with `id-token: write` (trusted publishing)"
                .to_string()
        })));
        checks.push(tools.map(|missing| {
            (!missing.is_empty()).then(|| {
                format!("{} missing from {}: delete .tools/venv and run again", missing.join(" and "), python.display())
            })
        }));
        let mut found: Vec<String> = checks
            .into_iter()
            .filter_map(|c| match c {
                Ok(problem) => problem,
                Err(e) => Some(format!("{e:#}")),
            })
            .collect();
        found.extend(images);
        found
    }

    fn index_files_of_version(&self) -> anyhow::Result<Vec<(String, String)>> {
        python::files_of_version(&self.config.index_simple, &self.version.pep440())
    }

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
        let plan = self.plan()?;
        let tags: Vec<String> = plan.tags.immutable.iter().chain(&plan.tags.floating).cloned().collect();
        println!("release {} (Python {})", self.version, self.version.pep440());
        for image in &plan.images {
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

    /// Writes the version into every surface and this release's section into CHANGELOG.md
    /// (unless an earlier run did), and commits them. A dry run shows the diffs.
    fn bump(&mut self, python: &Path) -> anyhow::Result<()> {
        let sh = self.sh;
        let root = sh.current_dir();
        let found = Surfaces::read(&root)?;
        let edits = match found.current(&self.config.services).ok().as_ref() == Some(&self.version) {
            true => vec![],
            false => found.edits(&self.config.services, &self.version)?,
        };
        let changelog_path = root.join(changelog::CHANGELOG);
        let old = std::fs::read_to_string(&changelog_path).ok();
        let new = match old.as_deref().and_then(|c| changelog::section_of(c, &self.version)) {
            Some(_) => None,
            None => {
                let section = changelog::section(sh, python, &self.version)?;
                if self.exec.dry_run() {
                    println!("--- {} (the new section, first)", changelog::CHANGELOG);
                    section.lines().for_each(|l| println!("+{l}"));
                }
                changelog::with_section(old.as_deref(), &self.version, &section)
            }
        };
        if self.exec.dry_run() {
            for edit in edits.iter().filter(|e| e.before != e.after) {
                print!("{}", surfaces::unified_diff(edit));
            }
        }
        let files = release_commit_files();
        if !edits.is_empty() || new.is_some() {
            let what = format!("write {} and {}", files[..4].join(", "), changelog::CHANGELOG);
            self.exec.run(&what, || {
                // The surfaces first: once they say the version, a run stopped here is continued.
                surfaces::write_all(&root, &edits)?;
                if let Some(text) = &new {
                    let temp = crate::target_dir(sh).join("xtask").join(format!("{}.new", changelog::CHANGELOG));
                    std::fs::create_dir_all(temp.parent().unwrap())?;
                    std::fs::write(&temp, text)?;
                    std::fs::copy(&temp, &changelog_path)?;
                    std::fs::remove_file(&temp)?;
                }
                Ok(())
            })?;
        }
        // An earlier run may have written the files and been stopped before its commit.
        let uncommitted = git::changed_files(sh)?.iter().any(|f| files.contains(&f.as_str()));
        if !edits.is_empty() || new.is_some() || uncommitted {
            let message = format!("Release {}", self.version);
            let what = format!("git commit -m \"{message}\" -- {}", files.join(" "));
            self.exec.run(&what, || {
                cmd!(sh, "git add -- {files...}").quiet().run()?;
                cmd!(sh, "git commit --quiet -m {message} -- {files...}")
                    .quiet()
                    .run()
                    .context("committing the bump")?;
                Ok(())
            })?;
        }
        Ok(())
    }

    /// The binaries, each image as soon as its binary lands, the backend's image smoke-tested
    /// as soon as it exists (while the rest still compiles), and beside it all a trial of the
    /// package (tag references, not yet digests) from HEAD: a broken binary, image or package
    /// stops the release before anything is public. The compile is the wait.
    fn build(&mut self, python: &Path) -> anyhow::Result<()> {
        let plan = self.plan()?;
        let sh = self.sh;
        let references = self.references(&plan, None);
        let backend = self.backend_image(&plan)?;
        let mut lines = vec![
            crate::ops::cargo::reporting_build_command(sh, &self.config.services).to_string(),
            format!(
                "sdist and wheel of <sdk/ of the release commit, naming {}> into {} (build, no isolation), \
                 twine check --strict, the wheel's pins",
                references.iter().map(|(_, r)| r.as_str()).collect::<Vec<_>>().join(" "),
                self.trial_dir().display()
            ),
        ];
        lines.extend(images::build_lines(sh, &plan));
        lines.push(format!(
            "docker run --detach --rm --publish 127.0.0.1::8000 {backend}, then GET /health: {}",
            self.version
        ));
        let built = self.exec.run_all(&lines, || {
            let (root, trial_dir, version) = (sh.current_dir(), self.trial_dir(), &self.version);
            let smoke_tested: Mutex<Option<String>> = Mutex::new(None);
            std::thread::scope(|scope| {
                let package = scope.spawn(|| {
                    let sh = crate::shell_in(&root)?;
                    build_package(&sh, python, &trial_dir, version, &references)
                });
                let images = images::build_as_compiled(sh, &plan, |image, sh| {
                    if image.service == "backend" {
                        let id = smoke_test(sh, &backend, version)?;
                        *smoke_tested.lock().unwrap_or_else(|e| e.into_inner()) = Some(id);
                    }
                    Ok(())
                });
                let packaged = package.join().map_err(|_| anyhow::anyhow!("the trial package build panicked"))?;
                let (_, compile) = images?;
                packaged.context("the trial package")?;
                let id = smoke_tested.into_inner().ok().flatten().context("the backend image was not smoke-tested")?;
                Ok((compile, id))
            })
        })?;
        if let Some((compile, id)) = built {
            // Timed apart for `cargo xtask bench release`: compiling the new version is the wait.
            self.journal.time("compile", compile)?;
            self.journal.record(SMOKE, &id)?;
        }
        Ok(())
    }

    /// The backend's image of this version: `registry/namespace/gati-backend:X`.
    fn backend_image(&self, plan: &Plan) -> anyhow::Result<String> {
        let backend = plan.images.iter().find(|i| i.service == "backend").context("no backend image")?;
        Ok(format!("{}:{}", backend.reference, self.version))
    }

    fn trial_dir(&self) -> PathBuf {
        self.dist_dir.with_file_name(format!("release-{}-trial", self.version))
    }

    /// Each service's image reference: `registry/namespace/gati-<service>:X`, and `@digest`
    /// when the digests are given.
    fn references(&self, plan: &Plan, digests: Option<&[String]>) -> Vec<(String, String)> {
        plan.images
            .iter()
            .enumerate()
            .map(|(i, image)| {
                let digest = digests.map(|d| format!("@{}", d[i])).unwrap_or_default();
                (image.service.clone(), format!("{}:{}{digest}", image.reference, self.version))
            })
            .collect()
    }

    /// The references the package pins: the digests the registry serves for this version.
    fn pinned_references(&self) -> anyhow::Result<Vec<(String, String)>> {
        let plan = self.plan()?;
        let digests = self.verified_digests(&plan)?;
        Ok(self.references(&plan, Some(&digests)))
    }

    /// The package users install: its compose file pins every image by tag and by the digest
    /// verified on the registry, so `gati start` runs exactly the released bytes even if a tag
    /// is moved later.
    fn package(&mut self, python: &Path) -> anyhow::Result<()> {
        let plan = self.plan()?;
        let what = format!(
            "sdist and wheel of <sdk/ of the release commit, pinning {} by their verified digests> into {} \
             (build, no isolation), twine check --strict, the wheel's pins; the release files in {}",
            self.references(&plan, None).iter().map(|(_, r)| r.as_str()).collect::<Vec<_>>().join(" "),
            self.dist_dir.display(),
            self.release_files_dir().display()
        );
        self.exec.run(&what, || {
            let pinned = self.pinned_references()?;
            build_package(self.sh, python, &self.dist_dir, &self.version, &pinned)?;
            for (_, reference) in &pinned {
                println!("pinned {reference}");
            }
            self.write_release_files(python, &pinned)
        })?;
        Ok(())
    }

    /// The files of the release, together, for a GitHub Release: the sdist and the wheel,
    /// `SHA256SUMS`, `digests.txt` (the pinned image references) and `NOTES.md` (the changelog
    /// section, the images, the `pip install` line).
    fn write_release_files(&self, python: &Path, pinned: &[(String, String)]) -> anyhow::Result<()> {
        let sh = self.sh;
        let dir = self.release_files_dir();
        if dir.exists() {
            sh.remove_path(&dir)?;
        }
        sh.create_dir(&dir)?;
        let files = python::dist_files(sh, &self.dist_dir)?;
        let mut sums = String::new();
        for file in &files {
            sh.copy_file(&file.path, dir.join(file.name()))?;
            sums.push_str(&format!("{}  {}\n", file.sha256, file.name()));
        }
        sh.write_file(dir.join("SHA256SUMS"), sums)?;
        let digests: String = pinned.iter().map(|(_, r)| format!("{r}\n")).collect();
        sh.write_file(dir.join("digests.txt"), &digests)?;
        let recorded = sh.read_file(changelog::CHANGELOG).ok().and_then(|c| changelog::section_of(&c, &self.version));
        let section = match recorded {
            Some(section) => section,
            None => changelog::section(sh, python, &self.version)?,
        };
        let images: String = pinned.iter().map(|(_, r)| format!("- `{r}`\n")).collect();
        let notes = format!("{}\n### Images, pinned by digest\n\n{images}", section.trim_end());
        sh.write_file(dir.join("NOTES.md"), notes)?;
        println!("release files: {}", dir.display());
        Ok(())
    }

    fn release_files_dir(&self) -> PathBuf {
        self.dist_dir.with_file_name(format!("release-{}-files", self.version))
    }

    /// The local images carry HEAD's revision label, the backend's passed the smoke test (the
    /// journal keeps the id of the image that did), and the trial package was built from HEAD.
    fn built_from(&self, commit: &str) -> anyhow::Result<bool> {
        let plan = self.plan()?;
        for image in &plan.images {
            let reference = format!("{}:{}", image.reference, self.version);
            if docker::revision(self.sh, &reference).ok().as_deref() != Some(commit) {
                return Ok(false);
            }
        }
        let tested = docker::image_id(self.sh, &self.backend_image(&plan)?).ok();
        if tested.is_none() || self.journal.proof(SMOKE) != tested.as_deref() {
            return Ok(false);
        }
        Ok(python::built_as(&self.trial_dir(), commit, &self.references(&plan, None)))
    }

    fn make_tag(&mut self) -> anyhow::Result<()> {
        let (sh, tag) = (self.sh, &self.tag);
        let message = format!("gati {}", self.version);
        if git::local_tag(sh, tag).is_none() {
            let what = format!("git tag --annotate {tag} --message \"{message}\"");
            self.exec.run(&what, || Ok(cmd!(sh, "git tag --annotate {tag} --message {message}").quiet().run()?))?;
        }
        Ok(())
    }

    fn push_images(&mut self) -> anyhow::Result<()> {
        let mut plan = self.plan()?;
        let mut outcomes: Vec<Outcome> = plan
            .images
            .iter()
            .map(|i| Outcome {
                size: docker::size(self.sh, &format!("{}:{}", i.reference, self.version)).unwrap_or(0),
                ..Default::default()
            })
            .collect();
        let _login = plan.login(self.sh, &self.exec)?;
        images::push_immutable(self.sh, &plan, &self.exec, &mut outcomes)?;
        if !self.exec.dry_run() {
            print!("{}", images::table(&plan, &outcomes));
        }
        Ok(())
    }

    /// Every image's immutable tag is on the registry, built from `commit` (its revision label).
    fn images_pushed_from(&self, commit: &str) -> anyhow::Result<bool> {
        let plan = self.plan()?;
        let registry = plan.registry();
        for image in &plan.images {
            let remote = registry.remote(&image.repo, &self.version.to_string())?;
            if remote.and_then(|r| r.revision).as_deref() != Some(commit) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Uploads what the index lacks. A file of the same name with the same sha256 counts as
    /// uploaded; with other bytes, the version is burned and the release stops.
    fn upload(&mut self, python: &Path) -> anyhow::Result<()> {
        let have = self.index_files_of_version()?;
        // What the index is missing is decided by name, which a dry run knows too.
        let missing: Vec<String> =
            self.dist_names().into_iter().filter(|n| !have.iter().any(|(h, _)| h == n)).collect();
        let files = if self.exec.dry_run() { vec![] } else { python::dist_files(self.sh, &self.dist_dir)? };
        for file in &files {
            match have.iter().find(|(name, _)| *name == file.name()) {
                Some((_, sha)) if *sha == file.sha256 => println!("{} is already on the index", file.name()),
                Some((_, sha)) => bail!(
                    "the index has {} with other bytes (sha256 {sha}, ours {}): this version is burned on the index; \
                     release a new version",
                    file.name(),
                    file.sha256
                ),
                None => {}
            }
        }
        if !missing.is_empty() {
            let what = format!(
                "twine upload --non-interactive --repository-url {} {}   # credentials: {} (****)",
                self.config.index,
                missing.join(" "),
                python::credentials_source(&self.config.index).map_or("none".to_string(), |c| c.to_string())
            );
            self.exec.run(&what, || {
                let upload: Vec<_> = files.iter().filter(|f| missing.contains(&f.name())).cloned().collect();
                anyhow::ensure!(
                    upload.len() == missing.len(),
                    "the package files are missing from {}",
                    self.dist_dir.display()
                );
                python::upload(self.sh, python, &self.config.index, &upload)
                    .with_context(|| format!("uploading to {}", self.config.index))
            })?;
        }
        if !self.exec.dry_run() {
            anyhow::ensure!(self.uploaded()?, "the index does not list the uploaded files with their sha256");
        }
        Ok(())
    }

    fn dist_names(&self) -> [String; 2] {
        python::dist_names(&self.version.pep440())
    }

    /// The index has the sdist and the wheel of this version; with our sha256s where this
    /// machine has the files (a machine that has not built them trusts the images' proof).
    fn uploaded(&self) -> anyhow::Result<bool> {
        let have = self.index_files_of_version()?;
        if !self.dist_names().iter().all(|n| have.iter().any(|(name, _)| name == n)) {
            return Ok(false);
        }
        let ours = python::dist_files(self.sh, &self.dist_dir).unwrap_or_default();
        Ok(ours.iter().all(|f| have.iter().any(|(n, s)| *n == f.name() && *s == f.sha256)))
    }

    /// The digest of every image's immutable tag of this version, read side by side.
    fn verified_digests(&self, plan: &Plan) -> anyhow::Result<Vec<String>> {
        let tag = self.version.to_string();
        plan.each_image(|_, image, registry| {
            registry
                .digest(&image.repo, &tag)?
                .with_context(|| format!("{}:{tag} is not on the registry", image.reference))
        })
    }

    fn move_floating_tags(&mut self) -> anyhow::Result<()> {
        let plan = self.plan()?;
        // Each image's floating tags go to the digest of its immutable tag, read in the effect.
        let mut outcomes = vec![Outcome::default(); plan.images.len()];
        images::move_floating(&plan, &self.exec, &mut outcomes)
    }

    /// Every floating tag that should point at this release does (none, for a pre-release or
    /// a release below a higher one).
    fn floating_tags_moved(&self) -> anyhow::Result<bool> {
        let plan = self.plan()?;
        let registry = plan.registry();
        let Ok(digests) = self.verified_digests(&plan) else { return Ok(false) };
        let (moves, _) = images::floating_moves(&plan)?;
        for tag in moves {
            for (image, digest) in plan.images.iter().zip(&digests) {
                if registry.digest(&image.repo, &tag)?.as_deref() != Some(digest.as_str()) {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    fn push_git(&mut self) -> anyhow::Result<()> {
        let sh = self.sh;
        let branch = format!("HEAD:refs/heads/{}", self.config.branch);
        let tag = format!("refs/tags/{}", self.tag);
        let what = format!("git push --atomic origin {branch} {tag}");
        self.exec.run(&what, || {
            cmd!(sh, "git push --atomic origin {branch} {tag}")
                .quiet()
                .run()
                .context("pushing the release commit and tag")?;
            Ok(())
        })?;
        Ok(())
    }
}

/// sdist and wheel of HEAD into `out`, naming `references`, checked (`twine check`), and proof
/// that the wheel says this version and names exactly these images.
fn build_package(
    sh: &Shell,
    python: &Path,
    out: &Path,
    version: &ReleaseVersion,
    references: &[(String, String)],
) -> anyhow::Result<()> {
    let commit = cmd!(sh, "git rev-parse HEAD").quiet().read()?;
    let pins = python::build(sh, python, out, &commit, references)?;
    if pins.version != version.pep440() {
        bail!("the wheel's version.py says {}, not {}", pins.version, version.pep440());
    }
    let mut found = pins.images;
    let mut expected: Vec<String> = references.iter().map(|(_, r)| r.clone()).collect();
    expected.sort();
    found.sort();
    if found != expected {
        bail!("the wheel's docker-compose.yml names {}, not {}", found.join(", "), expected.join(", "));
    }
    Ok(())
}

/// Runs `image` (the new backend) and asks it for /health, which must report `version`; returns
/// the id of the image it tested.
fn smoke_test(sh: &Shell, image: &str, version: &ReleaseVersion) -> anyhow::Result<String> {
    let name = format!("gati-smoke-{}", std::process::id());
    cmd!(sh, "docker run --detach --rm --name {name} --publish 127.0.0.1::8000 {image}")
        .quiet()
        .ignore_stdout()
        .run()?;
    let result = (|| {
        let address = cmd!(sh, "docker port {name} 8000").quiet().read()?;
        let address = address.lines().next().context("the smoke container publishes no port")?.to_string();
        let url = format!("http://{address}/health");
        let deadline = Instant::now() + std::time::Duration::from_secs(30);
        loop {
            interrupt::check()?;
            let answer =
                cmd!(sh, "curl --silent --max-time 2 {url}").quiet().ignore_status().read().unwrap_or_default();
            if let Ok(health) = serde_json::from_str::<serde_json::Value>(&answer) {
                let reported = health["version"].as_str().unwrap_or_default();
                anyhow::ensure!(reported == version.to_string(), "{image} answers {answer}, not version {version}");
                println!("smoke test: {image} answers {answer}");
                return Ok(());
            }
            anyhow::ensure!(Instant::now() < deadline, "{image} did not answer {url} within 30 s");
            interrupt::sleep(std::time::Duration::from_millis(200))?;
        }
    })();
    let _ = cmd!(sh, "docker rm --force {name}").quiet().ignore_stdout().ignore_stderr().run();
    result?;
    docker::image_id(sh, image)
}

/// The journal's record of the smoke test: the id of the backend image that passed it.
const SMOKE: &str = "smoke";

/// What the release commit changes: the version surfaces and the changelog.
fn release_commit_files() -> [&'static str; 5] {
    [surfaces::VERSION_PY, surfaces::COMPOSE, surfaces::CARGO_TOML, surfaces::CARGO_LOCK, changelog::CHANGELOG]
}

fn timing_table(timings: &[(Step, f64, &str)]) -> String {
    let mut out = format!("\n{:<14} {:>8}  {}\n", "STEP", "SECONDS", "");
    let mut total = 0.0;
    for (step, seconds, status) in timings {
        out.push_str(&format!("{:<14} {seconds:>8.1}  {status}\n", step.name()));
        total += seconds;
    }
    out.push_str(&format!("{:<14} {total:>8.1}\n", "total"));
    out
}
