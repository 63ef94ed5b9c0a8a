//! `cargo xtask doctor`: the old troubleshooting page as checks. Each says `ok` or gives a
//! one-line fix; the exit status is 0 only when a release would pass its preflight. Nothing is
//! changed: no login, no install.

use std::path::Path;

use xshell::{cmd, Shell};

use crate::{
    flags, images::context, model::config, model::surfaces::Surfaces, ops::docker, ops::provision, python,
    registry::Credentials, registry::Registry,
};

#[derive(Debug, PartialEq)]
enum Status {
    Ok,
    /// Not needed for a release; the detail says what it would add.
    Optional,
    Fail,
}

struct Check {
    name: &'static str,
    status: Status,
    /// What was found, or how to fix it.
    detail: String,
}

impl flags::Doctor {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let checks = checks(sh);
        if self.json {
            println!("{}", json(&checks));
        } else {
            for c in &checks {
                let status = match c.status {
                    Status::Ok => "ok",
                    Status::Optional => "--",
                    Status::Fail => "FAIL",
                };
                println!("{status:<5} {:<22} {}", c.name, c.detail);
            }
        }
        let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
        if failed > 0 {
            anyhow::bail!("{failed} check(s) failed: a release would stop in its preflight");
        }
        if !self.json {
            println!("\na release would pass its preflight checks");
        }
        Ok(())
    }
}

fn check(name: &'static str, result: Result<String, String>) -> Check {
    match result {
        Ok(detail) => Check { name, status: Status::Ok, detail },
        Err(fix) => Check { name, status: Status::Fail, detail: fix },
    }
}

fn version_of(sh: &Shell, program: &str, args: &[&str]) -> Option<String> {
    let out = cmd!(sh, "{program} {args...}").quiet().ignore_stderr().read().ok()?;
    Some(out.lines().next().unwrap_or("").trim().to_string())
}

fn checks(sh: &Shell) -> Vec<Check> {
    let root = sh.current_dir();
    let mut checks = Vec::new();
    checks.push(check(
        "docker client",
        version_of(sh, "docker", &["--version"])
            .ok_or_else(|| "install Docker (Debian: `apt-get install docker.io`)".into()),
    ));
    checks.push(check(
        "docker daemon",
        if docker::daemon_answers(sh) {
            Ok(version_of(sh, "docker", &["info", "--format", "Docker Engine {{.ServerVersion}}"]).unwrap_or_default())
        } else {
            Err("not answering: start it (`sudo systemctl start docker`, `dockerd`, or Docker Desktop)".into())
        },
    ));
    checks.push(match version_of(sh, "docker", &["buildx", "version"]) {
        Some(v) => Check { name: "docker buildx", status: Status::Ok, detail: v },
        None => Check {
            name: "docker buildx",
            status: Status::Optional,
            detail: "absent: not needed (the images are FROM scratch; the classic builder is used). It would add \
                     BuildKit caching and multi-platform images"
                .into(),
        },
    });
    let compose = version_of(sh, "docker", &["compose", "version"]).map(|v| format!("v2: {v}")).or_else(|| {
        version_of(sh, "docker-compose", &["version", "--short"]).map(|v| format!("v1: docker-compose {v}"))
    });
    checks.push(match compose {
        Some(v) => Check { name: "docker compose", status: Status::Ok, detail: v },
        None => Check {
            name: "docker compose",
            status: Status::Optional,
            detail: "absent: a release does not need it, `gati start` does (install the compose plugin)".into(),
        },
    });
    checks.push(check(
        "python",
        version_of(sh, "python3", &["--version"])
            .ok_or_else(|| "install Python 3.9+ (Debian: `apt-get install python3-venv`)".into()),
    ));
    let venv_python = root.join(provision::TOOLS_DIR).join("venv").join("bin").join("python");
    for module in ["build", "twine"] {
        let name = if module == "build" { "python -m build" } else { "twine" };
        checks.push(if venv_python.exists() {
            check(
                name,
                version_of(sh, venv_python.to_str().unwrap_or("python"), &["-m", module, "--version"]).ok_or_else(
                    || "missing from .tools/venv: delete .tools/venv, any release reinstalls it".to_string(),
                ),
            )
        } else {
            Check {
                name,
                status: Status::Optional,
                detail: "not installed yet: the first `cargo xtask release` or `test` installs the pinned tools".into(),
            }
        });
    }

    let config = config::load_default(sh);
    checks.push(check(
        "configuration",
        config
            .as_ref()
            .map(|c| format!("{}/{}, index {}", c.registry, c.namespace, c.index))
            .map_err(|e| format!("{e:#}")),
    ));
    let Ok(config) = config else { return checks };

    let credentials = Credentials::from_env();
    checks.push(check(
        "registry login",
        match &credentials {
            None => Err(format!("set DOCKER_USERNAME and DOCKER_PASSWORD (a token) for {}", config.registry)),
            Some(c) => {
                let registry = Registry::new(&config.registry, credentials.clone());
                let repo = format!("{}/gati-{}", config.namespace, config.services[0]);
                registry
                    .check_push(&repo)
                    .map(|()| format!("{} lets user {:?} push to {}", config.registry, c.user, config.namespace))
                    .map_err(|e| format!("{e:#}"))
            }
        },
    ));
    checks.push(check(
        "index credentials",
        python::credentials_source(&config.index).map(|source| format!("{source}, for {}", config.index)).ok_or_else(
            || {
                "set TWINE_USERNAME=__token__ and TWINE_PASSWORD (an API token), give the index a ~/.pypirc section, or \
                            publish from GitHub Actions with `id-token: write` (trusted publishing)"
                    .into()
            },
        ),
    ));
    checks.push(check(
        "version surfaces",
        Surfaces::read(&root)
            .and_then(|s| s.current(&config.services))
            .map(|v| format!("all say {v} (Python {})", v.pep440()))
            .map_err(|e| format!("{e:#}")),
    ));
    for service in &config.services {
        let missing: Vec<&str> = ["Dockerfile", ".dockerignore"]
            .into_iter()
            .filter(|f| !Path::new(&root).join(service).join(f).exists())
            .collect();
        let secrets = context::find_secrets(&root, &root.join(service));
        checks.push(check(
            "build context",
            if !missing.is_empty() {
                Err(format!("{service}/ lacks {}", missing.join(" and ")))
            } else if !secrets.is_empty() {
                Err(format!(
                    "{} looks like a secret inside a build context: move it out of {service}/",
                    secrets.join(", ")
                ))
            } else {
                Ok(format!("{service}/: Dockerfile, .dockerignore, no likely secret"))
            },
        ));
    }
    checks
}

fn json(checks: &[Check]) -> String {
    let items: Vec<serde_json::Value> = checks
        .iter()
        .map(|c| {
            let status = match c.status {
                Status::Ok => "ok",
                Status::Optional => "optional",
                Status::Fail => "fail",
            };
            serde_json::json!({"check": c.name, "status": status, "detail": c.detail})
        })
        .collect();
    serde_json::Value::Array(items).to_string()
}
