//! `cargo xtask bench`: figures, measured against a baseline in the same run.

mod backend;
mod phoenix;

use std::{path::Path, time::Instant};

use anyhow::Context;
use xshell::{cmd, Shell};

use crate::{
    flags, images,
    images::context,
    ops::cargo,
    ops::exec::{Executor, Mode},
    ops::provision,
    ops::sandbox::{self, LocalRegistry},
};

impl flags::Bench {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        match self.what {
            flags::BenchWhat::Images { rounds } => {
                // Its image builds stop cargo's process group on Ctrl-C, as `images` does.
                crate::ops::interrupt::install();
                bench_images(sh, rounds.max(1))
            }
            flags::BenchWhat::Release => bench_release(sh),
            flags::BenchWhat::Backend { events, otlp, against } => backend::run(sh, events, otlp, against),
        }
    }
}

fn bench_images(sh: &Shell, rounds: usize) -> anyhow::Result<()> {
    provision::debian_packages(sh, &["docker.io", "docker-registry", "apache2-utils"])?;
    let _dockerd = provision::Dockerd::ensure(sh)?;
    let dir = crate::target_dir(sh).join("bench");
    let mut plan = prepare(sh, &dir)?;

    let (mut old_times, mut new_times, mut rerun_times) = (vec![], vec![], vec![]);
    let mut bytes = 0;
    for round in 1..=rounds {
        eprintln!("round {round}/{rounds}: the old flow");
        let old = LocalRegistry::start(sh, &dir.join("registry-old"))?;
        old_times.push(old_flow(sh, &plan, &old)?);

        eprintln!("round {round}/{rounds}: cargo xtask images --push");
        let new = LocalRegistry::start(sh, &dir.join("registry-new"))?;
        plan.use_registry(&new.address, new.credentials.clone());
        let started = Instant::now();
        let problems = images::checks::problems(sh, &plan, images::checks::Purpose::BuildAndPush);
        anyhow::ensure!(problems.is_empty(), "preflight: {}", problems.join("; "));
        let mut outcomes = images::build::build(sh, &plan, &Executor::new(Mode::Run))?;
        images::push::push(sh, &plan, &Executor::new(Mode::Run), &mut outcomes)?;
        new_times.push(started.elapsed().as_secs_f64());
        bytes = outcomes.iter().flat_map(|o| o.sizes.iter().map(|(_, s)| s)).sum::<u64>();

        eprintln!("round {round}/{rounds}: the same command again, nothing changed");
        let started = Instant::now();
        let mut outcomes = images::build::build(sh, &plan, &Executor::new(Mode::Run))?;
        images::push::push(sh, &plan, &Executor::new(Mode::Run), &mut outcomes)?;
        rerun_times.push(started.elapsed().as_secs_f64());
    }

    let (old, new, rerun) = (median(&mut old_times), median(&mut new_times), median(&mut rerun_times));
    println!(
        "\nimages benchmark: {} images, version {}, {rounds} round(s), median seconds",
        plan.images.len(),
        plan.version
    );
    println!("  old flow (3 docker builds, then 6 docker pushes, in sequence)  {old:>7.1} s");
    println!("  cargo xtask images --push (parallel, verified, floating tags)  {new:>7.1} s");
    println!("  ratio old/new                                                  {:>7.2}x", old / new);
    println!("  re-run with nothing changed                                    {rerun:>7.1} s");
    println!("  image bytes per version                                        {:>7.1} MB", bytes as f64 / 1e6);
    Ok(())
}

/// What `build_and_push.sh` did: build each image, then push each of its two tags, in turn.
fn old_flow(sh: &Shell, plan: &images::Plan, registry: &LocalRegistry) -> anyhow::Result<f64> {
    let version = plan.version.to_string();
    let started = Instant::now();
    let address = &registry.address;
    let user = &registry.credentials.user;
    cmd!(sh, "docker login --username {user} --password-stdin {address}")
        .stdin(&registry.credentials.password)
        .quiet()
        .ignore_stdout()
        .run()?;
    let references: Vec<String> = plan.images.iter().map(|i| format!("{address}/{}", i.repo)).collect();
    for (image, reference) in plan.images.iter().zip(&references) {
        let context = context::dir(sh, &image.service);
        cmd!(sh, "docker build --quiet --no-cache --tag {reference}:{version} --tag {reference}:latest {context}")
            .env("DOCKER_BUILDKIT", "0")
            .quiet()
            .ignore_stdout()
            .run()
            .context("the old flow's docker build")?;
    }
    for reference in &references {
        for tag in [version.as_str(), "latest"] {
            cmd!(sh, "docker push {reference}:{tag}").quiet().ignore_stdout().run().context("the old flow's push")?;
        }
    }
    Ok(started.elapsed().as_secs_f64())
}

fn bench_release(sh: &Shell) -> anyhow::Result<()> {
    provision::debian_packages(sh, &["docker.io", "docker-registry", "apache2-utils", "docker-compose", "curl"])?;
    let python = provision::python_tools(sh)?;
    let _dockerd = provision::Dockerd::ensure(sh)?;
    let dir = crate::target_dir(sh).join("bench-release");
    let plan = prepare(sh, &dir)?;

    // Its time varies by a third from run to run (docker build): the median of three.
    let mut olds = Vec::new();
    for round in 1..=3 {
        eprintln!(
            "the old flow, {round}/3: 3 docker builds, 6 docker pushes, python -m build, twine upload, in sequence"
        );
        olds.push(old_release_flow(sh, &plan, &python, &dir.join(format!("old-{round}")))?);
    }
    let old = median(&mut olds);

    let phases = rehearse_compiling(sh)?;
    let seconds = |name: &str| phases.iter().find(|(n, _)| *n == name).map_or(0.0, |(_, s)| *s);
    let (release, again) = (seconds("release"), seconds("release again"));
    // The rehearsed release compiled the new version; the old flow was given binaries.
    let version = plan.version.bump("patch")?;
    let journal = crate::release::journal::Journal::open(
        &sh.current_dir()
            .join(provision::TOOLS_DIR)
            .join("rehearsal")
            .join("clone")
            .join(provision::TOOLS_DIR)
            .join("state"),
        &version.to_string(),
    )?;
    let provision = journal.seconds("provision").unwrap_or(0.0);
    let compile = journal.seconds("compile").unwrap_or(0.0);
    let verify = journal.seconds("verify").unwrap_or(0.0);
    let build = journal.seconds("build").unwrap_or(0.0) - provision - compile;
    let xtask = seconds("compile xtask");
    let rest = release - provision - compile - verify;

    println!("\nrelease benchmark, {} -> {version}, seconds", plan.version);
    println!("  old flow: 3 builds, 6 pushes, python -m build, twine upload, in sequence  {old:>7.1} s");
    let runs: Vec<String> = olds.iter().map(|s| format!("{s:.1}")).collect();
    println!("    its three runs, the median above                                     {:>11} s", runs.join(" "));
    println!("  cargo xtask release, preflight to verify, as rehearsed                   {release:>7.1} s");
    println!("    installing the build's tools, once a machine (the old flow had them)    {provision:>7.1} s");
    println!("    compiling the new version (the old flow got binaries): the wait         {compile:>7.1} s");
    println!("    verify: pip install and gati start from outside (the old flow had none) {verify:>7.1} s");
    println!("    the rest: checks, last image, pushes, package, upload, tags, git        {rest:>7.1} s");
    println!("      of it, the build step after the compile (the last binary's image)     {build:>7.1} s");
    println!(
        "  release beside the compile: release - tools - compile                    {:>+7.1} s",
        release - provision - compile
    );
    println!("    without verify, the work the old flow did too (goal: +2 s)             {rest:>+7.1} s");
    println!("  ratio old flow / the rest                                                {:>7.2}x", old / rest);
    println!("  (not counted: compiling xtask itself in the fresh clone                  {xtask:>7.1} s)");
    println!("  the same release command again, after success                           {again:>7.1} s");
    Ok(())
}

/// What the old flow did for a release, timed, into a registry and an index of its own in `dir`.
fn old_release_flow(sh: &Shell, plan: &images::Plan, python: &Path, dir: &Path) -> anyhow::Result<f64> {
    let _ = std::fs::remove_dir_all(dir);
    let registry = LocalRegistry::start(sh, &dir.join("registry"))?;
    let index = sandbox::LocalIndex::start(sh, python, &dir.join("index"))?;
    let started = Instant::now();
    old_flow(sh, plan, &registry)?;
    let out = dir.join("dist");
    let url = &index.upload_url;
    cmd!(sh, "{python} -m build sdk --outdir {out}").quiet().ignore_stdout().ignore_stderr().run()?;
    let files: Vec<_> = sh.read_dir(&out)?;
    cmd!(sh, "{python} -m twine upload --non-interactive --disable-progress-bar --repository-url {url} {files...}")
        .env("TWINE_USERNAME", &index.credentials.user)
        .env("TWINE_PASSWORD", &index.credentials.password)
        .quiet()
        .ignore_stdout()
        .run()
        .context("the old flow's upload")?;
    Ok(started.elapsed().as_secs_f64())
}

/// The rehearsal, its release compiling the new version as every release does (the version is
/// in every binary): no binaries an earlier rehearsal of the same version left are reused.
fn rehearse_compiling(sh: &Shell) -> anyhow::Result<Vec<(&'static str, f64)>> {
    eprintln!("the rehearsal: cargo xtask release in a throwaway clone, registry and index, compiling the new version");
    let before = std::env::var_os("GATI_BUILD_CACHE");
    std::env::set_var("GATI_BUILD_CACHE", "off");
    let phases = crate::rehearse::rehearse(sh, None);
    match before {
        Some(value) => std::env::set_var("GATI_BUILD_CACHE", value),
        None => std::env::remove_var("GATI_BUILD_CACHE"),
    }
    phases
}

/// The images plan both flows share, its binaries built and contexts staged (not timed), and a
/// Docker client configuration of the benchmark's own for the throwaway registries' logins.
fn prepare(sh: &Shell, dir: &std::path::Path) -> anyhow::Result<images::Plan> {
    std::env::set_var("DOCKER_CONFIG", sandbox::private_docker_config(dir)?);
    let overrides = crate::model::config::Overrides { registry: None, namespace: Some(sandbox::NAMESPACE.into()) };
    let config = crate::model::config::load(sh, &overrides)?;
    let version = crate::model::surfaces::Surfaces::read(&sh.current_dir())?.current(&config.services)?;
    // Throwaway registries: nothing published depends on this tree, which may be dirty.
    let options = images::PlanOptions { allow_dirty: true, ..Default::default() };
    let plan = images::Plan::for_version(sh, config, version, &options)?;
    let toolchain = crate::ops::toolchain::find(sh, &plan.config.rust, &plan.config.platforms)?;
    let build = cargo::Build {
        services: &plan.config.services,
        platforms: &plan.config.platforms,
        toolchain: &toolchain,
        fresh: false,
        auditable: None,
    };
    let host = crate::model::platform::Platform::host().context("a host platform gati ships")?;
    let binaries = build.run(sh, |_| {})?;
    for image in &plan.images {
        let binary = binaries.iter().find(|b| b.service == image.service && b.platform == host).context("a binary")?;
        context::stage(sh, &image.service, binary.path.parent().context("a binary's folder")?)?;
    }
    Ok(plan)
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}
