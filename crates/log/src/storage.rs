//! The small file interface under the log.
//!
//! Two implementations: [`FsStorage`] on `std::fs` (positional reads, `fdatasync`, atomic
//! replace by rename) and [`MemStorage`], an in-memory twin whose [`MemStorage::crash`] keeps
//! only what was synced, so tests exercise the real recovery path without a real crash.
//!
//! Invariants both implementations keep:
//! - `append` writes at the end of the file; `read_at` never sees bytes past `len()`.
//! - `sync` makes every byte appended (and every truncation made) before it durable.
//! - Creating a file, removing a file and `write_atomic` are durable when they return (the
//!   file system implementation fsyncs the directory), so a synced segment is never lost
//!   because its directory entry was.

use std::io;
use std::path::Path;
use std::sync::Arc;

mod fs;
mod mem;

pub use fs::FsStorage;
pub use mem::MemStorage;

/// A file the log reads and appends to.
pub trait StorageFile: Send + Sync {
    fn len(&self) -> io::Result<u64>;
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
    /// Reads up to `buf.len()` bytes at `position`; returns how many (0 at end of file).
    fn read_at(&self, buf: &mut [u8], position: u64) -> io::Result<usize>;
    /// Appends all of `data` at the end of the file.
    fn append(&self, data: &[u8]) -> io::Result<()>;
    /// Makes everything written so far durable (fdatasync).
    fn sync(&self) -> io::Result<()>;
    fn truncate(&self, len: u64) -> io::Result<()>;
    /// The OS file descriptor, when the file is a real one: fetch answers then send its bytes
    /// with `sendfile` instead of copying them through user space.
    fn raw_fd(&self) -> Option<std::os::fd::RawFd> {
        None
    }
}

/// A directory tree of files.
pub trait Storage: Send + Sync {
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// File names (not paths) in `path`.
    fn list(&self, path: &Path) -> io::Result<Vec<String>>;
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StorageFile>>;
    fn exists(&self, path: &Path) -> bool;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Writes a small file whole and durably (write, sync, rename over the old one).
    fn write_atomic(&self, path: &Path, data: &[u8]) -> io::Result<()>;
    /// Reads a small file whole.
    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>>;
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
pub fn read_full_at(file: &dyn StorageFile, buf: &mut [u8], position: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], position + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}
