//! Client commands: `sluice topic|produce|consume|group|bench`. They work against any
//! Kafka-compatible broker (Sluice or Kafka).
//!
//! Each command lives in its own module; this one holds what they share: the connection
//! arguments every command takes, the runtime, and how errors are reported (`sluice: ...` on
//! standard error, exit status 1). Results go to standard output, progress and summaries to
//! standard error, so output can be piped.

mod bench;
#[cfg(feature = "rdkafka")]
mod bench_rdkafka;
mod bench_wire;
mod consume;
mod group;
mod json;
mod produce;
mod timefmt;
mod topic;

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use sluice_client::{ClientConfig, Compression};

pub use bench::BenchCommand;
pub use consume::ConsumeArgs;
pub use group::GroupCommand;
pub use produce::ProduceArgs;
pub use topic::TopicCommand;

/// Where to find the cluster; every client command takes it.
#[derive(Args, Debug, Clone)]
pub struct ConnectArgs {
    /// HOST:PORT[,HOST:PORT...] of one or more brokers to bootstrap from.
    #[arg(long = "bootstrap-server", env = "SLUICE_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    pub bootstrap_server: String,
    /// How long to wait for any one broker answer, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    pub request_timeout_ms: u64,
}

impl ConnectArgs {
    fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new(self.bootstrap_server.clone());
        c.connection.client_id = "sluice-cli".into();
        c.connection.request_timeout_ms = self.request_timeout_ms;
        c.connection.connect_timeout_ms = self.request_timeout_ms.min(10_000);
        c
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the async runtime")
}

/// Runs a client command; errors go to stderr as `sluice: ...`.
pub fn run_topic(command: TopicCommand) -> ExitCode {
    report(runtime().and_then(|rt| rt.block_on(topic::run(command))))
}

pub fn run_produce(args: ProduceArgs) -> ExitCode {
    report(runtime().and_then(|rt| rt.block_on(produce::run(args))))
}

pub fn run_consume(args: ConsumeArgs) -> ExitCode {
    report(runtime().and_then(|rt| rt.block_on(consume::run(args))))
}

pub fn run_group(command: GroupCommand) -> ExitCode {
    report(runtime().and_then(|rt| rt.block_on(group::run(command))))
}

pub fn run_bench(command: BenchCommand) -> ExitCode {
    // The bench runs its producer and consumer side by side: two worker threads, as a real
    // application would have.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime");
    report(rt.and_then(|rt| rt.block_on(bench::run(command))))
}

fn report(result: Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn compression(name: &str) -> Result<Compression> {
    Compression::ALL
        .into_iter()
        .find(|c| c.name() == name)
        .with_context(|| format!("unknown --compression {name:?}; use none, gzip, snappy, lz4 or zstd"))
}

/// Whether standard error is a terminal (progress bars are drawn only there unless asked for).
fn stderr_is_tty() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}

/// Where progress bars draw: the terminal when standard error is one (redrawn in place), else
/// (with `--progress`) one plain line a second, so a log or a pipe gets readable progress.
fn progress_target() -> indicatif::ProgressDrawTarget {
    if stderr_is_tty() {
        indicatif::ProgressDrawTarget::stderr()
    } else {
        indicatif::ProgressDrawTarget::term_like_with_hz(Box::new(StderrLines), 1)
    }
}

/// A `TermLike` for a standard error that is not a terminal: every drawn line is written as a
/// line of its own; cursor moves and clears are ignored.
#[derive(Debug)]
struct StderrLines;

impl indicatif::TermLike for StderrLines {
    fn width(&self) -> u16 {
        120
    }
    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.write_str(s)
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        use std::io::Write;
        if s.trim().is_empty() {
            return Ok(());
        }
        writeln!(std::io::stderr(), "{s}")
    }
    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn flush(&self) -> std::io::Result<()> {
        use std::io::Write;
        std::io::stderr().flush()
    }
}
