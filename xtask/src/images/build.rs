//! Building the images: one `cargo build` of every service, each image's `docker build` as
//! soon as cargo reports its binary written, from a context staged with exactly what its
//! Dockerfile copies.

use std::{sync::Mutex, time::Instant};

use anyhow::{bail, Context};
use xshell::Shell;

use super::{
    board::{self, Board},
    context, Image, Outcome, Plan,
};
use crate::ops::{cargo, docker, exec::Executor, interrupt};

fn docker_build(sh: &Shell, plan: &Plan, image: &Image) -> docker::Build {
    docker::Build {
        context: context::dir(sh, &image.service),
        tags: plan.tags.immutable.iter().map(|t| format!("{}:{t}", image.reference)).collect(),
        build_args: plan.build_args.clone(),
        no_cache: plan.options.no_cache,
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
                let output = interrupt::wait(&handle)?;
                if !output.status.success() {
                    set(i, "build failed".into());
                    bail!(
                        "docker build of {} failed:\n{}",
                        image.service,
                        String::from_utf8_lossy(&output.stderr).trim()
                    );
                }
                let size = super::local_size(&sh, &build.tags[0]);
                set(i, format!("built {}", board::human_size(size)));
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
