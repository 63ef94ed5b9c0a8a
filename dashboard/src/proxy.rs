//! The dashboard's `/api` and `/health`: forwarded to the backend as they came, or refused.
//!
//! The backend must see the very route the dashboard matched. A URL parser resolves dot
//! segments (`..`, and `%2e%2e`, which WHATWG URLs count as dots) and reads `\` as `/`, so
//! `DELETE /api/runs/x\..\..\agents\y` would reach `DELETE /api/agents/y`: a path is forwarded
//! with every byte a parser could reinterpret percent-encoded, and one with a dot segment is
//! refused (400). What arrives percent-encoded stays so (`%2F` in a name is part of the name).

use axum::{
    body::Body,
    extract::{Request, State},
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde_json::json;

/// The largest write body forwarded: a rename is a few bytes.
pub const MAX_WRITE_BYTES: usize = 64 * 1024;

/// The backend's answer headers the UI reads: the body's type, and the size of a bare-array
/// list (0.0.3's shape), which the pagers need.
const FORWARDED_HEADERS: [&str; 2] = ["content-type", "x-total-count"];

#[derive(Clone)]
pub struct Backend {
    url: String,
    http: reqwest::Client,
}

impl Backend {
    pub fn new(url: &str) -> anyhow::Result<Backend> {
        Ok(Backend {
            url: url.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder().timeout(std::time::Duration::from_secs(15)).build()?,
        })
    }
}

/// Forwards a request to the backend: any read, and the writes routed here. The local guard
/// has already refused foreign hosts, origins and non-JSON writes; the backend checks its own.
pub async fn proxy(State(backend): State<Backend>, request: Request) -> Response {
    let path = match forwarded_path(request.uri().path()) {
        Ok(path) => path,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let query = request.uri().query().map(|q| format!("?{q}")).unwrap_or_default();
    let url = format!("{}{path}{query}", backend.url);
    let method = reqwest::Method::from_bytes(request.method().as_str().as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut forwarded = backend.http.request(method.clone(), &url);
    if method != reqwest::Method::GET {
        let content_type = request.headers().get(header::CONTENT_TYPE).cloned();
        let body = match axum::body::to_bytes(request.into_body(), MAX_WRITE_BYTES).await {
            Ok(body) => body,
            Err(_) => {
                let message = format!("a write through the dashboard is at most {MAX_WRITE_BYTES} bytes");
                let body = json!({ "error": message, "limit_bytes": MAX_WRITE_BYTES });
                return (StatusCode::PAYLOAD_TOO_LARGE, Json(body)).into_response();
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
            let headers: Vec<(&str, HeaderValue)> = FORWARDED_HEADERS
                .iter()
                .filter_map(|name| {
                    Some((*name, HeaderValue::from_bytes(upstream.headers().get(*name)?.as_bytes()).ok()?))
                })
                .collect();
            match upstream.bytes().await {
                Ok(body) => {
                    let mut response = (status, Body::from(body)).into_response();
                    for (name, value) in headers {
                        response.headers_mut().insert(name, value);
                    }
                    response
                }
                Err(e) => unreachable_backend(&backend.url, e),
            }
        }
        Err(e) => unreachable_backend(&backend.url, e),
    }
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn unreachable_backend(url: &str, e: reqwest::Error) -> Response {
    error(StatusCode::BAD_GATEWAY, format!("the gati backend at {url} is not reachable: {e}"))
}

/// The path to ask the backend, meaning for it what `path` meant here, or why there is none.
fn forwarded_path(path: &str) -> Result<String, String> {
    let mut forwarded = String::with_capacity(path.len());
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            forwarded.push('/');
        }
        if is_dot_segment(segment) {
            let shown: String = path.chars().take(200).collect();
            return Err(format!(
                "the path {shown:?} has a `.` or `..` segment (`%2e` counts as a dot): the dashboard forwards a \
                 path only as it came, never resolved to another route"
            ));
        }
        for &b in segment.as_bytes() {
            if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@%".contains(&b) {
                forwarded.push(b as char);
            } else {
                forwarded.push_str(&format!("%{b:02X}"));
            }
        }
    }
    Ok(forwarded)
}

/// `.` or `..`, as a WHATWG URL parser sees a segment (`%2e` and `%2E` are dots to it).
fn is_dot_segment(segment: &str) -> bool {
    let lower = segment.to_ascii_lowercase();
    let dots = lower.replace("%2e", ".");
    dots == "." || dots == ".."
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_reaches_the_backend_as_it_was_matched() {
        for path in ["/api/summary", "/api/runs/a%2Fb", "/api/runs/support-bot/run%201", "/health", "/api/runs/x.y/..z"]
        {
            assert_eq!(forwarded_path(path).unwrap(), path);
        }
        // What a URL parser would rewrite is encoded: `\` (read as `/`), quotes, braces.
        assert_eq!(forwarded_path(r"/api/runs/x\..\..\agents\y").unwrap(), "/api/runs/x%5C..%5C..%5Cagents%5Cy");
        assert_eq!(forwarded_path("/api/runs/{a}\"b`").unwrap(), "/api/runs/%7Ba%7D%22b%60");
        for path in ["/api/../health", "/api/%2e%2e/openapi.json", "/api/runs/%2E/run-1", "/api/runs/x/.%2E", "/api/."]
        {
            let refused = forwarded_path(path).unwrap_err();
            assert!(refused.contains("`..` segment") && refused.contains(path), "{refused}");
        }
    }

    #[test]
    fn what_is_forwarded_parses_to_the_same_path() {
        for path in [r"/api/runs/x\..\..\agents\y", "/api/runs/{a}\"b`<>^|", "/api/runs/a%2F..%2Fb", "/api/x;y=z@:!"] {
            let forwarded = forwarded_path(path).unwrap();
            let url = reqwest::Url::parse(&format!("http://backend:8000{forwarded}")).unwrap();
            assert_eq!(url.path(), forwarded, "{path}");
        }
    }
}
