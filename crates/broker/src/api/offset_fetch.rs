//! OffsetFetch (api 9, v1-9): committed offsets (O5). A partition never committed, or of an
//! unknown group, is offset -1 with no error; `topics` null (v2+) means every committed
//! partition of the group; v8+ batches groups. Answers wait until what they show is durable.

use std::future::Future;
use std::sync::Arc;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse, TopicName};
use sluice_coordinator::offsets::FetchedOffset;

use super::str_bytes;
use crate::broker::Broker;

type Topics = Option<Vec<(String, Vec<i32>)>>;

pub fn start(
    broker: &Arc<Broker>,
    r: OffsetFetchRequest,
    version: i16,
) -> impl Future<Output = OffsetFetchResponse> + Send + 'static {
    let wanted: Vec<(String, Topics)> = if version >= 8 {
        r.groups
            .into_iter()
            .map(|g| {
                let topics =
                    g.topics.map(|ts| ts.into_iter().map(|t| (t.name.to_string(), t.partition_indexes)).collect());
                (g.group_id.to_string(), topics)
            })
            .collect()
    } else {
        let topics = r.topics.map(|ts| ts.into_iter().map(|t| (t.name.to_string(), t.partition_indexes)).collect());
        vec![(r.group_id.to_string(), topics)]
    };
    let groups = broker.groups.clone();
    let (fetched, delivery) = groups.read(|core| {
        wanted
            .iter()
            .map(|(group, topics)| (group.clone(), core.offset_fetch(group, topics.as_deref())))
            .collect::<Vec<_>>()
    });
    async move {
        groups.deliver(delivery).await;
        if version >= 8 {
            let groups = fetched
                .into_iter()
                .map(|(group, offsets)| {
                    OffsetFetchResponseGroup::default().with_group_id(GroupId(str_bytes(group))).with_topics(
                        by_topic(offsets)
                            .into_iter()
                            .map(|(topic, parts)| {
                                OffsetFetchResponseTopics::default()
                                    .with_name(TopicName(str_bytes(topic)))
                                    .with_partitions(
                                        parts
                                            .into_iter()
                                            .map(|o| {
                                                OffsetFetchResponsePartitions::default()
                                                    .with_partition_index(o.partition)
                                                    .with_committed_offset(o.committed_offset)
                                                    .with_committed_leader_epoch(o.committed_leader_epoch)
                                                    .with_metadata(Some(str_bytes(o.metadata)))
                                            })
                                            .collect(),
                                    )
                            })
                            .collect(),
                    )
                })
                .collect();
            return OffsetFetchResponse::default().with_groups(groups);
        }
        let offsets = fetched.into_iter().next().map(|(_, o)| o).unwrap_or_default();
        let topics = by_topic(offsets)
            .into_iter()
            .map(|(topic, parts)| {
                OffsetFetchResponseTopic::default().with_name(TopicName(str_bytes(topic))).with_partitions(
                    parts
                        .into_iter()
                        .map(|o| {
                            OffsetFetchResponsePartition::default()
                                .with_partition_index(o.partition)
                                .with_committed_offset(o.committed_offset)
                                .with_committed_leader_epoch(o.committed_leader_epoch)
                                .with_metadata(Some(str_bytes(o.metadata)))
                        })
                        .collect(),
                )
            })
            .collect();
        OffsetFetchResponse::default().with_topics(topics)
    }
}

/// Groups consecutive partitions of one topic together, keeping the order.
fn by_topic(offsets: Vec<FetchedOffset>) -> Vec<(String, Vec<FetchedOffset>)> {
    let mut out: Vec<(String, Vec<FetchedOffset>)> = Vec::new();
    for o in offsets {
        match out.last_mut() {
            Some((topic, parts)) if *topic == o.topic => parts.push(o),
            _ => out.push((o.topic.clone(), vec![o])),
        }
    }
    out
}
