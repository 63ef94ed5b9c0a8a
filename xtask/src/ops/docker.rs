//! Docker Engine operations: building images in parallel, logging in, inspecting.

use std::path::PathBuf;

use anyhow::{bail, Context};
use xshell::{cmd, Shell};

use crate::ops::secrets::Credentials;

pub fn daemon_answers(sh: &Shell) -> bool {
    server_version(sh).is_some()
}

/// One image to build: its context, every tag it gets, and its `--build-arg`s.
#[derive(Clone)]
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

/// A registry login for one run, in a private Docker client configuration (`docker --config
/// DIR`): a `config.json` (mode 0600, in a 0700 directory) holding only this registry's
/// credentials, deleted when this guard drops — after success, failure or Ctrl-C. It is written
/// directly rather than by `docker login`, which would hand the password to a credential helper
/// (the OS keyring) that outlives the directory. The credentials were checked by the preflight.
/// Logins left behind by a run that was killed are deleted by the next one.
pub struct Login {
    pub dir: PathBuf,
}

impl Login {
    pub fn new(sh: &Shell, registry: &str, credentials: &Credentials) -> anyhow::Result<Login> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let parent = crate::ops::shell::target_dir(sh).join("xtask");
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
        // A signal removes it too, at once, whatever the command is waiting for.
        crate::ops::interrupt::remove_on_signal(&[&login.config(), &login.dir])?;
        // Docker Hub's credentials are filed under its v1 index address.
        let key = if registry == "docker.io" { "https://index.docker.io/v1/" } else { registry };
        let auth = base64(format!("{}:{}", credentials.user, credentials.password).as_bytes());
        let config = serde_json::json!({ "auths": { key: { "auth": auth } } });
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(login.config())?;
        std::io::Write::write_all(&mut file, config.to_string().as_bytes())?;
        Ok(login)
    }
}

/// Standard base64, padded: the `auth` of a Docker client configuration.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() { ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
        }
    }
    out
}

impl Login {
    fn config(&self) -> PathBuf {
        self.dir.join("config.json")
    }
}

impl Drop for Login {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        crate::ops::interrupt::forget_on_signal(&[&self.config(), &self.dir]);
    }
}

/// The daemon's version, if it answers.
pub fn server_version(sh: &Shell) -> Option<String> {
    let format = "{{.ServerVersion}}";
    cmd!(sh, "docker info --format {format}").quiet().ignore_stderr().read().ok().filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_as_docker_reads_it() {
        assert_eq!(super::base64(b"gatibot:s3cret"), "Z2F0aWJvdDpzM2NyZXQ=");
        assert_eq!(super::base64(b"ab"), "YWI=");
        assert_eq!(super::base64(b"abc"), "YWJj");
        assert_eq!(super::base64(b""), "");
    }
}
