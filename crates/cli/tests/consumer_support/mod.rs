//! Shared harness of the consumer tests (`tests/consumer*.rs`): the broker under test, and group
//! members that are separate processes.
//!
//! **Broker.** [`TestBroker::start`] starts the real `sluice` binary (see `common::Broker`), or,
//! with `SLUICE_TEST_KAFKA=1`, the reference Apache Kafka (`compat/kafka/kafka start`, 5-10 s;
//! stopped on drop, also when the test fails). Run the Kafka variant one test at a time
//! (`-- --test-threads=1`): every test gets its own JVM. Both are started with a 0 ms initial
//! rebalance delay. Kafka's minimum session timeout is 6000 ms; Sluice is started with 1000 ms
//! so that liveness tests stay short ([`TestBroker::min_session_ms`]).
//!
//! **Members.** `examples/sluice_member.rs` (the Sluice client) and `examples/group_member.rs`
//! (librdkafka) take the same options and print the same lines (`assigned P ...`, `revoked`,
//! `lost`, `consumed P O`, `committed P O`, ...); [`Member`] starts either, reads its lines as
//! they come and kills it (SIGKILL) on drop. The binaries are looked up next to the test
//! binary's `deps/` directory (`cargo test` builds examples first) and built with Cargo when
//! missing; `$SLUICE_GROUP_MEMBER_BIN` overrides the librdkafka member's path, and
//! `$SLUICE_GROUP_MEMBER_DEBUG` (e.g. `cgrp,protocol`) turns on librdkafka's debug log in its
//! stderr, which a failing test prints.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::common::Broker;

// ---------------------------------------------------------------------------------------------
// The broker

pub enum TestBroker {
    Sluice(Broker),
    Kafka { dir: TempDir, addr: String },
}

/// True when the tests run against Apache Kafka (`SLUICE_TEST_KAFKA=1`).
pub fn against_kafka() -> bool {
    std::env::var("SLUICE_TEST_KAFKA").is_ok_and(|v| v == "1")
}

fn kafka_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../compat/kafka/kafka")
}

impl TestBroker {
    pub fn start() -> TestBroker {
        if !against_kafka() {
            return TestBroker::Sluice(Broker::start_with(&[
                "--group-initial-rebalance-delay-ms",
                "0",
                "--group-min-session-timeout-ms",
                "1000",
            ]));
        }
        let dir = tempfile::Builder::new().prefix("sluice-e2e-kafka-").tempdir().expect("kafka dir");
        let out = Command::new(kafka_script())
            .arg("start")
            .arg(dir.path())
            .args(["--group-initial-rebalance-delay-ms", "0"])
            .stderr(Stdio::inherit())
            .output()
            .expect("run compat/kafka/kafka start");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let addr = stdout.lines().last().unwrap_or_default().trim().to_string();
        let broker = TestBroker::Kafka { dir, addr };
        assert!(out.status.success(), "compat/kafka/kafka start failed: {stdout}");
        assert!(broker.addr().starts_with("127.0.0.1:"), "kafka printed {stdout:?}");
        broker
    }

    pub fn addr(&self) -> &str {
        match self {
            TestBroker::Sluice(b) => b.addr(),
            TestBroker::Kafka { addr, .. } => addr,
        }
    }

    /// The shortest session timeout the broker accepts.
    pub fn min_session_ms(&self) -> u64 {
        match self {
            TestBroker::Sluice(_) => 1000,
            TestBroker::Kafka { .. } => 6000,
        }
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let TestBroker::Kafka { dir, .. } = self {
            let _ = Command::new(kafka_script())
                .arg("stop")
                .arg(dir.path())
                .args(["--timeout", "10"])
                .stdout(Stdio::null())
                .status();
            if std::thread::panicking() {
                if let Ok(log) = std::fs::read_to_string(dir.path().join("kafka.log")) {
                    let lines: Vec<&str> = log.lines().collect();
                    eprintln!(
                        "--- kafka.log (last 30 lines) ---\n{}",
                        lines[lines.len().saturating_sub(30)..].join("\n")
                    );
                }
            }
        }
    }
}

/// A librdkafka client configuration for `broker`, with short timeouts.
pub fn rdkafka_config(broker: &TestBroker) -> rdkafka::ClientConfig {
    crate::common::client_config_at(broker.addr())
}

// ---------------------------------------------------------------------------------------------
// Member processes

/// Which client a member process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    Sluice,
    Librdkafka,
}

impl Client {
    fn example(self) -> &'static str {
        match self {
            Client::Sluice => "sluice_member",
            Client::Librdkafka => "group_member",
        }
    }
}

fn example_bin(name: &str) -> PathBuf {
    static BUILT: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = built.get(name) {
        return p.clone();
    }
    if name == Client::Librdkafka.example() {
        if let Some(bin) = std::env::var_os("SLUICE_GROUP_MEMBER_BIN").filter(|b| !b.is_empty()) {
            return PathBuf::from(bin);
        }
    }
    // This test binary is <target>/<profile>/deps/NAME-<hash>.
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe.parent().and_then(Path::parent).expect("test binary in <target>/<profile>/deps");
    let bin = profile_dir.join("examples").join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev".to_string(),
            Some(other) => other.to_string(),
            None => panic!("cannot tell the profile from {}", profile_dir.display()),
        };
        let target_dir = profile_dir.parent().expect("target dir");
        let status = Command::new(env!("CARGO"))
            .args(["build", "--locked", "--example", name, "--profile", &profile, "--manifest-path"])
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .env("CARGO_TARGET_DIR", target_dir)
            .status()
            .expect("run cargo build --example");
        assert!(status.success(), "cargo build --example {name}: {status}");
    }
    assert!(bin.exists(), "no {name} binary at {}", bin.display());
    built.insert(name.to_string(), bin.clone());
    bin
}

/// What a member printed, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    Assigned(Vec<i32>),
    Revoked(Vec<i32>),
    Lost(Vec<i32>),
    Consumed(i32, i64),
    Committed(i32, i64),
    CommitFailed(String),
    Paused,
    Resumed,
    Closed,
    Error(String),
    Unparsed(String),
}

impl Ev {
    /// Parses a member's line; anything unexpected is kept as `Unparsed` (and shows in the
    /// report of a failing test) rather than stopping the reader.
    fn parse(line: &str) -> Ev {
        let mut words = line.split_whitespace();
        let kind = words.next().unwrap_or_default();
        let rest: Vec<&str> = words.collect();
        let parts = || -> Option<Vec<i32>> { rest.iter().map(|w| w.parse().ok()).collect() };
        let pair = || -> Option<(i32, i64)> {
            match rest[..] {
                [p, o] => Some((p.parse().ok()?, o.parse().ok()?)),
                _ => None,
            }
        };
        let ev = match kind {
            "assigned" => parts().map(Ev::Assigned),
            "revoked" => parts().map(Ev::Revoked),
            "lost" => parts().map(Ev::Lost),
            "consumed" => pair().map(|(p, o)| Ev::Consumed(p, o)),
            "committed" => pair().map(|(p, o)| Ev::Committed(p, o)),
            "commit-failed" => Some(Ev::CommitFailed(rest.join(" "))),
            "paused" => Some(Ev::Paused),
            "resumed" => Some(Ev::Resumed),
            "closed" => Some(Ev::Closed),
            "error" => Some(Ev::Error(rest.join(" "))),
            _ => None,
        };
        ev.unwrap_or_else(|| Ev::Unparsed(line.to_string()))
    }

    pub fn is_rebalance(&self) -> bool {
        matches!(self, Ev::Assigned(_) | Ev::Revoked(_) | Ev::Lost(_))
    }

    /// A rebalance event that changes what the member owns: not the empty increment a
    /// cooperative member is told about when it keeps what it has (C11).
    pub fn changes_ownership(&self) -> bool {
        match self {
            Ev::Assigned(ps) | Ev::Revoked(ps) | Ev::Lost(ps) => !ps.is_empty(),
            _ => false,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Event {
    /// When the test read the line.
    pub at: Instant,
    pub ev: Ev,
}

/// How a member is started.
#[derive(Clone)]
pub struct Opts {
    pub client: Client,
    pub strategy: &'static str,
    pub commit: &'static str,
    pub commit_every: u64,
    pub session_timeout_ms: u64,
    pub heartbeat_interval_ms: u64,
    pub auto_offset_reset: &'static str,
    pub delay_ms: u64,
    /// Static membership (`group.instance.id`).
    pub instance_id: Option<String>,
}

impl Default for Opts {
    fn default() -> Opts {
        Opts {
            client: Client::Sluice,
            strategy: "range",
            commit: "sync",
            commit_every: 10,
            session_timeout_ms: 6000,
            heartbeat_interval_ms: 1000,
            auto_offset_reset: "earliest",
            delay_ms: 0,
            instance_id: None,
        }
    }
}

/// A running member process; SIGKILL on drop. The end of its stdin makes it close gracefully.
pub struct Member {
    pub name: String,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    events: Arc<Mutex<Vec<Event>>>,
    stderr_path: PathBuf,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Member {
    fn start(addr: &str, logs: &Path, name: &str, group: &str, topic: &str, opts: &Opts) -> Member {
        let stderr_path = logs.join(format!("{name}.stderr"));
        let stderr = File::create(&stderr_path).expect("member stderr file");
        let mut cmd = Command::new(example_bin(opts.client.example()));
        cmd.args(["--bootstrap", addr, "--group", group, "--topic", topic])
            .args(["--client-id", name, "--strategy", opts.strategy, "--commit", opts.commit])
            .args(["--commit-every", &opts.commit_every.to_string()])
            .args(["--session-timeout-ms", &opts.session_timeout_ms.to_string()])
            .args(["--heartbeat-interval-ms", &opts.heartbeat_interval_ms.to_string()])
            .args(["--auto-offset-reset", opts.auto_offset_reset, "--delay-ms", &opts.delay_ms.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        if let Some(id) = &opts.instance_id {
            cmd.args(["--instance-id", id]);
        }
        if let Some(debug) = std::env::var_os("SLUICE_GROUP_MEMBER_DEBUG").filter(|_| opts.client == Client::Librdkafka)
        {
            cmd.arg("--debug").arg(debug);
        }
        let mut child = cmd.spawn().expect("spawn member");
        let stdout = child.stdout.take().expect("piped stdout");
        let stdin = child.stdin.take();
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(Event { at: Instant::now(), ev: Ev::parse(&line) });
            }
        });
        Member { name: name.to_string(), child: Some(child), stdin, events, stderr_path, reader: Some(reader) }
    }

    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    pub fn event_count(&self) -> usize {
        self.events.lock().unwrap().len()
    }

    /// How many lines the member printed so far that changed what it owns.
    pub fn ownership_changes(&self) -> usize {
        self.events.lock().unwrap().iter().filter(|e| e.ev.changes_ownership()).count()
    }

    /// Partitions owned according to the assigned/revoked/lost lines so far.
    pub fn owned(&self) -> BTreeSet<i32> {
        owned_after(&self.events.lock().unwrap())
    }

    pub fn consumed(&self) -> Vec<(i32, i64)> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e.ev {
                Ev::Consumed(p, o) => Some((p, o)),
                _ => None,
            })
            .collect()
    }

    pub fn send(&mut self, command: &str) {
        let stdin = self.stdin.as_mut().expect("member stdin open");
        writeln!(stdin, "{command}").and_then(|()| stdin.flush()).expect("write member command");
    }

    /// SIGKILL; returns when the process is gone.
    pub fn kill9(&mut self) -> Instant {
        let mut child = self.child.take().expect("member running");
        let at = Instant::now();
        let _ = child.kill();
        child.wait().expect("wait for killed member");
        self.stdin = None;
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        at
    }

    /// Ends the member's stdin (it closes its consumer and exits); returns its exit status.
    pub fn close(&mut self, timeout: Duration) -> ExitStatus {
        self.stdin = None;
        let mut child = self.child.take().expect("member running");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                if let Some(reader) = self.reader.take() {
                    let _ = reader.join();
                }
                return status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{} did not exit within {timeout:?} of the end of its input", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn report(&self) -> String {
        let events = self.events();
        let mut out = format!(
            "--- {} ({} events; all but consumed/committed, and the last 5 records) ---\n",
            self.name,
            events.len()
        );
        let consumed: Vec<usize> =
            events.iter().enumerate().filter(|(_, e)| matches!(e.ev, Ev::Consumed(..))).map(|(i, _)| i).collect();
        let tail: BTreeSet<usize> = consumed.iter().rev().take(5).copied().collect();
        for (i, e) in events.iter().enumerate() {
            if !matches!(e.ev, Ev::Consumed(..) | Ev::Committed(..)) || tail.contains(&i) {
                out.push_str(&format!("  {:?}\n", e.ev));
            }
        }
        let mut text = String::new();
        if let Ok(mut f) = File::open(&self.stderr_path) {
            let _ = f.read_to_string(&mut text);
        }
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(25);
        out.push_str(&format!("  stderr (last {} lines):\n", lines.len() - from));
        for line in &lines[from..] {
            out.push_str(&format!("    {line}\n"));
        }
        out
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn owned_after(events: &[Event]) -> BTreeSet<i32> {
    let mut owned = BTreeSet::new();
    for e in events {
        match &e.ev {
            Ev::Assigned(ps) => owned.extend(ps.iter().copied()),
            Ev::Revoked(ps) | Ev::Lost(ps) => {
                for p in ps {
                    owned.remove(p);
                }
            }
            _ => {}
        }
    }
    owned
}

/// The members of one test; on a failing test, prints what each printed and logged.
pub struct Group {
    pub members: Vec<Member>,
    logs: TempDir,
}

impl Group {
    pub fn new() -> Group {
        Group {
            members: Vec::new(),
            logs: tempfile::Builder::new().prefix("sluice-e2e-members-").tempdir().expect("log dir"),
        }
    }

    pub fn start(&mut self, broker: &TestBroker, name: &str, group: &str, topic: &str, opts: &Opts) -> usize {
        self.start_at(broker.addr(), name, group, topic, opts)
    }

    /// [`Group::start`] for a broker given by its address (e.g. a `common::Broker` that a test
    /// kills and restarts on the same port).
    pub fn start_at(&mut self, addr: &str, name: &str, group: &str, topic: &str, opts: &Opts) -> usize {
        self.members.push(Member::start(addr, self.logs.path(), name, group, topic, opts));
        self.members.len() - 1
    }

    pub fn report(&self) -> String {
        self.members.iter().map(Member::report).collect()
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.report());
        }
    }
}

impl std::ops::Index<usize> for Group {
    type Output = Member;
    fn index(&self, i: usize) -> &Member {
        &self.members[i]
    }
}

impl std::ops::IndexMut<usize> for Group {
    fn index_mut(&mut self, i: usize) -> &mut Member {
        &mut self.members[i]
    }
}

/// Polls `condition` every 20 ms until it holds; fails after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every partition owned by exactly one member, all members own some, sizes differ by ≤ 1.
pub fn balanced(owned: &[BTreeSet<i32>], partitions: i32) -> bool {
    let total: usize = owned.iter().map(BTreeSet::len).sum();
    let union: BTreeSet<i32> = owned.iter().flatten().copied().collect();
    let min = owned.iter().map(BTreeSet::len).min().unwrap_or(0);
    let max = owned.iter().map(BTreeSet::len).max().unwrap_or(0);
    total == union.len() && union == (0..partitions).collect() && min > 0 && max - min <= 1
}

pub fn wait_balanced(group: &Group, ids: &[usize], partitions: i32, timeout: Duration) -> Vec<BTreeSet<i32>> {
    let mut owned = Vec::new();
    wait_for(&format!("members {ids:?} own the {partitions} partitions, each exactly once"), timeout, || {
        owned = ids.iter().map(|&i| group[i].owned()).collect();
        balanced(&owned, partitions)
    });
    owned
}

/// Every `(partition, offset)` consumed by the members `ids`, with who consumed it.
pub fn consumers_of(group: &Group, ids: &[usize]) -> BTreeMap<(i32, i64), Vec<usize>> {
    let mut map: BTreeMap<(i32, i64), Vec<usize>> = BTreeMap::new();
    for &i in ids {
        for po in group[i].consumed() {
            map.entry(po).or_default().push(i);
        }
    }
    map
}

/// Waits until every offset below `ends[p]` was consumed by one of `ids`.
pub fn wait_all_consumed(group: &Group, ids: &[usize], ends: &BTreeMap<i32, i64>, timeout: Duration) {
    let expected: usize = ends.values().map(|&e| e as usize).sum();
    let deadline = Instant::now() + timeout;
    loop {
        let seen = consumers_of(group, ids);
        let missing: Vec<(i32, i64)> = ends
            .iter()
            .flat_map(|(&p, &end)| (0..end).map(move |o| (p, o)))
            .filter(|po| !seen.contains_key(po))
            .collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "after {timeout:?}, {} of {expected} records were never consumed, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(10)]
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Records consumed after the member's last `committed` line for their partition.
pub fn consumed_after_last_commit(events: &[Event]) -> BTreeSet<(i32, i64)> {
    let mut since: BTreeMap<i32, BTreeSet<i64>> = BTreeMap::new();
    for e in events {
        match e.ev {
            Ev::Committed(p, _) => {
                since.remove(&p);
            }
            Ev::Consumed(p, o) => {
                since.entry(p).or_default().insert(o);
            }
            _ => {}
        }
    }
    since.into_iter().flat_map(|(p, os)| os.into_iter().map(move |o| (p, o))).collect()
}

/// Checks that records were consumed at most once, except those `dead` consumed after its last
/// commit, which a survivor may consume once more. Returns those repeated records.
pub fn check_duplicates(group: &Group, ids: &[usize], dead: Option<usize>) -> BTreeSet<(i32, i64)> {
    let allowed = dead.map(|d| consumed_after_last_commit(&group[d].events())).unwrap_or_default();
    let mut repeats = BTreeSet::new();
    let mut bad = Vec::new();
    for (po, who) in consumers_of(group, ids) {
        if who.len() == 1 {
            continue;
        }
        let by_dead = who.iter().filter(|&&i| Some(i) == dead).count();
        if who.len() == 2 && by_dead == 1 && allowed.contains(&po) {
            repeats.insert(po);
        } else {
            bad.push((po, who.iter().map(|&i| group[i].name.clone()).collect::<Vec<_>>()));
        }
    }
    assert!(
        bad.is_empty(),
        "{} records consumed more than once that the dead member had not consumed after its last \
         commit, e.g. {:?}",
        bad.len(),
        &bad[..bad.len().min(10)]
    );
    repeats
}

/// The first offset of partition `p` that any of `ids` consumed after `since`.
pub fn first_consumed_after(group: &Group, ids: &[usize], p: i32, since: Instant) -> Option<i64> {
    let mut events: Vec<Event> = ids.iter().flat_map(|&i| group[i].events()).filter(|e| e.at >= since).collect();
    events.sort_by_key(|e| e.at);
    events.into_iter().find_map(|e| match e.ev {
        Ev::Consumed(q, o) if q == p => Some(o),
        _ => None,
    })
}

/// When the last of `moved` was first assigned to a survivor after `since`.
pub fn takeover_instant(group: &Group, survivors: &[usize], moved: &BTreeSet<i32>, since: Instant) -> Instant {
    moved
        .iter()
        .map(|p| {
            survivors
                .iter()
                .flat_map(|&i| group[i].events())
                .filter(|e| e.at >= since && matches!(&e.ev, Ev::Assigned(ps) if ps.contains(p)))
                .map(|e| e.at)
                .min()
                .unwrap_or_else(|| panic!("partition {p} was never assigned to a survivor"))
        })
        .max()
        .expect("at least one moved partition")
}

// ---------------------------------------------------------------------------------------------
// Topics and records

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime")
}

pub async fn create_topic(broker: &TestBroker, topic: &str, partitions: i32) {
    let admin = sluice_client::Admin::connect(sluice_client::ClientConfig::new(broker.addr())).await.expect("admin");
    admin.create_topic(sluice_client::NewTopic::new(topic, partitions, 1)).await.expect("create topic");
    // Kafka publishes the new topic's metadata a moment after CreateTopics returns.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match admin.describe_topics(&[topic]).await {
            Ok(t) if t.len() == 1 && t[0].num_partitions() == partitions => return,
            _ => {
                assert!(Instant::now() < deadline, "topic {topic} never showed {partitions} partitions");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Produces `per_partition` records (`topic/p/i`) to each partition of a new topic, acks=all,
/// and returns the end offsets, checked with ListOffsets.
pub async fn produce_per_partition(
    broker: &TestBroker,
    topic: &str,
    partitions: i32,
    per_partition: i64,
) -> BTreeMap<i32, i64> {
    use sluice_client::{Producer, ProducerConfig, ProducerRecord, TopicPartition};
    let producer = Producer::new(ProducerConfig::new(broker.addr())).await.expect("producer");
    let mut deliveries = Vec::new();
    for p in 0..partitions {
        for i in 0..per_partition {
            let record = ProducerRecord::new(topic).value(format!("{topic}/{p}/{i}")).partition(p);
            deliveries.push(producer.send(record).await.expect("send"));
        }
    }
    producer.flush().await.expect("flush");
    for d in deliveries {
        d.await.expect("delivered");
    }
    producer.close().await.expect("close producer");
    let admin = sluice_client::Admin::connect(sluice_client::ClientConfig::new(broker.addr())).await.expect("admin");
    let tps: Vec<TopicPartition> = (0..partitions).map(|p| TopicPartition::new(topic, p)).collect();
    let ends = admin.list_offsets(&tps, sluice_client::OffsetSpec::Latest).await.expect("list offsets");
    let ends: BTreeMap<i32, i64> = ends.into_iter().map(|(tp, o)| (tp.partition, o.offset)).collect();
    for p in 0..partitions {
        assert_eq!(ends[&p], per_partition, "end offset of {topic}/{p}");
    }
    ends
}

/// Produces `values` with the Sluice client, value i to partition `partition_of(i)`, and waits
/// for every acknowledgement.
pub async fn produce_values(addr: &str, topic: &str, values: &[String], partition_of: impl Fn(usize) -> i32) {
    use sluice_client::{Producer, ProducerConfig, ProducerRecord};
    let producer = Producer::new(ProducerConfig::new(addr)).await.expect("producer");
    let mut deliveries = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let record = ProducerRecord::new(topic).value(v.clone()).partition(partition_of(i));
        deliveries.push(producer.send(record).await.expect("send"));
    }
    producer.flush().await.expect("flush");
    for d in deliveries {
        d.await.expect("delivered");
    }
    producer.close().await.expect("close");
}

/// `n` distinct values `prefix-0`, `prefix-1`, ...
pub fn values(n: usize, prefix: &str) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// The consumer settings the e2e tests share: manual commits from the earliest offset, short
/// timeouts so liveness shows within seconds, and a 100 ms long poll.
pub fn consumer_config(broker: &TestBroker, group: Option<&str>) -> sluice_client::ConsumerConfig {
    let mut c = sluice_client::ConsumerConfig::new(broker.addr());
    c.client.connection.request_timeout_ms = 10_000;
    c.group_id = group.map(str::to_string);
    c.auto_offset_reset = sluice_client::AutoOffsetReset::Earliest;
    c.enable_auto_commit = false;
    c.session_timeout_ms = 10_000;
    c.heartbeat_interval_ms = 200;
    c.max_poll_interval_ms = 20_000;
    c.fetch_max_wait_ms = 100;
    c
}
