//! `sluice`: the broker (`serve`) and, later, client commands.

mod serve;

use clap::{Parser, Subcommand};
use sluice_protocol::alloc_guard::GuardedAllocator;

/// Keeps a lying length field in a request from aborting the process (see `alloc_guard`).
#[global_allocator]
static ALLOC: GuardedAllocator = GuardedAllocator;

#[derive(Parser)]
#[command(name = "sluice", version, about = "A Kafka-compatible event streaming broker")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a broker.
    Serve(serve::ServeArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(args),
    }
}
