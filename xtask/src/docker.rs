//! Docker Engine operations: staging a build context, building images in parallel.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use xshell::{cmd, Shell};

use crate::services::Service;

pub fn daemon_answers(sh: &Shell) -> bool {
    let format = "{{.ServerVersion}}";
    cmd!(sh, "docker info --format {format}")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_ok()
}

/// A minimal build context under `target/images/<service>`: the Dockerfile, its
/// `.dockerignore`, the binary and the empty directories the image owns, nothing else, so
/// nothing from the tree can leak in.
pub fn stage_context(sh: &Shell, service: &Service, bin_dir: &Path) -> anyhow::Result<PathBuf> {
    let context = sh
        .current_dir()
        .join("target")
        .join("images")
        .join(service.name);
    if context.exists() {
        sh.remove_path(&context)?;
    }
    sh.create_dir(&context)?;
    for file in ["Dockerfile", ".dockerignore"] {
        let from = Path::new(service.name).join(file);
        if !sh.path_exists(&from) {
            bail!(
                "{} is missing: every service folder needs a {file}",
                from.display()
            );
        }
        sh.copy_file(&from, context.join(file))?;
    }
    for dir in service.empty_dirs {
        sh.create_dir(context.join(dir))?;
    }
    let binary = bin_dir.join(service.binary());
    sh.copy_file(&binary, context.join(service.binary()))
        .with_context(|| format!("staging {}: build it first", binary.display()))?;
    Ok(context)
}

/// One image to build: its context, every tag it gets, and its `--build-arg`s.
pub struct Build {
    pub context: PathBuf,
    pub tags: Vec<String>,
    pub build_args: Vec<(String, String)>,
}

/// Builds every image at once with the classic builder (BuildKit is absent here and nothing
/// needs it: the images are `FROM scratch`). Waits for all and names every failure.
pub fn build_all(builds: &[Build]) -> anyhow::Result<()> {
    let started = builds
        .iter()
        .map(|b| {
            let mut args = vec!["build".to_string(), "--quiet".into()];
            for tag in &b.tags {
                args.extend(["--tag".into(), tag.clone()]);
            }
            for (key, value) in &b.build_args {
                args.extend(["--build-arg".into(), format!("{key}={value}")]);
            }
            args.push(b.context.display().to_string());
            duct::cmd("docker", args)
                .env("DOCKER_BUILDKIT", "0")
                .stdout_capture()
                .stderr_capture()
                .unchecked()
                .start()
        })
        .collect::<Result<Vec<_>, _>>()
        .context("starting docker build")?;
    let mut failures = Vec::new();
    for (build, handle) in builds.iter().zip(started) {
        let output = handle.wait()?;
        if !output.status.success() {
            failures.push(format!(
                "docker build of {} failed:\n{}",
                build.tags[0],
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
    }
    if !failures.is_empty() {
        bail!("{}", failures.join("\n\n"));
    }
    Ok(())
}
