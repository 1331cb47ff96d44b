//! Request decoding: header first (keeping the correlation id), then the body.

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestKind};
use kafka_protocol::protocol::Decodable;

use crate::error::ProtocolError;
use crate::versions::{codec_version, served_range};

/// The parts of a request header the broker uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    pub api_key: ApiKey,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub header: RequestHeader,
    pub body: RequestKind,
}

/// The fixed start of every request header: api key, api version, correlation id.
const HEADER_PREFIX_BYTES: usize = 8;

/// Decodes one frame (without its length prefix). Errors keep the correlation id where it was
/// readable, so the caller can answer UNSUPPORTED_VERSION or log and close.
///
/// An ApiVersions request at a version newer than served is not an error: it decodes as an
/// empty v0 ApiVersions request with its real version in the header, so the broker can answer
/// with UNSUPPORTED_VERSION and its version table (KIP-511).
pub fn decode_request(frame: Bytes) -> Result<Request, ProtocolError> {
    if frame.len() < HEADER_PREFIX_BYTES {
        return Err(ProtocolError::TooShort(frame.len()));
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let api_version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let api_key = match ApiKey::try_from(raw_key) {
        Ok(k) if served_range(k).is_some() => k,
        _ => return Err(ProtocolError::UnknownApi { api_key: raw_key, api_version, correlation_id }),
    };
    let (lo, hi) = served_range(api_key).expect("checked above");
    let malformed = |reason: String| ProtocolError::Malformed { api_key: raw_key, api_version, correlation_id, reason };
    if api_version < lo || api_version > hi {
        if api_key == ApiKey::ApiVersions && api_version > hi {
            // KIP-511: the client's header may be a newer layout; read only the client id
            // leniently and answer with v0.
            return Ok(Request {
                header: RequestHeader { api_key, api_version, correlation_id, client_id: None },
                body: RequestKind::ApiVersions(Default::default()),
            });
        }
        return Err(ProtocolError::UnsupportedVersion { api_key: raw_key, api_version, correlation_id });
    }
    let mut buf = frame;
    let body_version = codec_version(api_key, api_version);
    let header_version = api_key.request_header_version(body_version);
    let header = kafka_protocol::messages::RequestHeader::decode(&mut buf, header_version)
        .map_err(|e| malformed(format!("header: {e}")))?;
    let body = RequestKind::decode(api_key, &mut buf, body_version).map_err(|e| malformed(format!("{e:#}")))?;
    Ok(Request {
        header: RequestHeader {
            api_key,
            api_version,
            correlation_id,
            client_id: header.client_id.map(|s| s.as_str().to_owned()),
        },
        body,
    })
}
