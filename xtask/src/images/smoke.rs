//! The smoke test, before anything is public: every service on every platform answers its
//! health route with the version. The host platform's image runs in Docker (loaded from the
//! very blobs that will be pushed); every other platform's binary, taken out of the very layer
//! that will be pushed, runs under qemu-user.

use std::time::{Duration, Instant};

use anyhow::Context;
use xshell::{cmd, Shell};

use super::{assembled::PlatformImage, dockerfile::ImageSpec};
use crate::{model::version::ReleaseVersion, ops::interrupt};

/// The route each service reports its version on. (The dashboard's `/health` asks the backend,
/// which a dashboard running alone does not have; `/healthz` is its own.)
pub fn health_path(service: &str) -> &'static str {
    match service {
        "dashboard" => "/healthz",
        _ => "/health",
    }
}

/// Loads one platform's image into Docker under `tags` (`docker load` of a Docker archive of
/// its config and layer); returns the image id Docker gives it, which is the config's digest.
pub fn load(image: &PlatformImage, tags: &[String]) -> anyhow::Result<String> {
    let archive = super::oci::docker_archive(tags, &image.config, &image.layer)?;
    let output =
        duct::cmd!("docker", "load", "--quiet").stdin_bytes(archive).stdout_capture().stderr_capture().unchecked();
    let output = interrupt::output(output)?;
    anyhow::ensure!(
        output.status.success(),
        "docker load of {}: {}",
        tags.join(", "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(image.config.digest.clone())
}

/// Runs `reference` (loaded into Docker) and asks its health route for `version`.
pub fn in_docker(
    sh: &Shell,
    service: &str,
    reference: &str,
    spec: &ImageSpec,
    version: &ReleaseVersion,
) -> anyhow::Result<()> {
    let name = format!("gati-smoke-{service}-{}", std::process::id());
    let port = spec.exposed_ports.first().map_or("8000", |p| p.split('/').next().unwrap_or("8000")).to_string();
    let publish = format!("127.0.0.1::{port}");
    cmd!(sh, "docker run --detach --name {name} --publish {publish} {reference}").quiet().ignore_stdout().run()?;
    let result = (|| {
        let address = cmd!(sh, "docker port {name} {port}").quiet().read()?;
        let address = address.lines().next().context("the smoke container publishes no port")?.to_string();
        answers(sh, &format!("http://{address}{}", health_path(service)), reference, version, None)
    })();
    let logs = match result {
        Ok(()) => String::new(),
        Err(_) => cmd!(sh, "docker logs --tail 5 {name}").quiet().ignore_status().output().map_or_else(
            |_| String::new(),
            |o| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)),
        ),
    };
    let _ = cmd!(sh, "docker rm --force {name}").quiet().ignore_stdout().ignore_stderr().run();
    result.map_err(|e| anyhow::anyhow!("{e:#}; its last lines: {}", logs.trim()))
}

/// Runs the binary of `image` (taken out of its layer) under qemu-user, as its image would run it
/// (entrypoint arguments and environment), on a free loopback port, and asks its health route.
pub fn under_qemu(
    sh: &Shell,
    service: &str,
    image: &PlatformImage,
    spec: &ImageSpec,
    version: &ReleaseVersion,
) -> anyhow::Result<()> {
    let binary_name = format!("gati-{service}");
    let dir = crate::ops::shell::target_dir(sh).join("xtask").join(format!(
        "smoke-{service}-{}-{}",
        image.platform.architecture,
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("data"))?;
    let binary = dir.join(&binary_name);
    std::fs::write(&binary, super::assembled::binary_of(&image.layer, &binary_name)?)?;
    std::fs::set_permissions(&binary, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let port = crate::ops::sandbox::free_port()?;
    let mut command = std::process::Command::new(image.platform.qemu);
    command.arg(&binary).args(spec.entrypoint.iter().skip(1)).args(&spec.cmd);
    // The image's environment, but for its PATH: that is the image's, and here it would pick
    // which qemu runs.
    for pair in &spec.env {
        if let Some((key, value)) = pair.split_once('=').filter(|(key, _)| *key != "PATH") {
            command.env(key, value);
        }
    }
    let data = dir.join("data");
    command.env("GATI_HOST", "127.0.0.1").env("GATI_PORT", port.to_string()).env("GATI_DATA_DIR", &data);
    command.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped());
    let mut child =
        command.spawn().with_context(|| format!("starting {} {}", image.platform.qemu, binary.display()))?;
    let what = format!("{binary_name} for {} under {}", image.platform.name, image.platform.qemu);
    let result =
        answers(sh, &format!("http://127.0.0.1:{port}{}", health_path(service)), &what, version, Some(&mut child));
    let _ = child.kill();
    let stderr = child.wait_with_output().map(|o| String::from_utf8_lossy(&o.stderr).into_owned()).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    result.map_err(|e| anyhow::anyhow!("{e:#}; it printed: {}", stderr.trim().lines().last().unwrap_or("nothing")))
}

/// Asks `url` until it answers JSON (30 s at most): its `version` must be `version`.
fn answers(
    sh: &Shell,
    url: &str,
    what: &str,
    version: &ReleaseVersion,
    mut process: Option<&mut std::process::Child>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        interrupt::check()?;
        if let Some(child) = process.as_deref_mut() {
            if let Some(status) = child.try_wait()? {
                anyhow::bail!("{what} exited ({status}) before answering {url}");
            }
        }
        let answer = cmd!(sh, "curl --silent --max-time 2 {url}").quiet().ignore_status().read().unwrap_or_default();
        if let Ok(health) = serde_json::from_str::<serde_json::Value>(&answer) {
            let reported = health["version"].as_str().unwrap_or_default();
            anyhow::ensure!(reported == version.to_string(), "{what} answers {answer} on {url}, not version {version}");
            println!("smoke test: {what} answers {answer}");
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "{what} did not answer {url} within 30 s");
        interrupt::sleep(Duration::from_millis(50))?;
    }
}
