//! Produce and fetch over the wire, named by SEMANTICS.md items.

mod common;

use std::time::{Duration, Instant};

use common::*;
use kafka_protocol::messages::*;

#[tokio::test]
async fn l1_offsets_are_assigned_by_the_broker_and_served_as_stored() {
    let b = TestBroker::start().await;
    let mut c = b.connect().await;
    let first = produce(&mut c, "l1", 0, batch(&[b"a", b"b", b"c"])).await;
    assert_eq!((first.error_code, first.base_offset), (0, 0));
    let second = produce(&mut c, "l1", 0, batch(&[b"d", b"e"])).await;
    assert_eq!((second.error_code, second.base_offset), (0, 3));
    let f = fetch(&mut c, "l1", 0, 0, 0, 1 << 20).await;
    assert_eq!(f.error_code, 0);
    assert_eq!(f.high_watermark, 5);
    assert_eq!(f.last_stable_offset, 5);
    assert_eq!(f.log_start_offset, 0);
    assert_eq!(batches_in(f.records.unwrap()), vec![(0, 3), (3, 2)]);
}

/// F3: the bytes start with the batch that holds the fetch offset.
#[tokio::test]
async fn f3_fetch_starts_at_the_batch_holding_the_offset() {
    let b = TestBroker::start().await;
    let mut c = b.connect().await;
    produce(&mut c, "f3", 0, batch(&[b"0", b"1", b"2", b"3", b"4"])).await;
    produce(&mut c, "f3", 0, batch(&[b"5", b"6"])).await;
    let f = fetch(&mut c, "f3", 0, 3, 0, 1 << 20).await;
    assert_eq!(batches_in(f.records.unwrap()), vec![(0, 5), (5, 2)]);
    let f = fetch(&mut c, "f3", 0, 6, 0, 1 << 20).await;
    assert_eq!(batches_in(f.records.unwrap()), vec![(5, 2)]);
    // At the end: empty, no error (L11).
    let f = fetch(&mut c, "f3", 0, 7, 0, 1 << 20).await;
    assert_eq!((f.error_code, f.records.unwrap().len()), (0, 0));
}

#[tokio::test]
async fn p9_invalid_acks_are_refused_per_partition() {
    let b = TestBroker::start().await;
    let mut c = b.connect().await;
    let r: ProduceResponse = c.call(ApiKey::Produce, 9, &produce_request("p9", 0, 2, batch(&[b"x"]))).await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, 21);
}

/// P10: acks=0 gets no response; the next request's response is the next frame.
#[tokio::test]
async fn p10_acks_zero_is_not_answered_and_closes_on_failure() {
    let b = TestBroker::start().await;
    let mut c = b.connect().await;
    c.send(ApiKey::Produce, 9, &produce_request("p10", 0, 0, batch(&[b"x"]))).await;
    let id = c.send(ApiKey::Metadata, 12, &MetadataRequest::default().with_topics(Some(vec![]))).await;
    let (got, _): (i32, MetadataResponse) = c.recv(ApiKey::Metadata, 12).await;
    assert_eq!(got, id);
    // The acks=0 record was appended.
    let f = fetch(&mut c, "p10", 0, 0, 5000, 1 << 20).await;
    assert_eq!(batches_in(f.records.unwrap()), vec![(0, 1)]);
    // A failing acks=0 produce closes the connection.
    let mut bad = batch(&[b"y"]).to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    c.send(ApiKey::Produce, 9, &produce_request("p10", 0, 0, bad.into())).await;
    assert!(c.is_closed().await);
}

/// B4: a batch whose CRC does not match is CORRUPT_MESSAGE and nothing is appended.
#[tokio::test]
async fn b4_bad_crc_is_corrupt_message_and_appends_nothing() {
    let b = TestBroker::start().await;
    let mut c = b.connect().await;
    produce(&mut c, "b4", 0, batch(&[b"ok"])).await;
    let mut bad = batch(&[b"flipped"]).to_vec();
    let last = bad.len() - 2;
    bad[last] ^= 0x01;
    let r = produce(&mut c, "b4", 0, bad.into()).await;
    assert_eq!(r.error_code, 2);
    let f = fetch(&mut c, "b4", 0, 0, 0, 1 << 20).await;
    assert_eq!(f.high_watermark, 1);
}

/// B5: lastOffsetDelta + 1 != recordsCount is INVALID_RECORD.
#[tokio::test]
async fn b5_count_mismatch_is_invalid_record() {
    let b = TestBroker::start().await;
    let mut c = b.connect().await;
    let mut bad = batch(&[b"a", b"b"]).to_vec();
    bad[57..61].copy_from_slice(&3i32.to_be_bytes());
    let crc = crc32c::crc32c(&bad[21..]);
    bad[17..21].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(produce(&mut c, "b5", 0, bad.into()).await.error_code, 87);
}

/// B11: a batch over max.message.bytes is MESSAGE_TOO_LARGE.
#[tokio::test]
async fn b11_oversized_batch_is_message_too_large() {
    let b = TestBroker::start().await;
    let mut c = b.connect().await;
    assert_eq!(create_topic(&mut c, "b11", 1, &[("max.message.bytes", "1000")]).await.error_code, 0);
    let big = vec![7u8; 2000];
    assert_eq!(produce(&mut c, "b11", 0, batch(&[&big])).await.error_code, 10);
    assert_eq!(produce(&mut c, "b11", 0, batch(&[b"small"])).await.error_code, 0);
}

/// P14-P18 over the wire: InitProducerId, duplicate retry returns the original offset, a gap is
/// OUT_OF_ORDER_SEQUENCE_NUMBER, an older epoch is INVALID_PRODUCER_EPOCH.
#[tokio::test]
async fn p15_p16_p18_idempotent_producer() {
    let b = TestBroker::start().await;
    let mut c = b.connect().await;
    let init: InitProducerIdResponse = c
        .call(
            ApiKey::InitProducerId,
            4,
            &InitProducerIdRequest::default().with_transactional_id(None).with_transaction_timeout_ms(60000),
        )
        .await;
    assert_eq!(init.error_code, 0);
    let (pid, epoch) = (init.producer_id.0, init.producer_epoch);
    assert!(pid >= 0);
    let other: InitProducerIdResponse =
        c.call(ApiKey::InitProducerId, 4, &InitProducerIdRequest::default().with_transactional_id(None)).await;
    assert_ne!(other.producer_id.0, pid, "each producer gets its own id");

    let b0 = batch_with(&[b"a", b"b"], pid, epoch, 0, now_ms());
    assert_eq!(produce(&mut c, "idem", 0, b0.clone()).await.base_offset, 0);
    let b1 = batch_with(&[b"c"], pid, epoch, 2, now_ms());
    assert_eq!(produce(&mut c, "idem", 0, b1.clone()).await.base_offset, 2);
    // Retry of the first batch: success with its original offset, nothing appended.
    let retry = produce(&mut c, "idem", 0, b0).await;
    assert_eq!((retry.error_code, retry.base_offset), (0, 0));
    // Gap.
    let gap = produce(&mut c, "idem", 0, batch_with(&[b"x"], pid, epoch, 9, now_ms())).await;
    assert_eq!(gap.error_code, 45);
    // Bump the epoch, then the old epoch is fenced.
    assert_eq!(produce(&mut c, "idem", 0, batch_with(&[b"e"], pid, epoch + 1, 0, now_ms())).await.error_code, 0);
    assert_eq!(produce(&mut c, "idem", 0, batch_with(&[b"old"], pid, epoch, 3, now_ms())).await.error_code, 47);
    let f = fetch(&mut c, "idem", 0, 0, 0, 1 << 20).await;
    assert_eq!(f.high_watermark, 4);
}

/// F1: a parked fetch is woken by the append that satisfies it, long before max_wait.
#[tokio::test]
async fn f1_long_poll_wakes_on_append() {
    let b = TestBroker::start().await;
    let mut admin = b.connect().await;
    create_topic(&mut admin, "f1", 1, &[]).await;
    let mut consumer = b.connect().await;
    let started = Instant::now();
    let id = consumer.send(ApiKey::Fetch, 12, &fetch_request("f1", 0, 0, 10_000, 1 << 20)).await;
    // The fetch is parked: nothing comes back while the partition is empty.
    let parked = tokio::time::timeout(Duration::from_millis(300), consumer.read_frame()).await;
    assert!(parked.is_err(), "an empty fetch must wait");
    let mut producer = b.connect().await;
    produce(&mut producer, "f1", 0, batch(&[b"wake"])).await;
    let (got, r): (i32, FetchResponse) = consumer.recv(ApiKey::Fetch, 12).await;
    assert_eq!(got, id);
    assert!(started.elapsed() < Duration::from_secs(5), "woken by the append, not the 10 s timeout");
    assert_eq!(batches_in(r.responses[0].partitions[0].records.clone().unwrap()), vec![(0, 1)]);
}

/// F1: with nothing to read, the answer comes when max_wait_ms has passed, empty.
#[tokio::test]
async fn f1_empty_fetch_waits_max_wait() {
    let b = TestBroker::start().await;
    let mut c = b.connect().await;
    create_topic(&mut c, "f1e", 1, &[]).await;
    let started = Instant::now();
    let f = fetch(&mut c, "f1e", 0, 0, 400, 1 << 20).await;
    assert!(started.elapsed() >= Duration::from_millis(390));
    assert_eq!((f.error_code, f.records.unwrap().len()), (0, 0));
}

/// F4 / KIP-74: the first batch comes back whole even when larger than max_bytes, and the
/// limit holds for what follows.
#[tokio::test]
async fn f4_first_batch_is_returned_whole() {
    let b = TestBroker::start().await;
    let mut c = b.connect().await;
    let big = vec![1u8; 5000];
    produce(&mut c, "f4", 0, batch(&[&big])).await;
    produce(&mut c, "f4", 0, batch(&[&big])).await;
    let f = fetch(&mut c, "f4", 0, 0, 0, 100).await;
    let records = f.records.unwrap();
    assert_eq!(batches_in(records.clone()), vec![(0, 1)]);
    assert!(records.len() > 5000 && records.len() < 10000, "one whole batch, not two: {}", records.len());
}

/// F5: fetch past the log end is OFFSET_OUT_OF_RANGE, with the watermarks filled in.
#[tokio::test]
async fn f5_out_of_range() {
    let b = TestBroker::start().await;
    let mut c = b.connect().await;
    produce(&mut c, "f5", 0, batch(&[b"a"])).await;
    let f = fetch(&mut c, "f5", 0, 5, 0, 1 << 20).await;
    assert_eq!((f.error_code, f.high_watermark, f.log_start_offset), (1, 1, 0));
}

/// F6: unknown topics and partitions; with topic ids (v13+), UNKNOWN_TOPIC_ID.
#[tokio::test]
async fn f6_unknown_topic_and_partition() {
    let b = TestBroker::start_with(|c| c.auto_create_topics = false).await;
    let mut c = b.connect().await;
    assert_eq!(fetch(&mut c, "nope", 0, 0, 0, 1024).await.error_code, 3);
    create_topic(&mut c, "f6", 1, &[]).await;
    assert_eq!(fetch(&mut c, "f6", 7, 0, 0, 1024).await.error_code, 3);
    let req = FetchRequest::default().with_max_wait_ms(0).with_max_bytes(1024).with_topics(vec![
        fetch_request::FetchTopic::default().with_topic_id(uuid::Uuid::new_v4()).with_partitions(vec![
            fetch_request::FetchPartition::default().with_partition(0).with_partition_max_bytes(1024),
        ]),
    ]);
    let r: FetchResponse = c.call(ApiKey::Fetch, 13, &req).await;
    assert_eq!(r.responses[0].partitions[0].error_code, 100);
    // Produce to an unknown topic with auto-creation off.
    assert_eq!(produce(&mut c, "nope", 0, batch(&[b"x"])).await.error_code, 3);
}

/// v13+ fetches by topic id, as the Java client does once Metadata gave it the ids.
#[tokio::test]
async fn fetch_by_topic_id() {
    let b = TestBroker::start().await;
    let mut c = b.connect().await;
    let created = create_topic(&mut c, "byid", 1, &[]).await;
    produce(&mut c, "byid", 0, batch(&[b"a"])).await;
    let req = FetchRequest::default().with_max_wait_ms(0).with_max_bytes(1 << 20).with_topics(vec![
        fetch_request::FetchTopic::default().with_topic_id(created.topic_id).with_partitions(vec![
            fetch_request::FetchPartition::default().with_partition(0).with_partition_max_bytes(1 << 20),
        ]),
    ]);
    let r: FetchResponse = c.call(ApiKey::Fetch, 16, &req).await;
    assert_eq!(r.responses[0].topic_id, created.topic_id);
    assert_eq!(batches_in(r.responses[0].partitions[0].records.clone().unwrap()), vec![(0, 1)]);
}

/// L3/L4: earliest, latest, max timestamp and by timestamp.
#[tokio::test]
async fn l3_l4_list_offsets() {
    let b = TestBroker::start().await;
    let mut c = b.connect().await;
    for ts in [100, 200, 200, 300] {
        produce(&mut c, "lo", 0, batch_with(&[b"v"], -1, -1, -1, ts)).await;
    }
    async fn answer(c: &mut Conn, ts: i64) -> (i16, i64, i64) {
        let req = ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![
            list_offsets_request::ListOffsetsTopic::default().with_name(name("lo")).with_partitions(vec![
                list_offsets_request::ListOffsetsPartition::default().with_partition_index(0).with_timestamp(ts),
            ]),
        ]);
        let r: ListOffsetsResponse = c.call(ApiKey::ListOffsets, 8, &req).await;
        let p = &r.topics[0].partitions[0];
        (p.error_code, p.offset, p.timestamp)
    }
    assert_eq!(answer(&mut c, -2).await, (0, 0, -1));
    assert_eq!(answer(&mut c, -1).await, (0, 4, -1));
    assert_eq!(answer(&mut c, 150).await, (0, 1, 200));
    assert_eq!(answer(&mut c, 301).await, (0, -1, -1));
    assert_eq!(answer(&mut c, -3).await, (0, 3, 300));
}

/// Pipelined requests on one connection are answered in order, even when the first one waits.
#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let b = TestBroker::start().await;
    let mut c = b.connect().await;
    create_topic(&mut c, "pipe", 1, &[]).await;
    let first = c.send(ApiKey::Fetch, 12, &fetch_request("pipe", 0, 0, 300, 1024)).await;
    let mut ids = vec![first];
    for _ in 0..5 {
        ids.push(c.send(ApiKey::Metadata, 12, &MetadataRequest::default().with_topics(None)).await);
    }
    let (got, _): (i32, FetchResponse) = c.recv(ApiKey::Fetch, 12).await;
    assert_eq!(got, ids[0]);
    for id in &ids[1..] {
        let (got, _): (i32, MetadataResponse) = c.recv(ApiKey::Metadata, 12).await;
        assert_eq!(got, *id);
    }
}

/// Durability: with fsync, what a produce acknowledges is visible at once (HW moved by the
/// fsync), and many concurrent producers all get acknowledged (group commit makes progress).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fsync_mode_acknowledges_concurrent_producers() {
    let b = TestBroker::start().await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let mut c = b.connect().await;
        tasks.push(tokio::spawn(async move {
            for _ in 0..20 {
                let r = produce(&mut c, "gc", 0, batch(&[format!("p{i}").as_bytes()])).await;
                assert_eq!(r.error_code, 0);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut c = b.connect().await;
    assert_eq!(fetch(&mut c, "gc", 0, 0, 0, 1 << 20).await.high_watermark, 160);
}

#[tokio::test]
async fn page_cache_mode_serves_appends() {
    let b = TestBroker::start_with(PAGE_CACHE).await;
    let mut c = b.connect().await;
    assert_eq!(produce(&mut c, "pc", 0, batch(&[b"a"])).await.base_offset, 0);
    assert_eq!(fetch(&mut c, "pc", 0, 0, 0, 1 << 20).await.high_watermark, 1);
}

async fn earliest(c: &mut Conn, topic: &str) -> i64 {
    let req = ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![
        list_offsets_request::ListOffsetsTopic::default().with_name(name(topic)).with_partitions(vec![
            list_offsets_request::ListOffsetsPartition::default().with_partition_index(0).with_timestamp(-2),
        ]),
    ]);
    let r: ListOffsetsResponse = c.call(ApiKey::ListOffsets, 8, &req).await;
    r.topics[0].partitions[0].offset
}

/// L8 through the broker: the retention timer deletes whole old segments and the log start
/// offset moves; a fetch below it is OFFSET_OUT_OF_RANGE.
#[tokio::test]
async fn l8_retention_runs_on_its_timer() {
    let b = TestBroker::start_with(|c| c.retention_check_interval_ms = 50).await;
    let mut c = b.connect().await;
    let created = create_topic(&mut c, "ret", 1, &[("segment.bytes", "300"), ("retention.ms", "60000")]).await;
    assert_eq!(created.error_code, 0, "{:?}", created.error_message);
    let hour_ago = now_ms() - 3_600_000;
    let value = [9u8; 150];
    for _ in 0..3 {
        assert_eq!(produce(&mut c, "ret", 0, batch_with(&[&value], -1, -1, -1, hour_ago)).await.error_code, 0);
    }
    assert_eq!(produce(&mut c, "ret", 0, batch(&[&value])).await.error_code, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while earliest(&mut c, "ret").await < 3 {
        assert!(Instant::now() < deadline, "retention did not run");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(earliest(&mut c, "ret").await, 3, "the fresh batch stays");
    assert_eq!(fetch(&mut c, "ret", 0, 0, 0, 1 << 20).await.error_code, 1);
    assert_eq!(batches_in(fetch(&mut c, "ret", 0, 3, 0, 1 << 20).await.records.unwrap()), vec![(3, 1)]);
}

/// Many concurrent connections, each producing and fetching; every record lands exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_connections() {
    let b = TestBroker::start().await;
    let mut admin = b.connect().await;
    create_topic(&mut admin, "many", 4, &[]).await;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let mut c = b.connect().await;
        tasks.push(tokio::spawn(async move {
            for j in 0..5 {
                let r = produce(&mut c, "many", (i + j) % 4, batch(&[b"x", b"y"])).await;
                assert_eq!(r.error_code, 0);
                let f = fetch(&mut c, "many", (i + j) % 4, r.base_offset, 0, 1 << 20).await;
                assert!(batches_in(f.records.unwrap()).first().is_some_and(|(base, _)| *base == r.base_offset));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut total = 0;
    for p in 0..4 {
        total += fetch(&mut admin, "many", p, 0, 0, 1 << 20).await.high_watermark;
    }
    assert_eq!(total, 200 * 5 * 2);
}

/// Pipelined produces on one connection are appended in the order sent: an idempotent
/// producer with many requests in flight sees contiguous sequences accepted, and offsets
/// follow the send order (found by the Java and franz-go clients, 5 in flight by default).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pipelined_produces_are_appended_in_order() {
    let b = TestBroker::start().await;
    let mut c = b.connect().await;
    create_topic(&mut c, "order", 1, &[]).await;
    let init: InitProducerIdResponse =
        c.call(ApiKey::InitProducerId, 4, &InitProducerIdRequest::default().with_transactional_id(None)).await;
    let pid = init.producer_id.0;
    let mut ids = Vec::new();
    for i in 0..100 {
        let records = batch_with(&[b"a", b"b"], pid, 0, i * 2, now_ms());
        ids.push(c.send(ApiKey::Produce, 9, &produce_request("order", 0, -1, records)).await);
    }
    for (i, id) in ids.into_iter().enumerate() {
        let (got, r): (i32, ProduceResponse) = c.recv(ApiKey::Produce, 9).await;
        assert_eq!(got, id);
        let p = &r.responses[0].partition_responses[0];
        assert_eq!((p.error_code, p.base_offset), (0, i as i64 * 2), "request {i}");
    }
}
