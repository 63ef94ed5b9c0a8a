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
//! The UI is plain HTML, CSS and JavaScript compiled into the binary: no npm build step. The
//! browser asks this server for `/api/*` and `/health`, which are forwarded to the backend, so
//! the backend needs no CORS. Like the backend, the dashboard is a local service
//! (gati_service::local_guard): foreign `Host` names and `Origin`s are refused, writes are
//! not proxied, and every error is JSON.

use axum::{
    body::Body,
    extract::{Request, State},
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use gati_service::{local_guard, Service};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

// Its HEALTHCHECK asks the dashboard itself (`/healthz`), not the proxied backend, so a dashboard
// is healthy while it can tell the user that the backend is down.
static SERVICE: Service =
    Service { name: "gati-dashboard", version: VERSION, default_port: 3000, health_path: "/healthz", modes: &[] };

const INDEX_HTML: &str = include_str!("../ui/index.html");
const APP_JS: &str = include_str!("../ui/app.js");
const STYLE_CSS: &str = include_str!("../ui/style.css");

fn main() -> anyhow::Result<()> {
    SERVICE.main(|_, port| tokio::runtime::Runtime::new()?.block_on(serve(port)))
}

#[derive(Clone)]
struct Backend {
    url: String,
    http: reqwest::Client,
}

async fn serve(port: u16) -> anyhow::Result<()> {
    let host = gati_service::host();
    let url = std::env::var("BACKEND_URL").unwrap_or_else(|_| "http://127.0.0.1:8000".into());
    let guard = local_guard::LocalGuard::from_env(&[]);
    let hosts = guard.hosts().join(", ");
    let backend = Backend {
        url: url.trim_end_matches('/').to_string(),
        http: reqwest::Client::builder().timeout(std::time::Duration::from_secs(15)).build()?,
    };
    let app = Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }))
        .route("/app.js", get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }))
        .route("/style.css", get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }))
        .route("/healthz", get(|| async { Json(serde_json::json!({ "status": "ok", "version": VERSION })) }))
        .route("/health", get(proxy))
        .route("/api/{*path}", get(proxy))
        .fallback(|| async {
            (StatusCode::NOT_FOUND, Json(serde_json::json!({ "error": "no such page" }))).into_response()
        })
        .with_state(backend);
    let app = local_guard::protect(app, guard, None);
    let listener = gati_service::bind(&host, port).await?;
    eprintln!("gati-dashboard {VERSION} on http://{host}:{port}, backend {url}, answering Host {hosts}");
    axum::serve(listener, app).with_graceful_shutdown(gati_service::shutdown_signal()).await?;
    Ok(())
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// Forwards a read to the backend; the UI only reads, so only GET is proxied.
async fn proxy(State(backend): State<Backend>, request: Request) -> Response {
    let path_and_query = request.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let url = format!("{}{path_and_query}", backend.url);
    match backend.http.get(&url).send().await {
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
