//! The Sluice broker: the network server, one module per Kafka API, topic metadata, and the
//! delayed (long-poll) fetch.
//!
//! Architecture invariants:
//! - The network layer (`server`) owns the sockets and the clock; `api` handlers take a decoded
//!   request and return a response; the partition log decides offsets and reads.
//! - Requests pipelined on one connection are answered in the order they arrived.
//! - No lock is held across an `.await` or an fsync.
//! - A storage error the broker cannot answer stops it (see `Broker::fatal_receiver`).

pub mod api;
pub mod broker;
pub mod config;
pub mod error;
pub mod error_code;
pub mod groups;
pub mod metadata;
pub mod partition;
pub mod response;
mod send;
pub mod server;
pub mod topic_config;

pub use broker::Broker;
pub use config::{BrokerConfig, Durability};
pub use error::BrokerError;
pub use server::{bind, serve};
