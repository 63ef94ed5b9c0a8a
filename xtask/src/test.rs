//! `cargo xtask test`: the README's test command, and what CI runs.
//!
//! 1. Provision what is missing: Debian packages, the pinned Python tools, a Docker daemon.
//! 2. Lint: the workflows (actionlint, zizmor) and the Dockerfiles (hadolint).
//! 3. Rust tests, in the same release profile and static target as the images, so the
//!    dependencies are compiled once for both.
//! 4. The static service binaries and, from them, the three images.
//! 5. pytest (`tests/`, `sdk/tests/`): the services over real HTTP, MCP, Chromium and Docker;
//!    the Python package, its client and `gati start` end to end.

use anyhow::Context;
use xshell::{cmd, Shell};

use crate::{
    flags,
    images::context,
    model::surfaces::Surfaces,
    ops::cargo::{self, STATIC_RUSTFLAGS, TARGET},
    ops::docker,
    ops::provision,
};

/// The image prefix the tests build under; never pushed anywhere.
pub const TEST_IMAGE_PREFIX: &str = "gati-test";
const DEBIAN_PACKAGES: &[&str] =
    &["docker.io", "docker-compose", "docker-registry", "apache2-utils", "chromium", "curl"];

impl flags::Test {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        provision::debian_packages(sh, DEBIAN_PACKAGES)?;
        let python = provision::python_tools(sh)?;
        let _dockerd = if self.no_images { None } else { Some(provision::Dockerd::ensure(sh)?) };

        crate::lint::lint(sh, &python)?;
        crate::ops::ui::provision(sh)?;
        cmd!(sh, "cargo test --workspace --release --target {TARGET}")
            .env(STATIC_RUSTFLAGS.0, STATIC_RUSTFLAGS.1)
            .run()
            .context("Rust tests failed")?;

        let config = crate::model::config::load_default(sh)?;
        let bin_dir = test_binaries(sh, &cargo::build_binaries(sh, &config.services)?, &config.services)?;
        let version = Surfaces::read(&sh.current_dir())?.current(&config.services)?.to_string();
        let version = version.as_str();
        if !self.no_images {
            let builds = config
                .services
                .iter()
                .map(|service| {
                    Ok(docker::Build {
                        context: context::stage(sh, service, &bin_dir)?,
                        tags: vec![format!("{TEST_IMAGE_PREFIX}/gati-{service}:{version}")],
                        build_args: vec![("VERSION".into(), version.into())],
                        no_cache: false,
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            docker::build_all(&builds).context("building the test images")?;
        }

        let filter: Vec<String> = self.filter.map(|k| vec!["-k".into(), k]).unwrap_or_default();
        let skip_images: &[&str] = if self.no_images { &["-m", "not docker"] } else { &[] };
        let _env = [
            sh.push_env("GATI_BIN_DIR", &bin_dir),
            sh.push_env("GATI_VERSION", version),
            sh.push_env("GATI_TEST_IMAGE_PREFIX", TEST_IMAGE_PREFIX),
        ];
        cmd!(sh, "{python} -m pytest tests sdk/tests -ra {skip_images...} {filter...}")
            .run()
            .context("pytest tests failed")?;
        Ok(())
    }
}

/// The binaries under test, copied out of cargo's target directory: the tests' copies of the
/// repository build (other versions) in that same directory, sharing its compiled dependencies,
/// and must not replace what the other tests run.
fn test_binaries(sh: &Shell, built: &std::path::Path, services: &[String]) -> anyhow::Result<std::path::PathBuf> {
    let dir = crate::target_dir(sh).join("test-bin");
    sh.create_dir(&dir)?;
    for service in services {
        let binary = format!("gati-{service}");
        sh.copy_file(built.join(&binary), dir.join(&binary))?;
    }
    Ok(dir)
}
