//! Throwaway services on loopback for benchmarks and rehearsals, behaving like the real targets:
//! a registry like Docker Hub (token auth with a realm, blob downloads redirected to another
//! host, tag lists in pages) and an index like PyPI (a file name is refused twice).
//!
//! They are the tests' own: `tests/sandbox.py serve`, run with the tools' Python, which writes
//! their addresses and random passwords to `sandbox.json` (mode 0600) in its directory. The
//! passwords are never printed or passed as arguments. Each service stops (SIGTERM, then wait)
//! when its value is dropped.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use serde_json::Value;
use xshell::Shell;

use crate::ops::{provision, secrets::Credentials};

/// The namespace the sandbox registry's login may push to: an organisation's, not the login's.
pub const NAMESPACE: &str = "gatidev";
/// Tags per page of the sandbox registry's tag lists: small, so that every listing pages.
pub const PAGE_SIZE: u64 = 2;
const SANDBOX_PY: &str = "tests/sandbox.py";

/// docker-registry behind token auth, redirects and paging, as Docker Hub.
pub struct LocalRegistry {
    /// `127.0.0.1:PORT`, what clients use.
    pub address: String,
    /// Where images go: `<address>/<namespace>/gati-<service>`.
    pub namespace: String,
    /// The login: a bot account, not the namespace.
    pub credentials: Credentials,
    /// The token realm (`http://127.0.0.1:PORT/token`).
    pub realm: Option<String>,
    /// Where blob downloads are redirected (`http://127.0.0.1:PORT`).
    pub redirect: Option<String>,
    pub page_size: Option<u64>,
    _sandbox: Sandbox,
}

impl LocalRegistry {
    pub fn start(sh: &Shell, dir: &Path) -> anyhow::Result<LocalRegistry> {
        let python = provision::python_tools(sh)?;
        let page_size = PAGE_SIZE.to_string();
        let args = ["--registry", "token", "--page-size", &page_size, "--namespace", NAMESPACE];
        let (sandbox, summary) = Sandbox::serve(sh, &python, dir, &args)?;
        let registry = &summary["registry"];
        Ok(LocalRegistry {
            address: field(registry, "address")?,
            namespace: field(registry, "namespace")?,
            credentials: Credentials { user: field(registry, "user")?, password: field(registry, "password")? },
            realm: registry["realm"].as_str().map(String::from),
            redirect: registry["redirect"].as_str().map(String::from),
            page_size: registry["page_size"].as_u64(),
            _sandbox: sandbox,
        })
    }

    /// What this registry is, in one line, without a password.
    pub fn describe(&self) -> String {
        let mut parts = vec![match &self.realm {
            Some(realm) => format!("token auth (realm {realm})"),
            None => "Basic auth".to_string(),
        }];
        parts.push(match &self.redirect {
            Some(to) => format!("blobs redirected to {to}"),
            None => "blobs served directly".to_string(),
        });
        parts.push(match self.page_size {
            Some(n) => format!("tag lists paged by {n}"),
            None => "tag lists unpaged".to_string(),
        });
        parts.join(", ")
    }
}

/// pypiserver with an upload password; refuses a file name it already has, as PyPI does.
pub struct LocalIndex {
    pub upload_url: String,
    pub simple_url: String,
    pub credentials: Credentials,
    _sandbox: Sandbox,
}

impl LocalIndex {
    pub fn start(sh: &Shell, python: &Path, dir: &Path) -> anyhow::Result<LocalIndex> {
        let (sandbox, summary) = Sandbox::serve(sh, python, dir, &["--registry", "none", "--index"])?;
        let index = &summary["index"];
        Ok(LocalIndex {
            upload_url: field(index, "upload_url")?,
            simple_url: field(index, "simple_url")?,
            credentials: Credentials { user: field(index, "user")?, password: field(index, "password")? },
            _sandbox: sandbox,
        })
    }
}

/// A running `tests/sandbox.py serve`; SIGTERM (it stops its services) and wait when dropped.
struct Sandbox {
    child: Child,
}

impl Sandbox {
    /// Starts `sandbox.py serve` in a fresh `dir` and returns it with its `sandbox.json`.
    fn serve(sh: &Shell, python: &Path, dir: &Path, args: &[&str]) -> anyhow::Result<(Sandbox, Value)> {
        if dir.exists() {
            sh.remove_path(dir)?;
        }
        sh.create_dir(dir)?;
        let log_path = dir.join("sandbox.log");
        let log = std::fs::File::create(&log_path)?;
        let child = Command::new(python)
            .arg(sh.current_dir().join(SANDBOX_PY))
            .arg("serve")
            .arg("--dir")
            .arg(dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {SANDBOX_PY} with {}", python.display()))?;
        let mut sandbox = Sandbox { child };
        // sandbox.json appears, complete, once every service answers.
        let summary_path = dir.join("sandbox.json");
        let deadline = Instant::now() + Duration::from_secs(90);
        while !summary_path.exists() {
            if let Some(status) = sandbox.child.try_wait()? {
                bail!("{SANDBOX_PY} serve exited ({status}) before its services were up; see {}", log_path.display());
            }
            if Instant::now() > deadline {
                bail!("{SANDBOX_PY} serve did not start its services within 90 s; see {}", log_path.display());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let text = std::fs::read_to_string(&summary_path)?;
        let summary: Value =
            serde_json::from_str(&text).with_context(|| format!("reading {}", summary_path.display()))?;
        Ok((sandbox, summary))
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // SIGTERM lets it stop docker-registry and pypiserver; SIGKILL only if it will not go.
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn field(value: &Value, key: &str) -> anyhow::Result<String> {
    value[key].as_str().map(String::from).with_context(|| format!("{SANDBOX_PY} wrote no {key:?} in sandbox.json"))
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A private Docker client configuration, so that sandbox logins never touch the user's.
pub fn private_docker_config(dir: &Path) -> anyhow::Result<PathBuf> {
    let path = dir.join("docker-config");
    std::fs::create_dir_all(&path)?;
    Ok(path)
}

/// One throwaway registry at a time among the unit tests: each starts several servers, and a
/// loaded machine starts them slowly.
#[cfg(test)]
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}
