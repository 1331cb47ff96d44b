//! Property tests: encode → validate → decode round trips for random records and codecs, and
//! "never panics" for arbitrary and mutated bytes through every public decoder.

use bytes::Bytes;
use proptest::prelude::*;
use sluice_records::header::{set_base_offset, set_partition_leader_epoch};
use sluice_records::varint::{read_varint, read_varlong, write_varint, write_varlong};
use sluice_records::{
    batches, decompress, encode_batch, records, validate_batch, BatchIter, BatchOptions, Compression, NewRecord,
};

const MAX_BATCH_BYTES: usize = 1 << 20;

fn codec() -> impl Strategy<Value = Compression> {
    prop::sample::select(Compression::ALL.to_vec())
}

fn payload() -> impl Strategy<Value = Option<Bytes>> {
    prop::option::of(prop::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from))
}

fn new_record() -> impl Strategy<Value = NewRecord> {
    let header_key = prop::sample::select(vec!["", "a", "trace-id", "ключ"]).prop_map(String::from);
    (any::<i64>(), payload(), payload(), prop::collection::vec((header_key, payload()), 0..4))
        .prop_map(|(timestamp, key, value, headers)| NewRecord { timestamp, key, value, headers })
}

/// Producer fields that pass validation: no producer id, or one with a sequence.
fn options() -> impl Strategy<Value = BatchOptions> {
    (codec(), prop::option::of((0..i64::MAX, any::<i16>(), 0..i32::MAX)), prop::option::of(any::<i64>()), any::<bool>())
        .prop_map(|(compression, producer, base_timestamp, transactional)| {
            let (producer_id, producer_epoch, base_sequence) = producer.unwrap_or((-1, -1, -1));
            BatchOptions {
                compression,
                producer_id,
                producer_epoch,
                base_sequence,
                base_timestamp,
                transactional,
                ..BatchOptions::default()
            }
        })
}

proptest! {
    #[test]
    fn encode_validate_decode_round_trip(
        input in prop::collection::vec(new_record(), 1..20),
        opts in options(),
        base_offset in 0..i64::MAX / 2,
        epoch in any::<i32>(),
    ) {
        let mut batch = encode_batch(&input, opts);
        set_base_offset(&mut batch, base_offset);
        set_partition_leader_epoch(&mut batch, epoch);
        let header = validate_batch(&batch, MAX_BATCH_BYTES).unwrap();
        prop_assert_eq!(header.records_count as usize, input.len());
        prop_assert_eq!(header.compression_bits(), opts.compression.bits());
        prop_assert_eq!(header.is_transactional(), opts.transactional);
        prop_assert_eq!(header.max_timestamp, input.iter().map(|r| r.timestamp).max().unwrap());
        prop_assert_eq!(header.last_offset(), base_offset + input.len() as i64 - 1);

        let decoded = records(&batch, MAX_BATCH_BYTES).unwrap();
        prop_assert_eq!(decoded.len(), input.len());
        for (i, (got, want)) in decoded.iter().zip(&input).enumerate() {
            prop_assert_eq!(got.offset, base_offset + i as i64);
            prop_assert_eq!(got.timestamp, want.timestamp);
            prop_assert_eq!(&got.key, &want.key);
            prop_assert_eq!(&got.value, &want.value);
            prop_assert_eq!(&got.headers, &want.headers);
        }
    }

    #[test]
    fn codecs_round_trip(codec in codec(), data in prop::collection::vec(any::<u8>(), 0..4096)) {
        let packed = sluice_records::compress(codec, &data);
        prop_assert_eq!(decompress(codec, &packed, data.len()).unwrap(), data);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..512)) {
        exercise(&data);
    }

    /// Random bytes rarely get past the magic; mutating a real batch reaches the record decoder
    /// and every decompressor.
    #[test]
    fn mutated_batches_never_panic(
        input in prop::collection::vec(new_record(), 1..5),
        opts in options(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut batch = encode_batch(&input, opts).to_vec();
        for (at, byte) in edits {
            let at = at.index(batch.len());
            // Keep the framing mostly intact so the record decoder is reached.
            if at >= 17 {
                batch[at] = byte;
            }
        }
        exercise(&batch);
        exercise(&batch[..cut.index(batch.len())]);
    }

    #[test]
    fn arbitrary_compressed_bytes_never_panic(codec in codec(), data in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(out) = decompress(codec, &data, 4096) {
            prop_assert!(out.len() <= 4096);
        }
    }

    #[test]
    fn varints_round_trip(a in any::<i32>(), b in any::<i64>()) {
        let mut out = Vec::new();
        write_varint(&mut out, a);
        write_varlong(&mut out, b);
        let (x, n) = read_varint(&out).unwrap();
        let (y, m) = read_varlong(&out[n..]).unwrap();
        prop_assert_eq!((x, y, n + m), (a, b, out.len()));
    }
}

/// Runs every public entry point that takes wire bytes; only panics matter here.
fn exercise(data: &[u8]) {
    let _ = validate_batch(data, MAX_BATCH_BYTES);
    let _ = batches(data, MAX_BATCH_BYTES);
    for batch in BatchIter::new(data) {
        let _ = (batch.header.last_offset(), batch.header.next_offset(), batch.header.last_sequence());
        if let Ok(found) = records(&data[batch.range()], 64 * 1024) {
            assert!(found.len() <= data.len());
        }
    }
    let _ = records(data, 64 * 1024);
}
