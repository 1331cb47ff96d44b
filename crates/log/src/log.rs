//! `PartitionLog`: the state machine of one partition's log.
//!
//! It owns the segments (a `BTreeMap` by base offset; the last is the active one), the
//! offsets (`log_start_offset <= high_watermark <= log_end_offset`), the idempotent-producer
//! state and two small files in the partition directory:
//! - `recovery-point`: an offset below which every segment is synced and was verified; open
//!   re-checks CRCs only from the segment holding it (written at roll, close and recovery).
//! - `clean-shutdown`: written by `close`, removed by `open`; with it, open skips CRC checks.
//! - `log-start-offset`: the log start offset when DeleteRecords moved it inside a segment
//!   (Kafka's `log-start-offset-checkpoint`); the log start is the larger of it and the first
//!   segment's base offset. Written before the answer, so a moved start survives a restart.
//!
//! Invariants:
//! - Every batch below the high watermark is whole, and the high watermark sits at a batch
//!   boundary whose byte position is kept (`hw_position`), so a read needs no per-record work.
//! - Segments are contiguous: each one's base offset is the previous one's next offset.
//! - Open, append and recovery derive indexes and producer state by the same functions
//!   ([`Segment`]'s bookkeeping, [`ProducerStateManager::record`]).
//! - Once an I/O error is seen the log is failed and refuses appends, retention and close.
//! - Nothing here reads a clock: time comes in as `now_ms`.
//!
//! Durability (L10): appends are not synced. The broker chooses: page-cache mode advances the
//! high watermark right after the append; durable mode syncs through [`FlushHandle`] first.
//! Rolling a segment syncs the old one, so only the active segment is ever unsynced.

mod open;
mod read;
mod retention;

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use bytes::{Bytes, BytesMut};
use sluice_records::header::{set_base_offset, set_log_append_time, set_partition_leader_epoch, ATTR_TIMESTAMP_TYPE};
use sluice_records::{BatchHeader, BatchIter, RecordsError};

use crate::config::{LogConfig, TimestampType};
use crate::error::LogError;
use crate::producer_state::{Check, ProducerStateManager, Staged};
use crate::segment::{io_error, Segment};
use crate::slice::FileSlice;
use crate::storage::{Storage, StorageFile};

/// Written by `close`, removed by `open`.
pub const CLEAN_SHUTDOWN_FILE: &str = "clean-shutdown";
/// The recovery point, as decimal text.
pub const RECOVERY_POINT_FILE: &str = "recovery-point";
/// The log start offset set by DeleteRecords, as decimal text.
pub const LOG_START_OFFSET_FILE: &str = "log-start-offset";

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Offset of the first record of the record set (or of the original, for a duplicate).
    pub base_offset: i64,
    /// Offset of the last record appended.
    pub last_offset: i64,
    /// Broker time written into the batches when the topic uses LogAppendTime, else -1.
    pub log_append_time_ms: i64,
    pub log_start_offset: i64,
    /// True when the record set was a retried duplicate of an idempotent batch already in the
    /// log (SEMANTICS P15): nothing was written, `base_offset` is the original's.
    pub duplicate: bool,
}

/// Bytes for a fetch: whole batches from the one containing the fetch offset, possibly ending
/// in a partial batch when `max_bytes` cut it (clients skip a truncated trailing batch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResult {
    pub records: Bytes,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

/// What [`PartitionLog::read_slice`] answers: where the bytes are, not the bytes.
#[derive(Debug, Clone)]
pub struct SliceRead {
    pub records: FileSlice,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

/// A handle to sync what has been appended so far, outside any lock on the log.
#[derive(Clone)]
pub struct FlushHandle {
    pub(crate) files: Vec<Arc<dyn StorageFile>>,
    /// The log end offset that is durable once `sync` returns.
    pub upto_offset: i64,
}

impl FlushHandle {
    /// fsyncs (fdatasync) the files holding data below `upto_offset`.
    pub fn sync(&self) -> std::io::Result<()> {
        for f in &self.files {
            f.sync()?;
        }
        Ok(())
    }
}

pub struct PartitionLog {
    dir: PathBuf,
    storage: Arc<dyn Storage>,
    config: LogConfig,
    segments: BTreeMap<i64, Segment>,
    log_start_offset: i64,
    log_end_offset: i64,
    high_watermark: i64,
    /// Where the high watermark is in bytes.
    hw_position: SegmentPosition,
    /// Batch ends above the high watermark, oldest first: where it may advance to.
    pending: VecDeque<Boundary>,
    producers: ProducerStateManager,
    /// Set by the first I/O error; from then on the log refuses writes.
    failed: OnceLock<String>,
    closed: bool,
}

/// A byte position in one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SegmentPosition {
    segment_base: i64,
    position: u64,
}

/// The end of an appended record set.
#[derive(Debug, Clone, Copy)]
struct Boundary {
    next_offset: i64,
    at: SegmentPosition,
}

/// What an append will do.
enum Plan {
    /// Write these batches (positions in the record set, final headers).
    Write { headers: Vec<(usize, BatchHeader)>, staged: Staged, next_offset: i64 },
    /// A retried duplicate: answer with the original's offsets, write nothing.
    Duplicate(AppendOutcome),
}

impl PartitionLog {
    /// Opens (creating if missing) the log in `dir`. Without a clean-shutdown marker, every
    /// segment from the recovery point on is scanned, CRC-checked, truncated at the first bad or
    /// partial batch (later segments removed) and its indexes rebuilt (SEMANTICS L9). Producer
    /// state is rebuilt from the batch headers.
    pub fn open(
        storage: Arc<dyn Storage>,
        dir: PathBuf,
        config: LogConfig,
        now_ms: i64,
    ) -> Result<PartitionLog, LogError> {
        open::open(storage, dir, config, now_ms)
    }

    /// Appends a record set that `sluice_records::batches` has already validated: checks and
    /// updates idempotent producer state (P15-P19), rolls the segment if needed (L7), writes
    /// base offsets (and LogAppendTime) into the batch headers in place (B6), writes the bytes
    /// to the active segment (not synced) and updates the sparse indexes (L6).
    /// `leader_epoch` is written into each batch's partitionLeaderEpoch.
    ///
    /// A record set goes whole into one segment, as in Kafka. When any of its batches is a
    /// retried duplicate (P15) nothing is written and the outcome names that batch's offsets.
    pub fn append(
        &mut self,
        records: &mut BytesMut,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendOutcome, LogError> {
        self.check_writable()?;
        let batches = stored_batches(records)?;
        if records.len() as u64 > self.config.segment_bytes {
            return Err(LogError::RecordListTooLarge { size: records.len(), segment_bytes: self.config.segment_bytes });
        }
        let log_append_time = self.config.timestamp_type == TimestampType::LogAppendTime;
        let (headers, staged, next_offset) = match self.plan(batches, leader_epoch, now_ms)? {
            Plan::Write { headers, staged, next_offset } => (headers, staged, next_offset),
            Plan::Duplicate(outcome) => return Ok(outcome),
        };
        let base_offset = self.log_end_offset;
        let last_offset = next_offset - 1;

        // B6: offsets and leader epoch outside the CRC; LogAppendTime rewrites the CRC (B7).
        for (position, header) in &headers {
            let batch = &mut records[*position..*position + header.total_bytes()];
            set_base_offset(batch, header.base_offset);
            set_partition_leader_epoch(batch, leader_epoch);
            if log_append_time {
                set_log_append_time(batch, now_ms);
            }
        }

        if self.active().should_roll(records.len(), last_offset, now_ms, &self.config) {
            self.roll()?;
        }
        let config = &self.config;
        let active = self.segments.values_mut().next_back().expect("a log always has a segment");
        let written = active.append(records, &headers, now_ms, config);
        let at = SegmentPosition { segment_base: active.base_offset(), position: active.size() };
        self.fail_on_err(written)?;

        self.producers.commit(staged);
        self.log_end_offset = next_offset;
        self.pending.push_back(Boundary { next_offset, at });
        Ok(AppendOutcome {
            base_offset,
            last_offset,
            log_append_time_ms: if log_append_time { now_ms } else { -1 },
            log_start_offset: self.log_start_offset,
            duplicate: false,
        })
    }

    /// Reads from `fetch_offset`: at most `max_bytes`, except that when `min_one_batch` is set
    /// the first batch is returned whole even if larger (KIP-74, F4). Returns only data below
    /// the high watermark. `fetch_offset` below the log start or past the log end is
    /// `OffsetOutOfRange` (L11, F5); at the high watermark or end it is empty.
    pub fn read(&self, fetch_offset: i64, max_bytes: usize, min_one_batch: bool) -> Result<ReadResult, LogError> {
        let slice = self.locate_records(fetch_offset, max_bytes, min_one_batch)?;
        let records = self.read_slice_now(&slice)?;
        Ok(ReadResult {
            records,
            high_watermark: self.high_watermark,
            log_start_offset: self.log_start_offset,
            log_end_offset: self.log_end_offset,
        })
    }

    /// Like [`PartitionLog::read`], but answers where the bytes lie instead of reading them, so
    /// the caller can send them after releasing its lock (and without copying them through
    /// user space). Same limits and errors as `read`; no file I/O beyond batch headers.
    pub fn read_slice(&self, fetch_offset: i64, max_bytes: usize, min_one_batch: bool) -> Result<SliceRead, LogError> {
        let records = self.locate_records(fetch_offset, max_bytes, min_one_batch)?;
        Ok(SliceRead {
            records,
            high_watermark: self.high_watermark,
            log_start_offset: self.log_start_offset,
            log_end_offset: self.log_end_offset,
        })
    }

    /// Bytes readable from `fetch_offset` up to the high watermark (for fetch min_bytes).
    /// Counts from the start of the batch holding `fetch_offset`; 0 when out of range. If the
    /// log cannot be read it answers `u64::MAX`, so the fetch completes at once and its read
    /// reports the error.
    pub fn bytes_available(&self, fetch_offset: i64) -> u64 {
        self.readable_bytes(fetch_offset).unwrap_or(u64::MAX)
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }
    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset
    }
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    /// Raises the high watermark (never past the log end, never down). The broker calls this
    /// after the fsync that made `offset` durable, or at once in page-cache mode (L2).
    ///
    /// The high watermark only lands on the end of an appended record set: an `offset` inside
    /// one raises it to the last record-set end at or below `offset`.
    pub fn advance_high_watermark(&mut self, offset: i64) {
        let target = offset.min(self.log_end_offset);
        let mut reached = None;
        while let Some(boundary) = self.pending.front() {
            if boundary.next_offset > target {
                break;
            }
            reached = self.pending.pop_front();
        }
        if let Some(boundary) = reached {
            assert!(boundary.next_offset > self.high_watermark, "pending boundaries lie above the high watermark");
            self.high_watermark = boundary.next_offset;
            self.hw_position = boundary.at;
        }
    }

    /// What to sync to make everything appended so far durable, to run outside the lock.
    /// Only the active segment can hold unsynced data: a roll syncs the segment it closes.
    pub fn flush_handle(&self) -> FlushHandle {
        FlushHandle { files: vec![self.active().log_file().clone()], upto_offset: self.log_end_offset }
    }

    /// ListOffsets by timestamp (L4): the first offset whose record timestamp >= `timestamp`,
    /// with that timestamp, among offsets below the high watermark; None when there is none.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>, LogError> {
        self.find_offset_for_timestamp(timestamp)
    }

    /// ListOffsets -3 (KIP-734): offset and timestamp of the record with the largest timestamp
    /// below the high watermark; None for an empty log.
    pub fn max_timestamp(&self) -> Result<Option<(i64, i64)>, LogError> {
        self.find_max_timestamp()
    }

    /// Retention (L8): deletes whole oldest segments past `retention.ms` or over
    /// `retention.bytes`, never one reaching past the high watermark, and advances the log
    /// start offset. Also rolls an aged active segment (`segment.ms`). Returns segments deleted.
    pub fn enforce_retention(&mut self, now_ms: i64) -> Result<usize, LogError> {
        self.check_writable()?;
        let result = self.retain(now_ms);
        self.fail_on_err(result)
    }

    /// DeleteRecords (Kafka's `maybeIncrementLogStartOffset`): moves the log start offset up to
    /// `offset` (never down), persists it, then deletes every segment lying wholly below it.
    /// Offsets below the new start are no longer readable (fetch: `OffsetOutOfRange`).
    /// `offset` past the high watermark is `OffsetOutOfRange`. Returns the log start offset.
    pub fn delete_records_before(&mut self, offset: i64) -> Result<i64, LogError> {
        self.check_writable()?;
        if offset < 0 || offset > self.high_watermark {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: self.high_watermark,
            });
        }
        if offset <= self.log_start_offset {
            return Ok(self.log_start_offset);
        }
        let result = self.advance_log_start(offset);
        self.fail_on_err(result)?;
        Ok(self.log_start_offset)
    }

    fn advance_log_start(&mut self, offset: i64) -> Result<(), LogError> {
        // The start first, durably; then the segments below it. A crash in between leaves
        // segments that the next open hides behind the persisted start.
        let path = self.dir.join(LOG_START_OFFSET_FILE);
        self.storage.write_atomic(&path, format!("{offset}\n").as_bytes()).map_err(|e| io_error(&path, e))?;
        self.log_start_offset = offset;
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        let below = bases.windows(2).take_while(|w| w[1] <= offset).count();
        self.delete_oldest(below, "DeleteRecords")?;
        self.producers.evict_before(self.log_start_offset);
        tracing::info!(dir = %self.dir.display(), log_start_offset = offset, "log start offset moved by DeleteRecords");
        Ok(())
    }

    /// Replaces the settings (topic config change); takes effect at the next append/retention.
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Clean shutdown: syncs everything, writes the indexes and the clean-shutdown marker.
    /// (Index files are appended as the log grows; the marker lets the next open skip CRC
    /// checks.) Afterwards the log refuses appends; closing twice is fine.
    pub fn close(&mut self) -> Result<(), LogError> {
        if self.closed {
            return Ok(());
        }
        self.check_writable()?;
        let result = self.active().sync().and_then(|()| {
            self.write_recovery_point(self.log_end_offset)?;
            let marker = self.dir.join(CLEAN_SHUTDOWN_FILE);
            self.storage.write_atomic(&marker, b"").map_err(|e| io_error(&marker, e))
        });
        self.fail_on_err(result)?;
        self.closed = true;
        Ok(())
    }

    /// Removes the partition directory and everything in it (topic deletion).
    pub fn delete(self) -> Result<(), LogError> {
        self.storage.remove_dir_all(&self.dir).map_err(|e| io_error(&self.dir, e))
    }

    /// Total bytes in all segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(Segment::size).sum()
    }

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.segments.keys().copied().collect()
    }

    /// The idempotent-producer state (for inspection and tests).
    pub fn producer_state(&self) -> &ProducerStateManager {
        &self.producers
    }

    /// Why the log refuses writes, if it does (after an I/O error).
    pub fn failure(&self) -> Option<&str> {
        self.failed.get().map(String::as_str)
    }

    /// The headers as they will be stored (offsets from the log end, leader epoch,
    /// LogAppendTime), each checked against producer state (P15-P19) in order.
    fn plan(&self, batches: Vec<(usize, BatchHeader)>, leader_epoch: i32, now_ms: i64) -> Result<Plan, LogError> {
        let log_append_time = self.config.timestamp_type == TimestampType::LogAppendTime;
        let mut staged = Staged::default();
        let mut next_offset = self.log_end_offset;
        let mut headers = Vec::with_capacity(batches.len());
        for (position, mut header) in batches {
            header.base_offset = next_offset;
            header.partition_leader_epoch = leader_epoch;
            if log_append_time {
                header.max_timestamp = now_ms;
                header.attributes |= ATTR_TIMESTAMP_TYPE;
            }
            match self.producers.check(&staged, &header)? {
                Check::Duplicate(original) => {
                    return Ok(Plan::Duplicate(AppendOutcome {
                        base_offset: original.first_offset,
                        last_offset: original.last_offset,
                        log_append_time_ms: if log_append_time { original.timestamp } else { -1 },
                        log_start_offset: self.log_start_offset,
                        duplicate: true,
                    }));
                }
                Check::Append => self.producers.stage(&mut staged, &header),
            }
            next_offset = header.next_offset();
            headers.push((position, header));
        }
        Ok(Plan::Write { headers, staged, next_offset })
    }

    fn active(&self) -> &Segment {
        self.segments.values().next_back().expect("a log always has a segment")
    }

    /// Starts a new active segment at the log end, after syncing the current one and moving
    /// the recovery point to it. A no-op when the active segment is empty.
    fn roll(&mut self) -> Result<(), LogError> {
        if self.active().is_empty() {
            return Ok(());
        }
        let result = self.roll_inner();
        self.fail_on_err(result)
    }

    fn roll_inner(&mut self) -> Result<(), LogError> {
        self.active().sync()?;
        let segment = Segment::create(&*self.storage, &self.dir, self.log_end_offset)?;
        self.segments.insert(self.log_end_offset, segment);
        self.write_recovery_point(self.log_end_offset)
    }

    fn write_recovery_point(&self, offset: i64) -> Result<(), LogError> {
        let path = self.dir.join(RECOVERY_POINT_FILE);
        self.storage.write_atomic(&path, format!("{offset}\n").as_bytes()).map_err(|e| io_error(&path, e))
    }

    fn check_writable(&self) -> Result<(), LogError> {
        if let Some(reason) = self.failed.get() {
            return Err(LogError::Failed(reason.clone()));
        }
        if self.closed {
            return Err(LogError::Failed("log is closed".to_string()));
        }
        Ok(())
    }

    /// Marks the log failed when `result` is a fatal (I/O) error.
    fn fail_on_err<T>(&self, result: Result<T, LogError>) -> Result<T, LogError> {
        if let Err(e) = &result {
            if e.is_fatal() {
                let first = self.failed.set(e.to_string()).is_ok();
                if first {
                    tracing::error!(dir = %self.dir.display(), error = %e, "partition log failed");
                }
            }
        }
        result
    }
}

/// Positions and headers of the batches of a record set (already validated by the records
/// crate; only the framing is re-walked here).
fn stored_batches(records: &[u8]) -> Result<Vec<(usize, BatchHeader)>, LogError> {
    let mut iter = BatchIter::new(records);
    let batches: Vec<(usize, BatchHeader)> = iter.by_ref().map(|b| (b.position, b.header)).collect();
    if let Some(e) = iter.error() {
        return Err(e.clone().into());
    }
    if batches.is_empty() {
        return Err(RecordsError::Empty.into());
    }
    if let Some((_, h)) = batches.iter().find(|(_, h)| h.last_offset_delta < 0) {
        return Err(
            RecordsError::CountMismatch { count: h.records_count, last_offset_delta: h.last_offset_delta }.into()
        );
    }
    Ok(batches)
}
