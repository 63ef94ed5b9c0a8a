//! `cargo xtask images`: build the service images at once and, with `--push`, publish them so
//! that no floating tag ever points at a half-published set.
//!
//! 1. Refusals, all reported together, before anything is built ([`checks`]): daemon,
//!    Dockerfiles, likely secrets in a build context, a push from a dirty tree, the right to
//!    push, immutable tags the registry holds from another commit.
//! 2. One `cargo build` of the static binaries; each image's `docker build` as soon as cargo
//!    reports its binary written, while the rest still compiles ([`build`]).
//! 3. Push every immutable tag (in parallel), skipping those whose digest the registry already
//!    has ("up to date"), and verify each pushed digest against the registry ([`push`]).
//! 4. Only then the floating tags, set on the registry to the verified digests, never backwards.

pub mod assembled;
pub mod attest;
pub mod board;
pub mod build;
pub mod checks;
pub mod context;
pub mod dockerfile;
pub mod oci;
pub mod push;
pub mod smoke;

use anyhow::bail;
use xshell::Shell;

pub use board::table;
pub use build::{build_all, build_lines, Built, Finish};
pub use push::{floating_moves, move_floating, push_immutable};

use crate::{
    model::{
        config::{Config, Overrides},
        surfaces::Surfaces,
        tags::{self, Tags},
        version::ReleaseVersion,
    },
    ops::{
        exec::{Executor, Mode},
        git::Head,
        interrupt,
    },
    registry::{Credentials, Registry},
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
    pub options: PlanOptions,
    /// The releases yanked (`cargo xtask yank`), as origin records them: never pushed again,
    /// and skipped when the floating tags pick the newest release.
    pub yanks: crate::ops::yanks::Yanks,
    /// One client for every registry call of the command: its tokens, learnt once per
    /// repository, serve every step and thread.
    client: std::sync::OnceLock<Registry>,
}

/// What a plan is asked to do beyond the defaults.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Only these services (all when empty).
    pub only: Vec<String>,
    /// A build of `main` that is not a release: `sha-<commit>` and `edge`.
    pub edge: bool,
    /// Push from a tree with uncommitted changes (a release checks its tree itself; throwaway
    /// registries need no clean tree).
    pub allow_dirty: bool,
    /// Compile the binaries, even when these sources were built before (`verify --rebuild`).
    pub fresh: bool,
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
    /// Each platform's compressed size: what a user downloads.
    pub sizes: Vec<(&'static str, u64)>,
    pub digest: Option<String>,
    pub tags: Vec<String>,
    pub seconds: f64,
}

impl Outcome {
    /// What was assembled, not yet pushed.
    pub fn of(assembled: &assembled::Assembled) -> Outcome {
        let sizes = assembled.images.iter().map(|i| (i.platform.architecture, i.layer.blob.size() + i.config.size()));
        Outcome { sizes: sizes.collect(), digest: Some(assembled.index.digest.clone()), ..Outcome::default() }
    }
}

impl Plan {
    /// The plan of `cargo xtask images`: the version the surfaces agree on, where the flags say.
    pub fn new(sh: &Shell, overrides: &Overrides, options: &PlanOptions) -> anyhow::Result<Plan> {
        let config = crate::model::config::load(sh, overrides)?;
        let version = Surfaces::read(&sh.current_dir())?.current(&config.services)?;
        Plan::for_version(sh, config, version, options)
    }

    /// The plan for `version`, built from the commit at HEAD.
    pub fn for_version(
        sh: &Shell,
        config: Config,
        version: ReleaseVersion,
        options: &PlanOptions,
    ) -> anyhow::Result<Plan> {
        let head = Head::read(sh)?;
        for service in &options.only {
            if !config.services.contains(service) {
                bail!("--only {service}: not a service; the services are {}", config.services.join(", "));
            }
        }
        let images = (config.services.iter())
            .filter(|s| options.only.is_empty() || options.only.contains(s))
            .map(|service| Image {
                service: service.clone(),
                repo: format!("{}/gati-{service}", config.namespace),
                reference: format!("{}/{}/gati-{service}", config.registry, config.namespace),
            })
            .collect();
        let tags = tags::for_build(&version, options.edge.then_some(head.commit.as_str()));
        let source = repository_url(&sh.read_file(crate::model::config::CONFIG_FILE)?);
        let build_args = vec![
            ("VERSION".to_string(), version.to_string()),
            ("REVISION".to_string(), head.revision()),
            ("CREATED".to_string(), head.created.clone()),
            ("SOURCE".to_string(), source),
        ];
        let credentials = Credentials::from_env();
        let options = options.clone();
        let yanks = crate::ops::yanks::Yanks::read(sh);
        Ok(Plan {
            config,
            version,
            head,
            images,
            tags,
            build_args,
            credentials,
            options,
            yanks,
            client: Default::default(),
        })
    }

    /// Sends the plan's images to another registry, as another user (the benchmark's
    /// throwaway registries).
    pub fn use_registry(&mut self, address: &str, credentials: Credentials) {
        self.config.registry = address.to_string();
        self.credentials = Some(credentials);
        for image in &mut self.images {
            image.reference = format!("{address}/{}", image.repo);
        }
        self.client = Default::default();
    }

    /// This plan, with the registry client of `earlier` (a plan of the same configuration, read
    /// again after the release commit): the tokens preflight was given serve the push.
    pub fn with_client_of(mut self, earlier: &mut Plan) -> Plan {
        if (&earlier.config.registry, &earlier.credentials) == (&self.config.registry, &self.credentials) {
            self.client = std::mem::take(&mut earlier.client);
        }
        self
    }

    /// The registry's client, shared by every call of this plan.
    pub fn registry(&self) -> &Registry {
        self.client.get_or_init(|| Registry::new(&self.config.registry, self.credentials.clone()))
    }

    /// `read` for every image, side by side, all through the plan's one client; the results
    /// in the images' order.
    pub fn each_image<T: Send>(
        &self,
        read: impl Fn(usize, &Image, &Registry) -> anyhow::Result<T> + Sync,
    ) -> anyhow::Result<Vec<T>> {
        std::thread::scope(|scope| {
            let read = &read;
            let handles: Vec<_> = (self.images.iter().enumerate())
                .map(|(i, image)| scope.spawn(move || read(i, image, self.registry())))
                .collect();
            let join = |h: std::thread::ScopedJoinHandle<'_, _>| {
                h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a registry read panicked")))
            };
            handles.into_iter().map(join).collect()
        })
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

/// What `cargo xtask images` is asked.
pub struct Request {
    /// Push, not only build.
    pub push: bool,
    pub overrides: Overrides,
    pub options: PlanOptions,
    pub mode: Mode,
}

/// `cargo xtask images`: the refusals, the build, then with `push` the push.
pub fn run(sh: &Shell, request: &Request) -> anyhow::Result<()> {
    let plan = Plan::new(sh, &request.overrides, &request.options)?;
    crate::ops::provision::toolchain_on_ci(sh, &plan.config)?;
    let exec = Executor::new(request.mode);
    println!(
        "gati {} -> {}/{} ({} images)",
        plan.version,
        plan.config.registry,
        plan.config.namespace,
        plan.images.len()
    );
    if request.push && !request.options.edge {
        plan.yanks.refuse(&plan.version, "images --push")?;
    }
    let purpose = if request.push { checks::Purpose::BuildAndPush } else { checks::Purpose::Build };
    let problems = checks::problems(sh, &plan, purpose);
    if !problems.is_empty() {
        bail!("nothing was built or pushed:\n  - {}", problems.join("\n  - "));
    }
    interrupt::install();
    let mut outcomes = build::build(sh, &plan, &exec)?;
    if request.push {
        push::push(sh, &plan, &exec, &mut outcomes)?;
    }
    exec.finish(|| print!("{}", table(&plan, &outcomes)), "Run it again without --dry-run to build and push.");
    Ok(())
}
