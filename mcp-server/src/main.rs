//! gati-mcp-server — an MCP server whose tools query the gati backend.
//!
//! USAGE
//!     gati-mcp-server               MCP over stdio (desktop assistants)
//!     gati-mcp-server --http        MCP over streamable HTTP at GATI_HOST:GATI_PORT/mcp
//!     gati-mcp-server healthcheck   exit 0 only if the local HTTP server answers /health
//!
//! ENVIRONMENT
//!     BACKEND_URL              the gati backend (default http://127.0.0.1:8000)
//!     GATI_PORT                HTTP port (default 8080)
//!     GATI_HOST                HTTP bind address (default 127.0.0.1; 0.0.0.0 in the image)
//!     GATI_ALLOWED_HOSTS       extra Host names accepted over HTTP, comma-separated, as for
//!                              the backend and dashboard (loopback names and the compose
//!                              service names are always accepted; others are refused to
//!                              block DNS rebinding). GATI_MCP_ALLOWED_HOSTS, its older name,
//!                              still counts.
//!     GATI_MCP_ALLOW_WRITES    `1` adds the tools that rename and delete runs and agents
//!                              (default `0`: the tools only read)
//!
//! Over HTTP it is a local service like the others (backend/src/local_guard.rs): foreign `Host`
//! names and `Origin`s are refused, POSTs need `Content-Type: application/json`, and every
//! refusal is JSON.

mod answers;
mod backend;
#[path = "../../backend/src/local_guard.rs"]
mod local_guard;
mod tools;

use std::sync::Arc;

use anyhow::{bail, Context};
use rmcp::{
    transport::streamable_http_server::{
        session::local::LocalSessionManager, StreamableHttpServerConfig, StreamableHttpService,
    },
    ServiceExt,
};
use serde_json::json;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

fn main() -> anyhow::Result<()> {
    let port: u16 = match std::env::var("GATI_PORT") {
        Ok(p) => p.parse().with_context(|| format!("GATI_PORT={p:?} is not a port number"))?,
        Err(_) => 8080,
    };
    let backend = std::env::var("BACKEND_URL").unwrap_or_else(|_| "http://127.0.0.1:8000".into());
    let writes = match std::env::var("GATI_MCP_ALLOW_WRITES").as_deref() {
        Err(_) | Ok("" | "0" | "false") => false,
        Ok("1" | "true") => true,
        Ok(other) => bail!("GATI_MCP_ALLOW_WRITES={other:?} is neither 1 nor 0"),
    };
    let server = Server { backend, writes };
    let rt = tokio::runtime::Runtime::new()?;
    match std::env::args().nth(1).as_deref() {
        None | Some("--stdio") => rt.block_on(serve_stdio(server)),
        Some("--http") => rt.block_on(serve_http(server, port)),
        Some("healthcheck") => rt.block_on(healthcheck(port)),
        Some("--version") => {
            println!("gati-mcp-server {VERSION}");
            Ok(())
        }
        Some(other) => bail!("unknown argument {other:?}; usage: gati-mcp-server [--http|healthcheck|--version]"),
    }
}

/// What every MCP session is served with.
#[derive(Clone)]
struct Server {
    backend: String,
    writes: bool,
}

impl Server {
    fn tools(&self) -> tools::Gati {
        tools::Gati::new(&self.backend, self.writes)
    }
}

async fn serve_stdio(server: Server) -> anyhow::Result<()> {
    let server = server.tools().serve(rmcp::transport::stdio()).await?;
    server.waiting().await?;
    Ok(())
}

async fn serve_http(server: Server, port: u16) -> anyhow::Result<()> {
    let host = std::env::var("GATI_HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let guard = local_guard::LocalGuard::from_env(&["GATI_MCP_ALLOWED_HOSTS"]);
    // rmcp checks Host too, with the same list; ours answers first, and in JSON.
    let config = StreamableHttpServerConfig::default().with_allowed_hosts(guard.hosts().to_vec());
    let cancel = config.cancellation_token.clone();
    let mcp = StreamableHttpService::new(move || Ok(server.tools()), Arc::new(LocalSessionManager::default()), config);
    let hosts = guard.hosts().join(", ");
    let app = axum::Router::new()
        .nest_service("/mcp", mcp)
        .route(
            "/health",
            axum::routing::get(|| async { axum::Json(serde_json::json!({ "status": "ok", "version": VERSION })) }),
        )
        .fallback(|| async {
            local_guard::refuse(axum::http::StatusCode::NOT_FOUND, "no such endpoint; MCP is at /mcp".into(), json!({}))
        })
        // Outermost first: errors become JSON, then foreign hosts and origins are refused.
        .layer(axum::middleware::from_fn_with_state(Arc::new(guard), local_guard::guard))
        .layer(axum::middleware::from_fn_with_state(None, local_guard::json_errors));
    let listener =
        tokio::net::TcpListener::bind((host.as_str(), port)).await.with_context(|| format!("binding {host}:{port}"))?;
    eprintln!("gati-mcp-server {VERSION} serving MCP on http://{host}:{port}/mcp, answering Host {hosts}");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            cancel.cancel();
        })
        .await?;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// The image's HEALTHCHECK (HTTP mode): there is no shell or curl in a scratch image.
async fn healthcheck(port: u16) -> anyhow::Result<()> {
    let url = format!("http://127.0.0.1:{port}/health");
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(3)).build()?;
    client
        .get(&url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .with_context(|| format!("{url} is not healthy"))?;
    Ok(())
}
