//! gati-dashboard — serves the single-page UI and proxies the backend's API to it.
//!
//! USAGE
//!     gati-dashboard               serve on GATI_HOST:GATI_PORT (127.0.0.1:3000)
//!     gati-dashboard healthcheck   exit 0 only if the local server answers /healthz
//!
//! ENVIRONMENT
//!     BACKEND_URL   the gati backend (default http://127.0.0.1:8000)
//!     GATI_PORT     port to listen on (default 3000)
//!     GATI_HOST     address to bind (default 127.0.0.1; 0.0.0.0 in the image)
//!     GATI_ALLOWED_HOSTS
//!                   more Host names to answer, comma-separated; loopback names and the compose
//!                   service names are always accepted, any other is refused (403)
//!
//! The UI is plain HTML, CSS and JavaScript modules (`ui/`) and Chart.js from npm, compiled into
//! the binary by build.rs: no bundler, no build step in the browser. The browser asks this
//! server for `/api/*` and `/health`, which are forwarded to the backend, so the backend needs
//! no CORS. Like the backend, the dashboard is a local service (backend/src/local_guard.rs):
//! foreign `Host` names and `Origin`s are refused, a write needs a JSON content type, and every
//! error is JSON. The only writes forwarded are the UI's own: deleting an agent or a run and
//! renaming a run (`DELETE /api/agents/{name}`, `DELETE|PATCH /api/runs/{agent}/{run}`).

#[path = "../../backend/src/local_guard.rs"]
mod local_guard;

use std::sync::Arc;

use anyhow::{bail, Context};
use axum::{
    body::Body,
    extract::{Request, State},
    http::{header, HeaderValue, StatusCode},
    middleware,
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

mod assets {
    include!(concat!(env!("OUT_DIR"), "/assets.rs"));
}

/// The largest write body forwarded: a rename is a few bytes.
const MAX_WRITE_BYTES: usize = 64 * 1024;

fn main() -> anyhow::Result<()> {
    let port: u16 = match std::env::var("GATI_PORT") {
        Ok(p) => p.parse().with_context(|| format!("GATI_PORT={p:?} is not a port number"))?,
        Err(_) => 3000,
    };
    let rt = tokio::runtime::Runtime::new()?;
    match std::env::args().nth(1).as_deref() {
        None => rt.block_on(serve(port)),
        Some("healthcheck") => rt.block_on(healthcheck(port)),
        Some("--version") => {
            println!("gati-dashboard {VERSION}");
            Ok(())
        }
        Some(other) => {
            bail!("unknown argument {other:?}; usage: gati-dashboard [healthcheck|--version]")
        }
    }
}

#[derive(Clone)]
struct Backend {
    url: String,
    http: reqwest::Client,
}

async fn serve(port: u16) -> anyhow::Result<()> {
    let host = std::env::var("GATI_HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let url = std::env::var("BACKEND_URL").unwrap_or_else(|_| "http://127.0.0.1:8000".into());
    let guard = local_guard::LocalGuard::from_env(&[]);
    let hosts = guard.hosts().join(", ");
    let backend = Backend {
        url: url.trim_end_matches('/').to_string(),
        http: reqwest::Client::builder().timeout(std::time::Duration::from_secs(15)).build()?,
    };
    let app = Router::new()
        .route("/healthz", get(|| async { Json(serde_json::json!({ "status": "ok", "version": VERSION })) }))
        .route("/health", get(proxy))
        .route("/api/agents/{name}", get(proxy).delete(proxy))
        .route("/api/runs/{run}", get(proxy).delete(proxy).patch(proxy))
        .route("/api/runs/{agent}/{run}", get(proxy).delete(proxy).patch(proxy))
        .route("/api/{*path}", get(proxy))
        .fallback(asset)
        .with_state(backend)
        // Outermost first: errors become JSON, then foreign hosts and origins are refused.
        .layer(middleware::from_fn_with_state(Arc::new(guard), local_guard::guard))
        .layer(middleware::from_fn_with_state(None, local_guard::json_errors));
    let listener =
        tokio::net::TcpListener::bind((host.as_str(), port)).await.with_context(|| format!("binding {host}:{port}"))?;
    eprintln!("gati-dashboard {VERSION} on http://{host}:{port}, backend {url}, answering Host {hosts}");
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await?;
    Ok(())
}

/// A file of the UI. `no-cache` with an ETag: a reload asks, and gets 304 while the binary is
/// the same, so a new version is never hidden behind a stale cache.
async fn asset(request: Request) -> Response {
    let path = match request.uri().path() {
        "/" => "/index.html",
        path => path,
    };
    let found = assets::ASSETS.iter().find(|(url, ..)| *url == path);
    let Some((_, content_type, etag, body)) = found.filter(|_| request.method() == axum::http::Method::GET) else {
        return (StatusCode::NOT_FOUND, Json(serde_json::json!({ "error": "no such page" }))).into_response();
    };
    let headers = [(header::CONTENT_TYPE, *content_type), (header::CACHE_CONTROL, "no-cache"), (header::ETAG, *etag)];
    if request.headers().get(header::IF_NONE_MATCH).is_some_and(|v| v.as_bytes() == etag.as_bytes()) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (headers, *body).into_response()
}

/// Forwards a request to the backend: any read, and the writes routed here. The local guard
/// has already refused foreign hosts, origins and non-JSON writes; the backend checks its own.
async fn proxy(State(backend): State<Backend>, request: Request) -> Response {
    let path_and_query = request.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let url = format!("{}{path_and_query}", backend.url);
    let method = reqwest::Method::from_bytes(request.method().as_str().as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut forwarded = backend.http.request(method.clone(), &url);
    if method != reqwest::Method::GET {
        let content_type = request.headers().get(header::CONTENT_TYPE).cloned();
        let body = match axum::body::to_bytes(request.into_body(), MAX_WRITE_BYTES).await {
            Ok(body) => body,
            Err(_) => {
                let message = format!("a write through the dashboard is at most {MAX_WRITE_BYTES} bytes");
                return (StatusCode::PAYLOAD_TOO_LARGE, Json(serde_json::json!({ "error": message }))).into_response();
            }
        };
        if let Some(v) = content_type {
            forwarded = forwarded.header(reqwest::header::CONTENT_TYPE, v.as_bytes());
        }
        forwarded = forwarded.body(body);
    }
    match forwarded.send().await {
        Ok(upstream) => {
            let status = StatusCode::from_u16(upstream.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let content_type = upstream.headers().get(reqwest::header::CONTENT_TYPE).cloned();
            match upstream.bytes().await {
                Ok(body) => {
                    let mut response = (status, Body::from(body)).into_response();
                    if let Some(v) = content_type.and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok()) {
                        response.headers_mut().insert(header::CONTENT_TYPE, v);
                    }
                    response
                }
                Err(e) => unreachable_backend(&backend.url, e),
            }
        }
        Err(e) => unreachable_backend(&backend.url, e),
    }
}

fn unreachable_backend(url: &str, e: reqwest::Error) -> Response {
    let message = format!("the gati backend at {url} is not reachable: {e}");
    (StatusCode::BAD_GATEWAY, Json(serde_json::json!({ "error": message }))).into_response()
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// The image's HEALTHCHECK. It asks the dashboard itself (`/healthz`), not the proxied
/// backend, so a dashboard is healthy while it can tell the user that the backend is down.
async fn healthcheck(port: u16) -> anyhow::Result<()> {
    let url = format!("http://127.0.0.1:{port}/healthz");
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(3)).build()?;
    client
        .get(&url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .with_context(|| format!("{url} is not healthy"))?;
    Ok(())
}
