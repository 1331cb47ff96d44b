//! Idempotent producer checks at append (P15-P19) and producer state across reopen (P21).

mod common;

use common::*;
use sluice_log::{LogConfig, LogError, MemStorage, PartitionLog, TimestampType};

fn try_append(log: &mut PartitionLog, mut records: bytes::BytesMut) -> Result<sluice_log::AppendOutcome, LogError> {
    let outcome = log.append(&mut records, 0, T0)?;
    log.advance_high_watermark(log.log_end_offset());
    Ok(outcome)
}

/// Producer 1 epoch 0 with batches seq [0..4] at offsets 0..4 and [5..9] at 5..9, then an
/// unrelated batch at 10.
fn two_batches(storage: &MemStorage) -> PartitionLog {
    let mut log = open_mem(storage, LogConfig::default());
    assert_eq!(append(&mut log, idem(1, 0, 0, 5)).base_offset, 0);
    assert_eq!(append(&mut log, idem(1, 0, 5, 5)).base_offset, 5);
    assert_eq!(append(&mut log, batch(1, T0)).base_offset, 10);
    log
}

#[test]
fn p15_a_retried_batch_returns_the_original_offsets_and_writes_nothing() {
    let storage = MemStorage::new();
    let mut log = two_batches(&storage);
    let size = log.size_bytes();
    let retry = try_append(&mut log, idem(1, 0, 5, 5)).unwrap();
    assert!(retry.duplicate);
    assert_eq!((retry.base_offset, retry.last_offset), (5, 9));
    assert_eq!(retry.log_append_time_ms, -1);
    assert_eq!((log.log_end_offset(), log.size_bytes()), (11, size));
    let first = try_append(&mut log, idem(1, 0, 0, 5)).unwrap();
    assert_eq!((first.base_offset, first.last_offset, first.duplicate), (0, 4, true));
    // The producer continues where it was.
    assert_eq!(try_append(&mut log, idem(1, 0, 10, 1)).unwrap().base_offset, 11);
}

#[test]
fn p16_a_gap_or_an_unknown_old_sequence_is_out_of_order() {
    let storage = MemStorage::new();
    let mut log = two_batches(&storage);
    for (sequence, count) in [(11, 1), (7, 1), (5, 4), (0, 1)] {
        match try_append(&mut log, idem(1, 0, sequence, count)) {
            Err(LogError::OutOfOrderSequence { producer_id: 1, expected: 10, got }) => assert_eq!(got, sequence),
            other => panic!("seq {sequence}: {other:?}"),
        }
    }
    assert_eq!(log.log_end_offset(), 11, "nothing appended");
}

#[test]
fn p17_sequence_wraps_after_i32_max() {
    let storage = MemStorage::new();
    let mut log = open_mem(&storage, LogConfig::default());
    append(&mut log, idem(1, 0, i32::MAX - 1, 2));
    assert_eq!(try_append(&mut log, idem(1, 0, 0, 1)).unwrap().base_offset, 2);
    assert!(matches!(try_append(&mut log, idem(1, 0, 2, 1)), Err(LogError::OutOfOrderSequence { expected: 1, .. })));
}

#[test]
fn p18_older_epoch_is_fenced_and_a_newer_one_starts_at_zero() {
    let storage = MemStorage::new();
    let mut log = open_mem(&storage, LogConfig::default());
    append(&mut log, idem(1, 3, 0, 2));
    assert!(matches!(
        try_append(&mut log, idem(1, 2, 2, 1)),
        Err(LogError::InvalidProducerEpoch { producer_id: 1, current: 3, got: 2 })
    ));
    assert!(matches!(
        try_append(&mut log, idem(1, 4, 2, 1)),
        Err(LogError::OutOfOrderSequence { expected: 0, got: 2, .. })
    ));
    assert_eq!(try_append(&mut log, idem(1, 4, 0, 1)).unwrap().base_offset, 2);
    // The old epoch's batches are no longer duplicates: a retry of them is fenced.
    assert!(matches!(try_append(&mut log, idem(1, 3, 0, 2)), Err(LogError::InvalidProducerEpoch { current: 4, .. })));
}

#[test]
fn p19_an_unknown_producer_may_start_at_any_sequence() {
    let storage = MemStorage::new();
    let mut log = open_mem(&storage, LogConfig::default());
    assert_eq!(try_append(&mut log, idem(7, 0, 42, 3)).unwrap().base_offset, 0);
    assert_eq!(try_append(&mut log, idem(8, 5, 0, 1)).unwrap().base_offset, 3);
    assert_eq!(try_append(&mut log, idem(7, 0, 45, 1)).unwrap().base_offset, 4);
}

#[test]
fn batches_of_one_record_set_are_checked_in_order() {
    let storage = MemStorage::new();
    let mut log = open_mem(&storage, LogConfig::default());
    let mut set = idem(1, 0, 0, 2);
    set.extend_from_slice(&idem(1, 0, 2, 3));
    let outcome = try_append(&mut log, set).unwrap();
    assert_eq!((outcome.base_offset, outcome.last_offset), (0, 4));
    let mut bad = idem(1, 0, 5, 1);
    bad.extend_from_slice(&idem(1, 0, 9, 1)); // gap inside the set: nothing of it is written
    assert!(matches!(try_append(&mut log, bad), Err(LogError::OutOfOrderSequence { expected: 6, got: 9, .. })));
    assert_eq!(log.log_end_offset(), 5);
    assert_eq!(try_append(&mut log, idem(1, 0, 5, 1)).unwrap().base_offset, 5);
}

#[test]
fn p21_producer_state_survives_reopen_and_crash() {
    let storage = MemStorage::new();
    let mut log = two_batches(&storage);
    log.close().unwrap();
    drop(log);
    for storage in [storage.clone(), storage.crash()] {
        let mut log = open_mem(&storage, LogConfig::default());
        let retry = try_append(&mut log, idem(1, 0, 5, 5)).unwrap();
        assert_eq!((retry.base_offset, retry.duplicate), (5, true));
        assert!(matches!(
            try_append(&mut log, idem(1, 0, 11, 1)),
            Err(LogError::OutOfOrderSequence { expected: 10, .. })
        ));
        assert!(matches!(try_append(&mut log, idem(1, -1, 10, 1)), Err(LogError::InvalidProducerEpoch { .. })));
    }
}

#[test]
fn p21_producer_state_expires_after_a_day_idle() {
    let storage = MemStorage::new();
    let mut log = two_batches(&storage);
    log.enforce_retention(T0 + 24 * 3600 * 1000).unwrap();
    assert!(log.producer_state().is_empty());
    // P19: no state, so any sequence goes.
    assert!(!try_append(&mut log, idem(1, 0, 77, 1)).unwrap().duplicate);
}

#[test]
fn p19_producer_state_removed_by_retention() {
    let storage = MemStorage::new();
    let config = LogConfig { segment_bytes: 400, retention_bytes: 0, retention_ms: -1, ..LogConfig::default() };
    let mut log = open_mem(&storage, config);
    append(&mut log, idem(1, 0, 0, 5)); // 146 bytes
    append(&mut log, idem(2, 0, 0, 5));
    append(&mut log, batch(5, T0)); // rolls: segment 0 holds producers 1 and 2
    append(&mut log, idem(2, 0, 5, 1));
    assert_eq!(log.segment_base_offsets(), vec![0, 10]);
    assert_eq!(log.enforce_retention(T0).unwrap(), 2, "both segments, after a roll");
    assert!(log.producer_state().get(1).is_none(), "all of producer 1's batches are gone");
    assert!(log.producer_state().get(2).is_none());
    assert_eq!(try_append(&mut log, idem(1, 0, 50, 1)).unwrap().base_offset, 16);
}

#[test]
fn p15_duplicate_under_log_append_time_reports_the_original_time() {
    let storage = MemStorage::new();
    let config = LogConfig { timestamp_type: TimestampType::LogAppendTime, ..LogConfig::default() };
    let mut log = open_mem(&storage, config);
    let first = log.append(&mut idem(1, 0, 0, 1), 0, T0 + 1).unwrap();
    assert_eq!(first.log_append_time_ms, T0 + 1);
    let retry = log.append(&mut idem(1, 0, 0, 1), 0, T0 + 2).unwrap();
    assert_eq!((retry.duplicate, retry.log_append_time_ms), (true, T0 + 1));
}
