//! gati-backend — stores agent events in SQLite and serves them over HTTP.
//!
//! USAGE
//!     gati-backend                serve on GATI_HOST:GATI_PORT (127.0.0.1:8000)
//!     gati-backend healthcheck    exit 0 only if the local server answers /health
//!
//! ENVIRONMENT
//!     GATI_DATA_DIR   where the database lives (default: ./data; /data in the image)
//!     GATI_PORT       port to listen on (default 8000)
//!     GATI_HOST       address to bind (default 127.0.0.1; 0.0.0.0 in the image)
//!     GATI_ALLOWED_HOSTS
//!                     more Host names to answer, comma-separated, for a backend published on
//!                     purpose; loopback names and the compose service names (backend,
//!                     dashboard, mcp-server) are always accepted, any other is refused (403)
//!
//! It is a local service (see local_guard.rs): writes need `Content-Type: application/json`,
//! a foreign `Origin` is refused, and every error is JSON.

mod api;
mod ingest;
mod local_guard;
mod store;

use std::{io::Read, io::Write, net::TcpStream, path::PathBuf, time::Duration};

use anyhow::{bail, Context};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

fn main() -> anyhow::Result<()> {
    let port: u16 = match std::env::var("GATI_PORT") {
        Ok(p) => p.parse().with_context(|| format!("GATI_PORT={p:?} is not a port number"))?,
        Err(_) => 8000,
    };
    match std::env::args().nth(1).as_deref() {
        None => serve(port),
        Some("healthcheck") => healthcheck(port),
        Some("--version") => {
            println!("gati-backend {VERSION}");
            Ok(())
        }
        Some(other) => {
            bail!("unknown argument {other:?}; usage: gati-backend [healthcheck|--version]")
        }
    }
}

fn serve(port: u16) -> anyhow::Result<()> {
    let host = std::env::var("GATI_HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let data_dir = PathBuf::from(std::env::var("GATI_DATA_DIR").unwrap_or_else(|_| "data".into()));
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
    let db = data_dir.join("gati.db");
    let store = store::Store::open(&db).with_context(|| format!("opening {}", db.display()))?;
    let guard = local_guard::LocalGuard::from_env(&[]);

    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind((host.as_str(), port))
            .await
            .with_context(|| format!("binding {host}:{port}"))?;
        eprintln!(
            "gati-backend {VERSION} listening on {host}:{port}, data in {}, answering Host {}",
            db.display(),
            guard.hosts().join(", ")
        );
        axum::serve(listener, api::router(store, guard)).with_graceful_shutdown(shutdown_signal()).await?;
        eprintln!("gati-backend stopped");
        Ok(())
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// The image's HEALTHCHECK: a scratch image has no shell or curl, so the binary asks itself.
fn healthcheck(port: u16) -> anyhow::Result<()> {
    let timeout = Duration::from_secs(3);
    let addr = ([127, 0, 0, 1], port).into();
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).with_context(|| format!("nothing answers on 127.0.0.1:{port}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    if !response.starts_with("HTTP/1.1 200") || !response.contains("\"ok\"") {
        bail!("unhealthy: {}", response.lines().next().unwrap_or("empty response"));
    }
    Ok(())
}
