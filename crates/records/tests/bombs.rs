//! Decompression bombs (DEPENDENCIES trap 2): 100 MiB of zeros, compressed to a few KiB or MiB,
//! must be refused at a small bound without ever allocating anything near 100 MiB.
//!
//! A counting global allocator measures the peak of live heap bytes on the test's own thread
//! while decompressing. (zstd allocates through C `malloc`, which this cannot see; its window is
//! capped by `window_log_max` instead, see `compression.rs`.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};

use sluice_records::header::{self, BATCH_HEADER_BYTES, LOG_OVERHEAD_BYTES};
use sluice_records::{decompress, encode_batch, records, BatchOptions, Compression, RecordsError};

struct Counting;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn note(delta: isize) {
    // `try_with`: the allocator also runs while thread locals are torn down.
    let _ = TRACKING.try_with(|tracking| {
        if tracking.get() {
            let live = LIVE.with(|l| {
                l.set(l.get() + delta);
                l.get()
            });
            PEAK.with(|p| p.set(p.get().max(live)));
        }
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as isize);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result and the peak of heap bytes it held at once on this thread.
fn peak_heap<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LIVE.with(|l| l.set(0));
    PEAK.with(|p| p.set(0));
    TRACKING.with(|t| t.set(true));
    let out = f();
    TRACKING.with(|t| t.set(false));
    (out, PEAK.with(|p| p.get()).max(0) as usize)
}

const BOMB_BYTES: u64 = 100 * 1024 * 1024;
const BOUND_BYTES: usize = 1024 * 1024;
/// Decoder state besides the output (gzip: 32 KiB window + inflate tables + a 32 KiB reader
/// buffer; ours: a 16 KiB stack chunk). Far below the bomb, which is the point.
const SLACK_BYTES: usize = 256 * 1024;

/// 100 MiB of zeros, compressed by streaming (nothing near 100 MiB is ever in memory).
fn bomb(codec: Compression) -> Vec<u8> {
    let mut zeros = std::io::repeat(0).take(BOMB_BYTES);
    match codec {
        Compression::Gzip => {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::copy(&mut zeros, &mut encoder).unwrap();
            encoder.finish().unwrap()
        }
        Compression::Snappy => {
            // xerial framing is a header and independent blocks: one 32 KiB block of zeros,
            // repeated, is exactly what Java's SnappyOutputStream would write.
            let packed = sluice_records::compress(Compression::Snappy, &[0u8; 32 * 1024]);
            let (header, block) = packed.split_at(16);
            let mut out = header.to_vec();
            for _ in 0..BOMB_BYTES / (32 * 1024) {
                out.extend_from_slice(block);
            }
            out
        }
        Compression::Lz4 => {
            let info = lz4_flex::frame::FrameInfo::new().block_size(lz4_flex::frame::BlockSize::Max4MB);
            let mut encoder = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
            let chunk = vec![0u8; 1024 * 1024];
            for _ in 0..BOMB_BYTES / chunk.len() as u64 {
                encoder.write_all(&chunk).unwrap();
            }
            encoder.finish().unwrap()
        }
        Compression::Zstd => {
            let mut out = Vec::new();
            zstd::stream::copy_encode(&mut zeros, &mut out, 1).unwrap();
            out
        }
        Compression::None => unreachable!("no bomb without compression"),
    }
}

/// Wraps an already-compressed payload as a batch claiming one record.
fn batch_with_payload(codec: Compression, payload: &[u8]) -> Vec<u8> {
    let mut batch = encode_batch(&[], BatchOptions { compression: codec, ..BatchOptions::default() }).to_vec();
    batch.truncate(BATCH_HEADER_BYTES);
    batch.extend_from_slice(payload);
    let length = (batch.len() - LOG_OVERHEAD_BYTES) as i32;
    batch[header::OFFSET_BATCH_LENGTH..][..4].copy_from_slice(&length.to_be_bytes());
    batch[header::OFFSET_RECORDS_COUNT..][..4].copy_from_slice(&1i32.to_be_bytes());
    batch[header::OFFSET_LAST_OFFSET_DELTA..][..4].copy_from_slice(&0i32.to_be_bytes());
    batch
}

fn assert_refused(result: Result<impl std::fmt::Debug, RecordsError>) {
    match result {
        Err(RecordsError::Decompression(message)) => assert!(message.contains("bound"), "{message}"),
        other => panic!("expected a bound error, got {other:?}"),
    }
}

#[test]
fn bombs_are_refused_at_the_bound_without_allocating_them() {
    for codec in [Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
        let packed = bomb(codec);
        assert!(packed.len() < BOMB_BYTES as usize / 20, "{codec:?}: {} bytes is no bomb", packed.len());

        let (result, peak) = peak_heap(|| decompress(codec, &packed, BOUND_BYTES));
        assert_refused(result);
        eprintln!("{codec:?}: {} compressed bytes, peak heap {peak}", packed.len());
        assert!(peak <= BOUND_BYTES + SLACK_BYTES, "{codec:?}: peak heap {peak} bytes");

        let batch = batch_with_payload(codec, &packed);
        let (result, peak) = peak_heap(|| records(&batch, BOUND_BYTES));
        assert_refused(result);
        assert!(peak <= BOUND_BYTES + SLACK_BYTES, "{codec:?} records: peak heap {peak} bytes");
    }
}

#[test]
fn a_bound_just_above_the_content_is_enough() {
    let data = vec![7u8; 3 * 1024 * 1024 + 17];
    for codec in Compression::ALL {
        let packed = sluice_records::compress(codec, &data);
        let (result, peak) = peak_heap(|| decompress(codec, &packed, data.len()));
        assert_eq!(result.unwrap().len(), data.len(), "{codec:?}");
        // The output, allocated once up to the bound, plus decoder state: never twice the output.
        assert!(peak <= data.len() + SLACK_BYTES, "{codec:?}: peak heap {peak} bytes");
    }
}

#[test]
fn the_counting_allocator_counts() {
    let (v, peak) = peak_heap(|| vec![1u8; 5000]);
    assert_eq!(v.len(), 5000);
    assert!(peak >= 5000);
}
