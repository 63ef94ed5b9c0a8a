//! `cargo xtask images`: build the service images at once and, with `--push`, publish them so
//! that no floating tag ever points at a half-published set.
//!
//! 1. Refusals, all reported together, before anything is built: daemon, Dockerfiles, likely
//!    secrets in a build context, a release pushed from a dirty tree, registry access.
//! 2. One `cargo build` of the static binaries; each image's `docker build` as soon as cargo
//!    reports its binary written, while the rest still compiles.
//! 3. Push every immutable tag (in parallel), skipping those whose digest the registry already
//!    has ("up to date"), and verify each pushed digest against the registry's manifest.
//! 4. Only then the floating tags, set on the registry to the verified digests, never backwards.

use std::{
    io::{IsTerminal, Write},
    path::PathBuf,
    sync::Mutex,
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use xshell::Shell;

pub mod context;

use crate::{
    flags,
    model::config::{Config, Overrides},
    model::surfaces::Surfaces,
    model::tags::{self, Move, Tags},
    model::version::ReleaseVersion,
    ops::cargo,
    ops::docker,
    ops::exec::Executor,
    ops::git::{self, Head},
    ops::interrupt,
    ops::retry::Backoff,
    registry::{Credentials, Registry, Remote},
};

/// Everything decided before anything runs.
pub struct Plan {
    pub config: Config,
    pub version: ReleaseVersion,
    pub head: Head,
    pub images: Vec<Image>,
    pub tags: Tags,
    pub build_args: Vec<(String, String)>,
    pub credentials: Option<Credentials>,
    /// Build every layer again (`cargo xtask bench images` compares cold builds).
    pub no_cache: bool,
    /// Push from a tree with uncommitted changes (only into a throwaway registry).
    pub allow_dirty: bool,
    /// The Docker client configuration the pushes use: a private one holding this run's login,
    /// or the user's own (`None`) when no credentials were given.
    pub docker_config: Option<PathBuf>,
}

pub struct Image {
    pub service: String,
    /// `namespace/gati-<service>`: the repository on the registry.
    pub repo: String,
    /// `registry/namespace/gati-<service>`: the image reference without a tag.
    pub reference: String,
}

/// What happened to one image, for the final table.
#[derive(Default, Clone)]
pub struct Outcome {
    pub size: u64,
    pub digest: Option<String>,
    pub tags: Vec<String>,
    pub seconds: f64,
}

/// What to do with one immutable tag of one image, given what the registry holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Push {
    /// The registry lacks it.
    Send,
    /// The registry has exactly the local image.
    UpToDate(String),
    /// The registry has an image built from this same commit (a re-run on another machine, whose
    /// build has other bytes): it stays, and counts as pushed.
    Adopt(String),
    /// The registry has an image built from another commit: an immutable tag never changes.
    Taken(Remote),
}

/// The decision for one immutable tag: pure, from what the registry and the daemon hold.
pub fn decide_push(remote: Option<&Remote>, local_digests: &[String], repo: &str, revision: &str) -> Push {
    let Some(remote) = remote else { return Push::Send };
    if local_digests
        .iter()
        .any(|d| *d == format!("{repo}@{}", remote.digest) || d.ends_with(&format!("/{repo}@{}", remote.digest)))
    {
        return Push::UpToDate(remote.digest.clone());
    }
    match remote.revision.as_deref() {
        Some(r) if r == revision => Push::Adopt(remote.digest.clone()),
        _ => Push::Taken(remote.clone()),
    }
}

impl Plan {
    /// The plan of `cargo xtask images`: the version the surfaces agree on, where the flags say.
    pub fn new(sh: &Shell, flags: &flags::Images) -> anyhow::Result<Plan> {
        let overrides = Overrides { registry: flags.registry.clone(), namespace: flags.namespace.clone() };
        let config = crate::model::config::load(sh, &overrides)?;
        let version = Surfaces::read(&sh.current_dir())?.current(&config.services)?;
        Plan::for_version(sh, config, version, &flags.only, flags.edge)
    }

    /// The plan for `version`, built from the commit at HEAD: every service, or `only` these;
    /// an `edge` build of main gets `sha-<commit>` and `edge`.
    pub fn for_version(
        sh: &Shell,
        config: Config,
        version: ReleaseVersion,
        only: &[String],
        edge: bool,
    ) -> anyhow::Result<Plan> {
        let head = Head::read(sh)?;
        for service in only {
            if !config.services.contains(service) {
                bail!("--only {service}: not a service; the services are {}", config.services.join(", "));
            }
        }
        let images = config
            .services
            .iter()
            .filter(|s| only.is_empty() || only.contains(s))
            .map(|service| Image {
                service: service.clone(),
                repo: format!("{}/gati-{service}", config.namespace),
                reference: format!("{}/{}/gati-{service}", config.registry, config.namespace),
            })
            .collect();
        let tags = tags::for_build(&version, edge.then_some(head.commit.as_str()));
        let source = repository_url(&sh.read_file(crate::model::config::CONFIG_FILE)?);
        let build_args = vec![
            ("VERSION".to_string(), version.to_string()),
            ("REVISION".to_string(), head.revision()),
            ("CREATED".to_string(), head.date.clone()),
            ("SOURCE".to_string(), source),
        ];
        Ok(Plan {
            config,
            version,
            head,
            images,
            tags,
            build_args,
            credentials: Credentials::from_env(),
            no_cache: false,
            allow_dirty: false,
            docker_config: None,
        })
    }

    pub fn registry(&self) -> Registry {
        Registry::new(&self.config.registry, self.credentials.clone())
    }

    /// `read` for every image, side by side, each with a registry client of its own (tokens are
    /// per repository anyway); the results in the images' order.
    pub fn each_image<T: Send>(
        &self,
        read: impl Fn(usize, &Image, &Registry) -> anyhow::Result<T> + Sync,
    ) -> anyhow::Result<Vec<T>> {
        std::thread::scope(|scope| {
            let read = &read;
            let handles: Vec<_> = (self.images.iter().enumerate())
                .map(|(i, image)| scope.spawn(move || read(i, image, &self.registry())))
                .collect();
            let join = |h: std::thread::ScopedJoinHandle<'_, _>| {
                h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a registry read panicked")))
            };
            handles.into_iter().map(join).collect()
        })
    }

    /// What the registry holds for every image's immutable tags, read once.
    pub fn remote_state(&self) -> anyhow::Result<Vec<Vec<Option<Remote>>>> {
        self.each_image(|_, image, registry| {
            self.tags.immutable.iter().map(|tag| registry.remote(&image.repo, tag)).collect()
        })
    }

    /// Every problem that would stop the build or the push, found without changing anything
    /// (no login, no push): the daemon, the Dockerfiles, secrets in a context, a dirty tree,
    /// the right to push, and immutable tags that the registry holds from another commit.
    pub fn problems(&self, sh: &Shell, push: bool) -> Vec<String> {
        let root = sh.current_dir();
        let mut problems = Vec::new();
        if !docker::daemon_answers(sh) {
            problems.push("the Docker daemon is not answering: start it (`dockerd`, or Docker Desktop)".into());
        }
        for image in &self.images {
            for file in ["Dockerfile", ".dockerignore"] {
                if !root.join(&image.service).join(file).exists() {
                    problems.push(format!("{}/{file} is missing", image.service));
                }
            }
            for secret in context::find_secrets(&root, &root.join(&image.service)) {
                problems.push(format!(
                    "{secret} looks like a secret inside a build context: move it out of {}/",
                    image.service
                ));
            }
        }
        if push && self.head.dirty && !self.allow_dirty {
            problems.push(format!(
                "the tree has uncommitted changes: images ({}) are pushed only from a clean commit; commit or stash them",
                self.tags.immutable.join(", ")
            ));
        }
        if push {
            let checked = self.each_image(|_, image, registry| registry.check_push(&image.repo));
            match checked.and_then(|_| self.remote_state()) {
                Err(e) => problems.push(format!("{e:#}")),
                Ok(state) => problems.extend(self.taken(&state)),
            }
        }
        problems
    }

    /// The immutable tags the registry holds from another commit, each with the fix.
    pub fn taken(&self, state: &[Vec<Option<Remote>>]) -> Vec<String> {
        let mut problems = Vec::new();
        for (image, remotes) in self.images.iter().zip(state) {
            for (tag, remote) in self.tags.immutable.iter().zip(remotes) {
                if let Push::Taken(remote) = decide_push(remote.as_ref(), &[], &image.repo, &self.head.revision()) {
                    problems.push(format!(
                        "{}:{tag} is on the registry already, built from {} (this tree is {}): an immutable tag never \
                         changes. Release a new version (`cargo xtask bump patch`), or push this commit with `--edge`",
                        image.reference,
                        git::short(remote.revision.as_deref().unwrap_or("an unknown commit")),
                        git::short(&self.head.revision()),
                    ));
                }
            }
        }
        problems
    }

    /// Logs the Docker client in for the pushes, when credentials were given: into a private
    /// client configuration that is deleted when the returned guard drops, so that the password
    /// is not left on disk after the run (error and Ctrl-C included).
    pub fn login(&mut self, sh: &Shell, exec: &Executor) -> anyhow::Result<Option<docker::Login>> {
        let Some(credentials) = &self.credentials else { return Ok(None) };
        let what = format!(
            "log in to {} as {} (DOCKER_PASSWORD, ****) in a private Docker client configuration, deleted afterwards",
            self.config.registry, credentials.user
        );
        let login = exec.run(&what, || docker::Login::new(sh, &self.config.registry, credentials))?;
        self.docker_config = login.as_ref().map(|l| l.dir.clone());
        Ok(login)
    }
}

/// `repository` from `[workspace.package]`, for the `source` label.
fn repository_url(cargo_toml: &str) -> String {
    cargo_toml
        .parse::<toml_edit::DocumentMut>()
        .ok()
        .and_then(|d| d["workspace"]["package"]["repository"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl flags::Images {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let mut plan = Plan::new(sh, &self)?;
        let exec = Executor::new(self.dry_run);
        println!(
            "gati {} -> {}/{} ({} images)",
            plan.version,
            plan.config.registry,
            plan.config.namespace,
            plan.images.len()
        );
        let problems = plan.problems(sh, self.push);
        if !problems.is_empty() {
            bail!("nothing was built or pushed:\n  - {}", problems.join("\n  - "));
        }
        interrupt::install();
        let mut outcomes = build(sh, &plan, &exec)?;
        if self.push {
            push(sh, &mut plan, &exec, &mut outcomes)?;
        }
        if exec.dry_run() {
            println!("dry run: nothing was built or pushed; run it again without --dry-run");
        } else {
            print!("{}", table(&plan, &outcomes));
        }
        Ok(())
    }
}

fn docker_build(sh: &Shell, plan: &Plan, image: &Image) -> docker::Build {
    docker::Build {
        context: context::dir(sh, &image.service),
        tags: plan.tags.immutable.iter().map(|t| format!("{}:{t}", image.reference)).collect(),
        build_args: plan.build_args.clone(),
        no_cache: plan.no_cache,
    }
}

/// The binaries, and every image as its binary lands (see [`build_as_compiled`]).
pub fn build(sh: &Shell, plan: &Plan, exec: &Executor) -> anyhow::Result<Vec<Outcome>> {
    let mut lines = vec![cargo::reporting_build_command(sh, &plan.config.services).to_string()];
    lines.extend(build_lines(sh, plan));
    let built = exec.run_all(&lines, || build_as_compiled(sh, plan, |_, _| Ok(())))?;
    Ok(built.map_or_else(|| vec![Outcome::default(); plan.images.len()], |(outcomes, _)| outcomes))
}

/// The `docker build` command of every image, as printed. The commit and its date are HEAD's
/// when the build runs: in a release, the release commit that a dry run cannot name yet.
pub fn build_lines(sh: &Shell, plan: &Plan) -> Vec<String> {
    (plan.images.iter())
        .map(|image| {
            let mut shown = docker_build(sh, plan, image);
            for (key, value) in &mut shown.build_args {
                match key.as_str() {
                    "REVISION" => *value = "<HEAD>".into(),
                    "CREATED" => *value = "<HEAD's date>".into(),
                    _ => {}
                }
            }
            format!("docker {}", docker::build_args(&shown).join(" "))
        })
        .collect()
}

/// Compiles every service in one `cargo build` and builds each image as soon as cargo reports
/// its binary written, while the rest still compiles; then `then(image, shell)` runs on that
/// image's thread (the release smoke-tests the backend there, long before the compile ends).
/// Every service is compiled, even with `--only`: cargo unifies dependency features across the
/// packages of one build, so building one alone would give it another binary and a new digest.
/// Returns each image's outcome and the compile's seconds.
pub fn build_as_compiled(
    sh: &Shell,
    plan: &Plan,
    then: impl Fn(&Image, &Shell) -> anyhow::Result<()> + Sync,
) -> anyhow::Result<(Vec<Outcome>, f64)> {
    let bin_dir = cargo::bin_dir(sh);
    let root = sh.current_dir();
    let board = Mutex::new(Board::in_lines(plan.images.iter().map(|i| i.service.clone()).collect()));
    let set = |i: usize, state: String| board.lock().unwrap_or_else(|e| e.into_inner()).set(i, state);
    let started = Instant::now();
    std::thread::scope(|scope| {
        let mut building = Vec::new();
        let compiled = cargo::build_binaries_as_landed(sh, &plan.config.services, |service| {
            let Some(i) = plan.images.iter().position(|image| image.service == service) else { return };
            let (image, root, bin_dir, set, then) = (&plan.images[i], &root, &bin_dir, &set, &then);
            building.push(scope.spawn(move || -> anyhow::Result<(usize, Outcome)> {
                let sh = crate::shell_in(root)?;
                context::stage(&sh, &image.service, bin_dir)?;
                let build = docker_build(&sh, plan, image);
                let handle = docker::start_build(&build).context("starting docker build")?;
                set(i, "building".into());
                let output = wait_one(&handle)?;
                if !output.status.success() {
                    set(i, "build failed".into());
                    bail!(
                        "docker build of {} failed:\n{}",
                        image.service,
                        String::from_utf8_lossy(&output.stderr).trim()
                    );
                }
                let size = docker::size(&sh, &build.tags[0]).unwrap_or(0);
                set(i, format!("built {}", human_size(size)));
                then(image, &sh)?;
                Ok((i, Outcome { size, seconds: started.elapsed().as_secs_f64(), ..Default::default() }))
            }));
        });
        let compile = started.elapsed().as_secs_f64();
        let mut outcomes = vec![None; plan.images.len()];
        let mut failures = Vec::new();
        for handle in building {
            match handle.join() {
                Ok(Ok((i, outcome))) => outcomes[i] = Some(outcome),
                Ok(Err(e)) => failures.push(e),
                Err(_) => failures.push(anyhow::anyhow!("an image build panicked")),
            }
        }
        compiled?;
        // Ctrl-C stops the docker builds and the smoke test too: interrupted, not failed.
        interrupt::check()?;
        if !failures.is_empty() {
            bail!("{}", failures.iter().map(|e| format!("{e:#}")).collect::<Vec<_>>().join("\n\n"));
        }
        let outcomes = plan.images.iter().zip(outcomes).map(|(image, outcome)| {
            outcome.with_context(|| format!("cargo reported no binary of {}: its image was not built", image.service))
        });
        Ok((outcomes.collect::<anyhow::Result<_>>()?, compile))
    })
}

/// Waits for one handle; kills it when the user interrupts.
fn wait_one(handle: &duct::Handle) -> anyhow::Result<std::process::Output> {
    loop {
        if let Err(interrupted) = interrupt::check() {
            let _ = handle.kill();
            return Err(interrupted);
        }
        if let Some(output) = handle.try_wait()? {
            return Ok(output.clone());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for every handle, calling `done` as each one finishes (in finishing order); kills
/// those still running when the user interrupts.
fn wait_all(handles: &[duct::Handle], mut done: impl FnMut(usize, &std::process::Output)) -> anyhow::Result<()> {
    let mut pending: Vec<usize> = (0..handles.len()).collect();
    while !pending.is_empty() {
        if let Err(interrupted) = crate::ops::interrupt::check() {
            for i in pending {
                let _ = handles[i].kill();
            }
            return Err(interrupted);
        }
        let mut still = Vec::new();
        for i in pending {
            match handles[i].try_wait()? {
                Some(output) => done(i, output),
                None => still.push(i),
            }
        }
        pending = still;
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Logs in, pushes every immutable tag (verified), then moves the floating tags.
pub fn push(sh: &Shell, plan: &mut Plan, exec: &Executor, outcomes: &mut [Outcome]) -> anyhow::Result<()> {
    let _login = plan.login(sh, exec)?;
    push_immutable(sh, plan, exec, outcomes)?;
    move_floating(plan, exec, outcomes)
}

/// Pushes every immutable tag the registry lacks, at once, and verifies each pushed digest on
/// the registry. Tags the registry holds are decided from one read of it ([`decide_push`]):
/// up to date, adopted (built from this commit elsewhere), or refused (another commit's).
/// Nothing floating moves here.
pub fn push_immutable(sh: &Shell, plan: &Plan, exec: &Executor, outcomes: &mut [Outcome]) -> anyhow::Result<()> {
    let mut board = Board::new(plan.images.iter().map(|i| i.service.clone()).collect());
    let started = Instant::now();
    let fix = || format!("no floating tag was moved. Run the same command again once {} answers", plan.config.registry);
    let state = plan.remote_state().with_context(fix)?;
    let taken = plan.taken(&state);
    if !taken.is_empty() {
        bail!("nothing was pushed:\n  - {}", taken.join("\n  - "));
    }
    for (t, tag) in plan.tags.immutable.iter().enumerate() {
        let mut to_push = Vec::new();
        for (i, image) in plan.images.iter().enumerate() {
            let local = docker::repo_digests(sh, &format!("{}:{tag}", image.reference)).unwrap_or_default();
            let (how, digest) = match decide_push(state[i][t].as_ref(), &local, &image.repo, &plan.head.revision()) {
                Push::Send => {
                    to_push.push(i);
                    continue;
                }
                Push::UpToDate(digest) => ("up to date", digest),
                Push::Adopt(digest) => ("already pushed from this commit", digest),
                Push::Taken(_) => unreachable!("refused above"),
            };
            board.set(i, format!("{tag} {how}"));
            outcomes[i].seconds += started.elapsed().as_secs_f64();
            outcomes[i].digest = Some(digest);
            outcomes[i].tags.push(tag.clone());
        }
        if to_push.is_empty() {
            continue;
        }
        let lines: Vec<String> =
            to_push.iter().map(|&i| format!("docker push {}:{tag}", plan.images[i].reference)).collect();
        let pushed = exec.run_all(&lines, || {
            let digests = push_with_retries(plan, tag, &to_push, &mut board).with_context(fix)?;
            // What the registry now serves under the tag, every image at once.
            let served = plan.each_image(|i, image, registry| match to_push.contains(&i) {
                true => registry.digest(&image.repo, tag),
                false => Ok(None),
            });
            let served = served.with_context(fix)?;
            for (i, pushed) in &digests {
                let image = &plan.images[*i];
                if served[*i].as_deref() != Some(pushed.as_str()) {
                    bail!(
                        "{}:{tag}: pushed {pushed}, but the registry has {}; push again",
                        image.reference,
                        served[*i].as_deref().unwrap_or("nothing")
                    );
                }
                board.set(*i, format!("{tag} verified"));
            }
            Ok(digests)
        })?;
        for (i, digest) in pushed.into_iter().flatten() {
            outcomes[i].seconds += started.elapsed().as_secs_f64();
            outcomes[i].digest = Some(digest);
            outcomes[i].tags.push(tag.clone());
        }
    }
    Ok(())
}

/// Which floating tags move, decided once for all images from the registry's tags, so that
/// they move together or not at all; and a line for each that stays.
pub fn floating_moves(plan: &Plan) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let existing: Vec<String> = plan.each_image(|_, image, registry| registry.tags(&image.repo))?.concat();
    let (mut moves, mut stays) = (Vec::new(), Vec::new());
    for decision in tags::floating_moves(&plan.version, &plan.tags.floating, &existing) {
        match decision {
            Move::Keep { tag, higher } => {
                stays.push(format!("{tag} stays where it is: {higher} on the registry is higher than {}", plan.version))
            }
            Move::Move(tag) => moves.push(tag),
        }
    }
    Ok((moves, stays))
}

/// Every immutable tag is verified: the floating tags move, on the registry itself, to the
/// digests of the immutable tag, never backwards. Each image's tags move in order; the images
/// side by side.
pub fn move_floating(plan: &Plan, exec: &Executor, outcomes: &mut [Outcome]) -> anyhow::Result<()> {
    let fix = || {
        format!(
            "every image is pushed and verified, but not every floating tag moved. Run the same command again \
             once {} answers: it moves the rest",
            plan.config.registry
        )
    };
    let (moves, stays) = floating_moves(plan).with_context(fix)?;
    for line in stays {
        println!("{line}");
    }
    if moves.is_empty() {
        return Ok(());
    }
    let immutable = &plan.tags.immutable[0];
    let what: Vec<String> = moves
        .iter()
        .flat_map(|tag| {
            let repos = plan.images.iter().map(|image| &image.repo);
            repos.map(move |repo| format!("registry: {repo}:{tag} -> the digest of {repo}:{immutable}"))
        })
        .collect();
    let known: Vec<Option<String>> = outcomes.iter().map(|o| o.digest.clone()).collect();
    let moved = exec
        .run_all(&what, || {
            plan.each_image(|i, image, registry| {
                let repo = &image.repo;
                let digest = match &known[i] {
                    Some(digest) => digest.clone(),
                    None => registry.digest(repo, immutable)?.with_context(|| format!("{repo}:{immutable} is gone"))?,
                };
                let mut moved = Vec::new();
                for tag in &moves {
                    if registry.digest(repo, tag)?.as_deref() != Some(digest.as_str()) {
                        registry.put_tag(repo, &digest, tag)?;
                        moved.push(tag.as_str());
                    }
                }
                Ok(moved.join(", "))
            })
        })
        .with_context(fix)?;
    let mut board = Board::new(plan.images.iter().map(|i| i.service.clone()).collect());
    for (i, moved) in moved.into_iter().flatten().enumerate() {
        if !moved.is_empty() {
            board.set(i, format!("{moved} moved"));
        }
    }
    for outcome in outcomes.iter_mut() {
        outcome.tags.extend(moves.iter().cloned());
    }
    Ok(())
}

/// `docker push` of `tag` for the images `which`, at once; transient failures are retried
/// with backoff within a bounded total. Returns each pushed digest.
fn push_with_retries(
    plan: &Plan,
    tag: &str,
    which: &[usize],
    board: &mut Board,
) -> anyhow::Result<Vec<(usize, String)>> {
    let mut backoff = Backoff::default();
    let mut pending = which.to_vec();
    let mut pushed = Vec::new();
    let config: Vec<String> = match &plan.docker_config {
        Some(dir) => vec!["--config".into(), dir.display().to_string()],
        None => vec![],
    };
    while !pending.is_empty() {
        let handles = pending
            .iter()
            .map(|&i| {
                board.set(i, format!("pushing {tag}"));
                let mut args = config.clone();
                args.extend(["push".into(), format!("{}:{tag}", plan.images[i].reference)]);
                duct::cmd("docker", args).stdout_capture().stderr_capture().unchecked().start()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut retry = Vec::new();
        let mut permanent = Vec::new();
        wait_all(&handles, |k, output| {
            let i = pending[k];
            let text =
                format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
            match (output.status.success(), pushed_digest(&text)) {
                (true, Some(digest)) => {
                    board.set(i, format!("pushed {tag}"));
                    pushed.push((i, digest));
                }
                _ if is_transient(&text) => {
                    board.set(i, format!("push failed, retrying: {}", last_line(&text)));
                    retry.push((i, last_line(&text)));
                }
                _ => {
                    board.set(i, "push failed".into());
                    permanent.push(format!("{}:{tag}: {}", plan.images[i].reference, last_line(&text)));
                }
            }
        })?;
        if !permanent.is_empty() {
            bail!("pushing to {} failed:\n  {}", plan.config.registry, permanent.join("\n  "));
        }
        if !retry.is_empty() {
            let why: Vec<String> =
                retry.iter().map(|(i, why)| format!("{}:{tag}: {why}", plan.images[*i].reference)).collect();
            backoff.wait(&format!("{} failed a push ({})", plan.config.registry, why.join("; ")), None)?;
        }
        pending = retry.into_iter().map(|(i, _)| i).collect();
    }
    Ok(pushed)
}

/// The digest in `docker push`'s last line: `<tag>: digest: sha256:… size: N`.
fn pushed_digest(output: &str) -> Option<String> {
    let at = output.rfind("digest: sha256:")? + "digest: ".len();
    let digest: String = output[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == ':').collect();
    (digest.len() == "sha256:".len() + 64).then_some(digest)
}

/// Connection trouble, server errors and rate limits pass; refusals and bad manifests do not.
fn is_transient(output: &str) -> bool {
    let text = output.to_ascii_lowercase();
    let permanent = [
        "unauthorized",
        "denied",
        "authentication required",
        "manifest invalid",
        "name invalid",
        "no basic auth credentials",
    ];
    if permanent.iter().any(|p| text.contains(p)) {
        return false;
    }
    let transient = [
        "connection refused",
        "connection reset",
        "broken pipe",
        "i/o timeout",
        "eof",
        "toomanyrequests",
        "429",
        "500 internal",
        "502",
        "503",
        "504",
        "tls handshake timeout",
        "no such host",
    ];
    transient.iter().any(|t| text.contains(t))
}

fn last_line(text: &str) -> String {
    text.trim().lines().last().unwrap_or("").trim().to_string()
}

fn human_size(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// The final table: image, tags, size, digest, seconds.
pub fn table(plan: &Plan, outcomes: &[Outcome]) -> String {
    let mut out = format!("\n{:<44} {:<28} {:>8}  {:<19}  {:>7}\n", "IMAGE", "TAGS", "SIZE", "DIGEST", "SECONDS");
    for (image, o) in plan.images.iter().zip(outcomes) {
        let tags = if o.tags.is_empty() { plan.tags.immutable.join(",") } else { o.tags.join(",") };
        let digest = o
            .digest
            .as_deref()
            .map(|d| d.chars().take(19).collect::<String>())
            .unwrap_or_else(|| "(not pushed)".into());
        out.push_str(&format!(
            "{:<44} {:<28} {:>8}  {:<19}  {:>7.1}\n",
            image.reference,
            tags,
            human_size(o.size),
            digest,
            o.seconds
        ));
    }
    out
}

/// One line per image: redrawn in place on a terminal, a plain line per change otherwise (CI).
pub struct Board {
    names: Vec<String>,
    states: Vec<String>,
    live: bool,
    drawn: bool,
}

impl Board {
    pub fn new(names: Vec<String>) -> Board {
        let states = vec![String::new(); names.len()];
        Board { names, states, live: std::io::stdout().is_terminal() && std::env::var_os("CI").is_none(), drawn: false }
    }

    /// One line per change, never redrawn: for states that change while other output (cargo's)
    /// goes to the terminal.
    pub fn in_lines(names: Vec<String>) -> Board {
        Board { live: false, ..Board::new(names) }
    }

    pub fn set(&mut self, i: usize, state: String) {
        if self.states[i] == state {
            return;
        }
        self.states[i] = state;
        if self.live {
            self.redraw();
        } else {
            println!("{:<12} {}", self.names[i], self.states[i]);
        }
    }

    fn redraw(&mut self) {
        let mut out = std::io::stdout().lock();
        if self.drawn {
            let _ = write!(out, "\x1b[{}A", self.names.len());
        }
        for (name, state) in self.names.iter().zip(&self.states) {
            let _ = writeln!(out, "\x1b[2K{name:<12} {state}");
        }
        let _ = out.flush();
        self.drawn = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_pushed_digest() {
        let out = "The push refers to repository [127.0.0.1:5000/gatidev/gati-backend]\n\
                   5f70bf18a086: Pushed\n0.1.0: digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef size: 528\n";
        assert_eq!(
            pushed_digest(out).as_deref(),
            Some("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
        );
        assert_eq!(pushed_digest("no digest here"), None);
    }

    #[test]
    fn an_immutable_tag_is_sent_kept_adopted_or_refused() {
        let remote =
            |revision: &str| Remote { digest: "sha256:aa".into(), revision: Some(revision.into()), version: None };
        let repo = "gatidev/gati-backend";
        let pushed_here = ["127.0.0.1:5000/gatidev/gati-backend@sha256:aa".to_string()];
        assert_eq!(decide_push(None, &[], repo, "c1"), Push::Send);
        assert_eq!(decide_push(Some(&remote("c1")), &pushed_here, repo, "c1"), Push::UpToDate("sha256:aa".into()));
        // Built from this commit on another machine: other bytes, same source. It stays.
        assert_eq!(decide_push(Some(&remote("c1")), &[], repo, "c1"), Push::Adopt("sha256:aa".into()));
        // Built from another commit: an immutable tag never changes.
        assert_eq!(decide_push(Some(&remote("c0")), &[], repo, "c1"), Push::Taken(remote("c0")));
        let unlabelled = Remote { digest: "sha256:bb".into(), revision: None, version: None };
        assert_eq!(decide_push(Some(&unlabelled), &pushed_here, repo, "c1"), Push::Taken(unlabelled.clone()));
    }

    #[test]
    fn classifies_push_failures() {
        assert!(is_transient(
            "Put \"http://127.0.0.1:5000/v2/\": dial tcp 127.0.0.1:5000: connect: connection refused"
        ));
        assert!(is_transient("received unexpected HTTP status: 503 Service Unavailable"));
        assert!(is_transient("toomanyrequests: You have reached your pull rate limit"));
        assert!(!is_transient("unauthorized: authentication required"));
        assert!(!is_transient("denied: requested access to the resource is denied"));
        assert!(!is_transient("manifest invalid: manifest invalid"));
    }
}
