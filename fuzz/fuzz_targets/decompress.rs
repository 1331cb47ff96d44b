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
        match lz4_flex_reference(input) {
            Ok(reference) => assert_eq!(out, reference),
            // lz4_flex reports skippable frames as errors; the frame format (and we) skip them.
            Err(e)
                if matches!(
                    e.get_ref().and_then(|e| e.downcast_ref::<lz4_flex::frame::Error>()),
                    Some(lz4_flex::frame::Error::SkippableFrame(_))
                ) => {}
            Err(e) => panic!("a frame we accept, lz4_flex refuses: {e:?}"),
        }
    }
});

/// `lz4_flex`'s frame decoder, read to the end of the input. Its `read` returns 0 for a block
/// that decodes to nothing, which `read_to_end` would take for the end of the stream, so keep
/// reading while input remains (each read consumes at least a block header, so this ends).
fn lz4_flex_reference(input: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut decoder = lz4_flex::frame::FrameDecoder::new(input);
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut stalls = 0;
    loop {
        match decoder.read(&mut chunk)? {
            0 if decoder.get_ref().is_empty() || stalls > input.len() => return Ok(out),
            0 => stalls += 1,
            n => {
                out.extend_from_slice(&chunk[..n]);
                if out.len() > MAX_BYTES {
                    return Ok(out);
                }
            }
        }
    }
}
