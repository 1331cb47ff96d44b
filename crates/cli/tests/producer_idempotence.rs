//! The idempotent producer against the real broker (or Apache Kafka with `SLUICE_TEST_KAFKA=1`,
//! see `consumer_support`): many small batches per partition in flight at once (SEMANTICS P15,
//! P16: sequences consecutive across batches and requests, nothing appended twice or lost), sent
//! right after CreateTopics, when Kafka still refuses some partitions' first batches with
//! NOT_LEADER_OR_FOLLOWER while it holds no state for the producer (P19).

mod common;
mod consumer_support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::interposer::{api_key, Interposer, OnRequest, OnResponse};
use common::unique_topic;
use consumer_support::TestBroker;
use sluice_client::{
    Admin, ClientConfig, Error, NewTopic, OffsetSpec, Producer, ProducerConfig, ProducerRecord, TopicPartition,
};
use tokio::net::TcpListener;

/// Bound on the whole produce phase: records are tiny, so this only trips on a stall.
const DELIVERY_BOUND: Duration = Duration::from_secs(30);

/// P15/P16/P19: `batch_size` 1024 makes ~10 batches per partition, sent as up to 5 pipelined
/// requests as soon as the topic is created: every record is acknowledged, offsets per partition
/// are 0..n in send order, and the log end offsets match (nothing appended twice). Before the
/// fix, against Kafka, a refused first batch let later ones in, and was then refused
/// OUT_OF_ORDER_SEQUENCE_NUMBER until its delivery timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_batches_over_eight_partitions_are_each_appended_once_in_order() {
    let broker = TestBroker::start();
    let topic = unique_topic("idem-small");
    let partitions = 8;
    let admin = Admin::connect(ClientConfig::new(broker.addr())).await.expect("admin");
    admin.create_topic(NewTopic::new(&topic, partitions, 1)).await.expect("create topic");
    let mut config = ProducerConfig::new(broker.addr());
    config.batch_size = 1024;
    config.delivery_timeout_ms = DELIVERY_BOUND.as_millis() as u64;
    let producer = Producer::new(config).await.expect("producer");
    assert!(producer.producer_id().is_some(), "idempotent by default");

    let mut deliveries = Vec::new();
    for i in 0..800 {
        let p = i % partitions;
        let record = ProducerRecord::new(&topic).partition(p).value(format!("value-{i:04}"));
        deliveries.push((p, producer.send(record).await.expect("send")));
    }
    let mut offsets: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    let mut failures = Vec::new();
    for (p, d) in deliveries {
        match tokio::time::timeout(DELIVERY_BOUND, d).await {
            Ok(Ok(meta)) => offsets.entry(p).or_default().push(meta.offset),
            Ok(Err(e)) => failures.push(format!("partition {p}: {e}")),
            Err(_) => failures.push(format!("partition {p}: no result within {DELIVERY_BOUND:?}")),
        }
    }
    producer.close().await.expect("close");
    assert!(
        failures.is_empty(),
        "{} failed deliveries, first: {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    for (p, got) in &offsets {
        let want: Vec<i64> = (0..100).collect();
        assert_eq!(got, &want, "offsets of partition {p} in send order");
    }

    let tps: Vec<TopicPartition> = (0..partitions).map(|p| TopicPartition::new(topic.clone(), p)).collect();
    let ends = admin.list_offsets(&tps, OffsetSpec::Latest).await.expect("list offsets");
    for tp in &tps {
        assert_eq!(ends.get(tp).map(|o| o.offset), Some(100), "log end offset of {tp}");
    }
}

/// A TCP proxy that forwards everything, except that while `swallow` is set it drops Produce
/// requests on the floor (the broker never sees them, the client gets no answer).
struct SwallowingProxy {
    addr: String,
    swallow: Arc<AtomicBool>,
}

impl SwallowingProxy {
    fn start(listener: TcpListener, broker_addr: String) -> SwallowingProxy {
        let swallow = Arc::new(AtomicBool::new(false));
        let s = swallow.clone();
        let on_request = move |frame: &[u8]| match api_key(frame) == 0 && s.load(Ordering::SeqCst) {
            true => OnRequest::Swallow,
            false => OnRequest::Forward,
        };
        let proxy =
            Interposer::start(listener, broker_addr, Arc::new(on_request), Arc::new(|_, _: &[u8]| OnResponse::Forward));
        SwallowingProxy { addr: proxy.addr, swallow }
    }
}

/// P18 / KIP-360, against the real Sluice broker: a batch that was sent but never answered is
/// given up at its delivery timeout, leaving a gap in the partition's sequence. The producer
/// bumps its epoch, and the next record is appended (sequence 0 of the new epoch) instead of
/// being refused OUT_OF_ORDER_SEQUENCE_NUMBER until the producer is recreated.
///
/// Sluice only: the broker must advertise the proxy's address (`--advertise`), which the Kafka
/// fixture does not offer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_given_up_bumps_the_epoch_and_later_records_are_appended() {
    if consumer_support::against_kafka() {
        eprintln!("skipped against Kafka: needs a broker advertising the proxy");
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let proxy_addr = listener.local_addr().expect("proxy address").to_string();
    let broker = common::Broker::start_with(&["--advertise", &proxy_addr]);
    let proxy = SwallowingProxy::start(listener, broker.addr().to_string());
    let topic = unique_topic("idem-bump");
    let admin = Admin::connect(ClientConfig::new(&proxy.addr)).await.expect("admin");
    admin.create_topic(NewTopic::new(&topic, 1, 1)).await.expect("create topic");

    let mut config = ProducerConfig::new(&proxy.addr);
    config.linger_ms = 0;
    config.retry_backoff_ms = 20;
    config.client.connection.request_timeout_ms = 300;
    config.delivery_timeout_ms = 1000;
    let producer = Producer::new(config).await.expect("producer");
    let (id, epoch) = producer.producer_id().expect("idempotent");
    let send = |value: &'static str| producer.send(ProducerRecord::new(&topic).partition(0).value(value));

    let first = send("a").await.expect("send").await.expect("a delivered");
    assert_eq!(first.offset, 0);
    proxy.swallow.store(true, Ordering::SeqCst);
    let lost = send("b").await.expect("send").await.expect_err("b is never answered");
    assert!(matches!(lost, Error::DeliveryTimeout { .. }), "{lost}");
    proxy.swallow.store(false, Ordering::SeqCst);
    let next = tokio::time::timeout(DELIVERY_BOUND, send("c").await.expect("send")).await.expect("c has a result");
    assert_eq!(next.expect("c delivered after the lost batch").offset, 1);
    assert_eq!(producer.producer_id(), Some((id, epoch + 1)), "the epoch was bumped once");
    producer.close().await.expect("close");

    let values: Vec<Vec<u8>> = common::consume_all(&broker, &topic, 0).into_iter().filter_map(|r| r.value).collect();
    assert_eq!(values, vec![b"a".to_vec(), b"c".to_vec()], "b never reached the broker; nothing twice");
}
