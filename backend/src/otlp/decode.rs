//! OTLP/HTTP trace export requests, decoded with the official types (opentelemetry-proto's
//! prost messages and their OTLP/JSON serde), and their answers encoded like the request.
//!
//! Bodies: `application/x-protobuf` or `application/json`, optionally `Content-Encoding: gzip`,
//! inflated to at most [`MAX_BODY_BYTES`] (a small body that inflates past it is refused, not
//! inflated: zip-bomb safe). At most [`MAX_SPANS`] spans a request.

use std::io::Read;

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;

/// The largest body, compressed or inflated: the native ingest's limit.
pub const MAX_BODY_BYTES: usize = crate::ingest::MAX_BODY_BYTES;
/// The most spans one request may carry: the native batch's limit (an exporter sends 512).
pub const MAX_SPANS: usize = crate::ingest::MAX_EVENTS;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// Why a request is refused as a whole: its HTTP status, a message, and the limit it broke.
#[derive(Debug, PartialEq)]
pub struct Refusal {
    pub status: u16,
    pub error: String,
    /// For a 413: (`limit_bytes` | `limit_spans`, value), as the native ingest names its limits.
    pub limit: Option<(&'static str, usize)>,
}

impl Refusal {
    fn new(status: u16, error: impl Into<String>) -> Self {
        Refusal { status, error: error.into(), limit: None }
    }
    fn too_large(what: &str) -> Self {
        Refusal {
            limit: Some(("limit_bytes", MAX_BODY_BYTES)),
            ..Refusal::new(413, format!("{what} is larger than the limit of {MAX_BODY_BYTES} bytes"))
        }
    }
}

/// The encoding a `Content-Type` names (parameters such as `charset` allowed); 415 otherwise.
pub fn encoding(content_type: Option<&str>) -> Result<Encoding, Refusal> {
    let media = content_type.unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match media.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(Encoding::Protobuf),
        "application/json" => Ok(Encoding::Json),
        _ => Err(Refusal::new(
            415,
            format!(
                "Content-Type {:?} is not OTLP/HTTP: send application/x-protobuf or application/json",
                content_type.unwrap_or("")
            ),
        )),
    }
}

/// The body as sent, inflated when `Content-Encoding` says gzip; 415 for another encoding.
pub fn inflate(content_encoding: Option<&str>, body: &[u8]) -> Result<Vec<u8>, Refusal> {
    if body.len() > MAX_BODY_BYTES {
        return Err(Refusal::too_large(&format!("body of {} bytes", body.len())));
    }
    match content_encoding.map(|e| e.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("identity") => Ok(body.to_vec()),
        Some("gzip") | Some("x-gzip") => {
            let mut inflated = Vec::new();
            // One byte past the limit tells "too large" from "exactly the limit".
            flate2::read::MultiGzDecoder::new(body)
                .take(MAX_BODY_BYTES as u64 + 1)
                .read_to_end(&mut inflated)
                .map_err(|e| Refusal::new(400, format!("body is not valid gzip: {e}")))?;
            if inflated.len() > MAX_BODY_BYTES {
                return Err(Refusal::too_large("inflated body"));
            }
            Ok(inflated)
        }
        Some(other) => {
            Err(Refusal::new(415, format!("Content-Encoding {other:?} is not supported: send gzip or no encoding")))
        }
    }
}

/// An ExportTraceServiceRequest; 400 for a body that is not one, 413 past [`MAX_SPANS`].
pub fn decode(encoding: Encoding, body: &[u8]) -> Result<ExportTraceServiceRequest, Refusal> {
    let request = match encoding {
        // prost bounds message nesting (its recursion limit), serde_json bounds JSON's.
        Encoding::Protobuf => ExportTraceServiceRequest::decode(body)
            .map_err(|e| Refusal::new(400, format!("body is not an OTLP ExportTraceServiceRequest: {e}")))?,
        Encoding::Json => serde_json::from_slice(body)
            .map_err(|e| Refusal::new(400, format!("body is not an OTLP/JSON ExportTraceServiceRequest: {e}")))?,
    };
    let spans: usize = request.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum();
    if spans > MAX_SPANS {
        return Err(Refusal {
            limit: Some(("limit_spans", MAX_SPANS)),
            ..Refusal::new(413, format!("request has {spans} spans; at most {MAX_SPANS} are accepted at once"))
        });
    }
    Ok(request)
}

/// The answer: an ExportTraceServiceResponse in the request's encoding, with `partial_success`
/// when some spans were rejected (OTLP: unset when all were taken).
pub fn response(encoding: Encoding, rejected: usize, why: &str) -> Vec<u8> {
    let partial_success = (rejected > 0).then(|| ExportTracePartialSuccess {
        rejected_spans: i64::try_from(rejected).unwrap_or(i64::MAX),
        error_message: why.to_string(),
    });
    let response = ExportTraceServiceResponse { partial_success };
    match encoding {
        Encoding::Protobuf => response.encode_to_vec(),
        Encoding::Json if response.partial_success.is_none() => b"{}".to_vec(),
        Encoding::Json => serde_json::to_vec(&response).expect("a response is written"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    /// OTLP/JSON as the specification's example writes it, with the 64-bit times as strings in
    /// one span and as numbers in the other, and an int attribute both ways.
    pub const JSON: &str = r#"{"resourceSpans":[{"resource":{"attributes":[
        {"key":"service.name","value":{"stringValue":"json-agent"}}]},
      "scopeSpans":[{"scope":{"name":"manual","version":"1"},"spans":[
        {"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174","parentSpanId":"",
         "name":"root","kind":1,"startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712661000000000",
         "attributes":[{"key":"gen_ai.usage.prompt_tokens","value":{"intValue":"12"}}],
         "status":{"code":2,"message":"boom"}},
        {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b175","parentSpanId":"eee19b7ec3c1b174",
         "name":"child","kind":3,"startTimeUnixNano":1544712660100000000,"endTimeUnixNano":1544712660300000000,
         "attributes":[{"key":"gen_ai.usage.completion_tokens","value":{"intValue":7}},
                       {"key":"x","value":{"arrayValue":{"values":[{"doubleValue":1.5},{"boolValue":true}]}}}],
         "events":[{"timeUnixNano":"1544712660200000000","name":"exception",
                    "attributes":[{"key":"exception.message","value":{"stringValue":"bad"}}]}]}
      ]}]}]}"#;

    #[test]
    fn otlp_json_with_hex_ids_camel_case_and_64_bit_ints_as_strings_or_numbers() {
        let request = decode(Encoding::Json, JSON.as_bytes()).unwrap();
        let spans = &request.resource_spans[0].scope_spans[0].spans;
        assert_eq!(spans[0].trace_id, spans[1].trace_id, "hex is case-insensitive");
        assert_eq!(spans[0].trace_id.len(), 16);
        assert_eq!(spans[0].span_id, spans[1].parent_span_id);
        assert!(spans[0].parent_span_id.is_empty());
        assert_eq!(spans[0].start_time_unix_nano, 1_544_712_660_000_000_000);
        assert_eq!(spans[1].end_time_unix_nano, 1_544_712_660_300_000_000);
        assert_eq!(spans[0].status.as_ref().unwrap().code, 2);
        use opentelemetry_proto::tonic::common::v1::any_value::Value;
        assert_eq!(spans[0].attributes[0].value.as_ref().unwrap().value, Some(Value::IntValue(12)));
        assert_eq!(spans[1].attributes[0].value.as_ref().unwrap().value, Some(Value::IntValue(7)));
        assert_eq!(spans[1].events[0].name, "exception");
    }

    #[test]
    fn protobuf_and_gzip_round_trip_a_real_capture() {
        let body = include_bytes!("fixtures/openinference.pb");
        let plain = decode(Encoding::Protobuf, body).unwrap();
        let inflated = inflate(Some("gzip"), &gzip(body)).unwrap();
        assert_eq!(decode(Encoding::Protobuf, &inflated).unwrap(), plain);
        assert_eq!(inflate(None, body).unwrap(), body);
        assert_eq!(plain.resource_spans[0].scope_spans.iter().map(|s| s.spans.len()).sum::<usize>(), 4);
    }

    #[test]
    fn refusals_say_their_status_and_limit() {
        assert_eq!(encoding(Some("application/json; charset=utf-8")), Ok(Encoding::Json));
        assert_eq!(encoding(Some("Application/X-Protobuf")), Ok(Encoding::Protobuf));
        assert_eq!(encoding(Some("text/plain")).unwrap_err().status, 415);
        assert_eq!(encoding(None).unwrap_err().status, 415);
        assert_eq!(inflate(Some("br"), b"x").unwrap_err().status, 415);
        assert_eq!(inflate(Some("gzip"), b"not gzip").unwrap_err().status, 400);
        assert_eq!(decode(Encoding::Protobuf, b"\xff\xff\xff").unwrap_err().status, 400);
        assert_eq!(decode(Encoding::Json, b"{\"resourceSpans\": 3}").unwrap_err().status, 400);
        assert_eq!(
            decode(Encoding::Json, b"{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"zz\"}]}]}]}")
                .unwrap_err()
                .status,
            400
        );
    }

    #[test]
    fn a_gzip_bomb_is_refused_without_inflating_it_whole() {
        let bomb = gzip(&vec![0u8; MAX_BODY_BYTES + 1]);
        assert!(bomb.len() < 100_000, "{} bytes", bomb.len());
        let refusal = inflate(Some("gzip"), &bomb).unwrap_err();
        assert_eq!((refusal.status, refusal.limit), (413, Some(("limit_bytes", MAX_BODY_BYTES))));
        assert_eq!(inflate(None, &vec![0; MAX_BODY_BYTES + 1]).unwrap_err().status, 413);
    }

    #[test]
    fn too_many_spans_is_a_413_naming_the_limit() {
        use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans { spans: vec![Span::default(); MAX_SPANS + 1], ..Default::default() }],
                ..Default::default()
            }],
        };
        let refusal = decode(Encoding::Protobuf, &request.encode_to_vec()).unwrap_err();
        assert_eq!((refusal.status, refusal.limit), (413, Some(("limit_spans", MAX_SPANS))));
    }

    #[test]
    fn the_answer_is_encoded_like_the_request() {
        assert!(response(Encoding::Protobuf, 0, "").is_empty());
        assert_eq!(response(Encoding::Json, 0, ""), b"{}");
        let proto = ExportTraceServiceResponse::decode(&response(Encoding::Protobuf, 2, "why")[..]).unwrap();
        assert_eq!(proto.partial_success.unwrap().rejected_spans, 2);
        let json: serde_json::Value = serde_json::from_slice(&response(Encoding::Json, 2, "why")).unwrap();
        assert_eq!(json["partialSuccess"]["errorMessage"], "why");
        assert_eq!(
            json["partialSuccess"]["rejectedSpans"]
                .as_i64()
                .or_else(|| json["partialSuccess"]["rejectedSpans"].as_str()?.parse().ok()),
            Some(2)
        );
    }
}
