//! `cargo xtask doctor`: is this machine and configuration ready to release? Prints what the
//! machine has (Docker, compose, Python), then every check of the release's preflight
//! (`release::checks::CHECKS`, the same functions a release runs), asked about the next patch
//! release. Exits 0 only when that release would pass its preflight. Changes nothing: no
//! login, no install.

use xshell::{cmd, Shell};

use crate::{
    flags,
    model::{config, surfaces::Surfaces},
    release::{self, checks},
};

#[derive(Debug, PartialEq)]
enum Status {
    Ok,
    /// Not needed for a release; the detail says what it would add.
    Optional,
    Fail,
}

struct Line {
    name: &'static str,
    status: Status,
    /// What was found, or how to fix it.
    detail: String,
}

impl flags::Doctor {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let mut lines = machine(sh);
        lines.extend(release_checks(sh));
        if self.json {
            println!("{}", json(&lines));
        } else {
            for line in &lines {
                let status = match line.status {
                    Status::Ok => "ok",
                    Status::Optional => "--",
                    Status::Fail => "FAIL",
                };
                println!("{status:<5} {:<22} {}", line.name, line.detail);
            }
        }
        let failed = lines.iter().filter(|l| l.status == Status::Fail).count();
        if failed > 0 {
            anyhow::bail!("{failed} check(s) failed: a release would stop in its preflight");
        }
        if !self.json {
            println!("\na release would pass its preflight checks");
        }
        Ok(())
    }
}

/// One line per problem of an outcome, or its finding.
fn lines_of(name: &'static str, outcome: checks::Outcome) -> Vec<Line> {
    match outcome {
        Ok(detail) => vec![Line { name, status: Status::Ok, detail }],
        Err(problems) => problems.into_iter().map(|detail| Line { name, status: Status::Fail, detail }).collect(),
    }
}

fn version_of(sh: &Shell, program: &str, args: &[&str]) -> Option<String> {
    let out = cmd!(sh, "{program} {args...}").quiet().ignore_stderr().read().ok()?;
    Some(out.lines().next().unwrap_or("").trim().to_string())
}

/// What only the machine says: the Docker client, compose (for `gati start`), Python.
fn machine(sh: &Shell) -> Vec<Line> {
    let found = |name, version: Option<String>, fix: &str| match version {
        Some(detail) => Line { name, status: Status::Ok, detail },
        None => Line { name, status: Status::Fail, detail: fix.to_string() },
    };
    let compose = version_of(sh, "docker", &["compose", "version"]).map(|v| format!("v2: {v}")).or_else(|| {
        version_of(sh, "docker-compose", &["version", "--short"]).map(|v| format!("v1: docker-compose {v}"))
    });
    vec![
        found(
            "docker client",
            version_of(sh, "docker", &["--version"]),
            "install Docker (Debian: `apt-get install docker.io`)",
        ),
        match compose {
            Some(detail) => Line { name: "docker compose", status: Status::Ok, detail },
            None => Line {
                name: "docker compose",
                status: Status::Optional,
                detail: "absent: a release does not need it, `gati start` does (install the compose plugin)".into(),
            },
        },
        found(
            "python",
            version_of(sh, "python3", &["--version"]),
            "install Python 3.9+ (Debian: `apt-get install python3-venv`)",
        ),
    ]
}

/// The configuration, the surfaces, then every preflight check for the next patch release.
fn release_checks(sh: &Shell) -> Vec<Line> {
    let config = match config::load_default(sh) {
        Ok(config) => config,
        Err(e) => return lines_of("configuration", Err(vec![format!("{e:#}")])),
    };
    let mut lines =
        lines_of("configuration", Ok(format!("{}/{}, index {}", config.registry, config.namespace, config.index)));
    let current = match Surfaces::read(&sh.current_dir()).and_then(|s| s.current(&config.services)) {
        Ok(current) => current,
        Err(e) => {
            lines.extend(lines_of("version surfaces", Err(vec![format!("{e:#}")])));
            return lines;
        }
    };
    lines.extend(lines_of("version surfaces", Ok(format!("all say {current} (Python {})", current.pep440()))));
    let release = current.bump("patch").and_then(|next| release::Release::for_checks(sh, config, next));
    match release {
        Ok(release) => {
            for (name, outcome) in checks::run_all(&release, &current) {
                lines.extend(lines_of(name, outcome));
            }
        }
        Err(e) => lines.extend(lines_of("release", Err(vec![format!("{e:#}")]))),
    }
    lines
}

fn json(lines: &[Line]) -> String {
    let items: Vec<serde_json::Value> = lines
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

#[cfg(test)]
mod tests {
    /// doctor prints every preflight check: it runs the very list the release runs, so a check
    /// added to the preflight is in doctor too. Its machine-only lines are named apart.
    #[test]
    fn doctor_covers_every_preflight_check() {
        let sh = crate::ops::shell::shell_in(&crate::project_root()).unwrap();
        let lines = super::release_checks(&sh);
        let names: Vec<&str> = lines.iter().map(|l| l.name).collect();
        for check in crate::release::checks::CHECKS.iter() {
            assert!(
                names.contains(&check.name),
                "doctor does not print the preflight check {:?}: {names:?}",
                check.name
            );
        }
        let machine: Vec<&str> = super::machine(&sh).iter().map(|l| l.name).collect();
        assert!(machine.iter().all(|m| !crate::release::checks::CHECKS.iter().any(|c| c.name == *m)), "{machine:?}");
    }
}
