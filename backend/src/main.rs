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
//! It is a local service (gati_service::local_guard): writes need `Content-Type: application/json`,
//! a foreign `Origin` is refused, and every error is JSON.

mod api;
mod ingest;
mod store;

use std::path::PathBuf;

use anyhow::Context;
use gati_service::{local_guard, Service};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

static SERVICE: Service =
    Service { name: "gati-backend", version: VERSION, default_port: 8000, health_path: "/health", modes: &[] };

fn main() -> anyhow::Result<()> {
    SERVICE.main(|_, port| serve(port))
}

fn serve(port: u16) -> anyhow::Result<()> {
    let host = gati_service::host();
    let data_dir = PathBuf::from(std::env::var("GATI_DATA_DIR").unwrap_or_else(|_| "data".into()));
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
    let db = data_dir.join("gati.db");
    let store = store::Store::open(&db).with_context(|| format!("opening {}", db.display()))?;
    let guard = local_guard::LocalGuard::from_env(&[]);

    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let listener = gati_service::bind(&host, port).await?;
        eprintln!(
            "gati-backend {VERSION} listening on {host}:{port}, data in {}, answering Host {}",
            db.display(),
            guard.hosts().join(", ")
        );
        axum::serve(listener, api::router(store, guard))
            .with_graceful_shutdown(gati_service::shutdown_signal())
            .await?;
        eprintln!("gati-backend stopped");
        Ok(())
    })
}
