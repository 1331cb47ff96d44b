//! The bounded decompressors on their own: the first byte picks the codec, the rest is input.
//!
//! Checks the bound, and (differentially) that our LZ4 frame decoder never accepts a frame
//! that `lz4_flex`'s own decoder reads differently.

#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use sluice_records::{decompress, Compression};

const MAX_BYTES: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else { return };
    let Some(codec) = Compression::from_bits(selector % 5) else { return };
    let Ok(out) = decompress(codec, input, MAX_BYTES) else { return };
    assert!(out.len() <= MAX_BYTES);
    if codec == Compression::Lz4 {
        let mut reference = Vec::new();
        lz4_flex::frame::FrameDecoder::new(input)
            .take(MAX_BYTES as u64 + 1)
            .read_to_end(&mut reference)
            .expect("a frame we accept, lz4_flex accepts");
        assert_eq!(out, reference);
    }
});
