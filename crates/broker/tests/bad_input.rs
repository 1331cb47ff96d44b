//! Hostile and broken input: every case costs only its own connection, with a log line and
//! an error answer or a close; the broker keeps serving; stored data is untouched.
//! Also restarts: what was written and configured comes back.

mod common;

use bytes::{BufMut, BytesMut};
use common::*;
use kafka_protocol::messages::*;
use tokio::io::AsyncWriteExt;

async fn still_serves(b: &TestBroker) {
    let mut c = b.connect().await;
    let r: MetadataResponse = c.call(ApiKey::Metadata, 12, &MetadataRequest::default().with_topics(None)).await;
    assert_eq!(r.brokers.len(), 1);
}

#[tokio::test]
async fn negative_and_absurd_frame_lengths_close_the_connection() {
    let b = TestBroker::start_with(|c| c.request_bytes_max = 1 << 20).await;
    for len in [-1i32, i32::MAX, (1 << 20) + 1] {
        let mut c = b.connect().await;
        c.stream.write_all(&len.to_be_bytes()).await.unwrap();
        assert!(c.is_closed().await, "length {len}");
    }
    still_serves(&b).await;
}

#[tokio::test]
async fn unknown_api_and_version_get_unsupported_version_and_the_connection_lives() {
    let b = TestBroker::start().await;
    let mut c = b.connect().await;
    let mut f = BytesMut::new();
    f.put_i32(10);
    f.put_i16(999);
    f.put_i16(0);
    f.put_i32(7);
    f.put_i16(-1);
    c.stream.write_all(&f).await.unwrap();
    let mut body = c.read_frame().await.unwrap();
    assert_eq!(i32::from_be_bytes(body[0..4].try_into().unwrap()), 7);
    assert_eq!(i16::from_be_bytes(body[4..6].try_into().unwrap()), 35);
    let _ = &mut body;
    // Produce v2 was removed in Kafka 4 (KIP-896).
    let mut frame = encode_request(ApiKey::Metadata, 1, 8, &MetadataRequest::default());
    frame[4..6].copy_from_slice(&0i16.to_be_bytes());
    frame[6..8].copy_from_slice(&2i16.to_be_bytes());
    c.stream.write_all(&frame).await.unwrap();
    let body = c.read_frame().await.unwrap();
    assert_eq!(i32::from_be_bytes(body[0..4].try_into().unwrap()), 8);
    assert_eq!(i16::from_be_bytes(body[4..6].try_into().unwrap()), 35);
    let r: MetadataResponse = c.call(ApiKey::Metadata, 12, &MetadataRequest::default().with_topics(None)).await;
    assert_eq!(r.brokers.len(), 1);
}

#[tokio::test]
async fn garbage_and_lying_bodies_close_only_their_connection() {
    let b = TestBroker::start().await;
    let mut keep = b.connect().await;
    produce(&mut keep, "safe", 0, batch(&[b"kept"])).await;
    // DEPENDENCIES.md trap 1: a Metadata body claiming 2^31-1 topics.
    let mut c = b.connect().await;
    let mut f = BytesMut::new();
    let body = [0x7f, 0xff, 0xff, 0xff, 0x00, 0x01, 0x61];
    f.put_i32(10 + body.len() as i32);
    f.put_i16(3);
    f.put_i16(1);
    f.put_i32(1);
    f.put_i16(-1);
    f.put_slice(&body);
    c.stream.write_all(&f).await.unwrap();
    assert!(c.is_closed().await);
    // Random bytes in a well-framed request of a served API.
    let mut c = b.connect().await;
    let mut f = BytesMut::new();
    f.put_i32(40);
    f.put_i16(0);
    f.put_i16(9);
    f.put_i32(2);
    f.put_slice(&[0xab; 32]);
    c.stream.write_all(&f).await.unwrap();
    assert!(c.is_closed().await);
    // A torn frame, then the peer goes away.
    let mut c = b.connect().await;
    c.stream.write_all(&[0, 0, 1, 0, 0, 3]).await.unwrap();
    drop(c);
    still_serves(&b).await;
    let f = fetch(&mut keep, "safe", 0, 0, 0, 1 << 20).await;
    assert_eq!(batches_in(f.records.unwrap()), vec![(0, 1)]);
}

/// Topics, configs, data and producer state survive a clean restart; producer ids are not
/// reused.
#[tokio::test]
async fn restart_keeps_topics_data_configs_and_producer_state() {
    let b = TestBroker::start().await;
    let mut c = b.connect().await;
    create_topic(&mut c, "keep", 2, &[("retention.ms", "123456")]).await;
    let init: InitProducerIdResponse =
        c.call(ApiKey::InitProducerId, 4, &InitProducerIdRequest::default().with_transactional_id(None)).await;
    let pid = init.producer_id.0;
    let first = batch_with(&[b"a"], pid, 0, 0, now_ms());
    produce(&mut c, "keep", 1, first.clone()).await;
    produce(&mut c, "keep", 1, batch(&[b"b", b"c"])).await;
    drop(c);
    let dir = b.stop().await;

    let b = TestBroker::start_in(dir, |_| {}).await;
    let mut c = b.connect().await;
    let r: MetadataResponse = c.call(ApiKey::Metadata, 12, &MetadataRequest::default().with_topics(None)).await;
    let user: Vec<_> = r.topics.iter().filter(|t| !t.is_internal).collect();
    assert_eq!(user.len(), 1);
    assert_eq!(user[0].partitions.len(), 2);
    let f = fetch(&mut c, "keep", 1, 0, 0, 1 << 20).await;
    assert_eq!(batches_in(f.records.unwrap()), vec![(0, 1), (1, 2)]);
    // A retried duplicate after the restart is still recognised (P15, P21).
    let retry = produce(&mut c, "keep", 1, first).await;
    assert_eq!((retry.error_code, retry.base_offset), (0, 0));
    let init: InitProducerIdResponse =
        c.call(ApiKey::InitProducerId, 4, &InitProducerIdRequest::default().with_transactional_id(None)).await;
    assert!(init.producer_id.0 > pid, "producer ids are never reused");
    let describe = DescribeConfigsRequest::default().with_resources(vec![
        describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(kafka_protocol::protocol::StrBytes::from_static_str("keep"))
            .with_configuration_keys(Some(vec![kafka_protocol::protocol::StrBytes::from_static_str("retention.ms")])),
    ]);
    let r: DescribeConfigsResponse = c.call(ApiKey::DescribeConfigs, 4, &describe).await;
    assert_eq!(r.results[0].configs.len(), 1);
    assert_eq!(r.results[0].configs[0].value.as_deref(), Some("123456"));
}

#[tokio::test]
async fn a_second_broker_on_the_same_data_dir_is_refused() {
    let b = TestBroker::start().await;
    let err = sluice_broker::Broker::open(config(b.dir.path())).err().expect("locked");
    assert!(err.to_string().contains("in use"), "{err}");
}

/// A write the disk refuses: the producer gets KAFKA_STORAGE_ERROR, and the broker stops with
/// the reason instead of serving half-written state.
#[tokio::test]
async fn a_storage_failure_stops_the_broker() {
    let storage = sluice_log::MemStorage::new();
    let b = TestBroker::start_on(std::sync::Arc::new(storage.clone())).await;
    let mut c = b.connect().await;
    assert_eq!(produce(&mut c, "disk", 0, batch(&[b"fine"])).await.error_code, 0);
    storage.set_failing(true);
    assert_eq!(produce(&mut c, "disk", 0, batch(&[b"lost"])).await.error_code, 56);
    let err = b.finished().await.expect_err("the broker stops");
    assert!(err.to_string().contains("storage"), "{err}");
}
