//! Sessions: the list, and one session read turn by turn.

use std::fmt::Write;

use rmcp::schemars;
use serde::Deserialize;

use super::{count, page_note, plural, usd};

/// `GET /api/sessions`: a page of sessions with their runs' totals, latest activity first.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct SessionList {
    pub sessions: Vec<Session>,
    /// How many sessions match in all.
    pub total: u64,
    pub offset: u64,
}

/// A session (a conversation of several runs) with the totals of its runs.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct Session {
    pub session_id: String,
    /// The agents of its runs.
    pub agent_names: Vec<String>,
    pub run_count: u64,
    pub event_count: u64,
    pub tokens_in: f64,
    pub tokens_out: f64,
    pub total_tokens: f64,
    /// In US dollars.
    pub total_cost: f64,
    pub error_count: u64,
    pub started_at: String,
    pub last_event_at: String,
    /// The status of its latest run.
    pub status: String,
}

/// `GET /api/sessions/{id}`: a session's totals and its runs in time order, as turns.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct SessionDetail {
    #[serde(flatten)]
    pub session: Session,
    pub runs: Vec<Turn>,
    pub runs_offset: u64,
}

/// A run of a session: what went in and what came out.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct Turn {
    pub run_id: String,
    pub run_name: Option<String>,
    pub agent_name: String,
    pub status: String,
    pub started_at: String,
    pub tokens_in: f64,
    pub tokens_out: f64,
    /// In US dollars.
    pub total_cost: f64,
    /// Its earliest event's input (or prompt), as text.
    pub input: Option<String>,
    /// Its latest event's output (or completion), as text.
    pub output: Option<String>,
}

/// At most this many characters of a turn's input or output in a summary; the data has them all.
const SHOWN_CHARS: usize = 300;

impl SessionList {
    pub fn summary(&self, of: &str) -> String {
        if self.total == 0 {
            return format!("No sessions{of}: runs join one when they name a session id.");
        }
        let page = page_note(self.sessions.len(), self.total, self.offset);
        let mut text = format!("{}{of}, latest activity first{page}:\n", plural(self.total as f64, "session"));
        for session in &self.sessions {
            let _ = writeln!(text, "- {}", session.line());
        }
        text
    }
}

impl Session {
    /// `"chat-1" of support-bot: 2 runs, 6 events, 42 tokens (30 in, 12 out), $0.03, 0 errors, from … to …, last run active`
    pub fn line(&self) -> String {
        format!(
            "\"{}\" of {}: {}, {}, {} tokens ({} in, {} out), {}, {}, from {} to {}, last run {}",
            self.session_id,
            self.agent_names.join(", "),
            plural(self.run_count as f64, "run"),
            plural(self.event_count as f64, "event"),
            count(self.total_tokens),
            count(self.tokens_in),
            count(self.tokens_out),
            usd(self.total_cost),
            plural(self.error_count as f64, "error"),
            self.started_at,
            self.last_event_at,
            self.status,
        )
    }
}

impl SessionDetail {
    /// The session, then each run as a turn: its input and output.
    pub fn summary(&self) -> String {
        let mut text = format!("Session {}.\nRuns in time order:\n", self.session.line());
        for (i, turn) in self.runs.iter().enumerate() {
            let number = self.runs_offset + i as u64 + 1;
            let name = turn.run_name.as_deref().unwrap_or(&turn.run_id);
            let _ = writeln!(
                text,
                "{number}. \"{name}\" (run_id {}) of {}, {}, started {}: {} in, {} out, {}",
                turn.run_id,
                turn.agent_name,
                turn.status,
                turn.started_at,
                count(turn.tokens_in),
                count(turn.tokens_out),
                usd(turn.total_cost)
            );
            for (label, said) in [("input", &turn.input), ("output", &turn.output)] {
                if let Some(said) = said {
                    let _ = writeln!(text, "   {label}: {}", shown(said));
                }
            }
        }
        if self.runs.len() as u64 + self.runs_offset < self.session.run_count {
            let _ = writeln!(text, "(more runs: page on with `offset`)");
        }
        text
    }
}

/// Text on one line, cut short if long.
fn shown(text: &str) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(SHOWN_CHARS) {
        Some((end, _)) => format!("{}…", &line[..end]),
        None => line,
    }
}
