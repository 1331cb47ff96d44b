//! Response encoding: header (v0 or v1 by API and version) and body.

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::{ApiKey, DescribeLogDirsResponse, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::Encodable;

use crate::versions::codec_version;

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
    let body_version = codec_version(api_key, api_version);
    let header_version = api_key.response_header_version(body_version);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(out, header_version)
        .map_err(|e| format!("{api_key:?} v{api_version} header: {e}"))?;
    let written = match body {
        ResponseKind::DescribeLogDirs(r) if api_version == 5 => {
            encode_describe_log_dirs_v5(out, r);
            Ok(())
        }
        body => body.encode(out, body_version).map_err(|e| e.to_string()),
    };
    if let Err(e) = written {
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

/// DescribeLogDirs v5 (Kafka 4.3, newer than the codec): v4 plus `IsCordoned` (false: Sluice
/// never cordons its one log directory) after `UsableBytes` in each result. Flexible layout:
/// compact arrays and strings, an empty tagged-field section after each struct.
fn encode_describe_log_dirs_v5(out: &mut BytesMut, r: &DescribeLogDirsResponse) {
    fn uvarint(out: &mut BytesMut, mut v: u64) {
        while v >= 0x80 {
            out.put_u8((v as u8) | 0x80);
            v >>= 7;
        }
        out.put_u8(v as u8);
    }
    fn string(out: &mut BytesMut, s: &str) {
        uvarint(out, s.len() as u64 + 1);
        out.put_slice(s.as_bytes());
    }
    const NO_TAGS: u8 = 0;
    out.put_i32(r.throttle_time_ms);
    out.put_i16(r.error_code);
    uvarint(out, r.results.len() as u64 + 1);
    for result in &r.results {
        out.put_i16(result.error_code);
        string(out, &result.log_dir);
        uvarint(out, result.topics.len() as u64 + 1);
        for topic in &result.topics {
            string(out, &topic.name);
            uvarint(out, topic.partitions.len() as u64 + 1);
            for p in &topic.partitions {
                out.put_i32(p.partition_index);
                out.put_i64(p.partition_size);
                out.put_i64(p.offset_lag);
                out.put_u8(p.is_future_key as u8);
                out.put_u8(NO_TAGS);
            }
            out.put_u8(NO_TAGS);
        }
        out.put_i64(result.total_bytes);
        out.put_i64(result.usable_bytes);
        out.put_u8(0); // IsCordoned
        out.put_u8(NO_TAGS);
    }
    out.put_u8(NO_TAGS);
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::describe_log_dirs_response::{
        DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
    };
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::StrBytes;

    /// v5 is v4 with one more byte (IsCordoned = false) at the end of each result.
    #[test]
    fn describe_log_dirs_v5_is_v4_plus_is_cordoned() {
        let r = DescribeLogDirsResponse::default().with_results(vec![DescribeLogDirsResult::default()
            .with_log_dir(StrBytes::from_static_str("/data"))
            .with_total_bytes(100)
            .with_usable_bytes(50)
            .with_topics(vec![DescribeLogDirsTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("t")))
                .with_partitions(vec![DescribeLogDirsPartition::default().with_partition_size(7)])])]);
        let mut v4 = BytesMut::new();
        r.encode(&mut v4, 4).unwrap();
        let mut v5 = BytesMut::new();
        encode_describe_log_dirs_v5(&mut v5, &r);
        assert_eq!(v5.len(), v4.len() + 1);
        let cut = v4.len() - 2; // before the result's and the response's tag sections
        assert_eq!(&v5[..cut], &v4[..cut]);
        assert_eq!(&v5[cut..], &[0, 0, 0]);
    }
}
