//! The Kafka wire protocol as Sluice serves it: frames, request headers, the table of API
//! versions served, request decoding and response encoding.
//!
//! Message bodies come from the `kafka-protocol` crate (generated from Kafka's JSON schemas).
//! This crate adds what a broker needs around it: a frame length limit checked before anything
//! is allocated, a header read that keeps the correlation id even when the rest is bad (so an
//! error can be answered), the version table, and the KIP-511 ApiVersions fallback.
//!
//! Architecture invariants:
//! - No I/O, no clock, no state: bytes in, typed values out, and back.
//! - Nothing is decoded from a frame longer than the configured limit.
//! - Record data in Produce requests stays the raw `Bytes` of the frame (no copy, no decode).

pub mod alloc_guard;
pub mod error;
pub mod frame;
pub mod request;
pub mod response;
pub mod versions;

pub use error::ProtocolError;
pub use frame::{frame_length, FRAME_LENGTH_BYTES};
pub use request::{decode_request, Request, RequestHeader};
pub use response::{encode_response, encode_unsupported_version};
pub use versions::{codec_version, served_range, SERVED_APIS};

pub use kafka_protocol;
