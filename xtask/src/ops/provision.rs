//! What the tests need on a fresh Debian machine: packages, the pinned Python tools, a Docker
//! daemon. Installs only what is missing; where it cannot (not root, not Debian), it stops and
//! prints exactly what to install.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use xshell::{cmd, Shell};

use crate::{
    model::{config::Config, platform::Platform},
    ops::{
        docker::daemon_answers,
        toolchain::{self, Toolchain},
    },
};

/// The repository's ignored tool directory.
pub const TOOLS_DIR: &str = ".tools";
const PYTHON_TOOLS: &str = "xtask/python-tools.txt";

/// Installs the Debian packages that are not installed yet.
pub fn debian_packages(sh: &Shell, packages: &[&str]) -> anyhow::Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            let format = "-f=${Status}";
            let status = cmd!(sh, "dpkg-query -W {format} {p}").quiet().ignore_stderr().read();
            !status.is_ok_and(|s| s.ends_with("install ok installed"))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing.join(" ");
    let is_debian = Path::new("/etc/debian_version").exists();
    let is_root = cmd!(sh, "id -u").quiet().read().is_ok_and(|uid| uid == "0");
    // Not root: passwordless sudo (as on CI runners) will do; a password prompt will not.
    let (apt, sudo_args): (&str, &[&str]) = if is_root {
        ("apt-get", &[])
    } else {
        ("sudo", &["--non-interactive", "--preserve-env=DEBIAN_FRONTEND", "apt-get"])
    };
    let can_sudo = is_root || cmd!(sh, "sudo --non-interactive true").quiet().ignore_stderr().run().is_ok();
    if !is_debian || !can_sudo {
        bail!(
            "the tests need these packages, which are not installed: {list}\n\
             install them as root, e.g. `apt-get install {list}` (Debian's names), then run again"
        );
    }
    eprintln!("installing Debian packages: {list}");
    cmd!(sh, "{apt} {sudo_args...} update -qq").run().context("apt-get update")?;
    cmd!(sh, "{apt} {sudo_args...} install -y -qq {missing...}")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run()
        .with_context(|| format!("installing {list}"))?;
    Ok(())
}

/// The `python` of the tools' virtual environment, whether it is installed yet or not.
pub fn tools_python(sh: &Shell) -> PathBuf {
    sh.current_dir().join(TOOLS_DIR).join("venv").join("bin").join("python")
}

/// The virtual environment with the pinned Python tools; returns its `python`.
/// Reinstalls only when the pinned list changed.
pub fn python_tools(sh: &Shell) -> anyhow::Result<PathBuf> {
    let python = tools_python(sh);
    let venv = python.parent().and_then(Path::parent).context("the tools' python has no venv")?.to_owned();
    virtual_env(sh, &venv, PYTHON_TOOLS)?;
    Ok(python)
}

/// The OpenTelemetry libraries the OTLP tests instrument an agent with, pinned in
/// `tests/stack/otel/requirements.txt`, in a venv of their own (`.tools/otel-venv`): their
/// dependencies (openai, protobuf, opentelemetry-*) must not move the tools' pins.
pub fn otel_libraries(sh: &Shell) -> anyhow::Result<()> {
    let venv = sh.current_dir().join(TOOLS_DIR).join("otel-venv");
    virtual_env(sh, &venv, "tests/stack/otel/requirements.txt")
}

/// A virtual environment at `venv` holding exactly `requirements` (a path from the root);
/// reinstalls only when that list changed.
fn virtual_env(sh: &Shell, venv: &Path, requirements: &str) -> anyhow::Result<()> {
    let python = venv.join("bin").join("python");
    let wanted = sh.read_file(requirements)?;
    let stamp = venv.join("installed-requirements.txt");
    if python.exists() && sh.read_file(&stamp).is_ok_and(|have| have == wanted) {
        return Ok(());
    }
    // A link to another tree's environment (a rehearsal's or a test's copy) is that tree's to
    // keep: recreating it from here would pull it from under whoever else uses it.
    if venv.is_symlink() {
        anyhow::ensure!(python.exists(), "{} links to an environment without python", venv.display());
        return Ok(());
    }
    eprintln!("installing the pinned Python packages of {requirements} into {}", venv.display());
    let system_python = ["python3", "python"]
        .into_iter()
        .find(|p| cmd!(sh, "{p} --version").quiet().ignore_stdout().ignore_stderr().run().is_ok())
        .context("no python3 found: install Python 3.9 or newer (Debian: `apt-get install python3 python3-venv`)")?;
    cmd!(sh, "{system_python} -m venv --clear {venv}").run().context("creating a virtual environment")?;
    cmd!(sh, "{python} -m pip install --quiet --disable-pip-version-check -r {requirements}")
        .run()
        .with_context(|| format!("installing {requirements}"))?;
    sh.write_file(stamp, wanted)?;
    Ok(())
}

/// A Docker daemon for the duration of a task: the running one, or one started here and
/// stopped when this value is dropped.
pub struct Dockerd {
    started: Option<Child>,
}

impl Dockerd {
    pub fn ensure(sh: &Shell) -> anyhow::Result<Dockerd> {
        if daemon_answers(sh) {
            return Ok(Dockerd { started: None });
        }
        let log_path = sh.current_dir().join(TOOLS_DIR).join("dockerd.log");
        sh.create_dir(log_path.parent().unwrap())?;
        let log = std::fs::File::create(&log_path)?;
        eprintln!("starting dockerd (log: {})", log_path.display());
        let child = Command::new("dockerd")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting dockerd: install Docker Engine (Debian: `apt-get install docker.io`)")?;
        let dockerd = Dockerd { started: Some(child) };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !daemon_answers(sh) {
            if Instant::now() > deadline {
                bail!("dockerd did not answer within 60 s; see {}", log_path.display());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Ok(dockerd)
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if let Some(child) = &mut self.started {
            // SIGTERM lets dockerd stop its containers and release its state cleanly.
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }
}

/// The release's toolchain, able to build and smoke-test every platform: the machine's; or
/// rustup's, installed with every platform's target (as on GitHub's runners), the cross
/// linkers and qemu-user from the distribution; or, where rustup cannot download (a machine
/// that reaches only package registries), Debian bookworm's Rust of that release with every
/// platform's standard library, linked as the rustup toolchain `debian-<release>`. Packages are
/// installed as root or with passwordless sudo.
pub fn release_toolchain(sh: &Shell, config: &Config) -> anyhow::Result<Toolchain> {
    let platforms = &config.platforms;
    if let Ok(found) = toolchain::find(sh, &config.rust, &config.platforms) {
        if toolchain::problems(sh, &found, platforms).is_empty() {
            return Ok(found);
        }
    }
    let targets: Vec<&str> = platforms.iter().map(|p| p.rust_target).collect();
    let rust = &config.rust;
    let rustup = cmd!(sh, "rustup toolchain install {rust} --profile minimal --target {targets...}")
        .quiet()
        .ignore_stderr()
        .run();
    if rustup.is_ok() {
        debian_packages(sh, &cross_packages(platforms, false).iter().map(String::as_str).collect::<Vec<_>>())?;
        if let Ok(found) = toolchain::find(sh, rust, platforms) {
            let problems = toolchain::problems(sh, &found, platforms);
            anyhow::ensure!(problems.is_empty(), "the toolchain still lacks:\n  - {}", problems.join("\n  - "));
            return Ok(found);
        }
    }
    eprintln!("rustup could not install Rust {rust}: taking Debian's");
    debian_toolchain(sh, config)
}

/// On a CI runner (`CI` set), the release's toolchain is installed like the Python tools: a
/// fresh runner has none of it. Elsewhere the preflight says what to install.
pub fn toolchain_on_ci(sh: &Shell, config: &Config) -> anyhow::Result<()> {
    if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false") {
        release_toolchain(sh, config)?;
    }
    Ok(())
}

/// The cross linkers and qemu-user for every platform but the host's (and with `rust`,
/// Debian's Rust with their standard libraries).
fn cross_packages(platforms: &[&'static Platform], rust: bool) -> Vec<String> {
    let mut packages = vec!["qemu-user-static".to_string()];
    if rust {
        packages.extend(["rustc-web".to_string(), "cargo-web".into(), "libstd-rust-web-dev".into()]);
    }
    for platform in platforms.iter().filter(|p| Platform::host() != Some(**p)) {
        packages.extend([platform.cross_gcc_package(), format!("libc6-dev-{}-cross", platform.architecture)]);
        if rust {
            packages.push(format!("libstd-rust-web-dev:{}", platform.architecture));
        }
    }
    packages
}

/// Debian bookworm's Rust of the release, with every platform's standard library.
fn debian_toolchain(sh: &Shell, config: &Config) -> anyhow::Result<Toolchain> {
    let platforms = &config.platforms;
    let foreign: Vec<&str> =
        (platforms.iter()).filter(|p| Platform::host() != Some(**p)).map(|p| p.architecture).collect();
    let have = cmd!(sh, "dpkg --print-foreign-architectures").quiet().ignore_stderr().read().unwrap_or_default();
    for arch in foreign.iter().filter(|a| !have.lines().any(|l| l == **a)) {
        eprintln!("adding the Debian architecture {arch}, for its Rust standard library");
        as_root(sh, "dpkg", &["--add-architecture", arch])?;
    }
    let packages = cross_packages(platforms, true);
    debian_packages(sh, &packages.iter().map(String::as_str).collect::<Vec<_>>())?;
    let debian = cmd!(sh, "/usr/bin/rustc -vV").quiet().read().context("Debian's rustc")?;
    if toolchain::release_of(&debian) != Some(config.rust.as_str()) {
        bail!(
            "Debian's rustc-web is Rust {}, not {}: install Rust {} another way (see `cargo xtask doctor`)",
            toolchain::release_of(&debian).unwrap_or("?"),
            config.rust,
            config.rust
        );
    }
    let name = format!("debian-{}", config.rust);
    cmd!(sh, "rustup toolchain link {name} /usr").run().context("linking Debian's Rust as a rustup toolchain")?;
    let found = toolchain::find(sh, &config.rust, &config.platforms)?;
    let problems = toolchain::problems(sh, &found, platforms);
    anyhow::ensure!(problems.is_empty(), "the toolchain still lacks:\n  - {}", problems.join("\n  - "));
    Ok(found)
}

/// `program args` as root: directly, or through passwordless sudo.
fn as_root(sh: &Shell, program: &str, args: &[&str]) -> anyhow::Result<()> {
    let is_root = cmd!(sh, "id -u").quiet().read().is_ok_and(|uid| uid == "0");
    let result = match is_root {
        true => cmd!(sh, "{program} {args...}").run(),
        false => cmd!(sh, "sudo --non-interactive {program} {args...}").run(),
    };
    result.with_context(|| format!("`{program} {}` (as root)", args.join(" ")))
}
