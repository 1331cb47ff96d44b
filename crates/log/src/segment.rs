//! One segment: a `.log` file of whole v2 batches, with its sparse `.index` and `.timeindex`.
//!
//! Files are named by the segment's base offset, zero-padded to 20 digits (Kafka's layout):
//! `00000000000000000100.log`, `.index`, `.timeindex`.
//!
//! Invariants:
//! - The `.log` holds whole batches back to back; the first batch's base offset is the
//!   segment's base offset and each next batch starts at the previous one's next offset.
//!   [`Segment::load`] enforces this on disk data and cuts the file at the first batch that
//!   breaks it (or that is partial, or fails its CRC when asked to verify).
//! - `size` is the byte length of those whole batches, and `next_offset` the offset after the
//!   last one (the base offset when empty).
//! - The in-memory indexes are the source of truth and are derived from the batches alone,
//!   the same way while appending and while loading; the index files are written from them
//!   (appended while serving, rewritten on load when they differ) and never read back as truth.
//! - Every relative offset fits an `i32` and every position a `u32`: the log rolls before an
//!   append could break either.
//! - Reads walk batch headers only (61 bytes each); the segment never decodes records.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use sluice_records::header::BATCH_HEADER_BYTES;
use sluice_records::validate::{check_framing, crc_matches};
use sluice_records::{BatchHeader, LOG_OVERHEAD_BYTES};

use crate::config::LogConfig;
use crate::error::LogError;
use crate::index::{OffsetEntry, OffsetIndex, TimeEntry, TimeIndex};
use crate::storage::{read_full_at, Storage, StorageFile};

pub const LOG_SUFFIX: &str = "log";
pub const OFFSET_INDEX_SUFFIX: &str = "index";
pub const TIME_INDEX_SUFFIX: &str = "timeindex";

/// Digits of the zero-padded base offset in a segment file name.
const FILE_NAME_DIGITS: usize = 20;
/// Bytes read at a time when walking headers to serve a read.
const READ_WINDOW_BYTES: usize = 16 * 1024;
/// Bytes read at a time when scanning a whole segment on open.
const SCAN_WINDOW_BYTES: usize = 1024 * 1024;
/// The smallest `batchLength` a v2 batch can have (its header after the length field).
const BATCH_LENGTH_MIN: i32 = (BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES) as i32;

/// `00000000000000000100.log` for base offset 100 and suffix `log`.
pub fn file_name(base_offset: i64, suffix: &str) -> String {
    format!("{base_offset:0width$}.{suffix}", width = FILE_NAME_DIGITS)
}

/// The base offset and suffix of a segment file name; `None` for any other name.
pub fn parse_file_name(name: &str) -> Option<(i64, &str)> {
    let (digits, suffix) = name.split_once('.')?;
    if digits.len() != FILE_NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let base_offset = digits.parse::<i64>().ok()?;
    Some((base_offset, suffix))
}

pub(crate) fn io_error(path: &Path, source: io::Error) -> LogError {
    LogError::Io { path: path.display().to_string(), source }
}

fn corrupt(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// Where one batch sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLocation {
    pub base_offset: i64,
    pub last_offset: i64,
    pub position: u64,
    pub size: u64,
}

impl BatchLocation {
    fn of(header: &BatchHeader, position: u64) -> BatchLocation {
        BatchLocation {
            base_offset: header.base_offset,
            last_offset: header.last_offset(),
            position,
            size: header.total_bytes() as u64,
        }
    }
}

/// Reads a file through a window buffer, so walking many small headers costs few reads.
struct Window<'a> {
    file: &'a dyn StorageFile,
    /// Never read at or past this byte.
    limit: u64,
    chunk: usize,
    buf: Vec<u8>,
    start: u64,
}

impl<'a> Window<'a> {
    fn new(file: &'a dyn StorageFile, limit: u64, chunk: usize) -> Window<'a> {
        Window { file, limit, chunk, buf: Vec::new(), start: 0 }
    }

    /// Up to `len` bytes at `position`: fewer only where `limit` or the file ends first.
    fn get(&mut self, position: u64, len: usize) -> io::Result<&[u8]> {
        let end = position.saturating_add(len as u64).min(self.limit);
        let want = end.saturating_sub(position) as usize;
        let buffered_end = self.start + self.buf.len() as u64;
        if position < self.start || position + want as u64 > buffered_end {
            let fill = (want.max(self.chunk) as u64).min(self.limit.saturating_sub(position)) as usize;
            self.buf.resize(fill, 0);
            let n = read_full_at(self.file, &mut self.buf, position)?;
            self.buf.truncate(n);
            self.start = position;
        }
        let from = (position - self.start) as usize;
        let to = (from + want).min(self.buf.len());
        Ok(&self.buf[from..to])
    }
}

/// The header at the start of `bytes` if it frames a whole v2 batch ending by `limit`
/// (a batch starting at `position`); checks length, magic and lastOffsetDelta only.
fn frame(bytes: &[u8], position: u64, limit: u64) -> Option<BatchHeader> {
    let header = BatchHeader::parse(bytes)?;
    let fits = position.checked_add(header.total_bytes() as u64).is_some_and(|end| end <= limit);
    let framed = header.batch_length >= BATCH_LENGTH_MIN && header.magic == 2 && header.last_offset_delta >= 0;
    (framed && fits).then_some(header)
}

/// One segment.
pub struct Segment {
    base_offset: i64,
    log_path: PathBuf,
    log: Arc<dyn StorageFile>,
    offset_index_path: PathBuf,
    offset_index_file: Arc<dyn StorageFile>,
    time_index_path: PathBuf,
    time_index_file: Arc<dyn StorageFile>,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    size: u64,
    next_offset: i64,
    /// The first batch with the largest maxTimestamp, and that timestamp.
    max_timestamp: Option<(i64, BatchLocation)>,
    /// When the segment's first batch was appended (its maxTimestamp when loaded): segment.ms
    /// counts from here (L7).
    rolling_timestamp_ms: Option<i64>,
    bytes_since_last_index_entry: usize,
}

impl Segment {
    fn open_files(storage: &dyn Storage, dir: &Path, base_offset: i64, create: bool) -> Result<Segment, LogError> {
        let path = |suffix| dir.join(file_name(base_offset, suffix));
        let open = |p: &Path, create: bool| storage.open(p, create).map_err(|e| io_error(p, e));
        let log_path = path(LOG_SUFFIX);
        let offset_index_path = path(OFFSET_INDEX_SUFFIX);
        let time_index_path = path(TIME_INDEX_SUFFIX);
        Ok(Segment {
            base_offset,
            log: open(&log_path, create)?,
            log_path,
            offset_index_file: open(&offset_index_path, true)?,
            offset_index_path,
            time_index_file: open(&time_index_path, true)?,
            time_index_path,
            offset_index: OffsetIndex::new(),
            time_index: TimeIndex::new(),
            size: 0,
            next_offset: base_offset,
            max_timestamp: None,
            rolling_timestamp_ms: None,
            bytes_since_last_index_entry: 0,
        })
    }

    /// Creates a new, empty segment at `base_offset` (emptying stale files of that name).
    pub fn create(storage: &dyn Storage, dir: &Path, base_offset: i64) -> Result<Segment, LogError> {
        let segment = Segment::open_files(storage, dir, base_offset, true)?;
        for (file, path) in segment.files() {
            if file.len().map_err(|e| io_error(path, e))? > 0 {
                file.truncate(0).map_err(|e| io_error(path, e))?;
            }
        }
        Ok(segment)
    }

    /// Opens an existing segment, walking its batches: each must frame, continue the offsets
    /// from `base_offset`, and (with `verify_crc`) match its CRC. The file is cut at the first
    /// batch that does not (L9). Indexes are rebuilt from the walk and the index files
    /// rewritten if they differ. `on_batch` sees every kept header in order (producer state).
    /// Returns the segment and whether the file was cut.
    pub fn load(
        storage: &dyn Storage,
        dir: &Path,
        base_offset: i64,
        verify_crc: bool,
        config: &LogConfig,
        on_batch: &mut dyn FnMut(&BatchHeader),
    ) -> Result<(Segment, bool), LogError> {
        let mut segment = Segment::open_files(storage, dir, base_offset, false)?;
        let file_len = segment.log.len().map_err(|e| segment.log_err(e))?;
        let log = segment.log.clone();
        let mut window = Window::new(&*log, file_len, SCAN_WINDOW_BYTES);
        let mut position = 0u64;
        while position < file_len {
            let header = segment
                .check_stored_batch(&mut window, position, file_len, verify_crc)
                .map_err(|e| io_error(&segment.log_path, e))?;
            let Some(header) = header else { break };
            segment.note_batch(&header, position, config);
            segment.rolling_timestamp_ms.get_or_insert(header.max_timestamp);
            on_batch(&header);
            position += header.total_bytes() as u64;
        }
        let cut = position < file_len;
        if cut {
            tracing::warn!(
                segment = %segment.log_path.display(),
                valid_bytes = position,
                file_bytes = file_len,
                "truncating segment at the first invalid or partial batch"
            );
            segment.log.truncate(position).map_err(|e| segment.log_err(e))?;
        }
        segment.rewrite_index_files_if_stale()?;
        Ok((segment, cut))
    }

    /// The header of the batch at `position` if it is whole and continues the segment.
    fn check_stored_batch(
        &self,
        window: &mut Window<'_>,
        position: u64,
        file_len: u64,
        verify_crc: bool,
    ) -> io::Result<Option<BatchHeader>> {
        let Some(header) = frame(window.get(position, BATCH_HEADER_BYTES)?, position, file_len) else {
            return Ok(None);
        };
        let continues = header.base_offset == self.next_offset;
        let relative_fits = header.last_offset() - self.base_offset <= i32::MAX as i64;
        if !continues || !relative_fits {
            return Ok(None);
        }
        if verify_crc {
            let bytes = window.get(position, header.total_bytes())?;
            if check_framing(bytes).is_err() || !crc_matches(bytes, &header) {
                return Ok(None);
            }
        }
        Ok(Some(header))
    }

    fn rewrite_index_files_if_stale(&self) -> Result<(), LogError> {
        let pairs = [
            (&self.offset_index_file, &self.offset_index_path, self.offset_index.encode()),
            (&self.time_index_file, &self.time_index_path, self.time_index.encode()),
        ];
        for (file, path, want) in pairs {
            let err = |e| io_error(path, e);
            let len = file.len().map_err(err)?;
            let same = len == want.len() as u64 && {
                let mut have = vec![0u8; want.len()];
                read_full_at(&**file, &mut have, 0).map_err(err)? == want.len() && have == want
            };
            if !same {
                file.truncate(0).map_err(err)?;
                file.append(&want).map_err(err)?;
            }
        }
        Ok(())
    }

    /// Updates the in-memory bookkeeping for a batch written at `position` and returns the
    /// index entries it adds. Kafka's rule (L6): an entry is added before a batch when more
    /// than `index.interval.bytes` were appended since the last one; it points at that batch's
    /// last offset and start position.
    fn note_batch(
        &mut self,
        header: &BatchHeader,
        position: u64,
        config: &LogConfig,
    ) -> (Option<OffsetEntry>, Option<TimeEntry>) {
        assert_eq!(header.base_offset, self.next_offset, "batches must continue the segment");
        assert_eq!(position, self.size, "batches must be back to back");
        let location = BatchLocation::of(header, position);
        if self.max_timestamp.is_none_or(|(ts, _)| header.max_timestamp > ts) {
            self.max_timestamp = Some((header.max_timestamp, location));
        }
        let mut added = (None, None);
        if self.bytes_since_last_index_entry > config.index_interval_bytes {
            if let Ok(position) = u32::try_from(position) {
                if !self.offset_index.is_full(config.segment_index_bytes) {
                    let entry = OffsetEntry { relative_offset: self.relative(header.last_offset()), position };
                    self.offset_index.push(entry);
                    added.0 = Some(entry);
                }
            }
            if let Some((timestamp, at)) = self.max_timestamp {
                let entry = TimeEntry { timestamp, relative_offset: self.relative(at.last_offset) };
                if !self.time_index.is_full(config.segment_index_bytes) && self.time_index.maybe_push(entry) {
                    added.1 = Some(entry);
                }
            }
            self.bytes_since_last_index_entry = 0;
        }
        self.bytes_since_last_index_entry += header.total_bytes();
        self.size = position + header.total_bytes() as u64;
        self.next_offset = header.next_offset();
        added
    }

    /// Appends a record set whose headers already carry their final offsets; `batches` holds
    /// each batch's position within `bytes` and its header. Not synced.
    pub fn append(
        &mut self,
        bytes: &[u8],
        batches: &[(usize, BatchHeader)],
        now_ms: i64,
        config: &LogConfig,
    ) -> Result<(), LogError> {
        let start = self.size;
        self.log.append(bytes).map_err(|e| self.log_err(e))?;
        self.rolling_timestamp_ms.get_or_insert(now_ms);
        let mut offset_entries = Vec::new();
        let mut time_entries = Vec::new();
        for (position, header) in batches {
            let (offset_entry, time_entry) = self.note_batch(header, start + *position as u64, config);
            offset_entries.extend(offset_entry.iter().flat_map(|e| e.encode()));
            time_entries.extend(time_entry.iter().flat_map(|e| e.encode()));
        }
        assert_eq!(self.size, start + bytes.len() as u64, "record set must be whole batches");
        if !offset_entries.is_empty() {
            self.offset_index_file.append(&offset_entries).map_err(|e| io_error(&self.offset_index_path, e))?;
        }
        if !time_entries.is_empty() {
            self.time_index_file.append(&time_entries).map_err(|e| io_error(&self.time_index_path, e))?;
        }
        Ok(())
    }

    /// Whether an append of `set_bytes` bytes ending at `set_last_offset` must go to a new
    /// segment (L7). An empty segment takes any record set.
    pub fn should_roll(&self, set_bytes: usize, set_last_offset: i64, now_ms: i64, config: &LogConfig) -> bool {
        if self.size == 0 {
            return false;
        }
        let set_bytes = set_bytes as u64;
        self.size > config.segment_bytes.saturating_sub(set_bytes)
            || self.is_aged(now_ms, config)
            || self.offset_index.is_full(config.segment_index_bytes)
            || self.time_index.is_full(config.segment_index_bytes)
            || set_last_offset - self.base_offset > i32::MAX as i64
            || self.size + set_bytes > u32::MAX as u64
    }

    /// Non-empty and its first batch is at least `segment.ms` old.
    pub fn is_aged(&self, now_ms: i64, config: &LogConfig) -> bool {
        self.size > 0 && self.rolling_timestamp_ms.is_some_and(|t| now_ms.saturating_sub(t) >= config.segment_ms)
    }

    /// The batch whose last offset is >= `offset`, among the batches that end by `limit`: its
    /// position and header. Index lookup, then a header walk (L6).
    pub fn find_batch(&self, offset: i64, limit: u64) -> Result<Option<(u64, BatchHeader)>, LogError> {
        let from = self.offset_index.lookup(self.relative(offset)).map_or(0, |e| e.position as u64);
        self.walk(from, limit, |_, header| header.last_offset() >= offset)
    }

    /// Where to start looking for the first batch with maxTimestamp >= `timestamp`: every
    /// batch before this position has only smaller timestamps (see [`TimeEntry`]).
    pub fn position_for_timestamp(&self, timestamp: i64) -> u64 {
        let Some(entry) = self.time_index.lookup(timestamp) else {
            return 0;
        };
        self.offset_index.lookup(entry.relative_offset).map_or(0, |e| e.position as u64)
    }

    /// Walks batch headers from `position` (a batch boundary) up to `limit` (a batch
    /// boundary), returning the first batch `stop` accepts. A header that does not frame
    /// inside `limit` is corrupt data, reported as an I/O error.
    pub fn walk(
        &self,
        position: u64,
        limit: u64,
        mut stop: impl FnMut(u64, &BatchHeader) -> bool,
    ) -> Result<Option<(u64, BatchHeader)>, LogError> {
        let limit = limit.min(self.size);
        let mut window = Window::new(&*self.log, limit, READ_WINDOW_BYTES);
        let mut position = position;
        while position < limit {
            let bytes = window.get(position, BATCH_HEADER_BYTES).map_err(|e| self.log_err(e))?;
            let Some(header) = frame(bytes, position, limit) else {
                return Err(self.log_err(corrupt(format!("no valid batch at position {position}"))));
            };
            if stop(position, &header) {
                return Ok(Some((position, header)));
            }
            position += header.total_bytes() as u64;
        }
        Ok(None)
    }

    /// The bytes `[start, end)` of the log file.
    pub fn read(&self, start: u64, end: u64) -> Result<Bytes, LogError> {
        let len = end.saturating_sub(start) as usize;
        let mut buf = BytesMut::zeroed(len);
        let n = read_full_at(&*self.log, &mut buf, start).map_err(|e| self.log_err(e))?;
        if n < len {
            let what = format!("read {n} of {len} bytes at position {start}");
            return Err(self.log_err(io::Error::new(io::ErrorKind::UnexpectedEof, what)));
        }
        Ok(buf.freeze())
    }

    /// Syncs the log file and both index files (at roll, close and after recovery; the
    /// flush handle syncs the log file alone).
    pub fn sync(&self) -> Result<(), LogError> {
        for (file, path) in self.files() {
            file.sync().map_err(|e| io_error(path, e))?;
        }
        Ok(())
    }

    /// Removes the segment's files (an index file already gone is fine).
    pub fn delete_files(storage: &dyn Storage, dir: &Path, base_offset: i64) -> Result<(), LogError> {
        for suffix in [LOG_SUFFIX, OFFSET_INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            let path = dir.join(file_name(base_offset, suffix));
            match storage.remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(&path, e)),
            }
        }
        Ok(())
    }

    fn files(&self) -> [(&Arc<dyn StorageFile>, &PathBuf); 3] {
        [
            (&self.log, &self.log_path),
            (&self.offset_index_file, &self.offset_index_path),
            (&self.time_index_file, &self.time_index_path),
        ]
    }

    fn relative(&self, offset: i64) -> u32 {
        (offset - self.base_offset).clamp(0, u32::MAX as i64) as u32
    }

    fn log_err(&self, e: io::Error) -> LogError {
        io_error(&self.log_path, e)
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }
    /// The offset after the segment's last batch (its base offset when empty).
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }
    pub fn size(&self) -> u64 {
        self.size
    }
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }
    /// The largest batch maxTimestamp and the first batch carrying it; `None` when empty.
    pub fn max_timestamp(&self) -> Option<(i64, BatchLocation)> {
        self.max_timestamp
    }
    pub fn log_file(&self) -> &Arc<dyn StorageFile> {
        &self.log
    }
    pub fn offset_index(&self) -> &OffsetIndex {
        &self.offset_index
    }
    pub fn time_index(&self) -> &TimeIndex {
        &self.time_index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn l6_file_names_are_20_digit_base_offsets() {
        assert_eq!(file_name(100, LOG_SUFFIX), "00000000000000000100.log");
        assert_eq!(parse_file_name("00000000000000000100.timeindex"), Some((100, "timeindex")));
        assert_eq!(parse_file_name("0000000000000000100.log"), None);
        assert_eq!(parse_file_name("0000000000000000010a.log"), None);
        assert_eq!(parse_file_name("recovery-point"), None);
        assert_eq!(parse_file_name("99999999999999999999.log"), None, "past i64::MAX");
    }
}
