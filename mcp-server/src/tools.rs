//! The MCP tools: gati 0.0.3's, under its names, and ours. Each asks the backend (backend.rs)
//! and answers a summary in words, then the backend's JSON as structured content (answers/).
//! A failure (backend down, unknown run, bad time) is a tool error the assistant can read,
//! never a crash.
//!
//! The tools that change data (`rename_run`, `delete_run`, `delete_agent`) are offered only
//! when the server is started with writes allowed: the events an assistant reads hold text
//! from anywhere (prompts, tool outputs, web pages), and none of it may talk an assistant into
//! deleting a user's history unless the user chose to allow that.

use rmcp::{
    handler::server::{router::tool::ToolRouter, tool::ToolCallContext, wrapper::Parameters},
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, ServerCapabilities,
        ServerConfig,
    },
    schemars,
    service::RequestContext,
    tool, tool_handler, tool_router, ErrorData, RoleServer, ServerHandler,
};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{
    answers::{
        agents::{AgentList, AgentMetrics, AgentsComparison},
        events::{EventList, EventWithChildren},
        latency::Latency,
        metrics::{CostTimeline, GlobalMetrics, ModelCosts, Summary, TokensTimeline},
        runs::{ExecutionTrace, Run, RunComparison, RunList, RunTimeline},
        schema,
        sessions::{SessionDetail, SessionList},
        view, wrap, Answer,
    },
    backend::{Backend, Failure, Query},
};

type Reply = Result<CallToolResult, Failure>;

#[derive(Clone)]
pub struct Gati {
    backend: Backend,
    tool_router: ToolRouter<Self>,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct PageArgs {
    /// How many to return (1-1000, default 50).
    #[schemars(range(min = 1, max = 1000))]
    #[serde(default, deserialize_with = "limit")]
    pub limit: Option<u32>,
    /// How many to skip, for paging.
    #[serde(default, deserialize_with = "offset")]
    pub offset: Option<u32>,
}

/// A time range; either end may be left open.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct Range {
    /// Only what happened at or after this time, ISO 8601 (e.g. `2026-01-31T00:00:00Z`).
    #[serde(alias = "start_time")]
    pub since: Option<String>,
    /// Only what happened before this time, ISO 8601.
    #[serde(alias = "end_time")]
    pub until: Option<String>,
}

impl Range {
    fn query(self) -> Query {
        Query::default().with("since", self.since).with("until", self.until)
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct ListRunsArgs {
    /// Only the runs of this agent (all agents if left out).
    pub agent_name: Option<String>,
    /// Only runs with this name, e.g. `run 3` or a name the agent gave its run.
    pub run_name: Option<String>,
    /// Only runs in this state: `active`, `completed` (its agent_end arrived) or `failed`.
    pub status: Option<String>,
    #[serde(flatten)]
    pub range: Range,
    #[serde(flatten)]
    pub page: PageArgs,
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
pub struct AgentArgs {
    /// The agent's name, as listed by `list_agents`.
    pub agent_name: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct AgentStatsArgs {
    /// The agent's name, as listed by `list_agents`.
    pub agent_name: String,
    #[serde(flatten)]
    pub range: Range,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct EventArgs {
    /// The event's id, as listed by the other tools (`event_id`).
    pub event_id: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct RunArgs {
    /// The agent the run belongs to.
    pub agent_name: String,
    /// The run's name (e.g. `run 1`), or its run_id.
    pub run_name: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct CompareRunsArgs {
    /// The agent the runs belong to.
    pub agent_name: String,
    /// The runs to compare, by name (e.g. `["run 1", "run 2"]`) or run_id.
    #[schemars(length(min = 1, max = 20))]
    pub run_names: Vec<String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct SearchArgs {
    /// Only events of this agent.
    pub agent_name: Option<String>,
    /// Only events of this type, e.g. `llm_call`, `tool_call`, `agent_start`, `agent_end`.
    pub event_type: Option<String>,
    /// Only events of this run.
    pub run_id: Option<String>,
    /// Only events of the run(s) with this name.
    pub run_name: Option<String>,
    /// Text to find in the event's data (case-insensitive).
    pub query: Option<String>,
    #[serde(flatten)]
    pub range: Range,
    #[serde(flatten)]
    pub page: PageArgs,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct EventDetailsArgs {
    /// The agent the run belongs to.
    pub agent_name: String,
    /// The run's name (e.g. `run 1`), or its run_id.
    pub run_name: String,
    /// Only events of this type, e.g. `llm_call` or `tool_call` (all if left out).
    pub event_type: Option<String>,
    #[serde(flatten)]
    pub page: PageArgs,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct CostBreakdownArgs {
    /// Only this agent's LLM calls (all agents if left out).
    pub agent_name: Option<String>,
    #[serde(flatten)]
    pub range: Range,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct RangeArgs {
    #[serde(flatten)]
    pub range: Range,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct TimelineArgs {
    /// How many UTC days back, today included (1-365, default 30), when no range is given.
    #[schemars(range(min = 1, max = 365))]
    #[serde(default, deserialize_with = "days")]
    pub days: Option<u32>,
    /// Only this agent's (all agents if left out).
    pub agent_name: Option<String>,
    #[serde(flatten)]
    pub range: Range,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct ListSessionsArgs {
    /// Only sessions with a run of this agent (all agents if left out).
    pub agent_name: Option<String>,
    #[serde(flatten)]
    pub range: Range,
    #[serde(flatten)]
    pub page: PageArgs,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct SessionArgs {
    /// The session's id, as `list_sessions` lists it (`session_id`).
    pub session_id: String,
    #[serde(flatten)]
    pub page: PageArgs,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct LatencyArgs {
    /// What the percentiles are per: `agent` (its LLM and tool calls; the default), `model` or `tool`.
    pub by: Option<LatencyBy>,
    #[serde(flatten)]
    pub timeline: TimelineArgs,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LatencyBy {
    Agent,
    Model,
    Tool,
}

impl LatencyBy {
    fn as_str(&self) -> &'static str {
        match self {
            LatencyBy::Agent => "agent",
            LatencyBy::Model => "model",
            LatencyBy::Tool => "tool",
        }
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct RenameRunArgs {
    /// The agent the run belongs to.
    pub agent_name: String,
    /// The run's current name (e.g. `run 1`), or its run_id.
    pub run_name: String,
    /// The name it gets; no other run of the agent may have it.
    pub new_run_name: String,
}

/// A whole number argument within the range its schema declares, or an error that names the
/// argument and the range (serde's own, "expected u32", names neither): a number past the range
/// never reaches the backend.
fn whole_number<'de, D: serde::Deserializer<'de>>(
    arguments: D,
    name: &str,
    range: std::ops::RangeInclusive<u32>,
) -> Result<Option<u32>, D::Error> {
    let value = Option::<Value>::deserialize(arguments)?;
    let Some(value) = value.filter(|v| !v.is_null()) else { return Ok(None) };
    let shown: String = value.to_string().chars().take(40).collect();
    match value.as_u64().and_then(|n| u32::try_from(n).ok()).filter(|n| range.contains(n)) {
        Some(n) => Ok(Some(n)),
        None => Err(serde::de::Error::custom(format!(
            "`{name}` must be a whole number from {} to {}, got {shown}",
            range.start(),
            range.end()
        ))),
    }
}

fn limit<'de, D: serde::Deserializer<'de>>(arguments: D) -> Result<Option<u32>, D::Error> {
    whole_number(arguments, "limit", 1..=1000)
}

fn offset<'de, D: serde::Deserializer<'de>>(arguments: D) -> Result<Option<u32>, D::Error> {
    whole_number(arguments, "offset", 0..=u32::MAX)
}

fn days<'de, D: serde::Deserializer<'de>>(arguments: D) -> Result<Option<u32>, D::Error> {
    whole_number(arguments, "days", 1..=365)
}

/// `" of support-bot"`, or nothing.
fn of(agent: Option<&str>) -> String {
    agent.map(|a| format!(" of {a}")).unwrap_or_default()
}

#[tool_router(router = read_tools)]
impl Gati {
    #[tool(
        description = "List the agents gati has seen, with their run and event counts, last activity, and totals: \
                       tokens in, out and overall, cost in USD, duration and errors.",
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = schema::<AgentList>()
    )]
    async fn list_agents(&self, Parameters(args): Parameters<PageArgs>) -> Reply {
        let offset = args.offset.unwrap_or(0);
        let mut data = self.backend.agents(page(args)).await?;
        data["offset"] = offset.into();
        let list: AgentList = view(&data, "agents")?;
        Ok(Answer { summary: list.summary(), data }.into())
    }

    #[tool(
        description = "One agent's statistics: runs, events, cost, tokens in and out and duration, in all and \
                       on average per run; optionally over a time range only.",
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = schema::<AgentMetrics>()
    )]
    async fn get_agent_stats(&self, Parameters(args): Parameters<AgentStatsArgs>) -> Reply {
        let data = self.backend.agent_metrics(&args.agent_name, args.range.query()).await?;
        let metrics: AgentMetrics = view(&data, "the agent")?;
        Ok(Answer { summary: metrics.summary(), data }.into())
    }

    #[tool(
        description = "Every agent side by side, costliest first: runs, cost, average cost per run, tokens; \
                       optionally over a time range only.",
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = schema::<AgentsComparison>()
    )]
    async fn compare_agents(&self, Parameters(args): Parameters<RangeArgs>) -> Reply {
        let data = wrap("agents", self.backend.agents_comparison(args.range.query()).await?);
        let comparison: AgentsComparison = view(&data, "agents")?;
        Ok(Answer { summary: comparison.summary(), data }.into())
    }

    #[tool(
        description = "List runs, newest first: each with its id, name (`run_name`, e.g. `run 3`), agent, start, \
                       event count, tokens in, out and overall, cost in USD, duration and errors. Filter by agent, \
                       run name, status and time range.",
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = schema::<RunList>()
    )]
    async fn list_runs(&self, Parameters(args): Parameters<ListRunsArgs>) -> Reply {
        let of = of(args.agent_name.as_deref());
        let query = args
            .range
            .query()
            .with("agent", args.agent_name)
            .with("name", args.run_name)
            .with("status", args.status)
            .with("limit", args.page.limit)
            .with("offset", args.page.offset);
        let data = self.backend.runs(query).await?;
        let list: RunList = view(&data, "runs")?;
        Ok(Answer { summary: list.summary(&of), data }.into())
    }

    #[tool(
        description = "Get one run, by id or by name, with its totals (tokens, cost, duration, errors) and all its \
                       events in time order; `parent_event_id` links an event to the one it happened inside.",
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = schema::<Run>()
    )]
    async fn get_run(&self, Parameters(args): Parameters<GetRunArgs>) -> Reply {
        let data = match (args.run_id, args.run_name, args.agent_name) {
            (Some(id), _, _) => self.backend.run(&id).await?,
            (None, Some(name), Some(agent)) => self.backend.agent_run(&agent, &name).await?,
            (None, Some(name), None) => self.backend.run(&name).await?,
            (None, None, _) => {
                return Err("give `run_id`, or `run_name` (with `agent_name` if several agents have a run of that \
                            name)"
                    .into())
            }
        };
        let run: Run = view(&data, "the run")?;
        Ok(Answer { summary: run.summary(), data }.into())
    }

    #[tool(
        description = "A run's details by agent and run name: status, start, event count, tokens in and out, cost \
                       and duration (its events: get_run_timeline, get_execution_trace, get_event_details).",
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = schema::<Run>()
    )]
    async fn get_run_details(&self, Parameters(args): Parameters<RunArgs>) -> Reply {
        let mut data = self.backend.agent_run(&args.agent_name, &args.run_name).await?;
        if let Some(run) = data.as_object_mut() {
            run.remove("events");
        }
        let run: Run = view(&data, "the run")?;
        Ok(Answer { summary: format!("Run {}.\n", run.line()), data }.into())
    }

    #[tool(
        description = "A run's events in time order, one line each: type, model or tool, tokens, cost, duration \
                       and errors; each event's data in full in the structured answer.",
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = schema::<RunTimeline>()
    )]
    async fn get_run_timeline(&self, Parameters(args): Parameters<RunArgs>) -> Reply {
        let data = self.backend.run_timeline(&args.agent_name, &args.run_name).await?;
        let timeline: RunTimeline = view(&data, "the run's timeline")?;
        Ok(Answer { summary: timeline.summary(), data }.into())
    }

    #[tool(
        description = "A run's execution trace: its events as a tree, each under the one it happened inside, with \
                       latency, cost and tokens per node, the run's totals, and LangGraph's graph when there is one.",
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = schema::<ExecutionTrace>()
    )]
    async fn get_execution_trace(&self, Parameters(args): Parameters<RunArgs>) -> Reply {
        let data = self.backend.run_trace(&args.agent_name, &args.run_name).await?;
        let trace: ExecutionTrace = view(&data, "the run's trace")?;
        Ok(Answer { summary: trace.summary()?, data }.into())
    }

    #[tool(
        description = "Compare runs of one agent side by side: events, tokens in and out, cost, duration and \
                       errors of each, and which was most and least expensive.",
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = schema::<RunComparison>()
    )]
    async fn compare_runs(&self, Parameters(args): Parameters<CompareRunsArgs>) -> Reply {
        if args.run_names.is_empty() {
            return Err("give at least one run in `run_names`, e.g. [\"run 1\", \"run 2\"]".into());
        }
        let (mut runs, mut missing) = (Vec::new(), Vec::new());
        for name in &args.run_names {
            match self.backend.agent_run(&args.agent_name, name).await {
                Ok(mut run) => {
                    if let Some(run) = run.as_object_mut() {
                        run.remove("events");
                    }
                    runs.push(run)
                }
                Err(error) => missing.push(json!({ "run_name": name, "error": error })),
            }
        }
        if runs.is_empty() {
            let reasons: Vec<String> = missing.iter().filter_map(|m| m["error"].as_str().map(String::from)).collect();
            return Err(format!("none of these runs was found: {}", reasons.join("; ")));
        }
        let data = json!({ "agent_name": args.agent_name, "runs": runs, "missing": missing });
        let comparison: RunComparison = view(&data, "the runs")?;
        Ok(Answer { summary: comparison.summary(), data }.into())
    }

    #[tool(
        description = "Search events by agent, type, run (id or name), text in their data and time range \
                       (`since`/`until`, ISO 8601), newest first. Each event has its tokens, cost and duration.",
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = schema::<EventList>()
    )]
    async fn search_events(&self, Parameters(args): Parameters<SearchArgs>) -> Reply {
        let mut what = String::new();
        for (label, value) in [
            (" of type", &args.event_type),
            (" of agent", &args.agent_name),
            (" in run", &args.run_name),
            (" in run_id", &args.run_id),
            (" matching", &args.query),
            (" since", &args.range.since),
            (" until", &args.range.until),
        ] {
            if let Some(value) = value {
                what.push_str(&format!("{label} {value:?}"));
            }
        }
        let query = args
            .range
            .query()
            .with("agent", args.agent_name)
            .with("type", args.event_type)
            .with("run_id", args.run_id)
            .with("run_name", args.run_name)
            .with("q", args.query)
            .with("limit", args.page.limit)
            .with("offset", args.page.offset);
        let data = self.backend.events(query).await?;
        let list: EventList = view(&data, "events")?;
        Ok(Answer { summary: list.summary(&what), data }.into())
    }

    #[tool(
        description = "Everything a run's events recorded, in full: the system prompt, prompt, completion, model, \
                       tokens and cost of each LLM call; the input, output and error of each tool call; the data of \
                       every other event. Optionally only events of one type.",
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = schema::<EventList>()
    )]
    async fn get_event_details(&self, Parameters(args): Parameters<EventDetailsArgs>) -> Reply {
        let search = |run: (&'static str, String)| {
            Query::default()
                .with("agent", Some(&args.agent_name))
                .with(run.0, Some(run.1))
                .with("type", args.event_type.as_ref())
                .with("limit", args.page.limit)
                .with("offset", args.page.offset)
        };
        let mut data = self.backend.events(search(("run_name", args.run_name.clone()))).await?;
        if view::<EventList>(&data, "events")?.total == 0 {
            // No such run is an error, not an empty answer; and a run_id finds the run too.
            let run: Run = view(&self.backend.agent_run(&args.agent_name, &args.run_name).await?, "the run")?;
            if run.run_id == args.run_name {
                data = self.backend.events(search(("run_id", run.run_id.clone()))).await?;
            }
        }
        let list: EventList = view(&data, "events")?;
        let mut what = format!(" in run \"{}\" of {}", args.run_name, args.agent_name);
        if let Some(kind) = &args.event_type {
            what = format!(" of type {kind:?}{what}");
        }
        Ok(Answer { summary: list.details(&what), data }.into())
    }

    #[tool(
        description = "One event in full, by its event_id (as the other tools list it): everything it recorded \
                       (prompts and completion, tool input and output, errors), and the events that happened \
                       inside it, one line each.",
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = schema::<EventWithChildren>()
    )]
    async fn get_event(&self, Parameters(args): Parameters<EventArgs>) -> Reply {
        let mut data = self.backend.event(&args.event_id).await?;
        data["children"] = self.backend.event_children(&args.event_id).await?;
        let event: EventWithChildren = view(&data, "the event")?;
        Ok(Answer { summary: event.summary(), data }.into())
    }

    #[tool(
        description = "Totals across gati: agents, runs, events, tokens in, out and overall, cost in USD, duration \
                       and errors; and the same totals per agent, under `by_agent`.",
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = schema::<Summary>()
    )]
    async fn get_summary(&self) -> Reply {
        let mut data = self.backend.summary(Query::default()).await?;
        let agents = self.backend.agents(Query::default().with("limit", Some(500))).await?;
        data["by_agent"] = view::<Value>(&agents["agents"], "agents")?;
        let summary: Summary = view(&data, "the totals")?;
        Ok(Answer { summary: summary.summary(), data }.into())
    }

    #[tool(
        description = "gati 0.0.3's global metrics: agents, runs, events, total and per-run cost and tokens, hours \
                       of runs, and the top five agents by cost and by runs; optionally over a time range only.",
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = schema::<GlobalMetrics>()
    )]
    async fn get_global_metrics(&self, Parameters(args): Parameters<RangeArgs>) -> Reply {
        let data = self.backend.metrics_summary(args.range.query()).await?;
        let metrics: GlobalMetrics = view(&data, "the metrics")?;
        Ok(Answer { summary: metrics.summary(), data }.into())
    }

    #[tool(
        description = "Cost by LLM model: calls, cost in USD, tokens in and out and average latency of each \
                       model, and the total; for one agent or all, optionally over a time range only.",
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = schema::<ModelCosts>()
    )]
    async fn get_cost_breakdown(&self, Parameters(args): Parameters<CostBreakdownArgs>) -> Reply {
        let of = of(args.agent_name.as_deref());
        let data = wrap("models", self.backend.models(args.range.query().with("agent", args.agent_name)).await?);
        let models: ModelCosts = view(&data, "cost per model")?;
        Ok(Answer { summary: models.summary(&of), data }.into())
    }

    #[tool(
        description = "Cost per day (UTC, by when the events happened) and the running total, over the last \
                       `days` days or a time range, for one agent or all; days without cost count as zero.",
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = schema::<CostTimeline>()
    )]
    async fn get_cost_timeline(&self, Parameters(args): Parameters<TimelineArgs>) -> Reply {
        let query = args.range.query().with("days", args.days).with("agent", args.agent_name);
        let data = wrap("days", self.backend.cost_timeline(query).await?);
        let timeline: CostTimeline = view(&data, "cost per day")?;
        Ok(Answer { summary: timeline.summary(), data }.into())
    }

    #[tool(
        description = "Tokens in and out per day (UTC, by when the events happened) and their running totals, \
                       over the last `days` days or a time range, for one agent or all; days without tokens count as zero.",
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = schema::<TokensTimeline>()
    )]
    async fn get_tokens_timeline(&self, Parameters(args): Parameters<TimelineArgs>) -> Reply {
        let query = args.range.query().with("days", args.days).with("agent", args.agent_name);
        let data = wrap("days", self.backend.tokens_timeline(query).await?);
        let timeline: TokensTimeline = view(&data, "tokens per day")?;
        Ok(Answer { summary: timeline.summary(), data }.into())
    }

    #[tool(
        description = "List sessions (conversations: the runs that name the same session id), latest activity \
                       first: each with its agents, runs, events, tokens in and out, cost in USD, errors, first and \
                       last time, and its latest run's status. Filter by agent and time range.",
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = schema::<SessionList>()
    )]
    async fn list_sessions(&self, Parameters(args): Parameters<ListSessionsArgs>) -> Reply {
        let of = of(args.agent_name.as_deref());
        let query = args
            .range
            .query()
            .with("agent", args.agent_name)
            .with("limit", args.page.limit)
            .with("offset", args.page.offset);
        let data = self.backend.sessions(query).await?;
        let list: SessionList = view(&data, "sessions")?;
        Ok(Answer { summary: list.summary(&of), data }.into())
    }

    #[tool(
        description = "One session (a conversation) turn by turn: its totals, then its runs in time order, each \
                       with its id, name, status, start, tokens, cost, what went in (its first input) and what came \
                       out (its last output).",
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = schema::<SessionDetail>()
    )]
    async fn get_session(&self, Parameters(args): Parameters<SessionArgs>) -> Reply {
        // 50 turns unless asked, as for every list here: the backend's own default for a session's
        // runs is 1000, whose texts could fill an assistant's whole context.
        let turns = PageArgs { limit: args.page.limit.or(Some(50)), offset: args.page.offset };
        let data = self.backend.session(&args.session_id, page(turns)).await?;
        let session: SessionDetail = view(&data, "the session")?;
        Ok(Answer { summary: session.summary(), data }.into())
    }

    #[tool(
        description = "Latency percentiles (p50, p95, p99 in ms) of LLM and tool calls per agent, per model or per \
                       tool, over the last `days` days or a time range and per UTC day, for one agent or all.",
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = schema::<Latency>()
    )]
    async fn get_latency(&self, Parameters(args): Parameters<LatencyArgs>) -> Reply {
        let t = args.timeline;
        let of = of(t.agent_name.as_deref());
        let by = args.by.as_ref().map(LatencyBy::as_str);
        let query = t.range.query().with("days", t.days).with("agent", t.agent_name).with("by", by);
        let data = self.backend.latency(query).await?;
        let latency: Latency = view(&data, "latency")?;
        Ok(Answer { summary: latency.summary(&of), data }.into())
    }
}

/// The backend's answer to a write: its message, or what was asked.
fn done(data: &Value, otherwise: String) -> String {
    data["message"].as_str().map_or(otherwise, String::from)
}

#[tool_router(router = write_tools)]
impl Gati {
    #[tool(
        description = "Rename a run of an agent; its events and totals stay with it.",
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn rename_run(&self, Parameters(args): Parameters<RenameRunArgs>) -> Reply {
        let data = self.backend.rename_run(&args.agent_name, &args.run_name, &args.new_run_name).await?;
        let summary = format!("Renamed run \"{}\" of {} to \"{}\".", args.run_name, args.agent_name, args.new_run_name);
        Ok(Answer { summary, data: object(data) }.into())
    }

    #[tool(
        description = "Delete a run of an agent with all its events, for good; the agent's totals drop with it.",
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn delete_run(&self, Parameters(args): Parameters<RunArgs>) -> Reply {
        let data = self.backend.delete_run(&args.agent_name, &args.run_name).await?;
        let summary = done(&data, format!("Deleted run \"{}\" of {} and its events.", args.run_name, args.agent_name));
        Ok(Answer { summary, data: object(data) }.into())
    }

    #[tool(
        description = "Delete an agent with all its runs and events, for good.",
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn delete_agent(&self, Parameters(args): Parameters<AgentArgs>) -> Reply {
        let data = self.backend.delete_agent(&args.agent_name).await?;
        let summary = done(&data, format!("Deleted agent {} with its runs and events.", args.agent_name));
        Ok(Answer { summary, data: object(data) }.into())
    }
}

/// Structured content is an object; a backend answer that is not one goes under `result`.
fn object(data: Value) -> Value {
    if data.is_object() {
        data
    } else {
        wrap("result", data)
    }
}

fn page(args: PageArgs) -> Query {
    Query::default().with("limit", args.limit).with("offset", args.offset)
}

impl Gati {
    /// The read-only tools, and with `writes` the ones that rename and delete.
    pub fn new(backend: &str, writes: bool) -> Gati {
        let mut tool_router = Self::read_tools();
        if writes {
            tool_router.merge(Self::write_tools());
        }
        Gati { backend: Backend::new(backend), tool_router }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Gati {
    /// As the macro's, but a write tool asked for while writes are off says how to allow them.
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if !self.tool_router.has_route(&request.name) && Self::write_tools().has_route(&request.name) {
            let refusal = format!(
                "`{}` changes data, and this gati MCP server only reads: start it with GATI_MCP_ALLOW_WRITES=1 to \
                 allow renaming and deleting runs and agents",
                request.name
            );
            return Ok(CallToolResult::error(vec![ContentBlock::text(refusal)]).into());
        }
        self.tool_router.call(ToolCallContext::new(self, request, context)).await
    }

    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("gati", crate::VERSION))
            .with_instructions(
                "Query what AI agents recorded with gati: agents, their runs (by id or name), sessions (conversations \
                 of several runs) turn by turn, timelines, execution traces and events in full, and totals of tokens, cost, duration and errors, per agent, per model \
                 and per day. Each tool answers a summary first, then the data.",
            )
    }
}

#[cfg(test)]
mod tests {
    use gati_service::limits::{DATA_DEPTH, JSON_DEPTH, TRACE_DEPTH};

    use super::*;

    /// A backend whose every run's trace is `trace`, on a loopback port: its URL.
    async fn backend_answering(trace: String) -> String {
        let app = axum::Router::new().route(
            "/api/runs/{agent}/{run}/trace",
            axum::routing::get(move || async move { ([("content-type", "application/json")], trace) }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    /// A run's trace as the backend answers it: a chain of `steps` events, each inside the one
    /// before, the last one's data nested `data_depth` levels; written as text, without recursion.
    fn chain(steps: usize, data_depth: usize) -> String {
        let mut text = String::from(
            r#"{"run_id":"r","run_name":"deep","agent_name":"a","total_cost":0.5,"total_duration_ms":10,"total_tokens_in":1,"total_tokens_out":2,"execution_tree":["#,
        );
        for i in 0..steps {
            let data = if i + 1 == steps {
                format!("{}1{}", r#"{"x":"#.repeat(data_depth), "}".repeat(data_depth))
            } else {
                "{}".into()
            };
            text.push_str(&format!(
                r#"{{"event_id":"e{i}","event_type":"step","timestamp":"2026-01-31T12:00:00Z","data":{data},"subtree":{{"events":{},"cost":0,"total_tokens":0,"duration_ms":1}},"children":["#,
                steps - i
            ));
        }
        text.push_str(&"]}".repeat(steps));
        text.push_str("]}");
        text
    }

    async fn trace(backend: &str) -> Reply {
        let tools = Gati::new(backend, false);
        tools.get_execution_trace(Parameters(RunArgs { agent_name: "a".into(), run_name: "deep".into() })).await
    }

    #[test]
    fn numbers_past_an_arguments_range_are_refused_by_name() {
        let list = |arguments: Value| serde_json::from_value::<ListRunsArgs>(arguments).map_err(|e| e.to_string());
        let args = list(json!({"limit": 1000, "offset": 4294967295u32, "agent_name": "a"})).unwrap();
        assert_eq!((args.page.limit, args.page.offset), (Some(1000), Some(u32::MAX)));
        let args = list(json!({"limit": null})).unwrap();
        assert_eq!((args.page.limit, args.page.offset), (None, None));
        for (arguments, refused) in [
            (json!({"limit": 0}), "`limit` must be a whole number from 1 to 1000, got 0"),
            (json!({"limit": 1001}), "got 1001"),
            (json!({"limit": 1e20}), "`limit` must be a whole number from 1 to 1000, got 1e+20"),
            (json!({"limit": 2.5}), "got 2.5"),
            (json!({"limit": "10"}), "got \"10\""),
            (json!({"offset": -1}), "`offset` must be a whole number from 0 to 4294967295, got -1"),
            (json!({"offset": 4294967296u64}), "got 4294967296"),
        ] {
            let error = list(arguments.clone()).err().expect("refused");
            assert!(error.contains(refused), "{arguments}: {error}");
        }
        let timeline = |arguments: Value| serde_json::from_value::<TimelineArgs>(arguments).map_err(|e| e.to_string());
        assert_eq!(timeline(json!({"days": 365})).unwrap().days, Some(365));
        assert!(timeline(json!({"days": 366})).err().unwrap().contains("`days` must be a whole number from 1 to 365"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_trace_at_the_shared_depth_bounds_is_answered_in_full() {
        let body = chain(TRACE_DEPTH, DATA_DEPTH);
        assert!(gati_service::json::nesting(body.as_bytes()) <= JSON_DEPTH);
        let backend = backend_answering(body).await;
        // On a worker thread of its own, as rmcp calls a tool (a 2 MiB stack).
        let answer = tokio::spawn(async move { trace(&backend).await }).await.unwrap().unwrap();
        let summary = answer.content[0].as_text().unwrap().text.clone();
        let lines: Vec<&str> = summary.lines().collect();
        assert_eq!(lines.len(), 1 + TRACE_DEPTH, "{summary}");
        assert!(lines[1].starts_with("- 2026-01-31T12:00:00Z step"), "{summary}");
        let last = lines[TRACE_DEPTH];
        assert!(last.starts_with(&format!("{}- ", "  ".repeat(TRACE_DEPTH - 1))), "{last}");
        assert!(lines[1].contains(&format!("[with what happened inside it: {TRACE_DEPTH} events")), "{summary}");
        let data = answer.structured_content.unwrap();
        let mut node = &data["execution_tree"][0];
        for _ in 1..TRACE_DEPTH {
            node = &node["children"][0];
        }
        assert_eq!(node["event_id"], format!("e{}", TRACE_DEPTH - 1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_trace_deeper_than_any_answer_is_a_tool_error_naming_the_limit() {
        let backend = backend_answering(chain(10_000, 0)).await;
        for _ in 0..2 {
            let backend = backend.clone();
            let error = tokio::spawn(async move { trace(&backend).await }).await.unwrap().unwrap_err();
            assert!(
                error.contains("20002 levels deep")
                    && error.contains(&format!("the {JSON_DEPTH} this MCP server reads")),
                "{error}"
            );
            assert!(error.contains("JSON_DEPTH") && error.len() < 1000, "{error}");
        }
        // Just past the bound is refused the same way; at it, read.
        let depth_of = |steps| gati_service::json::nesting(chain(steps, 0).as_bytes());
        let over = (1..).find(|&steps| depth_of(steps) > JSON_DEPTH).unwrap();
        let backend = backend_answering(chain(over, 0)).await;
        assert!(trace(&backend).await.unwrap_err().contains("deeper than the"));
        let backend = backend_answering(chain(over - 1, 0)).await;
        assert!(trace(&backend).await.is_ok());
    }
}
