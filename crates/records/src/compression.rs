//! Compression codecs named by the low three attribute bits, and bounded (de)compression.
//!
//! The broker never decompresses on produce; decompression here exists for timestamp look-ups
//! inside a batch, for tests and for clients, and every path is bounded by the caller.
//!
//! Wire formats, as Kafka's Java client writes them (SEMANTICS B9):
//! - gzip: an RFC 1952 stream (several members are accepted).
//! - snappy: xerial framing (`org.xerial.snappy.SnappyOutputStream`): the magic
//!   `82 53 4e 41 50 50 59 00`, two big-endian i32 versions, then `[len i32 BE, raw snappy block]*`.
//!   Input without the magic is read as one raw snappy block, as librdkafka and xerial's own
//!   reader do.
//! - lz4: the LZ4 frame format (magic `0x184D2204`) with a correct header checksum.
//! - zstd: zstd frames.
//!
//! Invariants:
//! - [`decompress`] never produces more than `max_bytes` bytes and never allocates an output
//!   buffer larger than `max_bytes`: no size read from the input is used to reserve memory,
//!   only to refuse early. Output buffers grow by doubling, capped at the bound.
//! - Decoders hold fixed-size state besides the output: gzip its 32 KiB window; snappy and lz4
//!   none (they decode straight into the output). zstd is the one exception we cannot fully
//!   control: its window may be as large as the frame declares, so frames declaring a window
//!   above `max(bound, 8 MiB)` are refused (every zstd level up to 19 stays within 8 MiB).
//! - Decompressing never panics, whatever the input.

mod lz4;
mod snappy;

use std::io::{Read, Write};

use crate::error::RecordsError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    /// Every codec, in attribute-bit order.
    pub const ALL: [Compression; 5] =
        [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];

    pub fn from_bits(bits: u8) -> Option<Compression> {
        match bits {
            0 => Some(Compression::None),
            1 => Some(Compression::Gzip),
            2 => Some(Compression::Snappy),
            3 => Some(Compression::Lz4),
            4 => Some(Compression::Zstd),
            _ => None,
        }
    }
    pub fn bits(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }
    /// Kafka's name for the codec, as in `compression.type`.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// Smallest zstd window we always accept (8 MiB, log 23): zstd's default for every level up to
/// 19 when the content size is unknown, which is how the Java client streams.
const ZSTD_WINDOW_LOG_FLOOR: u32 = 23;
/// zstd's own default ceiling (128 MiB); larger windows need `--long` and no Kafka client uses them.
const ZSTD_WINDOW_LOG_CEILING: u32 = 27;
/// Bytes a streaming decoder is asked for at a time.
const READ_CHUNK_BYTES: usize = 16 * 1024;
/// Input bytes per xerial snappy block, as Java's `SnappyOutputStream` writes them.
pub(crate) const SNAPPY_BLOCK_BYTES: usize = 32 * 1024;

/// Decompresses `input` with `codec`, producing at most `max_bytes` bytes.
///
/// Fails with [`RecordsError::Decompression`] when the input is malformed or its output would
/// exceed `max_bytes`. `Compression::None` returns a copy of the input, under the same bound.
pub fn decompress(codec: Compression, input: &[u8], max_bytes: usize) -> Result<Vec<u8>, RecordsError> {
    match codec {
        Compression::None => {
            if input.len() > max_bytes {
                return Err(exceeded(max_bytes));
            }
            Ok(input.to_vec())
        }
        Compression::Gzip => read_bounded(flate2::read::MultiGzDecoder::new(input), max_bytes, "gzip"),
        Compression::Snappy => snappy::decompress(input, max_bytes),
        Compression::Lz4 => lz4::decompress(input, max_bytes),
        Compression::Zstd => {
            let mut decoder = zstd::stream::read::Decoder::with_buffer(input).map_err(|e| io_error("zstd", &e))?;
            decoder.window_log_max(zstd_window_log_max(max_bytes)).map_err(|e| io_error("zstd", &e))?;
            read_bounded(decoder, max_bytes, "zstd")
        }
    }
}

/// Compresses `input` with `codec` the way Kafka's Java producer does (see the module docs).
pub fn compress(codec: Compression, input: &[u8]) -> Vec<u8> {
    match codec {
        Compression::None => input.to_vec(),
        Compression::Gzip => {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(input).expect("writing to a Vec cannot fail");
            encoder.finish().expect("writing to a Vec cannot fail")
        }
        Compression::Snappy => snappy::compress(input),
        Compression::Lz4 => {
            // Java's KafkaLZ4BlockOutputStream: 64 KiB independent blocks, no checksums but the
            // header's, no content size.
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent);
            let mut encoder = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
            encoder.write_all(input).expect("writing to a Vec cannot fail");
            encoder.finish().expect("writing to a Vec cannot fail")
        }
        Compression::Zstd => zstd::stream::encode_all(input, zstd::DEFAULT_COMPRESSION_LEVEL)
            .expect("zstd compression into memory cannot fail"),
    }
}

/// The zstd window we accept for a bound: at least the bound (rounded up to a power of two),
/// never below the floor every ordinary encoder fits in, never above zstd's default ceiling.
fn zstd_window_log_max(max_bytes: usize) -> u32 {
    let log = usize::BITS - max_bytes.saturating_sub(1).leading_zeros();
    log.clamp(ZSTD_WINDOW_LOG_FLOOR, ZSTD_WINDOW_LOG_CEILING)
}

/// Reads `reader` to its end into a buffer of at most `max_bytes`, failing as soon as the
/// output would pass the bound (so a bomb costs at most `max_bytes` of output and CPU).
fn read_bounded(mut reader: impl Read, max_bytes: usize, codec: &'static str) -> Result<Vec<u8>, RecordsError> {
    let mut out = Vec::new();
    let mut chunk = [0u8; READ_CHUNK_BYTES];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error(codec, &e)),
        };
        if n > max_bytes - out.len() {
            return Err(exceeded(max_bytes));
        }
        reserve_bounded(&mut out, n, max_bytes);
        out.extend_from_slice(&chunk[..n]);
    }
}

/// Makes room for `additional` more bytes, doubling the capacity but never past `max_bytes`.
/// The caller has checked that `out.len() + additional <= max_bytes`.
pub(crate) fn reserve_bounded(out: &mut Vec<u8>, additional: usize, max_bytes: usize) {
    let needed = out.len() + additional;
    assert!(needed <= max_bytes, "reserve_bounded: {needed} > bound {max_bytes}");
    if out.capacity() >= needed {
        return;
    }
    let target = (out.capacity() * 2).max(needed).max(READ_CHUNK_BYTES).min(max_bytes);
    out.reserve_exact(target - out.len());
}

pub(crate) fn exceeded(max_bytes: usize) -> RecordsError {
    RecordsError::Decompression(format!("output exceeds the bound of {max_bytes} bytes"))
}

pub(crate) fn malformed(codec: &'static str, what: &str) -> RecordsError {
    RecordsError::Decompression(format!("{codec}: {what}"))
}

fn io_error(codec: &'static str, e: &std::io::Error) -> RecordsError {
    RecordsError::Decompression(format!("{codec}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(len: usize) -> Vec<u8> {
        // Compressible but not trivial: a repeating text with a counter in it.
        let mut out = Vec::with_capacity(len);
        let mut i = 0u32;
        while out.len() < len {
            out.extend_from_slice(format!("record-{i} value ").as_bytes());
            i += 1;
        }
        out.truncate(len);
        out
    }

    #[test]
    fn bits_and_names() {
        for (bits, codec) in Compression::ALL.iter().enumerate() {
            assert_eq!(Compression::from_bits(bits as u8), Some(*codec));
            assert_eq!(codec.bits(), bits as u8);
        }
        for bits in 5..=7 {
            assert_eq!(Compression::from_bits(bits), None);
        }
        assert_eq!(Compression::Zstd.name(), "zstd");
    }

    #[test]
    fn every_codec_round_trips() {
        for codec in Compression::ALL {
            for len in [0, 1, 100, 32 * 1024, 32 * 1024 + 1, 200_000] {
                let data = sample(len);
                let packed = compress(codec, &data);
                let unpacked = decompress(codec, &packed, len).unwrap_or_else(|e| panic!("{codec:?} {len}: {e}"));
                assert_eq!(unpacked, data, "{codec:?} {len}");
                if len > 0 {
                    assert!(decompress(codec, &packed, len - 1).is_err(), "{codec:?} {len} one under the bound");
                }
            }
        }
    }

    #[test]
    fn formats_match_kafka_framing() {
        let data = sample(1000);
        assert_eq!(&compress(Compression::Gzip, &data)[..2], &[0x1f, 0x8b]);
        let snappy = compress(Compression::Snappy, &data);
        assert_eq!(&snappy[..16], &[0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1]);
        let lz4 = compress(Compression::Lz4, &data);
        assert_eq!(&lz4[..4], &0x184D2204u32.to_le_bytes());
        // FLG: version 01, independent blocks, no checksums, no content size; BD: 64 KiB.
        assert_eq!(&lz4[4..6], &[0x60, 0x40]);
        assert_eq!(&compress(Compression::Zstd, &data)[..4], &0xFD2FB528u32.to_le_bytes());
    }

    #[test]
    fn truncated_streams_are_errors() {
        let data = sample(100_000);
        for codec in [Compression::Gzip, Compression::Lz4, Compression::Zstd] {
            let packed = compress(codec, &data);
            for cut in [1, 2, 10, packed.len() / 2, packed.len() - 4, packed.len() - 1] {
                assert!(decompress(codec, &packed[..cut], data.len()).is_err(), "{codec:?} cut at {cut}");
            }
        }
        // xerial framing has no end mark: a cut at a block boundary is a shorter valid stream,
        // and the record decoder then finds too few records. Any other cut is an error.
        let packed = compress(Compression::Snappy, &data);
        for cut in [10, 17, 20, packed.len() - 1] {
            assert!(decompress(Compression::Snappy, &packed[..cut], data.len()).is_err(), "snappy cut at {cut}");
        }
    }

    #[test]
    fn none_is_bounded_too() {
        assert_eq!(decompress(Compression::None, b"abc", 3).unwrap(), b"abc");
        assert!(decompress(Compression::None, b"abcd", 3).is_err());
    }

    #[test]
    fn garbage_is_an_error_for_every_codec() {
        for codec in [Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
            assert!(decompress(codec, b"definitely not compressed data", 1 << 20).is_err(), "{codec:?}");
        }
    }

    #[test]
    fn zstd_window_follows_the_bound() {
        assert_eq!(zstd_window_log_max(0), ZSTD_WINDOW_LOG_FLOOR);
        assert_eq!(zstd_window_log_max(1 << 20), ZSTD_WINDOW_LOG_FLOOR);
        assert_eq!(zstd_window_log_max((1 << 24) + 1), 25);
        assert_eq!(zstd_window_log_max(1 << 25), 25);
        assert_eq!(zstd_window_log_max(usize::MAX), ZSTD_WINDOW_LOG_CEILING);
    }

    #[test]
    fn reserve_never_passes_the_bound() {
        let mut out = Vec::new();
        for _ in 0..10 {
            reserve_bounded(&mut out, 1000, 10_000);
            out.extend_from_slice(&[0; 1000]);
            assert!(out.capacity() <= 10_000);
        }
    }
}
