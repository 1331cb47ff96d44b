//! A response frame in parts: bytes the broker encoded, and ranges of segment files sent as
//! stored (Fetch). The connection writes the parts in order; file ranges go out with
//! `sendfile` when the file has a descriptor, so record bytes never pass through user space.
//!
//! **Invariant:** the parts, concatenated, are exactly one frame: the 4-byte length at the
//! start of the first part counts every byte after it, file ranges included.

use bytes::Bytes;
use sluice_log::FileSlice;

#[derive(Debug, Clone)]
pub enum Part {
    Bytes(Bytes),
    File(FileSlice),
}

impl Part {
    pub fn len(&self) -> usize {
        match self {
            Part::Bytes(b) => b.len(),
            Part::File(f) => f.len() as usize,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The frame as one buffer (file ranges read in): for tests and for storage without file
/// descriptors.
pub fn flatten(parts: &[Part]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(parts.iter().map(Part::len).sum());
    for part in parts {
        match part {
            Part::Bytes(b) => out.extend_from_slice(b),
            Part::File(f) => out.extend_from_slice(&f.read()?),
        }
    }
    Ok(out)
}
