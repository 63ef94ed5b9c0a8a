//! OpenTelemetry's front door: OTLP/HTTP's `POST /v1/traces`, its spans stored as events
//! through the same store as the SDK's batches (backend/API.md, "OpenTelemetry").

use axum::{
    body::Body,
    extract::State,
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde_json::json;

use super::{error, events::read_body, App};
use crate::{
    ingest::BatchError,
    model::ErrorBody,
    otlp::{self, decode::Refusal},
};

/// Where OTLP/HTTP exporters send traces (`OTEL_EXPORTER_OTLP_ENDPOINT` + this path).
pub const PATH: &str = "/v1/traces";

/// How long an exporter is asked to wait before it sends a batch again, when storage is
/// unavailable.
const RETRY_AFTER_SECONDS: u32 = 5;

/// Store an OTLP/HTTP trace export request: each span becomes an event of its trace's run.
///
/// `application/x-protobuf` or `application/json` (OTLP/JSON), optionally `Content-Encoding:
/// gzip`; at most 16 MiB (inflated too) and 10,000 spans. The answer is an
/// `ExportTraceServiceResponse` in the request's encoding, with `partial_success` naming the
/// spans it could not take and why; spans already stored are taken again as no-ops.
#[utoipa::path(post, path = "/v1/traces", tag = "otlp",
    request_body(content(
        (Object = "application/x-protobuf"),
        (Object = "application/json"),
    ), description = "ExportTraceServiceRequest"),
    responses(
        (status = 200, description = "ExportTraceServiceResponse, in the request's encoding"),
        (status = 400, description = "Not an ExportTraceServiceRequest, or not gzip", body = ErrorBody),
        (status = 413, description = "Too many bytes or spans (`limit_bytes`, `limit_spans`)", body = ErrorBody),
        (status = 415, description = "Another Content-Type or Content-Encoding", body = ErrorBody),
        (status = 422, description = "A total the spans would take past what it can hold", body = ErrorBody),
        (status = 503, description = "Storage unavailable: send again after `Retry-After`", body = ErrorBody),
    ))]
pub async fn post_traces(State(app): State<App>, headers: HeaderMap, body: Body) -> Response {
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let body = match read_body(body, declared).await {
        Ok(body) => body,
        Err(received) => return BatchError::too_large(received).into_response(),
    };
    let text = |name| headers.get(name).map(|v| v.to_str().unwrap_or("(not text)").to_string());
    let (content_type, content_encoding) = (text(header::CONTENT_TYPE), text(header::CONTENT_ENCODING));
    let store = app.store;
    // Inflating, decoding and mapping are CPU work in proportion to the body: off the async threads.
    let work = tokio::task::spawn_blocking(move || {
        let (encoding, mapped) = otlp::receive(content_type.as_deref(), content_encoding.as_deref(), &body)?;
        let answer = otlp::decode::response(encoding, mapped.rejected.len(), &mapped.rejection_message());
        let events: Vec<_> = mapped.events.into_iter().map(|m| m.event).collect();
        let stored = if events.is_empty() { Ok((0, 0)) } else { store.ingest(events) };
        Ok::<_, Refusal>((encoding, answer, stored))
    });
    match work.await {
        Ok(Ok((encoding, answer, Ok(_)))) => {
            ([(header::CONTENT_TYPE, encoding.content_type())], answer).into_response()
        }
        Ok(Ok((_, _, Err(e)))) => stored_failure(&e),
        Ok(Err(refusal)) => refused(refusal),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("internal error: {e}")),
    }
}

/// A request refused whole: its status and a JSON message, with the limit it broke.
fn refused(refusal: Refusal) -> Response {
    let status = StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut body = json!({ "error": refusal.error });
    if let Some((name, value)) = refusal.limit {
        body[name] = json!(value);
    }
    (status, Json(body)).into_response()
}

/// A write that failed: refused for what it holds (422), storage unavailable (503 with
/// `Retry-After`: the one answer OTLP exporters retry), or a failure of ours (500).
fn stored_failure(e: &rusqlite::Error) -> Response {
    if let Some(refused) = BatchError::from_store(e) {
        return refused.into_response();
    }
    if !unavailable(e) {
        return error(StatusCode::INTERNAL_SERVER_ERROR, format!("database error: {e}"));
    }
    let mut response = error(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("storage is unavailable ({e}); nothing of the request was stored: send it again later"),
    );
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    response
}

/// Whether a database failure is the storage's state (busy, locked, full, read-only, gone), which
/// passes, rather than something a retry would meet again.
fn unavailable(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode::*;
    matches!(
        e.sqlite_error_code(),
        Some(DatabaseBusy | DatabaseLocked | DiskFull | SystemIoFailure | CannotOpen | ReadOnly | OutOfMemory)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn only_storage_that_is_unavailable_asks_for_a_retry() {
        for code in [rusqlite::ffi::SQLITE_BUSY, rusqlite::ffi::SQLITE_FULL, rusqlite::ffi::SQLITE_IOERR] {
            let answer = stored_failure(&failure(code));
            assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE, "{code}");
            assert_eq!(answer.headers()[header::RETRY_AFTER], "5");
        }
        let answer = stored_failure(&failure(rusqlite::ffi::SQLITE_CONSTRAINT));
        assert_eq!(answer.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!answer.headers().contains_key(header::RETRY_AFTER));
        let too_large = crate::ingest::TotalTooLarge { field: "tokens_in", stored: i64::MAX.into(), added: 1 };
        assert_eq!(stored_failure(&too_large.into()).status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
}
