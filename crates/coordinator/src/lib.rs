//! The group coordinator of Sluice, built the way Kafka's modern coordinator is.
//!
//! A deterministic core: each handler takes a request and the current time (`now_ms`) and
//! returns [`Output`]: responses (possibly for requests parked earlier), records to persist and
//! timers to arm or cancel. Durable state changes only by [`records::replay`], the same code path
//! used while serving and when loading after a restart.
//!
//! **Architecture invariants:** no I/O, no clock (time is always a parameter), no randomness
//! (member-id suffixes are given by the caller), no threads. The caller owns sockets, the clock,
//! persistence (a response is sent only after the records of its `Output` are durable) and the
//! timer wheel (arming a key that is armed replaces its deadline).

pub mod consumer_protocol;
pub mod error_code;
pub mod group;
pub mod offsets;
pub mod output;
pub mod partition;
pub mod records;
pub mod state;

pub use group::{Coordinator, CoordinatorConfig};
pub use output::{Completed, Output, RequestId, Response, TimerKey, TimerKind, TimerOp};
pub use records::{replay, DecodeError, GroupMetadataValue, MemberMetadata, OffsetCommitValue, Record};
pub use state::State;
