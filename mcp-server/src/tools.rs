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
    /// The agent whose runs to list.
    pub agent_name: String,
    /// How many runs to return (1-500, default 50).
    pub limit: Option<u32>,
    /// How many runs to skip, for paging.
    pub offset: Option<u32>,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct GetRunArgs {
    /// The run's id, as listed by `list_runs`.
    pub run_id: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct SearchArgs {
    /// Only events of this agent.
    pub agent_name: Option<String>,
    /// Only events of this type, e.g. `llm_call` or `tool_call`.
    pub event_type: Option<String>,
    /// Only events of this run.
    pub run_id: Option<String>,
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

    #[tool(description = "List the agents gati has seen, with their run and event counts and last activity.")]
    async fn list_agents(&self, Parameters(args): Parameters<PageArgs>) -> Result<CallToolResult, ErrorData> {
        Ok(self.get("/api/agents", &page(args.limit, args.offset)).await)
    }

    #[tool(description = "List one agent's runs, newest first, with start time and event count.")]
    async fn list_runs(&self, Parameters(args): Parameters<ListRunsArgs>) -> Result<CallToolResult, ErrorData> {
        let path = format!("/api/agents/{}/runs", path_segment(&args.agent_name));
        Ok(self.get(&path, &page(args.limit, args.offset)).await)
    }

    #[tool(description = "Get one run with all its events in time order.")]
    async fn get_run(&self, Parameters(args): Parameters<GetRunArgs>) -> Result<CallToolResult, ErrorData> {
        Ok(self.get(&format!("/api/runs/{}", path_segment(&args.run_id)), &[]).await)
    }

    #[tool(description = "Search events by agent, type, run and text in their data, newest first.")]
    async fn search_events(&self, Parameters(args): Parameters<SearchArgs>) -> Result<CallToolResult, ErrorData> {
        let mut query = page(args.limit, args.offset);
        let filters =
            [("agent", args.agent_name), ("type", args.event_type), ("run_id", args.run_id), ("q", args.query)];
        query.extend(filters.into_iter().filter_map(|(k, v)| Some((k, v?))));
        Ok(self.get("/api/events", &query).await)
    }

    #[tool(description = "Totals across gati: agents, runs, events, tokens and cost.")]
    async fn get_summary(&self) -> Result<CallToolResult, ErrorData> {
        Ok(self.get("/api/summary", &[]).await)
    }
}

impl Gati {
    /// The backend's JSON answer as the tool's text, or a tool error saying what went wrong.
    async fn get(&self, path: &str, query: &[(&str, String)]) -> CallToolResult {
        let url = format!("{}{path}", self.backend);
        let response = match self.http.get(&url).query(query).send().await {
            Ok(response) => response,
            Err(e) => {
                return CallToolResult::error(vec![ContentBlock::text(format!(
                    "the gati backend at {} is not reachable ({e}); is it running? Start it with `gati start`.",
                    self.backend
                ))])
            }
        };
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        if status.is_success() {
            return CallToolResult::success(vec![ContentBlock::text(body)]);
        }
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"].as_str().map(String::from))
            .unwrap_or(body);
        CallToolResult::error(vec![ContentBlock::text(format!("the gati backend answered {status}: {message}"))])
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
            .with_instructions("Query what AI agents recorded with gati: agents, their runs, events, totals.")
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
