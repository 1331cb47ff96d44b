//! Arbitrary bytes through every batch entry point: `batches`, `BatchIter`, `records`.
//!
//! Beyond "no panic, no abort, no allocation past the bound", it checks that the two walkers
//! agree, and that records which decode re-encode into a batch that decodes to the same records.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_records::validate::crc_matches;
use sluice_records::{batches, encode_batch, records, BatchIter, BatchOptions, Compression, NewRecord};

const MAX_BATCH_BYTES: usize = 1 << 20;
const MAX_DECOMPRESSED_BYTES: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let validated = batches(data, MAX_BATCH_BYTES);

    let mut iter = BatchIter::new(data);
    let mut walked = Vec::new();
    for batch in iter.by_ref() {
        let bytes = &data[batch.range()];
        let header = batch.header;
        let _ = (header.last_offset(), header.next_offset(), header.last_sequence(), crc_matches(bytes, &header));
        walked.push(batch);
        let Ok(decoded) = records(bytes, MAX_DECOMPRESSED_BYTES) else { continue };
        assert_eq!(decoded.len(), header.records_count as usize);

        // Decoded records survive an encode/decode round trip.
        let codec = Compression::from_bits(header.compression_bits()).expect("records() checked the codec");
        let new: Vec<NewRecord> = decoded
            .iter()
            .map(|r| NewRecord {
                timestamp: r.timestamp,
                key: r.key.clone(),
                value: r.value.clone(),
                headers: r.headers.clone(),
            })
            .collect();
        let again = encode_batch(&new, BatchOptions { compression: codec, ..BatchOptions::default() });
        let redecoded = records(&again, usize::MAX).expect("an encoded batch decodes");
        assert_eq!(redecoded.len(), decoded.len());
        for (a, b) in redecoded.iter().zip(&decoded) {
            assert_eq!((a.timestamp, &a.key, &a.value, &a.headers), (b.timestamp, &b.key, &b.value, &b.headers));
        }
    }
    assert!(iter.position() <= data.len());

    // When every batch validates, the framing walk sees the same batches and stops cleanly.
    if let Ok(validated) = validated {
        assert_eq!(validated, walked);
        assert!(iter.error().is_none());
        assert_eq!(iter.position(), data.len());
    }

    let _ = records(data, MAX_DECOMPRESSED_BYTES);
});
