//! Retention (L8) and time-based rolls (L7).

mod common;

use common::*;
use sluice_log::{LogConfig, LogError, MemStorage, Storage};

/// batch(10) is 231 bytes; ten fill a 2310-byte segment, so segments hold 100 offsets.
fn hundred_per_segment() -> LogConfig {
    LogConfig { segment_bytes: 2310, retention_ms: -1, ..LogConfig::default() }
}

/// Segments [0..99], [100..199], [200..249]; batch i has timestamp T0 + i.
fn three_segments(storage: &MemStorage, config: LogConfig) -> sluice_log::PartitionLog {
    let mut log = open_mem(storage, config);
    for i in 0..25 {
        append(&mut log, batch(10, T0 + i));
    }
    assert_eq!(log.segment_base_offsets(), vec![0, 100, 200]);
    log
}

#[test]
fn l8_size_retention_keeps_the_last_two_segments() {
    let storage = MemStorage::new();
    let config = LogConfig { retention_bytes: 2310 + 5 * 231, ..hundred_per_segment() };
    let mut log = three_segments(&storage, config.clone());
    assert_eq!(log.enforce_retention(T0).unwrap(), 1);
    assert_eq!(log.log_start_offset(), 100); // ListOffsets(-2)
    assert!(matches!(
        log.read(50, 1000, true),
        Err(LogError::OffsetOutOfRange { offset: 50, log_start_offset: 100, .. })
    ));
    assert_eq!(headers(&log.read(100, 1000, true).unwrap().records)[0].base_offset, 100);
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((100, T0 + 10)));
    for suffix in ["log", "index", "timeindex"] {
        assert!(!storage.exists(&dir().join(seg(0, suffix))));
    }
    assert_eq!(log.enforce_retention(T0).unwrap(), 0, "nothing more to do");
    drop(log);
    let log = open_mem(&storage, config);
    assert_eq!(log.log_start_offset(), 100, "the log start survives a reopen");
}

#[test]
fn l8_time_retention_deletes_segments_whose_newest_record_is_too_old() {
    let storage = MemStorage::new();
    let config = LogConfig { retention_ms: 100, ..hundred_per_segment() };
    let mut log = three_segments(&storage, config);
    // Segment 0's newest record is T0+9, segment 100's T0+19, the active one's T0+24.
    assert_eq!(log.enforce_retention(T0 + 109).unwrap(), 0);
    assert_eq!(log.enforce_retention(T0 + 110).unwrap(), 1);
    assert_eq!(log.log_start_offset(), 100);
    assert_eq!(log.enforce_retention(T0 + 120).unwrap(), 1);
    assert_eq!(log.segment_base_offsets(), vec![200]);
}

#[test]
fn l8_everything_expired_rolls_a_new_empty_segment() {
    let storage = MemStorage::new();
    let config = LogConfig { retention_ms: 100, ..hundred_per_segment() };
    let mut log = three_segments(&storage, config.clone());
    assert_eq!(log.enforce_retention(T0 + 1_000).unwrap(), 3);
    assert_eq!(log.segment_base_offsets(), vec![250]);
    assert_eq!((log.log_start_offset(), log.high_watermark(), log.log_end_offset()), (250, 250, 250));
    assert!(log.read(250, 100, true).unwrap().records.is_empty());
    assert!(matches!(log.read(249, 100, true), Err(LogError::OffsetOutOfRange { .. })));
    assert_eq!(log.enforce_retention(T0 + 1_000).unwrap(), 0, "an empty active segment stays");
    assert_eq!(append(&mut log, batch(1, T0 + 2_000)).base_offset, 250);
    drop(log);
    let log = open_mem(&storage, config);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (250, 251));
}

#[test]
fn l8_retention_never_passes_the_high_watermark() {
    let storage = MemStorage::new();
    let config = LogConfig { retention_ms: 100, ..hundred_per_segment() };
    let mut log = open_mem(&storage, config);
    for i in 0..25 {
        log.append(&mut batch(10, T0 + i), 0, T0).unwrap();
        if i < 12 {
            log.advance_high_watermark(log.log_end_offset());
        }
    }
    assert_eq!(log.high_watermark(), 120);
    assert_eq!(log.enforce_retention(T0 + 1_000).unwrap(), 1, "segment 100 reaches past the HW");
    assert_eq!(log.log_start_offset(), 100);
    log.advance_high_watermark(200);
    assert_eq!(log.enforce_retention(T0 + 1_000).unwrap(), 1);
    assert_eq!((log.log_start_offset(), log.high_watermark()), (200, 200));
    assert!(log.read(200, 100, true).unwrap().records.is_empty(), "HW at the new log start");
    log.advance_high_watermark(250);
    assert_eq!(read_everything(&log).len(), 5);
}

#[test]
fn l8_disabled_retention_keeps_everything() {
    let storage = MemStorage::new();
    let mut log = three_segments(&storage, hundred_per_segment());
    assert_eq!(log.enforce_retention(i64::MAX).unwrap(), 0);
    assert_eq!(log.log_start_offset(), 0);
}

#[test]
fn l7_retention_rolls_an_aged_active_segment() {
    let storage = MemStorage::new();
    let config = LogConfig { segment_ms: 1_000, retention_ms: -1, ..LogConfig::default() };
    let mut log = open_mem(&storage, config);
    log.enforce_retention(T0 + 5_000).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0], "an empty segment does not roll");
    append(&mut log, batch(2, T0)); // appended at T0
    log.enforce_retention(T0 + 999).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0]);
    log.enforce_retention(T0 + 1_000).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 2]);
}

/// The coordinator's compaction: roll, write a snapshot, delete what lies wholly before it,
/// never past the high watermark.
#[test]
fn delete_segments_below_deletes_whole_segments_before_the_offset_and_the_high_watermark() {
    let storage = MemStorage::new();
    let mut log = three_segments(&storage, hundred_per_segment());
    assert_eq!(log.delete_segments_below(99).unwrap(), 0, "segment 0 reaches offset 99");
    assert_eq!(log.delete_segments_below(150).unwrap(), 1);
    assert_eq!((log.log_start_offset(), log.segment_base_offsets()), (100, vec![100, 200]));
    log.roll_segment().unwrap();
    assert_eq!(log.segment_base_offsets(), vec![100, 200, 250]);
    // Appended but not yet below the high watermark: nothing from there on may go.
    let mut snapshot = batch(10, T0 + 30);
    log.append(&mut snapshot, 0, T0).unwrap();
    assert_eq!(log.delete_segments_below(260).unwrap(), 2, "only up to the high watermark, 250");
    assert_eq!(log.segment_base_offsets(), vec![250]);
    assert_eq!(log.log_start_offset(), 250);
    log.advance_high_watermark(260);
    assert_eq!(headers(&log.read(250, 1000, true).unwrap().records)[0].base_offset, 250);
    drop(log);
    assert_eq!(open_mem(&storage, hundred_per_segment()).log_start_offset(), 250, "survives a reopen");
}

/// DeleteRecords (Kafka's `maybeIncrementLogStartOffset`): the start moves inside a segment,
/// whole segments below it go, reads below it are out of range, and it survives a reopen and
/// a crash.
#[test]
fn delete_records_moves_the_log_start_and_persists_it() {
    let storage = MemStorage::new();
    let mut log = three_segments(&storage, hundred_per_segment());
    assert!(matches!(log.delete_records_before(251), Err(LogError::OffsetOutOfRange { offset: 251, .. })));
    assert_eq!(log.delete_records_before(150).unwrap(), 150);
    assert_eq!(log.segment_base_offsets(), vec![100, 200], "segment 0 lies wholly below 150");
    assert!(matches!(log.read(149, 1000, true), Err(LogError::OffsetOutOfRange { offset: 149, .. })));
    // The batch holding 150 starts there (batches of 10).
    assert_eq!(headers(&log.read(150, 1000, true).unwrap().records)[0].base_offset, 150);
    assert_eq!(log.delete_records_before(120).unwrap(), 150, "never moves down");
    // Timestamp look-ups skip records below the start.
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((150, T0 + 15)));
    drop(log);
    let log = open_mem(&storage, hundred_per_segment());
    assert_eq!(log.log_start_offset(), 150, "the start survives a reopen");
    let crashed = storage.crash();
    let mut log = open_mem(&crashed, hundred_per_segment());
    assert_eq!(log.log_start_offset(), 150, "and a crash");
    // Up to the high watermark: the active segment stays, empty of readable records.
    assert_eq!(log.delete_records_before(250).unwrap(), 250);
    assert_eq!(log.segment_base_offsets(), vec![200]);
    assert!(log.read(250, 1000, true).unwrap().records.is_empty());
    assert_eq!(append(&mut log, batch(1, T0 + 30)).base_offset, 250);
    assert_eq!(log.log_start_offset(), 250);
}
