//! DescribeTopicPartitions (75, KIP-966): Metadata's topic description, paginated. As Kafka's
//! `DescribeTopicPartitionsRequestHandler` and `getTopicMetadataForDescribeTopicResponse`:
//! - the topics asked for (all, `__consumer_offsets` included, when the list is empty), from
//!   the cursor's topic on, in name order; the cursor's topic starts at its partition, the
//!   others at 0;
//! - at most `response_partition_limit` partitions (clamped to 1..=2000) in all; when the
//!   limit cuts a topic, `next_cursor` names the first partition left out; when it is used up
//!   exactly, the cursor names the next topic at partition 0;
//! - an unknown topic (asked for by name) is UNKNOWN_TOPIC_OR_PARTITION, an invalid name
//!   INVALID_TOPIC_EXCEPTION; a cursor topic missing from a non-empty list, or a negative
//!   cursor partition, fails the request: every topic asked for gets INVALID_REQUEST.

use std::sync::Arc;

use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName};

use super::str_bytes;
use crate::broker::{validate_topic_name, Broker};
use crate::error_code;

/// Kafka's `max.request.partition.size.limit` default.
pub const PARTITION_LIMIT_MAX: i32 = 2000;
/// Every topic operation (READ..ALTER_CONFIGS bits): without ACLs every client may do all.
pub const TOPIC_OPERATIONS_ALL: i32 = 3576;
const OPERATIONS_OMITTED: i32 = i32::MIN;

fn name(s: &str) -> TopicName {
    TopicName(str_bytes(s))
}

pub fn handle(broker: &Arc<Broker>, request: DescribeTopicPartitionsRequest) -> DescribeTopicPartitionsResponse {
    let cursor_topic = request.cursor.as_ref().map(|c| c.topic_name.as_str().to_owned()).unwrap_or_default();
    let fetch_all = request.topics.is_empty();
    let mut names: Vec<String> = if fetch_all {
        std::iter::once(broker.offsets_topic()).chain(broker.topics()).map(|t| t.name.clone()).collect()
    } else {
        request.topics.iter().map(|t| t.name.as_str().to_owned()).collect()
    };
    names.retain(|n| n.as_str() >= cursor_topic.as_str());
    names.sort();
    names.dedup();
    let bad_cursor = request.cursor.as_ref().is_some_and(|c| {
        c.partition_index < 0 || (!fetch_all && !names.iter().any(|n| n.as_str() == c.topic_name.as_str()))
    });
    if bad_cursor {
        let topics = request
            .topics
            .into_iter()
            .map(|t| {
                DescribeTopicPartitionsResponseTopic::default()
                    .with_error_code(error_code::INVALID_REQUEST)
                    .with_name(Some(t.name))
                    .with_topic_authorized_operations(OPERATIONS_OMITTED)
            })
            .collect();
        return DescribeTopicPartitionsResponse::default().with_topics(topics);
    }

    let node = BrokerId(broker.node_id());
    let mut remaining = request.response_partition_limit.clamp(1, PARTITION_LIMIT_MAX);
    let mut topics = Vec::new();
    let mut next_cursor = None;
    for topic_name in names {
        if remaining == 0 {
            next_cursor = Some(Cursor::default().with_topic_name(name(&topic_name)).with_partition_index(0));
            break;
        }
        let base = DescribeTopicPartitionsResponseTopic::default()
            .with_name(Some(name(&topic_name)))
            .with_is_internal(broker.offsets_topic().name == topic_name)
            .with_topic_authorized_operations(TOPIC_OPERATIONS_ALL);
        let Some(topic) = broker.topic(&topic_name) else {
            if !fetch_all {
                let code = match validate_topic_name(&topic_name) {
                    Ok(()) => error_code::UNKNOWN_TOPIC_OR_PARTITION,
                    Err(_) => error_code::INVALID_TOPIC_EXCEPTION,
                };
                topics.push(base.with_error_code(code));
            }
            continue;
        };
        let start = match &request.cursor {
            Some(c) if c.topic_name.as_str() == topic_name => c.partition_index,
            _ => 0,
        };
        let count = topic.partition_count();
        let upper = count.min(start.saturating_add(remaining));
        let partitions: Vec<_> = (start..upper)
            .filter_map(|i| topic.partition(i))
            .map(|p| {
                DescribeTopicPartitionsResponsePartition::default()
                    .with_partition_index(p.index)
                    .with_leader_id(node)
                    .with_leader_epoch(p.leader_epoch)
                    .with_replica_nodes(vec![node])
                    .with_isr_nodes(vec![node])
                    .with_eligible_leader_replicas(Some(vec![]))
                    .with_last_known_elr(Some(vec![]))
            })
            .collect();
        remaining -= partitions.len() as i32;
        topics.push(base.with_topic_id(topic.id).with_partitions(partitions));
        if upper < count {
            next_cursor = Some(Cursor::default().with_topic_name(name(&topic_name)).with_partition_index(upper));
            break;
        }
    }
    DescribeTopicPartitionsResponse::default().with_topics(topics).with_next_cursor(next_cursor)
}
