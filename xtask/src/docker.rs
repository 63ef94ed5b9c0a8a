//! Docker Engine operations: building images in parallel, logging in, inspecting.

use std::path::PathBuf;

use anyhow::{bail, Context};
use xshell::{cmd, Shell};

use crate::registry::Credentials;

pub fn daemon_answers(sh: &Shell) -> bool {
    let format = "{{.ServerVersion}}";
    cmd!(sh, "docker info --format {format}").quiet().ignore_stdout().ignore_stderr().run().is_ok()
}

/// One image to build: its context, every tag it gets, and its `--build-arg`s.
pub struct Build {
    pub context: PathBuf,
    pub tags: Vec<String>,
    pub build_args: Vec<(String, String)>,
    /// Build every layer again (benchmarks compare cold builds).
    pub no_cache: bool,
}

/// Builds every image at once with the classic builder (BuildKit is absent here and nothing
/// needs it: the images are `FROM scratch`). Waits for all and names every failure.
pub fn build_all(builds: &[Build]) -> anyhow::Result<()> {
    let started = builds.iter().map(start_build).collect::<Result<Vec<_>, _>>().context("starting docker build")?;
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

/// Starts one `docker build` with the classic builder, its output captured.
pub fn start_build(build: &Build) -> std::io::Result<duct::Handle> {
    duct::cmd("docker", build_args(build))
        .env("DOCKER_BUILDKIT", "0")
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .start()
}

/// The `docker build` arguments of one image.
pub fn build_args(build: &Build) -> Vec<String> {
    let mut args = vec!["build".to_string(), "--quiet".into()];
    if build.no_cache {
        args.push("--no-cache".into());
    }
    for tag in &build.tags {
        args.extend(["--tag".into(), tag.clone()]);
    }
    for (key, value) in &build.build_args {
        args.extend(["--build-arg".into(), format!("{key}={value}")]);
    }
    args.push(build.context.display().to_string());
    args
}

/// A `docker login` for one run, in a private client configuration (`docker --config DIR`):
/// the password goes to `docker login --password-stdin`, never on a command line, and the
/// configuration that holds it is deleted when this guard drops — after success, failure or
/// Ctrl-C. Logins left behind by a run that was killed are deleted by the next one.
pub struct Login {
    pub dir: PathBuf,
}

impl Login {
    pub fn new(sh: &Shell, registry: &str, credentials: &Credentials) -> anyhow::Result<Login> {
        use std::os::unix::fs::DirBuilderExt;
        let parent = crate::target_dir(sh).join("xtask");
        std::fs::create_dir_all(&parent)?;
        for entry in std::fs::read_dir(&parent)?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid = name.strip_prefix("docker-login-");
            if pid.is_some_and(|pid| !std::path::Path::new("/proc").join(pid).exists()) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let dir = parent.join(format!("docker-login-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let login = Login { dir };
        let (user, config) = (&credentials.user, &login.dir);
        cmd!(sh, "docker --config {config} login --username {user} --password-stdin {registry}")
            .stdin(&credentials.password)
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run()
            .with_context(|| format!("{registry} refused the login of user {user:?}"))?;
        Ok(login)
    }
}

impl Drop for Login {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Size in bytes of a local image.
pub fn size(sh: &Shell, image: &str) -> anyhow::Result<u64> {
    let format = "{{.Size}}";
    Ok(cmd!(sh, "docker image inspect --format {format} {image}").quiet().read()?.trim().parse()?)
}

/// The digests under which a local image is known to have been pushed: `repo@sha256:…`.
pub fn repo_digests(sh: &Shell, image: &str) -> anyhow::Result<Vec<String>> {
    let format = "{{range .RepoDigests}}{{println .}}{{end}}";
    let out = cmd!(sh, "docker image inspect --format {format} {image}").quiet().read()?;
    Ok(out.lines().map(str::to_owned).filter(|l| !l.is_empty()).collect())
}

/// The id of a local image.
pub fn image_id(sh: &Shell, image: &str) -> anyhow::Result<String> {
    let format = "{{.Id}}";
    Ok(cmd!(sh, "docker image inspect --format {format} {image}").quiet().ignore_stderr().read()?)
}

/// The `org.opencontainers.image.revision` label of a local image: the commit it was built from.
pub fn revision(sh: &Shell, image: &str) -> anyhow::Result<String> {
    let format = "{{index .Config.Labels \"org.opencontainers.image.revision\"}}";
    Ok(cmd!(sh, "docker image inspect --format {format} {image}").quiet().ignore_stderr().read()?)
}
