//! A subscribed topic gains partitions while a group of Sluice-client consumers reads it
//! (against the real broker, or Apache Kafka with `SLUICE_TEST_KAFKA=1`, see `consumer_support`):
//! the group leader notices at its next metadata refresh (`metadata_max_age_ms`), the group
//! rebalances, and records produced to the new partitions are consumed within a bound, each
//! partition owned by exactly one member (SEMANTICS C2-style subscription change, A-assignors).

mod common;
mod consumer_support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::unique_topic;
use consumer_support::{create_topic, TestBroker};
use sluice_client::{Admin, ClientConfig, Consumer, Producer, ProducerConfig, ProducerRecord, TopicPartition};

/// Bound on everything that waits for the group (joins, consumption of the first records).
const SETTLE: Duration = Duration::from_secs(30);
/// The leader's metadata refresh interval in these tests.
const METADATA_MAX_AGE_MS: u64 = 500;
/// From the new partitions' records being acknowledged to their consumption.
const GROWTH_BOUND: Duration = Duration::from_secs(15);

/// (member, partition, offset) of every record a member's poll returned.
type Seen = Arc<Mutex<Vec<(usize, i32, i64)>>>;

/// A member polling in its own task until `stop`; the task returns the consumer.
fn member(
    broker: &TestBroker,
    id: usize,
    group: &str,
    topic: &str,
    assignor: &str,
    seen: Seen,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Consumer> {
    let mut config = consumer_support::consumer_config(broker, Some(group));
    config.assignors = vec![assignor.to_string()];
    config.metadata_max_age_ms = METADATA_MAX_AGE_MS;
    let topic = topic.to_string();
    tokio::spawn(async move {
        let mut consumer = Consumer::new(config).await.expect("consumer");
        consumer.subscribe(vec![topic]).await.expect("subscribe");
        while !stop.load(Ordering::Acquire) {
            let records = consumer.poll(Duration::from_millis(50)).await.expect("poll");
            seen.lock().unwrap().extend(records.iter().map(|r| (id, r.partition, r.offset)));
        }
        consumer
    })
}

async fn produce_one_to_each(broker: &TestBroker, topic: &str, partitions: impl IntoIterator<Item = i32>) {
    let producer = Producer::new(ProducerConfig::new(broker.addr())).await.expect("producer");
    let mut deliveries = Vec::new();
    for p in partitions {
        let record = ProducerRecord::new(topic).partition(p).value(format!("{topic}/{p}"));
        deliveries.push(producer.send(record).await.expect("send"));
    }
    for d in deliveries {
        d.await.expect("delivered");
    }
    producer.close().await.expect("close producer");
}

/// Waits until records of every one of `partitions` were consumed; returns when.
async fn wait_consumed(seen: &Seen, partitions: &[i32], bound: Duration) -> Instant {
    let deadline = Instant::now() + bound;
    loop {
        let got: BTreeSet<i32> = seen.lock().unwrap().iter().map(|(_, p, _)| *p).collect();
        if partitions.iter().all(|p| got.contains(p)) {
            return Instant::now();
        }
        assert!(Instant::now() < deadline, "partitions {partitions:?} not consumed within {bound:?}; got {got:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn grow_while_consuming(assignor: &str) {
    let broker = TestBroker::start();
    let topic = unique_topic("grow");
    let group = unique_topic("grow-group");
    create_topic(&broker, &topic, 2).await;
    let seen: Seen = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let members: Vec<_> =
        (0..2).map(|id| member(&broker, id, &group, &topic, assignor, seen.clone(), stop.clone())).collect();

    produce_one_to_each(&broker, &topic, 0..2).await;
    wait_consumed(&seen, &[0, 1], SETTLE).await;

    let admin = Admin::connect(ClientConfig::new(broker.addr())).await.expect("admin");
    admin.create_partitions(&topic, 4).await.expect("create partitions");
    let deadline = Instant::now() + SETTLE;
    while admin.describe_topics(&[&topic]).await.map_or(true, |t| t[0].num_partitions() != 4) {
        assert!(Instant::now() < deadline, "the topic never showed 4 partitions");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    produce_one_to_each(&broker, &topic, 2..4).await;
    let produced = Instant::now();
    let consumed = wait_consumed(&seen, &[2, 3], GROWTH_BOUND).await;
    eprintln!("{assignor}: new partitions consumed {:?} after their records were acknowledged", consumed - produced);

    stop.store(true, Ordering::Release);
    let mut owned: Vec<Vec<TopicPartition>> = Vec::new();
    for m in members {
        let consumer = m.await.expect("member task");
        owned.push(consumer.assignment().to_vec());
        consumer.close().await.expect("close");
    }
    let all: Vec<i32> = owned.iter().flatten().map(|tp| tp.partition).collect();
    let unique: BTreeSet<i32> = all.iter().copied().collect();
    assert_eq!(unique, (0..4).collect(), "every partition owned: {owned:?}");
    assert_eq!(all.len(), 4, "no partition owned twice: {owned:?}");
    let new_records: Vec<(usize, i32, i64)> =
        seen.lock().unwrap().iter().filter(|(_, p, _)| *p >= 2).copied().collect();
    assert_eq!(new_records.len(), 2, "each new partition's record consumed once: {new_records:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_partitions_are_assigned_and_consumed_range() {
    grow_while_consuming("range").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_partitions_are_assigned_and_consumed_cooperative_sticky() {
    grow_while_consuming("cooperative-sticky").await;
}
