//! Micro-benchmarks of the partition log on the real file system (a temporary directory, page
//! cache): appending producer batches, and what a fetch costs before and after the zero-copy
//! change — locating a 1 MiB slice (`read_slice`, what the broker does now; the bytes then go out
//! with sendfile) against reading the same bytes into memory (`read`, what it did before).
//! Run: `cargo bench -p sluice-log --bench log`.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluice_log::{FsStorage, LogConfig, PartitionLog};
use sluice_records::{encode_batch, BatchOptions, NewRecord};

fn batch(n: usize, size: usize) -> Bytes {
    let records: Vec<NewRecord> = (0..n)
        .map(|i| NewRecord {
            timestamp: 1_700_000_000_000 + i as i64,
            key: None,
            value: Some(Bytes::from(vec![b'v'; size])),
            headers: Vec::new(),
        })
        .collect();
    encode_batch(&records, BatchOptions::default()).freeze()
}

fn open(dir: &tempfile::TempDir) -> PartitionLog {
    let config = LogConfig { retention_ms: -1, ..LogConfig::default() };
    PartitionLog::open(Arc::new(FsStorage), dir.path().join("bench-0"), config, 1_700_000_000_000).unwrap()
}

fn append(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(&dir);
    let one = batch(16, 1024);
    let mut g = c.benchmark_group("append");
    g.throughput(Throughput::Bytes(one.len() as u64));
    g.bench_function("16 KiB batch (page cache)", |b| {
        b.iter(|| {
            let mut bytes = BytesMut::from(&one[..]);
            log.append(&mut bytes, 0, 1_700_000_000_000).unwrap();
            let end = log.log_end_offset();
            log.advance_high_watermark(end);
        })
    });
    g.finish();
}

fn fetch(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(&dir);
    let one = batch(16, 1024);
    for _ in 0..512 {
        let mut bytes = BytesMut::from(&one[..]);
        log.append(&mut bytes, 0, 1_700_000_000_000).unwrap();
    }
    let end = log.log_end_offset();
    log.advance_high_watermark(end);
    let mut g = c.benchmark_group("fetch 1 MiB");
    g.throughput(Throughput::Bytes(1 << 20));
    g.bench_function("read_slice (locate only; sent with sendfile)", |b| {
        b.iter(|| log.read_slice(std::hint::black_box(1600), 1 << 20, true).unwrap())
    });
    g.bench_function("read (copy into memory, the old path)", |b| {
        b.iter(|| log.read(std::hint::black_box(1600), 1 << 20, true).unwrap())
    });
    g.finish();
}

criterion_group!(benches, append, fetch);
criterion_main!(benches);
