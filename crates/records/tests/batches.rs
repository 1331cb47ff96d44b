//! Batch-level behaviour at the crate boundary, as data: the golden vectors of
//! `shared/vectors/record-batches.txt` (SEMANTICS B1-B3, Appendix C) and every validation error
//! the broker maps to a Kafka error code (B4, B5, B9, B11, P20).

use bytes::Bytes;
use sluice_records::header::{self, set_base_offset, set_log_append_time, set_partition_leader_epoch};
use sluice_records::validate::crc_matches;
use sluice_records::{
    batches, encode_batch, records, validate_batch, BatchHeader, BatchIter, BatchOptions, Compression, NewRecord,
    Record, RecordsError,
};

/// Golden batch V1: key "k", value "v", ts 1700000000000, pid/epoch/seq -1, no compression.
const V1_HEX: &str = "
      00 00 00 00 00 00 00 00 00 00 00 3a ff ff ff ff
      02 e9 9b 8d d8 00 00 00 00 00 00 00 00 01 8b cf
      e5 68 00 00 00 01 8b cf e5 68 00 ff ff ff ff ff
      ff ff ff ff ff ff ff ff ff 00 00 00 01 10 00 00
      00 02 6b 02 76 00";

/// Golden batch V2: [null key, "a", tsDelta 0], ["key1", null, tsDelta 5]; pid 1000 epoch 0 seq 0.
const V2_HEX: &str = "
      00 00 00 00 00 00 00 00 00 00 00 44 ff ff ff ff
      02 55 7d 71 b1 00 00 00 00 00 01 00 00 01 8b cf
      e5 68 00 00 00 01 8b cf e5 68 05 00 00 00 00 00
      00 03 e8 00 00 00 00 00 00 00 00 00 02 0e 00 00
      00 01 02 61 00 14 00 0a 02 08 6b 65 79 31 01 00";

const TS: i64 = 1_700_000_000_000;
const MAX_BATCH_BYTES: usize = 1024 * 1024 + 12;

fn hex(text: &str) -> Vec<u8> {
    text.split_whitespace().map(|b| u8::from_str_radix(b, 16).expect("hex byte")).collect()
}

fn bytes(s: &str) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(s.as_bytes()))
}

fn v1_records() -> Vec<NewRecord> {
    vec![NewRecord { timestamp: TS, key: bytes("k"), value: bytes("v"), headers: vec![] }]
}

fn v2_records() -> Vec<NewRecord> {
    vec![
        NewRecord { timestamp: TS, key: None, value: bytes("a"), headers: vec![] },
        NewRecord { timestamp: TS + 5, key: bytes("key1"), value: None, headers: vec![] },
    ]
}

fn v2_options() -> BatchOptions {
    BatchOptions { producer_id: 1000, producer_epoch: 0, base_sequence: 0, ..BatchOptions::default() }
}

/// Recomputes the CRC after a test edits a covered field.
fn fix_crc(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[header::CRC_START..]);
    batch[header::OFFSET_CRC..header::OFFSET_CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Validates `batch` and compares the outcome with `expected`.
fn check(batch: &[u8], expected: Result<(), RecordsError>) {
    assert_eq!(validate_batch(batch, MAX_BATCH_BYTES).map(|_| ()), expected);
}

#[test]
fn b1_crc32c_check_value() {
    assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
}

#[test]
fn b2_golden_v1_decodes_and_encodes_byte_for_byte() {
    let golden = hex(V1_HEX);
    assert_eq!(golden.len(), 70);
    let header = validate_batch(&golden, MAX_BATCH_BYTES).unwrap();
    assert_eq!(header.crc, 0xe99b_8dd8);
    assert_eq!((header.producer_id, header.producer_epoch, header.base_sequence), (-1, -1, -1));
    assert_eq!(header.partition_leader_epoch, -1);
    assert_eq!(
        records(&golden, 1024).unwrap(),
        vec![Record { offset: 0, timestamp: TS, key: bytes("k"), value: bytes("v"), headers: vec![] }]
    );
    assert_eq!(&encode_batch(&v1_records(), BatchOptions::default())[..], &golden[..]);
}

#[test]
fn b3_golden_v2_decodes_and_encodes_byte_for_byte() {
    let golden = hex(V2_HEX);
    assert_eq!(golden.len(), 80);
    let header = validate_batch(&golden, MAX_BATCH_BYTES).unwrap();
    assert_eq!(header.crc, 0x557d_71b1);
    assert_eq!((header.producer_id, header.producer_epoch, header.base_sequence), (1000, 0, 0));
    assert_eq!(header.last_sequence(), 1);
    assert_eq!((header.base_timestamp, header.max_timestamp), (TS, TS + 5));
    assert_eq!(
        records(&golden, 1024).unwrap(),
        vec![
            Record { offset: 0, timestamp: TS, key: None, value: bytes("a"), headers: vec![] },
            Record { offset: 1, timestamp: TS + 5, key: bytes("key1"), value: None, headers: vec![] },
        ]
    );
    assert_eq!(&encode_batch(&v2_records(), v2_options())[..], &golden[..]);
}

/// The embedded hex must stay what `shared/vectors/record-batches.txt` says, when that file is
/// beside the repository (it is in CI and on developers' machines).
#[test]
fn embedded_vectors_match_the_shared_file() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors/record-batches.txt");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("{} not found; skipping the cross-check", path.display());
        return;
    };
    let block = |name: &str| -> Vec<u8> {
        let start = text.find(name).expect("vector present");
        let hex_lines =
            text[start..].lines().skip(2).take_while(|l| l.starts_with("      ")).collect::<Vec<_>>().join(" ");
        hex(&hex_lines)
    };
    assert_eq!(block("V1:"), hex(V1_HEX));
    assert_eq!(block("V2:"), hex(V2_HEX));
}

#[test]
fn b4_bad_crc_is_a_crc_mismatch() {
    let mut batch = hex(V1_HEX);
    let last = batch.len() - 2;
    batch[last] ^= 0x01; // the value byte
    check(&batch, Err(RecordsError::CrcMismatch { expected: 0xe99b_8dd8, actual: crc32c::crc32c(&batch[21..]) }));
}

#[test]
fn b5_record_count_must_match_last_offset_delta() {
    for (count, last_offset_delta) in [(2, 0), (0, -1), (-1, -2), (1, 1), (i32::MIN, i32::MAX)] {
        let mut batch = hex(V1_HEX);
        batch[header::OFFSET_RECORDS_COUNT..][..4].copy_from_slice(&i32::to_be_bytes(count));
        batch[header::OFFSET_LAST_OFFSET_DELTA..][..4].copy_from_slice(&i32::to_be_bytes(last_offset_delta));
        fix_crc(&mut batch);
        check(&batch, Err(RecordsError::CountMismatch { count, last_offset_delta }));
    }
}

#[test]
fn b5_control_batches_are_refused() {
    let batch = encode_batch(&v1_records(), BatchOptions { control: true, ..BatchOptions::default() });
    check(&batch, Err(RecordsError::ControlBatch));
}

#[test]
fn only_magic_2_is_accepted() {
    for magic in [0i8, 1, 3, -1] {
        let mut batch = hex(V1_HEX);
        batch[header::OFFSET_MAGIC] = magic as u8;
        check(&batch, Err(RecordsError::UnsupportedMagic(magic)));
    }
}

#[test]
fn b9_unknown_codecs_are_refused_and_known_ones_pass() {
    for bits in 5..=7u8 {
        let mut batch = hex(V1_HEX);
        batch[header::OFFSET_ATTRIBUTES + 1] |= bits;
        fix_crc(&mut batch);
        check(&batch, Err(RecordsError::UnknownCompression(bits)));
    }
    for codec in Compression::ALL {
        let batch = encode_batch(&v2_records(), BatchOptions { compression: codec, ..v2_options() });
        check(&batch, Ok(()));
        assert_eq!(BatchHeader::parse(&batch).unwrap().compression_bits(), codec.bits());
    }
}

#[test]
fn p20_producer_id_needs_a_sequence() {
    let batch = encode_batch(&v1_records(), BatchOptions { producer_id: 7, base_sequence: -1, ..v2_options() });
    check(&batch, Err(RecordsError::InvalidSequence { producer_id: 7, base_sequence: -1 }));
    // No producer id: any sequence goes.
    let batch = encode_batch(&v1_records(), BatchOptions { base_sequence: -5, ..BatchOptions::default() });
    check(&batch, Ok(()));
}

#[test]
fn truncated_and_malformed_lengths() {
    let batch = hex(V1_HEX);
    check(&batch[..60], Err(RecordsError::Truncated { needed: 61, available: 60 }));
    check(&batch[..69], Err(RecordsError::Truncated { needed: 70, available: 69 }));
    check(&[], Err(RecordsError::Truncated { needed: 61, available: 0 }));
    for length in [-1, 0, 48] {
        let mut bad = batch.clone();
        bad[header::OFFSET_BATCH_LENGTH..][..4].copy_from_slice(&i32::to_be_bytes(length));
        check(&bad, Err(RecordsError::InvalidLength(length)));
    }
    let mut huge = batch.clone();
    huge[header::OFFSET_BATCH_LENGTH..][..4].copy_from_slice(&i32::MAX.to_be_bytes());
    check(&huge, Err(RecordsError::Truncated { needed: 12 + i32::MAX as usize, available: 70 }));
}

#[test]
fn b11_too_large() {
    let batch = hex(V1_HEX);
    assert_eq!(validate_batch(&batch, 69), Err(RecordsError::TooLarge { size: 70, max: 69 }));
    assert!(validate_batch(&batch, 70).is_ok());
}

#[test]
fn batches_validates_each_and_fails_on_the_first_bad_one() {
    assert_eq!(batches(&[], MAX_BATCH_BYTES), Err(RecordsError::Empty));
    let mut set = hex(V1_HEX);
    set.extend_from_slice(&hex(V2_HEX));
    let found = batches(&set, MAX_BATCH_BYTES).unwrap();
    assert_eq!(found.iter().map(|b| b.range()).collect::<Vec<_>>(), vec![0..70, 70..150]);
    set[149] ^= 1;
    assert!(matches!(batches(&set, MAX_BATCH_BYTES), Err(RecordsError::CrcMismatch { .. })));
    set.truncate(100);
    assert!(matches!(batches(&set, MAX_BATCH_BYTES), Err(RecordsError::Truncated { .. })));
}

#[test]
fn batch_iter_walks_framing_and_stops_at_a_torn_tail() {
    let mut log = hex(V1_HEX);
    log.extend_from_slice(&hex(V2_HEX));
    log.extend_from_slice(&hex(V1_HEX)[..30]); // a torn write
    let mut iter = BatchIter::new(&log);
    let positions: Vec<usize> = iter.by_ref().map(|b| b.position).collect();
    assert_eq!(positions, vec![0, 70]);
    assert_eq!(iter.position(), 150);
    assert!(matches!(iter.error(), Some(RecordsError::Truncated { .. })));
    assert_eq!(iter.next(), None);
}

#[test]
fn b6_offset_and_epoch_rewrites_leave_the_crc_valid() {
    let mut batch = hex(V2_HEX);
    set_base_offset(&mut batch, 41);
    set_partition_leader_epoch(&mut batch, 7);
    let header = validate_batch(&batch, MAX_BATCH_BYTES).unwrap();
    assert_eq!((header.base_offset, header.partition_leader_epoch, header.crc), (41, 7, 0x557d_71b1));
    assert_eq!((header.last_offset(), header.next_offset()), (42, 43));
    assert!(crc_matches(&batch, &header));
    let offsets: Vec<i64> = records(&batch, 1024).unwrap().iter().map(|r| r.offset).collect();
    assert_eq!(offsets, vec![41, 42]);
}

#[test]
fn b7_log_append_time_recomputes_the_crc_of_its_own_batch_only() {
    let mut set = hex(V2_HEX);
    set.extend_from_slice(&hex(V1_HEX));
    set_log_append_time(&mut set, TS + 1000);
    let found = batches(&set, MAX_BATCH_BYTES).unwrap();
    assert!(found[0].header.is_log_append_time());
    assert_eq!(found[0].header.max_timestamp, TS + 1000);
    assert_eq!(found[1].header.crc, 0xe99b_8dd8);
}

#[test]
fn headers_offsets_wrap_instead_of_panicking() {
    let mut batch = hex(V2_HEX);
    set_base_offset(&mut batch, i64::MAX);
    let header = BatchHeader::parse(&batch).unwrap();
    assert_eq!(header.last_offset(), i64::MIN);
    assert!(records(&batch, 1024).is_ok());
}

#[test]
fn compressed_golden_records_decode_the_same() {
    for codec in Compression::ALL {
        let batch = encode_batch(&v2_records(), BatchOptions { compression: codec, ..v2_options() });
        assert_eq!(records(&batch, 1024).unwrap(), records(&hex(V2_HEX), 1024).unwrap(), "{codec:?}");
    }
}
