//! `cargo xtask test`: the README's test command, and what CI runs.
//!
//! 1. Provision what is missing: Debian packages, the release's toolchain for every platform
//!    (cross linkers, qemu-user), the pinned Python tools, the dashboard's npm packages, a
//!    Docker daemon.
//! 2. Lint: the workflows (actionlint, zizmor) and the Dockerfiles (hadolint).
//! 3. Rust tests: the services' with the release's toolchain, profile, flags and host target, so
//!    the dependencies are compiled once for the tests and the images; xtask's in its dev profile.
//! 4. The binaries of every service for every platform, and from them the images, assembled as
//!    a release assembles them and loaded into Docker as `gati-test/gati-<service>:X`; beside
//!    them the same images built by `docker build` from each Dockerfile
//!    (`gati-test/dockerfile-gati-<service>:X`), which a test holds to the assembled ones.
//! 5. pytest (`tests/`, `sdk/tests/`): the services over real HTTP, MCP and Chromium; the
//!    Python package, its client and `gati start` end to end; images and releases into
//!    registries and indexes that behave like Docker Hub and PyPI.

use std::path::{Path, PathBuf};

use anyhow::Context;
use xshell::{cmd, Shell};

use crate::{
    flags,
    images::{self, context, Finish, Plan, PlanOptions},
    model::{platform::Platform, surfaces::Surfaces},
    ops::{
        cargo::{self, Binary},
        docker, provision,
    },
};

/// The image prefix the tests build under; never pushed anywhere.
pub const TEST_IMAGE_PREFIX: &str = "gati-test";
const DEBIAN_PACKAGES: &[&str] =
    &["docker.io", "docker-compose", "docker-registry", "apache2-utils", "chromium", "curl"];

impl flags::Test {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        provision::debian_packages(sh, DEBIAN_PACKAGES)?;
        let config = crate::model::config::load_default(sh)?;
        let toolchain = provision::release_toolchain(sh, &config)?;
        let python = provision::python_tools(sh)?;
        provision::otel_libraries(sh)?;
        crate::ops::ui::npm(sh)?;
        let _dockerd = if self.no_images { None } else { Some(provision::Dockerd::ensure(sh)?) };

        crate::lint::lint(sh, &python)?;
        let build = cargo::Build {
            services: &config.services,
            platforms: &config.platforms,
            toolchain: &toolchain,
            fresh: false,
            auditable: None,
        };
        let (plus, host) =
            (format!("+{}", toolchain.name), Platform::host().context("the tests run on linux/amd64 or linux/arm64")?);
        let target = host.rust_target;
        cmd!(sh, "cargo {plus} test --workspace --exclude xtask --release --target {target}")
            .envs(build.env())
            .run()
            .context("Rust tests failed")?;
        // xtask's own tests in the profile `cargo xtask` was just built in: its dependencies are
        // compiled already, none of them in release.
        cmd!(sh, "cargo test --package xtask").run().context("xtask's tests failed")?;

        let version = Surfaces::read(&sh.current_dir())?.current(&config.services)?.to_string();
        let binaries = if self.no_images { build.run(sh, |_| {})? } else { test_images(sh, &config, &version)? };
        let bin_dir = test_binaries(sh, &binaries, host)?;

        let filter: Vec<String> = self.filter.map(|k| vec!["-k".into(), k]).unwrap_or_default();
        let skip_images: &[&str] = if self.no_images { &["-m", "not docker"] } else { &[] };
        let _env = [
            sh.push_env("GATI_BIN_DIR", &bin_dir),
            sh.push_env("GATI_VERSION", &version),
            sh.push_env("GATI_TEST_IMAGE_PREFIX", TEST_IMAGE_PREFIX),
            sh.push_env("GATI_TOOLCHAIN", &toolchain.name),
        ];
        cmd!(sh, "{python} -m pytest tests sdk/tests -ra --durations=40 {skip_images...} {filter...}")
            .run()
            .context("pytest tests failed")?;
        Ok(())
    }
}

/// The images under test: assembled and loaded as a release does them (no smoke test: the
/// tests are that), named `gati-test/gati-<service>:X`; and each built from its Dockerfile by
/// `docker build`, from the same binary and build arguments. Returns every binary.
fn test_images(sh: &Shell, config: &crate::model::config::Config, version: &str) -> anyhow::Result<Vec<Binary>> {
    let plan = Plan::for_version(
        sh,
        config.clone(),
        crate::model::version::ReleaseVersion::parse(version)?,
        &PlanOptions { allow_dirty: true, ..PlanOptions::default() },
    )?;
    let built =
        images::build_all(sh, &plan, Finish { load: true, smoke: false }).context("building the test images")?;
    let host = Platform::host().context("a host platform")?;
    let mut builds = Vec::new();
    for image in &plan.images {
        let loaded = format!("{}:{version}", image.reference);
        let name = format!("{TEST_IMAGE_PREFIX}/gati-{}:{version}", image.service);
        cmd!(sh, "docker tag {loaded} {name}").quiet().run()?;
        let binary = built
            .binaries
            .iter()
            .find(|b| b.service == image.service && b.platform == host)
            .context("a host binary")?;
        let mut build_args = plan.build_args.clone();
        build_args.push(("RUSTC".into(), built.toolchain.label()));
        builds.push(docker::Build {
            context: context::stage(sh, &image.service, binary.path.parent().context("the binary's folder")?)?,
            tags: vec![format!("{TEST_IMAGE_PREFIX}/dockerfile-gati-{}:{version}", image.service)],
            build_args,
            no_cache: false,
        });
    }
    docker::build_all(&builds).context("building the test images from their Dockerfiles")?;
    Ok(built.binaries)
}

/// The host's binaries under test, copied out of cargo's target directory: the tests' copies of
/// the repository build (other versions) in that same directory, sharing its compiled
/// dependencies, and must not replace what the other tests run.
fn test_binaries(sh: &Shell, binaries: &[Binary], host: &Platform) -> anyhow::Result<PathBuf> {
    let dir = crate::ops::shell::target_dir(sh).join("test-bin");
    sh.create_dir(&dir)?;
    for binary in binaries.iter().filter(|b| b.platform == host) {
        let name: &Path = binary.path.file_name().context("a binary without a name")?.as_ref();
        // The bytes cargo wrote, whatever another build has linked at that path since.
        let to = dir.join(name);
        std::fs::write(&to, &binary.bytes).with_context(|| format!("writing {}", to.display()))?;
        std::fs::set_permissions(&to, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    }
    Ok(dir)
}
