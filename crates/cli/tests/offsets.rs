//! ListOffsets (earliest, latest, by timestamp) and fetch positions: where a consumer starts and
//! what happens outside the log.

mod common;

use std::time::Duration;

use common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};

const BASE_TS: i64 = 1_700_000_000_000;
/// L4's example: timestamps [100, 200, 200, 300] relative to BASE_TS at offsets 0..3.
const TIMESTAMPS: [i64; 4] = [100, 200, 200, 300];

/// Produces one record per timestamp, each awaited (one batch each) or all queued together
/// with linger (one batch).
async fn produce_timestamps(broker: &Broker, topic: &str, one_batch: bool) {
    let producer: FutureProducer = producer_config(broker, "all")
        .set("linger.ms", if one_batch { "200" } else { "0" })
        .create()
        .expect("producer");
    let mut pending = Vec::new();
    for (i, ts) in TIMESTAMPS.iter().enumerate() {
        let value = format!("ts{i}");
        let f = producer
            .send_result(FutureRecord::<(), str>::to(topic).partition(0).payload(&value).timestamp(BASE_TS + ts))
            .unwrap_or_else(|(e, _)| panic!("enqueue: {e}"));
        if one_batch {
            pending.push(f);
        } else {
            let d = f.await.expect("future").expect("delivered");
            assert_eq!(d.offset, i as i64);
        }
    }
    for (i, f) in pending.into_iter().enumerate() {
        let d = f.await.expect("future").expect("delivered");
        assert_eq!(d.offset, i as i64);
    }
}

fn offset_for_time(consumer: &BaseConsumer, topic: &str, ts: i64) -> Offset {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(ts)).expect("add partition");
    let res = consumer.offsets_for_times(tpl, OP_TIMEOUT).expect("ListOffsets by timestamp");
    let elem = res.find_partition(topic, 0).expect("partition answered");
    assert!(elem.error().is_ok(), "ListOffsets({ts}) error {:?}", elem.error());
    elem.offset()
}

#[tokio::test]
async fn watermarks_track_appends() {
    let broker = Broker::start();
    let topic = unique_topic("watermarks");
    create_topic(&broker, &topic, 1, &[]).await;
    let consumer: BaseConsumer = consumer_config(&broker).create().expect("consumer");
    assert_eq!(consumer.fetch_watermarks(&topic, 0, OP_TIMEOUT).expect("ListOffsets"), (0, 0), "empty partition");
    produce_timestamps(&broker, &topic, false).await;
    assert_eq!(consumer.fetch_watermarks(&topic, 0, OP_TIMEOUT).expect("ListOffsets"), (0, 4));
    let err = consumer.fetch_watermarks(&topic, 7, OP_TIMEOUT).expect_err("ListOffsets for a missing partition");
    assert_eq!(err, KafkaError::MetadataFetch(RDKafkaErrorCode::UnknownPartition), "missing partition");
}

async fn check_offsets_for_times(one_batch: bool) {
    let broker = Broker::start();
    let topic = unique_topic(if one_batch { "times-batch" } else { "times" });
    create_topic(&broker, &topic, 1, &[]).await;
    produce_timestamps(&broker, &topic, one_batch).await;
    let consumer: BaseConsumer = consumer_config(&broker).create().expect("consumer");
    for (target, expected) in [
        (BASE_TS - 1_000_000, Offset::Offset(0)),
        (BASE_TS + 100, Offset::Offset(0)),
        (BASE_TS + 150, Offset::Offset(1)),
        (BASE_TS + 200, Offset::Offset(1)),
        (BASE_TS + 250, Offset::Offset(3)),
        (BASE_TS + 300, Offset::Offset(3)),
        // No record at or after the target: offset -1, which librdkafka shows as End.
        (BASE_TS + 301, Offset::End),
    ] {
        assert_eq!(
            offset_for_time(&consumer, &topic, target),
            expected,
            "offsets_for_times(BASE_TS{:+}), one batch: {one_batch}",
            target - BASE_TS
        );
    }
}

#[tokio::test]
async fn offsets_for_times_across_batches() {
    check_offsets_for_times(false).await;
}

#[tokio::test]
async fn offsets_for_times_within_one_batch() {
    check_offsets_for_times(true).await;
}

#[tokio::test]
async fn consume_from_positions() {
    let broker = Broker::start();
    let topic = unique_topic("positions");
    create_topic(&broker, &topic, 1, &[]).await;
    let producer: FutureProducer = producer_config(&broker, "all").set("linger.ms", "100").create().expect("producer");
    let pending: Vec<_> = (0..10)
        .map(|i| {
            producer
                .send_result(FutureRecord::<(), str>::to(&topic).partition(0).payload(&format!("r{i}")))
                .unwrap_or_else(|(e, _)| panic!("enqueue: {e}"))
        })
        .collect();
    for f in pending {
        f.await.expect("future").expect("delivered");
    }

    let from_end = consume(&broker, &topic, 0, Offset::OffsetTail(3), 3);
    assert_eq!(from_end.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![7, 8, 9]);
    let from_mid = consume(&broker, &topic, 0, Offset::Offset(5), 5);
    assert_eq!(from_mid[0].offset, 5);
    assert_eq!(from_mid[0].value.as_deref(), Some(&b"r5"[..]));
}

#[tokio::test]
async fn fetch_out_of_range() {
    // F5/L11: fetching beyond the log end is OFFSET_OUT_OF_RANGE; the client resets or reports.
    let broker = Broker::start();
    let topic = unique_topic("out-of-range");
    create_topic(&broker, &topic, 1, &[]).await;
    let producer: FutureProducer = producer_config(&broker, "all").create().expect("producer");
    producer
        .send(FutureRecord::<(), str>::to(&topic).partition(0).payload("only"), Timeout::After(OP_TIMEOUT))
        .await
        .expect("delivered");

    // auto.offset.reset=error: the out-of-range error reaches the application.
    let consumer: BaseConsumer = consumer_config(&broker).create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Offset(100)).expect("add");
    consumer.assign(&tpl).expect("assign");
    let deadline = std::time::Instant::now() + OP_TIMEOUT;
    let err = loop {
        assert!(std::time::Instant::now() < deadline, "no out-of-range error reported");
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(m)) => panic!("record from beyond the log end: {m:?}"),
            Some(Err(e)) => break e,
        }
    };
    assert_eq!(err.rdkafka_error_code(), Some(RDKafkaErrorCode::AutoOffsetReset), "error {err}");

    // auto.offset.reset=earliest: the consumer restarts from the log start.
    let consumer: BaseConsumer =
        consumer_config(&broker).set("auto.offset.reset", "earliest").create().expect("consumer");
    let recs = consume_with(&consumer, &topic, 0, Offset::Offset(100), 1);
    assert_eq!((recs[0].offset, recs[0].value.as_deref()), (0, Some(&b"only"[..])));
}
