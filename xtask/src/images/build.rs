//! Building the images, without a builder: one `cargo build` of every service for every
//! platform; as each binary lands, while the rest still compiles, its platform's image is
//! assembled from the service's Dockerfile (images/oci.rs), loaded into Docker when it is the
//! host's, and smoke-tested (in Docker, or under qemu-user); once a service has every platform,
//! its index is written as an OCI layout (`target/oci/<service>`), which the push sends.

use std::{collections::BTreeMap, sync::Mutex, time::Instant};

use anyhow::bail;
use xshell::Shell;

use super::{
    assembled::{self, Assembled, PlatformImage},
    attest,
    board::Board,
    dockerfile::ImageSpec,
    smoke, Image, Outcome, Plan,
};
use crate::{
    model::platform::Platform,
    ops::{
        audit,
        cargo::{self, Binary},
        exec::Executor,
        interrupt,
        toolchain::{self, Toolchain},
    },
};

/// What becomes of each platform's image once assembled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finish {
    /// The host platform's image into Docker, under every immutable tag.
    pub load: bool,
    /// Every platform's image answers its health route with the version.
    pub smoke: bool,
}

impl Finish {
    /// What a build that may be pushed does: everything.
    pub const ALL: Finish = Finish { load: true, smoke: true };
}

/// What a build made.
pub struct Built {
    /// In the plan's order.
    pub assembled: Vec<Assembled>,
    /// How long installing the build's tools took (npm packages, cargo-auditable and its
    /// readers; nothing once a machine has them).
    pub provision: f64,
    /// How long cargo took (nothing, when these sources were built before).
    pub compile: f64,
    pub toolchain: Toolchain,
    /// Every binary, of every service and platform.
    pub binaries: Vec<Binary>,
}

/// The binaries and every image (see [`build_all`]), through `exec`; each image's outcome.
pub fn build(sh: &Shell, plan: &Plan, exec: &Executor) -> anyhow::Result<Vec<Outcome>> {
    let built = exec.run_all(&build_lines(sh, plan)?, || build_all(sh, plan, Finish::ALL))?;
    Ok(match built {
        Some(built) => built.assembled.iter().map(Outcome::of).collect(),
        None => vec![Outcome::default(); plan.images.len()],
    })
}

/// What the build runs, as printed: the cargo command, then each image's assembly and smoke
/// test. The commit is HEAD's when the build runs: in a release, the release commit that a dry
/// run cannot name yet.
pub fn build_lines(sh: &Shell, plan: &Plan) -> anyhow::Result<Vec<String>> {
    let toolchain = Toolchain { name: toolchain_name(sh, plan), rustc: String::new() };
    let build = cargo::Build {
        services: &plan.config.services,
        platforms: &plan.config.platforms,
        toolchain: &toolchain,
        fresh: false,
        auditable: Some(audit::WRAPPER_DIR.into()),
    };
    let mut lines = vec![build.shown(sh)];
    let platforms: Vec<&str> = plan.config.platforms.iter().map(|p| p.name).collect();
    for image in &plan.images {
        let tags: Vec<String> = plan.tags.immutable.iter().map(|t| format!("{}:{t}", image.reference)).collect();
        lines.push(format!(
            "assemble {} for {} from {}/Dockerfile (revision <HEAD>) into {}; docker load the host's; smoke-test {} \
             on each platform",
            tags.join(", "),
            platforms.join(", "),
            image.service,
            Assembled::dir(sh, &image.service).display(),
            smoke::health_path(&image.service),
        ));
    }
    Ok(lines)
}

/// The rustup name of the release's toolchain, as far as this machine knows it.
fn toolchain_name(sh: &Shell, plan: &Plan) -> String {
    toolchain::find(sh, &plan.config.rust, &plan.config.platforms).map_or_else(|_| plan.config.rust.clone(), |t| t.name)
}

/// Compiles every service for every platform and assembles each image as its binary lands;
/// `finish` says what then. Every service is compiled, even with `--only`: cargo unifies
/// dependency features across the packages of one build, so building one alone would give it
/// another binary and a new digest.
pub fn build_all(sh: &Shell, plan: &Plan, finish: Finish) -> anyhow::Result<Built> {
    let toolchain = toolchain::find(sh, &plan.config.rust, &plan.config.platforms)?;
    let problems: Vec<String> = toolchain::problems(sh, &toolchain, &plan.config.platforms)
        .into_iter()
        .filter(|p| finish.smoke || !p.contains("qemu"))
        .collect();
    if !problems.is_empty() {
        bail!("the toolchain cannot build every platform:\n  - {}", problems.join("\n  - "));
    }
    let specs = specs(sh, plan, &toolchain)?;
    let provisioning = Instant::now();
    audit::ensure(sh)?;
    let provision = provisioning.elapsed().as_secs_f64();
    let root = sh.current_dir();
    let board = Mutex::new(Board::in_lines(plan.images.iter().map(|i| i.service.clone()).collect()));
    let started = Instant::now();
    let build = cargo::Build {
        services: &plan.config.services,
        platforms: &plan.config.platforms,
        toolchain: &toolchain,
        fresh: plan.options.fresh,
        auditable: Some(audit::wrapper_dir(sh)?),
    };
    let (images, compile, binaries) = std::thread::scope(|scope| {
        let mut handles = Vec::new();
        let compiled = build.run(sh, |binary| {
            let Some(i) = plan.images.iter().position(|image| image.service == binary.service) else { return };
            let (binary, spec, root, board, toolchain) = (binary.clone(), &specs[i], &root, &board, &toolchain);
            handles.push(scope.spawn(move || -> anyhow::Result<(usize, PlatformImage)> {
                let sh = crate::ops::shell::shell_in(root)?;
                let set = |state: String| board.lock().unwrap_or_else(|e| e.into_inner()).set(i, state);
                let mut image = one_platform(&sh, plan, &plan.images[i], spec, &binary, finish, &set)?;
                // Uncommitted sources have no commit to name.
                if !plan.head.dirty {
                    let attestations = attest::image::of(&sh, plan, &plan.images[i], toolchain, &image, &binary)?;
                    image.attestations = Some(attestations);
                }
                Ok((i, image))
            }));
        });
        let compile = started.elapsed().as_secs_f64();
        let joined: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("an image's assembly panicked"))))
            .collect();
        compiled.map(|binaries| (joined, compile, binaries))
    })?;
    // Ctrl-C stops the assembly and the smoke tests too: interrupted, not failed.
    interrupt::check()?;
    let assembled = indexes(sh, plan, &specs, images)?;
    // The images were made from the bytes cargo wrote; whoever takes the binaries from their
    // files next must find those same bytes there.
    for binary in &binaries {
        binary.unchanged()?;
    }
    Ok(Built { assembled, provision, compile, toolchain, binaries })
}

/// Each image's spec, from its Dockerfile, with the plan's build arguments and the toolchain.
fn specs(sh: &Shell, plan: &Plan, toolchain: &Toolchain) -> anyhow::Result<Vec<ImageSpec>> {
    let mut args: BTreeMap<String, String> = plan.build_args.iter().cloned().collect();
    args.insert("RUSTC".into(), toolchain.label());
    plan.images.iter().map(|image| assembled::spec(sh, plan, image, &args)).collect()
}

/// One platform's image of one service: assembled from its binary, loaded into Docker when it
/// is the host's, smoke-tested.
fn one_platform(
    sh: &Shell,
    plan: &Plan,
    image: &Image,
    spec: &ImageSpec,
    binary: &Binary,
    finish: Finish,
    set: &dyn Fn(String),
) -> anyhow::Result<PlatformImage> {
    let platform = binary.platform;
    set(format!("assembling {}", platform.name));
    let assembled = assembled::platform_image(spec, platform, &binary.bytes, &plan.head.created)?;
    let reference = format!("{}:{}", image.reference, plan.tags.immutable[0]);
    if Platform::host() == Some(platform) && finish.load {
        let tags: Vec<String> = plan.tags.immutable.iter().map(|t| format!("{}:{t}", image.reference)).collect();
        smoke::load(&assembled, &tags)?;
        if finish.smoke {
            set(format!("smoke-testing {} in Docker", platform.name));
            smoke::in_docker(sh, &image.service, &reference, spec, &plan.version)?;
        }
    } else if finish.smoke {
        set(format!("smoke-testing {} under {}", platform.name, platform.qemu));
        smoke::under_qemu(sh, &image.service, &assembled, spec, &plan.version)?;
    }
    set(format!("{} ready", platform.name));
    Ok(assembled)
}

/// Every service's index, once every platform's image of it is there, written to its layout.
fn indexes(
    sh: &Shell,
    plan: &Plan,
    specs: &[ImageSpec],
    images: Vec<anyhow::Result<(usize, PlatformImage)>>,
) -> anyhow::Result<Vec<Assembled>> {
    let mut by_image: Vec<Vec<PlatformImage>> = vec![Vec::new(); plan.images.len()];
    let mut failures = Vec::new();
    for result in images {
        match result {
            Ok((i, image)) => by_image[i].push(image),
            Err(e) => failures.push(format!("{e:#}")),
        }
    }
    if !failures.is_empty() {
        bail!("{}\nnothing was pushed", failures.join("\n\n"));
    }
    let mut assembled = Vec::new();
    for ((image, spec), platforms) in plan.images.iter().zip(specs).zip(by_image) {
        if platforms.len() != plan.config.platforms.len() {
            bail!("cargo did not report every platform's binary of {}: its index was not assembled", image.service);
        }
        let index = Assembled::new(&image.service, spec, platforms)?;
        index.write(sh, &plan.head.revision(), &plan.version.to_string())?;
        assembled.push(index);
    }
    Ok(assembled)
}
