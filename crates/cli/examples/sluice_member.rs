//! One member of a consumer group, driven by the Sluice client (`sluice_client::Consumer`): the
//! twin of `group_member.rs` (librdkafka) with the same options, the same output lines and the
//! same commands, so that tests can start either, mix them in one group, and kill them.
//!
//! ```sh
//! cargo run --release --example sluice_member -- --bootstrap 127.0.0.1:9092 --group g --topic t \
//!     --strategy range --commit sync
//! ```
//!
//! Options (`--name value`): `--bootstrap`, `--group`, `--topic` (required); `--strategy`
//! `range` | `roundrobin` | `sticky` | `cooperative-sticky` (default `range`); `--instance-id`
//! (static membership); `--commit` `sync` (default: commit the processed positions every
//! `--commit-every` records, 10 by default, and the revoked partitions in the revoke callback),
//! `auto` (every `--auto-commit-interval-ms`, 200 by default) or `none`;
//! `--session-timeout-ms` (6000), `--heartbeat-interval-ms` (1000), `--max-poll-interval-ms`
//! (300000), `--auto-offset-reset` (`earliest`), `--delay-ms` (processing time per record, 0),
//! `--max-poll-records` (10), `--client-id`.
//!
//! Standard output, one line per event as it happens: `assigned P ...` (eager: the whole
//! assignment; cooperative: the increment, possibly empty), `revoked P ...`, `lost P ...`,
//! `consumed P O` once a record is processed, `committed P O` after a successful synchronous
//! commit (O = next offset to read), `commit-failed ERROR P O ...`, `paused`, `resumed`,
//! `closed`, `error ...`.
//!
//! Commands on standard input, one a line: `pause` (commit in `sync` mode, then pause every
//! assigned partition), `resume`. End of input closes the consumer (revoke callback with its
//! commit, LeaveGroup for a dynamic member) and exits 0 after printing `closed`.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_client::{
    AutoOffsetReset, Consumer, ConsumerConfig, Error, RebalanceContext, RebalanceListener, TopicPartition,
};

#[derive(Clone, Copy, PartialEq, Eq)]
enum CommitStyle {
    Sync,
    Auto,
    None,
}

/// Writes one event line and flushes it, so that a `kill -9` right afterwards loses nothing
/// that was printed.
fn emit(line: &str) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        std::process::exit(3);
    }
}

fn partitions_line(what: &str, parts: &[TopicPartition]) -> String {
    let mut line = what.to_string();
    for tp in parts {
        line.push_str(&format!(" {}", tp.partition));
    }
    line
}

fn error_word(e: &Error) -> String {
    e.to_string().split_whitespace().collect::<Vec<_>>().join("_")
}

/// Positions of processed records and what was committed, shared by the loop and the listener.
#[derive(Default)]
struct State {
    processed: BTreeMap<TopicPartition, i64>,
    committed: BTreeMap<TopicPartition, i64>,
    paused: bool,
}

impl State {
    /// Processed positions not committed yet (of `only`, when given).
    fn to_commit(&self, only: Option<&[TopicPartition]>) -> BTreeMap<TopicPartition, i64> {
        self.processed
            .iter()
            .filter(|(tp, _)| only.is_none_or(|o| o.contains(tp)))
            .filter(|(tp, o)| self.committed.get(*tp) != Some(*o))
            .map(|(tp, o)| (tp.clone(), *o))
            .collect()
    }

    fn report_commit(&mut self, offsets: &BTreeMap<TopicPartition, i64>, result: Result<(), &Error>) {
        match result {
            Ok(()) => {
                for (tp, o) in offsets {
                    self.committed.insert(tp.clone(), *o);
                    emit(&format!("committed {} {o}", tp.partition));
                }
            }
            Err(e) => {
                let mut line = format!("commit-failed {}", error_word(e));
                for (tp, o) in offsets {
                    line.push_str(&format!(" {} {o}", tp.partition));
                }
                emit(&line);
            }
        }
    }

    fn forget(&mut self, parts: &[TopicPartition]) {
        self.processed.retain(|tp, _| !parts.contains(tp));
        self.committed.retain(|tp, _| !parts.contains(tp));
    }
}

struct Listener {
    state: Arc<Mutex<State>>,
    commit: CommitStyle,
}

impl RebalanceListener for Listener {
    fn on_partitions_revoked(&mut self, ctx: &mut RebalanceContext<'_>, partitions: &[TopicPartition]) {
        let mut state = self.state.lock().unwrap();
        if self.commit == CommitStyle::Sync {
            ctx.commit(state.to_commit(Some(partitions)));
        }
        emit(&partitions_line("revoked", partitions));
        state.forget(partitions);
    }

    fn on_partitions_assigned(&mut self, _ctx: &mut RebalanceContext<'_>, partitions: &[TopicPartition]) {
        emit(&partitions_line("assigned", partitions));
    }

    fn on_partitions_lost(&mut self, _ctx: &mut RebalanceContext<'_>, partitions: &[TopicPartition]) {
        emit(&partitions_line("lost", partitions));
        self.state.lock().unwrap().forget(partitions);
    }

    fn on_commit(&mut self, offsets: &BTreeMap<TopicPartition, i64>, result: Result<(), &Error>) {
        self.state.lock().unwrap().report_commit(offsets, result);
    }
}

enum Command {
    Pause,
    Resume,
    Close,
}

fn parse_args() -> HashMap<String, String> {
    let mut args = HashMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let Some(name) = flag.strip_prefix("--") else {
            eprintln!("sluice_member: unexpected argument {flag:?}");
            std::process::exit(2);
        };
        let Some(value) = it.next() else {
            eprintln!("sluice_member: --{name} needs a value");
            std::process::exit(2);
        };
        args.insert(name.to_string(), value);
    }
    for required in ["bootstrap", "group", "topic"] {
        if !args.contains_key(required) {
            eprintln!("sluice_member: --{required} is required");
            std::process::exit(2);
        }
    }
    args
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = parse_args();
    let arg = |name: &str, default: &str| args.get(name).cloned().unwrap_or_else(|| default.to_string());
    let number = |name: &str, default: u64| -> u64 {
        args.get(name).map_or(default, |v| {
            v.parse().unwrap_or_else(|_| {
                eprintln!("sluice_member: --{name} wants a number, got {v:?}");
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
            eprintln!("sluice_member: --commit is sync, auto or none, got {other:?}");
            std::process::exit(2);
        }
    };
    let commit_every = number("commit-every", 10).max(1);
    let delay = Duration::from_millis(number("delay-ms", 0));

    let mut config = ConsumerConfig::new(arg("bootstrap", ""));
    config.client.connection.client_id = arg("client-id", "sluice-member");
    config.client.connection.request_timeout_ms = 10_000;
    config.group_id = Some(arg("group", ""));
    config.group_instance_id = args.get("instance-id").cloned();
    config.assignors = vec![arg("strategy", "range")];
    config.session_timeout_ms = i32::try_from(number("session-timeout-ms", 6000)).unwrap_or(i32::MAX);
    config.heartbeat_interval_ms = number("heartbeat-interval-ms", 1000);
    config.max_poll_interval_ms = i32::try_from(number("max-poll-interval-ms", 300_000)).unwrap_or(i32::MAX);
    config.max_poll_records = usize::try_from(number("max-poll-records", 10)).unwrap_or(10);
    config.enable_auto_commit = commit == CommitStyle::Auto;
    config.auto_commit_interval_ms = number("auto-commit-interval-ms", 200);
    config.fetch_max_wait_ms = 100;
    // Small fetches (a batch or so per partition), as group_member's.
    config.max_partition_fetch_bytes = 1024;
    config.auto_offset_reset = match arg("auto-offset-reset", "earliest").parse::<AutoOffsetReset>() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sluice_member: {e}");
            std::process::exit(2);
        }
    };
    let mut consumer = Consumer::new(config).await.unwrap_or_else(|e| {
        eprintln!("sluice_member: cannot create the consumer: {e}");
        std::process::exit(1)
    });
    let state = Arc::new(Mutex::new(State::default()));
    let listener = Listener { state: state.clone(), commit };
    if let Err(e) = consumer.subscribe_with(vec![topic.clone()], Box::new(listener)).await {
        eprintln!("sluice_member: subscribe {topic}: {e}");
        std::process::exit(1);
    }

    let (tx, mut commands) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let command = match line.as_deref().map(str::trim) {
                Ok("pause") => Command::Pause,
                Ok("resume") => Command::Resume,
                Ok(other) => {
                    eprintln!("sluice_member: unknown command {other:?}");
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
                if commit == CommitStyle::Sync {
                    commit_processed(&mut consumer, &state).await;
                }
                state.lock().unwrap().paused = true;
                let assignment = consumer.assignment().to_vec();
                consumer.pause(&assignment);
                emit("paused");
            }
            Ok(Command::Resume) => {
                state.lock().unwrap().paused = false;
                let paused = consumer.paused();
                consumer.resume(&paused);
                emit("resumed");
            }
            Ok(Command::Close) | Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => break,
            Err(tokio::sync::mpsc::error::TryRecvError::Empty) => {}
        }
        match consumer.poll(Duration::from_millis(50)).await {
            Ok(records) => {
                last_error = None;
                if state.lock().unwrap().paused {
                    // Partitions assigned while paused follow the member's paused state.
                    let assignment = consumer.assignment().to_vec();
                    consumer.pause(&assignment);
                }
                for r in records {
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    let tp = TopicPartition::new(&r.topic, r.partition);
                    state.lock().unwrap().processed.insert(tp, r.offset + 1);
                    emit(&format!("consumed {} {}", r.partition, r.offset));
                    since_commit += 1;
                    if commit == CommitStyle::Sync && since_commit >= commit_every {
                        since_commit = 0;
                        commit_processed(&mut consumer, &state).await;
                    }
                }
            }
            Err(e) => {
                let line = format!("error {}", error_word(&e));
                if last_error.as_ref() != Some(&line) {
                    emit(&line);
                    last_error = Some(line);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    if commit == CommitStyle::Sync {
        commit_processed(&mut consumer, &state).await;
    }
    if let Err(e) = consumer.close().await {
        emit(&format!("error close {}", error_word(&e)));
    }
    emit("closed");
}

/// Commits the processed positions that moved since the last commit and prints the outcome.
async fn commit_processed(consumer: &mut Consumer, state: &Arc<Mutex<State>>) {
    let todo = state.lock().unwrap().to_commit(None);
    if todo.is_empty() {
        return;
    }
    let result = consumer.commit_offsets(&todo).await;
    state.lock().unwrap().report_commit(&todo, result.as_ref().map(|_| ()));
}
