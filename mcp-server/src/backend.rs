//! The gati backend's HTTP API as the tools call it: one method per route, answering the
//! backend's JSON or a sentence the assistant can read. The backend computes every total,
//! average and time bucket; nothing here adds anything up.

use gati_service::limits::{DATA_DEPTH, JSON_DEPTH, TRACE_DEPTH};
use reqwest::Method;
use serde_json::Value;

/// What went wrong, in words for the assistant: the tool's error text.
pub type Failure = String;

#[derive(Clone)]
pub struct Backend {
    url: String,
    http: reqwest::Client,
}

/// Query parameters; the ones left out are not sent.
#[derive(Default)]
pub struct Query(Vec<(&'static str, String)>);

impl Query {
    pub fn with(mut self, key: &'static str, value: Option<impl ToString>) -> Query {
        if let Some(value) = value {
            self.0.push((key, value.to_string()));
        }
        self
    }
}

impl Backend {
    pub fn new(url: &str) -> Backend {
        Backend { url: url.trim_end_matches('/').to_string(), http: reqwest::Client::new() }
    }

    /// The agents and how many there are in all (gati 0.0.3's bare array, with the count in
    /// `X-Total-Count`), as `{"agents": [...], "total": N}`.
    pub async fn agents(&self, query: Query) -> Result<Value, Failure> {
        let (agents, total) = self.list("/api/agents", query).await?;
        Ok(serde_json::json!({ "agents": agents, "total": total }))
    }

    pub async fn agent_metrics(&self, agent: &str, query: Query) -> Result<Value, Failure> {
        self.get(&format!("/api/agents/{}/metrics", segment(agent)), query).await
    }

    /// `agent`, `name`, `status`, `since`, `until`, `limit`, `offset`.
    pub async fn runs(&self, query: Query) -> Result<Value, Failure> {
        self.get("/api/runs", query).await
    }

    /// A run by id, or by a name only one run has.
    pub async fn run(&self, run: &str) -> Result<Value, Failure> {
        self.get(&format!("/api/runs/{}", segment(run)), Query::default()).await
    }

    /// An agent's run by name (or id), with its events.
    pub async fn agent_run(&self, agent: &str, run: &str) -> Result<Value, Failure> {
        self.get(&run_path(agent, run, ""), Query::default()).await
    }

    pub async fn run_timeline(&self, agent: &str, run: &str) -> Result<Value, Failure> {
        self.get(&run_path(agent, run, "/timeline"), Query::default()).await
    }

    pub async fn run_trace(&self, agent: &str, run: &str) -> Result<Value, Failure> {
        self.get(&run_path(agent, run, "/trace"), Query::default()).await
    }

    pub async fn rename_run(&self, agent: &str, run: &str, new_name: &str) -> Result<Value, Failure> {
        let body = serde_json::json!({ "new_run_name": new_name });
        self.write(Method::PATCH, &run_path(agent, run, ""), Some(body)).await
    }

    pub async fn delete_run(&self, agent: &str, run: &str) -> Result<Value, Failure> {
        self.write(Method::DELETE, &run_path(agent, run, ""), None).await
    }

    pub async fn delete_agent(&self, agent: &str) -> Result<Value, Failure> {
        self.write(Method::DELETE, &format!("/api/agents/{}", segment(agent)), None).await
    }

    /// `agent`, `type`, `run_id`, `run_name`, `q`, `since`, `until`, `limit`, `offset`.
    /// Sessions with their runs' totals, latest activity first.
    pub async fn sessions(&self, query: Query) -> Result<Value, Failure> {
        self.get("/api/sessions", query).await
    }

    /// A session with its runs in time order, each with its input and output.
    pub async fn session(&self, id: &str, query: Query) -> Result<Value, Failure> {
        self.get(&format!("/api/sessions/{}", segment(id)), query).await
    }

    pub async fn events(&self, query: Query) -> Result<Value, Failure> {
        self.get("/api/events", query).await
    }

    pub async fn event(&self, event_id: &str) -> Result<Value, Failure> {
        self.get(&format!("/api/events/{}", segment(event_id)), Query::default()).await
    }

    /// The events that happened inside this one, in time order.
    pub async fn event_children(&self, event_id: &str) -> Result<Value, Failure> {
        self.get(&format!("/api/events/{}/children", segment(event_id)), Query::default()).await
    }

    pub async fn summary(&self, query: Query) -> Result<Value, Failure> {
        self.get("/api/summary", query).await
    }

    pub async fn metrics_summary(&self, query: Query) -> Result<Value, Failure> {
        self.get("/api/metrics/summary", query).await
    }

    pub async fn cost_timeline(&self, query: Query) -> Result<Value, Failure> {
        self.get("/api/metrics/cost-timeline", query).await
    }

    pub async fn tokens_timeline(&self, query: Query) -> Result<Value, Failure> {
        self.get("/api/metrics/tokens-timeline", query).await
    }

    pub async fn agents_comparison(&self, query: Query) -> Result<Value, Failure> {
        self.get("/api/metrics/agents-comparison", query).await
    }

    /// LLM calls, cost, tokens and latency per model.
    pub async fn models(&self, query: Query) -> Result<Value, Failure> {
        self.get("/api/metrics/models", query).await
    }

    pub async fn latency(&self, query: Query) -> Result<Value, Failure> {
        self.get("/api/metrics/latency", query).await
    }

    async fn get(&self, path: &str, query: Query) -> Result<Value, Failure> {
        self.send(Method::GET, path, query, None).await.map(|(answer, _)| answer)
    }

    /// A bare array and the number of items in all, from `X-Total-Count` (`null` without it).
    async fn list(&self, path: &str, query: Query) -> Result<(Value, Value), Failure> {
        let (answer, total) = self.send(Method::GET, path, query, None).await?;
        Ok((answer, total.map_or(Value::Null, Value::from)))
    }

    async fn write(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, Failure> {
        self.send(method, path, Query::default(), body).await.map(|(answer, _)| answer)
    }

    /// The JSON answer and its `X-Total-Count`.
    async fn send(
        &self,
        method: Method,
        path: &str,
        query: Query,
        body: Option<Value>,
    ) -> Result<(Value, Option<u64>), Failure> {
        let url = reqwest::Url::parse(&format!("{}{path}", self.url))
            .map_err(|e| format!("BACKEND_URL={:?} with {path} is not a URL: {e}", self.url))?;
        if !url.path().ends_with(path) {
            // A URL resolves `.` and `..` segments (`%2E` too): no path can carry such a name.
            return Err(format!(
                "{path} names a run, agent or event `.` or `..`, which no URL path can carry; ask for it by its id"
            ));
        }
        let mut request = self.http.request(method.clone(), url).query(&query.0);
        if method != Method::GET {
            // The backend takes writes only as JSON (its local guard).
            request = request.json(&body.unwrap_or_else(|| serde_json::json!({})));
        }
        let response = request.send().await.map_err(|e| {
            format!(
                "the gati backend at {} is not reachable ({e}); is it running? Start it with `gati start`.",
                self.url
            )
        })?;
        let status = response.status();
        let total = response.headers().get("x-total-count").and_then(|v| v.to_str().ok()?.parse().ok());
        let body = response.bytes().await.unwrap_or_default();
        let parsed = read(&body);
        if status.is_success() {
            return parsed
                .map(|answer| (answer, total))
                .map_err(|e| format!("the gati backend answered {method} {path} with {e}"));
        }
        let message = match parsed {
            Ok(answer) => error_message(&answer),
            Err(_) => None,
        };
        let message = message.unwrap_or_else(|| shown(&String::from_utf8_lossy(&body)));
        Err(format!("the gati backend answered {status}: {message}"))
    }
}

/// A backend's answer as JSON, if it nests no deeper than [`JSON_DEPTH`]: measured before it
/// is parsed, so that no answer takes this server to serde_json's recursion limit or deeper.
fn read(body: &[u8]) -> Result<Value, String> {
    let depth = gati_service::json::nesting(body);
    if depth > JSON_DEPTH {
        return Err(format!(
            "JSON nested {depth} levels deep, deeper than the {JSON_DEPTH} this MCP server reads \
             (gati_service::limits::JSON_DEPTH: a trace nests at most {TRACE_DEPTH} steps, event data \
             {DATA_DEPTH} levels); run a backend of the same gati version as this server"
        ));
    }
    serde_json::from_slice(body).map_err(|e| format!("bad JSON: {e}"))
}

/// At most the first 500 characters of an answer that is not JSON, for an error message.
fn shown(text: &str) -> String {
    let mut chars = text.trim().chars();
    let head: String = chars.by_ref().take(500).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

/// The `error` of a backend's error answer; for a name several runs share, which runs, so the
/// assistant can pick one.
fn error_message(answer: &Value) -> Option<String> {
    let error = answer["error"].as_str().or(answer["detail"].as_str())?;
    let Some(runs) = answer["runs"].as_array() else { return Some(error.to_string()) };
    let candidates: Vec<String> = runs
        .iter()
        .map(|r| format!("{} (agent {}, started {})", r["run_id"], r["agent_name"], r["started_at"]))
        .collect();
    Some(format!("{error}: {}", candidates.join(", ")))
}

fn run_path(agent: &str, run: &str, rest: &str) -> String {
    format!("/api/runs/{}/{}{rest}", segment(agent), segment(run))
}

/// Percent-encodes a name or id as one URL path segment.
fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_one_path_segment() {
        assert_eq!(segment("run/1 ?x"), "run%2F1%20%3Fx");
        assert_eq!(segment("abc-1_2.3~"), "abc-1_2.3~");
        assert_eq!(run_path("my agent", "run 1", "/trace"), "/api/runs/my%20agent/run%201/trace");
    }

    #[tokio::test]
    async fn a_name_of_dots_is_refused_not_resolved_to_another_route() {
        // Port 1: nothing may be asked at all.
        let backend = Backend::new("http://127.0.0.1:1");
        for (agent, run) in [("a", ".."), ("..", "agents"), (".", "x")] {
            let error = backend.run_trace(agent, run).await.unwrap_err();
            assert!(error.contains("`.` or `..`"), "{error}");
        }
        assert!(backend.run_trace("a", "..b").await.unwrap_err().contains("not reachable"));
    }

    #[test]
    fn answers_are_read_within_the_shared_depth() {
        let deep = format!("{}{}", "[".repeat(JSON_DEPTH + 1), "]".repeat(JSON_DEPTH + 1));
        let error = read(deep.as_bytes()).unwrap_err();
        assert!(error.contains(&format!("{} levels deep", JSON_DEPTH + 1)) && error.contains("JSON_DEPTH"), "{error}");
        let at = format!("{}{}", "[".repeat(JSON_DEPTH), "]".repeat(JSON_DEPTH));
        assert!(read(at.as_bytes()).is_ok());
        assert!(read(b"{oops").unwrap_err().starts_with("bad JSON"));
        assert_eq!(shown(&"x".repeat(2000)).chars().count(), 501);
    }

    #[test]
    fn a_shared_run_name_lists_the_runs_to_choose_from() {
        let answer = json!({"error": "2 runs have this name", "runs": [
            {"run_id": "a", "agent_name": "x", "started_at": "2026-01-31T12:00:00Z"},
            {"run_id": "b", "agent_name": "y", "started_at": null}]});
        assert_eq!(
            error_message(&answer).unwrap(),
            r#"2 runs have this name: "a" (agent "x", started "2026-01-31T12:00:00Z"), "b" (agent "y", started null)"#
        );
        assert_eq!(error_message(&json!({"detail": "Run 'x' not found"})).unwrap(), "Run 'x' not found");
        assert_eq!(error_message(&json!({"other": 1})), None);
    }
}
