//! Produce with librdkafka (acks 0/1/all, compression, idempotence, auto-creation) and read the
//! records back with an assign()-only consumer.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::statistics::Statistics;
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};

/// Queues every value to `topic`/`partition` without waiting, then waits for all deliveries;
/// returns the delivered offsets in send order.
async fn produce_values(producer: &FutureProducer, topic: &str, partition: i32, values: &[Vec<u8>]) -> Vec<i64> {
    let futures: Vec<DeliveryFuture> = values
        .iter()
        .map(|v| {
            producer
                .send_result(FutureRecord::<(), [u8]>::to(topic).partition(partition).payload(&v[..]))
                .unwrap_or_else(|(e, _)| panic!("enqueue: {e}"))
        })
        .collect();
    let mut offsets = Vec::with_capacity(futures.len());
    for f in futures {
        let delivery = f
            .await
            .expect("delivery future dropped")
            .unwrap_or_else(|(e, _)| panic!("delivery to {topic}/{partition}: {e}"));
        assert_eq!(delivery.partition, partition);
        offsets.push(delivery.offset);
    }
    offsets
}

fn numbered_values(prefix: &str, count: usize) -> Vec<Vec<u8>> {
    (0..count).map(|i| format!("{prefix}-{i:05}").into_bytes()).collect()
}

#[tokio::test]
async fn acks_variants_assign_offsets_in_order() {
    let broker = Broker::start();
    for acks in ["0", "1", "all", "-1"] {
        let topic = unique_topic(&format!("acks{acks}"));
        create_topic(&broker, &topic, 1, &[]).await;
        let producer: FutureProducer = producer_config(&broker, acks).create().expect("producer");
        let values = numbered_values(&format!("acks={acks}"), 50);
        let offsets = produce_values(&producer, &topic, 0, &values).await;
        if acks != "0" {
            // With acks=0 the broker sends no response, so the client knows no offsets.
            let expected: Vec<i64> = (0..50).collect();
            assert_eq!(offsets, expected, "acks={acks}: delivered offsets");
        }
        let recs = consume(&broker, &topic, 0, Offset::Beginning, values.len());
        let got_offsets: Vec<i64> = recs.iter().map(|r| r.offset).collect();
        let expected: Vec<i64> = (0..50).collect();
        assert_eq!(got_offsets, expected, "acks={acks}: consumed offsets");
        let got_values: Vec<Vec<u8>> = recs.into_iter().map(|r| r.value.unwrap()).collect();
        assert_eq!(got_values, values, "acks={acks}: consumed values");
    }
}

#[tokio::test]
async fn invalid_acks_rejected() {
    // P9: acks outside {-1, 0, 1} → INVALID_REQUIRED_ACKS for every partition.
    let broker = Broker::start();
    let topic = unique_topic("acks2");
    create_topic(&broker, &topic, 1, &[]).await;
    let producer: FutureProducer = producer_config(&broker, "2").set("retries", "0").create().expect("producer");
    let err = producer
        .send(FutureRecord::<(), [u8]>::to(&topic).partition(0).payload(b"x"), Timeout::After(OP_TIMEOUT))
        .await
        .expect_err("acks=2 must be rejected");
    assert_eq!(err.0, KafkaError::MessageProduction(RDKafkaErrorCode::InvalidRequiredAcks));
}

#[tokio::test]
async fn pipelined_produce_requests_append_in_order() {
    // Kafka handles the requests of one connection one at a time, in order. A producer with
    // several requests in flight and no idempotence relies on that for its ordering.
    let broker = Broker::start();
    let topic = unique_topic("pipelined");
    create_topic(&broker, &topic, 1, &[]).await;
    let producer: FutureProducer = producer_config(&broker, "all")
        .set("max.in.flight.requests.per.connection", "5")
        .set("linger.ms", "1")
        .set("batch.num.messages", "20")
        .create()
        .expect("producer");
    let values = numbered_values("pipelined", 3000);
    let offsets = produce_values(&producer, &topic, 0, &values).await;
    let misplaced = offsets.iter().enumerate().filter(|(i, &o)| o != *i as i64).count();
    assert_eq!(
        misplaced,
        0,
        "{misplaced} of 3000 records got an offset out of send order; first offsets: {:?}",
        &offsets[..offsets.len().min(10)]
    );
    let got: Vec<Vec<u8>> = consume_all(&broker, &topic, 0).into_iter().map(|r| r.value.unwrap()).collect();
    assert_eq!(got, values);
}

#[tokio::test]
async fn keys_values_headers_timestamps_round_trip() {
    let broker = Broker::start();
    let topic = unique_topic("fields");
    create_topic(&broker, &topic, 1, &[]).await;
    let producer: FutureProducer = producer_config(&broker, "all").create().expect("producer");

    let binary: Vec<u8> = (0..=255u8).collect();
    let big = vec![0xabu8; 200_000];
    let base_ts = 1_700_000_000_000i64;
    // (key, value, headers, timestamp)
    type Case = (Option<Vec<u8>>, Option<Vec<u8>>, Vec<(&'static str, Option<Vec<u8>>)>, i64);
    let cases: Vec<Case> = vec![
        (Some(b"k1".to_vec()), Some(b"v1".to_vec()), vec![], base_ts),
        (None, Some(b"no key".to_vec()), vec![], base_ts + 1),
        (Some(b"tombstone".to_vec()), None, vec![], base_ts + 2),
        (Some(vec![]), Some(vec![]), vec![], base_ts + 3),
        (Some(binary.clone()), Some(binary.clone()), vec![], base_ts + 4),
        (
            Some(b"headers".to_vec()),
            Some(b"h".to_vec()),
            vec![
                ("a", Some(b"1".to_vec())),
                ("b", None),
                ("a", Some(b"2".to_vec())),
                ("empty", Some(vec![])),
                ("bin", Some(binary.clone())),
            ],
            base_ts + 5,
        ),
        (None, Some(big.clone()), vec![("size", Some(b"200000".to_vec()))], base_ts - 86_400_000),
    ];

    let mut futures = Vec::new();
    for (key, value, headers, ts) in &cases {
        let mut record = FutureRecord::<[u8], [u8]>::to(&topic).partition(0).timestamp(*ts);
        if let Some(k) = key {
            record = record.key(&k[..]);
        }
        if let Some(v) = value {
            record = record.payload(&v[..]);
        }
        if !headers.is_empty() {
            let mut hs = OwnedHeaders::new();
            for (k, v) in headers {
                hs = hs.insert(Header { key: k, value: v.as_deref() });
            }
            record = record.headers(hs);
        }
        futures.push(producer.send_result(record).unwrap_or_else(|(e, _)| panic!("enqueue: {e}")));
    }
    for (i, f) in futures.into_iter().enumerate() {
        let d = f.await.expect("future").expect("delivered");
        assert_eq!(d.offset, i as i64);
    }

    let recs = consume(&broker, &topic, 0, Offset::Beginning, cases.len());
    for (i, (rec, (key, value, headers, ts))) in recs.iter().zip(&cases).enumerate() {
        assert_eq!(rec.offset, i as i64);
        assert_eq!(&rec.key, key, "key of record {i}");
        assert_eq!(&rec.value, value, "value of record {i}");
        let want: Vec<(String, Option<Vec<u8>>)> = headers.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        assert_eq!(rec.headers, want, "headers of record {i} (order and duplicates kept)");
        assert_eq!(rec.timestamp, Some(*ts), "timestamp of record {i}");
    }
}

#[tokio::test]
async fn partitions_have_independent_offsets() {
    let broker = Broker::start();
    let topic = unique_topic("partitions");
    create_topic(&broker, &topic, 3, &[]).await;
    let producer: FutureProducer = producer_config(&broker, "1").create().expect("producer");
    for (partition, count) in [(0, 3), (1, 5), (2, 1)] {
        let values = numbered_values(&format!("p{partition}"), count);
        let offsets = produce_values(&producer, &topic, partition, &values).await;
        assert_eq!(offsets, (0..count as i64).collect::<Vec<_>>());
    }
    for (partition, count) in [(0usize, 3usize), (1, 5), (2, 1)] {
        let recs = consume_all(&broker, &topic, partition as i32);
        assert_eq!(recs.len(), count);
        for (i, r) in recs.iter().enumerate() {
            assert_eq!(r.partition, partition as i32);
            assert_eq!(r.value.as_deref(), Some(format!("p{partition}-{i:05}").as_bytes()));
        }
    }
}

#[tokio::test]
async fn compressed_batches_round_trip() {
    let broker = Broker::start();
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let topic = unique_topic(codec);
        create_topic(&broker, &topic, 1, &[]).await;
        let producer: FutureProducer = producer_config(&broker, "all")
            .set("compression.type", codec)
            .set("linger.ms", "50")
            .create()
            .expect("producer");
        // Compressible values, sent together so that they share batches.
        let values: Vec<Vec<u8>> =
            (0..300).map(|i| format!("{codec} record {i:04} {}", "abc".repeat(50)).into_bytes()).collect();
        let offsets = produce_values(&producer, &topic, 0, &values).await;
        assert_eq!(offsets, (0..300).collect::<Vec<i64>>(), "{codec}");

        let recs = consume(&broker, &topic, 0, Offset::Beginning, values.len());
        let got: Vec<Vec<u8>> = recs.iter().map(|r| r.value.clone().unwrap()).collect();
        assert_eq!(got, values, "{codec}: values");
        assert_eq!(recs.iter().map(|r| r.offset).collect::<Vec<_>>(), offsets, "{codec}: offsets");

        // F3: a fetch from the middle of a compressed batch yields that offset first.
        let tail = consume(&broker, &topic, 0, Offset::Offset(151), 149);
        assert_eq!(tail[0].offset, 151, "{codec}: first offset fetched from the middle");
        assert_eq!(tail[0].value.as_deref(), Some(&values[151][..]));
        assert_eq!(tail.last().unwrap().offset, 299);
    }
}

#[tokio::test]
async fn idempotent_producers() {
    let broker = Broker::start();
    let topic = unique_topic("idempotent");
    create_topic(&broker, &topic, 2, &[]).await;
    let mut expected: Vec<Vec<Vec<u8>>> = vec![Vec::new(), Vec::new()];
    // Two producer instances in turn: each gets its own producer id and starts at sequence 0.
    for instance in 0..2 {
        let producer: FutureProducer = producer_config(&broker, "all")
            .set("enable.idempotence", "true")
            .set("max.in.flight.requests.per.connection", "5")
            .set("linger.ms", "5")
            .set("batch.num.messages", "50")
            .create()
            .expect("producer");
        for (partition, exp) in expected.iter_mut().enumerate() {
            let values = numbered_values(&format!("i{instance}-p{partition}"), 500);
            let offsets = produce_values(&producer, &topic, partition as i32, &values).await;
            let start = exp.len() as i64;
            assert_eq!(offsets, (start..start + 500).collect::<Vec<_>>(), "instance {instance} partition {partition}");
            exp.extend(values);
        }
        producer.flush(OP_TIMEOUT).expect("flush");
    }
    for (partition, exp) in expected.iter().enumerate() {
        let recs = consume_all(&broker, &topic, partition as i32);
        let got: Vec<Vec<u8>> = recs.into_iter().map(|r| r.value.unwrap()).collect();
        assert_eq!(&got, exp, "partition {partition}: exactly once, in order");
    }
}

/// Keeps the latest librdkafka statistics of a client.
#[derive(Clone, Default)]
struct StatsContext {
    latest: Arc<Mutex<Option<(Instant, Statistics)>>>,
}

impl ClientContext for StatsContext {
    fn stats(&self, statistics: Statistics) {
        *self.latest.lock().unwrap() = Some((Instant::now(), statistics));
    }
}

impl ConsumerContext for StatsContext {}

impl StatsContext {
    /// Fetch requests sent to all brokers, and when the statistics were taken.
    fn fetches(&self) -> Option<(Instant, i64)> {
        let guard = self.latest.lock().unwrap();
        let (at, stats) = guard.as_ref()?;
        let sent = stats.brokers.values().map(|b| b.req.get("Fetch").copied().unwrap_or(0)).sum();
        Some((*at, sent))
    }
}

fn stats_consumer(broker: &Broker, wait_ms: u32) -> (BaseConsumer<StatsContext>, StatsContext) {
    let context = StatsContext::default();
    let consumer: BaseConsumer<StatsContext> = consumer_config(broker)
        .set("fetch.wait.max.ms", wait_ms.to_string())
        .set("statistics.interval.ms", "100")
        .create_with_context(context.clone())
        .expect("consumer");
    (consumer, context)
}

fn assign_at(consumer: &BaseConsumer<StatsContext>, topic: &str, offset: i64) {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(offset)).expect("add partition");
    consumer.assign(&tpl).expect("assign");
}

/// Polls the consumer (which delivers the statistics) until `done` holds for the fetch count,
/// failing after `deadline`. No record may arrive meanwhile.
fn poll_until_fetches(
    consumer: &BaseConsumer<StatsContext>,
    context: &StatsContext,
    deadline: Duration,
    what: &str,
    done: impl Fn(i64) -> bool,
) -> (Instant, i64) {
    let end = Instant::now() + deadline;
    loop {
        if let Some((at, n)) = context.fetches() {
            if done(n) {
                return (at, n);
            }
        }
        assert!(Instant::now() < end, "{what}: fetch count {:?} after {deadline:?}", context.fetches().map(|f| f.1));
        if let Some(m) = consumer.poll(Duration::from_millis(20)) {
            panic!("unexpected message or error on an empty partition: {m:?}");
        }
    }
}

#[tokio::test]
async fn fetch_long_poll_wakes_on_produce() {
    // F1: a fetch on an empty partition parks until data arrives, then returns at once.
    let broker = Broker::start();
    let topic = unique_topic("long-poll");
    create_topic(&broker, &topic, 1, &[]).await;
    let (consumer, context) = stats_consumer(&broker, 5000);
    assign_at(&consumer, &topic, 0);

    // The first Fetch is sent; then several statistics intervals pass with no new Fetch, which
    // shows the broker holds the request instead of answering an empty fetch at once.
    let (first_at, _) = poll_until_fetches(&consumer, &context, OP_TIMEOUT, "first fetch", |n| n >= 1);
    let (_, parked) = poll_until_fetches(&consumer, &context, OP_TIMEOUT, "parked", |_| {
        first_at.elapsed() >= Duration::from_millis(600)
    });
    assert!(
        parked <= 2,
        "{parked} Fetch requests within 600 ms with fetch.wait.max.ms=5000: the broker \
         answers empty fetches without waiting"
    );

    let producer: FutureProducer = producer_config(&broker, "1").create().expect("producer");
    let sent_at = Instant::now();
    producer
        .send(FutureRecord::<(), [u8]>::to(&topic).partition(0).payload(b"wake up"), Timeout::After(OP_TIMEOUT))
        .await
        .expect("delivered");
    let deadline = sent_at + Duration::from_secs(10);
    let received = loop {
        assert!(Instant::now() < deadline, "record not received within 10 s");
        match consumer.poll(Duration::from_millis(50)) {
            None => continue,
            Some(Ok(m)) => break Rec::from_message(&m),
            Some(Err(e)) => panic!("consumer error: {e}"),
        }
    };
    let latency = sent_at.elapsed();
    assert_eq!(received.value.as_deref(), Some(&b"wake up"[..]));
    assert_eq!(received.offset, 0);
    assert!(
        latency < Duration::from_secs(2),
        "parked fetch answered after {latency:?}: the produce did not wake it \
         (fetch.wait.max.ms=5000)"
    );
}

#[tokio::test]
async fn empty_fetch_answered_after_max_wait() {
    // F1: with no data, the broker answers each fetch empty once max_wait_ms has passed.
    let broker = Broker::start();
    let topic = unique_topic("max-wait");
    create_topic(&broker, &topic, 1, &[]).await;
    let (consumer, context) = stats_consumer(&broker, 300);
    assign_at(&consumer, &topic, 0);
    let (first_at, first) = poll_until_fetches(&consumer, &context, OP_TIMEOUT, "first fetch", |n| n >= 1);
    let (later_at, later) =
        poll_until_fetches(&consumer, &context, OP_TIMEOUT, "three more fetches", |n| n >= first + 3);
    // Three full waits of 300 ms, less the 100 ms granularity of the statistics.
    let took = later_at - first_at;
    assert!(
        took >= Duration::from_millis(700),
        "{} fetches in {took:?}: empty fetches are not held for fetch.wait.max.ms=300",
        later - first
    );
}

#[tokio::test]
async fn auto_create_on_produce() {
    let broker = Broker::start_with(&["--num-partitions", "3"]);
    let topic = unique_topic("auto");
    let producer: FutureProducer = producer_config(&broker, "all").create().expect("producer");
    let d = producer
        .send(FutureRecord::<(), [u8]>::to(&topic).partition(1).payload(b"auto"), Timeout::After(OP_TIMEOUT))
        .await
        .unwrap_or_else(|(e, _)| panic!("produce to auto-created topic: {e}"));
    assert_eq!((d.partition, d.offset), (1, 0));
    assert_eq!(partition_count(&broker, &topic), 3, "--num-partitions applies");
    let recs = consume(&broker, &topic, 1, Offset::Beginning, 1);
    assert_eq!(recs[0].value.as_deref(), Some(&b"auto"[..]));
}

#[tokio::test]
async fn consumer_metadata_does_not_auto_create() {
    // A consumer's Metadata request has allow_auto_topic_creation=false (v4+).
    let broker = Broker::start();
    let topic = unique_topic("consumer-md");
    let consumer: BaseConsumer = consumer_config(&broker).create().expect("consumer");
    let md = consumer.fetch_metadata(Some(&topic), OP_TIMEOUT).expect("Metadata");
    let t = md.topics().iter().find(|t| t.name() == topic).expect("requested topic answered");
    assert_eq!(t.error().map(RDKafkaErrorCode::from), Some(RDKafkaErrorCode::UnknownTopicOrPartition));
    assert!(!list_topics(&broker).contains(&topic), "consumer metadata created {topic}");
}

#[tokio::test]
async fn unknown_topic_without_auto_create() {
    let broker = Broker::start_with(&["--auto-create-topics", "false"]);
    let topic = unique_topic("not-created");
    let producer: FutureProducer = producer_config(&broker, "all")
        .set("message.timeout.ms", "5000")
        .set("topic.metadata.propagation.max.ms", "1000")
        .create()
        .expect("producer");
    let err = producer
        .send(FutureRecord::<(), [u8]>::to(&topic).payload(b"nowhere"), Timeout::After(OP_TIMEOUT))
        .await
        .expect_err("produce to a missing topic with auto-creation off must fail");
    assert!(
        matches!(
            err.0,
            KafkaError::MessageProduction(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic)
        ),
        "unexpected error {:?}",
        err.0
    );
    let md = producer.client().fetch_metadata(Some(&topic), OP_TIMEOUT).expect("Metadata");
    let t = md.topics().iter().find(|t| t.name() == topic).expect("topic answered");
    assert_eq!(t.error().map(RDKafkaErrorCode::from), Some(RDKafkaErrorCode::UnknownTopicOrPartition));
    assert!(!list_topics(&broker).contains(&topic));
}

#[tokio::test]
async fn large_records_with_small_fetch_limits() {
    // F4 (KIP-74): a record larger than max.partition.fetch.bytes and fetch.max.bytes is still
    // returned, so the consumer makes progress.
    let broker = Broker::start();
    let topic = unique_topic("large");
    create_topic(&broker, &topic, 1, &[]).await;
    let producer: FutureProducer = producer_config(&broker, "all").create().expect("producer");
    let values: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 300_000]).collect();
    let offsets = produce_values(&producer, &topic, 0, &values).await;
    assert_eq!(offsets, vec![0, 1, 2]);
    let consumer: BaseConsumer = consumer_config(&broker)
        .set("max.partition.fetch.bytes", "1024")
        .set("fetch.max.bytes", "1024")
        .set("message.max.bytes", "1000")
        .create()
        .expect("consumer");
    let recs = consume_with(&consumer, &topic, 0, Offset::Beginning, 3);
    let got: Vec<Vec<u8>> = recs.into_iter().map(|r| r.value.unwrap()).collect();
    assert_eq!(got, values);
}

#[tokio::test]
async fn advertised_address_in_metadata() {
    let broker = Broker::start_with(&["--advertise", "sluice.invalid:19092"]);
    let consumer: BaseConsumer = consumer_config(&broker).create().expect("consumer");
    let md = consumer.fetch_metadata(None, OP_TIMEOUT).expect("Metadata");
    let hosts: Vec<(String, i32)> = md.brokers().iter().map(|b| (b.host().to_string(), b.port())).collect();
    assert_eq!(hosts, vec![("sluice.invalid".to_string(), 19092)]);
}
