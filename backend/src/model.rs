//! What the API answers: one type per shape, so that the OpenAPI document is the handlers' own.
//! 0.0.3's fields come first in each; ours follow (see API.md).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// An event as stored, with the metrics read from it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Event {
    pub event_id: String,
    pub run_id: String,
    pub run_name: Option<String>,
    pub agent_name: String,
    pub event_type: String,
    /// RFC 3339, UTC, microseconds.
    pub timestamp: String,
    pub parent_event_id: Option<String>,
    pub previous_event_id: Option<String>,
    #[schema(value_type = Object)]
    pub data: Value,
    /// Every other top-level field the SDK sent (0.0.3's dataclasses repeat `model`, `cost`...).
    #[schema(value_type = Object)]
    pub attributes: Value,
    /// The LLM model the event names.
    pub model: Option<String>,
    pub tokens_in: Option<i64>,
    pub tokens_out: Option<i64>,
    pub total_tokens: Option<i64>,
    pub cost: Option<f64>,
    pub duration_ms: Option<f64>,
    pub error: bool,
}

/// An agent with its totals.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Agent {
    pub name: String,
    /// Always null: agents are created by their events, which describe none.
    pub description: Option<String>,
    /// The time of its earliest event.
    pub created_at: String,
    pub total_runs: i64,
    pub total_events: i64,
    pub total_cost: f64,
    /// Cost per run.
    pub avg_cost: f64,
    pub run_count: i64,
    pub event_count: i64,
    /// Runs without their agent_end yet.
    pub active_runs: i64,
    pub last_activity: Option<String>,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub total_tokens: i64,
    pub total_duration_ms: f64,
    pub error_count: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// No agent_end yet.
    Active,
    /// Its agent_end arrived.
    Completed,
    /// Its latest agent_end reports an error.
    Failed,
}

impl RunStatus {
    pub fn parse(text: &str) -> Option<RunStatus> {
        match text {
            "active" => Some(RunStatus::Active),
            "completed" => Some(RunStatus::Completed),
            "failed" => Some(RunStatus::Failed),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Active => "active",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
        }
    }
}

/// A run with its totals.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Run {
    pub run_id: String,
    pub run_name: Option<String>,
    /// What to call the run: its name, or its id when it has none.
    pub label: String,
    pub agent_name: String,
    pub status: RunStatus,
    /// Always null (0.0.3's field; no SDK sends one).
    pub environment: Option<String>,
    /// Always null (0.0.3's field).
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// Its first event's time (0.0.3's name for `started_at`).
    pub created_at: String,
    pub started_at: String,
    pub last_event_at: Option<String>,
    /// Its latest agent_end's time.
    pub ended_at: Option<String>,
    pub event_count: i64,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub total_tokens: i64,
    pub total_cost: f64,
    /// From its first to its last event, or its longest event's own duration if longer.
    pub total_duration_ms: f64,
    pub error_count: i64,
    /// The session (conversation) it is part of: `/api/sessions/{id}`.
    pub session_id: Option<String>,
}

/// A run with its events in time order.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunDetail {
    #[serde(flatten)]
    pub run: Run,
    pub events: Vec<Event>,
}

/// A session (a conversation: several runs) with the totals of its runs.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Session {
    pub session_id: String,
    /// The agents of its runs, by name.
    pub agent_names: Vec<String>,
    pub run_count: i64,
    pub event_count: i64,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub total_tokens: i64,
    pub total_cost: f64,
    pub error_count: i64,
    /// Its first run's start.
    pub started_at: String,
    /// Its latest event's time.
    pub last_event_at: String,
    /// The status of its latest run.
    pub status: RunStatus,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionPage {
    pub sessions: Vec<Session>,
    pub total: i64,
    pub limit: u32,
    pub offset: u32,
}

/// A run of a session, read as a turn of the conversation: what went in, what came out.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Turn {
    #[serde(flatten)]
    pub run: Run,
    /// The `input` (else `prompt`) of its earliest event that has one, as text (JSON text if it
    /// is not a string), its first 10,000 characters.
    pub input: Option<String>,
    /// The `output` (else `completion`) of its latest event that has one, the same way.
    pub output: Option<String>,
}

/// A session with its totals and a page of its runs, in time order.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionDetail {
    #[serde(flatten)]
    pub session: Session,
    pub runs: Vec<Turn>,
    pub runs_limit: u32,
    pub runs_offset: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunPage {
    pub runs: Vec<Run>,
    pub total: i64,
    pub limit: u32,
    pub offset: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    pub events: Vec<Event>,
    /// How many match, counted up to 1,000.
    pub total: i64,
    /// More than 1,000 match (`total` is then 1,000).
    pub total_capped: bool,
    pub limit: u32,
    pub offset: u32,
}

/// A run's events in time order, as 0.0.3's timeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct Timeline {
    pub run_id: String,
    pub run_name: Option<String>,
    pub agent_name: String,
    pub status: RunStatus,
    pub total_duration_ms: f64,
    pub created_at: String,
    pub events: Vec<Event>,
}

/// The nested execution tree of a run.
#[derive(Debug, Serialize, ToSchema)]
pub struct Trace {
    pub run_name: Option<String>,
    pub agent_name: String,
    pub total_cost: f64,
    pub total_duration_ms: f64,
    pub total_tokens_in: i64,
    pub total_tokens_out: i64,
    pub execution_tree: Vec<TraceNode>,
    /// LangGraph's graph (nodes, edges), from the agent_start's or agent_end's `data`.
    #[schema(value_type = Option<Object>)]
    pub graph_structure: Option<Value>,
    /// LangGraph's execution analysis, from the agent_end's `data`.
    #[schema(value_type = Option<Object>)]
    pub execution_flow: Option<Value>,
    pub run_id: String,
    pub status: RunStatus,
    pub total_tokens: i64,
    pub event_count: i64,
    pub error_count: i64,
    /// How many steps below a root the tree nests at most (`gati_service::limits::TRACE_DEPTH`).
    pub depth_limit: u32,
    /// Some events are deeper than that: each is answered at `depth_limit`, marked.
    pub depth_truncated: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TraceNode {
    pub event_id: String,
    pub event_type: String,
    pub timestamp: String,
    #[schema(value_type = Object)]
    pub data: Value,
    pub parent_event_id: Option<String>,
    pub previous_event_id: Option<String>,
    /// The event's own duration.
    pub latency_ms: Option<f64>,
    pub cost: Option<f64>,
    pub tokens_in: Option<i64>,
    pub tokens_out: Option<i64>,
    pub total_tokens: Option<i64>,
    pub model: Option<String>,
    pub error: bool,
    /// 0 for a root; at most the trace's `depth_limit`.
    pub depth: u32,
    /// The event is deeper than `depth_limit` steps: it is answered at that depth, among the
    /// children of its ancestor one step above (its own children beside it, also marked).
    pub depth_truncated: bool,
    /// This node and everything below it in the run, however deep (a truncated node's
    /// descendants are counted here and shown beside it).
    pub subtree: Subtree,
    #[schema(no_recursion)]
    pub children: Vec<TraceNode>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct Subtree {
    pub events: i64,
    pub cost: f64,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub total_tokens: i64,
    pub errors: i64,
    /// From this node's start to the latest end below it.
    pub duration_ms: f64,
}

/// Our totals.
#[derive(Debug, Serialize, ToSchema)]
pub struct Summary {
    pub agents: i64,
    pub runs: i64,
    pub events: i64,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub total_tokens: i64,
    pub total_cost: f64,
    pub error_count: i64,
    pub total_duration_ms: f64,
    pub version: String,
    pub since: Option<String>,
    pub until: Option<String>,
}

/// 0.0.3's global metrics.
#[derive(Debug, Serialize, ToSchema)]
pub struct MetricsSummary {
    pub total_agents: i64,
    pub total_runs: i64,
    pub total_events: i64,
    pub total_cost: f64,
    pub avg_cost_per_run: f64,
    pub avg_tokens_in_per_run: f64,
    pub avg_tokens_out_per_run: f64,
    pub total_tokens_in: i64,
    pub total_tokens_out: i64,
    pub total_duration_hours: f64,
    pub top_agents_by_cost: Vec<TopAgentByCost>,
    pub top_agents_by_runs: Vec<TopAgentByRuns>,
    pub total_tokens: i64,
    pub error_count: i64,
    pub total_duration_ms: f64,
    pub since: Option<String>,
    pub until: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TopAgentByCost {
    pub agent_name: String,
    pub cost: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TopAgentByRuns {
    pub agent_name: String,
    pub runs: i64,
}

/// 0.0.3's per-agent metrics (averages per run).
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentMetrics {
    pub agent_name: String,
    pub total_runs: i64,
    pub total_events: i64,
    pub total_cost: f64,
    pub avg_cost_per_run: f64,
    pub avg_tokens_in: f64,
    pub avg_tokens_out: f64,
    pub avg_duration_ms: f64,
    pub total_tokens_in: i64,
    pub total_tokens_out: i64,
    pub total_duration_ms: f64,
    pub total_tokens: i64,
    pub error_count: i64,
    pub since: Option<String>,
    pub until: Option<String>,
}

/// One UTC day of cost.
#[derive(Debug, Serialize, ToSchema)]
pub struct CostPoint {
    /// `2026-01-31`.
    pub date: String,
    /// The day's midnight, `2026-01-31T00:00:00Z`.
    pub timestamp: String,
    pub cost: f64,
    pub cumulative_cost: f64,
    pub events: i64,
    /// Runs started that day.
    pub runs: i64,
}

/// One UTC day of tokens.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokensPoint {
    pub date: String,
    pub timestamp: String,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub total_tokens: i64,
    pub cumulative_tokens_in: i64,
    pub cumulative_tokens_out: i64,
    pub cumulative_total_tokens: i64,
}

/// One UTC day of everything, for charts.
#[derive(Debug, Serialize, ToSchema)]
pub struct DayPoint {
    pub date: String,
    pub timestamp: String,
    pub events: i64,
    /// Events that name a model.
    pub llm_calls: i64,
    pub errors: i64,
    /// Runs started that day.
    pub runs: i64,
    pub cost: f64,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub total_tokens: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgentComparison {
    pub agent_name: String,
    pub runs: i64,
    pub cost: f64,
    pub avg_cost_per_run: f64,
    pub total_tokens: i64,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub events: i64,
    pub errors: i64,
}

/// The LLM calls of one model.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelCost {
    pub model: String,
    pub calls: i64,
    pub cost: f64,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub total_tokens: i64,
    /// Over the calls that report a duration; null if none does.
    pub avg_latency_ms: Option<f64>,
    pub errors: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Retention {
    /// Null when retention is off (the default).
    pub days: Option<u32>,
    /// Runs deleted since the backend started.
    pub deleted_runs: u64,
    pub last_swept_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `unhealthy` (with status 503).
    pub status: String,
    pub version: String,
    /// `ok` or `error`.
    pub database: String,
    /// Why the database cannot be used.
    pub error: Option<String>,
    /// Events stored but not yet in the search index (a search takes them in first).
    pub search_pending_events: Option<i64>,
    pub retention: Retention,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Root {
    pub name: String,
    pub version: String,
    pub status: String,
    pub docs: String,
    pub openapi: String,
}

/// What `POST /api/events` answers (`status`, `count`, `failed`: 0.0.3's fields).
#[derive(Debug, Serialize, ToSchema)]
pub struct Ingested {
    pub stored: usize,
    pub duplicates: usize,
    pub status: String,
    pub count: usize,
    pub failed: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgentDeleted {
    pub status: String,
    pub message: String,
    pub agent_name: String,
    pub deleted_runs: i64,
    pub deleted_events: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunDeleted {
    pub status: String,
    pub message: String,
    pub run_id: String,
    pub run_name: Option<String>,
    pub agent_name: String,
    pub deleted_events: i64,
}

/// The body of a rename (0.0.3's `RunUpdateRequest`).
#[derive(Debug, Deserialize, ToSchema)]
pub struct Rename {
    /// 1 to 255 characters.
    pub new_run_name: String,
}

/// Every error: what is wrong, with the value and the fix; some say more (`field`, `index`,
/// `runs`, `limit_bytes`, `allowed_hosts`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
}
