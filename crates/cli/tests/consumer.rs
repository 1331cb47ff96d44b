//! The Sluice consumer (`sluice_client::Consumer`) against a real `sluice` process: group
//! consumption, range assignment across members (also mixed with a librdkafka member),
//! commits, auto-commit, poll's timeout, and the `sluice consume` / `sluice group` commands.
//! `SLUICE_TEST_KAFKA=1` runs them against Apache Kafka (see `consumer_support`).

mod common;
mod consumer_support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::unique_topic;
use consumer_support::{values, TestBroker as Broker};
use sluice_client::{
    Admin, ClientConfig, Consumer, ConsumerConfig, ConsumerRecord, ProducerConfig, ProducerRecord, TopicPartition,
};
use tokio::sync::watch;

const SETTLE: Duration = Duration::from_secs(30);

fn start_broker() -> Broker {
    Broker::start()
}

async fn create(broker: &Broker, topic: &str, partitions: i32) {
    consumer_support::create_topic(broker, topic, partitions).await;
}

/// Produces `values` round-robin over `partitions` (value i to partition i % partitions).
async fn produce(broker: &Broker, topic: &str, partitions: i32, values: &[String]) {
    consumer_support::produce_values(broker.addr(), topic, values, |i| i as i32 % partitions).await;
}

fn config(broker: &Broker, group: Option<&str>) -> ConsumerConfig {
    consumer_support::consumer_config(broker, group)
}

fn text(r: &ConsumerRecord) -> String {
    String::from_utf8(r.value.clone().unwrap_or_default().to_vec()).expect("utf-8 value")
}

/// Polls until `n` records came (or fails after SETTLE).
async fn poll_n(consumer: &mut Consumer, n: usize) -> Vec<ConsumerRecord> {
    let deadline = Instant::now() + SETTLE;
    let mut out = Vec::new();
    while out.len() < n {
        assert!(Instant::now() < deadline, "only {} of {n} records within {SETTLE:?}", out.len());
        out.extend(consumer.poll(Duration::from_millis(500)).await.expect("poll"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_member_reads_every_record_once() {
    let broker = start_broker();
    let topic = unique_topic("cons-all");
    create(&broker, &topic, 3).await;
    let sent = values(60, "v");
    produce(&broker, &topic, 3, &sent).await;

    let mut consumer = Consumer::new(config(&broker, Some("g-all"))).await.expect("consumer");
    consumer.subscribe(vec![topic.clone()]).await.expect("subscribe");
    let got = poll_n(&mut consumer, 60).await;
    assert_eq!(got.len(), 60, "no duplicates");
    let got_values: BTreeSet<String> = got.iter().map(text).collect();
    assert_eq!(got_values, sent.iter().cloned().collect::<BTreeSet<_>>());
    // Offsets per partition are in order and dense.
    for p in 0..3 {
        let offsets: Vec<i64> = got.iter().filter(|r| r.partition == p).map(|r| r.offset).collect();
        assert_eq!(offsets, (0..20).collect::<Vec<_>>(), "partition {p}");
    }
    assert_eq!(consumer.assignment().len(), 3);
    consumer.close().await.expect("close");
}

/// Runs a Sluice consumer in its own task, publishing its assignment under `id`, until `stop`.
fn run_member(
    mut consumer: Consumer,
    id: &'static str,
    assignments: Arc<watch::Sender<BTreeMap<&'static str, Vec<TopicPartition>>>>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Consumer> {
    tokio::spawn(async move {
        while !stop.load(Ordering::Acquire) {
            consumer.poll(Duration::from_millis(100)).await.expect("poll");
            let a = consumer.assignment().to_vec();
            assignments.send_if_modified(|m| {
                if m.get(id) == Some(&a) {
                    false
                } else {
                    m.insert(id, a);
                    true
                }
            });
        }
        consumer
    })
}

fn is_partitioned(m: &BTreeMap<&'static str, Vec<TopicPartition>>, members: usize, partitions: i32) -> bool {
    if m.len() != members {
        return false;
    }
    let mut all: Vec<&TopicPartition> = m.values().flatten().collect();
    all.sort();
    let n = all.len();
    all.dedup();
    n == all.len() && n == partitions as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_member_splits_the_partitions_by_range() {
    let broker = start_broker();
    let topic = unique_topic("cons-range");
    create(&broker, &topic, 4).await;
    let (tx, mut rx) = watch::channel(BTreeMap::new());
    let tx = Arc::new(tx);
    let stop = Arc::new(AtomicBool::new(false));

    let mut c1 = Consumer::new(config(&broker, Some("g-range"))).await.expect("consumer 1");
    c1.subscribe(vec![topic.clone()]).await.expect("subscribe");
    let h1 = run_member(c1, "c1", tx.clone(), stop.clone());
    tokio::time::timeout(SETTLE, rx.wait_for(|m| m.get("c1").is_some_and(|a| a.len() == 4)))
        .await
        .expect("c1 gets all four partitions")
        .expect("watch");

    let mut c2 = Consumer::new(config(&broker, Some("g-range"))).await.expect("consumer 2");
    c2.subscribe(vec![topic.clone()]).await.expect("subscribe");
    let h2 = run_member(c2, "c2", tx.clone(), stop.clone());
    let split =
        tokio::time::timeout(SETTLE, rx.wait_for(|m| is_partitioned(m, 2, 4) && m.values().all(|a| a.len() == 2)))
            .await
            .expect("the two members split the partitions")
            .expect("watch")
            .clone();
    stop.store(true, Ordering::Release);
    let c1 = h1.await.expect("member 1");
    let c2 = h2.await.expect("member 2");
    // Range: the member first in member-id order gets 0 and 1, the other 2 and 3.
    let (first, second) =
        if c1.member_id() < c2.member_id() { (&split["c1"], &split["c2"]) } else { (&split["c2"], &split["c1"]) };
    assert_eq!(first.iter().map(|tp| tp.partition).collect::<Vec<_>>(), [0, 1]);
    assert_eq!(second.iter().map(|tp| tp.partition).collect::<Vec<_>>(), [2, 3]);
    c1.close().await.expect("close 1");
    c2.close().await.expect("close 2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_member_resumes_at_the_committed_offset() {
    let broker = start_broker();
    let topic = unique_topic("cons-commit");
    create(&broker, &topic, 1).await;
    let sent = values(10, "c");
    produce(&broker, &topic, 1, &sent).await;
    let tp = TopicPartition::new(&topic, 0);

    let mut c1 = Consumer::new(config(&broker, Some("g-commit"))).await.expect("consumer");
    c1.subscribe(vec![topic.clone()]).await.expect("subscribe");
    c1.set_max_poll_records(1);
    let mut got = Vec::new();
    while got.len() < 4 {
        got.extend(poll_n(&mut c1, 1).await);
    }
    assert_eq!(got.iter().map(text).collect::<Vec<_>>(), sent[..4]);
    c1.commit_sync().await.expect("commit");
    assert_eq!(c1.committed(std::slice::from_ref(&tp)).await.expect("committed")[&tp], 4);
    c1.close().await.expect("close");

    let mut c2 = Consumer::new(config(&broker, Some("g-commit"))).await.expect("consumer 2");
    c2.subscribe(vec![topic.clone()]).await.expect("subscribe");
    let rest = poll_n(&mut c2, 6).await;
    assert_eq!(rest[0].offset, 4);
    assert_eq!(rest.iter().map(text).collect::<Vec<_>>(), sent[4..]);

    // Explicit offsets too.
    c2.commit_offsets(&BTreeMap::from([(tp.clone(), 7)])).await.expect("commit explicit");
    assert_eq!(c2.committed(std::slice::from_ref(&tp)).await.expect("committed")[&tp], 7);
    c2.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_commit_advances_in_poll_and_on_close() {
    let broker = start_broker();
    let topic = unique_topic("cons-auto");
    create(&broker, &topic, 1).await;
    produce(&broker, &topic, 1, &values(10, "a")).await;
    let tp = TopicPartition::new(&topic, 0);

    let mut cfg = config(&broker, Some("g-auto"));
    cfg.enable_auto_commit = true;
    cfg.auto_commit_interval_ms = 100;
    let mut c = Consumer::new(cfg).await.expect("consumer");
    c.subscribe(vec![topic.clone()]).await.expect("subscribe");
    poll_n(&mut c, 10).await;
    // Commits happen inside poll once the interval has passed.
    let deadline = Instant::now() + SETTLE;
    loop {
        c.poll(Duration::from_millis(100)).await.expect("poll");
        if c.committed(std::slice::from_ref(&tp)).await.expect("committed").get(&tp) == Some(&10) {
            break;
        }
        assert!(Instant::now() < deadline, "auto-commit never reached 10");
    }
    c.close().await.expect("close");

    // And on close, with an interval that never comes.
    produce(&broker, &topic, 1, &values(5, "b")).await;
    let mut cfg = config(&broker, Some("g-auto"));
    cfg.enable_auto_commit = true;
    cfg.auto_commit_interval_ms = 3_600_000;
    let mut c = Consumer::new(cfg).await.expect("consumer");
    c.subscribe(vec![topic.clone()]).await.expect("subscribe");
    let got = poll_n(&mut c, 5).await;
    assert_eq!(got[0].offset, 10);
    c.close().await.expect("close");
    let admin = Admin::connect(ClientConfig::new(broker.addr())).await.expect("admin");
    assert_eq!(admin.group_offsets("g-auto").await.expect("offsets")[&tp], 15);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_on_an_empty_topic_waits_for_the_timeout() {
    let broker = start_broker();
    let topic = unique_topic("cons-empty");
    create(&broker, &topic, 1).await;
    let mut c = Consumer::new(config(&broker, None)).await.expect("consumer");
    c.assign(vec![TopicPartition::new(&topic, 0)]).await.expect("assign");
    for timeout in [Duration::from_millis(300), Duration::from_millis(1500)] {
        let start = Instant::now();
        let got = c.poll(timeout).await.expect("poll");
        let waited = start.elapsed();
        assert!(got.is_empty());
        assert!(waited >= timeout, "returned after {waited:?}, before the {timeout:?} timeout");
        assert!(waited <= timeout + Duration::from_secs(1), "returned after {waited:?} for a {timeout:?} timeout");
    }
    // Records already buffered come back at once.
    produce(&broker, &topic, 1, &values(3, "e")).await;
    let got = poll_n(&mut c, 3).await;
    assert_eq!(got.len(), 3);
    c.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_group_with_librdkafka_shares_the_partitions() {
    use rdkafka::consumer::{BaseConsumer, Consumer as _};
    let broker = start_broker();
    let topic = unique_topic("cons-mixed");
    create(&broker, &topic, 4).await;
    let (tx, mut rx) = watch::channel(BTreeMap::new());
    let tx = Arc::new(tx);
    let stop = Arc::new(AtomicBool::new(false));

    let mut c1 = Consumer::new(config(&broker, Some("g-mixed"))).await.expect("consumer");
    c1.subscribe(vec![topic.clone()]).await.expect("subscribe");
    let h1 = run_member(c1, "sluice", tx.clone(), stop.clone());

    let rd_tx = tx.clone();
    let rd_stop = stop.clone();
    let rd_topic = topic.clone();
    let mut rd_config = consumer_support::rdkafka_config(&broker);
    rd_config
        .set("group.id", "g-mixed")
        .set("partition.assignment.strategy", "range")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "500");
    let rd = std::thread::spawn(move || {
        let consumer: BaseConsumer = rd_config.create().expect("rdkafka consumer");
        consumer.subscribe(&[&rd_topic]).expect("subscribe");
        while !rd_stop.load(Ordering::Acquire) {
            if let Some(Err(e)) = consumer.poll(Duration::from_millis(100)) {
                eprintln!("rdkafka: {e}");
            }
            let mut a: Vec<TopicPartition> = consumer
                .assignment()
                .expect("assignment")
                .elements()
                .iter()
                .map(|e| TopicPartition::new(e.topic(), e.partition()))
                .collect();
            a.sort();
            rd_tx.send_if_modified(|m| {
                if m.get("rdkafka") == Some(&a) {
                    false
                } else {
                    m.insert("rdkafka", a);
                    true
                }
            });
        }
        consumer.unsubscribe();
    });
    let split =
        tokio::time::timeout(SETTLE, rx.wait_for(|m| is_partitioned(m, 2, 4) && m.values().all(|a| a.len() == 2)))
            .await
            .expect("the Sluice and librdkafka members split the partitions")
            .expect("watch")
            .clone();
    stop.store(true, Ordering::Release);
    let c1 = h1.await.expect("member");
    rd.join().expect("rdkafka thread");
    let owned: BTreeSet<i32> = split.values().flatten().map(|tp| tp.partition).collect();
    assert_eq!(owned, (0..4).collect());
    c1.close().await.expect("close");
}

fn sluice(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sluice")).args(args).output().expect("run sluice")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_consume_max_and_group_describe_lag() {
    let broker = start_broker();
    let topic = unique_topic("cons-cli");
    create(&broker, &topic, 1).await;
    let sent = values(10, "line");
    produce(&broker, &topic, 1, &sent).await;
    let b = broker.addr().to_string();

    let out = sluice(&[
        "consume",
        &topic,
        "--group",
        "g-cli",
        "--from-beginning",
        "--max",
        "4",
        "--timeout-ms",
        "10000",
        "--bootstrap-server",
        &b,
    ]);
    assert!(out.status.success(), "consume failed: {}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<String> = String::from_utf8(out.stdout).expect("utf-8").lines().map(str::to_string).collect();
    assert_eq!(lines, sent[..4]);

    let out = sluice(&["group", "list", "--bootstrap-server", &b]);
    assert!(out.status.success(), "group list failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).lines().any(|l| l.starts_with("g-cli\t")));

    let out = sluice(&["group", "describe", "g-cli", "--bootstrap-server", &b]);
    assert!(out.status.success(), "group describe failed: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let header = stdout.lines().find(|l| l.contains("LAG")).expect("a header with LAG");
    let columns: Vec<&str> = header.split_whitespace().collect();
    let lag_col = columns.iter().position(|c| *c == "LAG").expect("LAG column");
    let row = stdout.lines().find(|l| l.starts_with(&topic)).unwrap_or_else(|| panic!("no row for {topic}:\n{stdout}"));
    let fields: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&fields[..lag_col + 1], [topic.as_str(), "0", "4", "10", "6"], "{stdout}");

    // Without --max, --timeout-ms ends the run: the six left, then nothing for 500 ms.
    let out = sluice(&["consume", &topic, "--group", "g-cli", "--timeout-ms", "500", "--bootstrap-server", &b]);
    assert!(out.status.success(), "consume failed: {}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<String> = String::from_utf8(out.stdout).expect("utf-8").lines().map(str::to_string).collect();
    assert_eq!(lines, sent[4..]);
}

/// The blocking facades, from a plain thread with no runtime of its own: `BlockingProducer`
/// writes, a `BlockingConsumer` in a group reads every record once, commits and leaves; a second
/// one in the same group starts at the commits (C3: nothing again) and its `poll(timeout)` waits
/// out the timeout when nothing comes.
#[test]
fn blocking_consumer_reads_commits_and_resumes_without_a_runtime() {
    let broker = start_broker();
    let topic = unique_topic("blocking");
    consumer_support::runtime().block_on(create(&broker, &topic, 3));
    let producer = sluice_client::BlockingProducer::new(ProducerConfig::new(broker.addr())).expect("producer");
    let sent = values(30, "b");
    let deliveries: Vec<_> = sent
        .iter()
        .enumerate()
        .map(|(i, v)| {
            producer.send(ProducerRecord::new(&topic).value(v.clone()).partition(i as i32 % 3)).expect("send")
        })
        .collect();
    producer.flush().expect("flush");
    for d in deliveries {
        d.wait().expect("delivered");
    }
    producer.close().expect("close");

    let group = format!("{topic}-g");
    let mut consumer = sluice_client::BlockingConsumer::new(config(&broker, Some(&group))).expect("consumer");
    consumer.subscribe(vec![topic.clone()]).expect("subscribe");
    let deadline = Instant::now() + SETTLE;
    let mut got = Vec::new();
    while got.len() < sent.len() {
        assert!(Instant::now() < deadline, "only {} of {} records within {SETTLE:?}", got.len(), sent.len());
        got.extend(consumer.poll(Duration::from_millis(500)).expect("poll").iter().map(text));
    }
    let expected: BTreeSet<String> = sent.iter().cloned().collect();
    assert_eq!(got.len(), sent.len(), "each record once");
    assert_eq!(got.iter().cloned().collect::<BTreeSet<_>>(), expected);
    consumer.commit_sync().expect("commit");
    consumer.close().expect("close");

    let mut again = sluice_client::BlockingConsumer::new(config(&broker, Some(&group))).expect("consumer");
    again.subscribe(vec![topic.clone()]).expect("subscribe");
    let partitions: Vec<_> = (0..3).map(|p| TopicPartition::new(topic.clone(), p)).collect();
    let committed = again.committed(&partitions).expect("committed");
    assert_eq!(committed.values().sum::<i64>(), 30, "commits cover all 30: {committed:?}");
    // Wait until this member owns partitions, then a poll with nothing to read waits its timeout.
    let deadline = Instant::now() + SETTLE;
    while again.assignment().is_empty() {
        assert!(Instant::now() < deadline, "no assignment within {SETTLE:?}");
        assert!(again.poll(Duration::from_millis(200)).expect("poll").is_empty(), "C3: nothing read twice");
    }
    let started = Instant::now();
    assert!(again.poll(Duration::from_millis(700)).expect("poll").is_empty(), "C3: nothing read twice");
    assert!(started.elapsed() >= Duration::from_millis(700), "poll returned early: {:?}", started.elapsed());
    again.close().expect("close");
}
