//! Retention (L8) and time-based rolling (L7).
//!
//! Only whole segments are deleted, oldest first, and only while each one's upper bound (the
//! next segment's base offset, or the log end) is at or below the high watermark. Time
//! retention runs first, then size retention on what is left, as in Kafka. When every segment
//! may go, the active one is rolled first, so the log always keeps a segment and its end.

use crate::error::LogError;
use crate::segment::Segment;

use super::{PartitionLog, SegmentPosition};

impl PartitionLog {
    pub(super) fn retain(&mut self, now_ms: i64) -> Result<usize, LogError> {
        if self.active().is_aged(now_ms, &self.config) {
            self.roll()?;
        }
        let deletable = self.deletable_segments(now_ms);
        if deletable > 0 && deletable == self.segments.len() {
            self.roll()?;
        }
        let deleted = self.delete_oldest(deletable, "retention")?;
        self.producers.evict_before(self.log_start_offset);
        self.producers.expire(now_ms);
        Ok(deleted)
    }

    /// Deletes the `count` oldest segments (never the active one) and moves the log start
    /// offset to the first segment left.
    pub(super) fn delete_oldest(&mut self, count: usize, why: &str) -> Result<usize, LogError> {
        let doomed: Vec<i64> = self.segments.keys().take(count.min(self.segments.len() - 1)).copied().collect();
        for &base in &doomed {
            // Out of the map first: a failed removal leaves the log failed, not pointing at
            // a half-deleted segment.
            self.segments.remove(&base);
            Segment::delete_files(&*self.storage, &self.dir, base)?;
        }
        if !doomed.is_empty() {
            let first_base = self.segments.values().next().expect("the active segment is never deleted").base_offset();
            // DeleteRecords may have put the start inside the first segment left.
            self.log_start_offset = self.log_start_offset.max(first_base);
            if !self.segments.contains_key(&self.hw_position.segment_base) {
                // The high watermark was the end of a deleted segment: the next one's base.
                assert_eq!(self.high_watermark, first_base, "deletion never passes the high watermark");
                self.hw_position = SegmentPosition { segment_base: first_base, position: 0 };
            }
            tracing::info!(dir = %self.dir.display(), deleted = doomed.len(), log_start_offset = self.log_start_offset, "{why} deleted segments");
        }
        Ok(doomed.len())
    }

    /// Deletes every whole segment that lies entirely below `offset` and below the high
    /// watermark, advancing the log start offset (used by the coordinator's compaction, which
    /// first writes a snapshot at `offset` in a fresh segment). Returns the segments deleted.
    pub fn delete_segments_below(&mut self, offset: i64) -> Result<usize, LogError> {
        self.check_writable()?;
        let bound = offset.min(self.high_watermark);
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        let count = bases.windows(2).take_while(|w| w[1] <= bound).count();
        let result = self.delete_oldest(count, "compaction");
        self.fail_on_err(result)
    }

    /// Starts a new segment at the log end now (unless the active one is empty).
    pub fn roll_segment(&mut self) -> Result<(), LogError> {
        self.check_writable()?;
        self.roll()
    }

    /// How many of the oldest segments retention may delete now.
    fn deletable_segments(&self, now_ms: i64) -> usize {
        let segments: Vec<&Segment> = self.segments.values().collect();
        let upper_bound = |i: usize| segments.get(i + 1).map_or(self.log_end_offset, |s| s.base_offset());
        // Below the high watermark, and not an empty active segment (deleting it frees nothing).
        let may_delete = |i: usize| upper_bound(i) <= self.high_watermark && !segments[i].is_empty();
        let mut count = 0;
        if self.config.retention_ms >= 0 {
            let expired = |s: &Segment| {
                s.max_timestamp().is_some_and(|(ts, _)| now_ms.saturating_sub(ts) > self.config.retention_ms)
            };
            while count < segments.len() && may_delete(count) && expired(segments[count]) {
                count += 1;
            }
        }
        if self.config.retention_bytes >= 0 {
            let retention_bytes = self.config.retention_bytes as u64;
            let mut remaining: u64 = segments[count..].iter().map(|s| s.size()).sum();
            while count < segments.len() && may_delete(count) && remaining - segments[count].size() >= retention_bytes {
                remaining -= segments[count].size();
                count += 1;
            }
        }
        count
    }
}
