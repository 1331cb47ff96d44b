//! Property test: random appends, reads, syncs, retention, clean reopens and crashes agree
//! with a simple model (a list of batches with their stored bytes).

mod common;

use bytes::Bytes;
use common::*;
use proptest::prelude::*;
use sluice_log::{LogConfig, LogError, MemStorage, PartitionLog};

#[derive(Debug, Clone)]
enum Op {
    Append { records: usize, value_bytes: usize, advance: bool },
    Read { pick: usize, max_bytes: usize, min_one_batch: bool },
    Sync,
    Retention { retention_bytes: i64 },
    Reopen { clean: bool },
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1usize..6, 0usize..60, any::<bool>()).prop_map(|(records, value_bytes, advance)| Op::Append { records, value_bytes, advance }),
        4 => (any::<usize>(), 0usize..1500, any::<bool>()).prop_map(|(pick, max_bytes, min_one_batch)| Op::Read { pick, max_bytes, min_one_batch }),
        1 => Just(Op::Sync),
        1 => (500i64..4000).prop_map(|retention_bytes| Op::Retention { retention_bytes }),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
        1 => Just(Op::Crash),
    ]
}

/// The stored batches, oldest first: (base offset, next offset, bytes).
#[derive(Default)]
struct Model {
    batches: Vec<(i64, i64, Bytes)>,
    high_watermark: i64,
    /// Offset up to which a sync made the log durable.
    synced: i64,
    /// The log start when no batch is left (moved only by retention).
    empty_start: i64,
}

impl Model {
    fn log_end_offset(&self) -> i64 {
        self.batches.last().map_or(self.log_start(), |b| b.1)
    }
    fn log_start(&self) -> i64 {
        self.batches.first().map_or(self.empty_start, |b| b.0)
    }
    /// Keeps batches below `offset` (a batch boundary).
    fn truncate(&mut self, offset: i64) {
        self.batches.retain(|b| b.1 <= offset);
        self.high_watermark = offset;
    }
}

fn config() -> LogConfig {
    LogConfig { segment_bytes: 700, index_interval_bytes: 150, retention_ms: -1, ..LogConfig::default() }
}

fn check_read(log: &PartitionLog, model: &Model, offset: i64, max_bytes: usize, min_one_batch: bool) {
    let result = log.read(offset, max_bytes, min_one_batch);
    if offset < model.log_start() || offset > model.log_end_offset() {
        assert!(matches!(result, Err(LogError::OffsetOutOfRange { .. })), "offset {offset}: {result:?}");
        return;
    }
    let records = result.expect("read").records;
    if offset >= model.high_watermark {
        assert!(records.is_empty());
        return;
    }
    let first = model.batches.iter().position(|b| b.0 <= offset && offset < b.1).expect("a batch holds it");
    let visible: Vec<u8> =
        model.batches[first..].iter().filter(|b| b.1 <= model.high_watermark).flat_map(|b| b.2.to_vec()).collect();
    let first_len = model.batches[first].2.len();
    let limit = if min_one_batch { max_bytes.max(first_len) } else { max_bytes };
    assert!(records.len() <= limit, "{} > {limit}", records.len());
    assert_eq!(&records[..], &visible[..records.len()], "bytes from offset {offset}");
    if max_bytes > 0 || min_one_batch {
        assert!(!records.is_empty(), "progress at offset {offset}");
    }
    if min_one_batch {
        assert!(records.len() >= first_len, "first batch whole");
    }
}

fn run(ops: Vec<Op>) {
    let mut storage = MemStorage::new();
    let mut log = open_mem(&storage, config());
    let mut model = Model::default();
    for op in ops {
        match op {
            Op::Append { records, value_bytes, advance } => {
                let mut set = encode(&vec![T0; records], value_bytes, None);
                let outcome = log.append(&mut set, 0, T0).expect("append");
                assert_eq!(outcome.base_offset, model.log_end_offset());
                model.batches.push((outcome.base_offset, outcome.last_offset + 1, set.freeze()));
                if advance {
                    log.advance_high_watermark(log.log_end_offset());
                    model.high_watermark = model.log_end_offset();
                }
            }
            Op::Read { pick, max_bytes, min_one_batch } => {
                let span = (model.log_end_offset() - model.log_start() + 3) as usize;
                let offset = model.log_start() - 1 + (pick % span) as i64;
                check_read(&log, &model, offset, max_bytes, min_one_batch);
            }
            Op::Sync => {
                let handle = log.flush_handle();
                handle.sync().unwrap();
                model.synced = model.synced.max(handle.upto_offset);
            }
            Op::Retention { retention_bytes } => {
                log.set_config(LogConfig { retention_bytes, ..config() });
                log.enforce_retention(T0).unwrap();
                log.set_config(config());
                let start = log.log_start_offset();
                assert!(start <= model.high_watermark);
                assert!(
                    start == model.log_end_offset() || model.batches.iter().any(|b| b.0 == start),
                    "start {start} at a batch"
                );
                model.batches.retain(|b| b.0 >= start);
                model.empty_start = start;
            }
            Op::Reopen { clean } => {
                if clean {
                    log.close().unwrap();
                }
                drop(log);
                log = open_mem(&storage, config());
                // Everything on "disk" (page cache included) is back, and synced by close or
                // by the recovering open; HW = LEO.
                model.high_watermark = model.log_end_offset();
                model.synced = model.log_end_offset();
            }
            Op::Crash => {
                // Rolls sync the segment they close: all below the active segment survives.
                let active_base = *log.segment_base_offsets().last().unwrap();
                let durable = model.synced.max(active_base).min(model.log_end_offset());
                drop(log);
                storage = storage.crash();
                log = open_mem(&storage, config());
                model.truncate(durable);
                model.synced = durable;
            }
        }
        assert_eq!(log.log_end_offset(), model.log_end_offset());
        assert_eq!(log.high_watermark(), model.high_watermark);
        assert_eq!(log.log_start_offset(), model.log_start());
        assert_eq!(log.size_bytes(), model.batches.iter().map(|b| b.2.len() as u64).sum::<u64>());
    }
    for offset in model.log_start()..model.log_end_offset() {
        check_read(&log, &model, offset, 1, true);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn log_agrees_with_a_model(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops);
    }
}
