//! `cargo xtask images`: build the service images at once and, with `--push`, publish them so
//! that no floating tag ever points at a half-published set.
//!
//! 1. Refusals, all reported together, before anything is built: daemon, Dockerfiles, likely
//!    secrets in a build context, a release pushed from a dirty tree, registry access.
//! 2. One `cargo build` of the static binaries; the `docker build`s in parallel.
//! 3. Push every immutable tag (in parallel), skipping those whose digest the registry already
//!    has ("up to date"), and verify each pushed digest against the registry's manifest.
//! 4. Only then the floating tags, set on the registry to the verified digests, never backwards.

use std::{
    io::{IsTerminal, Write},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use xshell::Shell;

use crate::{
    config::{Config, Overrides},
    context, docker, flags,
    git::Head,
    registry::{retry_budget, Credentials, Registry},
    services,
    surfaces::Surfaces,
    tags::{self, Move, Tags},
    version::ReleaseVersion,
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
    /// Check, but change nothing (not even the Docker client's login).
    pub dry_run: bool,
    /// Count an immutable tag as pushed when the registry's image was built from this same
    /// commit (its revision label), even if its digest differs from the local build's: a release
    /// of a tag re-run on a fresh CI machine keeps what an earlier run pushed.
    pub adopt_same_revision: bool,
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

impl Plan {
    /// The plan for the version the surfaces agree on.
    pub fn new(sh: &Shell, flags: &flags::Images) -> anyhow::Result<Plan> {
        let overrides = Overrides { registry: flags.registry.clone(), namespace: flags.namespace.clone() };
        let config = Config::load(&sh.read_file(crate::config::CONFIG_FILE)?, |k| std::env::var(k).ok(), &overrides)?;
        let version = Surfaces::read(&sh.current_dir())?.current(&config.services)?;
        Plan::for_version(sh, flags, config, version)
    }

    /// The plan for `version`, built from the commit at HEAD.
    pub fn for_version(
        sh: &Shell,
        flags: &flags::Images,
        config: Config,
        version: ReleaseVersion,
    ) -> anyhow::Result<Plan> {
        let head = Head::read(sh)?;
        for only in &flags.only {
            if !config.services.contains(only) {
                bail!("--only {only}: not a service; the services are {}", config.services.join(", "));
            }
        }
        let images = config
            .services
            .iter()
            .filter(|s| flags.only.is_empty() || flags.only.contains(s))
            .map(|service| Image {
                service: service.clone(),
                repo: format!("{}/gati-{service}", config.namespace),
                reference: format!("{}/{}/gati-{service}", config.registry, config.namespace),
            })
            .collect();
        let tags = tags::for_build(&version, flags.edge.then_some(head.commit.as_str()));
        let source = repository_url(&sh.read_file(crate::config::CONFIG_FILE)?);
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
            dry_run: flags.dry_run,
            adopt_same_revision: false,
        })
    }

    pub fn registry(&self, sh: &Shell) -> Registry {
        Registry::new(&self.config.registry, self.credentials.clone(), sh.current_dir().join("target").join("xtask"))
    }

    /// Every problem that would stop the build or the push, found without changing anything.
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
            let registry = self.registry(sh);
            let access = self.images.iter().try_for_each(|image| registry.check_access(&image.repo));
            // The registry accepts these credentials: log the daemon in for the pushes.
            let login = access.and_then(|()| match &self.credentials {
                Some(credentials) if !self.dry_run => docker::login(sh, &self.config.registry, credentials),
                _ => Ok(()),
            });
            if let Err(e) = login {
                problems.push(format!("{e:#}"));
            }
        }
        problems
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
        let plan = Plan::new(sh, &self)?;
        if self.dry_run {
            print!("{}", dry_run(sh, &plan, self.push));
            return Ok(());
        }
        let problems = plan.problems(sh, self.push);
        if !problems.is_empty() {
            bail!("nothing was built or pushed:\n  - {}", problems.join("\n  - "));
        }
        let mut outcomes = build(sh, &plan)?;
        if self.push {
            push(sh, &plan, &mut outcomes)?;
        }
        print!("{}", table(&plan, &outcomes));
        Ok(())
    }
}

/// The plan as commands and tags, with the password masked. Runs nothing.
pub fn dry_run(sh: &Shell, plan: &Plan, push: bool) -> String {
    let mut out = format!(
        "plan: gati {} -> {}/{} ({} images)\n",
        plan.version,
        plan.config.registry,
        plan.config.namespace,
        plan.images.len()
    );
    out.push_str(&format!("$ {}\n", services::build_command(sh, &plan.config.services)));
    for image in &plan.images {
        let build = docker_build(sh, plan, image);
        out.push_str(&format!("$ docker {}\n", docker::build_args(&build).join(" ")));
    }
    if push {
        if let Some(c) = &plan.credentials {
            out.push_str(&format!(
                "$ docker login --username {} --password-stdin {}   # stdin: DOCKER_PASSWORD (****)\n",
                c.user, plan.config.registry
            ));
        }
        for image in &plan.images {
            for tag in &plan.tags.immutable {
                out.push_str(&format!(
                    "$ docker push {}:{tag}   # unless the registry has this digest\n",
                    image.reference
                ));
                out.push_str(&format!(
                    "  verify {}:{tag} on the registry against the pushed digest\n",
                    image.reference
                ));
            }
        }
        for tag in &plan.tags.floating {
            out.push_str(&format!(
                "  then {tag} -> {} on every image, unless a higher stable version is on the registry\n",
                plan.tags.immutable[0]
            ));
        }
    }
    out.push_str("dry run: nothing was built or pushed; run it again without --dry-run\n");
    out
}

fn docker_build(sh: &Shell, plan: &Plan, image: &Image) -> docker::Build {
    docker::Build {
        context: context::dir(sh, &image.service),
        tags: plan.tags.immutable.iter().map(|t| format!("{}:{t}", image.reference)).collect(),
        build_args: plan.build_args.clone(),
        no_cache: plan.no_cache,
    }
}

/// The binaries, the contexts, and every image at once.
pub fn build(sh: &Shell, plan: &Plan) -> anyhow::Result<Vec<Outcome>> {
    // Every service, even with --only: cargo unifies dependency features across the packages
    // of one build, so building one alone would give it a different binary and a new digest.
    let bin_dir = services::build_binaries(sh, &plan.config.services)?;
    for image in &plan.images {
        context::stage(sh, &image.service, &bin_dir)?;
    }
    let builds: Vec<docker::Build> = plan.images.iter().map(|image| docker_build(sh, plan, image)).collect();
    let mut board = Board::new(plan.images.iter().map(|i| i.service.clone()).collect());
    let started = Instant::now();
    let handles =
        builds.iter().map(docker::start_build).collect::<Result<Vec<_>, _>>().context("starting docker build")?;
    board.all("building");
    let mut outcomes = vec![Outcome::default(); handles.len()];
    let mut failures = Vec::new();
    wait_all(&handles, |i, output| {
        let image = &plan.images[i];
        outcomes[i].seconds = started.elapsed().as_secs_f64();
        if output.status.success() {
            let first = &builds[i].tags[0];
            outcomes[i].size = docker::size(sh, first).unwrap_or(0);
            board.set(i, format!("built {}", human_size(outcomes[i].size)));
        } else {
            board.set(i, "build failed".into());
            failures.push(format!(
                "docker build of {} failed:\n{}",
                image.service,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
    })?;
    if !failures.is_empty() {
        bail!("{}", failures.join("\n\n"));
    }
    Ok(outcomes)
}

/// Waits for every handle, calling `done` as each one finishes (in finishing order); kills
/// those still running when the user interrupts.
fn wait_all(handles: &[duct::Handle], mut done: impl FnMut(usize, &std::process::Output)) -> anyhow::Result<()> {
    let mut pending: Vec<usize> = (0..handles.len()).collect();
    while !pending.is_empty() {
        if let Err(interrupted) = crate::interrupt::check() {
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

/// Immutable tags, verified; then the floating tags. Nothing floating moves unless every
/// image's immutable tags are on the registry with the digests that were pushed. The daemon
/// was logged in by the preflight ([`Plan::problems`]).
pub fn push(sh: &Shell, plan: &Plan, outcomes: &mut [Outcome]) -> anyhow::Result<()> {
    let registry = plan.registry(sh);
    let mut board = Board::new(plan.images.iter().map(|i| i.service.clone()).collect());
    push_immutable(sh, plan, &registry, &mut board, outcomes).with_context(|| {
        format!("no floating tag was moved. Run the same command again once {} answers", plan.config.registry)
    })?;
    move_floating(plan, &registry, &mut board, outcomes).with_context(|| {
        format!(
            "every image is pushed and verified, but not every floating tag moved. Run the same command again \
             once {} answers: it moves the rest",
            plan.config.registry
        )
    })?;
    board.all("done");
    Ok(())
}

fn push_immutable(
    sh: &Shell,
    plan: &Plan,
    registry: &Registry,
    board: &mut Board,
    outcomes: &mut [Outcome],
) -> anyhow::Result<()> {
    let started = Instant::now();
    for tag in &plan.tags.immutable {
        // The registry already has this exact image: nothing to send.
        let mut to_push = Vec::new();
        for (i, image) in plan.images.iter().enumerate() {
            let reference = format!("{}:{tag}", image.reference);
            let remote = registry.digest(&image.repo, tag)?;
            let local = docker::repo_digests(sh, &reference)?;
            let built_here = |digest: &str| local.iter().any(|d| d.ends_with(&format!("{}@{digest}", image.repo)));
            let same_commit = || -> anyhow::Result<bool> {
                Ok(plan.adopt_same_revision
                    && !plan.head.dirty
                    && registry.revision(&image.repo, tag)?.as_deref() == Some(plan.head.commit.as_str()))
            };
            match remote {
                Some(digest) if built_here(&digest) || same_commit()? => {
                    let how = if built_here(&digest) { "up to date" } else { "already pushed from this commit" };
                    board.set(i, format!("{tag} {how}"));
                    outcomes[i].seconds += started.elapsed().as_secs_f64();
                    outcomes[i].digest = Some(digest);
                    outcomes[i].tags.push(tag.clone());
                }
                _ => to_push.push(i),
            }
        }
        let digests = push_with_retries(plan, tag, &to_push, board)?;
        for (i, pushed) in digests {
            let image = &plan.images[i];
            board.set(i, format!("verifying {tag}"));
            let remote = registry.digest(&image.repo, tag)?;
            if remote.as_deref() != Some(pushed.as_str()) {
                bail!(
                    "{}:{tag}: pushed {pushed}, but the registry has {}; push again",
                    image.reference,
                    remote.as_deref().unwrap_or("nothing")
                );
            }
            board.set(i, format!("{tag} verified"));
            outcomes[i].seconds += started.elapsed().as_secs_f64();
            outcomes[i].digest = Some(pushed);
            outcomes[i].tags.push(tag.clone());
        }
    }
    Ok(())
}

/// Every immutable tag is verified: the floating tags may move, decided once for all images
/// from the tags of all of them, so that they move together or not at all.
fn move_floating(plan: &Plan, registry: &Registry, board: &mut Board, outcomes: &mut [Outcome]) -> anyhow::Result<()> {
    let mut existing = Vec::new();
    for image in &plan.images {
        existing.extend(registry.tags(&image.repo)?);
    }
    for decision in tags::floating_moves(&plan.version, &plan.tags.floating, &existing) {
        match decision {
            Move::Keep { tag, higher } => {
                println!("{tag} stays where it is: {higher} on the registry is higher than {}", plan.version);
            }
            Move::Move(tag) => {
                for (i, image) in plan.images.iter().enumerate() {
                    let digest = outcomes[i].digest.clone().context("an image without a verified digest")?;
                    if registry.digest(&image.repo, &tag)?.as_deref() != Some(digest.as_str()) {
                        registry.put_tag(&image.repo, &digest, &tag)?;
                        board.set(i, format!("{tag} moved"));
                    }
                    outcomes[i].tags.push(tag.clone());
                }
            }
        }
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
    let budget = retry_budget();
    let started = Instant::now();
    let mut delay = Duration::from_secs(1);
    let mut pending = which.to_vec();
    let mut pushed = Vec::new();
    while !pending.is_empty() {
        let handles = pending
            .iter()
            .map(|&i| {
                board.set(i, format!("pushing {tag}"));
                duct::cmd!("docker", "push", format!("{}:{tag}", plan.images[i].reference))
                    .stdout_capture()
                    .stderr_capture()
                    .unchecked()
                    .start()
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
            bail!(
                "pushing to {} failed; no floating tag was moved:\n  {}",
                plan.config.registry,
                permanent.join("\n  ")
            );
        }
        if !retry.is_empty() && started.elapsed() + delay > budget {
            let why: Vec<String> =
                retry.iter().map(|(i, why)| format!("{}:{tag}: {why}", plan.images[*i].reference)).collect();
            bail!(
                "{} kept failing for {} s:\n  {}",
                plan.config.registry,
                started.elapsed().as_secs(),
                why.join("\n  ")
            );
        }
        if !retry.is_empty() {
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_secs(30));
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

    pub fn all(&mut self, state: &str) {
        for i in 0..self.names.len() {
            self.set(i, state.to_string());
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
