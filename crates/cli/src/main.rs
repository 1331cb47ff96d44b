//! `sluice`: the broker (`serve`) and client commands (`topic`, `produce`, `consume`, `group`, `bench`).

mod client;
mod serve;

use clap::{Parser, Subcommand};
use sluice_protocol::alloc_guard::GuardedAllocator;

/// Keeps a lying length field in a request from aborting the process (see `alloc_guard`).
#[global_allocator]
static ALLOC: GuardedAllocator = GuardedAllocator;

#[derive(Parser)]
#[command(name = "sluice", version, about = "A Kafka-compatible event streaming broker and its command-line client")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a broker.
    Serve(serve::ServeArgs),
    /// Create, list, describe, alter or delete topics.
    #[command(subcommand)]
    Topic(client::TopicCommand),
    /// Write records read from standard input (one per line) to a topic.
    Produce(client::ProduceArgs),
    /// Print a topic's records (values one a line, or JSON), in a group or from chosen
    /// partitions and positions.
    Consume(client::ConsumeArgs),
    /// List, describe, reset the offsets of, or delete consumer groups.
    #[command(subcommand)]
    Group(client::GroupCommand),
    /// Measure throughput and latency percentiles: produce, consume or end to end.
    #[command(subcommand)]
    Bench(client::BenchCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Topic(command) => client::run_topic(command),
        Command::Produce(args) => client::run_produce(args),
        Command::Consume(args) => client::run_consume(args),
        Command::Group(command) => client::run_group(command),
        Command::Bench(command) => client::run_bench(command),
    }
}
