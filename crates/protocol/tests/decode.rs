//! Decoding real and hostile frames.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, MetadataRequest, RequestKind, ResponseKind};
use kafka_protocol::protocol::{Encodable, StrBytes};
use sluice_protocol::alloc_guard::GuardedAllocator;
use sluice_protocol::{decode_request, encode_response, ProtocolError};

#[global_allocator]
static ALLOC: GuardedAllocator = GuardedAllocator;

fn frame(api_key: i16, version: i16, correlation_id: i32, header_version: i16, body: &[u8]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(api_key);
    b.put_i16(version);
    b.put_i32(correlation_id);
    b.put_i16(4);
    b.put_slice(b"test");
    if header_version >= 2 {
        b.put_u8(0); // no tagged fields
    }
    b.put_slice(body);
    b.freeze()
}

#[test]
fn metadata_request_round_trips() {
    let req = MetadataRequest::default()
        .with_topics(Some(vec![kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
            .with_name(Some(kafka_protocol::messages::TopicName(StrBytes::from_static_str("t"))))]));
    let mut body = BytesMut::new();
    req.encode(&mut body, 1).unwrap();
    let r = decode_request(frame(3, 1, 77, 1, &body)).unwrap();
    assert_eq!(r.header.correlation_id, 77);
    assert_eq!(r.header.client_id.as_deref(), Some("test"));
    match r.body {
        RequestKind::Metadata(m) => assert_eq!(m.topics.unwrap().len(), 1),
        other => panic!("{other:?}"),
    }
}

/// DEPENDENCIES.md trap 1: an array length of 2^31-1 in a 7-byte body must give an error, not
/// a 150 GB allocation that aborts the process.
#[test]
fn lying_array_length_is_an_error_not_an_abort() {
    let body = [0x7f, 0xff, 0xff, 0xff, 0x00, 0x01, 0x61];
    let err = decode_request(frame(3, 1, 5, 1, &body)).unwrap_err();
    assert!(matches!(err, ProtocolError::Malformed { correlation_id: 5, .. }), "{err:?}");
}

#[test]
fn unknown_api_and_version_keep_the_correlation_id() {
    let err = decode_request(frame(999, 0, 9, 1, &[])).unwrap_err();
    assert_eq!(err, ProtocolError::UnknownApi { api_key: 999, api_version: 0, correlation_id: 9 });
    let err = decode_request(frame(0, 1, 10, 1, &[])).unwrap_err();
    assert_eq!(err, ProtocolError::UnsupportedVersion { api_key: 0, api_version: 1, correlation_id: 10 });
    assert_eq!(decode_request(Bytes::from_static(&[0, 3, 0])).unwrap_err(), ProtocolError::TooShort(3));
}

/// KIP-511: ApiVersions newer than served decodes so the broker can answer with v0.
#[test]
fn too_new_api_versions_is_answerable() {
    let r = decode_request(frame(18, 99, 11, 2, &[0xde, 0xad])).unwrap();
    assert_eq!(r.header.api_key, ApiKey::ApiVersions);
    assert_eq!(r.header.api_version, 99);
}

#[test]
fn response_frame_has_length_and_correlation_id() {
    let mut out = BytesMut::new();
    let body = ResponseKind::ApiVersions(Default::default());
    encode_response(&mut out, ApiKey::ApiVersions, 3, 42, &body).unwrap();
    let len = i32::from_be_bytes(out[0..4].try_into().unwrap()) as usize;
    assert_eq!(len, out.len() - 4);
    assert_eq!(i32::from_be_bytes(out[4..8].try_into().unwrap()), 42);
}

proptest::proptest! {
    /// Random bytes after a valid prefix never panic the decoder.
    #[test]
    fn random_bodies_never_panic(key in 0i16..70, version in 0i16..20, body in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
        let _ = decode_request(frame(key, version, 1, 2, &body));
        let _ = decode_request(frame(key, version, 1, 1, &body));
    }
}
