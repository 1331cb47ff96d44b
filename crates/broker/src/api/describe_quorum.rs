//! DescribeQuorum (55): Sluice keeps its metadata in one image on one node, so the metadata
//! quorum is this node alone: the single voter and the leader, at epoch 1 (the first epoch a
//! fresh single-node KRaft quorum elects), with no metadata log offsets to report (high
//! watermark and log end 0), no observers, and (v2) this node's listener. As Kafka's
//! `KafkaRaftClient.handleDescribeQuorumRequest`, anything but exactly
//! `__cluster_metadata-0` is UNKNOWN_TOPIC_OR_PARTITION on each partition asked for.

use std::sync::Arc;

use kafka_protocol::messages::describe_quorum_response::{Listener, Node, PartitionData, ReplicaState, TopicData};
use kafka_protocol::messages::{BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName};

use super::str_bytes;
use crate::broker::{now_ms, Broker};
use crate::error_code;

pub const METADATA_TOPIC: &str = "__cluster_metadata";
/// The quorum's epoch: one leader, elected once.
pub const QUORUM_EPOCH: i32 = 1;
/// `Errors.UNKNOWN_TOPIC_OR_PARTITION.message()`.
const UNKNOWN_PARTITION_MESSAGE: &str = "This server does not host this topic-partition.";

pub fn handle(broker: &Arc<Broker>, request: DescribeQuorumRequest, version: i16) -> DescribeQuorumResponse {
    let valid = request.topics.len() == 1
        && request.topics[0].topic_name.as_str() == METADATA_TOPIC
        && request.topics[0].partitions.len() == 1
        && request.topics[0].partitions[0].partition_index == 0;
    if !valid {
        let topics = request
            .topics
            .into_iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        PartitionData::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(error_code::UNKNOWN_TOPIC_OR_PARTITION)
                            .with_error_message(Some(str_bytes(UNKNOWN_PARTITION_MESSAGE)))
                    })
                    .collect();
                TopicData::default().with_topic_name(t.topic_name).with_partitions(partitions)
            })
            .collect();
        return DescribeQuorumResponse::default().with_topics(topics);
    }
    let node = BrokerId(broker.node_id());
    let now = now_ms();
    let voter = ReplicaState::default()
        .with_replica_id(node)
        .with_log_end_offset(0)
        .with_last_fetch_timestamp(now)
        .with_last_caught_up_timestamp(now);
    let partition = PartitionData::default()
        .with_partition_index(0)
        .with_error_message(Some(str_bytes("")))
        .with_leader_id(node)
        .with_leader_epoch(QUORUM_EPOCH)
        .with_high_watermark(0)
        .with_current_voters(vec![voter]);
    let (host, port) = broker.advertised();
    let listener = Listener::default().with_name(str_bytes("PLAINTEXT")).with_host(str_bytes(host)).with_port(port);
    // The voters' endpoints are a v2 field.
    let nodes = match version {
        2.. => vec![Node::default().with_node_id(node).with_listeners(vec![listener])],
        _ => vec![],
    };
    DescribeQuorumResponse::default()
        .with_error_message(Some(str_bytes("")))
        .with_topics(vec![TopicData::default()
            .with_topic_name(TopicName(str_bytes(METADATA_TOPIC)))
            .with_partitions(vec![partition])])
        .with_nodes(nodes)
}
