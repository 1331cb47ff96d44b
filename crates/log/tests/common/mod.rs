//! Test helpers: a tiny v2 batch encoder (uncompressed, CRC32C) and log shortcuts.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use sluice_log::{AppendOutcome, LogConfig, MemStorage, PartitionLog, Storage};
use sluice_records::{BatchHeader, BatchIter};

pub const T0: i64 = 1_700_000_000_000;

/// Batch-level fields of a test batch.
#[derive(Debug, Clone, Copy)]
pub struct Producer {
    pub id: i64,
    pub epoch: i16,
    pub sequence: i32,
}

fn zigzag(out: &mut Vec<u8>, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A valid v2 batch, base offset 0, one record per timestamp with `value_bytes` of value.
pub fn encode(timestamps: &[i64], value_bytes: usize, producer: Option<Producer>) -> BytesMut {
    assert!(!timestamps.is_empty());
    let base_ts = timestamps[0];
    let mut records = Vec::new();
    for (i, ts) in timestamps.iter().enumerate() {
        let mut body = vec![0u8]; // attributes
        zigzag(&mut body, ts - base_ts);
        zigzag(&mut body, i as i64);
        zigzag(&mut body, -1); // null key
        zigzag(&mut body, value_bytes as i64);
        body.extend(std::iter::repeat_n(b'v', value_bytes));
        zigzag(&mut body, 0); // headers
        zigzag(&mut records, body.len() as i64);
        records.extend_from_slice(&body);
    }
    let p = producer.unwrap_or(Producer { id: -1, epoch: -1, sequence: -1 });
    let mut out = BytesMut::new();
    out.put_i64(0);
    out.put_i32((49 + records.len()) as i32);
    out.put_i32(-1);
    out.put_i8(2);
    out.put_u32(0); // crc placeholder
    out.put_i16(0);
    out.put_i32(timestamps.len() as i32 - 1);
    out.put_i64(base_ts);
    out.put_i64(*timestamps.iter().max().unwrap());
    out.put_i64(p.id);
    out.put_i16(p.epoch);
    out.put_i32(p.sequence);
    out.put_i32(timestamps.len() as i32);
    out.extend_from_slice(&records);
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    sluice_records::batches(&out, usize::MAX).expect("test batch must validate");
    out
}

/// `count` records at time `ts`, 10-byte values, no producer.
pub fn batch(count: usize, ts: i64) -> BytesMut {
    encode(&vec![ts; count], 10, None)
}

/// An idempotent batch of `count` records.
pub fn idem(id: i64, epoch: i16, sequence: i32, count: usize) -> BytesMut {
    encode(&vec![T0; count], 10, Some(Producer { id, epoch, sequence }))
}

pub fn dir() -> PathBuf {
    PathBuf::from("/data/topic-0")
}

pub fn small_config() -> LogConfig {
    LogConfig { segment_bytes: 1024, index_interval_bytes: 100, ..LogConfig::default() }
}

pub fn open_mem(storage: &MemStorage, config: LogConfig) -> PartitionLog {
    PartitionLog::open(Arc::new(storage.clone()), dir(), config, T0).expect("open")
}

/// Appends and raises the high watermark to the log end (page-cache mode).
pub fn append(log: &mut PartitionLog, mut records: BytesMut) -> AppendOutcome {
    let outcome = log.append(&mut records, 0, T0).expect("append");
    log.advance_high_watermark(log.log_end_offset());
    outcome
}

/// Headers of the whole batches in `bytes` (a trailing partial batch is skipped).
pub fn headers(bytes: &[u8]) -> Vec<BatchHeader> {
    BatchIter::new(bytes).map(|b| b.header).collect()
}

/// (base, last) offsets of every batch, read through `read` from the log start.
pub fn read_everything(log: &PartitionLog) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.high_watermark() {
        let result = log.read(offset, 1 << 20, true).expect("read");
        let batches: Vec<_> = BatchIter::new(&result.records).collect();
        assert!(!batches.is_empty(), "no progress at {offset}");
        for b in batches {
            assert!(sluice_records::validate::crc_matches(&result.records[b.position..], &b.header));
            out.push((b.header.base_offset, b.header.last_offset()));
            offset = b.header.next_offset();
        }
    }
    out
}

/// Bytes of a file in a MemStorage (through the Storage trait).
pub fn file_bytes(storage: &MemStorage, name: &str) -> Vec<u8> {
    storage.read_all(&dir().join(name)).expect("file")
}

/// Replaces a file's contents (not synced state: use before a reopen, not a crash).
pub fn write_file(storage: &MemStorage, name: &str, bytes: &[u8]) {
    let file = storage.open(&dir().join(name), true).expect("open");
    file.truncate(0).unwrap();
    file.append(bytes).unwrap();
}

pub fn seg(base: i64, suffix: &str) -> String {
    format!("{base:020}.{suffix}")
}
