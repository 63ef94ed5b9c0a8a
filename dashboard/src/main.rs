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
//!                   more Host names to answer, comma-separated, for a dashboard published on
//!                   purpose; loopback names are always accepted, any other is refused (403)
//!     GATI_CONTAINER_HOSTS
//!                   the same, set by the image: its compose service name, `dashboard`
//!
//! The UI is plain HTML, CSS and JavaScript modules (`ui/`) and Chart.js from npm, compiled into
//! the binary by build.rs: no bundler, no build step in the browser. The browser asks this
//! server for `/api/*` and `/health`, which are forwarded to the backend, so the backend needs
//! no CORS. Like the backend, the dashboard is a local service (gati_service::local_guard):
//! foreign `Host` names and `Origin`s are refused, a write needs a JSON content type, and every
//! error is JSON; no page may be framed by another. The only writes forwarded are the UI's own: deleting an agent or a run and
//! renaming a run (`DELETE /api/agents/{name}`, `DELETE|PATCH /api/runs/{agent}/{run}`).

mod proxy;

use axum::{
    extract::Request,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use gati_service::{local_guard, Service};

use crate::proxy::{proxy, Backend};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

// Its HEALTHCHECK asks the dashboard itself (`/healthz`), not the proxied backend, so a dashboard
// is healthy while it can tell the user that the backend is down.
static SERVICE: Service =
    Service { name: "gati-dashboard", version: VERSION, default_port: 3000, health_path: "/healthz", modes: &[] };

mod assets {
    include!(concat!(env!("OUT_DIR"), "/assets.rs"));
}

fn main() -> anyhow::Result<()> {
    SERVICE.main(|_, port| tokio::runtime::Runtime::new()?.block_on(serve(port)))
}

async fn serve(port: u16) -> anyhow::Result<()> {
    let host = gati_service::host();
    let url = std::env::var("BACKEND_URL").unwrap_or_else(|_| "http://127.0.0.1:8000".into());
    let guard = local_guard::LocalGuard::from_env(&[]);
    let hosts = guard.hosts().join(", ");
    let backend = Backend::new(&url)?;
    let app = Router::new()
        .route("/healthz", get(|| async { Json(serde_json::json!({ "status": "ok", "version": VERSION })) }))
        .route("/health", get(proxy))
        .route("/api/agents/{name}", get(proxy).delete(proxy))
        .route("/api/runs/{run}", get(proxy).delete(proxy).patch(proxy))
        .route("/api/runs/{agent}/{run}", get(proxy).delete(proxy).patch(proxy))
        .route("/api/{*path}", get(proxy))
        .fallback(asset)
        .with_state(backend);
    let app = local_guard::protect(app, guard, None);
    let listener = gati_service::bind(&host, port).await?;
    eprintln!("gati-dashboard {VERSION} on http://{host}:{port}, backend {url}, answering Host {hosts}");
    axum::serve(listener, app).with_graceful_shutdown(gati_service::shutdown_signal()).await?;
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
