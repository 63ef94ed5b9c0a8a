//! What a client POSTs to `/mcp`, checked before rmcp reads it: one JSON-RPC message of at most
//! [`MAX_MESSAGE_BYTES`], nested at most [`JSON_DEPTH`] levels. Anything else is answered here,
//! as JSON-RPC says (HTTP 400, an error object with `id` null unless the message had a usable
//! one): `-32700` for what is not JSON, `-32600` for what is no message rmcp reads. rmcp alone
//! would answer those `415` in text, and would take any depth to serde_json's recursion limit.

use std::pin::Pin;

use axum::{
    body::{Body, Bytes, HttpBody},
    extract::Request,
    http::{Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
    Json,
};
use gati_service::limits::JSON_DEPTH;
use rmcp::model::ClientJsonRpcMessage;
use serde_json::{json, Value};

/// The largest message read: a tool call is a few hundred bytes, an initialize a few KiB.
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;

/// Middleware: a POST to `/mcp` reaches rmcp only as one readable JSON-RPC message.
pub async fn check(request: Request, next: Next) -> Response {
    if request.method() != Method::POST || request.uri().path() != "/mcp" {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match read(body).await {
        Ok(bytes) => bytes,
        Err(refusal) => return *refusal,
    };
    if let Err(refusal) = judge(&bytes) {
        return *refusal;
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// The body, or a refusal once it passes [`MAX_MESSAGE_BYTES`] (never read further).
async fn read(mut body: Body) -> Result<Bytes, Box<Response>> {
    let mut collected = Vec::new();
    loop {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        match frame {
            None => return Ok(collected.into()),
            Some(Err(e)) => {
                let message = format!("the request's body could not be read: {e}");
                return Err(error(StatusCode::BAD_REQUEST, INVALID_REQUEST, Value::Null, message, None));
            }
            Some(Ok(frame)) => {
                let Some(data) = frame.data_ref() else { continue };
                if data.len() > MAX_MESSAGE_BYTES - collected.len() {
                    let message = format!("a message is at most {MAX_MESSAGE_BYTES} bytes");
                    let limit = json!({ "limit_bytes": MAX_MESSAGE_BYTES });
                    return Err(error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        INVALID_REQUEST,
                        Value::Null,
                        message,
                        Some(limit),
                    ));
                }
                collected.extend_from_slice(data);
            }
        }
    }
}

/// Whether `bytes` is a message rmcp reads, or the JSON-RPC error that answers it.
fn judge(bytes: &[u8]) -> Result<(), Box<Response>> {
    let depth = gati_service::json::nesting(bytes);
    if depth > JSON_DEPTH {
        let message = format!("the message nests {depth} levels deep; at most {JSON_DEPTH} are read");
        let limit = json!({ "limit_depth": JSON_DEPTH });
        return Err(error(StatusCode::BAD_REQUEST, INVALID_REQUEST, Value::Null, message, Some(limit)));
    }
    let Err(not_a_message) = serde_json::from_slice::<ClientJsonRpcMessage>(bytes) else { return Ok(()) };
    let value = match serde_json::from_slice::<Value>(bytes) {
        Ok(value) => value,
        Err(e) => {
            let message = format!("Parse error: the body is not JSON ({e})");
            return Err(error(StatusCode::BAD_REQUEST, PARSE_ERROR, Value::Null, message, None));
        }
    };
    // An id is echoed only when it is one JSON-RPC allows and rmcp could have read.
    let id = match &value["id"] {
        id @ Value::String(_) => id.clone(),
        Value::Number(n) if n.is_i64() => Value::Number(n.clone()),
        _ => Value::Null,
    };
    let message = format!(
        "Invalid Request: not a JSON-RPC 2.0 request, notification or response that this server reads \
         ({not_a_message}); an `id` is a string or an integer within 64 bits"
    );
    Err(error(StatusCode::BAD_REQUEST, INVALID_REQUEST, id, message, None))
}

fn error(status: StatusCode, code: i64, id: Value, message: String, data: Option<Value>) -> Box<Response> {
    let mut error = json!({ "code": code, "message": message });
    if let Some(data) = data {
        error["data"] = data;
    }
    Box::new((status, Json(json!({ "jsonrpc": "2.0", "id": id, "error": error }))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn refusal(bytes: &[u8]) -> (StatusCode, Value) {
        let response = judge(bytes).unwrap_err();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn what_is_no_message_gets_a_json_rpc_error() {
        assert!(judge(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).is_ok());
        assert!(judge(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).is_ok());

        let (status, body) = refusal(b"{not json").await;
        assert_eq!(
            (status, &body["error"]["code"], &body["id"]),
            (StatusCode::BAD_REQUEST, &json!(-32700), &Value::Null)
        );
        let (_, body) = refusal(br#"{"jsonrpc":"2.0","id":1e400,"method":"tools/list"}"#).await;
        assert_eq!(body["error"]["code"], -32700, "{body}");
        for (message, id) in [
            (&br#"{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"tools/list"}"#[..], Value::Null),
            (br#"{"jsonrpc":"2.0","id":18446744073709551615,"method":"tools/list"}"#, Value::Null),
            (br#"{"jsonrpc":"2.0","id":"a","params":1}"#, json!("a")),
            (br#"{"jsonrpc":"1.0","id":7,"method":"tools/list"}"#, json!(7)),
            (b"[1, 2]", Value::Null),
            (b"", Value::Null),
        ] {
            let (status, body) = refusal(message).await;
            let code = if message.is_empty() { -32700 } else { -32600 };
            assert_eq!(
                (status, &body["error"]["code"], &body["id"]),
                (StatusCode::BAD_REQUEST, &json!(code), &id),
                "{body}"
            );
            assert_eq!(body["jsonrpc"], "2.0");
        }
    }

    #[tokio::test]
    async fn a_message_deeper_than_json_depth_is_refused_naming_the_limit() {
        let deep = |depth: usize| {
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{"x":{}1{}}}}}"#,
                "[".repeat(depth),
                "]".repeat(depth)
            )
        };
        let (status, body) = refusal(deep(10_000).as_bytes()).await;
        assert_eq!((status, &body["error"]["data"]["limit_depth"]), (StatusCode::BAD_REQUEST, &json!(JSON_DEPTH)));
        assert!(body["error"]["message"].as_str().unwrap().contains("10002 levels deep"), "{body}");
        assert!(judge(deep(JSON_DEPTH - 2).as_bytes()).is_ok());
        assert!(judge(deep(JSON_DEPTH - 1).as_bytes()).is_err());
    }

    #[tokio::test]
    async fn a_body_past_the_limit_is_not_read_further() {
        let refused = read(Body::from(vec![b' '; MAX_MESSAGE_BYTES + 1])).await.unwrap_err();
        assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(read(Body::from(vec![b' '; MAX_MESSAGE_BYTES])).await.unwrap().len(), MAX_MESSAGE_BYTES);
    }
}
