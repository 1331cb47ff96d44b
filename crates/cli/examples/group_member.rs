//! One member of a consumer group, driven by librdkafka (the `rdkafka` crate): the process the
//! consumer-group end-to-end tests (`tests/groups.rs`) start several times and kill.
//!
//! ```sh
//! cargo run --release --example group_member -- --bootstrap 127.0.0.1:9092 --group g --topic t \
//!     --strategy range --commit sync
//! ```
//!
//! Options (`--name value`):
//! - `--bootstrap`, `--group`, `--topic` (required);
//! - `--strategy` `range` | `roundrobin` | `cooperative-sticky` (librdkafka's
//!   `partition.assignment.strategy`, default `range`);
//! - `--instance-id ID` sets `group.instance.id` (static membership, KIP-345);
//! - `--commit` `sync` (default: a synchronous commit of the consumed positions every
//!   `--commit-every` records, 10 by default, and of the revoked partitions before they are given
//!   up), `auto` (`enable.auto.commit=true` every `--auto-commit-interval-ms`, 200 by default) or
//!   `none`;
//! - `--session-timeout-ms` (6000), `--heartbeat-interval-ms` (1000), `--auto-offset-reset`
//!   (`earliest`), `--delay-ms` (processing time per record, 0), `--client-id`, `--debug`
//!   (librdkafka `debug` contexts, logged to stderr).
//!
//! Standard output has one line per event, written as it happens:
//! - `assigned P P ...` partitions added to the assignment (eager protocols: the whole new
//!   assignment; cooperative: the increment, possibly empty);
//! - `revoked P P ...` partitions given up in a rebalance (after their commit, in `sync` mode);
//! - `lost P P ...` partitions lost without a rebalance (session expired, fenced): not committed;
//! - `consumed P O` a record, once processed;
//! - `committed P O` after a synchronous commit returned success: O is the next offset to read;
//! - `commit-failed ERROR P O ...` a synchronous commit that failed;
//! - `paused`, `resumed`, `closed` answers to the commands below; `error ...` consumer errors.
//!
//! Commands on standard input, one a line: `pause` (commit in `sync` mode, then stop fetching
//! every assigned partition), `resume`. End of input closes the consumer gracefully
//! (`rd_kafka_consumer_close`: revoke callback, commit, LeaveGroup for a dynamic member) and
//! exits 0 after printing `closed`, so a member never outlives the test that started it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};

#[derive(Clone, Copy, PartialEq, Eq)]
enum CommitStyle {
    Sync,
    Auto,
    None,
}

/// Writes one event line and flushes it, so that a `kill -9` right afterwards loses nothing that
/// was printed.
fn emit(line: &str) {
    let mut out = std::io::stdout().lock();
    // A closed stdout means the test is gone; nothing useful is left to do.
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        std::process::exit(3);
    }
}

fn partitions_line(what: &str, parts: impl IntoIterator<Item = i32>) -> String {
    let mut line = what.to_string();
    for p in parts {
        line.push(' ');
        line.push_str(&p.to_string());
    }
    line
}

struct Member {
    topic: String,
    commit: CommitStyle,
    /// Next offset to read of every partition this member consumed from since it was assigned:
    /// what a commit stores.
    positions: Mutex<BTreeMap<i32, i64>>,
    /// Positions already committed, so that a commit covers only partitions that advanced.
    committed: Mutex<BTreeMap<i32, i64>>,
    paused: AtomicBool,
}

impl Member {
    /// Commits the consumed positions of `only` (or of every partition consumed from)
    /// synchronously and prints the outcome. Partitions that did not advance are skipped.
    fn commit(&self, consumer: &BaseConsumer<Member>, only: Option<&BTreeSet<i32>>) {
        if self.commit != CommitStyle::Sync {
            return;
        }
        let positions = self.positions.lock().unwrap().clone();
        let mut committed = self.committed.lock().unwrap();
        let todo: Vec<(i32, i64)> = positions
            .into_iter()
            .filter(|(p, _)| only.is_none_or(|set| set.contains(p)))
            .filter(|(p, o)| committed.get(p) != Some(o))
            .collect();
        if todo.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for (p, o) in &todo {
            tpl.add_partition_offset(&self.topic, *p, Offset::Offset(*o)).expect("partition");
        }
        match consumer.commit(&tpl, CommitMode::Sync) {
            Ok(()) => {
                for (p, o) in todo {
                    committed.insert(p, o);
                    emit(&format!("committed {p} {o}"));
                }
            }
            Err(e) => {
                let mut line = format!("commit-failed {}", error_word(&e));
                for (p, o) in todo {
                    line.push_str(&format!(" {p} {o}"));
                }
                emit(&line);
            }
        }
    }

    /// Forgets what this member knew about partitions it no longer owns.
    fn forget(&self, parts: &BTreeSet<i32>) {
        self.positions.lock().unwrap().retain(|p, _| !parts.contains(p));
        self.committed.lock().unwrap().retain(|p, _| !parts.contains(p));
    }
}

/// An error as one whitespace-free word, so that the line stays parseable.
fn error_word(e: &KafkaError) -> String {
    e.to_string().split_whitespace().collect::<Vec<_>>().join("_")
}

fn partitions_of(tpl: &TopicPartitionList, topic: &str) -> BTreeSet<i32> {
    tpl.elements_for_topic(topic).iter().map(|e| e.partition()).collect()
}

impl ClientContext for Member {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        eprintln!("librdkafka {level:?} {fac}: {message}");
    }

    fn error(&self, error: KafkaError, reason: &str) {
        eprintln!("librdkafka error: {error}: {reason}");
    }
}

impl ConsumerContext for Member {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Member>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                let parts = partitions_of(tpl, &self.topic);
                if consumer.assignment_lost() {
                    // C12: the generation is gone; committing now would be refused (and wrong).
                    emit(&partitions_line("lost", parts.iter().copied()));
                } else {
                    self.commit(consumer, Some(&parts));
                    emit(&partitions_line("revoked", parts.iter().copied()));
                }
                self.forget(&parts);
            }
            Rebalance::Assign(_) => {}
            Rebalance::Error(e) => emit(&format!("error rebalance {}", error_word(e))),
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Member>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let parts = partitions_of(tpl, &self.topic);
            if tpl.count() > 0 {
                // New partitions follow the member's paused state; resuming also clears a pause
                // librdkafka may remember from an earlier assignment of the same partition.
                let result =
                    if self.paused.load(Ordering::SeqCst) { consumer.pause(tpl) } else { consumer.resume(tpl) };
                if let Err(e) = result {
                    emit(&format!("error pause/resume {}", error_word(&e)));
                }
            }
            emit(&partitions_line("assigned", parts));
        }
    }
}

enum Command {
    Pause,
    Resume,
    Close,
}

fn parse_args() -> HashMap<String, String> {
    let known = [
        "bootstrap",
        "group",
        "topic",
        "strategy",
        "instance-id",
        "commit",
        "commit-every",
        "auto-commit-interval-ms",
        "session-timeout-ms",
        "heartbeat-interval-ms",
        "auto-offset-reset",
        "delay-ms",
        "client-id",
        "debug",
    ];
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut map = HashMap::new();
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        let Some(name) = flag.strip_prefix("--").filter(|n| known.contains(n)) else {
            eprintln!("group_member: unknown argument {flag:?}; see the comment at the top of the source");
            std::process::exit(2);
        };
        let Some(value) = it.next() else {
            eprintln!("group_member: {flag} needs a value");
            std::process::exit(2);
        };
        map.insert(name.to_string(), value);
    }
    for required in ["bootstrap", "group", "topic"] {
        if !map.contains_key(required) {
            eprintln!("group_member: --{required} is required");
            std::process::exit(2);
        }
    }
    map
}

fn main() {
    let args = parse_args();
    let arg = |name: &str, default: &str| args.get(name).cloned().unwrap_or_else(|| default.to_string());
    let number = |name: &str, default: u64| -> u64 {
        args.get(name).map_or(default, |v| {
            v.parse().unwrap_or_else(|_| {
                eprintln!("group_member: --{name} wants a number, got {v:?}");
                std::process::exit(2)
            })
        })
    };
    let topic = arg("topic", "");
    let commit = match arg("commit", "sync").as_str() {
        "sync" => CommitStyle::Sync,
        "auto" => CommitStyle::Auto,
        "none" => CommitStyle::None,
        other => {
            eprintln!("group_member: --commit is sync, auto or none, got {other:?}");
            std::process::exit(2);
        }
    };
    let commit_every = number("commit-every", 10).max(1);
    let delay = Duration::from_millis(number("delay-ms", 0));

    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", arg("bootstrap", ""))
        .set("group.id", arg("group", ""))
        .set("client.id", arg("client-id", "group-member"))
        .set("partition.assignment.strategy", arg("strategy", "range"))
        .set("session.timeout.ms", number("session-timeout-ms", 6000).to_string())
        .set("heartbeat.interval.ms", number("heartbeat-interval-ms", 1000).to_string())
        .set("auto.offset.reset", arg("auto-offset-reset", "earliest"))
        .set("enable.auto.commit", if commit == CommitStyle::Auto { "true" } else { "false" })
        .set("auto.commit.interval.ms", number("auto-commit-interval-ms", 200).to_string())
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "100")
        // Small fetches (a batch or so per partition), so that a member works on all of its
        // partitions at once rather than one after the other.
        .set("max.partition.fetch.bytes", "1024")
        .set("socket.timeout.ms", "10000")
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "500")
        .set("topic.metadata.refresh.interval.ms", "2000");
    if let Some(id) = args.get("instance-id") {
        config.set("group.instance.id", id);
    }
    if let Some(debug) = args.get("debug") {
        config.set("debug", debug).set_log_level(RDKafkaLogLevel::Debug);
    }
    let member = Member {
        topic: topic.clone(),
        commit,
        positions: Mutex::new(BTreeMap::new()),
        committed: Mutex::new(BTreeMap::new()),
        paused: AtomicBool::new(false),
    };
    let consumer: BaseConsumer<Member> = config.create_with_context(member).unwrap_or_else(|e| {
        eprintln!("group_member: cannot create the consumer: {e}");
        std::process::exit(1)
    });
    consumer.subscribe(&[&topic]).unwrap_or_else(|e| {
        eprintln!("group_member: subscribe {topic}: {e}");
        std::process::exit(1)
    });

    let (tx, commands) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let command = match line.as_deref().map(str::trim) {
                Ok("pause") => Command::Pause,
                Ok("resume") => Command::Resume,
                Ok(other) => {
                    eprintln!("group_member: unknown command {other:?}");
                    continue;
                }
                Err(_) => break,
            };
            if tx.send(command).is_err() {
                return;
            }
        }
        let _ = tx.send(Command::Close);
    });

    let mut since_commit = 0u64;
    let mut last_error: Option<String> = None;
    loop {
        match commands.try_recv() {
            Ok(Command::Pause) => {
                consumer.context().commit(&consumer, None);
                consumer.context().paused.store(true, Ordering::SeqCst);
                let assignment = consumer.assignment().expect("assignment");
                if let Err(e) = consumer.pause(&assignment) {
                    emit(&format!("error pause {}", error_word(&e)));
                }
                emit("paused");
            }
            Ok(Command::Resume) => {
                consumer.context().paused.store(false, Ordering::SeqCst);
                let assignment = consumer.assignment().expect("assignment");
                if let Err(e) = consumer.resume(&assignment) {
                    emit(&format!("error resume {}", error_word(&e)));
                }
                emit("resumed");
            }
            Ok(Command::Close) | Err(mpsc::TryRecvError::Disconnected) => break,
            Err(mpsc::TryRecvError::Empty) => {}
        }
        match consumer.poll(Duration::from_millis(50)) {
            None => {}
            Some(Ok(m)) => {
                last_error = None;
                if m.topic() != topic {
                    continue;
                }
                if !delay.is_zero() {
                    std::thread::sleep(delay);
                }
                let (p, o) = (m.partition(), m.offset());
                drop(m);
                if consumer.context().paused.load(Ordering::SeqCst) {
                    eprintln!("group_member: record {p}/{o} delivered while paused");
                }
                consumer.context().positions.lock().unwrap().insert(p, o + 1);
                emit(&format!("consumed {p} {o}"));
                since_commit += 1;
                if since_commit >= commit_every {
                    since_commit = 0;
                    consumer.context().commit(&consumer, None);
                }
            }
            Some(Err(e)) => {
                // The same error repeats on every poll while, say, the broker is down.
                let line = format!("error {}", error_word(&e));
                if last_error.as_ref() != Some(&line) {
                    emit(&line);
                    last_error = Some(line);
                }
            }
        }
    }

    // Graceful shutdown: close the consumer (revoke callback with its commit, LeaveGroup for a
    // dynamic member, and librdkafka's final auto-commit in `auto` mode).
    if let Err(e) = consumer.close_queue() {
        emit(&format!("error close {}", error_word(&e)));
    } else {
        while !consumer.closed() {
            if let Some(Err(e)) = consumer.poll(Duration::from_millis(100)) {
                emit(&format!("error {}", error_word(&e)));
            }
        }
    }
    emit("closed");
    // The consumer is closed; skip the destructor, which would close it a second time.
    std::mem::forget(consumer);
    std::process::exit(0);
}
