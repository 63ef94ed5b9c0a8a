//! OpenTelemetry's front door: OTLP/HTTP trace export requests, decoded with the official
//! types ([`decode`]) and mapped to gati's runs and events ([`mapping`]); costs from the price
//! table the SDK reads too ([`prices`]). The route is `api/otlp.rs`; backend/API.md documents
//! the mapping.

pub mod decode;
pub mod mapping;
pub mod prices;

/// A request to `/v1/traces`, from its headers and body to its spans mapped (or a refusal of
/// the whole request: 400, 413, 415). The answer for the mapped spans is
/// [`decode::response`]`(encoding, mapped.rejected.len(), &mapped.rejection_message())`.
pub fn receive(
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    body: &[u8],
) -> Result<(decode::Encoding, mapping::Mapped), decode::Refusal> {
    let encoding = decode::encoding(content_type)?;
    let body = decode::inflate(content_encoding, body)?;
    let request = decode::decode(encoding, &body)?;
    Ok((encoding, mapping::map_request(&request)))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use prost::Message;

    #[test]
    fn a_gzip_protobuf_capture_is_received_whole() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(include_bytes!("fixtures/openllmetry.pb")).unwrap();
        let body = gz.finish().unwrap();
        let (encoding, mapped) = super::receive(Some("application/x-protobuf"), Some("gzip"), &body).unwrap();
        assert_eq!((encoding, mapped.events.len(), mapped.rejected.len()), (super::decode::Encoding::Protobuf, 4, 0));
        assert!(super::decode::response(encoding, 0, "").is_empty());
    }

    #[test]
    fn a_json_request_with_a_bad_span_is_answered_with_partial_success() {
        let body = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[
            {"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331","name":"ok",
             "startTimeUnixNano":"1765108800000000000","endTimeUnixNano":"1765108800000000001"},
            {"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203332","name":"backwards",
             "startTimeUnixNano":"1765108800000000002","endTimeUnixNano":"1765108800000000001"}]}]}]}"#;
        let (encoding, mapped) = super::receive(Some("application/json"), None, body.as_bytes()).unwrap();
        assert_eq!((mapped.events.len(), mapped.rejected.len()), (1, 1));
        let answer = super::decode::response(encoding, mapped.rejected.len(), &mapped.rejection_message());
        let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
        let message = answer["partialSuccess"]["errorMessage"].as_str().unwrap();
        assert!(message.contains("backwards") && message.contains("before startTimeUnixNano"), "{message}");
        assert_eq!(super::receive(Some("text/plain"), None, b"").unwrap_err().status, 415);
    }

    /// A span's event reads, through the native ingest's own rules, as the same tokens, cost,
    /// duration, error and model: the two front doors agree on what an event counts.
    #[test]
    fn mapped_events_are_native_events_with_the_same_numbers() {
        let body = include_bytes!("fixtures/openai-v2-latest.pb");
        let request =
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest::decode(&body[..]).unwrap();
        let mapped = super::mapping::map_request(&request);
        assert_eq!(mapped.events.len(), 4);
        for event in mapped.events {
            let native = event.event;
            let data: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&native.data).unwrap();
            let read = crate::ingest::metrics(&native.event_type, &serde_json::Map::new(), &data);
            assert_eq!(read, native.metrics, "{}", native.event_type);
            assert_eq!(crate::ingest::model(&serde_json::Map::new(), &data), native.model);
            assert!(
                crate::ingest::normalize_timestamp(&native.timestamp).as_deref() == Some(native.timestamp.as_str())
            );
        }
    }
}
