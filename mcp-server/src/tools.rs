//! The MCP tools. Each one is a GET on the backend's HTTP API; failures become tool errors the
//! assistant can read, never a crash.

use rmcp::{
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig},
    schemars, tool, tool_handler, tool_router, ErrorData, ServerHandler,
};
use serde::Deserialize;

#[derive(Clone)]
pub struct Gati {
    backend: String,
    http: reqwest::Client,
    tool_router: ToolRouter<Self>,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct PageArgs {
    /// How many items to return (1-500, default 50).
    pub limit: Option<u32>,
    /// How many items to skip, for paging.
    pub offset: Option<u32>,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct ListRunsArgs {
    /// Only the runs of this agent (all agents if left out).
    pub agent_name: Option<String>,
    /// Only runs with this name, e.g. `run 3` or a name the agent gave its run.
    pub run_name: Option<String>,
    /// How many runs to return (1-500, default 50).
    pub limit: Option<u32>,
    /// How many runs to skip, for paging.
    pub offset: Option<u32>,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct GetRunArgs {
    /// The run's id, as listed by `list_runs`.
    pub run_id: Option<String>,
    /// Or the run's name, as listed by `list_runs` (give `agent_name` too if names repeat).
    pub run_name: Option<String>,
    /// The agent the named run belongs to.
    pub agent_name: Option<String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct SearchArgs {
    /// Only events of this agent.
    pub agent_name: Option<String>,
    /// Only events of this type, e.g. `llm_call` or `tool_call`.
    pub event_type: Option<String>,
    /// Only events of this run.
    pub run_id: Option<String>,
    /// Only events of the run(s) with this name.
    pub run_name: Option<String>,
    /// Text to find in the event's data (case-insensitive).
    pub query: Option<String>,
    /// How many events to return (1-500, default 50).
    pub limit: Option<u32>,
    /// How many events to skip, for paging.
    pub offset: Option<u32>,
}

#[tool_router]
impl Gati {
    pub fn new(backend: String) -> Gati {
        Gati {
            backend: backend.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "List the agents gati has seen, with their run and event counts, last activity, and \
                          totals: tokens in, out and overall, cost in USD, duration and errors.")]
    async fn list_agents(&self, Parameters(args): Parameters<PageArgs>) -> Result<CallToolResult, ErrorData> {
        // The backend answers 0.0.3's bare array.
        match self.get_json("/api/agents", &page(args.limit, args.offset)).await {
            Ok(agents) => {
                Ok(CallToolResult::success(vec![ContentBlock::text(serde_json::json!({ "agents": agents }).to_string())]))
            }
            Err(error) => Ok(error),
        }
    }

    #[tool(description = "List runs, newest first: each with its id, name (`run_name`, e.g. `run 3`), agent, start, \
                          duration, event count, tokens in, out and overall, cost in USD and errors. Filter by agent \
                          and by run name.")]
    async fn list_runs(&self, Parameters(args): Parameters<ListRunsArgs>) -> Result<CallToolResult, ErrorData> {
        let mut query = page(args.limit, args.offset);
        // An unknown agent is an error (404) rather than no runs.
        let filters = [("agent", args.agent_name), ("name", args.run_name)];
        query.extend(filters.into_iter().filter_map(|(k, v)| Some((k, v?))));
        Ok(self.get("/api/runs", &query).await)
    }

    #[tool(
        description = "Get one run, by id or by name, with its totals (tokens, cost, duration, errors) and all its \
                          events in time order; `parent_event_id` links an event to the one it happened inside."
    )]
    async fn get_run(&self, Parameters(args): Parameters<GetRunArgs>) -> Result<CallToolResult, ErrorData> {
        let path = match (args.run_id, args.run_name, args.agent_name) {
            (Some(id), _, _) => format!("/api/runs/{}", path_segment(&id)),
            (None, Some(name), Some(agent)) => format!("/api/runs/{}/{}", path_segment(&agent), path_segment(&name)),
            (None, Some(name), None) => format!("/api/runs/{}", path_segment(&name)),
            (None, None, _) => {
                return Ok(CallToolResult::error(vec![ContentBlock::text(
                    "give `run_id`, or `run_name` (with `agent_name` if several agents have a run of that name)",
                )]))
            }
        };
        Ok(self.get(&path, &[]).await)
    }

    #[tool(description = "Search events by agent, type, run (id or name) and text in their data, newest first. Each \
                          event has its tokens, cost and duration.")]
    async fn search_events(&self, Parameters(args): Parameters<SearchArgs>) -> Result<CallToolResult, ErrorData> {
        let mut query = page(args.limit, args.offset);
        let filters = [
            ("agent", args.agent_name),
            ("type", args.event_type),
            ("run_id", args.run_id),
            ("run_name", args.run_name),
            ("q", args.query),
        ];
        query.extend(filters.into_iter().filter_map(|(k, v)| Some((k, v?))));
        Ok(self.get("/api/events", &query).await)
    }

    #[tool(
        description = "Totals across gati: agents, runs, events, tokens in, out and overall, cost in USD, duration \
                          and errors; and the same totals per agent, under `by_agent`."
    )]
    async fn get_summary(&self) -> Result<CallToolResult, ErrorData> {
        let mut summary = match self.get_json("/api/summary", &[]).await {
            Ok(summary) => summary,
            Err(error) => return Ok(error),
        };
        match self.get_json("/api/agents", &[("limit", "500".to_string())]).await {
            Ok(agents) => summary["by_agent"] = agents,
            Err(error) => return Ok(error),
        }
        Ok(CallToolResult::success(vec![ContentBlock::text(summary.to_string())]))
    }
}

impl Gati {
    /// The backend's JSON answer as the tool's text, or a tool error saying what went wrong.
    async fn get(&self, path: &str, query: &[(&str, String)]) -> CallToolResult {
        match self.get_text(path, query).await {
            Ok(body) => CallToolResult::success(vec![ContentBlock::text(body)]),
            Err(error) => error,
        }
    }

    async fn get_json(&self, path: &str, query: &[(&str, String)]) -> Result<serde_json::Value, CallToolResult> {
        let body = self.get_text(path, query).await?;
        serde_json::from_str(&body).map_err(|e| {
            CallToolResult::error(vec![ContentBlock::text(format!(
                "the gati backend answered {path} with bad JSON: {e}"
            ))])
        })
    }

    async fn get_text(&self, path: &str, query: &[(&str, String)]) -> Result<String, CallToolResult> {
        let url = format!("{}{path}", self.backend);
        let response = match self.http.get(&url).query(query).send().await {
            Ok(response) => response,
            Err(e) => {
                return Err(CallToolResult::error(vec![ContentBlock::text(format!(
                    "the gati backend at {} is not reachable ({e}); is it running? Start it with `gati start`.",
                    self.backend
                ))]))
            }
        };
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        if status.is_success() {
            return Ok(body);
        }
        let message = match serde_json::from_str::<serde_json::Value>(&body) {
            Ok(v) => match (v["error"].as_str(), v["runs"].as_array()) {
                // A name several runs share: say which runs, so the assistant can pick one.
                (Some(error), Some(runs)) => {
                    let candidates: Vec<String> = runs
                        .iter()
                        .map(|r| format!("{} (agent {}, started {})", r["run_id"], r["agent_name"], r["started_at"]))
                        .collect();
                    format!("{error}: {}", candidates.join(", "))
                }
                (Some(error), None) => error.to_string(),
                _ => body,
            },
            Err(_) => body,
        };
        Err(CallToolResult::error(vec![ContentBlock::text(format!("the gati backend answered {status}: {message}"))]))
    }
}

fn page(limit: Option<u32>, offset: Option<u32>) -> Vec<(&'static str, String)> {
    [("limit", limit), ("offset", offset)].into_iter().filter_map(|(k, v)| Some((k, v?.to_string()))).collect()
}

/// Percent-encodes an id for use as one URL path segment.
fn path_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Gati {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("gati", crate::VERSION))
            .with_instructions(
                "Query what AI agents recorded with gati: agents, their runs (by id or name), events, and totals \
                 of tokens, cost, duration and errors.",
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_one_path_segment() {
        assert_eq!(path_segment("run/1 ?x"), "run%2F1%20%3Fx");
        assert_eq!(path_segment("abc-1_2.3~"), "abc-1_2.3~");
    }
}
