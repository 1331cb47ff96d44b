//! Timestamps of the records inside one batch, for ListOffsets by timestamp (L4, KIP-734).
//!
//! This is the one place the log looks inside a batch, and only for timestamp look-ups (rare
//! requests, one batch each). Records are decoded by `sluice_records::record::records`, which
//! bounds decompression; LogAppendTime batches need no decoding, since every record carries
//! the batch's maxTimestamp.
//!
//! When the records cannot be decoded (corrupt, or larger than the bound once decompressed),
//! the answer falls back to batch level: the batch's base offset with its maxTimestamp. That
//! errs early (a consumer starts at the batch start), never late.

use sluice_records::record::records;
use sluice_records::BatchHeader;

/// The most bytes one timestamp look-up may decompress a batch into.
pub const DECOMPRESSED_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Offset and timestamp of the first record in `batch` at or above `min_offset` (the log
/// start) whose timestamp is >= `target`. The caller knows `header.max_timestamp >= target`
/// and that the batch ends at or above `min_offset`.
pub fn first_at_or_after(batch: &[u8], header: &BatchHeader, target: i64, min_offset: i64) -> (i64, i64) {
    let fallback = (header.base_offset.max(min_offset), header.max_timestamp);
    if header.is_log_append_time() {
        return fallback;
    }
    match records(batch, DECOMPRESSED_BYTES_MAX) {
        Ok(decoded) => decoded
            .iter()
            .find(|r| r.timestamp >= target && r.offset >= min_offset)
            .map_or(fallback, |r| (r.offset, r.timestamp)),
        Err(e) => {
            tracing::warn!(base_offset = header.base_offset, error = %e, "timestamp look-up at batch level");
            fallback
        }
    }
}

/// Offset of the first record in `batch` whose timestamp is `timestamp` (the batch's max).
pub fn first_with_timestamp(batch: &[u8], header: &BatchHeader, timestamp: i64) -> i64 {
    if header.is_log_append_time() {
        return header.base_offset;
    }
    match records(batch, DECOMPRESSED_BYTES_MAX) {
        Ok(decoded) => decoded.iter().find(|r| r.timestamp == timestamp).map_or(header.base_offset, |r| r.offset),
        Err(e) => {
            tracing::warn!(base_offset = header.base_offset, error = %e, "max-timestamp look-up at batch level");
            header.base_offset
        }
    }
}
