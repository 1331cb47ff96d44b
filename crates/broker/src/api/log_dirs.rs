//! DescribeLogDirs (35) and AlterReplicaLogDirs (34) for the one log directory Sluice has: the
//! data directory (absolute).
//!
//! DescribeLogDirs, as Kafka's `ReplicaManager.describeLogDirs`: every partition asked for
//! (all when the topic list is null, `__consumer_offsets` included) that exists, with its size
//! (all segments), offset lag 0 (max(HW - LEO, 0) for a current log) and is_future false;
//! unknown topics and partitions are left out. v4 adds the volume's total and usable bytes
//! (statvfs, as Java's `FileStore.getTotalSpace`/`getUsableSpace`; -1 when unknown).
//!
//! AlterReplicaLogDirs, as Kafka's `ReplicaManager.alterReplicaLogDirs`: a path other than the
//! data directory is LOG_DIR_NOT_FOUND for every partition named; moving a partition to the
//! directory it is in is a no-op (NONE); an unknown partition is UNKNOWN_TOPIC_OR_PARTITION.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kafka_protocol::messages::alter_replica_log_dirs_response::{
    AlterReplicaLogDirPartitionResult, AlterReplicaLogDirTopicResult,
};
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{
    AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse, DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName,
};

use super::str_bytes;
use crate::broker::{Broker, Topic};
use crate::error_code;

/// The data directory as an absolute path (Kafka reports log dirs absolute).
pub fn log_dir(broker: &Broker) -> PathBuf {
    let dir = &broker.config.data_dir;
    std::fs::canonicalize(dir).unwrap_or_else(|_| std::path::absolute(dir).unwrap_or_else(|_| dir.clone()))
}

/// (total, usable) bytes of the volume holding `dir`, or (-1, -1).
fn volume_bytes(dir: &Path) -> (i64, i64) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return (-1, -1);
    };
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a NUL-terminated string and `stat` a valid, writable statvfs.
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return (-1, -1);
    }
    let block = stat.f_frsize as i64;
    (stat.f_blocks as i64 * block, stat.f_bavail as i64 * block)
}

fn describe_topic(topic: &Topic, wanted: Option<&[i32]>) -> Option<DescribeLogDirsTopic> {
    let partitions: Vec<_> = topic
        .partitions
        .read()
        .iter()
        .filter(|p| wanted.is_none_or(|w| w.contains(&p.index)))
        .map(|p| {
            DescribeLogDirsPartition::default()
                .with_partition_index(p.index)
                .with_partition_size(p.with_log(|log| log.size_bytes()) as i64)
                .with_offset_lag(0)
                .with_is_future_key(false)
        })
        .collect();
    (!partitions.is_empty()).then(|| {
        DescribeLogDirsTopic::default().with_name(TopicName(str_bytes(topic.name.clone()))).with_partitions(partitions)
    })
}

pub fn describe(broker: &Arc<Broker>, request: DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    let topics: Vec<DescribeLogDirsTopic> = match &request.topics {
        None => std::iter::once(broker.offsets_topic())
            .chain(broker.topics())
            .filter_map(|t| describe_topic(&t, None))
            .collect(),
        Some(list) => list
            .iter()
            .filter_map(|t| {
                broker.topic(t.topic.as_str()).and_then(|topic| describe_topic(&topic, Some(&t.partitions)))
            })
            .collect(),
    };
    let dir = log_dir(broker);
    let (total, usable) = volume_bytes(&dir);
    let result = DescribeLogDirsResult::default()
        .with_log_dir(str_bytes(dir.display().to_string()))
        .with_topics(topics)
        .with_total_bytes(total)
        .with_usable_bytes(usable);
    DescribeLogDirsResponse::default().with_results(vec![result])
}

pub fn alter(broker: &Arc<Broker>, request: AlterReplicaLogDirsRequest) -> AlterReplicaLogDirsResponse {
    let ours = log_dir(broker);
    let mut results = Vec::new();
    for dir in request.dirs {
        let path = dir.path.as_str();
        let trimmed = if path.len() > 1 { path.trim_end_matches('/') } else { path };
        let found = Path::new(trimmed) == ours;
        for t in dir.topics {
            let topic = broker.topic(t.name.as_str());
            let partitions = t
                .partitions
                .iter()
                .map(|&index| {
                    let code = if !found {
                        error_code::LOG_DIR_NOT_FOUND
                    } else if topic.as_ref().and_then(|t| t.partition(index)).is_none() {
                        error_code::UNKNOWN_TOPIC_OR_PARTITION
                    } else {
                        error_code::NONE
                    };
                    AlterReplicaLogDirPartitionResult::default().with_partition_index(index).with_error_code(code)
                })
                .collect();
            results.push(AlterReplicaLogDirTopicResult::default().with_topic_name(t.name).with_partitions(partitions));
        }
    }
    AlterReplicaLogDirsResponse::default().with_results(results)
}
