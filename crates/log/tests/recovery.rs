//! Recovery (L9): torn and corrupt tails, later segments, rebuilt indexes, crashes that keep
//! only synced data, clean shutdown, stray files, and the real file system.

mod common;

use std::sync::Arc;

use common::*;
use sluice_log::{FsStorage, LogConfig, MemStorage, PartitionLog, Storage};

fn batch_size() -> usize {
    61 + 17 * 2
}

/// Ten synced batches of two records (offsets 0..19), then an eleventh, unsynced.
fn ten_synced_and_one_more(storage: &MemStorage) {
    let mut log = open_mem(storage, LogConfig::default());
    for _ in 0..10 {
        append(&mut log, batch(2, T0));
    }
    log.flush_handle().sync().unwrap();
    append(&mut log, batch(2, T0));
}

fn assert_ten_batches(storage: &MemStorage) {
    let log = open_mem(storage, LogConfig::default());
    assert_eq!(log.log_end_offset(), 20);
    assert_eq!(log.high_watermark(), 20, "HW starts at the recovered log end");
    let expect: Vec<(i64, i64)> = (0..10).map(|i| (2 * i, 2 * i + 1)).collect();
    assert_eq!(read_everything(&log), expect);
    assert_eq!(file_bytes(storage, &seg(0, "log")).len(), 10 * batch_size(), "file truncated to batch 10");
}

#[test]
fn l9_torn_tail_is_truncated() {
    let storage = MemStorage::new();
    ten_synced_and_one_more(&storage);
    let crashed = storage.crash_torn(batch_size() / 2);
    assert_eq!(file_bytes(&crashed, &seg(0, "log")).len(), 10 * batch_size() + batch_size() / 2);
    assert_ten_batches(&crashed);
}

#[test]
fn l9_torn_header_is_truncated() {
    let storage = MemStorage::new();
    ten_synced_and_one_more(&storage);
    let crashed = storage.crash_torn(30); // not even a whole header
    assert_ten_batches(&crashed);
}

#[test]
fn l9_bit_flipped_tail_batch_is_truncated() {
    let storage = MemStorage::new();
    ten_synced_and_one_more(&storage);
    // A process crash (page cache kept) with a flipped bit in the last batch's records.
    let mut bytes = file_bytes(&storage, &seg(0, "log"));
    let at = 10 * batch_size() + 70;
    bytes[at] ^= 0x10;
    write_file(&storage, &seg(0, "log"), &bytes);
    assert_ten_batches(&storage);
}

#[test]
fn l9_half_written_tail_is_truncated() {
    let storage = MemStorage::new();
    ten_synced_and_one_more(&storage);
    let bytes = file_bytes(&storage, &seg(0, "log"));
    write_file(&storage, &seg(0, "log"), &bytes[..bytes.len() - 20]);
    assert_ten_batches(&storage);
    // And the log appends on from there.
    let mut log = open_mem(&storage, LogConfig::default());
    assert_eq!(append(&mut log, batch(1, T0)).base_offset, 20);
}

#[test]
fn l9_batch_not_continuing_the_offsets_is_cut() {
    let storage = MemStorage::new();
    ten_synced_and_one_more(&storage);
    let mut bytes = file_bytes(&storage, &seg(0, "log"));
    // Batch 11 claims base offset 99 (outside the CRC, so only the offset check sees it).
    bytes[10 * batch_size()..10 * batch_size() + 8].copy_from_slice(&99i64.to_be_bytes());
    write_file(&storage, &seg(0, "log"), &bytes);
    assert_ten_batches(&storage);
}

/// Segments 0, 35, 70, 105 (seven 5-record batches each, the last with three).
fn four_segments(storage: &MemStorage) -> Vec<(i64, i64)> {
    let mut log = open_mem(storage, small_config());
    for _ in 0..24 {
        append(&mut log, batch(5, T0));
    }
    assert_eq!(log.segment_base_offsets(), vec![0, 35, 70, 105]);
    read_everything(&log)
}

#[test]
fn l9_later_segments_are_removed_after_a_cut() {
    let storage = MemStorage::new();
    let all = four_segments(&storage);
    // Break the framing of the third batch of segment 35 (its batchLength).
    let mut bytes = file_bytes(&storage, &seg(35, "log"));
    let at = 2 * (61 + 85) + 8;
    bytes[at..at + 4].copy_from_slice(&i32::MAX.to_be_bytes());
    write_file(&storage, &seg(35, "log"), &bytes);

    let log = open_mem(&storage, small_config());
    assert_eq!(log.segment_base_offsets(), vec![0, 35]);
    assert_eq!(log.log_end_offset(), 45);
    assert_eq!(read_everything(&log), all[..9].to_vec());
    for base in [70, 105] {
        for suffix in ["log", "index", "timeindex"] {
            assert!(!storage.exists(&dir().join(seg(base, suffix))), "{base}.{suffix}");
        }
    }
}

#[test]
fn l9_crc_is_checked_from_the_recovery_point_on() {
    let storage = MemStorage::new();
    let all = four_segments(&storage);
    // A CRC flip in segment 35, below the recovery point (105, written at the last roll): the
    // segment was synced and checked before, so open trusts it.
    let mut bytes = file_bytes(&storage, &seg(35, "log"));
    bytes[2 * 146 + 100] ^= 1;
    write_file(&storage, &seg(35, "log"), &bytes);
    let log = open_mem(&storage, small_config());
    assert_eq!((log.log_end_offset(), all.len()), (120, 24));
    assert_eq!(log.segment_base_offsets(), vec![0, 35, 70, 105]);
    drop(log);
    // Without a recovery point every segment is checked.
    storage.remove_file(&dir().join("recovery-point")).unwrap();
    let log = open_mem(&storage, small_config());
    assert_eq!(log.log_end_offset(), 45);
    assert_eq!(log.segment_base_offsets(), vec![0, 35]);
}

#[test]
fn l9_indexes_are_rebuilt_when_deleted_or_wrong() {
    let storage = MemStorage::new();
    four_segments(&storage);
    let index = file_bytes(&storage, &seg(35, "index"));
    let timeindex = file_bytes(&storage, &seg(35, "timeindex"));
    assert!(!index.is_empty() && !timeindex.is_empty());
    storage.remove_file(&dir().join(seg(35, "index"))).unwrap();
    storage.remove_file(&dir().join(seg(35, "timeindex"))).unwrap();
    write_file(&storage, &seg(70, "index"), b"garbage!garbage!");
    let mut log = open_mem(&storage, small_config());
    assert_eq!(file_bytes(&storage, &seg(35, "index")), index);
    assert_eq!(file_bytes(&storage, &seg(35, "timeindex")), timeindex);
    assert_eq!(file_bytes(&storage, &seg(70, "index")).len() % 8, 0);
    for offset in 0..log.log_end_offset() {
        let h = headers(&log.read(offset, 1, true).unwrap().records)[0];
        assert!(h.base_offset <= offset && offset <= h.last_offset(), "offset {offset}");
    }
    // A clean shutdown keeps them as they are.
    log.close().unwrap();
    drop(log);
    let log = open_mem(&storage, small_config());
    assert_eq!(file_bytes(&storage, &seg(35, "index")), index);
    assert_eq!(log.log_end_offset(), 120);
}

#[test]
fn crash_keeps_only_synced_data_with_the_same_offsets() {
    let storage = MemStorage::new();
    let mut log = open_mem(&storage, small_config());
    let mut synced = Vec::new();
    for i in 0..40 {
        let outcome = log.append(&mut batch(1 + i % 3, T0), 0, T0).unwrap();
        if i < 30 {
            let handle = log.flush_handle();
            handle.sync().unwrap();
            log.advance_high_watermark(handle.upto_offset);
            synced.push((outcome.base_offset, outcome.last_offset));
        }
    }
    let crashed = storage.crash();
    let mut log = open_mem(&crashed, small_config());
    assert_eq!(read_everything(&log), synced, "everything synced survives, nothing else");
    assert_eq!(log.log_end_offset(), synced.last().unwrap().1 + 1);
    let next = append(&mut log, batch(1, T0));
    assert_eq!(next.base_offset, synced.last().unwrap().1 + 1);
}

#[test]
fn crash_after_rolls_keeps_every_rolled_segment() {
    // Page-cache mode: nothing is synced by the broker, but a roll syncs the old segment.
    let storage = MemStorage::new();
    let all = four_segments(&storage);
    let log = open_mem(&storage.crash(), small_config());
    assert_eq!(log.log_end_offset(), 105, "the active segment was never synced");
    assert_eq!(read_everything(&log), all[..21].to_vec());
    assert_eq!(log.segment_base_offsets(), vec![0, 35, 70, 105]);
}

#[test]
fn l9_clean_shutdown_needs_no_scan() {
    let storage = MemStorage::new();
    let mut log = open_mem(&storage, LogConfig::default());
    for _ in 0..3 {
        append(&mut log, batch(2, T0));
    }
    log.close().unwrap();
    assert!(storage.exists(&dir().join("clean-shutdown")));
    // A CRC flip a scan would catch goes unnoticed after a clean shutdown.
    let mut bytes = file_bytes(&storage, &seg(0, "log"));
    bytes[2 * batch_size() + 70] ^= 1;
    write_file(&storage, &seg(0, "log"), &bytes);
    let log = open_mem(&storage, LogConfig::default());
    assert_eq!(log.log_end_offset(), 6);
    assert!(!storage.exists(&dir().join("clean-shutdown")), "open removes the marker");
    drop(log);
    // The next unclean open checks the active segment again.
    assert_eq!(open_mem(&storage, LogConfig::default()).log_end_offset(), 4);
}

#[test]
fn stray_and_empty_files_are_handled() {
    let storage = MemStorage::new();
    let mut log = open_mem(&storage, LogConfig::default());
    append(&mut log, batch(2, T0));
    drop(log);
    write_file(&storage, &seg(999, "index"), b"12345678");
    write_file(&storage, &seg(999, "timeindex"), b"");
    write_file(&storage, "recovery-point.tmp", b"1");
    write_file(&storage, "partition.metadata", b"topic_id: x");
    write_file(&storage, "notasegment.log", b"x");
    write_file(&storage, &seg(500, "log"), b""); // does not continue the log
    let mut log = open_mem(&storage, LogConfig::default());
    assert_eq!(log.segment_base_offsets(), vec![0]);
    assert_eq!(log.log_end_offset(), 2);
    for gone in [seg(999, "index"), seg(999, "timeindex"), "recovery-point.tmp".into(), seg(500, "log")] {
        assert!(!storage.exists(&dir().join(&gone)), "{gone}");
    }
    for kept in ["partition.metadata", "notasegment.log"] {
        assert!(storage.exists(&dir().join(kept)), "{kept}");
    }
    assert_eq!(append(&mut log, batch(1, T0)).base_offset, 2);
}

#[test]
fn an_empty_segment_file_and_a_garbled_recovery_point_are_fine() {
    let storage = MemStorage::new();
    drop(open_mem(&storage, LogConfig::default()));
    write_file(&storage, "recovery-point", b"not a number");
    let mut log = open_mem(&storage, LogConfig::default());
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
    append(&mut log, batch(2, T0));
    log.close().unwrap();
    let log = open_mem(&storage, LogConfig::default());
    assert_eq!(log.log_end_offset(), 2);
}

#[test]
fn crash_during_roll_leaves_an_empty_active_segment() {
    let storage = MemStorage::new();
    let mut log = open_mem(&storage, small_config());
    for _ in 0..7 {
        append(&mut log, batch(5, T0));
    }
    log.flush_handle().sync().unwrap();
    // The new segment exists but its first batch was never synced.
    append(&mut log, batch(5, T0));
    let crashed = storage.crash();
    let mut log = open_mem(&crashed, small_config());
    assert_eq!(log.segment_base_offsets(), vec![0, 35]);
    assert_eq!(log.log_end_offset(), 35);
    assert_eq!(append(&mut log, batch(1, T0)).base_offset, 35);
}

#[test]
fn fs_storage_round_trip_and_recovery() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("topic-0");
    let storage: Arc<dyn Storage> = Arc::new(FsStorage);
    let open = || PartitionLog::open(storage.clone(), dir.clone(), small_config(), T0).unwrap();
    let mut log = open();
    for _ in 0..24 {
        append(&mut log, batch(5, T0));
    }
    let all = read_everything(&log);
    log.close().unwrap();
    drop(log);
    let mut names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert!(names.contains(&"00000000000000000035.log".to_string()), "{names:?}");
    assert!(names.contains(&"00000000000000000035.index".to_string()));
    assert!(names.contains(&"00000000000000000035.timeindex".to_string()));
    assert!(names.contains(&"clean-shutdown".to_string()));

    let log = open();
    assert_eq!(read_everything(&log), all);
    drop(log);

    // Tear the tail of the active segment and drop an index: recovery fixes both.
    let active = dir.join("00000000000000000105.log");
    let len = std::fs::metadata(&active).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&active).unwrap().set_len(len - 7).unwrap();
    std::fs::remove_file(dir.join("00000000000000000035.index")).unwrap();
    let log = open();
    assert_eq!(read_everything(&log), all[..23].to_vec());
    assert_eq!(std::fs::metadata(&active).unwrap().len(), len - 146);
    assert!(dir.join("00000000000000000035.index").exists());
    log.delete().unwrap();
    assert!(!dir.exists());
}
