//! The persisted cluster metadata image: cluster id, node id, topics with their ids, partition
//! counts, leader epochs and config overrides, and the producer-id reservation.
//!
//! Stored as one JSON file (`meta.json`) replaced atomically (write, fsync, rename, fsync dir)
//! on every change, before the change is acknowledged. A later metadata quorum replaces this
//! file with a replicated log of the same facts; nothing outside `broker` reads it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sluice_log::Storage;

pub const METADATA_FILE: &str = "meta.json";
/// Producer ids are reserved in blocks so that the file is written once per block, and an id
/// is never handed out twice, even across crashes.
pub const PRODUCER_ID_BLOCK: i64 = 1000;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TopicRecord {
    pub id: uuid::Uuid,
    pub partitions: i32,
    /// Leader epoch of every partition; bumps when leadership changes (never, on one node).
    pub leader_epoch: i32,
    pub configs: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MetadataImage {
    pub cluster_id: String,
    pub node_id: i32,
    /// First producer id not yet reserved.
    pub producer_id_reserved_until: i64,
    pub topics: BTreeMap<String, TopicRecord>,
    /// Topic id of `__consumer_offsets` (the coordinator's log, listed as an internal topic).
    /// Nil in images written before it existed; the broker then assigns one on start.
    #[serde(default)]
    pub offsets_topic_id: uuid::Uuid,
}

impl MetadataImage {
    pub fn new(node_id: i32) -> Self {
        MetadataImage {
            cluster_id: new_cluster_id(),
            node_id,
            producer_id_reserved_until: 0,
            topics: BTreeMap::new(),
            offsets_topic_id: uuid::Uuid::new_v4(),
        }
    }
}

/// Kafka cluster ids are 16 random bytes in URL-safe base64 without padding (22 chars).
fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut bits: u128 = u128::from_be_bytes(bytes);
    let mut out = String::with_capacity(22);
    for _ in 0..22 {
        out.push(ALPHABET[(bits >> 122) as usize & 63] as char);
        bits <<= 6;
    }
    out
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(METADATA_FILE)
}

pub fn load(storage: &dyn Storage, data_dir: &Path) -> Result<Option<MetadataImage>, String> {
    let p = path(data_dir);
    if !storage.exists(&p) {
        return Ok(None);
    }
    let bytes = storage.read_all(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        format!(
            "{} is not valid metadata ({e}); restore it from a backup or move the data directory aside",
            p.display()
        )
    })
}

pub fn store(storage: &dyn Storage, data_dir: &Path, image: &MetadataImage) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(image).expect("metadata serialises");
    storage.write_atomic(&path(data_dir), &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ids_look_like_kafkas() {
        let id = new_cluster_id();
        assert_eq!(id.len(), 22);
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(id, new_cluster_id());
    }
}
