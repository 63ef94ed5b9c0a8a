//! `cargo xtask release VERSION`: one version to the registry and the index, together.
//!
//! Steps, each recorded in the journal with what proves it, and each verified against git, the
//! registry and the index before it counts as done:
//!
//!   preflight    every check that changes nothing, all problems reported at once
//!   bump         every version surface, committed as "Release X" (the images' revision label
//!                names this commit, so it comes before the build)
//!   build        binaries, the three images, sdist and wheel; twine check; the wheel's pins
//!   smoke        the new backend image answers /health with this version
//!   tag          vX.Y.Z, locally
//!   push-images  immutable tags verified, then the floating tags
//!   upload       sdist and wheel to the index: last, because it can never be undone
//!   push-git     the commit and the tag, atomically
//!
//! Running the same command again continues from the first step that is not done; after a
//! complete release it changes nothing and says so.

use std::{
    io::{BufRead, IsTerminal, Write},
    path::PathBuf,
    time::Instant,
};

use anyhow::{bail, Context};
use xshell::{cmd, Shell};

use crate::{
    bump::load_config,
    config::Config,
    docker, flags, git,
    images::{self, Outcome, Plan},
    interrupt::{self, Interrupted},
    journal::Journal,
    provision, python,
    surfaces::{self, Surfaces},
    version::ReleaseVersion,
};

const STEPS: [&str; 7] = ["bump", "build", "smoke", "tag", "push-images", "upload", "push-git"];
/// A release of an existing tag: the commit and the tag are already made and pushed.
const FROM_TAG_STEPS: [&str; 4] = ["build", "smoke", "push-images", "upload"];
const PROJECT: &str = "gati";

struct Release<'a> {
    sh: &'a Shell,
    config: Config,
    version: ReleaseVersion,
    tag: String,
    journal: Journal,
    /// Kept between runs, so that a resumed upload sends the same bytes.
    dist_dir: PathBuf,
    /// The command that continues this release.
    again: String,
    dry_run: bool,
    /// Releasing an existing tag (`--from-tag`).
    from_tag: bool,
    steps: &'static [&'static str],
}

impl flags::Release {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        interrupt::install();
        let config = load_config(sh)?;
        let current = Surfaces::read(&sh.current_dir())?.current(&config.services)?;
        let state = sh.current_dir().join(provision::TOOLS_DIR).join("state");
        let version = match (&self.version, &self.from_tag) {
            (_, Some(tag)) => ReleaseVersion::parse(tag.strip_prefix('v').unwrap_or(tag))
                .with_context(|| format!("--from-tag {tag}: not a release tag like v1.2.3"))?,
            (Some(v), None) => match ReleaseVersion::parse(v) {
                Ok(explicit) => explicit,
                Err(_) if Journal::open(&state, &current.to_string())?.unfinished() => bail!(
                    "the release of {current} is not finished: run `cargo xtask release {current}` to continue it"
                ),
                Err(_) => current.bump(v)?,
            },
            (None, None) => unreachable!("clap requires VERSION or --from-tag"),
        };
        let from_tag = self.from_tag.is_some();
        let again = match from_tag {
            true => format!("cargo xtask release --from-tag v{version} --yes"),
            false => format!("cargo xtask release {version}"),
        };
        let mut release = Release {
            sh,
            tag: format!("v{version}"),
            journal: Journal::open(&state, &version.to_string())?,
            dist_dir: state.join(format!("release-{version}-dist")),
            again,
            config,
            version,
            dry_run: self.dry_run,
            from_tag,
            steps: if from_tag { &FROM_TAG_STEPS } else { &STEPS },
        };

        if release.journal.proof(release.last_step()).is_some() {
            let started = Instant::now();
            match release.missing_after_release() {
                Ok(missing) if missing.is_empty() => {
                    println!(
                        "{} is already released ({:.1} s to verify)",
                        release.tag,
                        started.elapsed().as_secs_f64()
                    );
                    return Ok(());
                }
                Ok(missing) => {
                    eprintln!("{} was released, but now: {}; finishing it again", release.tag, missing.join("; "));
                    for step in ["push-images", "upload", "push-git"] {
                        release.journal.forget(step)?;
                    }
                }
                Err(e) => return Err(e.context(format!("verifying the release of {}", release.tag))),
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
        if self.dry_run {
            print!("{}", release.plan_text()?);
            return Ok(());
        }
        release.confirm(self.yes)?;

        let mut timings = Vec::new();
        for &step in release.steps {
            if release.is_done(step)? {
                timings.push((step, release.journal.seconds(step).unwrap_or(0.0), "done before"));
                continue;
            }
            let started = Instant::now();
            match release.run_step(step, &python) {
                Ok(proof) => {
                    let seconds = started.elapsed().as_secs_f64();
                    release.journal.record(step, &proof, seconds)?;
                    timings.push((step, seconds, "done"));
                }
                Err(e) => {
                    release.journal.save()?;
                    let what = if e.is::<Interrupted>() { "interrupted" } else { "failed" };
                    print!("{}", timing_table(&timings));
                    eprintln!("\n{step} {what}. The journal is saved; to continue, run:\n\n    {}\n", release.again);
                    return Err(e.context(format!("release of {}: step {step} {what}", release.tag)));
                }
            }
        }
        print!("{}", timing_table(&timings));
        println!("{} is released", release.tag);
        Ok(())
    }
}

impl Journal {
    /// Some steps are recorded, not all.
    fn unfinished(&self) -> bool {
        self.exists() && self.proof("push-git").is_none()
    }
}

impl Release<'_> {
    fn last_step(&self) -> &'static str {
        self.steps[self.steps.len() - 1]
    }

    fn plan(&self) -> anyhow::Result<Plan> {
        let flags = flags::Images {
            push: true,
            only: vec![],
            edge: false,
            registry: None,
            namespace: None,
            dry_run: self.dry_run,
        };
        let mut plan = Plan::for_version(self.sh, &flags, self.config.clone(), self.version.clone())?;
        // The release checks the tree itself: after the bump it holds exactly the release commit.
        plan.allow_dirty = true;
        plan.adopt_same_revision = self.from_tag;
        Ok(plan)
    }

    /// Every problem that would stop the release, found without changing anything.
    fn preflight(&self, current: &ReleaseVersion, python: &std::path::Path) -> Vec<String> {
        let sh = self.sh;
        // Each check: Ok(None) passes, Ok(Some(problem)) fails, Err is a problem too.
        let mut checks: Vec<anyhow::Result<Option<String>>> = Vec::new();
        let mut check = |result| checks.push(result);
        let bumped = self.journal.proof("bump").is_some();
        let surface_files = [surfaces::VERSION_PY, surfaces::COMPOSE, surfaces::CARGO_TOML, surfaces::CARGO_LOCK];

        if self.from_tag {
            check(Ok((self.version != *current)
                .then(|| format!("tag {} does not match the version surfaces, which say {current}", self.tag))));
            check(cmd!(sh, "git rev-parse HEAD").quiet().read().map_err(Into::into).map(|head| {
                match git::local_tag(sh, &self.tag) {
                    None => Some(format!("there is no tag {}: fetch it (`git fetch --tags`)", self.tag)),
                    Some(commit) if commit != head => {
                        Some(format!("tag {} is not HEAD: check it out (`git checkout {}`)", self.tag, self.tag))
                    }
                    Some(_) => None,
                }
            }));
        } else {
            check(Ok((!bumped && self.version <= *current).then(|| {
                format!("{} is not greater than the current version {current}: release a higher version", self.version)
            })));
        }
        check(git::changed_files(sh).map(|changed| {
            // A resumed release may find its own bump not yet committed; nothing else.
            let own = bumped || *current == self.version;
            let foreign: Vec<_> = changed.iter().filter(|f| !(own && surface_files.contains(&f.as_str()))).collect();
            (!foreign.is_empty()).then(|| {
                let list: Vec<&str> = foreign.iter().take(5).map(|s| s.as_str()).collect();
                format!("the tree has uncommitted changes ({}): commit or stash them", list.join(", "))
            })
        }));
        check(git::branch(sh).map(|branch| {
            // A tag is released from wherever CI checked it out (usually a detached HEAD).
            if self.from_tag {
                return None;
            }
            (branch != self.config.branch).then(|| {
                format!(
                    "on branch {branch:?}: releases are made from {:?}; `git switch {}`",
                    self.config.branch, self.config.branch
                )
            })
        }));
        let recorded_tag = self.journal.proof("tag").map(str::to_owned);
        let own_tag = |commit: &String| self.from_tag || Some(commit) == recorded_tag.as_ref();
        check(Ok(git::local_tag(sh, &self.tag).filter(|c| !own_tag(c)).map(|commit| {
            format!(
                "tag {} already exists (at {}): this version is taken; release a new one",
                self.tag,
                &commit[..12.min(commit.len())]
            )
        })));
        if !self.from_tag {
            check(git::remote_tag(sh, &self.tag).map(|remote| {
                remote.map(|_| format!("origin already has tag {}: this version is taken; release a new one", self.tag))
            }));
        }
        check(self.index_conflict());
        check(Ok(python::credentials_source().is_none().then(|| {
            "no index credentials: set TWINE_USERNAME and TWINE_PASSWORD (for an API token, \
             TWINE_USERNAME=__token__), or configure ~/.pypirc"
                .to_string()
        })));
        for module in ["build", "twine"] {
            let missing =
                cmd!(sh, "{python} -m {module} --version").quiet().ignore_stdout().ignore_stderr().run().is_err();
            check(Ok(missing
                .then(|| format!("{module} is missing from {}: delete .tools/venv and run again", python.display()))));
        }
        let mut problems = Vec::new();
        match self.plan() {
            Ok(plan) => {
                if self.journal.proof("build").is_none() {
                    check(self.registry_conflict(&plan));
                }
                problems = plan.problems(sh, true);
            }
            Err(e) => check(Err(e)),
        }
        let mut found: Vec<String> = checks
            .into_iter()
            .filter_map(|c| match c {
                Ok(problem) => problem,
                Err(e) => Some(format!("{e:#}")),
            })
            .collect();
        found.extend(problems);
        found
    }

    /// The index must not have this version, unless these are our own, recorded files.
    fn index_conflict(&self) -> anyhow::Result<Option<String>> {
        let files = self.index_files_of_version()?;
        if files.is_empty() {
            return Ok(None);
        }
        if self.journal.proof("build").is_some() {
            return Ok(None); // a resumed upload: compared file by file in the upload step
        }
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        Ok(Some(format!(
            "the index already has {} ({}): this version is burned there; release a new one",
            self.version.pep440(),
            names.join(", ")
        )))
    }

    fn index_files_of_version(&self) -> anyhow::Result<Vec<(String, String)>> {
        let prefix = format!("{PROJECT}-{}", self.version.pep440());
        Ok(python::index_files(&self.config.index_simple, PROJECT)?
            .into_iter()
            .filter(|(name, _)| name.starts_with(&format!("{prefix}-")) || name == &format!("{prefix}.tar.gz"))
            .collect())
    }

    fn registry_conflict(&self, plan: &Plan) -> anyhow::Result<Option<String>> {
        let registry = plan.registry(self.sh);
        for image in &plan.images {
            let version = self.version.to_string();
            // Releasing a tag again (a CI re-run): images built from this very commit are ours.
            if self.from_tag && registry.revision(&image.repo, &version)?.as_deref() == Some(plan.head.commit.as_str())
            {
                continue;
            }
            if registry.digest(&image.repo, &version)?.is_some() {
                return Ok(Some(format!(
                    "{}:{} is already on the registry: this version is taken; release a new one",
                    image.reference, self.version
                )));
            }
        }
        Ok(None)
    }

    fn confirm(&self, yes: bool) -> anyhow::Result<()> {
        if yes {
            return Ok(());
        }
        if !std::io::stdin().is_terminal() {
            bail!(
                "preflight passed; stopping here because there is no terminal to confirm on: run `{} --yes`",
                self.again
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

    /// Whether `step` is done, verified against the world rather than taken from the journal.
    fn is_done(&mut self, step: &str) -> anyhow::Result<bool> {
        let Some(proof) = self.journal.proof(step).map(str::to_owned) else { return Ok(false) };
        let sh = self.sh;
        let holds = match step {
            "bump" => cmd!(sh, "git rev-parse HEAD").quiet().read()? == proof,
            "build" => self.build_holds(&proof)?,
            "smoke" => self.journal.proof("build").is_some_and(|build| build.contains(&proof)),
            "tag" => git::local_tag(sh, &self.tag).as_deref() == Some(proof.as_str()),
            "push-images" => self.images_hold(&proof)?,
            "upload" => self.upload_holds()?,
            "push-git" => git::remote_tag(sh, &self.tag)?.as_deref() == Some(proof.as_str()),
            _ => false,
        };
        if !holds {
            eprintln!("{step}: the journal says done, but that no longer holds; doing it again");
            self.journal.forget(step)?;
        }
        Ok(holds)
    }

    fn run_step(&mut self, step: &str, python: &std::path::Path) -> anyhow::Result<String> {
        interrupt::check()?;
        eprintln!("\n== {step}");
        match step {
            "bump" => self.bump(),
            "build" => self.build(python),
            "smoke" => self.smoke(),
            "tag" => self.make_tag(),
            "push-images" => self.push_images(),
            "upload" => self.upload(python),
            "push-git" => self.push_git(),
            _ => unreachable!(),
        }
    }

    fn bump(&mut self) -> anyhow::Result<String> {
        let sh = self.sh;
        let root = sh.current_dir();
        surfaces::recover(&root)?;
        let found = Surfaces::read(&root)?;
        if found.current(&self.config.services).ok().as_ref() != Some(&self.version) {
            surfaces::write_all(&root, &found.edits(&self.config.services, &self.version)?)?;
        }
        let files = [surfaces::VERSION_PY, surfaces::COMPOSE, surfaces::CARGO_TOML, surfaces::CARGO_LOCK];
        let message = format!("Release {}", self.version);
        cmd!(sh, "git add -- {files...}").quiet().run()?;
        cmd!(sh, "git commit --quiet -m {message} -- {files...}").run().context("committing the bump")?;
        Ok(cmd!(sh, "git rev-parse HEAD").quiet().read()?)
    }

    fn build(&mut self, python: &std::path::Path) -> anyhow::Result<String> {
        let plan = self.plan()?;
        // Compiling the new version is most of this step; timed apart for `cargo xtask bench release`.
        let compiling = Instant::now();
        crate::services::build_binaries(self.sh, &self.config.services)?;
        self.journal.time("compile", compiling.elapsed().as_secs_f64())?;
        let outcomes = images::build(self.sh, &plan)?;
        let mut proof = Vec::new();
        for (image, _) in plan.images.iter().zip(&outcomes) {
            let id = image_id(self.sh, &format!("{}:{}", image.reference, self.version))?;
            proof.push(format!("{}@{id}", image.service));
        }
        let sh = self.sh;
        let epoch = cmd!(sh, "git show -s --format=%ct HEAD").quiet().read()?;
        let files = python::build(sh, python, &self.dist_dir, &epoch)?;
        python::twine_check(self.sh, python, &files)?;
        let wheel = files.iter().find(|f| f.name().ends_with(".whl")).context("no wheel was built")?;
        let (pinned, references) = python::wheel_pins(self.sh, python, &wheel.path)?;
        if pinned != self.version.pep440() {
            bail!("the wheel's version.py says {pinned}, not {}", self.version.pep440());
        }
        for service in &self.config.services {
            let want = format!("/gati-{service}:{}", self.version);
            if !references.iter().any(|r| r.ends_with(&want)) {
                bail!(
                    "the wheel's docker-compose.yml does not pin gati-{service}:{} ({})",
                    self.version,
                    references.join(", ")
                );
            }
        }
        for file in &files {
            proof.push(format!("{}={}", file.name(), file.sha256));
        }
        Ok(proof.join(" "))
    }

    /// The built images still exist with the recorded ids, and the kept files have their hashes.
    fn build_holds(&self, proof: &str) -> anyhow::Result<bool> {
        let plan = self.plan()?;
        for item in proof.split_whitespace() {
            if let Some((service, id)) = item.split_once('@') {
                let Some(image) = plan.images.iter().find(|i| i.service == service) else { return Ok(false) };
                if image_id(self.sh, &format!("{}:{}", image.reference, self.version)).ok().as_deref() != Some(id) {
                    return Ok(false);
                }
            } else if let Some((name, sha)) = item.split_once('=') {
                let path = self.dist_dir.join(name);
                if !path.exists() || python::sha256(self.sh, &path)? != sha {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Runs the new backend image and asks it for /health; returns the image id it tested.
    fn smoke(&mut self) -> anyhow::Result<String> {
        let sh = self.sh;
        let plan = self.plan()?;
        let backend = plan.images.iter().find(|i| i.service == "backend").context("no backend image")?;
        let image = format!("{}:{}", backend.reference, self.version);
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
                if answer.contains("\"version\"") {
                    let want = format!("\"version\":\"{}\"", self.version);
                    anyhow::ensure!(answer.contains(&want), "{image} answers {answer}, not version {}", self.version);
                    println!("smoke test: {image} answers {answer}");
                    return Ok(());
                }
                anyhow::ensure!(Instant::now() < deadline, "{image} did not answer {url} within 30 s");
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        })();
        let _ = cmd!(sh, "docker rm --force {name}").quiet().ignore_stdout().ignore_stderr().run();
        result?;
        image_id(sh, &image)
    }

    fn make_tag(&mut self) -> anyhow::Result<String> {
        let (sh, tag) = (self.sh, &self.tag);
        let message = format!("gati {}", self.version);
        if git::local_tag(sh, tag).is_none() {
            cmd!(sh, "git tag --annotate {tag} --message {message}").run()?;
        }
        git::local_tag(sh, tag).context("the tag was not created")
    }

    fn push_images(&mut self) -> anyhow::Result<String> {
        let plan = self.plan()?;
        let mut outcomes: Vec<Outcome> = plan
            .images
            .iter()
            .map(|i| Outcome {
                size: docker::size(self.sh, &format!("{}:{}", i.reference, self.version)).unwrap_or(0),
                ..Default::default()
            })
            .collect();
        images::push(self.sh, &plan, &mut outcomes)?;
        print!("{}", images::table(&plan, &outcomes));
        Ok(plan
            .images
            .iter()
            .zip(&outcomes)
            .map(|(i, o)| format!("{}@{}", i.service, o.digest.clone().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(" "))
    }

    /// Every image's immutable tag is on the registry with the recorded digest.
    fn images_hold(&self, proof: &str) -> anyhow::Result<bool> {
        let plan = self.plan()?;
        let registry = plan.registry(self.sh);
        for item in proof.split_whitespace() {
            let (service, digest) = item.split_once('@').unwrap_or((item, ""));
            let Some(image) = plan.images.iter().find(|i| i.service == service) else { return Ok(false) };
            if registry.digest(&image.repo, &self.version.to_string())?.as_deref() != Some(digest) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Uploads what the index lacks. A file of the same name with the same sha256 counts as
    /// uploaded; with other bytes, the version is burned and the release stops.
    fn upload(&mut self, python: &std::path::Path) -> anyhow::Result<String> {
        let files = python::dist_files(self.sh, &self.dist_dir)?;
        let have = self.index_files_of_version()?;
        let mut missing = Vec::new();
        for file in &files {
            match have.iter().find(|(name, _)| *name == file.name()) {
                Some((_, sha)) if *sha == file.sha256 => println!("{} is already on the index", file.name()),
                Some((_, sha)) => bail!(
                    "the index has {} with other bytes (sha256 {sha}, ours {}): this version is burned on the index; \
                     release a new version",
                    file.name(),
                    file.sha256
                ),
                None => missing.push(file.clone()),
            }
        }
        if !missing.is_empty() {
            python::upload(self.sh, python, &self.config.index, &missing)
                .with_context(|| format!("uploading to {}", self.config.index))?;
        }
        anyhow::ensure!(self.upload_holds()?, "the index does not list the uploaded files with their sha256");
        Ok(files.iter().map(|f| format!("{}={}", f.name(), f.sha256)).collect::<Vec<_>>().join(" "))
    }

    fn upload_holds(&self) -> anyhow::Result<bool> {
        let files = python::dist_files(self.sh, &self.dist_dir).unwrap_or_default();
        let have = self.index_files_of_version()?;
        Ok(!files.is_empty() && files.iter().all(|f| have.iter().any(|(n, s)| *n == f.name() && *s == f.sha256)))
    }

    fn push_git(&mut self) -> anyhow::Result<String> {
        let sh = self.sh;
        let commit = git::local_tag(sh, &self.tag).context("the release tag is missing")?;
        let branch = format!("HEAD:refs/heads/{}", self.config.branch);
        let tag = format!("refs/tags/{}", self.tag);
        cmd!(sh, "git push --atomic origin {branch} {tag}").run().context("pushing the release commit and tag")?;
        Ok(commit)
    }

    /// After a complete release: what no longer holds (empty when all is in place).
    fn missing_after_release(&mut self) -> anyhow::Result<Vec<String>> {
        let mut missing = Vec::new();
        if let Some(commit) = self.journal.proof("push-git").map(str::to_owned) {
            if git::remote_tag(self.sh, &self.tag)?.as_deref() != Some(commit.as_str()) {
                missing.push(format!("origin has no tag {} at {commit}", self.tag));
            }
        }
        if !self.upload_holds()? {
            missing.push(format!("the index lacks files of {}", self.version.pep440()));
        }
        let images = self.journal.proof("push-images").unwrap_or_default().to_owned();
        if !self.images_hold(&images)? {
            missing.push("the registry lacks an image of this version".into());
        }
        Ok(missing)
    }

    /// The plan of a dry run: each step, its diffs, commands (secrets masked), tags, targets.
    fn plan_text(&self) -> anyhow::Result<String> {
        let sh = self.sh;
        let mut out = format!("release {} (Python {}), tag {}\n\n", self.version, self.version.pep440(), self.tag);
        if !self.from_tag {
            out.push_str("== bump\n");
            let found = Surfaces::read(&sh.current_dir())?;
            for edit in found.edits(&self.config.services, &self.version)?.iter().filter(|e| e.before != e.after) {
                out.push_str(&surfaces::unified_diff(edit));
            }
            out.push_str(&format!(
                "$ git commit -m \"Release {}\" -- <the four surface files>\n\n== build\n",
                self.version
            ));
        }
        let plan = self.plan()?;
        let images_text = images::dry_run(sh, &plan, false);
        out.extend(images_text.lines().filter(|l| l.starts_with('$')).map(|l| format!("{l}\n")));
        out.push_str(&format!(
            "$ .tools/venv/bin/python -m build sdk --outdir {}\n$ .tools/venv/bin/python -m twine check --strict <sdist> <wheel>\n  \
             then prove the wheel's version.py says {} and its compose file pins every image at {}\n\n",
            self.dist_dir.display(),
            self.version.pep440(),
            self.version
        ));
        out.push_str(
            "== smoke\n$ docker run --detach --rm --publish 127.0.0.1::8000 <backend image>, then GET /health\n\n",
        );
        if !self.from_tag {
            let tag = format!("== tag\n$ git tag --annotate {} --message \"gati {}\"\n\n", self.tag, self.version);
            out.push_str(&tag);
        }
        out.push_str("== push-images\n");
        let pushes = images::dry_run(sh, &plan, true);
        out.extend(
            pushes
                .lines()
                .skip_while(|l| !l.starts_with("$ docker login") && !l.starts_with("$ docker push"))
                .filter(|l| !l.starts_with("dry run"))
                .map(|l| format!("{l}\n")),
        );
        out.push_str(&format!(
            "\n== upload\n$ .tools/venv/bin/python -m twine upload --non-interactive --repository-url {} <sdist> <wheel>   \
             # credentials: {} (****)\n  (files the index already has with the same sha256 are skipped)\n\n",
            self.config.index,
            python::credentials_source().unwrap_or("none")
        ));
        if !self.from_tag {
            out.push_str(&format!(
                "== push-git\n$ git push --atomic origin HEAD:refs/heads/{} refs/tags/{}\n\n",
                self.config.branch, self.tag
            ));
        }
        out.push_str(&format!("dry run: nothing was changed. To release: {} \n", self.again));
        Ok(out)
    }
}

fn image_id(sh: &Shell, image: &str) -> anyhow::Result<String> {
    let format = "{{.Id}}";
    Ok(cmd!(sh, "docker image inspect --format {format} {image}").quiet().read()?)
}

fn timing_table(timings: &[(&str, f64, &str)]) -> String {
    let mut out = format!("\n{:<12} {:>8}  {}\n", "STEP", "SECONDS", "");
    let mut total = 0.0;
    for (step, seconds, status) in timings {
        out.push_str(&format!("{step:<12} {seconds:>8.1}  {status}\n"));
        total += seconds;
    }
    out.push_str(&format!("{:<12} {total:>8.1}\n", "total"));
    out
}
