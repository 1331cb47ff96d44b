//! The partition log: an append-only sequence of v2 record batches in segment files.
//!
//! Layout on disk (Kafka's own): one directory per partition (`topic-N/`), segments named by
//! their base offset (`00000000000000000000.log`), each `.log` a plain concatenation of batches,
//! with a sparse `.index` (relative offset u32, position u32) and `.timeindex` (timestamp i64,
//! relative offset u32) beside it.
//!
//! Architecture invariants:
//! - The log never decodes individual records: it reads batch headers only (except the
//!   timestamp look-ups, which decode the records of one batch through
//!   `sluice_records::record`, in `record_scan`).
//! - The log reads no clock: every operation that needs time takes `now_ms`.
//! - All file access goes through [`storage::Storage`], so tests can swap in a memory store and
//!   fake a crash that keeps only what was synced.
//! - `log_start_offset <= high_watermark <= log_end_offset` always holds.
//! - After an I/O error the log refuses every further write (`LogError::Failed`): the broker
//!   stops rather than serve half-written state.

pub mod config;
pub mod error;
pub mod index;
pub mod log;
pub mod producer_state;
mod record_scan;
pub mod segment;
pub mod slice;
pub mod storage;

pub use config::{LogConfig, TimestampType};
pub use error::LogError;
pub use log::{AppendOutcome, FlushHandle, PartitionLog, ReadResult, SliceRead};
pub use slice::FileSlice;
pub use storage::{FsStorage, MemStorage, Storage, StorageFile};

#[cfg(test)]
mod tests {
    /// The broker shares logs across threads behind a lock.
    #[test]
    fn log_types_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<crate::PartitionLog>();
        check::<crate::FlushHandle>();
        check::<crate::MemStorage>();
        check::<crate::FsStorage>();
    }
}
