//! Metadata (3): this broker, and the requested topics (all when the list is null, the internal
//! `__consumer_offsets` among them with `is_internal`), creating unknown ones when auto-creation
//! is allowed.

use std::sync::Arc;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};

use super::str_bytes;
use crate::broker::{Broker, Topic};
use crate::error_code;

/// Authorized-operations fields when the client did not ask for them.
const OPERATIONS_OMITTED: i32 = i32::MIN;

pub fn handle(broker: &Arc<Broker>, request: MetadataRequest, version: i16) -> MetadataResponse {
    let (host, port) = broker.advertised();
    let node = BrokerId(broker.node_id());
    // Before v4 there was no flag and auto-creation was always requested.
    let allow_auto_create = version < 4 || request.allow_auto_topic_creation;
    let all = || std::iter::once(broker.offsets_topic()).chain(broker.topics()).map(|t| describe(&t, node)).collect();
    let topics = match request.topics {
        None => all(),
        // v0 has no null: an empty list meant all topics.
        Some(list) if list.is_empty() && version == 0 => all(),
        Some(list) => list
            .into_iter()
            .map(|wanted| match wanted.name {
                Some(name) => match broker.topic_or_create(&name, allow_auto_create) {
                    Ok(t) => describe(&t, node),
                    Err(e) => MetadataResponseTopic::default()
                        .with_name(Some(name))
                        .with_error_code(
                            if e.code == error_code::UNKNOWN_TOPIC_OR_PARTITION
                                || e.code == error_code::INVALID_TOPIC_EXCEPTION
                            {
                                e.code
                            } else {
                                error_code::UNKNOWN_TOPIC_OR_PARTITION
                            },
                        )
                        .with_topic_authorized_operations(OPERATIONS_OMITTED),
                },
                None => match broker.topic_by_id(wanted.topic_id) {
                    Some(t) => describe(&t, node),
                    None => MetadataResponseTopic::default()
                        .with_topic_id(wanted.topic_id)
                        .with_error_code(error_code::UNKNOWN_TOPIC_ID)
                        .with_topic_authorized_operations(OPERATIONS_OMITTED),
                },
            })
            .collect(),
    };
    MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(node)
            .with_host(str_bytes(host))
            .with_port(port as i32)])
        .with_cluster_id(Some(str_bytes(broker.cluster_id())))
        .with_controller_id(node)
        .with_topics(topics)
        .with_cluster_authorized_operations(OPERATIONS_OMITTED)
}

fn describe(topic: &Topic, node: BrokerId) -> MetadataResponseTopic {
    let partitions = topic
        .partitions
        .read()
        .iter()
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p.index)
                .with_leader_id(node)
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(vec![node])
                .with_isr_nodes(vec![node])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(str_bytes(topic.name.clone()))))
        .with_topic_id(topic.id)
        .with_is_internal(topic.internal)
        .with_partitions(partitions)
        .with_topic_authorized_operations(OPERATIONS_OMITTED)
}
