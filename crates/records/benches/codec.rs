//! Micro-benchmarks of the record-batch codec on the produce path: what the broker does per
//! batch (framing + CRC32C validation, the in-place base-offset rewrite) and what a producer
//! does (encode, compress). Run: `cargo bench -p sluice-records --bench codec`.
//!
//! The broker-side figures are the per-batch cost the protocol demands; nothing here looks at
//! individual records, and neither does the broker.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use sluice_records::{batches, compress, encode_batch, header, BatchOptions, Compression, NewRecord};

/// A producer-sized batch: `n` records of `size` bytes (compressible text, like JSON events).
fn records(n: usize, size: usize) -> Vec<NewRecord> {
    (0..n)
        .map(|i| NewRecord {
            timestamp: 1_700_000_000_000 + i as i64,
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(format!("{{\"event\":{i},\"payload\":\"{}\"}}", "x".repeat(size)))),
            headers: Vec::new(),
        })
        .collect()
}

fn broker_side(c: &mut Criterion) {
    let batch = encode_batch(&records(16, 1000), BatchOptions::default()).freeze();
    let mut g = c.benchmark_group("broker");
    g.throughput(Throughput::Bytes(batch.len() as u64));
    g.bench_function("validate 16 KiB batch (framing + CRC32C)", |b| {
        b.iter(|| batches(std::hint::black_box(&batch), 1 << 20).unwrap())
    });
    g.bench_function("rewrite base offset in place", |b| {
        b.iter_batched_ref(
            || batch.to_vec(),
            |bytes| header::set_base_offset(bytes, std::hint::black_box(42)),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn producer_side(c: &mut Criterion) {
    let recs = records(16, 1000);
    let plain = encode_batch(&recs, BatchOptions::default());
    let mut g = c.benchmark_group("producer");
    g.throughput(Throughput::Bytes(plain.len() as u64));
    g.bench_function("encode 16 x 1 KiB", |b| {
        b.iter(|| encode_batch(std::hint::black_box(&recs), BatchOptions::default()))
    });
    for codec in [Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
        g.bench_function(format!("compress {codec:?}"), |b| {
            b.iter(|| compress(codec, std::hint::black_box(&plain[61..])))
        });
    }
    g.finish();
}

criterion_group!(benches, broker_side, producer_side);
criterion_main!(benches);
