//! OpenTelemetry's front door: OTLP/HTTP trace export requests, decoded with the official
//! types ([`decode`]) and mapped to gati's runs and events ([`mapping`]); costs from the price
//! table the SDK reads too ([`prices`]). The mapping is documented in backend/OTLP.md.
//!
//! Not yet wired into the router and the store: `#[allow(dead_code)]` until it is.
#![allow(dead_code)]

pub mod decode;
pub mod mapping;
pub mod prices;
