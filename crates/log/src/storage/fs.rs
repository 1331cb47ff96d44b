//! [`FsStorage`]: the real file system.
//!
//! Segment files are opened with `O_APPEND`, read with `pread` (`FileExt::read_at`) so readers
//! never share a cursor, and synced with `fdatasync`. Creating or removing a file fsyncs its
//! directory, so the directory entry of a synced file survives a power loss.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Storage, StorageFile};

/// The real file system. A unit value: `Arc::new(FsStorage)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct FsStorage;

struct FsFile {
    file: File,
}

impl StorageFile for FsFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
    fn read_at(&self, buf: &mut [u8], position: u64) -> io::Result<usize> {
        self.file.read_at(buf, position)
    }
    fn append(&self, data: &[u8]) -> io::Result<()> {
        // O_APPEND: every write lands at the current end, whatever the cursor says.
        (&self.file).write_all(data)
    }
    fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }
    fn truncate(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
    fn raw_fd(&self) -> Option<std::os::fd::RawFd> {
        Some(std::os::fd::AsRawFd::as_raw_fd(&self.file))
    }
}

/// fsyncs a directory so that entries created, renamed or removed in it are durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn parent_of(path: &Path) -> Option<&Path> {
    path.parent().filter(|p| !p.as_os_str().is_empty())
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

impl Storage for FsStorage {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        if path.is_dir() {
            return Ok(());
        }
        std::fs::create_dir_all(path)?;
        if let Some(parent) = parent_of(path) {
            sync_dir(parent)?;
        }
        Ok(())
    }

    fn list(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            // A name that is not UTF-8 is not ours: the log names every file in ASCII.
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        let existed = path.exists();
        let file = OpenOptions::new().read(true).append(true).create(create).open(path)?;
        if !existed {
            if let Some(parent) = parent_of(path) {
                sync_dir(parent)?;
            }
        }
        Ok(Arc::new(FsFile { file }))
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)?;
        if let Some(parent) = parent_of(path) {
            sync_dir(parent)?;
        }
        Ok(())
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir_all(path)?;
        if let Some(parent) = parent_of(path) {
            sync_dir(parent)?;
        }
        Ok(())
    }

    fn write_atomic(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let tmp = tmp_path(path);
        {
            let mut file = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
            file.write_all(data)?;
            file.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        if let Some(parent) = parent_of(path) {
            sync_dir(parent)?;
        }
        Ok(())
    }

    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_read_truncate_and_atomic_write() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("p");
        FsStorage.create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        let file = FsStorage.open(&path, true).unwrap();
        file.append(b"hello").unwrap();
        file.append(b" world").unwrap();
        file.sync().unwrap();
        let mut buf = [0u8; 5];
        assert_eq!(file.read_at(&mut buf, 6).unwrap(), 5);
        assert_eq!(&buf, b"world");
        file.truncate(5).unwrap();
        file.append(b"!").unwrap();
        assert_eq!(FsStorage.read_all(&path).unwrap(), b"hello!");
        assert_eq!(file.len().unwrap(), 6);
        FsStorage.write_atomic(&dir.join("small"), b"1").unwrap();
        FsStorage.write_atomic(&dir.join("small"), b"22").unwrap();
        assert_eq!(FsStorage.read_all(&dir.join("small")).unwrap(), b"22");
        assert_eq!(FsStorage.list(&dir).unwrap(), vec!["f".to_string(), "small".to_string()]);
        FsStorage.remove_file(&path).unwrap();
        assert!(!FsStorage.exists(&path));
        FsStorage.remove_dir_all(&dir).unwrap();
        assert!(!dir.exists());
    }
}
