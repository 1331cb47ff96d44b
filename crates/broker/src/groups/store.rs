//! The coordinator's internal log, `__consumer_offsets-0` in the data directory: every record
//! the coordinator returns is appended here, fsynced before any answer that depends on it,
//! and replayed on start.
//!
//! **Invariants:**
//! - One `Output`'s records go into one batch, so a crash keeps all of them or none.
//! - The log is always fsynced before an answer, whatever the broker's durability mode.
//! - Replaying the log from its start gives the coordinator's durable state. Compaction keeps
//!   this true: it appends the latest record of every live key (the compacted view) as a
//!   snapshot in a fresh segment, and only once that is durable deletes the segments before it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use sluice_coordinator::Record;
use sluice_log::{LogConfig, LogError, PartitionLog, Storage};
use sluice_records::{encode_batch, records, BatchIter, BatchOptions, NewRecord};

use crate::config::Durability;
use crate::partition::Partition;

/// The directory name, as Kafka names partition 0 of its offsets topic.
pub const OFFSETS_LOG_DIR: &str = "__consumer_offsets-0";
/// The topic name that is reserved for the coordinator's log.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Largest decompressed batch read back (the coordinator writes uncompressed batches).
const BATCH_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Identity of a record for compaction: a later record with the same key replaces it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum RecordKey {
    Group(String),
    Offset(String, String, i32),
}

fn key_of(record: &Record) -> RecordKey {
    match record {
        Record::GroupMetadata { group_id, .. } => RecordKey::Group(group_id.clone()),
        Record::OffsetCommit { group_id, topic, partition, .. } => {
            RecordKey::Offset(group_id.clone(), topic.clone(), *partition)
        }
    }
}

fn is_tombstone(record: &Record) -> bool {
    matches!(record, Record::GroupMetadata { value: None, .. } | Record::OffsetCommit { value: None, .. })
}

pub struct OffsetsLog {
    pub partition: Arc<Partition>,
    /// The latest record of every live key.
    live: BTreeMap<RecordKey, Record>,
    /// Log size right after the last compaction (or load).
    compacted_bytes: u64,
}

impl OffsetsLog {
    /// Opens (recovering) the log and reads every record back, in order.
    pub fn open(
        storage: Arc<dyn Storage>,
        dir: PathBuf,
        segment_bytes: u64,
        now_ms: i64,
        fatal: Arc<dyn Fn(String) + Send + Sync>,
    ) -> Result<(OffsetsLog, Vec<Record>), LogError> {
        let config = LogConfig { segment_bytes, retention_ms: -1, retention_bytes: -1, ..LogConfig::default() };
        let log = PartitionLog::open(storage, dir.clone(), config, now_ms)?;
        let mut replayed = Vec::new();
        let mut offset = log.log_start_offset();
        while offset < log.high_watermark() {
            let read = log.read(offset, 8 * 1024 * 1024, true)?;
            if read.records.is_empty() {
                break;
            }
            let mut batches = BatchIter::new(&read.records);
            for batch in batches.by_ref() {
                offset = batch.header.last_offset() + 1;
                let bytes = &read.records[batch.range()];
                let decoded = records(bytes, BATCH_BYTES_MAX).map_err(|e| LogError::Failed(format!("{e}")))?;
                for r in decoded {
                    match r.value.as_deref().map(Record::decode) {
                        Some(Ok(record)) => replayed.push(record),
                        Some(Err(e)) => {
                            tracing::error!(offset = r.offset, error = %e, "skipping an unreadable coordinator record")
                        }
                        None => tracing::error!(offset = r.offset, "skipping a coordinator record without a value"),
                    }
                }
            }
            if let Some(e) = batches.error() {
                return Err(LogError::Failed(format!("{}: {e}", dir.display())));
            }
        }
        let mut live = BTreeMap::new();
        for record in &replayed {
            apply_to_view(&mut live, record);
        }
        let compacted_bytes = log.size_bytes();
        let partition = Arc::new(Partition::new(OFFSETS_TOPIC.to_string(), 0, 0, Durability::Fsync, log, fatal));
        Ok((OffsetsLog { partition, live, compacted_bytes }, replayed))
    }

    /// Appends one `Output`'s records as one batch (page cache; see [`Partition::wait_durable`]).
    pub fn append(&mut self, batch: &[Record], now_ms: i64) -> Result<(), LogError> {
        if batch.is_empty() {
            return Ok(());
        }
        let encoded: Vec<NewRecord> = batch
            .iter()
            .map(|r| NewRecord { timestamp: now_ms, key: None, value: Some(r.encode()), headers: Vec::new() })
            .collect();
        let bytes: Bytes = encode_batch(&encoded, BatchOptions::default()).freeze();
        self.partition.append(&bytes, now_ms)?;
        for record in batch {
            apply_to_view(&mut self.live, record);
        }
        Ok(())
    }

    /// The offset below which everything appended so far lies.
    pub fn end_offset(&self) -> i64 {
        self.partition.with_log(|log| log.log_end_offset())
    }

    /// Compaction is due when the log has grown to `factor` times its size after the last one
    /// (and past `min_bytes`).
    pub fn compaction_due(&self, min_bytes: u64, factor: u64) -> bool {
        let size = self.partition.with_log(|log| log.size_bytes());
        size >= min_bytes && size >= self.compacted_bytes.saturating_mul(factor)
    }

    /// Starts a compaction: rolls to a fresh segment and appends the snapshot of every live
    /// record there. Returns the snapshot's base offset; once the log is durable past it, call
    /// [`OffsetsLog::finish_compaction`].
    pub fn start_compaction(&mut self, now_ms: i64) -> Result<i64, LogError> {
        self.partition.with_log(|log| log.roll_segment())?;
        let base = self.end_offset();
        let snapshot: Vec<Record> = self.live.values().cloned().collect();
        for chunk in snapshot.chunks(1000) {
            self.append(chunk, now_ms)?;
        }
        Ok(base)
    }

    pub fn finish_compaction(&mut self, snapshot_base: i64) -> Result<usize, LogError> {
        let deleted = self.partition.with_log(|log| log.delete_segments_below(snapshot_base))?;
        self.compacted_bytes = self.partition.with_log(|log| log.size_bytes());
        Ok(deleted)
    }

    /// Live keys in the compacted view (for tests and logging).
    pub fn live_records(&self) -> usize {
        self.live.len()
    }
}

fn apply_to_view(live: &mut BTreeMap<RecordKey, Record>, record: &Record) {
    let key = key_of(record);
    if is_tombstone(record) {
        live.remove(&key);
    } else {
        live.insert(key, record.clone());
    }
}
