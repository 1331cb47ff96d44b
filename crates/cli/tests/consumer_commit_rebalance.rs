//! Commits refused by the coordinator (SEMANTICS C6):
//! - REBALANCE_IN_PROGRESS: `commit_sync` fails with the typed, non-fatal
//!   `Error::RebalanceInProgress` (Java's RebalanceInProgressException), the next `poll` rejoins
//!   the group (a new generation), the uncommitted records come again, and a commit after the
//!   rejoin succeeds;
//! - NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE: `commit_sync` looks the coordinator up again
//!   and retries until `default_api_timeout_ms`, so a passing refusal is invisible and a lasting
//!   one fails after that time.
//!
//! A real broker answers a commit so only in moments a test cannot arrange (between a member's
//! JoinGroup and SyncGroup, or while the coordinator moves); so a proxy between the consumer and
//! the real Sluice broker answers OffsetCommits itself, in their place in the connection's
//! response order. Sluice only: the broker must advertise the proxy (`--advertise`), which the Kafka
//! fixture does not offer.

mod common;
mod consumer_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::interposer::{Interposer, OnRequest, OnResponse};
use common::unique_topic;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{ApiKey, OffsetCommitRequest, OffsetCommitResponse, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};
use sluice_client::{
    Admin, ClientConfig, Consumer, Error, NewTopic, Producer, ProducerConfig, ProducerRecord, TopicPartition,
};
use tokio::net::TcpListener;

const SETTLE: Duration = Duration::from_secs(30);
const REBALANCE_IN_PROGRESS: i16 = 27;
const NOT_COORDINATOR: i16 = 16;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;

/// A proxy that answers the next `armed` OffsetCommits itself with `code` for every partition
/// (counting `armed` down) and forwards everything else.
fn start_proxy(listener: TcpListener, broker_addr: String, code: i16, armed: Arc<AtomicUsize>) {
    let on_request = move |frame: &[u8]| {
        if armed.load(Ordering::SeqCst) == 0 {
            return OnRequest::Forward;
        }
        match forge_commit_refusal(frame, code) {
            Some(response) => {
                let _ = armed.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
                OnRequest::Answer(response)
            }
            None => OnRequest::Forward,
        }
    };
    Interposer::start(listener, broker_addr, Arc::new(on_request), Arc::new(|_, _: &[u8]| OnResponse::Forward));
}

/// For an OffsetCommit request frame, the framed response refusing every partition.
fn forge_commit_refusal(frame: &[u8], code: i16) -> Option<Vec<u8>> {
    let key = i16::from_be_bytes([frame[4], frame[5]]);
    if key != ApiKey::OffsetCommit as i16 {
        return None;
    }
    let version = i16::from_be_bytes([frame[6], frame[7]]);
    let mut body: &[u8] = &frame[4..];
    let header = RequestHeader::decode(&mut body, ApiKey::OffsetCommit.request_header_version(version)).ok()?;
    let request = OffsetCommitRequest::decode(&mut body, version).ok()?;
    let response = OffsetCommitResponse::default().with_topics(
        request
            .topics
            .iter()
            .map(|t| {
                OffsetCommitResponseTopic::default().with_name(t.name.clone()).with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code)
                        })
                        .collect(),
                )
            })
            .collect(),
    );
    let mut out: Vec<u8> = Vec::new();
    ResponseHeader::default()
        .with_correlation_id(header.correlation_id)
        .encode(&mut out, ApiKey::OffsetCommit.response_header_version(version))
        .ok()?;
    response.encode(&mut out, version).ok()?;
    let mut framed = (out.len() as i32).to_be_bytes().to_vec();
    framed.extend_from_slice(&out);
    Some(framed)
}

/// A Sluice broker behind a refusing proxy, a 1-partition topic with 3 records, and a group
/// consumer (manual commits) that has read them. `None` (the test is skipped) against Kafka:
/// the broker must advertise the proxy, which the Kafka fixture does not offer.
struct Setup {
    _broker: common::Broker,
    armed: Arc<AtomicUsize>,
    consumer: Consumer,
    topic: String,
}

async fn setup(code: i16, prefix: &str, default_api_timeout_ms: u64) -> Option<Setup> {
    if consumer_support::against_kafka() {
        eprintln!("skipped against Kafka: needs a broker advertising the proxy");
        return None;
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let proxy_addr = listener.local_addr().expect("proxy address").to_string();
    let broker = common::Broker::start_with(&["--advertise", &proxy_addr, "--group-initial-rebalance-delay-ms", "0"]);
    let armed = Arc::new(AtomicUsize::new(0));
    start_proxy(listener, broker.addr().to_string(), code, armed.clone());

    let topic = unique_topic(prefix);
    let admin = Admin::connect(ClientConfig::new(&proxy_addr)).await.expect("admin");
    admin.create_topic(NewTopic::new(&topic, 1, 1)).await.expect("create topic");
    let producer = Producer::new(ProducerConfig::new(&proxy_addr)).await.expect("producer");
    for i in 0..3 {
        producer.send(ProducerRecord::new(&topic).value(format!("v{i}"))).await.expect("send").await.expect("ack");
    }
    producer.close().await.expect("close producer");

    let mut config = sluice_client::ConsumerConfig::new(&proxy_addr).group(unique_topic(&format!("{prefix}-group")));
    config.auto_offset_reset = sluice_client::AutoOffsetReset::Earliest;
    config.enable_auto_commit = false;
    config.heartbeat_interval_ms = 200;
    config.session_timeout_ms = 10_000;
    config.default_api_timeout_ms = default_api_timeout_ms;
    let mut consumer = Consumer::new(config).await.expect("consumer");
    consumer.subscribe(vec![topic.clone()]).await.expect("subscribe");
    let mut read = 0;
    let deadline = Instant::now() + SETTLE;
    while read < 3 {
        assert!(Instant::now() < deadline, "read {read} of 3 records");
        read += consumer.poll(Duration::from_millis(100)).await.expect("poll").len();
    }
    Some(Setup { _broker: broker, armed, consumer, topic })
}

/// C6: a commit refused NOT_COORDINATOR twice is retried (the coordinator looked up again) and
/// lands; `commit_sync` returns Ok and the offset is committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_sync_retries_not_coordinator_until_it_lands_c6() {
    let Some(Setup { _broker, armed, mut consumer, topic }) = setup(NOT_COORDINATOR, "commit-nc", 60_000).await else {
        return;
    };
    let tp = TopicPartition::new(topic.clone(), 0);
    armed.store(2, Ordering::SeqCst);
    consumer.commit_sync().await.expect("commit_sync retries past NOT_COORDINATOR");
    assert_eq!(armed.load(Ordering::SeqCst), 0, "both refusals were served (the commit was retried)");
    assert_eq!(consumer.committed(std::slice::from_ref(&tp)).await.expect("committed").get(&tp), Some(&3));
    consumer.close().await.expect("close");
}

/// C6: a coordinator that stays unavailable fails `commit_sync` once `default_api_timeout_ms`
/// has passed, with the broker's error, and nothing is committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_sync_gives_up_after_default_api_timeout_c6() {
    let Some(Setup { _broker, armed, mut consumer, topic }) =
        setup(COORDINATOR_NOT_AVAILABLE, "commit-cna", 1_000).await
    else {
        return;
    };
    let tp = TopicPartition::new(topic.clone(), 0);
    armed.store(usize::MAX, Ordering::SeqCst);
    let started = Instant::now();
    let e = consumer.commit_sync().await.expect_err("the coordinator never accepts");
    let took = started.elapsed();
    assert_eq!(e.kafka_error(), Some(sluice_client::error::ResponseError::CoordinatorNotAvailable), "{e:?}");
    assert!(took >= Duration::from_millis(800), "gave up after {took:?}, before default_api_timeout_ms");
    assert!(took < Duration::from_secs(10), "gave up only after {took:?}");
    let refused = usize::MAX - armed.load(Ordering::SeqCst);
    assert!(refused >= 3, "retried: {refused} attempts refused");
    armed.store(0, Ordering::SeqCst);
    assert_eq!(consumer.committed(std::slice::from_ref(&tp)).await.expect("committed").get(&tp), Some(&-1));
    consumer.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_refused_rebalance_in_progress_is_typed_and_the_next_poll_rejoins_c6() {
    let Some(Setup { _broker, armed, mut consumer, topic }) = setup(REBALANCE_IN_PROGRESS, "commit-rip", 60_000).await
    else {
        return;
    };
    let generation = consumer.generation_id();
    let tp = TopicPartition::new(topic.clone(), 0);

    armed.store(1, Ordering::SeqCst);
    let e = consumer.commit_sync().await.expect_err("the proxy refuses this commit");
    assert!(matches!(e, Error::RebalanceInProgress { .. }), "{e:?}");
    assert_eq!(e.kafka_error(), Some(sluice_client::error::ResponseError::RebalanceInProgress));
    assert!(e.to_string().contains("call poll"), "says what to do: {e}");
    assert_eq!(armed.load(Ordering::SeqCst), 0, "the refusal came from the proxy");

    // The next poll rejoins (a new generation, the same partition). Nothing was committed, so
    // the records come again from the committed position (auto_offset_reset earliest), as with
    // Java's eager rebalance; then the commit goes through.
    let deadline = Instant::now() + SETTLE;
    let mut again = Vec::new();
    while consumer.generation_id() <= generation || again.len() < 3 {
        assert!(
            Instant::now() < deadline,
            "generation {} (was {generation}), read again {again:?}",
            consumer.generation_id()
        );
        again.extend(consumer.poll(Duration::from_millis(100)).await.expect("poll").iter().map(|r| r.offset));
    }
    assert_eq!(again, vec![0, 1, 2], "read again from the last successful commit (none)");
    assert_eq!(consumer.assignment(), &[tp.clone()][..]);
    consumer.commit_sync().await.expect("commit after the rejoin");
    assert_eq!(consumer.committed(std::slice::from_ref(&tp)).await.expect("committed").get(&tp), Some(&3));
    consumer.close().await.expect("close");
}
