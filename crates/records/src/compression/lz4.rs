//! A bounded LZ4 frame decoder (<https://github.com/lz4/lz4/blob/dev/doc/lz4_Frame_format.md>).
//!
//! Why not `lz4_flex::frame::FrameDecoder`: it reserves two block buffers sized by the frame
//! header (up to 2 × 4 MiB plus a 64 KiB window) before reading a byte of data, so a 7-byte
//! header costs 8 MiB whatever the caller's bound. This decoder writes blocks straight into the
//! output and never reserves more than the bound; `lz4_flex` still does the block decoding and
//! the encoding, and the tests check that both decoders agree.
//!
//! ```text
//! frame:  magic 04 22 4d 18 | FLG | BD | [content size u64 LE] | [dict id u32 LE] | HC
//!         then blocks: size u32 LE (high bit: stored uncompressed; 0: end mark)
//!                      | data | [block checksum u32 LE]
//!         then [content checksum u32 LE]
//! FLG:    version(2 bits, = 01) | block independence | block checksum | content size
//!         | content checksum | reserved (0) | dict id
//! BD:     reserved (0) | block max size (3 bits: 4 = 64 KiB .. 7 = 4 MiB) | reserved (0000)
//! HC:     second byte of xxh32(FLG..dict id, seed 0)
//! ```
//!
//! Frames may be concatenated and skippable frames (magic `0x184D2A5?`) are skipped.
//! Dictionaries are refused: no Kafka client uses them.

use twox_hash::XxHash32;

use super::{exceeded, malformed, reserve_bounded};
use crate::error::RecordsError;

const MAGIC: u32 = 0x184D_2204;
const SKIPPABLE_MAGIC: u32 = 0x184D_2A50;
const SKIPPABLE_MAGIC_MASK: u32 = 0xFFFF_FFF0;

const FLG_VERSION_MASK: u8 = 0b1100_0000;
const FLG_VERSION_01: u8 = 0b0100_0000;
const FLG_BLOCK_INDEPENDENCE: u8 = 0b0010_0000;
const FLG_BLOCK_CHECKSUM: u8 = 0b0001_0000;
const FLG_CONTENT_SIZE: u8 = 0b0000_1000;
const FLG_CONTENT_CHECKSUM: u8 = 0b0000_0100;
const FLG_RESERVED: u8 = 0b0000_0010;
const FLG_DICT_ID: u8 = 0b0000_0001;
const BD_RESERVED: u8 = 0b1000_1111;

const BLOCK_UNCOMPRESSED: u32 = 0x8000_0000;
/// How far back a match may reach, and so how much earlier output a linked block needs.
const WINDOW_BYTES: usize = 64 * 1024;

/// Reads a little-endian u32 at the front of `rest` and advances past it.
fn take_u32(rest: &mut &[u8], what: &str) -> Result<u32, RecordsError> {
    let Some((bytes, tail)) = rest.split_first_chunk::<4>() else {
        return Err(malformed("lz4", &format!("truncated {what}")));
    };
    *rest = tail;
    Ok(u32::from_le_bytes(*bytes))
}

fn take<'a>(rest: &mut &'a [u8], len: usize, what: &str) -> Result<&'a [u8], RecordsError> {
    if rest.len() < len {
        return Err(malformed("lz4", &format!("truncated {what}")));
    }
    let (head, tail) = rest.split_at(len);
    *rest = tail;
    Ok(head)
}

pub(super) fn decompress(input: &[u8], max_bytes: usize) -> Result<Vec<u8>, RecordsError> {
    let mut out = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        let magic = take_u32(&mut rest, "frame magic")?;
        if magic & SKIPPABLE_MAGIC_MASK == SKIPPABLE_MAGIC {
            let len = take_u32(&mut rest, "skippable frame size")?;
            take(&mut rest, len as usize, "skippable frame")?;
            continue;
        }
        if magic != MAGIC {
            return Err(malformed("lz4", "bad frame magic"));
        }
        decompress_frame(&mut rest, &mut out, max_bytes)?;
    }
    Ok(out)
}

/// Decodes one frame after its magic, appending to `out`.
fn decompress_frame(rest: &mut &[u8], out: &mut Vec<u8>, max_bytes: usize) -> Result<(), RecordsError> {
    let descriptor_start = *rest;
    let &[flg, bd] = take(rest, 2, "frame descriptor")? else { unreachable!("took two bytes") };
    if flg & FLG_VERSION_MASK != FLG_VERSION_01 {
        return Err(malformed("lz4", "unsupported frame version"));
    }
    if flg & FLG_RESERVED != 0 || bd & BD_RESERVED != 0 {
        return Err(malformed("lz4", "reserved descriptor bits set"));
    }
    let block_max_bytes = match (bd >> 4) & 0x7 {
        4 => 64 * 1024,
        5 => 256 * 1024,
        6 => 1024 * 1024,
        7 => 4 * 1024 * 1024,
        _ => return Err(malformed("lz4", "invalid block max size")),
    };
    let content_size = if flg & FLG_CONTENT_SIZE != 0 {
        let bytes = take(rest, 8, "content size")?;
        Some(u64::from_le_bytes(bytes.try_into().expect("8 bytes")))
    } else {
        None
    };
    if flg & FLG_DICT_ID != 0 {
        return Err(malformed("lz4", "dictionary frames are not supported"));
    }
    let descriptor = &descriptor_start[..descriptor_start.len() - rest.len()];
    let header_checksum = take(rest, 1, "header checksum")?[0];
    if header_checksum != (XxHash32::oneshot(0, descriptor) >> 8) as u8 {
        return Err(malformed("lz4", "header checksum mismatch"));
    }
    if let Some(size) = content_size {
        // Refuse early; the size is never used to reserve memory.
        if size > (max_bytes - out.len()) as u64 {
            return Err(exceeded(max_bytes));
        }
    }

    let frame_start = out.len();
    let linked = flg & FLG_BLOCK_INDEPENDENCE == 0;
    loop {
        let size = take_u32(rest, "block size")?;
        if size == 0 {
            break;
        }
        let stored = size & BLOCK_UNCOMPRESSED != 0;
        let len = (size & !BLOCK_UNCOMPRESSED) as usize;
        if len > block_max_bytes {
            return Err(malformed("lz4", "block larger than the frame's block max size"));
        }
        let block = take(rest, len, "block")?;
        if flg & FLG_BLOCK_CHECKSUM != 0 {
            let checksum = take_u32(rest, "block checksum")?;
            if checksum != XxHash32::oneshot(0, block) {
                return Err(malformed("lz4", "block checksum mismatch"));
            }
        }
        if stored {
            if len > max_bytes - out.len() {
                return Err(exceeded(max_bytes));
            }
            reserve_bounded(out, len, max_bytes);
            out.extend_from_slice(block);
        } else {
            decompress_block(block, linked, frame_start, block_max_bytes, out, max_bytes)?;
        }
    }
    if flg & FLG_CONTENT_CHECKSUM != 0 {
        let checksum = take_u32(rest, "content checksum")?;
        if checksum != XxHash32::oneshot(0, &out[frame_start..]) {
            return Err(malformed("lz4", "content checksum mismatch"));
        }
    }
    if let Some(size) = content_size {
        if size != (out.len() - frame_start) as u64 {
            return Err(malformed("lz4", "content size mismatch"));
        }
    }
    Ok(())
}

/// Decodes one compressed block onto the end of `out`. A block never decodes to more than the
/// frame's block max size, so room for `min(block max, what the bound leaves)` is enough; when
/// that room is the bound's and it runs out, the bound is what was exceeded.
fn decompress_block(
    block: &[u8],
    linked: bool,
    frame_start: usize,
    block_max_bytes: usize,
    out: &mut Vec<u8>,
    max_bytes: usize,
) -> Result<(), RecordsError> {
    let left = max_bytes - out.len();
    let room = block_max_bytes.min(left);
    reserve_bounded(out, room, max_bytes);
    let start = out.len();
    out.resize(start + room, 0);
    let (earlier, target) = out.split_at_mut(start);
    let result = if linked {
        // Linked blocks may refer back up to 64 KiB into this frame's earlier output.
        let dict = &earlier[frame_start.max(start.saturating_sub(WINDOW_BYTES))..];
        lz4_flex::block::decompress_into_with_dict(block, target, dict)
    } else {
        lz4_flex::block::decompress_into(block, target)
    };
    match result {
        Ok(written) => {
            out.truncate(start + written);
            Ok(())
        }
        Err(lz4_flex::block::DecompressError::OutputTooSmall { .. }) if room < block_max_bytes => {
            out.truncate(start);
            Err(exceeded(max_bytes))
        }
        Err(e) => {
            out.truncate(start);
            Err(malformed("lz4", &e.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use lz4_flex::frame::{BlockMode, BlockSize, FrameDecoder, FrameEncoder, FrameInfo};

    use super::*;

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| ((i / 7) % 13) as u8 ^ ((i % 256) as u8 / 64)).collect()
    }

    fn encode(info: FrameInfo, data: &[u8]) -> Vec<u8> {
        let mut encoder = FrameEncoder::with_frame_info(info, Vec::new());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn reference(frame: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        FrameDecoder::new(frame).read_to_end(&mut out)?;
        Ok(out)
    }

    fn every_frame_info(len: usize) -> Vec<FrameInfo> {
        let mut infos = Vec::new();
        for block_size in [BlockSize::Max64KB, BlockSize::Max256KB, BlockSize::Max1MB, BlockSize::Max4MB] {
            for block_mode in [BlockMode::Independent, BlockMode::Linked] {
                for checksums in [false, true] {
                    for content_size in [None, Some(len as u64)] {
                        infos.push(
                            FrameInfo::new()
                                .block_size(block_size)
                                .block_mode(block_mode)
                                .block_checksums(checksums)
                                .content_checksum(checksums)
                                .content_size(content_size),
                        );
                    }
                }
            }
        }
        infos
    }

    #[test]
    fn decodes_every_frame_layout_lz4_flex_writes() {
        for len in [0, 1, 1000, 64 * 1024, 64 * 1024 + 1, 300_000] {
            let data = sample(len);
            for info in every_frame_info(len) {
                let frame = encode(info.clone(), &data);
                assert_eq!(decompress(&frame, len).unwrap(), data, "{info:?} {len}");
                if len > 0 {
                    assert!(decompress(&frame, len - 1).is_err(), "{info:?} {len} bound");
                }
            }
        }
    }

    #[test]
    fn incompressible_data_uses_stored_blocks() {
        let data: Vec<u8> = (0..100_000u64).map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8).collect();
        let frame = encode(FrameInfo::new().block_size(BlockSize::Max64KB), &data);
        assert_eq!(decompress(&frame, data.len()).unwrap(), data);
    }

    #[test]
    fn concatenated_and_skippable_frames() {
        let mut input = encode(FrameInfo::new(), b"first frame ");
        input.extend_from_slice(&0x184D_2A53u32.to_le_bytes());
        input.extend_from_slice(&3u32.to_le_bytes());
        input.extend_from_slice(b"xyz");
        input.extend_from_slice(&encode(FrameInfo::new().content_checksum(true), b"second frame"));
        assert_eq!(decompress(&input, 100).unwrap(), b"first frame second frame");
    }

    /// Found by the `decompress` fuzz target: a lone skippable frame. The frame format says to
    /// skip it (we do); `lz4_flex`'s decoder reports it as an error instead, so the differential
    /// check in the fuzz target tolerates exactly that disagreement.
    #[test]
    fn fuzz_regression_lone_skippable_frame() {
        let input = [
            0x54, 0x2a, 0x4d, 0x18, 0x27, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x60, 0x60, 0x40, 0x82, 0x2b, 0x00,
            0x00, 0x00, 0x82, 0x76, 0x61, 0x6c, 0x75, 0x65, 0x38, 0x38, 0x20, 0x05, 0x13, 0x37, 0x20, 0x00, 0x0f, 0x08,
            0x00, 0x00, 0x35, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        ];
        assert_eq!(decompress(&input, 1024).unwrap(), Vec::<u8>::new());
        let err = reference(&input).unwrap_err();
        let inner = err.get_ref().and_then(|e| e.downcast_ref::<lz4_flex::frame::Error>());
        assert!(matches!(inner, Some(lz4_flex::frame::Error::SkippableFrame(39))), "{err:?}");
        // One byte short of the declared skip: truncated.
        assert!(decompress(&input[..input.len() - 1], 1024).is_err());
    }

    /// Found by the `decompress` fuzz target: two frames, each with a compressed block that
    /// decodes to nothing (token 0x00) before its end mark. Both frames are read in full.
    /// (`lz4_flex`'s `Read` returns 0 for the empty block, which `read_to_end` takes for EOF.)
    #[test]
    fn fuzz_regression_empty_block_then_another_frame() {
        let frame: &[u8] = &[
            0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82, // magic, FLG, BD, HC
            0x08, 0x00, 0x00, 0x80, 0x76, 0x61, 0x6c, 0x4d, 0x18, 0x60, 0x40, 0x82, // stored block
            0x08, 0x00, 0x00, 0x80, 0x76, 0x61, 0x6c, 0x7d, 0x0d, 0x20, 0x30, 0x20, // stored block
            0x01, 0x00, 0x00, 0x00, 0x00, // a compressed block decoding to nothing
            0x00, 0x00, 0x00, 0x00, // end mark
        ];
        let content = b"valM\x18`@\x82val}\r 0 ";
        let twice = [frame, frame].concat();
        assert_eq!(decompress(frame, 1024).unwrap(), content);
        assert_eq!(decompress(&twice, 1024).unwrap(), [&content[..], &content[..]].concat());
        assert_eq!(reference(&twice).unwrap(), content, "lz4_flex stops at the empty block");
    }

    #[test]
    fn every_corruption_is_an_error_or_agrees_with_lz4_flex() {
        let data = sample(5000);
        let info = FrameInfo::new().block_checksums(true).content_checksum(true).content_size(Some(5000));
        let frame = encode(info, &data);
        for at in 0..frame.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = frame.clone();
                bad[at] ^= flip;
                let ours = decompress(&bad, 1 << 20);
                if let Ok(out) = &ours {
                    assert_eq!(Some(out), reference(&bad).ok().as_ref(), "byte {at} ^ {flip:#x}");
                }
            }
            // Every truncation fails.
            assert!(decompress(&frame[..at], 1 << 20).is_err() || at == 0, "truncated at {at}");
        }
    }

    #[test]
    fn header_claims_are_not_trusted() {
        // A frame header declaring 4 MiB blocks and a huge content size, and nothing else.
        let descriptor = [FLG_VERSION_01 | FLG_BLOCK_INDEPENDENCE | FLG_CONTENT_SIZE, 0x70];
        let mut frame = MAGIC.to_le_bytes().to_vec();
        frame.extend_from_slice(&descriptor);
        let mut with_size = descriptor.to_vec();
        with_size.extend_from_slice(&u64::MAX.to_le_bytes());
        frame.extend_from_slice(&u64::MAX.to_le_bytes());
        frame.push((XxHash32::oneshot(0, &with_size) >> 8) as u8);
        let err = decompress(&frame, 1024).unwrap_err();
        assert!(err.to_string().contains("bound"), "{err}");
    }

    #[test]
    fn reserved_bits_and_dictionaries_are_refused() {
        let good = encode(FrameInfo::new(), b"hello");
        for (at, bit) in [(4, FLG_RESERVED), (4, FLG_DICT_ID), (5, 0x01), (5, 0x80), (4, 0x80)] {
            let mut bad = good.clone();
            bad[at] ^= bit;
            assert!(decompress(&bad, 100).is_err(), "byte {at} bit {bit:#x}");
        }
    }
}
