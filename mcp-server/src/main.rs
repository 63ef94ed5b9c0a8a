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
//!                              the backend and dashboard (loopback names are always accepted;
//!                              others are refused to block DNS rebinding).
//!                              GATI_MCP_ALLOWED_HOSTS, its older name, still counts.
//!     GATI_CONTAINER_HOSTS     the same, set by the image: its compose service name, `mcp-server`
//!     GATI_MCP_ALLOW_WRITES    `1` adds the tools that rename and delete runs and agents
//!                              (default `0`: the tools only read; see tools.rs)
//!
//! Over HTTP it is a local service like the others (gati_service::local_guard): foreign `Host`
//! names and `Origin`s are refused, POSTs need `Content-Type: application/json`, no answer may be
//! framed, and every refusal is JSON. `DELETE /mcp` with the session's id ends a session. A POST
//! is one JSON-RPC message of at most 1 MiB, nested at most `gati_service::limits::JSON_DEPTH`
//! levels; anything else is answered with a JSON-RPC error (messages.rs).

mod answers;
mod backend;
mod messages;
mod tools;

use std::sync::Arc;

use anyhow::bail;
use gati_service::{local_guard, Service};
use rmcp::{
    transport::streamable_http_server::{
        session::local::LocalSessionManager, StreamableHttpServerConfig, StreamableHttpService,
    },
    ServiceExt,
};
use serde_json::json;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

// `healthcheck` is for the HTTP mode, the image's.
static SERVICE: Service = Service {
    name: "gati-mcp-server",
    version: VERSION,
    default_port: 8080,
    health_path: "/health",
    modes: &["--http", "--stdio"],
};

fn main() -> anyhow::Result<()> {
    SERVICE.main(|mode, port| {
        let backend = std::env::var("BACKEND_URL").unwrap_or_else(|_| "http://127.0.0.1:8000".into());
        let writes = match std::env::var("GATI_MCP_ALLOW_WRITES").as_deref() {
            Err(_) | Ok("" | "0" | "false") => false,
            Ok("1" | "true") => true,
            Ok(other) => bail!("GATI_MCP_ALLOW_WRITES={other:?} is neither 1 nor 0"),
        };
        let server = Server { backend, writes };
        let rt = tokio::runtime::Runtime::new()?;
        match mode {
            Some("--http") => rt.block_on(serve_http(server, port)),
            _ => rt.block_on(serve_stdio(server)),
        }
    })
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
    let host = gati_service::host();
    let guard = local_guard::LocalGuard::from_env(&["GATI_MCP_ALLOWED_HOSTS"]);
    // rmcp checks Host too, with the same list; ours answers first, and in JSON.
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(guard.hosts().to_vec())
        .with_max_request_body_bytes(messages::MAX_MESSAGE_BYTES);
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
        .layer(axum::middleware::from_fn(messages::check));
    let app = local_guard::protect(app, guard, None);
    let listener = gati_service::bind(&host, port).await?;
    eprintln!("gati-mcp-server {VERSION} serving MCP on http://{host}:{port}/mcp, answering Host {hosts}");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            gati_service::shutdown_signal().await;
            cancel.cancel();
        })
        .await?;
    Ok(())
}
