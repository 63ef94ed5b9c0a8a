//! OpenTelemetry's front door: OTLP/HTTP trace export requests, decoded with the official
//! types ([`decode`]) and mapped to gati's runs and events ([`mapping`]); costs from the price
//! table the SDK reads too ([`prices`]). The mapping is documented in backend/OTLP.md.
//!
//! Not yet wired into the router and the store: `#[allow(dead_code)]` until it is.
#![allow(dead_code)]

pub mod decode;
pub mod mapping;
pub mod prices;

impl mapping::MappedEvent {
    /// The native ingest's event, for the store: the same fields, `data` and `attributes` as
    /// JSON text.
    pub fn into_event(self) -> crate::ingest::Event {
        let m = self.metrics;
        crate::ingest::Event {
            event_id: self.event_id,
            run_id: self.run_id,
            run_name: self.run_name,
            agent_name: self.agent_name,
            event_type: self.event_type,
            timestamp: self.timestamp,
            parent_event_id: self.parent_event_id,
            previous_event_id: None,
            data: serde_json::Value::Object(self.data).to_string(),
            attributes: serde_json::Value::Object(self.attributes).to_string(),
            metrics: crate::ingest::Metrics {
                tokens_in: m.tokens_in,
                tokens_out: m.tokens_out,
                total_tokens: m.total_tokens,
                cost: m.cost,
                duration_ms: m.duration_ms,
                error: m.error,
            },
            model: self.model,
        }
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

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
            let data = event.data.clone();
            let native = event.into_event();
            let read = crate::ingest::metrics(&native.event_type, &serde_json::Map::new(), &data);
            assert_eq!(read, native.metrics, "{}", native.event_type);
            assert_eq!(crate::ingest::model(&serde_json::Map::new(), &data), native.model);
            assert!(
                crate::ingest::normalize_timestamp(&native.timestamp).as_deref() == Some(native.timestamp.as_str())
            );
        }
    }
}
