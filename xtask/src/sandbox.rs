//! Throwaway services on loopback for benchmarks and rehearsals: Debian's docker-registry with
//! htpasswd auth, stopped when dropped. The password is random, reaches `htpasswd` on stdin and
//! the registry in a file, and is never printed or passed as an argument.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use xshell::{cmd, Shell};

use crate::registry::Credentials;

pub struct LocalRegistry {
    pub address: String,
    pub credentials: Credentials,
    child: Child,
}

impl LocalRegistry {
    pub fn start(sh: &Shell, dir: &Path) -> anyhow::Result<LocalRegistry> {
        if dir.exists() {
            sh.remove_path(dir)?;
        }
        sh.create_dir(dir)?;
        let port = free_port()?;
        let address = format!("127.0.0.1:{port}");
        let credentials = Credentials { user: "gati".into(), password: random_hex(16)? };
        let user = &credentials.user;
        let htpasswd = cmd!(sh, "htpasswd -niB {user}")
            .stdin(&credentials.password)
            .quiet()
            .read()
            .context("running htpasswd: install it (Debian: `apt-get install apache2-utils`)")?;
        sh.write_file(dir.join("htpasswd"), htpasswd.trim().to_string() + "\n")?;
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {storage}\n  \
             delete:\n    enabled: true\nhttp:\n  addr: {address}\n  secret: {secret}\nauth:\n  htpasswd:\n    \
             realm: gati-sandbox\n    path: {htpasswd}\n",
            storage = dir.join("storage").display(),
            secret = random_hex(16)?,
            htpasswd = dir.join("htpasswd").display(),
        );
        sh.write_file(dir.join("config.yml"), config)?;
        let log = std::fs::File::create(dir.join("registry.log"))?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting docker-registry: install it (Debian: `apt-get install docker-registry`)")?;
        let registry = LocalRegistry { address, credentials, child };
        wait_listening("docker-registry", port, &dir.join("registry.log"))?;
        Ok(registry)
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until something accepts connections on the loopback `port`.
fn wait_listening(what: &str, port: u16, log: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("{what} did not listen on port {port}; see {}", log.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn random_hex(bytes: usize) -> anyhow::Result<String> {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// A private Docker client configuration, so that sandbox logins never touch the user's.
pub fn private_docker_config(dir: &Path) -> anyhow::Result<PathBuf> {
    let path = dir.join("docker-config");
    std::fs::create_dir_all(&path)?;
    Ok(path)
}

/// pypiserver on a loopback port, uploads guarded by htpasswd; stopped when dropped.
pub struct LocalIndex {
    pub upload_url: String,
    pub simple_url: String,
    pub credentials: Credentials,
    child: Child,
}

impl LocalIndex {
    pub fn start(sh: &Shell, python: &Path, dir: &Path) -> anyhow::Result<LocalIndex> {
        if dir.exists() {
            sh.remove_path(dir)?;
        }
        sh.create_dir(dir.join("packages"))?;
        let port = free_port()?;
        let credentials = Credentials { user: "uploader".into(), password: random_hex(16)? };
        let user = &credentials.user;
        // pypiserver reads htpasswd through passlib: APR1-MD5 needs no extra module.
        let htpasswd = cmd!(sh, "htpasswd -nim {user}").stdin(&credentials.password).quiet().read()?;
        sh.write_file(dir.join("htpasswd"), htpasswd.trim().to_string() + "\n")?;
        let log = std::fs::File::create(dir.join("index.log"))?;
        let child = Command::new(python)
            .args(["-m", "pypiserver", "run", "--port", &port.to_string(), "--interface", "127.0.0.1"])
            .arg("--passwords")
            .arg(dir.join("htpasswd"))
            .args(["--authenticate", "update"])
            .arg(dir.join("packages"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting pypiserver from the tools' environment")?;
        let index = LocalIndex {
            upload_url: format!("http://127.0.0.1:{port}/"),
            simple_url: format!("http://127.0.0.1:{port}/simple/"),
            credentials,
            child,
        };
        wait_listening("pypiserver", port, &dir.join("index.log"))?;
        Ok(index)
    }
}

impl Drop for LocalIndex {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
