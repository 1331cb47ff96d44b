//! Sluice's Kafka client library, async on tokio, built on `kafka-protocol`'s client side.
//!
//! - [`connection`]: one broker connection: ApiVersions negotiation, correlation ids,
//!   pipelined requests with responses matched in order.
//! - [`cluster`]: bootstrap, Metadata, the leader of each partition, one connection per broker.
//! - [`partitioner`]: Kafka's murmur2 partitioner, uniform sticky (KIP-794), round-robin, and
//!   the [`partitioner::Partitioner`] trait.
//! - [`producer`]: batching, compression, acks, idempotence, retries, delivery futures; and a
//!   blocking facade.
//! - [`admin`]: create, delete, list, describe topics, add partitions, list offsets; list and
//!   describe groups and read their committed offsets.
//! - [`consumer`]: `assign` or `subscribe` in a group (classic protocol, eager or cooperative
//!   rebalances with a rebalance listener, static membership), background heartbeats and
//!   `max_poll_interval_ms`, fetch-ahead, `poll(timeout)`, pause/resume, sync and async
//!   commits, auto-commit, close.
//! - [`error`]: the one error type, whose messages say what to do.
//!
//! And the two pieces of the classic consumer-group protocol that live entirely on the client
//! side and must agree byte for byte with Kafka's Java client and librdkafka, so that one group
//! can mix Sluice, Java and librdkafka members:
//!
//! - [`consumer_protocol`]: the `ConsumerProtocolSubscription` a member sends in JoinGroup and
//!   the `ConsumerProtocolAssignment` the leader hands out in SyncGroup (versions 0-3,
//!   non-flexible, big-endian, `i16` version prefix).
//! - [`assignor`]: the four built-in assignors under their wire names `range`, `roundrobin`,
//!   `sticky` and `cooperative-sticky`, with the user-data encodings Java and librdkafka use.
//!
//! **Invariants of the group-protocol pieces:**
//! - No I/O, no clock, no randomness, no global state. An assignor is a pure function of its
//!   inputs; every iteration is over ordered collections, so the same input always gives the
//!   same output (where Java's `HashMap` order makes its own result implementation-defined, ours
//!   is still deterministic, but only the properties are promised).
//! - Decoding never panics on any input and never allocates more than the input could hold: an
//!   array count is checked against the bytes that remain before anything is reserved. Bad bytes
//!   are a typed error.
//! - Member ids, group instance ids and topic names are ordered as Java's `String.compareTo`
//!   orders them (UTF-16 code units), not as Rust orders `str` (UTF-8 bytes); the two differ
//!   only above U+FFFF.

pub mod admin;
pub mod assignor;
pub mod cluster;
pub mod connection;
pub mod consumer;
pub mod consumer_protocol;
pub mod error;
pub mod partitioner;
pub mod producer;

/// The one-worker tokio runtime a blocking facade (`BlockingProducer`, `BlockingConsumer`) owns:
/// the async client and its background tasks run on it, and the facade blocks on it.
pub(crate) fn blocking_runtime(what: &str) -> error::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(format!("sluice-{what}"))
        .enable_all()
        .build()
        .map_err(|e| error::Error::Config(format!("cannot start the {what}'s runtime: {e}")))
}

pub use admin::{Admin, NewTopic, OffsetSpec};
pub use bytes::Bytes;
pub use cluster::{ClientConfig, Cluster};
pub use consumer::{
    AutoOffsetReset, BlockingConsumer, CommitFuture, Consumer, ConsumerConfig, ConsumerRecord, RebalanceContext,
    RebalanceListener,
};
pub use error::Error;
pub use producer::{Acks, BlockingProducer, DeliveryFuture, Producer, ProducerConfig, ProducerRecord, RecordMetadata};
pub use sluice_records::Compression;

use std::fmt;

/// A partition of a topic. Ordered by topic (UTF-8 byte order, which equals Java's order for
/// every legal topic name: `[a-zA-Z0-9._-]`), then partition.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition { topic: topic.into(), partition }
    }
}

/// `topic-partition`, as Kafka's `TopicPartition.toString` prints it.
impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}
