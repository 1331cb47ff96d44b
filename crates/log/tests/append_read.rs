//! Append and read: offsets (L1), watermark (L2), segments and rolls (L6, L7), fetch bounds
//! (F4, L11), timestamps (L4, B7) and the failed state.

mod common;

use common::*;
use sluice_log::{LogConfig, LogError, MemStorage, Storage, TimestampType};

/// Bytes of `batch(n, _)`: 61-byte header plus 17 bytes per record.
fn batch_bytes(records: usize) -> usize {
    61 + 17 * records
}

#[test]
fn l1_offsets_are_assigned_from_the_log_end() {
    let storage = MemStorage::new();
    let mut log = open_mem(&storage, LogConfig::default());
    let first = append(&mut log, batch(3, T0));
    let second = append(&mut log, batch(2, T0));
    assert_eq!((first.base_offset, first.last_offset, first.duplicate), (0, 2, false));
    assert_eq!((second.base_offset, second.last_offset), (3, 4));
    assert_eq!(first.log_append_time_ms, -1);
    assert_eq!(log.log_end_offset(), 5);
    assert_eq!(read_everything(&log), vec![(0, 2), (3, 4)]);
}

#[test]
fn b6_base_offset_and_leader_epoch_are_written_in_place() {
    let storage = MemStorage::new();
    let mut log = open_mem(&storage, LogConfig::default());
    append(&mut log, batch(2, T0));
    let mut records = batch(1, T0);
    log.append(&mut records, 7, T0).unwrap();
    let h = headers(&records)[0];
    assert_eq!((h.base_offset, h.partition_leader_epoch), (2, 7));
    log.advance_high_watermark(3);
    let read = log.read(2, 1000, false).unwrap();
    assert_eq!(&read.records[..], &records[..], "stored bytes are the appended bytes");
}

#[test]
fn l2_high_watermark_moves_only_when_advanced() {
    let storage = MemStorage::new();
    let mut log = open_mem(&storage, LogConfig::default());
    log.append(&mut batch(3, T0), 0, T0).unwrap();
    log.append(&mut batch(2, T0), 0, T0).unwrap();
    assert_eq!((log.high_watermark(), log.log_end_offset()), (0, 5));
    assert!(log.read(0, 1000, true).unwrap().records.is_empty(), "nothing visible above the HW");
    assert_eq!(log.bytes_available(0), 0);
    log.advance_high_watermark(4); // inside the second batch: stops at the first one's end
    assert_eq!(log.high_watermark(), 3);
    assert_eq!(headers(&log.read(0, 1000, true).unwrap().records).len(), 1);
    assert_eq!(log.bytes_available(0), batch_bytes(3) as u64);
    log.advance_high_watermark(100); // never past the log end
    assert_eq!(log.high_watermark(), 5);
    log.advance_high_watermark(1); // never down
    assert_eq!(log.high_watermark(), 5);
    let read = log.read(0, 1000, true).unwrap();
    assert_eq!((read.high_watermark, read.log_start_offset, read.log_end_offset), (5, 0, 5));
    assert_eq!(headers(&read.records).len(), 2);
}

#[test]
fn l7_segments_roll_before_exceeding_segment_bytes() {
    let storage = MemStorage::new();
    let mut log = open_mem(&storage, small_config());
    for _ in 0..30 {
        append(&mut log, batch(5, T0)); // 146 bytes each: 7 per 1024-byte segment
    }
    let bases = log.segment_base_offsets();
    assert_eq!(bases, vec![0, 35, 70, 105, 140]);
    for base in &bases {
        assert!(file_bytes(&storage, &seg(*base, "log")).len() <= 1024);
    }
    assert_eq!(log.size_bytes(), 30 * batch_bytes(5) as u64);
    assert_eq!(read_everything(&log).len(), 30);
}

#[test]
fn l7_segment_rolls_after_segment_ms() {
    let storage = MemStorage::new();
    let config = LogConfig { segment_ms: 1000, ..LogConfig::default() };
    let mut log = open_mem(&storage, config);
    log.append(&mut batch(1, T0), 0, T0).unwrap();
    log.append(&mut batch(1, T0), 0, T0 + 999).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0]);
    log.append(&mut batch(1, T0), 0, T0 + 1000).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 2]);
}

#[test]
fn l7_full_index_rolls_the_segment() {
    let storage = MemStorage::new();
    // One 8-byte entry fits; each batch after the first adds one.
    let config = LogConfig { index_interval_bytes: 1, segment_index_bytes: 12, ..LogConfig::default() };
    let mut log = open_mem(&storage, config);
    for _ in 0..4 {
        append(&mut log, batch(1, T0));
    }
    assert_eq!(log.segment_base_offsets(), vec![0, 2]);
    assert_eq!(read_everything(&log), vec![(0, 0), (1, 1), (2, 2), (3, 3)]);
}

#[test]
fn l6_every_offset_is_found_through_the_sparse_index_across_segments() {
    let storage = MemStorage::new();
    let mut log = open_mem(&storage, small_config());
    let mut batches = Vec::new();
    for i in 0..60 {
        let outcome = append(&mut log, batch(1 + i % 4, T0));
        batches.push((outcome.base_offset, outcome.last_offset));
    }
    assert!(log.segment_base_offsets().len() > 3);
    assert!(!file_bytes(&storage, &seg(0, "index")).is_empty(), "sparse entries were written");
    for offset in 0..log.log_end_offset() {
        let read = log.read(offset, 1, true).unwrap();
        let hs = headers(&read.records);
        assert_eq!(hs.len(), 1, "offset {offset}");
        let expect = batches.iter().find(|(b, l)| *b <= offset && offset <= *l).unwrap();
        assert_eq!((hs[0].base_offset, hs[0].last_offset()), *expect, "offset {offset}");
        assert_eq!(read.records.len(), hs[0].total_bytes());
    }
}

#[test]
fn l6_index_entries_point_at_last_offset_and_batch_start() {
    let storage = MemStorage::new();
    let config = LogConfig { index_interval_bytes: 100, ..LogConfig::default() };
    let mut log = open_mem(&storage, config);
    for _ in 0..4 {
        append(&mut log, batch(3, T0)); // 112 bytes each
    }
    // Before batch 2 (112 > 100 bytes since start): entry (last offset 5, position 112);
    // before batch 3: (8, 224); before batch 4: (11, 336).
    let index = file_bytes(&storage, &seg(0, "index"));
    let entries: Vec<(u32, u32)> = index
        .chunks(8)
        .map(|c| (u32::from_be_bytes(c[..4].try_into().unwrap()), u32::from_be_bytes(c[4..].try_into().unwrap())))
        .collect();
    assert_eq!(entries, vec![(5, 112), (8, 224), (11, 336)]);
}

#[test]
fn f4_max_bytes_cuts_and_min_one_batch_returns_the_first_batch_whole() {
    let storage = MemStorage::new();
    let mut log = open_mem(&storage, LogConfig::default());
    append(&mut log, batch(4, T0));
    append(&mut log, batch(4, T0));
    let size = batch_bytes(4);
    assert_eq!(log.read(0, size + 10, false).unwrap().records.len(), size + 10, "a partial trailing batch");
    assert_eq!(log.read(0, 10, false).unwrap().records.len(), 10);
    assert_eq!(log.read(0, 10, true).unwrap().records.len(), size, "first batch whole");
    assert_eq!(log.read(0, 0, false).unwrap().records.len(), 0);
    assert_eq!(log.read(0, 0, true).unwrap().records.len(), size);
    // F3: a fetch inside a batch starts at that batch.
    let read = log.read(6, 10_000, false).unwrap();
    assert_eq!(headers(&read.records)[0].base_offset, 4);
    assert_eq!(read.records.len(), size);
}

#[test]
fn reads_come_from_one_segment() {
    let storage = MemStorage::new();
    let mut log = open_mem(&storage, small_config());
    for _ in 0..10 {
        append(&mut log, batch(5, T0));
    }
    assert_eq!(log.segment_base_offsets(), vec![0, 35]);
    let read = log.read(0, 1 << 20, false).unwrap();
    assert_eq!(read.records.len(), 7 * batch_bytes(5));
    assert_eq!(log.bytes_available(0), 10 * batch_bytes(5) as u64, "min_bytes counts every segment");
    assert_eq!(log.bytes_available(36), 3 * batch_bytes(5) as u64);
}

#[test]
fn l11_offsets_out_of_range() {
    let storage = MemStorage::new();
    let mut log = open_mem(&storage, LogConfig::default());
    assert!(log.read(0, 100, true).unwrap().records.is_empty(), "empty log at offset 0");
    append(&mut log, batch(3, T0));
    log.append(&mut batch(2, T0), 0, T0).unwrap(); // LEO 5, HW 3
    for bad in [-1, 6, 100] {
        match log.read(bad, 100, true) {
            Err(LogError::OffsetOutOfRange { offset, log_start_offset: 0, log_end_offset: 5 }) => {
                assert_eq!(offset, bad)
            }
            other => panic!("offset {bad}: {other:?}"),
        }
    }
    for empty in [3, 4, 5] {
        assert!(log.read(empty, 100, true).unwrap().records.is_empty(), "offset {empty}");
    }
}

#[test]
fn l2_high_watermark_bounds_reads_inside_the_active_segment() {
    let storage = MemStorage::new();
    let mut log = open_mem(&storage, LogConfig::default());
    for _ in 0..3 {
        log.append(&mut batch(2, T0), 0, T0).unwrap();
    }
    log.advance_high_watermark(4);
    let read = log.read(0, 1 << 20, false).unwrap();
    assert_eq!(read.records.len(), 2 * batch_bytes(2));
    assert_eq!(headers(&read.records).last().unwrap().next_offset(), 4);
    // A high watermark at a segment end is the next segment's start.
    let mut log = open_mem(&MemStorage::new(), small_config());
    for _ in 0..7 {
        append(&mut log, batch(5, T0));
    }
    log.append(&mut batch(5, T0), 0, T0).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 35]);
    assert_eq!(log.high_watermark(), 35);
    assert!(log.read(35, 1000, true).unwrap().records.is_empty());
    assert_eq!(log.read(30, 1000, true).unwrap().records.len(), batch_bytes(5));
}

#[test]
fn b11_a_record_set_larger_than_a_segment_is_refused() {
    let storage = MemStorage::new();
    let mut log = open_mem(&storage, LogConfig { segment_bytes: 200, ..LogConfig::default() });
    let mut records = batch(10, T0);
    match log.append(&mut records, 0, T0) {
        Err(LogError::RecordListTooLarge { size, segment_bytes: 200 }) => assert_eq!(size, batch_bytes(10)),
        other => panic!("{other:?}"),
    }
    assert_eq!(log.log_end_offset(), 0);
    assert!(log.failure().is_none());
}

#[test]
fn several_batches_in_one_record_set() {
    let storage = MemStorage::new();
    let mut log = open_mem(&storage, LogConfig::default());
    let mut set = batch(2, T0);
    set.extend_from_slice(&batch(3, T0));
    let outcome = append(&mut log, set);
    assert_eq!((outcome.base_offset, outcome.last_offset), (0, 4));
    assert_eq!(read_everything(&log), vec![(0, 1), (2, 4)]);
}

#[test]
fn b7_log_append_time_overwrites_max_timestamp_and_crc() {
    let storage = MemStorage::new();
    let config = LogConfig { timestamp_type: TimestampType::LogAppendTime, ..LogConfig::default() };
    let mut log = open_mem(&storage, config);
    let now = T0 + 5_000;
    let mut records = batch(3, T0);
    let outcome = log.append(&mut records, 0, now).unwrap();
    assert_eq!(outcome.log_append_time_ms, now);
    log.advance_high_watermark(3);
    let read = log.read(0, 1000, false).unwrap();
    let h = headers(&read.records)[0];
    assert!(h.is_log_append_time());
    assert_eq!(h.max_timestamp, now);
    assert!(sluice_records::validate::crc_matches(&read.records, &h), "CRC recomputed");
    assert_eq!(log.offset_for_timestamp(now).unwrap(), Some((0, now)));
    assert_eq!(log.max_timestamp().unwrap(), Some((0, now)));
}

#[test]
fn l4_offset_for_timestamp_finds_the_first_record_at_or_after() {
    // As one batch and as one batch per record, with an index entry after every batch.
    let config = LogConfig { index_interval_bytes: 1, ..LogConfig::default() };
    let timestamps = [100, 200, 200, 300];
    let one_batch = vec![encode(&timestamps, 5, None)];
    let per_record: Vec<_> = timestamps.iter().map(|&t| encode(&[t], 5, None)).collect();
    for sets in [one_batch, per_record] {
        let mut log = open_mem(&MemStorage::new(), config.clone());
        for set in sets {
            append(&mut log, set);
        }
        let check = |target: i64, expect: Option<(i64, i64)>| {
            assert_eq!(log.offset_for_timestamp(target).unwrap(), expect, "target {target}");
        };
        check(0, Some((0, 100)));
        check(100, Some((0, 100)));
        check(150, Some((1, 200)));
        check(200, Some((1, 200)));
        check(201, Some((3, 300)));
        check(300, Some((3, 300)));
        check(301, None);
        assert_eq!(log.max_timestamp().unwrap(), Some((3, 300)));
    }
}

#[test]
fn l4_timestamp_lookup_across_segments_and_below_the_high_watermark() {
    let mut log = open_mem(&MemStorage::new(), small_config());
    for i in 0..40i64 {
        append(&mut log, encode(&[T0 + 10 * i, T0 + 10 * i + 5], 20, None));
    }
    assert!(log.segment_base_offsets().len() > 3);
    for i in 0..40i64 {
        assert_eq!(log.offset_for_timestamp(T0 + 10 * i).unwrap(), Some((2 * i, T0 + 10 * i)));
        assert_eq!(log.offset_for_timestamp(T0 + 10 * i + 1).unwrap(), Some((2 * i + 1, T0 + 10 * i + 5)));
    }
    assert_eq!(log.max_timestamp().unwrap(), Some((79, T0 + 395)));
    // Above the high watermark nothing is found.
    log.append(&mut encode(&[T0 + 1_000], 20, None), 0, T0).unwrap();
    assert_eq!(log.offset_for_timestamp(T0 + 1_000).unwrap(), None);
    assert_eq!(log.max_timestamp().unwrap(), Some((79, T0 + 395)));
    log.advance_high_watermark(log.log_end_offset());
    assert_eq!(log.max_timestamp().unwrap(), Some((80, T0 + 1_000)));
}

#[test]
fn max_timestamp_picks_the_first_record_on_a_tie() {
    let mut log = open_mem(&MemStorage::new(), LogConfig::default());
    append(&mut log, encode(&[100, 300, 300], 5, None));
    append(&mut log, encode(&[300], 5, None));
    assert_eq!(log.max_timestamp().unwrap(), Some((1, 300)));
    assert_eq!(open_mem(&MemStorage::new(), LogConfig::default()).max_timestamp().unwrap(), None);
}

#[test]
fn an_io_error_fails_the_log_for_good() {
    let storage = MemStorage::new();
    let mut log = open_mem(&storage, LogConfig::default());
    append(&mut log, batch(1, T0));
    storage.set_failing(true);
    let err = log.append(&mut batch(1, T0), 0, T0).unwrap_err();
    assert!(matches!(err, LogError::Io { .. }), "{err:?}");
    assert!(err.is_fatal());
    storage.set_failing(false);
    let err = log.append(&mut batch(1, T0), 0, T0).unwrap_err();
    assert!(matches!(err, LogError::Failed(_)), "{err:?}");
    assert!(matches!(log.enforce_retention(T0), Err(LogError::Failed(_))));
    assert!(matches!(log.close(), Err(LogError::Failed(_))));
    assert!(log.failure().is_some());
    // Reads of what was appended still work.
    assert_eq!(read_everything(&log), vec![(0, 0)]);
}

#[test]
fn a_failed_sync_at_roll_fails_the_log() {
    let storage = MemStorage::new();
    let mut log = open_mem(&storage, small_config());
    for _ in 0..7 {
        append(&mut log, batch(5, T0));
    }
    storage.set_failing(true);
    assert!(matches!(log.append(&mut batch(5, T0), 0, T0), Err(LogError::Io { .. })));
    storage.set_failing(false);
    assert!(matches!(log.append(&mut batch(5, T0), 0, T0), Err(LogError::Failed(_))));
    assert_eq!(log.log_end_offset(), 35);
}

#[test]
fn closed_log_refuses_appends() {
    let storage = MemStorage::new();
    let mut log = open_mem(&storage, LogConfig::default());
    append(&mut log, batch(1, T0));
    log.close().unwrap();
    log.close().unwrap();
    assert!(matches!(log.append(&mut batch(1, T0), 0, T0), Err(LogError::Failed(_))));
}

#[test]
fn flush_handle_syncs_the_active_segment() {
    let storage = MemStorage::new();
    let mut log = open_mem(&storage, LogConfig::default());
    log.append(&mut batch(2, T0), 0, T0).unwrap();
    let handle = log.flush_handle();
    assert_eq!(handle.upto_offset, 2);
    log.append(&mut batch(2, T0), 0, T0).unwrap(); // not covered by the handle
    handle.sync().unwrap();
    log.advance_high_watermark(handle.upto_offset);
    assert_eq!(log.high_watermark(), 2);
    let crashed = storage.crash();
    let log = open_mem(&crashed, LogConfig::default());
    // The second batch was synced too (same file), but nothing promised it.
    assert!(log.log_end_offset() >= 2);
}

#[test]
fn delete_removes_the_directory() {
    let storage = MemStorage::new();
    let mut log = open_mem(&storage, LogConfig::default());
    append(&mut log, batch(1, T0));
    log.delete().unwrap();
    assert!(!storage.exists(&dir()));
}

#[test]
fn l4_timestamp_lookup_inside_a_compressed_batch() {
    use sluice_records::record::{encode_batch, BatchOptions, NewRecord};
    use sluice_records::Compression;
    let records: Vec<NewRecord> = [100, 200, 200, 300]
        .iter()
        .map(|&timestamp| NewRecord {
            timestamp,
            value: Some(bytes::Bytes::from_static(b"value")),
            ..NewRecord::default()
        })
        .collect();
    let set = encode_batch(&records, BatchOptions { compression: Compression::Gzip, ..BatchOptions::default() });
    let mut log = open_mem(&MemStorage::new(), LogConfig::default());
    append(&mut log, batch(1, 50));
    append(&mut log, set);
    assert_eq!(log.offset_for_timestamp(150).unwrap(), Some((2, 200)));
    assert_eq!(log.offset_for_timestamp(300).unwrap(), Some((4, 300)));
    assert_eq!(log.max_timestamp().unwrap(), Some((4, 300)));
}
