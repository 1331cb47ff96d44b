//! OffsetDelete (api 47, KIP-496, O11): deletes committed offsets of topics the group does not
//! subscribe to (any, once the group is Empty).

use std::future::Future;
use std::sync::Arc;

use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse, TopicName};

use super::str_bytes;
use crate::broker::Broker;
use crate::error_code;

pub fn start(
    broker: &Arc<Broker>,
    r: OffsetDeleteRequest,
) -> impl Future<Output = OffsetDeleteResponse> + Send + 'static {
    let group_id = r.group_id.to_string();
    let mut wanted: Vec<(String, i32)> = Vec::new();
    let mut unknown: Vec<bool> = Vec::new();
    for t in &r.topics {
        let count = broker.topic(&t.name).map_or(0, |topic| topic.partition_count());
        for p in &t.partitions {
            wanted.push((t.name.to_string(), p.partition_index));
            unknown.push(p.partition_index < 0 || p.partition_index >= count);
        }
    }
    let groups = broker.groups.clone();
    let known: Vec<(String, i32)> = wanted.iter().zip(&unknown).filter(|(_, u)| !**u).map(|(w, _)| w.clone()).collect();
    let ((group_error, errors), delivery) = groups.step(|core, _now| {
        let (group_error, errors, out) = core.offset_delete(&group_id, &known);
        ((group_error, errors), out)
    });
    async move {
        if !groups.deliver(delivery).await {
            return OffsetDeleteResponse::default().with_error_code(error_code::COORDINATOR_NOT_AVAILABLE);
        }
        if group_error != error_code::NONE {
            return OffsetDeleteResponse::default().with_error_code(group_error);
        }
        let mut known_errors = errors.into_iter();
        let mut topics: Vec<OffsetDeleteResponseTopic> = Vec::new();
        for ((topic, partition), is_unknown) in wanted.into_iter().zip(unknown) {
            let error_code = if is_unknown {
                error_code::UNKNOWN_TOPIC_OR_PARTITION
            } else {
                known_errors.next().unwrap_or(error_code::NONE)
            };
            let entry =
                OffsetDeleteResponsePartition::default().with_partition_index(partition).with_error_code(error_code);
            match topics.last_mut() {
                Some(t) if *t.name == *topic => t.partitions.push(entry),
                _ => topics.push(
                    OffsetDeleteResponseTopic::default()
                        .with_name(TopicName(str_bytes(topic)))
                        .with_partitions(vec![entry]),
                ),
            }
        }
        OffsetDeleteResponse::default().with_topics(topics)
    }
}
