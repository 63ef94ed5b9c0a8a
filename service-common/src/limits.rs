//! Bounds the services agree on, so that what one answers the other can always read.
//!
//! serde_json refuses a document nested deeper than 128 arrays and objects (its recursion
//! limit), and the MCP server reads the backend's answers with it. A run's execution tree nests
//! two levels a step (the node, its `children`), and each node carries its event's `data`, as
//! deep as the client sent it. So the backend nests a trace at most [`TRACE_DEPTH`] steps (an
//! event deeper than that is answered at that depth, marked as such) and refuses, at ingest,
//! event data nested deeper than [`DATA_DEPTH`]: every answer fits in [`JSON_DEPTH`].

/// The deepest step of a run's execution tree that the backend answers nested.
pub const TRACE_DEPTH: usize = 32;

/// The deepest nesting of arrays and objects an event's `data` may have.
pub const DATA_DEPTH: usize = 32;

/// The deepest any answer of a service is nested: within serde_json's limit, with room for the
/// envelope around a trace.
pub const JSON_DEPTH: usize = 2 * TRACE_DEPTH + DATA_DEPTH + 8;

const _: () = assert!(JSON_DEPTH <= 128, "serde_json's recursion limit");
