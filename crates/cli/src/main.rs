//! `sluice`: the broker (`serve`) and client commands (`topic`, `produce`).

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
    /// Print the values of a topic's records, one per line.
    Consume(client::ConsumeArgs),
    /// List or describe consumer groups.
    #[command(subcommand)]
    Group(client::GroupCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Topic(command) => client::run_topic(command),
        Command::Produce(args) => client::run_produce(args),
        Command::Consume(args) => client::run_consume(args),
        Command::Group(command) => client::run_group(command),
    }
}
