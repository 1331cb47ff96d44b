//! The Sluice consumer's features in one process against the real broker (or Kafka, see
//! `consumer_support`): the rebalance listener's order (SEMANTICS C10 eager, C11 cooperative,
//! C12 lost), liveness (C4: heartbeats while processing, leaving after max_poll_interval_ms),
//! static membership (G22, G25), pause/resume, max_poll_records (C3), commit_async (C7),
//! auto_offset_reset none, and fetch-ahead.

mod common;
mod consumer_support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::unique_topic;
use consumer_support::{create_topic, values, TestBroker};
use sluice_client::{
    Admin, AutoOffsetReset, ClientConfig, Consumer, ConsumerConfig, ConsumerRecord, RebalanceContext,
    RebalanceListener, TopicPartition,
};

const SETTLE: Duration = Duration::from_secs(30);

fn config(broker: &TestBroker, group: Option<&str>) -> ConsumerConfig {
    consumer_support::consumer_config(broker, group)
}

async fn produce(broker: &TestBroker, topic: &str, partition: i32, values: &[String]) {
    consumer_support::produce_values(broker.addr(), topic, values, |_| partition).await;
}

fn text(r: &ConsumerRecord) -> String {
    String::from_utf8(r.value.clone().unwrap_or_default().to_vec()).expect("utf-8")
}

fn tps(topic: &str, ps: impl IntoIterator<Item = i32>) -> Vec<TopicPartition> {
    ps.into_iter().map(|p| TopicPartition::new(topic, p)).collect()
}

/// A listener call: `("revoked"|"assigned"|"lost", partitions)`.
type Call = (&'static str, Vec<i32>);

/// A listener that records its calls.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Call>>>);

impl Recorder {
    fn calls(&self) -> Vec<Call> {
        self.0.lock().unwrap().clone()
    }
    fn push(&self, what: &'static str, ps: &[TopicPartition]) {
        self.0.lock().unwrap().push((what, ps.iter().map(|tp| tp.partition).collect()));
    }
}

impl RebalanceListener for Recorder {
    fn on_partitions_revoked(&mut self, _: &mut RebalanceContext<'_>, ps: &[TopicPartition]) {
        self.push("revoked", ps);
    }
    fn on_partitions_assigned(&mut self, _: &mut RebalanceContext<'_>, ps: &[TopicPartition]) {
        self.push("assigned", ps);
    }
    fn on_partitions_lost(&mut self, _: &mut RebalanceContext<'_>, ps: &[TopicPartition]) {
        self.push("lost", ps);
    }
}

/// Polls `consumer` in a task until `stop`; the task returns the consumer.
fn keep_polling(mut consumer: Consumer, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Consumer> {
    tokio::spawn(async move {
        while !stop.load(Ordering::Acquire) {
            consumer.poll(Duration::from_millis(50)).await.expect("poll");
        }
        consumer
    })
}

/// Waits until `recorder`'s calls satisfy `done`.
async fn wait_calls(recorder: &Recorder, what: &str, done: impl Fn(&[Call]) -> bool) {
    let deadline = Instant::now() + SETTLE;
    while !done(&recorder.calls()) {
        assert!(Instant::now() < deadline, "timed out waiting until {what}; calls: {:?}", recorder.calls());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn owned(calls: &[Call]) -> BTreeSet<i32> {
    let mut owned = BTreeSet::new();
    for (what, ps) in calls {
        match *what {
            "assigned" => owned.extend(ps.iter().copied()),
            _ => ps.iter().for_each(|p| {
                owned.remove(p);
            }),
        }
    }
    owned
}

async fn member(broker: &TestBroker, group: &str, topic: &str, assignor: &str) -> (Consumer, Recorder) {
    let mut c = config(broker, Some(group));
    c.assignors = vec![assignor.to_string()];
    let mut consumer = Consumer::new(c).await.expect("consumer");
    let recorder = Recorder::default();
    consumer.subscribe_with(vec![topic.to_string()], Box::new(recorder.clone())).await.expect("subscribe");
    (consumer, recorder)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eager_listener_revokes_everything_before_assigning_c10() {
    let broker = TestBroker::start();
    let topic = unique_topic("lst-eager");
    create_topic(&broker, &topic, 4).await;
    let stop = Arc::new(AtomicBool::new(false));
    let (c1, r1) = member(&broker, "g-eager", &topic, "range").await;
    let h1 = keep_polling(c1, stop.clone());
    wait_calls(&r1, "c1 owns all four", |c| owned(c).len() == 4).await;
    let (c2, r2) = member(&broker, "g-eager", &topic, "range").await;
    let h2 = keep_polling(c2, stop.clone());
    wait_calls(&r2, "c2 owns two", |c| owned(c).len() == 2).await;
    wait_calls(&r1, "c1 owns two", |c| owned(c).len() == 2).await;
    stop.store(true, Ordering::Release);
    let (c1, c2) = (h1.await.expect("c1"), h2.await.expect("c2"));
    // Revoked (everything owned, even nothing) before every join; then the whole assignment.
    let calls = r1.calls();
    assert_eq!(calls[..3], [("revoked", vec![]), ("assigned", vec![0, 1, 2, 3]), ("revoked", vec![0, 1, 2, 3])]);
    assert_eq!(calls[3].0, "assigned");
    assert_eq!(calls.len(), 4, "{calls:?}");
    assert_eq!(r2.calls()[0], ("revoked", vec![]));
    let union: BTreeSet<i32> = owned(&calls).union(&owned(&r2.calls())).copied().collect();
    assert_eq!(union, (0..4).collect());
    c1.close().await.expect("close");
    c2.close().await.expect("close");
    // Closing revokes what is owned (C8).
    assert_eq!(r1.calls().last().map(|c| c.0), Some("revoked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooperative_listener_revokes_only_moved_partitions_c11() {
    let broker = TestBroker::start();
    let topic = unique_topic("lst-coop");
    create_topic(&broker, &topic, 4).await;
    let stop = Arc::new(AtomicBool::new(false));
    let (c1, r1) = member(&broker, "g-coop", &topic, "cooperative-sticky").await;
    assert_eq!(c1.rebalance_protocol(), sluice_client::assignor::RebalanceProtocol::Cooperative);
    let h1 = keep_polling(c1, stop.clone());
    wait_calls(&r1, "c1 owns all four", |c| owned(c).len() == 4).await;
    let (c2, r2) = member(&broker, "g-coop", &topic, "cooperative-sticky").await;
    let h2 = keep_polling(c2, stop.clone());
    wait_calls(&r2, "c2 owns two", |c| owned(c).len() == 2).await;
    wait_calls(&r1, "c1 owns two", |c| owned(c).len() == 2).await;
    stop.store(true, Ordering::Release);
    let (c1, c2) = (h1.await.expect("c1"), h2.await.expect("c2"));
    let calls1 = r1.calls();
    // No revocation on the first join (nothing owned), then exactly one revocation of the two
    // partitions that move; every other call is an assignment (the later ones empty).
    assert_eq!(calls1[0], ("assigned", vec![0, 1, 2, 3]), "{calls1:?}");
    let revocations: Vec<&Vec<i32>> = calls1.iter().filter(|c| c.0 != "assigned").map(|c| &c.1).collect();
    assert_eq!(revocations.len(), 1, "{calls1:?}");
    assert_eq!(revocations[0].len(), 2);
    assert!(calls1.iter().skip(1).filter(|c| c.0 == "assigned").all(|c| c.1.is_empty()), "{calls1:?}");
    // The newcomer only ever gets what c1 gave up, possibly after an empty first increment.
    let calls2 = r2.calls();
    assert!(calls2.iter().all(|c| c.0 == "assigned"), "{calls2:?}");
    assert_eq!(owned(&calls2), revocations[0].iter().copied().collect());
    assert_eq!(c1.assignment().len() + c2.assignment().len(), 4);
    c1.close().await.expect("close");
    c2.close().await.expect("close");
}

/// C4 + C12: heartbeats keep a member that processes longer than its session timeout; one that
/// does not poll within max_poll_interval_ms leaves, its partitions go to the other member,
/// its commits fail locally, and its next poll reports them lost and rejoins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn liveness_heartbeats_and_max_poll_interval_c4_c12() {
    let broker = TestBroker::start();
    let session = Duration::from_millis(broker.min_session_ms());
    let topic = unique_topic("live");
    create_topic(&broker, &topic, 2).await;
    let mut cfg = config(&broker, Some("g-live"));
    cfg.session_timeout_ms = session.as_millis() as i32;
    cfg.heartbeat_interval_ms = 100;
    cfg.max_poll_interval_ms = (session * 2).as_millis() as i32;
    let mut c1 = Consumer::new(cfg).await.expect("consumer");
    let r1 = Recorder::default();
    c1.subscribe_with(vec![topic.clone()], Box::new(r1.clone())).await.expect("subscribe");
    while c1.assignment().len() < 2 {
        c1.poll(Duration::from_millis(100)).await.expect("poll");
    }
    let generation = c1.generation_id();
    // "Processing" for 1.5 session timeouts, below the poll interval: still a member.
    tokio::time::sleep(session * 3 / 2).await;
    c1.poll(Duration::from_millis(100)).await.expect("poll");
    assert_eq!(c1.generation_id(), generation, "the member lost its generation while processing");
    assert_eq!(r1.calls(), [("revoked", vec![]), ("assigned", vec![0, 1])]);
    let admin = Admin::connect(ClientConfig::new(broker.addr())).await.expect("admin");
    let described = admin.describe_group("g-live").await.expect("describe");
    assert_eq!(described.members.len(), 1);
    assert_eq!(described.members[0].member_id, c1.member_id());

    // Now stop polling for longer than the poll interval while a second member polls.
    let stop = Arc::new(AtomicBool::new(false));
    let (c2, r2) = member(&broker, "g-live", &topic, "range").await;
    let h2 = keep_polling(c2, stop.clone());
    wait_calls(&r2, "c2 gets both partitions", |c| owned(c).len() == 2).await;
    // It left (or, in the same instant, the broker dropped it at the rebalance timeout, which
    // is also max_poll_interval_ms): either way a commit fails with UNKNOWN_MEMBER_ID.
    let err = c1.commit_sync().await.expect_err("a commit after leaving fails");
    assert_eq!(err.kafka_error(), Some(kafka_protocol::error::ResponseError::UnknownMemberId), "{err}");
    // The next poll reports the partitions lost (not revoked) and rejoins.
    let deadline = Instant::now() + SETTLE;
    while c1.assignment().len() != 1 {
        assert!(Instant::now() < deadline, "c1 never rejoined; calls {:?}", r1.calls());
        c1.poll(Duration::from_millis(100)).await.expect("poll");
    }
    assert_eq!(r1.calls()[2], ("lost", vec![0, 1]), "{:?}", r1.calls());
    stop.store(true, Ordering::Release);
    let c2 = h2.await.expect("c2");
    c1.close().await.expect("close");
    c2.close().await.expect("close");
}

/// G22/G25: a static member that closes does not leave; a new process with the same
/// group_instance_id gets the same partitions, and the other member sees no rebalance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_member_restart_keeps_its_partitions_g25() {
    let broker = TestBroker::start();
    let topic = unique_topic("static");
    create_topic(&broker, &topic, 4).await;
    let static_member = |id: &str| {
        let mut c = config(&broker, Some("g-static"));
        c.group_instance_id = Some(id.to_string());
        c.session_timeout_ms = 30_000;
        c
    };
    let stop = Arc::new(AtomicBool::new(false));
    let r0 = Recorder::default();
    let mut c0 = Consumer::new(static_member("i0")).await.expect("consumer");
    c0.subscribe_with(vec![topic.clone()], Box::new(r0.clone())).await.expect("subscribe");
    let h0 = keep_polling(c0, stop.clone());
    wait_calls(&r0, "i0 owns all", |c| owned(c).len() == 4).await;
    let r1 = Recorder::default();
    let mut c1 = Consumer::new(static_member("i1")).await.expect("consumer");
    c1.subscribe_with(vec![topic.clone()], Box::new(r1.clone())).await.expect("subscribe");
    while c1.assignment().len() != 2 {
        c1.poll(Duration::from_millis(50)).await.expect("poll");
    }
    wait_calls(&r0, "i0 owns two", |c| owned(c).len() == 2).await;
    let first = c1.assignment().to_vec();
    let before = r0.calls();
    c1.close().await.expect("close");

    let r1b = Recorder::default();
    let mut c1b = Consumer::new(static_member("i1")).await.expect("consumer");
    c1b.subscribe_with(vec![topic.clone()], Box::new(r1b.clone())).await.expect("subscribe");
    while c1b.assignment().is_empty() {
        c1b.poll(Duration::from_millis(50)).await.expect("poll");
    }
    assert_eq!(c1b.assignment(), first);
    // One more round of polling on both sides: still no rebalance for i0.
    c1b.poll(Duration::from_millis(500)).await.expect("poll");
    stop.store(true, Ordering::Release);
    let c0 = h0.await.expect("i0");
    assert_eq!(r0.calls(), before, "i0 saw a rebalance when i1 restarted");
    c0.close().await.expect("close");
    c1b.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_and_max_poll_records_c3() {
    let broker = TestBroker::start();
    let topic = unique_topic("pause");
    create_topic(&broker, &topic, 2).await;
    produce(&broker, &topic, 0, &values(5, "zero")).await;
    produce(&broker, &topic, 1, &values(20, "one")).await;
    let mut c = Consumer::new(config(&broker, None)).await.expect("consumer");
    let all = tps(&topic, 0..2);
    c.assign(all.clone()).await.expect("assign");
    c.pause(&all[..1]);
    assert_eq!(c.paused(), all[..1]);
    c.set_max_poll_records(3);
    let mut got = Vec::new();
    let deadline = Instant::now() + SETTLE;
    while got.len() < 20 {
        assert!(Instant::now() < deadline, "got {} of 20", got.len());
        let batch = c.poll(Duration::from_millis(200)).await.expect("poll");
        assert!(batch.len() <= 3, "max_poll_records 3, got {}", batch.len());
        got.extend(batch);
    }
    assert!(got.iter().all(|r| r.partition == 1), "a paused partition's records came back");
    assert_eq!(got.iter().map(|r| r.offset).collect::<Vec<_>>(), (0..20).collect::<Vec<_>>());
    assert!(c.poll(Duration::from_millis(300)).await.expect("poll").is_empty());
    c.resume(&all[..1]);
    let mut zero = Vec::new();
    while zero.len() < 5 {
        assert!(Instant::now() < deadline, "got {} of 5 after resume", zero.len());
        zero.extend(c.poll(Duration::from_millis(200)).await.expect("poll"));
    }
    assert_eq!(zero.iter().map(text).collect::<Vec<_>>(), values(5, "zero"));
    c.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_async_future_and_close_waits_c7_c8() {
    let broker = TestBroker::start();
    let topic = unique_topic("async");
    create_topic(&broker, &topic, 1).await;
    produce(&broker, &topic, 0, &values(10, "a")).await;
    let tp = TopicPartition::new(&topic, 0);
    let (mut c, _) = member(&broker, "g-async", &topic, "range").await;
    let mut got = 0;
    while got < 10 {
        got += c.poll(Duration::from_millis(200)).await.expect("poll").len();
    }
    c.commit_async().await.expect("async commit");
    assert_eq!(c.committed(std::slice::from_ref(&tp)).await.expect("committed")[&tp], 10);
    // Not awaited: close still waits for it.
    drop(c.commit_offsets_async(BTreeMap::from([(tp.clone(), 7)])));
    c.close().await.expect("close");
    let admin = Admin::connect(ClientConfig::new(broker.addr())).await.expect("admin");
    assert_eq!(admin.group_offsets("g-async").await.expect("offsets")[&tp], 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_offset_reset_none_fails_without_a_commit() {
    let broker = TestBroker::start();
    let topic = unique_topic("none");
    create_topic(&broker, &topic, 1).await;
    produce(&broker, &topic, 0, &values(5, "n")).await;
    let tp = TopicPartition::new(&topic, 0);
    let mut cfg = config(&broker, Some("g-none"));
    cfg.auto_offset_reset = AutoOffsetReset::None;
    let mut c = Consumer::new(cfg.clone()).await.expect("consumer");
    let err = c.assign(vec![tp.clone()]).await.expect_err("no committed offset");
    assert!(err.to_string().contains("auto_offset_reset is none"), "{err}");
    drop(c);
    // With a committed offset it starts there.
    let mut committer = Consumer::new(config(&broker, Some("g-none"))).await.expect("consumer");
    committer.assign(vec![tp.clone()]).await.expect("assign");
    committer.commit_offsets(&BTreeMap::from([(tp.clone(), 3)])).await.expect("commit");
    committer.close().await.expect("close");
    let mut c = Consumer::new(cfg).await.expect("consumer");
    c.subscribe(vec![topic.clone()]).await.expect("subscribe");
    let mut got = Vec::new();
    let deadline = Instant::now() + SETTLE;
    while got.len() < 2 {
        assert!(Instant::now() < deadline);
        got.extend(c.poll(Duration::from_millis(200)).await.expect("poll"));
    }
    assert_eq!(got.iter().map(|r| r.offset).collect::<Vec<_>>(), [3, 4]);
    c.close().await.expect("close");
}

/// Fetching runs ahead: after `poll` returned, the next Fetch is already parked on the broker,
/// so a record produced while the application "processes" is returned by `poll(0)` calls,
/// which never wait for the network themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_runs_ahead_of_poll() {
    let broker = TestBroker::start();
    let topic = unique_topic("ahead");
    create_topic(&broker, &topic, 1).await;
    produce(&broker, &topic, 0, &values(1, "first")).await;
    let mut cfg = config(&broker, None);
    cfg.fetch_max_wait_ms = 5_000;
    let mut c = Consumer::new(cfg).await.expect("consumer");
    c.assign(tps(&topic, [0])).await.expect("assign");
    let first = c.poll(SETTLE).await.expect("poll");
    assert_eq!(first.iter().map(text).collect::<Vec<_>>(), ["first-0"]);
    produce(&broker, &topic, 0, &values(1, "second")).await;
    let deadline = Instant::now() + SETTLE;
    let second = loop {
        let start = Instant::now();
        let got = c.poll(Duration::ZERO).await.expect("poll");
        assert!(start.elapsed() < Duration::from_millis(500), "poll(0) waited {:?}", start.elapsed());
        if !got.is_empty() {
            break got;
        }
        assert!(Instant::now() < deadline, "the prefetched record never came");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(second.iter().map(text).collect::<Vec<_>>(), ["second-0"]);
    assert_eq!(second[0].offset, 1);
    c.close().await.expect("close");
}
