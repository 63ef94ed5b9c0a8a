//! Events: a batch stored, searched, one event and its children.

use axum::{
    body::{Body, HttpBody},
    extract::{Path, Query, State},
    http::{header, HeaderMap},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{
    blocking, found, given,
    params::{PageQuery, Paged, RangeQuery, TimeRange, DEFAULT_LIMIT},
    respond, App,
};
use crate::{
    ingest::{self, BatchError},
    model::{ErrorBody, Event, EventPage, Ingested},
    store::EventFilter,
};

/// Store a batch of events: all of them, or none.
///
/// `{"events": [...]}` (what the SDKs send) or a bare array; at most 10,000 events and 16 MiB.
/// Events already stored (same `event_id`) are counted as duplicates.
#[utoipa::path(post, path = "/api/events", tag = "events", request_body(content = Object), responses(
    (status = 200, body = Ingested),
    (status = 400, description = "Not JSON", body = ErrorBody),
    (status = 413, description = "Too many events or bytes (`limit_events`, `limit_bytes`)", body = ErrorBody),
    (status = 422, description = "A bad event (`field`, `index`)", body = ErrorBody),
))]
pub async fn post_events(State(app): State<App>, headers: HeaderMap, body: Body) -> Response {
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let body = match read_body(body, declared).await {
        Ok(body) => body,
        Err(received) => return BatchError::too_large(received).into_response(),
    };
    let events = match ingest::parse_batch(&body) {
        Ok(events) => events,
        Err(e) => return e.into_response(),
    };
    let received = events.len();
    // The response is sent only after the transaction has committed.
    let store = app.store;
    respond(blocking(move || store.ingest(events)).await.map(|(stored, duplicates)| Ingested {
        stored,
        duplicates,
        status: "success".into(),
        count: received,
        failed: 0,
    }))
}

/// How much of an oversized body is read and thrown away before the connection is dropped.
const DRAIN_BYTES: usize = 4 * ingest::MAX_BODY_BYTES;

/// The whole body, or how many bytes it had (at least) when it is over the limit. It is read
/// here, not by an extractor, so that one too large is refused with JSON naming the limit, and
/// read to its end (up to `DRAIN_BYTES`): a client answered while still sending sees a broken
/// connection instead of the 413.
pub(super) async fn read_body(mut body: Body, declared: Option<u64>) -> Result<Vec<u8>, String> {
    let limit = ingest::MAX_BODY_BYTES;
    let mut kept = Vec::new();
    let mut received = 0usize;
    let too_large = declared.is_some_and(|length| length > limit as u64);
    while received <= DRAIN_BYTES {
        let frame = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await;
        let Some(Ok(frame)) = frame else { break };
        let Some(data) = frame.data_ref() else { continue };
        received += data.len();
        if !too_large && received <= limit {
            kept.extend_from_slice(data);
        }
    }
    match declared {
        Some(length) if too_large => Err(length.to_string()),
        _ if received > DRAIN_BYTES => Err(format!("more than {DRAIN_BYTES}")),
        _ if received > limit => Err(received.to_string()),
        _ => Ok(kept),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Only this agent's events.
    agent: Option<String>,
    /// Only events of this type, e.g. `llm_call`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    event_type: Option<String>,
    /// Only this run's events.
    run_id: Option<String>,
    /// Only the events of runs of this name.
    run_name: Option<String>,
    /// Text the event's `data` or other fields contain (case-insensitive), starting at a word.
    q: Option<String>,
}

/// Search events, newest first.
#[utoipa::path(get, path = "/api/events", tag = "events", params(SearchQuery, RangeQuery, PageQuery), responses(
    (status = 200, body = EventPage),
    (status = 400, description = "A bad parameter", body = ErrorBody),
))]
pub async fn search_events(
    State(app): State<App>,
    Query(q): Query<SearchQuery>,
    Paged(page): Paged<DEFAULT_LIMIT>,
    TimeRange(range): TimeRange,
) -> Response {
    let filter = EventFilter {
        agent: given(&q.agent),
        event_type: given(&q.event_type),
        run_id: given(&q.run_id),
        run_name: given(&q.run_name),
        text: q.q.filter(|t| !t.trim().is_empty()),
        range,
    };
    let store = app.store;
    respond(blocking(move || store.search(&filter, page)).await.map(|(events, count)| EventPage {
        events,
        total: count.total,
        total_capped: count.capped,
        limit: page.limit,
        offset: page.offset,
    }))
}

/// One event.
#[utoipa::path(get, path = "/api/events/{event_id}", tag = "events",
    params(("event_id" = String, Path)),
    responses((status = 200, body = Event), (status = 404, body = ErrorBody)))]
pub async fn get_event(State(app): State<App>, Path(event_id): Path<String>) -> Response {
    let missing = format!("no event with id {event_id:?}");
    let store = app.store;
    found(blocking(move || store.event(&event_id)).await, missing)
}

/// The events of its run whose parent it is, in time order.
#[utoipa::path(get, path = "/api/events/{event_id}/children", tag = "events",
    params(("event_id" = String, Path)),
    responses((status = 200, body = [Event]), (status = 404, body = ErrorBody)))]
pub async fn event_children(State(app): State<App>, Path(event_id): Path<String>) -> Response {
    let missing = format!("no event with id {event_id:?}");
    let store = app.store;
    found(blocking(move || store.children(&event_id)).await, missing)
}
