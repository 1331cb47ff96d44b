//! The sparse offset and time indexes of one segment, in memory, with Kafka's file encoding.
//!
//! File layout (Kafka's, big-endian, no header):
//! ```text
//! .index      8 bytes per entry:  relativeOffset u32 | position u32
//! .timeindex 12 bytes per entry:  timestamp i64      | relativeOffset u32
//! ```
//! `relativeOffset` is an offset minus the segment's base offset.
//!
//! Invariants (checked by `assert!`, since only this crate's own bookkeeping can break them):
//! - Offset entries strictly increase in both relative offset and position.
//! - Time entries strictly increase in timestamp and never decrease in relative offset.
//!
//! This module does no I/O: the segment appends the encoded entries to the index files and
//! rebuilds the index from the log on open (the files are never trusted over the log).

/// Bytes per `.index` entry.
pub const OFFSET_INDEX_ENTRY_BYTES: usize = 8;
/// Bytes per `.timeindex` entry.
pub const TIME_INDEX_ENTRY_BYTES: usize = 12;

/// An `.index` entry: the batch whose *last* offset is `base + relative_offset` starts at
/// byte `position` of the segment (SEMANTICS L6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetEntry {
    pub relative_offset: u32,
    pub position: u32,
}

impl OffsetEntry {
    pub fn encode(&self) -> [u8; OFFSET_INDEX_ENTRY_BYTES] {
        let mut out = [0u8; OFFSET_INDEX_ENTRY_BYTES];
        out[..4].copy_from_slice(&self.relative_offset.to_be_bytes());
        out[4..].copy_from_slice(&self.position.to_be_bytes());
        out
    }
}

/// A `.timeindex` entry: `timestamp` is the largest timestamp of the segment up to and
/// including the batch whose last offset is `base + relative_offset`, and that batch is the
/// first to reach it. So every batch before that one holds only smaller timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    pub timestamp: i64,
    pub relative_offset: u32,
}

impl TimeEntry {
    pub fn encode(&self) -> [u8; TIME_INDEX_ENTRY_BYTES] {
        let mut out = [0u8; TIME_INDEX_ENTRY_BYTES];
        out[..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..].copy_from_slice(&self.relative_offset.to_be_bytes());
        out
    }
}

/// The sparse offset index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetIndex {
    entries: Vec<OffsetEntry>,
}

impl OffsetIndex {
    pub fn new() -> OffsetIndex {
        OffsetIndex::default()
    }
    pub fn entries(&self) -> &[OffsetEntry] {
        &self.entries
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// True when one more entry would make the file larger than `index_bytes_max`.
    pub fn is_full(&self, index_bytes_max: usize) -> bool {
        (self.entries.len() + 1) * OFFSET_INDEX_ENTRY_BYTES > index_bytes_max
    }
    pub fn push(&mut self, entry: OffsetEntry) {
        if let Some(last) = self.entries.last() {
            assert!(
                entry.relative_offset > last.relative_offset && entry.position > last.position,
                "offset index entries must increase: {last:?} then {entry:?}"
            );
        }
        self.entries.push(entry);
    }
    /// The greatest entry whose relative offset is <= `relative_offset`.
    pub fn lookup(&self, relative_offset: u32) -> Option<OffsetEntry> {
        let after = self.entries.partition_point(|e| e.relative_offset <= relative_offset);
        after.checked_sub(1).map(|i| self.entries[i])
    }
    /// The whole `.index` file.
    pub fn encode(&self) -> Vec<u8> {
        self.entries.iter().flat_map(|e| e.encode()).collect()
    }
}

/// The sparse time index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimeIndex {
    entries: Vec<TimeEntry>,
}

impl TimeIndex {
    pub fn new() -> TimeIndex {
        TimeIndex::default()
    }
    pub fn entries(&self) -> &[TimeEntry] {
        &self.entries
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// True when one more entry would make the file larger than `index_bytes_max`.
    pub fn is_full(&self, index_bytes_max: usize) -> bool {
        (self.entries.len() + 1) * TIME_INDEX_ENTRY_BYTES > index_bytes_max
    }
    /// Adds `entry` only when its timestamp is larger than the last entry's (Kafka's
    /// `maybeAppend`); returns whether it was added.
    pub fn maybe_push(&mut self, entry: TimeEntry) -> bool {
        if let Some(last) = self.entries.last() {
            if entry.timestamp <= last.timestamp {
                return false;
            }
            assert!(
                entry.relative_offset >= last.relative_offset,
                "time index offsets must not decrease: {last:?} then {entry:?}"
            );
        }
        self.entries.push(entry);
        true
    }
    /// The greatest entry whose timestamp is <= `timestamp`.
    pub fn lookup(&self, timestamp: i64) -> Option<TimeEntry> {
        let after = self.entries.partition_point(|e| e.timestamp <= timestamp);
        after.checked_sub(1).map(|i| self.entries[i])
    }
    /// The whole `.timeindex` file.
    pub fn encode(&self) -> Vec<u8> {
        self.entries.iter().flat_map(|e| e.encode()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(pairs: &[(u32, u32)]) -> OffsetIndex {
        let mut index = OffsetIndex::new();
        for &(relative_offset, position) in pairs {
            index.push(OffsetEntry { relative_offset, position });
        }
        index
    }

    #[test]
    fn l6_offset_lookup_is_greatest_entry_at_or_below() {
        let index = offsets(&[(4, 100), (9, 250), (20, 600)]);
        let check = |target: u32, expect: Option<(u32, u32)>| {
            let got = index.lookup(target).map(|e| (e.relative_offset, e.position));
            assert_eq!(got, expect, "target {target}");
        };
        check(0, None);
        check(3, None);
        check(4, Some((4, 100)));
        check(8, Some((4, 100)));
        check(9, Some((9, 250)));
        check(19, Some((9, 250)));
        check(20, Some((20, 600)));
        check(u32::MAX, Some((20, 600)));
    }

    #[test]
    fn l6_index_entry_bytes_are_kafkas() {
        let index = offsets(&[(1, 2)]);
        assert_eq!(index.encode(), vec![0, 0, 0, 1, 0, 0, 0, 2]);
        let mut time = TimeIndex::new();
        assert!(time.maybe_push(TimeEntry { timestamp: 258, relative_offset: 3 }));
        assert_eq!(time.encode(), vec![0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 3]);
    }

    #[test]
    fn l6_time_index_keeps_only_increasing_timestamps() {
        let mut time = TimeIndex::new();
        assert!(time.maybe_push(TimeEntry { timestamp: 100, relative_offset: 0 }));
        assert!(!time.maybe_push(TimeEntry { timestamp: 100, relative_offset: 5 }));
        assert!(!time.maybe_push(TimeEntry { timestamp: 50, relative_offset: 6 }));
        assert!(time.maybe_push(TimeEntry { timestamp: 300, relative_offset: 7 }));
        assert_eq!(time.lookup(99), None);
        assert_eq!(time.lookup(100).map(|e| e.relative_offset), Some(0));
        assert_eq!(time.lookup(299).map(|e| e.relative_offset), Some(0));
        assert_eq!(time.lookup(300).map(|e| e.relative_offset), Some(7));
    }

    #[test]
    fn index_full_counts_entry_bytes() {
        let index = offsets(&[(1, 1)]);
        assert!(!index.is_full(16));
        assert!(index.is_full(15));
        assert!(TimeIndex::new().is_full(11));
        assert!(!TimeIndex::new().is_full(12));
    }
}
