//! What gati's three services share, so that they start, answer and stop alike: the local
//! guard ([`local_guard`]), the bounds on what they read ([`limits`], [`json`]), and the
//! process around a server — its command line (`healthcheck`, `--version`), its port and bind
//! address, and its shutdown on SIGTERM or Ctrl-C.
//!
//! ```text
//! static SERVICE: Service = Service { name: "gati-backend", ..Service::DEFAULT };
//! fn main() -> anyhow::Result<()> { SERVICE.main(|mode, port| serve(port)) }
//! ```

pub mod json;
pub mod limits;
pub mod local_guard;

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use anyhow::{bail, Context};

/// One service's name and defaults.
#[derive(Debug, Clone, Copy)]
pub struct Service {
    /// The binary's name, e.g. `gati-backend`: printed by `--version` and in usage errors.
    pub name: &'static str,
    /// `CARGO_PKG_VERSION` of the binary (the workspace's version).
    pub version: &'static str,
    /// The port when `GATI_PORT` is not set.
    pub default_port: u16,
    /// What `healthcheck` asks on 127.0.0.1: it must answer 200 with `"status": "ok"`.
    pub health_path: &'static str,
    /// First arguments that choose how to serve besides the default, e.g. `--http`.
    pub modes: &'static [&'static str],
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Invocation {
    /// Serve, in the default way (`None`) or in one of `Service::modes`.
    Serve(Option<&'static str>),
    /// Exit 0 only if the local server answers its health path.
    Healthcheck,
    /// Print `<name> <version>`.
    Version,
}

impl Service {
    pub const DEFAULT: Service =
        Service { name: "gati", version: "", default_port: 8000, health_path: "/health", modes: &[] };

    /// Runs the command line: `--version` and `healthcheck` are answered here, anything else
    /// is handed to `serve` with the mode and the port.
    pub fn main(&self, serve: impl FnOnce(Option<&'static str>, u16) -> anyhow::Result<()>) -> anyhow::Result<()> {
        let invocation = self.invocation(std::env::args().skip(1))?;
        if invocation == Invocation::Version {
            println!("{} {}", self.name, self.version);
            return Ok(());
        }
        let port = port(std::env::var("GATI_PORT").ok().as_deref(), self.default_port)?;
        match invocation {
            Invocation::Healthcheck => self.healthcheck(port),
            Invocation::Serve(mode) => serve(mode, port),
            Invocation::Version => unreachable!("answered above"),
        }
    }

    /// The invocation the arguments (without the program's name) ask for.
    pub fn invocation(&self, mut args: impl Iterator<Item = String>) -> anyhow::Result<Invocation> {
        let invocation = match args.next().as_deref() {
            None => Invocation::Serve(None),
            Some("healthcheck") => Invocation::Healthcheck,
            Some("--version" | "-V") => Invocation::Version,
            Some(other) => match self.modes.iter().find(|m| **m == other) {
                Some(mode) => Invocation::Serve(Some(mode)),
                None => bail!("unknown argument {other:?}; usage: {}", self.usage()),
            },
        };
        if let Some(extra) = args.next() {
            bail!("unexpected argument {extra:?}; usage: {}", self.usage());
        }
        Ok(invocation)
    }

    fn usage(&self) -> String {
        let choices: Vec<&str> = self.modes.iter().copied().chain(["healthcheck", "--version"]).collect();
        format!("{} [{}]", self.name, choices.join("|"))
    }

    /// The image's HEALTHCHECK: a scratch image has no shell or curl, so the binary asks itself
    /// over plain HTTP/1.1 on loopback.
    pub fn healthcheck(&self, port: u16) -> anyhow::Result<()> {
        let timeout = Duration::from_secs(3);
        let addr = ([127, 0, 0, 1], port).into();
        let mut stream = TcpStream::connect_timeout(&addr, timeout)
            .with_context(|| format!("nothing answers on 127.0.0.1:{port}"))?;
        stream.set_read_timeout(Some(timeout))?;
        let request = format!("GET {} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", self.health_path);
        stream.write_all(request.as_bytes())?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).with_context(|| format!("reading the answer to {}", self.health_path))?;
        healthy(&String::from_utf8_lossy(&response))
    }
}

/// Whether an HTTP/1.1 answer says healthy: status 200 and a JSON body whose `status` is "ok".
fn healthy(response: &str) -> anyhow::Result<()> {
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((response, ""));
    let status_line = head.lines().next().unwrap_or("an empty response");
    let status = serde_json::from_str::<serde_json::Value>(body.trim())
        .ok()
        .and_then(|v| v["status"].as_str().map(String::from));
    if !status_line.starts_with("HTTP/1.1 200") || status.as_deref() != Some("ok") {
        bail!("unhealthy: {status_line} {}", body.trim());
    }
    Ok(())
}

/// `GATI_PORT` as a port number, or the default when it is not set.
pub fn port(value: Option<&str>, default: u16) -> anyhow::Result<u16> {
    match value {
        None => Ok(default),
        Some(p) => p.trim().parse().with_context(|| format!("GATI_PORT={p:?} is not a port number (1-65535)")),
    }
}

/// The address to bind: `GATI_HOST`, else loopback (the images set 0.0.0.0 and publish on loopback).
pub fn host() -> String {
    std::env::var("GATI_HOST").unwrap_or_else(|_| "127.0.0.1".into())
}

/// A listener on `host:port`, or an error naming them.
pub async fn bind(host: &str, port: u16) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind((host, port)).await.with_context(|| format!("binding {host}:{port}"))
}

/// Resolves on SIGTERM (`docker stop`) or Ctrl-C: the server then finishes what it answers.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MCP: Service = Service { name: "gati-mcp-server", modes: &["--http", "--stdio"], ..Service::DEFAULT };

    fn invocation(args: &[&str]) -> anyhow::Result<Invocation> {
        MCP.invocation(args.iter().map(|a| a.to_string()))
    }

    #[test]
    fn the_command_line() {
        assert_eq!(invocation(&[]).unwrap(), Invocation::Serve(None));
        assert_eq!(invocation(&["--http"]).unwrap(), Invocation::Serve(Some("--http")));
        assert_eq!(invocation(&["healthcheck"]).unwrap(), Invocation::Healthcheck);
        assert_eq!(invocation(&["--version"]).unwrap(), Invocation::Version);
        let unknown = invocation(&["--htp"]).unwrap_err().to_string();
        assert!(
            unknown.contains("\"--htp\"") && unknown.contains("[--http|--stdio|healthcheck|--version]"),
            "{unknown}"
        );
        assert!(invocation(&["healthcheck", "now"]).is_err());
    }

    #[test]
    fn ports() {
        assert_eq!(port(None, 8000).unwrap(), 8000);
        assert_eq!(port(Some("3001"), 8000).unwrap(), 3001);
        assert!(port(Some("eighty"), 8000).unwrap_err().to_string().contains("GATI_PORT=\"eighty\""));
        assert!(port(Some("70000"), 8000).is_err());
    }

    #[test]
    fn health_answers() {
        let ok = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{\"status\":\"ok\",\"version\":\"1\"}";
        assert!(healthy(ok).is_ok());
        assert!(healthy("HTTP/1.1 503 Service Unavailable\r\n\r\n{\"status\":\"unhealthy\"}").is_err());
        assert!(healthy("HTTP/1.1 200 OK\r\n\r\n{\"status\":\"starting\"}").is_err());
        assert!(healthy("").is_err());
    }
}
