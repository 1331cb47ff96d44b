//! One partition as the broker serves it: its log behind a lock, the durability (group commit)
//! of appends, and the wake-up of fetches parked on it.
//!
//! Invariants:
//! - The log lock is held only for in-memory work and page-cache writes and reads, never across
//!   an fsync or an `.await`.
//! - In fsync mode the high watermark moves only over fsynced bytes, so no consumer ever sees a
//!   record that a crash could take back; in page-cache mode it moves right after the append.
//! - One fsync runs at a time per partition; appends that land while it runs share the next
//!   one (group commit).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use sluice_log::{AppendOutcome, LogError, PartitionLog, ReadResult, SliceRead};
use tokio::sync::{watch, Notify};

use crate::config::Durability;

/// What the flusher has made durable, or why it cannot.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Synced {
    UpTo(i64),
    Failed(String),
}

pub struct Partition {
    pub topic: String,
    pub index: i32,
    pub leader_epoch: i32,
    durability: Durability,
    log: Mutex<PartitionLog>,
    /// Woken whenever the high watermark moves.
    hw_moved: Notify,
    flush_running: Mutex<bool>,
    synced: watch::Sender<Synced>,
    /// Told the reason when this partition hits an I/O error it cannot answer.
    fatal: Arc<dyn Fn(String) + Send + Sync>,
}

impl Partition {
    pub fn new(
        topic: String,
        index: i32,
        leader_epoch: i32,
        durability: Durability,
        log: PartitionLog,
        fatal: Arc<dyn Fn(String) + Send + Sync>,
    ) -> Partition {
        let hw = log.high_watermark();
        Partition {
            topic,
            index,
            leader_epoch,
            durability,
            log: Mutex::new(log),
            hw_moved: Notify::new(),
            flush_running: Mutex::new(false),
            synced: watch::channel(Synced::UpTo(hw)).0,
            fatal,
        }
    }

    /// Appends a validated record set. Returns once the bytes are in the page cache; call
    /// [`Partition::wait_durable`] with `last_offset + 1` before acknowledging in fsync mode.
    pub fn append(&self, records: &Bytes, now_ms: i64) -> Result<AppendOutcome, LogError> {
        let mut bytes = BytesMut::from(&records[..]);
        let outcome = {
            let mut log = self.log.lock();
            let result = log.append(&mut bytes, self.leader_epoch, now_ms);
            if let (Ok(_), Durability::PageCache) = (&result, self.durability) {
                let leo = log.log_end_offset();
                log.advance_high_watermark(leo);
            }
            result
        };
        match &outcome {
            Ok(_) if self.durability == Durability::PageCache => self.hw_moved.notify_waiters(),
            Err(e) if e.is_fatal() => (self.fatal)(format!("{}-{}: {e}", self.topic, self.index)),
            _ => {}
        }
        outcome
    }

    /// Waits until every offset below `offset` is durable (fsync mode) and visible. Returns
    /// at once in page-cache mode. Group commit: whoever finds no fsync running starts one
    /// covering everything appended so far; the others wait for it and re-check.
    pub async fn wait_durable(&self, offset: i64) -> Result<(), LogError> {
        if self.durability == Durability::PageCache {
            return Ok(());
        }
        let mut rx = self.synced.subscribe();
        loop {
            match &*rx.borrow_and_update() {
                Synced::UpTo(o) if *o >= offset => return Ok(()),
                Synced::Failed(reason) => return Err(LogError::Failed(reason.clone())),
                Synced::UpTo(_) => {}
            }
            let lead = {
                let mut running = self.flush_running.lock();
                !std::mem::replace(&mut *running, true)
            };
            if lead {
                self.flush_once().await;
            } else if rx.changed().await.is_err() {
                return Err(LogError::Failed("partition closed".into()));
            }
        }
    }

    async fn flush_once(&self) {
        let handle = self.log.lock().flush_handle();
        let upto = handle.upto_offset;
        let result = tokio::task::spawn_blocking(move || handle.sync()).await;
        let next = match result {
            Ok(Ok(())) => {
                let mut log = self.log.lock();
                if upto > log.high_watermark() {
                    log.advance_high_watermark(upto);
                }
                Synced::UpTo(upto)
            }
            Ok(Err(e)) => Synced::Failed(format!("fsync failed on {}-{}: {e}", self.topic, self.index)),
            Err(e) => Synced::Failed(format!("fsync task failed on {}-{}: {e}", self.topic, self.index)),
        };
        *self.flush_running.lock() = false;
        if let Synced::Failed(reason) = &next {
            (self.fatal)(reason.clone());
        }
        self.synced.send_replace(next);
        self.hw_moved.notify_waiters();
    }

    pub fn read(&self, fetch_offset: i64, max_bytes: usize, min_one_batch: bool) -> Result<ReadResult, LogError> {
        self.log.lock().read(fetch_offset, max_bytes, min_one_batch)
    }

    /// Where a read's bytes lie; the lock is held only to locate them (see `PartitionLog::read_slice`).
    pub fn read_slice(&self, fetch_offset: i64, max_bytes: usize, min_one_batch: bool) -> Result<SliceRead, LogError> {
        self.log.lock().read_slice(fetch_offset, max_bytes, min_one_batch)
    }

    /// A future that completes at the next high-watermark move. Create it (and `enable` it)
    /// before checking for data, so a move in between is not missed.
    pub fn hw_moved(&self) -> tokio::sync::futures::Notified<'_> {
        self.hw_moved.notified()
    }

    /// DeleteRecords: moves the log start offset up to `offset` (at most the high watermark)
    /// and deletes the segments below it; returns the new log start (the low watermark). An
    /// I/O error stops the broker, as for appends.
    pub fn delete_records_before(&self, offset: i64) -> Result<i64, LogError> {
        let result = self.log.lock().delete_records_before(offset);
        if let Err(e) = &result {
            if e.is_fatal() {
                (self.fatal)(format!("{}-{}: {e}", self.topic, self.index));
            }
        }
        result
    }

    pub fn with_log<R>(&self, f: impl FnOnce(&mut PartitionLog) -> R) -> R {
        f(&mut self.log.lock())
    }

    /// Wakes parked fetches (used when the partition goes away).
    pub fn wake_all(&self) {
        self.hw_moved.notify_waiters();
    }
}
