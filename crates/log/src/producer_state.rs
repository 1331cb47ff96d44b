//! Idempotent-producer state of one partition (SEMANTICS P15-P21).
//!
//! Per producer id: the current epoch and the metadata of the last
//! [`PRODUCER_BATCHES_RETAINED`] batches (first/last sequence, first/last offset, timestamp).
//! The state is a pure function of the batch headers in the log: an append checks a batch
//! against it and then records the batch, and open replays every batch header through the
//! same [`ProducerStateManager::record`] (one code path for serving and for recovery).
//!
//! Invariants:
//! - An entry always holds at least one batch, newest last, at most
//!   [`PRODUCER_BATCHES_RETAINED`]; their offsets increase.
//! - Batches without a producer id (`producerId < 0`) are neither checked nor recorded.
//! - Checking never changes the state; a multi-batch record set is checked against a
//!   [`Staged`] overlay, which is committed only once the bytes are written.

use std::collections::{HashMap, VecDeque};

use sluice_records::BatchHeader;

use crate::error::LogError;

/// Kafka's `NUM_BATCHES_TO_RETAIN`: how many recent batches a duplicate is looked up in.
pub const PRODUCER_BATCHES_RETAINED: usize = 5;
/// Kafka's `producer.id.expiration.ms` default (P21): state of a producer idle this long (by
/// its batches' timestamps) is dropped.
pub const PRODUCER_ID_EXPIRATION_MS: i64 = 24 * 3600 * 1000;

/// What the log remembers of one appended batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    /// The batch's maxTimestamp (the append time under LogAppendTime).
    pub timestamp: i64,
}

impl BatchMetadata {
    /// `header` must carry its final (assigned) base offset.
    pub fn of(header: &BatchHeader) -> BatchMetadata {
        BatchMetadata {
            first_seq: header.base_sequence,
            last_seq: header.last_sequence(),
            first_offset: header.base_offset,
            last_offset: header.last_offset(),
            timestamp: header.max_timestamp,
        }
    }
}

/// State of one producer id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerEntry {
    pub epoch: i16,
    batches: VecDeque<BatchMetadata>,
}

impl ProducerEntry {
    /// Cached batches, oldest first.
    pub fn batches(&self) -> impl Iterator<Item = &BatchMetadata> {
        self.batches.iter()
    }
    pub fn last_batch(&self) -> &BatchMetadata {
        self.batches.back().expect("a producer entry always holds a batch")
    }
    fn find_duplicate(&self, header: &BatchHeader) -> Option<BatchMetadata> {
        if header.producer_epoch != self.epoch {
            return None;
        }
        let last_seq = header.last_sequence();
        self.batches.iter().find(|b| b.first_seq == header.base_sequence && b.last_seq == last_seq).copied()
    }
}

/// The sequence after `seq`, wrapping at i32::MAX (P17).
pub fn next_sequence(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

/// The result of checking one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Append it (then `record` it).
    Append,
    /// A retry of a batch already in the log (P15): write nothing, answer with its offsets.
    Duplicate(BatchMetadata),
}

/// Entries changed by the batches of one record set, not yet committed.
#[derive(Debug, Default)]
pub struct Staged {
    entries: HashMap<i64, ProducerEntry>,
}

/// All producers of one partition.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProducerStateManager {
    producers: HashMap<i64, ProducerEntry>,
}

impl ProducerStateManager {
    pub fn new() -> ProducerStateManager {
        ProducerStateManager::default()
    }

    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Checks `header` against the state as `staged` has changed it (P15-P19).
    pub fn check(&self, staged: &Staged, header: &BatchHeader) -> Result<Check, LogError> {
        if !header.has_producer_id() {
            return Ok(Check::Append);
        }
        let producer_id = header.producer_id;
        // P19: no state (new producer, or expired / removed by retention): any sequence.
        let Some(entry) = staged.entries.get(&producer_id).or_else(|| self.producers.get(&producer_id)) else {
            return Ok(Check::Append);
        };
        if let Some(duplicate) = entry.find_duplicate(header) {
            return Ok(Check::Duplicate(duplicate));
        }
        let got = header.base_sequence;
        if header.producer_epoch < entry.epoch {
            return Err(LogError::InvalidProducerEpoch {
                producer_id,
                current: entry.epoch,
                got: header.producer_epoch,
            });
        }
        if header.producer_epoch > entry.epoch {
            // P18: a bumped epoch starts its sequence again at 0.
            if got != 0 {
                return Err(LogError::OutOfOrderSequence { producer_id, expected: 0, got });
            }
            return Ok(Check::Append);
        }
        let expected = next_sequence(entry.last_batch().last_seq);
        if got != expected {
            // P16: a gap, or an old sequence that is not one of the cached batches.
            return Err(LogError::OutOfOrderSequence { producer_id, expected, got });
        }
        Ok(Check::Append)
    }

    /// Records an accepted batch (with its assigned offsets) in `staged`.
    pub fn stage(&self, staged: &mut Staged, header: &BatchHeader) {
        if !header.has_producer_id() {
            return;
        }
        let entry = staged.entries.entry(header.producer_id).or_insert_with(|| {
            self.producers.get(&header.producer_id).cloned().unwrap_or(ProducerEntry {
                epoch: header.producer_epoch,
                batches: VecDeque::with_capacity(PRODUCER_BATCHES_RETAINED),
            })
        });
        push_batch(entry, header);
    }

    /// Makes the staged changes current.
    pub fn commit(&mut self, staged: Staged) {
        self.producers.extend(staged.entries);
    }

    /// Records a batch that is in the log (replay on open: no checks, as Kafka replays).
    pub fn record(&mut self, header: &BatchHeader) {
        if !header.has_producer_id() {
            return;
        }
        let entry = self.producers.entry(header.producer_id).or_insert_with(|| ProducerEntry {
            epoch: header.producer_epoch,
            batches: VecDeque::with_capacity(PRODUCER_BATCHES_RETAINED),
        });
        push_batch(entry, header);
    }

    /// Drops producers whose last batch is wholly below `log_start_offset` (retention removed
    /// it), as Kafka's `evictUnretainedProducers` does.
    pub fn evict_before(&mut self, log_start_offset: i64) {
        self.producers.retain(|_, e| e.last_batch().last_offset >= log_start_offset);
    }

    /// Drops producers idle for [`PRODUCER_ID_EXPIRATION_MS`] (P21).
    pub fn expire(&mut self, now_ms: i64) {
        self.producers.retain(|_, e| now_ms.saturating_sub(e.last_batch().timestamp) < PRODUCER_ID_EXPIRATION_MS);
    }
}

fn push_batch(entry: &mut ProducerEntry, header: &BatchHeader) {
    if header.producer_epoch != entry.epoch {
        // A new epoch: batches of the old one can no longer be retried.
        entry.epoch = header.producer_epoch;
        entry.batches.clear();
    }
    if entry.batches.len() == PRODUCER_BATCHES_RETAINED {
        entry.batches.pop_front();
    }
    entry.batches.push_back(BatchMetadata::of(header));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(producer_id: i64, epoch: i16, base_sequence: i32, count: i32, base_offset: i64) -> BatchHeader {
        BatchHeader {
            base_offset,
            batch_length: 49,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id,
            producer_epoch: epoch,
            base_sequence,
            records_count: count,
        }
    }

    fn append(state: &mut ProducerStateManager, h: BatchHeader) -> Result<Check, LogError> {
        let mut staged = Staged::default();
        let check = state.check(&staged, &h)?;
        if check == Check::Append {
            state.stage(&mut staged, &h);
            state.commit(staged);
        }
        Ok(check)
    }

    #[test]
    fn p15_only_last_five_batches_are_remembered() {
        let mut state = ProducerStateManager::new();
        for i in 0..7 {
            assert_eq!(append(&mut state, header(1, 0, i, 1, i as i64)).unwrap(), Check::Append);
        }
        assert_eq!(state.get(1).unwrap().batches().count(), PRODUCER_BATCHES_RETAINED);
        assert!(
            matches!(append(&mut state, header(1, 0, 6, 1, 99)).unwrap(), Check::Duplicate(m) if m.first_offset == 6)
        );
        assert!(matches!(append(&mut state, header(1, 0, 2, 1, 99)).unwrap(), Check::Duplicate(_)));
        // Seq 1 fell out of the cache: no longer a duplicate, so out of order (P16).
        assert!(matches!(append(&mut state, header(1, 0, 1, 1, 99)), Err(LogError::OutOfOrderSequence { .. })));
    }

    #[test]
    fn p17_sequence_wraps_at_i32_max() {
        let mut state = ProducerStateManager::new();
        append(&mut state, header(1, 0, i32::MAX - 1, 2, 0)).unwrap();
        assert_eq!(state.get(1).unwrap().last_batch().last_seq, i32::MAX);
        assert_eq!(append(&mut state, header(1, 0, 0, 1, 2)).unwrap(), Check::Append);
        // A batch that itself wraps: base MAX, two records, last sequence 0.
        let mut state = ProducerStateManager::new();
        append(&mut state, header(2, 0, i32::MAX, 2, 0)).unwrap();
        assert_eq!(state.get(2).unwrap().last_batch().last_seq, 0);
        assert_eq!(append(&mut state, header(2, 0, 1, 1, 2)).unwrap(), Check::Append);
    }

    #[test]
    fn staged_batches_are_checked_in_order() {
        let state = ProducerStateManager::new();
        let mut staged = Staged::default();
        let first = header(1, 0, 0, 3, 0);
        state.check(&staged, &first).unwrap();
        state.stage(&mut staged, &first);
        assert!(matches!(
            state.check(&staged, &header(1, 0, 4, 1, 3)),
            Err(LogError::OutOfOrderSequence { expected: 3, .. })
        ));
        assert_eq!(state.check(&staged, &header(1, 0, 3, 1, 3)).unwrap(), Check::Append);
        // Nothing was committed.
        assert!(state.is_empty());
    }

    #[test]
    fn p21_expiry_and_retention_eviction() {
        let mut state = ProducerStateManager::new();
        let mut h = header(1, 0, 0, 1, 10);
        h.max_timestamp = 1_000;
        state.record(&h);
        state.expire(1_000 + PRODUCER_ID_EXPIRATION_MS - 1);
        assert_eq!(state.len(), 1);
        state.evict_before(10);
        assert_eq!(state.len(), 1);
        state.evict_before(11);
        assert!(state.is_empty());
        state.record(&h);
        state.expire(1_000 + PRODUCER_ID_EXPIRATION_MS);
        assert!(state.is_empty());
    }
}
