//! [`FileSlice`]: a byte range of a segment file, handed out by a read instead of the bytes.
//!
//! A fetch locates what to serve under the partition's lock and sends it after the lock is
//! released, straight from the file (`sendfile`) when the storage has a file descriptor, or
//! with [`FileSlice::read`] otherwise. Batches are served exactly as stored.
//!
//! **Invariants:** the range lies below the high watermark when the slice is made, so its bytes
//! are never rewritten: segments are only appended to, and truncated only by recovery before the
//! log opens. The slice holds the file open (an `Arc`), so a segment deleted by retention
//! meanwhile still reads to the end of the range.

use std::fmt;
use std::io;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::storage::{read_full_at, StorageFile};

#[derive(Clone, Default)]
pub struct FileSlice {
    file: Option<Arc<dyn StorageFile>>,
    position: u64,
    len: u64,
}

impl FileSlice {
    pub fn new(file: Arc<dyn StorageFile>, position: u64, len: u64) -> FileSlice {
        FileSlice { file: Some(file), position, len }
    }
    /// No bytes.
    pub fn empty() -> FileSlice {
        FileSlice::default()
    }
    pub fn len(&self) -> u64 {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Position of the first byte in the file.
    pub fn position(&self) -> u64 {
        self.position
    }
    /// The file's descriptor, for `sendfile`; `None` for in-memory storage or an empty slice.
    pub fn raw_fd(&self) -> Option<std::os::fd::RawFd> {
        self.file.as_ref().and_then(|f| f.raw_fd())
    }
    /// The bytes, copied out of the file. A file shorter than the range is `UnexpectedEof`.
    pub fn read(&self) -> io::Result<Bytes> {
        let Some(file) = &self.file else {
            return Ok(Bytes::new());
        };
        let len = usize::try_from(self.len).map_err(|_| io::Error::other("slice larger than memory"))?;
        let mut buf = BytesMut::zeroed(len);
        let n = read_full_at(&**file, &mut buf, self.position)?;
        if n < len {
            let what = format!("read {n} of {len} bytes at position {}", self.position);
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, what));
        }
        Ok(buf.freeze())
    }
}

impl fmt::Debug for FileSlice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSlice").field("position", &self.position).field("len", &self.len).finish()
    }
}
