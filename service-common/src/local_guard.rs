//! What keeps a local service local: the HTTP checks shared by the backend, the dashboard and
//! the MCP server, so the three answer alike. [`protect`] puts them around a router.
//!
//! - `Host` must name this machine (`localhost`, `127.0.0.1`, `[::1]`, any port), so a page on
//!   another site cannot reach us by DNS rebinding. `GATI_ALLOWED_HOSTS` (comma-separated names)
//!   adds more, for users who publish on purpose; `GATI_CONTAINER_HOSTS` adds the names a
//!   container is reached by on its Docker network (each image's Dockerfile sets its compose
//!   service name there). A native install answers no service name: on a hostile network, DNS
//!   could point `backend` anywhere.
//! - A browser's `Origin`, when present, must name one of those hosts too.
//! - A write's body must say `Content-Type: application/json`: a cross-site form or `text/plain`
//!   fetch cannot send that without a CORS preflight, which we refuse. The paths a service names
//!   with [`LocalGuard::accept_protobuf_at`] (the backend's OTLP/HTTP `/v1/traces`) take
//!   `application/x-protobuf` too, what every OpenTelemetry exporter sends: a page cannot send
//!   that type cross-site without a preflight either. A POST needs it even
//!   without a body (POST is the one write another site can send unasked); a DELETE, PUT or
//!   PATCH without a body does not (a browser preflights those anyway): that is how MCP clients
//!   close a session, `DELETE /mcp`.
//! - No page or answer may be framed (`X-Frame-Options: DENY`, CSP `frame-ancestors 'none'`), so
//!   another site cannot overlay the dashboard and have its delete clicked.
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
    // The last layer added runs first: framing is denied on everything, errors become JSON
    // inside that, the guard inside both.
    router
        .layer(middleware::from_fn_with_state(Arc::new(guard), self::guard))
        .layer(middleware::from_fn_with_state(limit_bytes, json_errors))
        .layer(middleware::map_response(deny_framing))
}

/// Host names every service accepts: this machine's.
pub const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];
/// Extra host names, comma-separated, for a service published on purpose.
pub const ALLOWED_HOSTS_ENV: &str = "GATI_ALLOWED_HOSTS";
/// The names a container is reached by on its Docker network, comma-separated: set by each
/// image's Dockerfile (`GATI_CONTAINER_HOSTS=backend`), so only a container answers its compose
/// service name. Apart from `GATI_ALLOWED_HOSTS`, which compose passes on from the user's
/// environment (empty, most often) and which would otherwise replace the image's value.
pub const CONTAINER_HOSTS_ENV: &str = "GATI_CONTAINER_HOSTS";

#[derive(Debug, Clone)]
pub struct LocalGuard {
    hosts: Vec<String>,
    /// Paths whose writes may carry a protobuf body as well as JSON.
    protobuf_paths: Vec<&'static str>,
}

impl LocalGuard {
    pub fn new(extra: &[String]) -> LocalGuard {
        let mut hosts: Vec<String> = LOOPBACK_HOSTS.iter().map(|h| h.to_string()).collect();
        for host in extra.iter().filter_map(|h| host_name(h)) {
            if !hosts.contains(&host) {
                hosts.push(host);
            }
        }
        LocalGuard { hosts, protobuf_paths: Vec::new() }
    }

    /// Writes to `path` (exactly) may also say `Content-Type: application/x-protobuf` (or
    /// `application/protobuf`): OTLP/HTTP's binary encoding. The other rules stay.
    pub fn accept_protobuf_at(mut self, path: &'static str) -> LocalGuard {
        self.protobuf_paths.push(path);
        self
    }

    /// The loopback hosts plus those of `GATI_ALLOWED_HOSTS`, `GATI_CONTAINER_HOSTS` and each
    /// older variable named.
    pub fn from_env(also: &[&str]) -> LocalGuard {
        let extra: Vec<String> = [ALLOWED_HOSTS_ENV, CONTAINER_HOSTS_ENV]
            .into_iter()
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

    /// Why a request to `path` must be refused, or `None` if it may go on.
    pub fn refusal(&self, method: &Method, path: &str, headers: &HeaderMap) -> Option<Response> {
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
        if writes.contains(method) && (method == Method::POST || has_body(headers)) {
            let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
            let protobuf = self.protobuf_paths.contains(&path);
            let accepted = is_json(content_type) || (protobuf && is_protobuf(content_type));
            if !accepted {
                let shown = if content_type.is_empty() { "none".to_string() } else { format!("{content_type:?}") };
                // (`path` is one of ours there: the message stays short whatever was requested.)
                let message = match protobuf {
                    true => format!(
                        "{method} {path} needs Content-Type: application/json or application/x-protobuf (got {shown})"
                    ),
                    false => format!("{method} needs Content-Type: application/json (got {shown})"),
                };
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

/// Whether an HTTP/1.1 request has a body: it has one exactly when it says how it is framed
/// (a `Transfer-Encoding`, or a `Content-Length` other than 0).
fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers.get_all(header::CONTENT_LENGTH).iter().any(|v| v.as_bytes().trim_ascii() != b"0")
}

fn is_protobuf(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/x-protobuf" || essence == "application/protobuf"
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
    // A request in absolute form (`GET http://evil.example/ HTTP/1.1`) names its host in the
    // target, which HTTP says wins over `Host`: it must be this machine too.
    if let Some(authority) = request.uri().authority().filter(|a| !guard.allows(a.as_str())) {
        let message = format!("the request's target names {:?}, not this machine", authority.as_str());
        return refuse(StatusCode::FORBIDDEN, message, json!({ "allowed_hosts": guard.hosts }));
    }
    match guard.refusal(request.method(), request.uri().path(), request.headers()) {
        Some(refusal) => refusal,
        None => next.run(request).await,
    }
}

/// `frame-ancestors 'none'`: no page may frame this one (CSP Level 2; `X-Frame-Options` for older
/// browsers).
const NO_FRAMING: &str = "frame-ancestors 'none'";

/// Middleware: every answer says it may not be framed. A `Content-Security-Policy` the route sent
/// keeps its directives and gains `frame-ancestors` (one header, not two: browsers enforce every
/// policy they get, but a reader should find one), unless it names its own.
pub async fn deny_framing(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    let policies: Vec<HeaderValue> = headers.get_all(header::CONTENT_SECURITY_POLICY).iter().cloned().collect();
    let names_framing = |p: &HeaderValue| p.to_str().is_ok_and(|p| p.to_ascii_lowercase().contains("frame-ancestors"));
    if policies.iter().any(names_framing) {
        return response;
    }
    let first = policies.first().and_then(|p| p.to_str().ok()).map(|p| p.trim().trim_end_matches(';').trim_end());
    let merged = match first {
        Some(policy) if !policy.is_empty() => format!("{policy}; {NO_FRAMING}"),
        _ => NO_FRAMING.to_string(), // none, empty, or not text: ours instead
    };
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_str(&merged).unwrap_or(HeaderValue::from_static(NO_FRAMING)),
    );
    for other in policies.into_iter().skip(1) {
        headers.append(header::CONTENT_SECURITY_POLICY, other);
    }
    response
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
        guard.refusal(&method, "/api/events", &headers(pairs)).map(|r| r.status())
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
    fn loopback_passes_others_are_refused() {
        let guard = LocalGuard::new(&[]);
        for host in ["localhost:8000", "127.0.0.1", "[::1]:3000", "LOCALHOST."] {
            assert_eq!(status(&guard, Method::GET, &[("host", host)]), None, "{host}");
        }
        // The compose service names too: only a container answers them (GATI_CONTAINER_HOSTS).
        for host in [
            "evil.example",
            "evil.example:8000",
            "127.0.0.1.evil.example",
            "localhost.evil",
            "",
            "backend:8000",
            "dashboard",
            "mcp-server:8080",
        ] {
            assert_eq!(status(&guard, Method::GET, &[("host", host)]), Some(StatusCode::FORBIDDEN), "{host}");
        }
        assert_eq!(status(&guard, Method::GET, &[]), Some(StatusCode::FORBIDDEN));
        let published = LocalGuard::new(&["gati.lan:8000".into(), " Traces.Example ".into()]);
        assert_eq!(status(&published, Method::GET, &[("host", "gati.lan")]), None);
        assert_eq!(status(&published, Method::GET, &[("host", "traces.example:80")]), None);
        let container = LocalGuard::new(&["backend".into()]);
        assert_eq!(status(&container, Method::GET, &[("host", "backend:8000")]), None);
        let origin = ("origin", "http://backend:8000");
        assert_eq!(status(&container, Method::GET, &[("host", "localhost"), origin]), None);
        assert_eq!(status(&container, Method::GET, &[("host", "dashboard:3000")]), Some(StatusCode::FORBIDDEN));
        assert_eq!(status(&guard, Method::GET, &[("host", "localhost"), origin]), Some(StatusCode::FORBIDDEN));
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
        assert_eq!(status(&guard, Method::PUT, &[host, ("content-type", "application/merge-patch+json")]), None);
    }

    #[test]
    fn protobuf_is_taken_only_where_the_service_says_and_origins_still_count() {
        let guard = LocalGuard::new(&[]).accept_protobuf_at("/v1/traces");
        let host = ("host", "127.0.0.1:4318");
        let at = |path: &str, pairs: &[(&'static str, &str)]| {
            guard.refusal(&Method::POST, path, &headers(pairs)).map(|r| r.status())
        };
        // An OpenTelemetry exporter: no Origin, a protobuf body.
        for protobuf in ["application/x-protobuf", "application/protobuf", "Application/X-Protobuf; proto=x"] {
            assert_eq!(at("/v1/traces", &[host, ("content-type", protobuf)]), None, "{protobuf}");
            let elsewhere = at("/api/events", &[host, ("content-type", protobuf)]);
            assert_eq!(elsewhere, Some(StatusCode::UNSUPPORTED_MEDIA_TYPE), "{protobuf}");
            let under = at("/v1/traces/x", &[host, ("content-type", protobuf)]);
            assert_eq!(under, Some(StatusCode::UNSUPPORTED_MEDIA_TYPE), "{protobuf}");
        }
        assert_eq!(at("/v1/traces", &[host, ("content-type", "application/json")]), None);
        for other in ["text/plain", "application/x-www-form-urlencoded", ""] {
            assert_eq!(at("/v1/traces", &[host, ("content-type", other)]), Some(StatusCode::UNSUPPORTED_MEDIA_TYPE));
        }
        // A page on another site stays refused, whatever it sends.
        let foreign = ("origin", "http://evil.example");
        let refused = at("/v1/traces", &[host, ("content-type", "application/x-protobuf"), foreign]);
        assert_eq!(refused, Some(StatusCode::FORBIDDEN));
        // And a guard that names no path takes no protobuf.
        let plain = LocalGuard::new(&[]);
        let refused =
            plain.refusal(&Method::POST, "/v1/traces", &headers(&[host, ("content-type", "application/x-protobuf")]));
        assert_eq!(refused.map(|r| r.status()), Some(StatusCode::UNSUPPORTED_MEDIA_TYPE));
    }

    #[test]
    fn a_write_without_a_body_needs_no_content_type_unless_it_is_a_post() {
        let guard = LocalGuard::new(&[]);
        let host = ("host", "127.0.0.1:8080");
        // How an MCP client closes its session: `DELETE /mcp`, a session id and no body.
        for method in [Method::DELETE, Method::PUT, Method::PATCH] {
            assert_eq!(status(&guard, method.clone(), &[host]), None, "{method}");
            assert_eq!(status(&guard, method.clone(), &[host, ("content-length", "0")]), None, "{method}");
            for body in [("content-length", "2"), ("transfer-encoding", "chunked")] {
                let refused = status(&guard, method.clone(), &[host, body]);
                assert_eq!(refused, Some(StatusCode::UNSUPPORTED_MEDIA_TYPE), "{method} {body:?}");
                let refused = status(&guard, method.clone(), &[host, body, ("content-type", "text/plain")]);
                assert_eq!(refused, Some(StatusCode::UNSUPPORTED_MEDIA_TYPE), "{method} {body:?}");
            }
        }
        assert_eq!(status(&guard, Method::POST, &[host]), Some(StatusCode::UNSUPPORTED_MEDIA_TYPE));
        assert_eq!(
            status(&guard, Method::POST, &[host, ("content-length", "0")]),
            Some(StatusCode::UNSUPPORTED_MEDIA_TYPE)
        );
        // Still no cross-site DELETE, body or not.
        let foreign = ("origin", "http://evil.example");
        assert_eq!(status(&guard, Method::DELETE, &[host, foreign]), Some(StatusCode::FORBIDDEN));
    }

    async fn framed(policies: &[&'static str]) -> (Vec<String>, Vec<String>) {
        let mut response = Response::new(Body::empty());
        for policy in policies {
            response.headers_mut().append(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(policy));
        }
        let response = deny_framing(response).await;
        let all = |name| response.headers().get_all(name).iter().map(|v| v.to_str().unwrap().to_string()).collect();
        (all(header::X_FRAME_OPTIONS), all(header::CONTENT_SECURITY_POLICY))
    }

    #[tokio::test]
    async fn no_answer_may_be_framed_and_a_policy_of_its_own_is_kept() {
        let deny = vec!["DENY".to_string()];
        assert_eq!(framed(&[]).await, (deny.clone(), vec!["frame-ancestors 'none'".into()]));
        assert_eq!(
            framed(&["default-src 'self'; img-src data:;"]).await,
            (deny.clone(), vec!["default-src 'self'; img-src data:; frame-ancestors 'none'".into()])
        );
        assert_eq!(framed(&[""]).await.1, ["frame-ancestors 'none'"]);
        // A route that names its own frame-ancestors knows best; a second policy stays second.
        assert_eq!(framed(&["frame-ancestors 'self'"]).await.1, ["frame-ancestors 'self'"]);
        assert_eq!(
            framed(&["default-src 'self'", "script-src 'self'"]).await.1,
            ["default-src 'self'; frame-ancestors 'none'", "script-src 'self'"]
        );
    }
}
