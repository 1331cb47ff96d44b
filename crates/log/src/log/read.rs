//! Reads: fetch, bytes available, and look-ups by timestamp.
//!
//! A read serves bytes from ONE segment (as Kafka does), from the start of the batch holding
//! the fetch offset, bounded by `max_bytes` and by the high watermark's byte position. It
//! walks batch headers only; the timestamp look-ups alone peek into one batch's records.

use std::cmp::Ordering;

use bytes::Bytes;

use crate::error::LogError;
use crate::record_scan;
use crate::segment::{BatchLocation, Segment};
use crate::slice::FileSlice;

use super::PartitionLog;

impl PartitionLog {
    /// How many bytes of `segment` lie below the high watermark.
    fn readable_limit(&self, segment: &Segment) -> u64 {
        match segment.base_offset().cmp(&self.hw_position.segment_base) {
            Ordering::Less => segment.size(),
            Ordering::Equal => self.hw_position.position,
            Ordering::Greater => 0,
        }
    }

    fn check_range(&self, offset: i64) -> Result<(), LogError> {
        if offset < self.log_start_offset || offset > self.log_end_offset {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: self.log_end_offset,
            });
        }
        Ok(())
    }

    /// The segment, position and size of the batch holding `offset` (below the high
    /// watermark), with the segment's readable limit.
    fn locate(&self, offset: i64) -> Result<Option<(&Segment, u64, u64, u64)>, LogError> {
        let Some((&floor, _)) = self.segments.range(..=offset).next_back() else {
            return Ok(None);
        };
        for segment in self.segments.range(floor..).map(|(_, s)| s) {
            let limit = self.readable_limit(segment);
            if limit == 0 {
                break;
            }
            let found = self.fail_on_err(segment.find_batch(offset, limit))?;
            if let Some((position, header)) = found {
                return Ok(Some((segment, position, header.total_bytes() as u64, limit)));
            }
        }
        Ok(None)
    }

    /// Where the bytes of a read from `fetch_offset` lie (see `PartitionLog::read`).
    pub(super) fn locate_records(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
    ) -> Result<FileSlice, LogError> {
        self.check_range(fetch_offset)?;
        if fetch_offset >= self.high_watermark {
            return Ok(FileSlice::empty());
        }
        let Some((segment, start, first_batch_bytes, limit)) = self.locate(fetch_offset)? else {
            return Ok(FileSlice::empty());
        };
        let mut end = start.saturating_add(max_bytes as u64).min(limit);
        if min_one_batch {
            // KIP-74: the first batch whole, even past max_bytes (it ends by the limit).
            end = end.max(start + first_batch_bytes);
        }
        if end <= start {
            return Ok(FileSlice::empty());
        }
        Ok(FileSlice::new(segment.log_file().clone(), start, end - start))
    }

    /// Reads a slice this log handed out, under its lock (a failure marks the log failed).
    pub(super) fn read_slice_now(&self, slice: &FileSlice) -> Result<Bytes, LogError> {
        if slice.is_empty() {
            return Ok(Bytes::new());
        }
        self.fail_on_err(slice.read().map_err(|e| LogError::Io { path: self.dir().display().to_string(), source: e }))
    }

    pub(super) fn readable_bytes(&self, fetch_offset: i64) -> Result<u64, LogError> {
        if self.check_range(fetch_offset).is_err() || fetch_offset >= self.high_watermark {
            return Ok(0);
        }
        let Some((segment, start, _, limit)) = self.locate(fetch_offset)? else {
            return Ok(0);
        };
        let later: u64 = self
            .segments
            .range(segment.base_offset() + 1..)
            .map(|(_, s)| self.readable_limit(s))
            .take_while(|&bytes| bytes > 0)
            .sum();
        Ok(limit - start + later)
    }

    /// Records below the log start (moved inside a segment by DeleteRecords) are skipped, as
    /// in Kafka's `findOffsetByTimestamp(timestamp, logStartOffset)`.
    pub(super) fn find_offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>, LogError> {
        let start = self.log_start_offset;
        for segment in self.segments.values() {
            let limit = self.readable_limit(segment);
            if limit == 0 {
                break;
            }
            if segment.next_offset() <= start || segment.max_timestamp().is_none_or(|(max, _)| max < timestamp) {
                continue;
            }
            let from = segment.position_for_timestamp(timestamp);
            let found = self.fail_on_err(
                segment.walk(from, limit, |_, h| h.max_timestamp >= timestamp && h.last_offset() >= start),
            )?;
            if let Some((position, header)) = found {
                let batch = self.fail_on_err(segment.read(position, position + header.total_bytes() as u64))?;
                return Ok(Some(record_scan::first_at_or_after(&batch, &header, timestamp, start)));
            }
        }
        Ok(None)
    }

    pub(super) fn find_max_timestamp(&self) -> Result<Option<(i64, i64)>, LogError> {
        let mut best: Option<(i64, &Segment, BatchLocation)> = None;
        for segment in self.segments.values() {
            let limit = self.readable_limit(segment);
            if limit == 0 {
                break;
            }
            let Some(candidate) = self.segment_max_below_hw(segment, limit)? else {
                continue;
            };
            // Strictly larger: on a tie the earlier batch wins.
            if best.is_none_or(|(ts, _, _)| candidate.0 > ts) {
                best = Some((candidate.0, segment, candidate.1));
            }
        }
        let Some((timestamp, segment, at)) = best else {
            return Ok(None);
        };
        let batch = self.fail_on_err(segment.read(at.position, at.position + at.size))?;
        let Some(header) = sluice_records::BatchHeader::parse(&batch) else {
            return Ok(Some((at.base_offset, timestamp)));
        };
        Ok(Some((record_scan::first_with_timestamp(&batch, &header, timestamp), timestamp)))
    }

    /// The segment's largest batch maxTimestamp among batches below the high watermark.
    /// Usually the segment's own bookkeeping; a header walk only when that batch is above it.
    fn segment_max_below_hw(&self, segment: &Segment, limit: u64) -> Result<Option<(i64, BatchLocation)>, LogError> {
        let Some((timestamp, at)) = segment.max_timestamp() else {
            return Ok(None);
        };
        if at.position + at.size <= limit {
            return Ok(Some((timestamp, at)));
        }
        let mut best: Option<(i64, BatchLocation)> = None;
        self.fail_on_err(segment.walk(0, limit, |position, h| {
            if best.is_none_or(|(ts, _)| h.max_timestamp > ts) {
                let size = h.total_bytes() as u64;
                best = Some((
                    h.max_timestamp,
                    BatchLocation { base_offset: h.base_offset, last_offset: h.last_offset(), position, size },
                ));
            }
            false
        }))?;
        Ok(best)
    }
}
