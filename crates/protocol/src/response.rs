//! Response encoding: header (v0 or v1 by API and version) and body.

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::Encodable;

/// Encodes a whole response frame, length prefix included, into `out`.
///
/// Fails only when the body has a field its version cannot carry, which is a broker bug.
pub fn encode_response(
    out: &mut BytesMut,
    api_key: ApiKey,
    api_version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Result<(), String> {
    let start = out.len();
    out.put_i32(0);
    let header_version = api_key.response_header_version(api_version);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(out, header_version)
        .map_err(|e| format!("{api_key:?} v{api_version} header: {e}"))?;
    if let Err(e) = body.encode(out, api_version) {
        out.truncate(start);
        return Err(format!("{api_key:?} v{api_version} body: {e}"));
    }
    let length = (out.len() - start - 4) as i32;
    out[start..start + 4].copy_from_slice(&length.to_be_bytes());
    Ok(())
}

/// The answer to an API or version Sluice does not serve: a v0 header and the error code
/// UNSUPPORTED_VERSION (35) as the first body field, where every error-bearing response of
/// those versions puts a code a client can read.
pub fn encode_unsupported_version(out: &mut BytesMut, correlation_id: i32) {
    out.put_i32(6);
    out.put_i32(correlation_id);
    out.put_i16(35);
}
