//! ListOffsets (2): earliest (-2), latest (-1), max timestamp (-3), earliest local (-4), and by
//! timestamp (L3, L4, L5); with no tiered storage, latest tiered (-5) and earliest pending
//! upload (-6, v11, KIP-1023) are offset -1 as in Kafka. "Latest" is the high watermark (= last stable offset here, with no
//! transactions).

use std::collections::HashSet;
use std::sync::Arc;

use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use crate::broker::Broker;
use crate::error_code;
use crate::partition::Partition;

pub const LATEST: i64 = -1;
pub const EARLIEST: i64 = -2;
pub const MAX_TIMESTAMP: i64 = -3;
pub const EARLIEST_LOCAL: i64 = -4;
pub const LATEST_TIERED: i64 = -5;
pub const EARLIEST_PENDING_UPLOAD: i64 = -6;

/// Kafka's `ListOffsetsRequest.timestampMinSupportedVersion`: a special timestamp asked at an
/// older version is UNSUPPORTED_VERSION for that partition (ReplicaManager).
fn min_version(timestamp: i64) -> i16 {
    match timestamp {
        MAX_TIMESTAMP => 7,
        EARLIEST_LOCAL => 8,
        LATEST_TIERED => 9,
        EARLIEST_PENDING_UPLOAD => 11,
        _ => 0,
    }
}

fn lookup(p: &Partition, timestamp: i64) -> Result<(i64, i64), i16> {
    p.with_log(|log| match timestamp {
        LATEST => Ok((-1, log.high_watermark())),
        EARLIEST | EARLIEST_LOCAL => Ok((-1, log.log_start_offset())),
        LATEST_TIERED | EARLIEST_PENDING_UPLOAD => Ok((-1, -1)),
        MAX_TIMESTAMP => match log.max_timestamp() {
            Ok(Some((offset, ts))) => Ok((ts, offset)),
            Ok(None) => Ok((-1, -1)),
            Err(e) => Err(error_code::from_log(&e)),
        },
        ts if ts >= 0 => match log.offset_for_timestamp(ts) {
            Ok(Some((offset, found))) => Ok((found, offset)),
            Ok(None) => Ok((-1, -1)),
            Err(e) => Err(error_code::from_log(&e)),
        },
        _ => Err(error_code::INVALID_REQUEST),
    })
}

pub fn handle(broker: &Arc<Broker>, request: ListOffsetsRequest, version: i16) -> ListOffsetsResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let topic = broker.topic(t.name.0.as_str());
            let mut seen = HashSet::new();
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let base = ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
                    let fail = |code| base.clone().with_error_code(code).with_timestamp(-1).with_offset(-1);
                    if !seen.insert(p.partition_index) {
                        return fail(error_code::INVALID_REQUEST);
                    }
                    if version < min_version(p.timestamp) {
                        return fail(error_code::UNSUPPORTED_VERSION);
                    }
                    let Some(part) = topic.as_ref().and_then(|t| t.partition(p.partition_index)) else {
                        return fail(error_code::UNKNOWN_TOPIC_OR_PARTITION);
                    };
                    if p.current_leader_epoch >= 0 && p.current_leader_epoch != part.leader_epoch {
                        return fail(if p.current_leader_epoch > part.leader_epoch {
                            error_code::UNKNOWN_LEADER_EPOCH
                        } else {
                            error_code::FENCED_LEADER_EPOCH
                        });
                    }
                    match lookup(&part, p.timestamp) {
                        Ok((timestamp, offset)) => {
                            let found = base.with_timestamp(timestamp).with_offset(offset);
                            // The leader epoch is a v4+ field; older versions cannot carry it.
                            if version >= 4 && offset >= 0 {
                                found.with_leader_epoch(part.leader_epoch)
                            } else {
                                found
                            }
                        }
                        Err(code) => fail(code),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default().with_name(t.name).with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
