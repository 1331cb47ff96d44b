//! Opening a partition log: listing segments, recovery (L9) and rebuilding state.
//!
//! Every open walks the batch headers of every segment, because producer state is rebuilt
//! from them (there are no producer snapshots). The same walk rebuilds the indexes and
//! checks that each batch frames and continues the offsets. Without a clean-shutdown marker,
//! segments from the one holding the recovery point onward are also CRC-checked. The first
//! bad or partial batch cuts its segment there and every later segment is deleted; the
//! result is synced before the log serves anything, so the high watermark can start at the
//! log end.
//!
//! Stray files: an `.index`/`.timeindex` without its `.log` and a leftover `*.tmp` of our own
//! small files are removed; names the log does not own are left alone.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::config::LogConfig;
use crate::error::LogError;
use crate::producer_state::ProducerStateManager;
use crate::segment::{self, io_error, Segment, LOG_SUFFIX, OFFSET_INDEX_SUFFIX, TIME_INDEX_SUFFIX};
use crate::storage::Storage;

use super::{PartitionLog, SegmentPosition, CLEAN_SHUTDOWN_FILE, LOG_START_OFFSET_FILE, RECOVERY_POINT_FILE};

pub(super) fn open(
    storage: Arc<dyn Storage>,
    dir: PathBuf,
    config: LogConfig,
    now_ms: i64,
) -> Result<PartitionLog, LogError> {
    storage.create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
    let marker = dir.join(CLEAN_SHUTDOWN_FILE);
    let clean = storage.exists(&marker);
    let recovery_point = read_recovery_point(&*storage, &dir);
    let bases = list_segments(&*storage, &dir)?;
    if clean {
        // Gone before anything is written, so a crash from here on is recovered.
        storage.remove_file(&marker).map_err(|e| io_error(&marker, e))?;
    }

    // CRC checks start at the segment holding the recovery point (all of them if none does).
    let verify_from = match clean {
        true => i64::MAX,
        false => bases.iter().copied().filter(|&b| b <= recovery_point).max().unwrap_or(i64::MIN),
    };
    let mut producers = ProducerStateManager::new();
    let mut segments: BTreeMap<i64, Segment> = BTreeMap::new();
    let mut cut_from = None;
    for (i, &base) in bases.iter().enumerate() {
        if let Some(previous) = segments.values().next_back() {
            if previous.next_offset() != base {
                tracing::warn!(dir = %dir.display(), base, expected = previous.next_offset(), "segment does not continue the log");
                cut_from = Some(i);
                break;
            }
        }
        let verify_crc = base >= verify_from;
        let (segment, cut) = Segment::load(&*storage, &dir, base, verify_crc, &config, &mut |h| producers.record(h))?;
        segments.insert(base, segment);
        if cut {
            cut_from = Some(i + 1);
            break;
        }
    }
    let removed = match cut_from {
        Some(i) => &bases[i..],
        None => &[],
    };
    for &base in removed {
        tracing::warn!(dir = %dir.display(), base, "deleting segment after a truncated one");
        Segment::delete_files(&*storage, &dir, base)?;
    }
    if segments.is_empty() {
        segments.insert(0, Segment::create(&*storage, &dir, 0)?);
    }
    producers.expire(now_ms);

    let first = segments.values().next().expect("at least one segment");
    let last = segments.values().next_back().expect("at least one segment");
    // The start DeleteRecords persisted, within what recovery kept.
    let log_start_offset = read_offset_file(&*storage, &dir.join(LOG_START_OFFSET_FILE))
        .map_or(first.base_offset(), |o| o.max(first.base_offset()))
        .min(last.next_offset());
    let log = PartitionLog {
        log_start_offset,
        log_end_offset: last.next_offset(),
        high_watermark: last.next_offset(),
        hw_position: SegmentPosition { segment_base: last.base_offset(), position: last.size() },
        pending: VecDeque::new(),
        producers,
        failed: OnceLock::new(),
        closed: false,
        dir,
        storage,
        config,
        segments,
    };
    if !clean || cut_from.is_some() {
        // What was scanned (and cut) may sit only in the page cache of a crashed process: make
        // it durable before anyone reads it, then nothing below the log end needs a re-check.
        for segment in log.segments.values() {
            segment.sync()?;
        }
        log.write_recovery_point(log.log_end_offset)?;
    }
    Ok(log)
}

/// The recovery point, or 0 (check everything) when the file is missing or unreadable.
fn read_recovery_point(storage: &dyn Storage, dir: &Path) -> i64 {
    read_offset_file(storage, &dir.join(RECOVERY_POINT_FILE)).unwrap_or(0)
}

/// An offset kept as decimal text; None when the file is missing or unreadable (logged).
fn read_offset_file(storage: &dyn Storage, path: &Path) -> Option<i64> {
    if !storage.exists(path) {
        return None;
    }
    let parsed =
        storage.read_all(path).ok().and_then(|bytes| String::from_utf8(bytes).ok()?.trim().parse::<i64>().ok());
    if parsed.is_none() {
        tracing::warn!(path = %path.display(), "unreadable offset file; ignored");
    }
    parsed
}

/// Base offsets of the `.log` files, ascending; removes stray index and temporary files.
fn list_segments(storage: &dyn Storage, dir: &Path) -> Result<Vec<i64>, LogError> {
    let names = storage.list(dir).map_err(|e| io_error(dir, e))?;
    let mut bases: Vec<i64> = names
        .iter()
        .filter_map(|n| segment::parse_file_name(n))
        .filter(|&(base, suffix)| suffix == LOG_SUFFIX && base >= 0)
        .map(|(base, _)| base)
        .collect();
    bases.sort_unstable();
    let own_tmp = [
        format!("{CLEAN_SHUTDOWN_FILE}.tmp"),
        format!("{RECOVERY_POINT_FILE}.tmp"),
        format!("{LOG_START_OFFSET_FILE}.tmp"),
    ];
    for name in &names {
        let orphan_index = segment::parse_file_name(name).is_some_and(|(base, suffix)| {
            (suffix == OFFSET_INDEX_SUFFIX || suffix == TIME_INDEX_SUFFIX) && bases.binary_search(&base).is_err()
        });
        if orphan_index || own_tmp.contains(name) {
            let path = dir.join(name);
            tracing::info!(path = %path.display(), "removing stray file");
            storage.remove_file(&path).map_err(|e| io_error(&path, e))?;
        }
    }
    Ok(bases)
}
