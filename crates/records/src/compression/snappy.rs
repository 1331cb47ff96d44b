//! Snappy in xerial framing (what Kafka's Java client writes), and plain raw snappy (what
//! librdkafka may write) when the xerial magic is absent.
//!
//! ```text
//! xerial: 82 53 4e 41 50 50 59 00 | version i32 BE | compatible version i32 BE
//!         then repeated: length i32 BE | one raw snappy block of that many bytes
//! ```
//!
//! Each raw block starts with its uncompressed length (a varint); that length is checked
//! against the bound before any byte of output space is reserved for the block.

use super::{exceeded, malformed, reserve_bounded, SNAPPY_BLOCK_BYTES};
use crate::error::RecordsError;

pub(crate) const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// Magic plus the two version fields.
const XERIAL_HEADER_BYTES: usize = 16;
/// The versions `SnappyOutputStream` writes (DEFAULT_VERSION, MINIMUM_COMPATIBLE_VERSION).
const XERIAL_VERSION: i32 = 1;
const XERIAL_COMPATIBLE_VERSION: i32 = 1;

pub(super) fn decompress(input: &[u8], max_bytes: usize) -> Result<Vec<u8>, RecordsError> {
    let mut out = Vec::new();
    if input.len() >= XERIAL_MAGIC.len() && input[..XERIAL_MAGIC.len()] == XERIAL_MAGIC {
        if input.len() < XERIAL_HEADER_BYTES {
            return Err(malformed("snappy", "truncated xerial header"));
        }
        let mut rest = &input[XERIAL_HEADER_BYTES..];
        while !rest.is_empty() {
            let Some((len_bytes, tail)) = rest.split_first_chunk::<4>() else {
                return Err(malformed("snappy", "truncated xerial block length"));
            };
            let len = i32::from_be_bytes(*len_bytes);
            let len = usize::try_from(len).map_err(|_| malformed("snappy", "negative xerial block length"))?;
            if len > tail.len() {
                return Err(malformed("snappy", "xerial block runs past the end of the input"));
            }
            let (block, tail) = tail.split_at(len);
            decompress_block(block, &mut out, max_bytes)?;
            rest = tail;
        }
    } else if !input.is_empty() {
        decompress_block(input, &mut out, max_bytes)?;
    }
    Ok(out)
}

/// Appends the decompression of one raw snappy block to `out`.
fn decompress_block(block: &[u8], out: &mut Vec<u8>, max_bytes: usize) -> Result<(), RecordsError> {
    let len = snap::raw::decompress_len(block).map_err(|e| malformed("snappy", &e.to_string()))?;
    if len > max_bytes - out.len() {
        return Err(exceeded(max_bytes));
    }
    reserve_bounded(out, len, max_bytes);
    let start = out.len();
    out.resize(start + len, 0);
    let written = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(|e| malformed("snappy", &e.to_string()))?;
    if written != len {
        return Err(malformed("snappy", "block shorter than its declared length"));
    }
    Ok(())
}

pub(super) fn compress(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(XERIAL_HEADER_BYTES + snap::raw::max_compress_len(input.len()) + 16);
    out.extend_from_slice(&XERIAL_MAGIC);
    out.extend_from_slice(&XERIAL_VERSION.to_be_bytes());
    out.extend_from_slice(&XERIAL_COMPATIBLE_VERSION.to_be_bytes());
    let mut encoder = snap::raw::Encoder::new();
    for chunk in input.chunks(SNAPPY_BLOCK_BYTES) {
        let block = encoder.compress_vec(chunk).expect("a 32 KiB chunk is within snappy's limits");
        let len = i32::try_from(block.len()).expect("a compressed 32 KiB chunk fits an i32");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&block);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_snappy_without_magic_is_accepted() {
        let data = b"librdkafka may send plain raw snappy, hello hello hello hello".repeat(10);
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(decompress(&raw, data.len()).unwrap(), data);
        assert!(decompress(&raw, data.len() - 1).is_err());
    }

    #[test]
    fn xerial_with_several_blocks() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let packed = compress(&data);
        assert_eq!(decompress(&packed, data.len()).unwrap(), data);
    }

    #[test]
    fn empty_inputs() {
        assert_eq!(decompress(&[], 0).unwrap(), Vec::<u8>::new());
        assert_eq!(decompress(&compress(&[]), 0).unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn malformed_xerial_is_refused() {
        let packed = compress(b"some bytes to pack, some bytes to pack");
        // Header cut short.
        assert!(decompress(&packed[..12], 1000).is_err());
        // A block length cut short.
        assert!(decompress(&packed[..18], 1000).is_err());
        // A block cut short.
        assert!(decompress(&packed[..packed.len() - 1], 1000).is_err());
        // A negative block length.
        let mut negative = packed.clone();
        negative[16..20].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(decompress(&negative, 1000).is_err());
        // A block that claims a huge uncompressed length: refused before reserving anything.
        let mut huge = XERIAL_MAGIC.to_vec();
        huge.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(matches!(decompress(&huge, 1 << 20), Err(RecordsError::Decompression(m)) if m.contains("bound")));
    }
}
