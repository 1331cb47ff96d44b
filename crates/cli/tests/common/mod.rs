//! Shared harness for the end-to-end tests: a real `sluice` process on an ephemeral
//! 127.0.0.1 port with a temporary data directory, and small helpers around rdkafka.
//!
//! Every test binary includes this module with `mod common;` and uses a different subset of
//! it, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod interposer;

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tempfile::TempDir;

/// How long a starting broker may take to print its ready line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a broker may take to exit after SIGTERM.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(20);
/// Default deadline for client operations in tests (admin calls, deliveries, consumption).
pub const OP_TIMEOUT: Duration = Duration::from_secs(30);

const READY_PREFIX: &str = "sluice listening on ";

/// A running `sluice serve` process. Killed (SIGKILL) on drop, so a failing test never leaves a
/// broker behind; its stderr goes to a log file whose tail is printed when a test panics.
pub struct Broker {
    child: Option<Child>,
    addr: String,
    data_dir: TempDir,
    log_dir: TempDir,
    args: Vec<String>,
    starts: u32,
    /// `--listen` of the next start: an ephemeral port, or the port of the previous run for
    /// `restart_same_port`.
    listen: String,
}

/// The broker binary under test: `$SLUICE_BIN` when set (to run these tests against another
/// build, or against a reference broker with the same command line), else the `sluice` that
/// Cargo built for this test.
pub fn sluice_bin() -> PathBuf {
    match std::env::var_os("SLUICE_BIN") {
        Some(bin) if !bin.is_empty() => PathBuf::from(bin),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_sluice")),
    }
}

impl Broker {
    /// Starts a broker with default settings.
    pub fn start() -> Broker {
        Broker::start_with(&[])
    }

    /// Starts a broker with extra command-line arguments (after `serve --listen --data-dir`).
    pub fn start_with(args: &[&str]) -> Broker {
        let data_dir = tempfile::Builder::new().prefix("sluice-e2e-data-").tempdir().expect("create data dir");
        let log_dir = tempfile::Builder::new().prefix("sluice-e2e-log-").tempdir().expect("create log dir");
        let mut broker = Broker {
            child: None,
            addr: String::new(),
            data_dir,
            log_dir,
            args: args.iter().map(|s| s.to_string()).collect(),
            starts: 0,
            listen: "127.0.0.1:0".to_string(),
        };
        broker.spawn();
        broker
    }

    /// `127.0.0.1:PORT`, as printed on the ready line.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("broker is running").id()
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => child.try_wait().expect("try_wait").is_none(),
            None => false,
        }
    }

    /// SIGKILL: no chance to flush, close files or write a clean-shutdown marker.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Ignore the error: the process may already have exited.
            let _ = child.kill();
            child.wait().expect("wait for killed broker");
        }
    }

    /// SIGTERM, then waits for the exit status (SIGKILL and panic after `SHUTDOWN_TIMEOUT`).
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("broker is running");
        let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) on the pid of a child we have not reaped yet.
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill(SIGTERM) failed");
        let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("broker did not exit within {SHUTDOWN_TIMEOUT:?} of SIGTERM\n{}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the running process (if any) with SIGKILL and starts a new one on the same data
    /// directory with the same arguments. The new process gets a new ephemeral port: use
    /// `addr()` again afterwards.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Kills the running process with SIGKILL and starts a new one on the same data directory,
    /// the same arguments and the same port, as a supervisor restarting a crashed broker would:
    /// clients keep their bootstrap address. Waits (up to `READY_TIMEOUT`) until the port can
    /// be bound again, since a broker that runs as a child of the spawned process may outlive
    /// it for a moment.
    pub fn restart_same_port(&mut self) {
        self.kill9();
        let addr = self.addr.clone();
        let deadline = Instant::now() + READY_TIMEOUT;
        while std::net::TcpListener::bind(&addr).is_err() {
            assert!(Instant::now() < deadline, "port {addr} still in use {READY_TIMEOUT:?} after the kill");
            std::thread::sleep(Duration::from_millis(50));
        }
        self.listen = addr.clone();
        self.spawn();
        self.listen = "127.0.0.1:0".to_string();
        assert_eq!(self.addr, addr, "the restarted broker must listen on the same address");
    }

    /// Starts a process on the same data directory after `terminate` or `kill9`.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "broker is still running");
        self.spawn();
    }

    fn log_path(&self, start: u32) -> PathBuf {
        self.log_dir.path().join(format!("stderr.{start}.log"))
    }

    /// The last lines of the broker's stderr (current and previous runs), for failure messages.
    pub fn log_tail(&self) -> String {
        let mut out = String::new();
        for start in 1..=self.starts {
            let mut text = String::new();
            if let Ok(mut f) = File::open(self.log_path(start)) {
                let _ = f.read_to_string(&mut text);
            }
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(40);
            out.push_str(&format!("--- broker stderr, run {start} (last {} lines) ---\n", lines.len() - from));
            for line in &lines[from..] {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let stderr = File::create(self.log_path(self.starts)).expect("create stderr log");
        let mut cmd = Command::new(sluice_bin());
        cmd.arg("serve")
            .arg("--listen")
            .arg(&self.listen)
            .arg("--data-dir")
            .arg(self.data_dir.path())
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        // The environment of whoever runs the tests must not change the broker under test.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("SLUICE_") {
                cmd.env_remove(key);
            }
        }
        let mut child = cmd.spawn().expect("spawn sluice");
        let stdout = child.stdout.take().expect("piped stdout");

        // Read stdout on a thread so that the wait for the ready line has a deadline; the
        // thread keeps draining stdout afterwards so the broker never blocks on a full pipe.
        let (tx, rx) = mpsc::channel::<Result<String, String>>();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let first = match reader.read_line(&mut line) {
                Ok(0) => Err("stdout closed before the ready line".to_string()),
                Ok(_) => Ok(line.trim_end().to_string()),
                Err(e) => Err(format!("reading stdout: {e}")),
            };
            let _ = tx.send(first);
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let first = rx.recv_timeout(READY_TIMEOUT);
        self.child = Some(child);
        let line = match first {
            Ok(Ok(line)) => line,
            Ok(Err(e)) => {
                self.kill9();
                panic!("broker failed to start: {e}\n{}", self.log_tail());
            }
            Err(_) => {
                self.kill9();
                panic!("broker printed no ready line within {READY_TIMEOUT:?}\n{}", self.log_tail());
            }
        };
        let addr = line
            .strip_prefix(READY_PREFIX)
            .unwrap_or_else(|| panic!("unexpected first stdout line {line:?}, wanted {READY_PREFIX:?}ADDR"));
        assert!(
            addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"),
            "ready line must name the bound 127.0.0.1 port, got {line:?}"
        );
        self.addr = addr.to_string();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail());
        }
    }
}

/// A topic name unique within this test process.
pub fn unique_topic(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Client configuration shared by every client: the broker's address and short timeouts so
/// that a broken broker fails a test quickly instead of hanging it.
pub fn client_config(broker: &Broker) -> ClientConfig {
    client_config_at(broker.addr())
}

/// [`client_config`] for a broker given by its address.
pub fn client_config_at(addr: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", addr)
        .set("socket.timeout.ms", "10000")
        .set("topic.metadata.refresh.interval.ms", "2000")
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "500");
    config
}

/// Producer configuration with acks and a bounded delivery timeout.
pub fn producer_config(broker: &Broker, acks: &str) -> ClientConfig {
    let mut config = client_config(broker);
    config.set("acks", acks).set("message.timeout.ms", "20000").set("enable.idempotence", "false");
    config
}

/// Consumer configuration for assign()-only consumption: no commits. librdkafka refuses
/// assign() without a group.id, but with explicit offsets and no commits the group is never
/// used, so the broker needs no group coordinator.
pub fn consumer_config(broker: &Broker) -> ClientConfig {
    let mut config = client_config(broker);
    config
        .set("group.id", "sluice-e2e-assign-only")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", "error")
        .set("fetch.wait.max.ms", "100");
    config
}

/// A consumed record, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rec {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub timestamp: Option<i64>,
}

impl Rec {
    pub fn from_message<M: Message>(m: &M) -> Rec {
        let headers = m
            .headers()
            .map(|hs| hs.iter().map(|h| (h.key.to_string(), h.value.map(|v| v.to_vec()))).collect())
            .unwrap_or_default();
        Rec {
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(|k| k.to_vec()),
            value: m.payload().map(|v| v.to_vec()),
            headers,
            timestamp: m.timestamp().to_millis(),
        }
    }
}

/// Assigns `topic`/`partition` at `from` and reads until `count` records arrived, failing the
/// test if they do not arrive before `OP_TIMEOUT` or if the client reports an error.
pub fn consume(broker: &Broker, topic: &str, partition: i32, from: Offset, count: usize) -> Vec<Rec> {
    let consumer: BaseConsumer = consumer_config(broker).create().expect("create consumer");
    consume_with(&consumer, topic, partition, from, count)
}

/// As `consume`, with a consumer the caller configured.
pub fn consume_with(consumer: &BaseConsumer, topic: &str, partition: i32, from: Offset, count: usize) -> Vec<Rec> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, from).expect("add partition");
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + OP_TIMEOUT;
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "consumed {} of {count} records from {topic}/{partition} before the deadline",
            out.len()
        );
        match consumer.poll(left.min(Duration::from_millis(500))) {
            None => {}
            Some(Ok(m)) => out.push(Rec::from_message(&m)),
            Some(Err(e)) => panic!("consumer error on {topic}/{partition}: {e}"),
        }
    }
    out
}

/// Reads `topic`/`partition` from offset 0 up to its current high watermark.
pub fn consume_all(broker: &Broker, topic: &str, partition: i32) -> Vec<Rec> {
    let consumer: BaseConsumer = consumer_config(broker).create().expect("create consumer");
    let (low, high) = watermarks(&consumer, topic, partition);
    assert_eq!(low, 0, "log start offset of {topic}/{partition}");
    let count = usize::try_from(high).expect("non-negative high watermark");
    consume_with(&consumer, topic, partition, Offset::Beginning, count)
}

/// ListOffsets earliest and latest. Retries while the partition has no leader yet, as Kafka
/// reports for a moment after a restart.
pub fn watermarks(consumer: &BaseConsumer, topic: &str, partition: i32) -> (i64, i64) {
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};
    let deadline = Instant::now() + OP_TIMEOUT;
    loop {
        match consumer.fetch_watermarks(topic, partition, OP_TIMEOUT) {
            Ok(marks) => return marks,
            Err(KafkaError::MetadataFetch(
                RDKafkaErrorCode::NotLeaderForPartition | RDKafkaErrorCode::LeaderNotAvailable,
            )) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("ListOffsets {topic}/{partition}: {e}"),
        }
    }
}

/// Partition ids and their count for `topic`, from a Metadata request for that topic.
pub fn partition_count(broker: &Broker, topic: &str) -> usize {
    let consumer: BaseConsumer = consumer_config(broker).create().expect("create consumer");
    let md = consumer.fetch_metadata(Some(topic), OP_TIMEOUT).expect("fetch metadata");
    let t = md.topics().iter().find(|t| t.name() == topic).expect("topic in metadata");
    assert!(t.error().is_none(), "metadata error for {topic}: {:?}", t.error());
    t.partitions().len()
}

/// All topic names the broker reports (Metadata with a null topic list).
pub fn list_topics(broker: &Broker) -> Vec<String> {
    let consumer: BaseConsumer = consumer_config(broker).create().expect("create consumer");
    let md = consumer.fetch_metadata(None, OP_TIMEOUT).expect("fetch metadata");
    md.topics().iter().map(|t| t.name().to_string()).collect()
}

/// Collects `(key, value)` headers of a record into a map for order-insensitive lookups.
pub fn header_map(rec: &Rec) -> HashMap<String, Vec<Option<Vec<u8>>>> {
    let mut map: HashMap<String, Vec<Option<Vec<u8>>>> = HashMap::new();
    for (k, v) in &rec.headers {
        map.entry(k.clone()).or_default().push(v.clone());
    }
    map
}

/// An admin client for `broker`.
pub fn admin(broker: &Broker) -> rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> {
    client_config(broker).create().expect("create admin client")
}

/// Admin options with a bounded request timeout.
pub fn admin_opts() -> rdkafka::admin::AdminOptions {
    rdkafka::admin::AdminOptions::new().request_timeout(Some(OP_TIMEOUT)).operation_timeout(Some(OP_TIMEOUT))
}

/// Creates `name` with `partitions` partitions, replication factor 1 and the given topic
/// configs, and asserts that the broker reports success.
pub async fn create_topic(broker: &Broker, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    use rdkafka::admin::{NewTopic, TopicReplication};
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        topic = topic.set(k, v);
    }
    let results = admin(broker).create_topics([&topic], &admin_opts()).await.expect("CreateTopics request");
    assert_eq!(results.len(), 1);
    assert_eq!(results[0], Ok(name.to_string()), "CreateTopics {name}");
    wait_for_partitions(broker, name, usize::try_from(partitions).expect("partitions > 0"));
}

/// Polls `condition` until it holds, failing after `OP_TIMEOUT`. For conditions outside the
/// test's control, such as metadata that a broker may publish shortly after an admin call
/// returns (Kafka does; a single-node broker need not).
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + OP_TIMEOUT;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until Metadata for `topic` shows `partitions` partitions, each with a leader and no
/// error.
pub fn wait_for_partitions(broker: &Broker, topic: &str, partitions: usize) {
    let consumer: BaseConsumer = consumer_config(broker).create().expect("create consumer");
    wait_until(&format!("{topic} has {partitions} led partitions"), || {
        let md = consumer.fetch_metadata(Some(topic), OP_TIMEOUT).expect("fetch metadata");
        md.topics().iter().any(|t| {
            t.name() == topic
                && t.error().is_none()
                && t.partitions().len() == partitions
                && t.partitions().iter().all(|p| p.error().is_none() && p.leader() >= 0)
        })
    });
}
