//! Writes seed inputs for the fuzz targets in `fuzz/` (see `fuzz/README.md`):
//! `cargo run -p sluice-records --example fuzz_seeds -- fuzz/corpus`
//!
//! Random bytes rarely frame as a batch; seeds that already do let the fuzzer spend its time
//! inside the record decoder and the decompressors.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use sluice_records::header::set_log_append_time;
use sluice_records::{compress, encode_batch, BatchOptions, Compression, NewRecord};

fn record(i: usize) -> NewRecord {
    NewRecord {
        timestamp: 1_700_000_000_000 + i as i64,
        key: (!i.is_multiple_of(3)).then(|| Bytes::from(format!("key-{i}"))),
        value: (i % 4 != 1).then(|| Bytes::from(format!("value {i} ").repeat(i % 5 + 1))),
        headers: (0..i % 3).map(|h| (format!("h{}", h % 2), (h != 1).then(|| Bytes::from_static(b"hv")))).collect(),
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).unwrap_or_else(|e| panic!("writing {name}: {e}"));
}

fn main() {
    let root = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "fuzz/corpus".into()));
    let batches_dir = root.join("batch_validator");
    let decompress_dir = root.join("decompress");
    std::fs::create_dir_all(&batches_dir).expect("create corpus dir");
    std::fs::create_dir_all(&decompress_dir).expect("create corpus dir");

    let mut log = Vec::new();
    for codec in Compression::ALL {
        for count in [1, 2, 7] {
            let records: Vec<NewRecord> = (0..count).map(record).collect();
            let idempotent = BatchOptions {
                compression: codec,
                producer_id: 1000,
                producer_epoch: 0,
                base_sequence: 5,
                ..BatchOptions::default()
            };
            let batch = encode_batch(&records, idempotent);
            write(&batches_dir, &format!("{}-{count}", codec.name()), &batch);
            log.extend_from_slice(&batch);

            let mut appended = encode_batch(&records, BatchOptions { compression: codec, ..BatchOptions::default() });
            set_log_append_time(&mut appended, 1_800_000_000_000);
            write(&batches_dir, &format!("{}-{count}-log-append-time", codec.name()), &appended);

            let body: Vec<u8> = records.iter().flat_map(|r| r.value.clone().unwrap_or_default()).collect();
            let mut input = vec![codec.bits()];
            input.extend_from_slice(&compress(codec, &body));
            write(&decompress_dir, &format!("{}-{count}", codec.name()), &input);
        }
    }
    write(&batches_dir, "log-of-every-codec", &log);

    // Raw snappy without xerial framing, as librdkafka may send it.
    let mut raw = vec![Compression::Snappy.bits()];
    raw.extend_from_slice(&snap::raw::Encoder::new().compress_vec(&b"raw snappy ".repeat(20)).unwrap());
    write(&decompress_dir, "snappy-raw", &raw);
    println!("seeds written under {}", root.display());
}
