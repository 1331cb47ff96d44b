//! [`MemStorage`]: an in-memory file tree that remembers what was synced.
//!
//! Each file keeps its current bytes and its *durable* bytes (the contents as of the last
//! `sync`). [`MemStorage::crash`] returns a new store holding only the durable bytes, as a
//! power loss would; [`MemStorage::crash_torn`] also keeps a prefix of the unsynced tail, as a
//! torn write would. Creating and removing files and `write_atomic` are durable at once, which
//! matches [`super::FsStorage`] (it fsyncs the directory for each).
//!
//! [`MemStorage::set_failing`] makes every write fail, to test the log's failed state.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{Storage, StorageFile};

/// An in-memory store whose `crash()` keeps only what was synced, to test recovery.
/// Cloning shares the same tree (a second handle on the same "disk").
#[derive(Clone, Default)]
pub struct MemStorage {
    tree: Arc<Mutex<Tree>>,
    failing: Arc<AtomicBool>,
}

#[derive(Default)]
struct Tree {
    dirs: BTreeSet<PathBuf>,
    files: BTreeMap<PathBuf, Arc<MemFile>>,
}

struct MemFile {
    state: Mutex<FileState>,
    failing: Arc<AtomicBool>,
}

struct FileState {
    data: Vec<u8>,
    /// The contents as of the last sync.
    durable: Vec<u8>,
    /// Length of the prefix where `data` and `durable` agree (shrinks on truncate).
    common: usize,
}

fn injected() -> io::Error {
    io::Error::other("injected I/O failure (MemStorage::set_failing)")
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{} not found", path.display()))
}

impl MemFile {
    fn new(data: Vec<u8>, failing: Arc<AtomicBool>) -> MemFile {
        let common = data.len();
        MemFile { state: Mutex::new(FileState { durable: data.clone(), data, common }), failing }
    }
    fn check(&self) -> io::Result<()> {
        if self.failing.load(Ordering::Relaxed) {
            return Err(injected());
        }
        Ok(())
    }
    /// The bytes a crash leaves: the durable contents plus up to `torn` bytes of an unsynced
    /// append (only when the file was purely appended to since its last sync).
    fn after_crash(&self, torn: usize) -> Vec<u8> {
        let st = self.state.lock();
        let mut kept = st.durable.clone();
        if st.common == st.durable.len() && st.data.len() > st.common {
            let end = st.data.len().min(st.common.saturating_add(torn));
            kept.extend_from_slice(&st.data[st.common..end]);
        }
        kept
    }
}

impl StorageFile for MemFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.state.lock().data.len() as u64)
    }
    fn read_at(&self, buf: &mut [u8], position: u64) -> io::Result<usize> {
        let st = self.state.lock();
        let Ok(start) = usize::try_from(position) else {
            return Ok(0);
        };
        if start >= st.data.len() {
            return Ok(0);
        }
        let n = buf.len().min(st.data.len() - start);
        buf[..n].copy_from_slice(&st.data[start..start + n]);
        Ok(n)
    }
    fn append(&self, data: &[u8]) -> io::Result<()> {
        self.check()?;
        self.state.lock().data.extend_from_slice(data);
        Ok(())
    }
    fn sync(&self) -> io::Result<()> {
        self.check()?;
        let mut st = self.state.lock();
        let common = st.common;
        let FileState { data, durable, .. } = &mut *st;
        durable.truncate(common);
        durable.extend_from_slice(&data[common..]);
        st.common = st.data.len();
        Ok(())
    }
    fn truncate(&self, len: u64) -> io::Result<()> {
        self.check()?;
        let mut st = self.state.lock();
        let len = usize::try_from(len).map_err(|_| io::Error::other("length too large"))?;
        st.data.resize(len, 0);
        st.common = st.common.min(len);
        Ok(())
    }
}

impl MemStorage {
    pub fn new() -> MemStorage {
        MemStorage::default()
    }

    /// A new, independent store holding what a power loss would leave: the synced bytes of
    /// every file (files and directories themselves survive; see the module docs).
    pub fn crash(&self) -> MemStorage {
        self.crash_torn(0)
    }

    /// Like [`MemStorage::crash`], but each file also keeps up to `unsynced_bytes_kept` bytes
    /// of data appended after its last sync: a torn write.
    pub fn crash_torn(&self, unsynced_bytes_kept: usize) -> MemStorage {
        let tree = self.tree.lock();
        let failing = Arc::new(AtomicBool::new(false));
        let files = tree
            .files
            .iter()
            .map(|(path, file)| {
                let kept = file.after_crash(unsynced_bytes_kept);
                (path.clone(), Arc::new(MemFile::new(kept, failing.clone())))
            })
            .collect();
        MemStorage { tree: Arc::new(Mutex::new(Tree { dirs: tree.dirs.clone(), files })), failing }
    }

    /// While set, every write (append, sync, truncate, create, remove, write_atomic) fails
    /// with an I/O error. Reads still work.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::Relaxed);
    }

    fn check(&self) -> io::Result<()> {
        if self.failing.load(Ordering::Relaxed) {
            return Err(injected());
        }
        Ok(())
    }
}

fn parent_exists(tree: &Tree, path: &Path) -> bool {
    match path.parent() {
        None => true,
        Some(p) if p.as_os_str().is_empty() => true,
        Some(p) => tree.dirs.contains(p),
    }
}

impl Storage for MemStorage {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut tree = self.tree.lock();
        if tree.dirs.contains(path) {
            return Ok(());
        }
        self.check()?;
        for ancestor in path.ancestors() {
            if !ancestor.as_os_str().is_empty() {
                tree.dirs.insert(ancestor.to_path_buf());
            }
        }
        Ok(())
    }

    fn list(&self, path: &Path) -> io::Result<Vec<String>> {
        let tree = self.tree.lock();
        if !tree.dirs.contains(path) {
            return Err(not_found(path));
        }
        let files = tree.files.keys();
        let dirs = tree.dirs.iter();
        let mut names: Vec<String> = files
            .chain(dirs)
            .filter(|p| p.parent() == Some(path))
            .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }

    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        let mut tree = self.tree.lock();
        if let Some(file) = tree.files.get(path) {
            return Ok(file.clone());
        }
        if !create || !parent_exists(&tree, path) {
            return Err(not_found(path));
        }
        self.check()?;
        let file = Arc::new(MemFile::new(Vec::new(), self.failing.clone()));
        tree.files.insert(path.to_path_buf(), file.clone());
        Ok(file)
    }

    fn exists(&self, path: &Path) -> bool {
        let tree = self.tree.lock();
        tree.files.contains_key(path) || tree.dirs.contains(path)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.check()?;
        // Open handles keep working on the removed file, as with an unlinked inode.
        match self.tree.lock().files.remove(path) {
            Some(_) => Ok(()),
            None => Err(not_found(path)),
        }
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        self.check()?;
        let mut tree = self.tree.lock();
        if !tree.dirs.contains(path) {
            return Err(not_found(path));
        }
        tree.files.retain(|p, _| !p.starts_with(path));
        tree.dirs.retain(|p| !p.starts_with(path));
        Ok(())
    }

    fn write_atomic(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.check()?;
        let mut tree = self.tree.lock();
        if !parent_exists(&tree, path) {
            return Err(not_found(path));
        }
        let file = Arc::new(MemFile::new(data.to_vec(), self.failing.clone()));
        tree.files.insert(path.to_path_buf(), file);
        Ok(())
    }

    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        let tree = self.tree.lock();
        let file = tree.files.get(path).ok_or_else(|| not_found(path))?;
        let data = file.state.lock().data.clone();
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (MemStorage, Arc<dyn StorageFile>) {
        let storage = MemStorage::new();
        storage.create_dir_all(Path::new("/d")).unwrap();
        let file = storage.open(Path::new("/d/f"), true).unwrap();
        (storage, file)
    }

    fn contents(storage: &MemStorage) -> Vec<u8> {
        storage.read_all(Path::new("/d/f")).unwrap()
    }

    #[test]
    fn crash_keeps_only_synced_bytes() {
        let (storage, file) = setup();
        file.append(b"hello").unwrap();
        file.sync().unwrap();
        file.append(b" world").unwrap();
        assert_eq!(contents(&storage), b"hello world");
        assert_eq!(contents(&storage.crash()), b"hello");
        assert_eq!(contents(&storage.crash_torn(3)), b"hello wo");
        assert_eq!(contents(&storage.crash_torn(100)), b"hello world");
    }

    #[test]
    fn crash_after_unsynced_truncate_restores_synced_bytes() {
        let (storage, file) = setup();
        file.append(b"abcdef").unwrap();
        file.sync().unwrap();
        file.truncate(2).unwrap();
        file.append(b"XY").unwrap();
        assert_eq!(contents(&storage), b"abXY");
        assert_eq!(contents(&storage.crash()), b"abcdef");
        assert_eq!(contents(&storage.crash_torn(10)), b"abcdef", "no torn tail over a truncation");
        file.sync().unwrap();
        assert_eq!(contents(&storage.crash()), b"abXY");
    }

    #[test]
    fn files_dirs_and_failures() {
        let (storage, file) = setup();
        assert!(storage.open(Path::new("/nodir/f"), true).is_err());
        assert!(storage.open(Path::new("/d/g"), false).is_err());
        storage.write_atomic(Path::new("/d/small"), b"1").unwrap();
        assert_eq!(storage.list(Path::new("/d")).unwrap(), vec!["f".to_string(), "small".to_string()]);
        assert_eq!(storage.crash().read_all(Path::new("/d/small")).unwrap(), b"1");
        storage.set_failing(true);
        assert!(file.append(b"x").is_err());
        assert!(file.sync().is_err());
        assert!(storage.write_atomic(Path::new("/d/small"), b"2").is_err());
        storage.set_failing(false);
        storage.remove_dir_all(Path::new("/d")).unwrap();
        assert!(!storage.exists(Path::new("/d/f")));
    }
}
