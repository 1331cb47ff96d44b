//! OffsetCommit (api 8, v2-9): partitions of unknown topics get UNKNOWN_TOPIC_OR_PARTITION;
//! the rest go to the coordinator core (O1-O4, O8), which answers once the commit is durable.
//! `retention_time_ms` (v2-4) is ignored: offsets.retention.minutes applies to every commit.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse, TopicName};
use sluice_coordinator::offsets::{OffsetCommitRequest as CoreCommit, PartitionCommit};
use sluice_coordinator::Response;

use super::str_bytes;
use crate::broker::Broker;
use crate::error_code;

pub fn start(
    broker: &Arc<Broker>,
    r: OffsetCommitRequest,
    version: i16,
) -> impl Future<Output = OffsetCommitResponse> + Send + 'static {
    // (topic, partitions in request order) for the answer; errors decided here.
    let mut order: Vec<(String, Vec<i32>)> = Vec::new();
    let mut errors: HashMap<(String, i32), i16> = HashMap::new();
    let mut commits: Vec<(String, Vec<PartitionCommit>)> = Vec::new();
    for t in r.topics {
        let name = t.name.to_string();
        let partition_count = broker.topic(&name).map_or(0, |topic| topic.partition_count());
        let mut known = Vec::new();
        order.push((name.clone(), t.partitions.iter().map(|p| p.partition_index).collect()));
        for p in t.partitions {
            if p.partition_index < 0 || p.partition_index >= partition_count {
                errors.insert((name.clone(), p.partition_index), error_code::UNKNOWN_TOPIC_OR_PARTITION);
                continue;
            }
            known.push(PartitionCommit {
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: if version >= 6 { p.committed_leader_epoch } else { -1 },
                metadata: p.committed_metadata.map(|m| m.to_string()).unwrap_or_default(),
            });
        }
        if !known.is_empty() {
            commits.push((name, known));
        }
    }
    let req = CoreCommit {
        group_id: r.group_id.to_string(),
        member_id: r.member_id.to_string(),
        group_instance_id: r.group_instance_id.map(|s| s.to_string()),
        generation_id: r.generation_id_or_member_epoch,
        version_9_or_later: version >= 9,
        topics: commits,
    };
    let groups = broker.groups.clone();
    let waiting = groups.call(|core, id, now| core.offset_commit(id, req, now));
    async move {
        match waiting.answer(&groups).await {
            Some(Response::OffsetCommit(answer)) => {
                for p in answer.partitions {
                    errors.entry((p.topic, p.partition)).or_insert(p.error_code);
                }
            }
            _ => {
                for (topic, partitions) in &order {
                    for p in partitions {
                        errors.entry((topic.clone(), *p)).or_insert(error_code::COORDINATOR_NOT_AVAILABLE);
                    }
                }
            }
        }
        let topics = order
            .into_iter()
            .map(|(topic, partitions)| {
                OffsetCommitResponseTopic::default()
                    .with_partitions(
                        partitions
                            .into_iter()
                            .map(|p| {
                                OffsetCommitResponsePartition::default().with_partition_index(p).with_error_code(
                                    errors.get(&(topic.clone(), p)).copied().unwrap_or(error_code::NONE),
                                )
                            })
                            .collect(),
                    )
                    .with_name(TopicName(str_bytes(topic)))
            })
            .collect();
        OffsetCommitResponse::default().with_topics(topics)
    }
}
