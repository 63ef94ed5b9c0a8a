//! What keeps a local service local: the HTTP checks shared by the backend, the dashboard and
//! the MCP server, so the three answer alike. [`protect`] puts them around a router.
//!
//! - `Host` must name this machine (`localhost`, `127.0.0.1`, `[::1]`, any port) or one of the
//!   compose service names, so a page on another site cannot reach us by DNS rebinding.
//!   `GATI_ALLOWED_HOSTS` (comma-separated names) adds more, for users who publish on purpose.
//! - A browser's `Origin`, when present, must name one of those hosts too.
//! - Writes (POST, PUT, PATCH, DELETE) must say `Content-Type: application/json`: a cross-site
//!   form or `text/plain` fetch cannot send that without a CORS preflight, which we refuse.
//! - Every error answer is JSON, including the ones axum or a library would send as text.

use std::sync::Arc;

use axum::{
    body::{to_bytes, Body},
    extract::{Request, State},
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    Json, Router,
};
use serde_json::json;

/// `router` behind the guard: foreign hosts, origins and non-JSON writes are refused before any
/// route runs, and every error answer, the refusals included, is JSON (a 413 naming
/// `limit_bytes`, when the service has a body limit).
pub fn protect<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    guard: LocalGuard,
    limit_bytes: Option<usize>,
) -> Router<S> {
    // The last layer added runs first: errors become JSON around everything, the guard inside.
    router
        .layer(middleware::from_fn_with_state(Arc::new(guard), self::guard))
        .layer(middleware::from_fn_with_state(limit_bytes, json_errors))
}

/// Host names every service accepts: loopback, and the service names of the compose file.
pub const DEFAULT_HOSTS: [&str; 6] = ["localhost", "127.0.0.1", "::1", "backend", "dashboard", "mcp-server"];
/// Extra host names, comma-separated.
pub const ALLOWED_HOSTS_ENV: &str = "GATI_ALLOWED_HOSTS";

#[derive(Debug, Clone)]
pub struct LocalGuard {
    hosts: Vec<String>,
}

impl LocalGuard {
    pub fn new(extra: &[String]) -> LocalGuard {
        let mut hosts: Vec<String> = DEFAULT_HOSTS.iter().map(|h| h.to_string()).collect();
        for host in extra.iter().filter_map(|h| host_name(h)) {
            if !hosts.contains(&host) {
                hosts.push(host);
            }
        }
        LocalGuard { hosts }
    }

    /// The default hosts plus those of `GATI_ALLOWED_HOSTS` and of each older variable named.
    pub fn from_env(also: &[&str]) -> LocalGuard {
        let extra: Vec<String> = std::iter::once(ALLOWED_HOSTS_ENV)
            .chain(also.iter().copied())
            .filter_map(|name| std::env::var(name).ok())
            .flat_map(|v| v.split(',').map(str::trim).filter(|h| !h.is_empty()).map(String::from).collect::<Vec<_>>())
            .collect();
        LocalGuard::new(&extra)
    }

    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    fn allows(&self, host: &str) -> bool {
        host_name(host).is_some_and(|name| self.hosts.contains(&name))
    }

    /// Why a request must be refused, or `None` if it may go on.
    pub fn refusal(&self, method: &Method, headers: &HeaderMap) -> Option<Response> {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !self.allows(host) {
            let message = if host.is_empty() {
                "the request has no Host header".to_string()
            } else {
                format!(
                    "Host {host:?} is not this machine: a local gati service answers only {} \
                     (add names to {ALLOWED_HOSTS_ENV} to publish it on purpose)",
                    self.hosts.join(", ")
                )
            };
            return Some(refuse(StatusCode::FORBIDDEN, message, json!({ "allowed_hosts": self.hosts })));
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            if !origin_host(origin).is_some_and(|h| self.allows(&h)) {
                let message = format!("cross-site request from Origin {origin:?} refused");
                return Some(refuse(StatusCode::FORBIDDEN, message, json!({ "allowed_hosts": self.hosts })));
            }
        }
        let writes = [Method::POST, Method::PUT, Method::PATCH, Method::DELETE];
        if writes.contains(method) {
            let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
            if !is_json(content_type) {
                let shown = if content_type.is_empty() { "none".to_string() } else { format!("{content_type:?}") };
                let message = format!("{method} needs Content-Type: application/json (got {shown})");
                return Some(refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE, message, json!({})));
            }
        }
        None
    }
}

/// The lowercase host name of a `Host` header value or configured entry, without port or
/// brackets: `[::1]:8000` is `::1`, `LocalHost.:3000` is `localhost`.
fn host_name(authority: &str) -> Option<String> {
    let authority = authority.trim();
    let host = if let Some(rest) = authority.strip_prefix('[') {
        rest.split_once(']')?.0
    } else if authority.matches(':').count() > 1 {
        authority // a bare IPv6 address, as in a configured list
    } else {
        authority.split(':').next()?
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

/// The host of an `Origin` (`scheme://host[:port]`); `null` and anything else has none.
fn origin_host(origin: &str) -> Option<String> {
    let (scheme, rest) = origin.split_once("://")?;
    if !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") || rest.contains('/') {
        return None;
    }
    host_name(rest.rsplit_once('@').map_or(rest, |(_, host)| host))
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// A JSON error: `{"error": message, ...extra}`.
pub fn refuse(status: StatusCode, message: String, extra: serde_json::Value) -> Response {
    let mut body = json!({ "error": message });
    if let (Some(body), serde_json::Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    (status, Json(body)).into_response()
}

/// Middleware: refuses foreign hosts, foreign origins and non-JSON writes before any route runs.
pub async fn guard(State(guard): State<Arc<LocalGuard>>, request: Request, next: Next) -> Response {
    match guard.refusal(request.method(), request.headers()) {
        Some(refusal) => refusal,
        None => next.run(request).await,
    }
}

/// Middleware: an error answered as text (axum's rejections, a 405, a library's 403) becomes
/// `{"error": text}`; a 413 also names the service's limit, `limit_bytes`, if it has one.
pub async fn json_errors(State(limit_bytes): State<Option<usize>>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json_body = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| is_json(v) || v.starts_with("text/event-stream"));
    if !(status.is_client_error() || status.is_server_error()) || is_json_body {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = to_bytes(body, 64 * 1024).await.map(|b| String::from_utf8_lossy(&b).trim().to_string());
    let text = match text {
        Ok(text) if !text.is_empty() => text,
        _ => status.canonical_reason().unwrap_or("error").to_string(),
    };
    let mut body = json!({ "error": text });
    if let Some(limit) = limit_bytes.filter(|_| status == StatusCode::PAYLOAD_TOO_LARGE) {
        body["limit_bytes"] = json!(limit);
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, Body::from(body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    fn status(guard: &LocalGuard, method: Method, pairs: &[(&'static str, &str)]) -> Option<StatusCode> {
        guard.refusal(&method, &headers(pairs)).map(|r| r.status())
    }

    #[test]
    fn host_names_without_port_or_brackets() {
        assert_eq!(host_name("[::1]:8000").as_deref(), Some("::1"));
        assert_eq!(host_name("::1").as_deref(), Some("::1"));
        assert_eq!(host_name("LocalHost.:3000").as_deref(), Some("localhost"));
        assert_eq!(host_name("backend").as_deref(), Some("backend"));
        assert_eq!(host_name(""), None);
        assert_eq!(origin_host("http://127.0.0.1:3000").as_deref(), Some("127.0.0.1"));
        assert_eq!(origin_host("https://[::1]").as_deref(), Some("::1"));
        assert_eq!(origin_host("null"), None);
        assert_eq!(origin_host("file://x/y"), None);
    }

    #[test]
    fn loopback_and_service_names_pass_others_are_refused() {
        let guard = LocalGuard::new(&[]);
        for host in ["localhost:8000", "127.0.0.1", "[::1]:3000", "backend:8000", "mcp-server:8080", "dashboard"] {
            assert_eq!(status(&guard, Method::GET, &[("host", host)]), None, "{host}");
        }
        for host in ["evil.example", "evil.example:8000", "127.0.0.1.evil.example", "localhost.evil", ""] {
            assert_eq!(status(&guard, Method::GET, &[("host", host)]), Some(StatusCode::FORBIDDEN), "{host}");
        }
        assert_eq!(status(&guard, Method::GET, &[]), Some(StatusCode::FORBIDDEN));
        let published = LocalGuard::new(&["gati.lan:8000".into(), " Traces.Example ".into()]);
        assert_eq!(status(&published, Method::GET, &[("host", "gati.lan")]), None);
        assert_eq!(status(&published, Method::GET, &[("host", "traces.example:80")]), None);
    }

    #[test]
    fn foreign_origins_and_non_json_writes_are_refused() {
        let guard = LocalGuard::new(&[]);
        let json = ("content-type", "application/json; charset=utf-8");
        let host = ("host", "127.0.0.1:8000");
        assert_eq!(status(&guard, Method::POST, &[host, json]), None);
        assert_eq!(status(&guard, Method::POST, &[host, json, ("origin", "http://localhost:3000")]), None);
        assert_eq!(status(&guard, Method::GET, &[host, ("origin", "http://127.0.0.1:3000")]), None);
        for origin in ["http://evil.example", "null", "http://localhost.evil.example:3000"] {
            let refused = status(&guard, Method::POST, &[host, json, ("origin", origin)]);
            assert_eq!(refused, Some(StatusCode::FORBIDDEN), "{origin}");
        }
        for content_type in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", ""] {
            let refused = status(&guard, Method::POST, &[host, ("content-type", content_type)]);
            assert_eq!(refused, Some(StatusCode::UNSUPPORTED_MEDIA_TYPE), "{content_type:?}");
        }
        assert_eq!(status(&guard, Method::DELETE, &[host]), Some(StatusCode::UNSUPPORTED_MEDIA_TYPE));
        assert_eq!(status(&guard, Method::PUT, &[host, ("content-type", "application/merge-patch+json")]), None);
    }
}
