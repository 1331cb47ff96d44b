//! ListPartitionReassignments (46) and AlterPartitionReassignments (45) on one node, as
//! Kafka's controller (`ReplicationControlManager`) answers them there:
//! - no reassignment is ever in progress, so List answers no topics;
//! - Alter to exactly this node is a no-op (NONE); a replica list naming another broker id is
//!   INVALID_REPLICA_ASSIGNMENT ("... includes broker N, but no such broker is registered."),
//!   as is an empty list or a duplicate; a null list (cancel) is NO_REASSIGNMENT_IN_PROGRESS;
//!   an unknown topic or partition UNKNOWN_TOPIC_OR_PARTITION.

use std::sync::Arc;

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
};

use super::str_bytes;
use crate::broker::Broker;
use crate::error_code;

pub fn list(_broker: &Arc<Broker>, _request: ListPartitionReassignmentsRequest) -> ListPartitionReassignmentsResponse {
    ListPartitionReassignmentsResponse::default()
}

/// Kafka's `validateManualPartitionAssignment`: in ascending id order, each id must be a
/// registered broker (only this node is) and appear once.
fn check_replicas(node: i32, replicas: &[BrokerId]) -> Result<(), String> {
    if replicas.is_empty() {
        return Err("The manual partition assignment includes an empty replica list.".into());
    }
    let mut sorted: Vec<i32> = replicas.iter().map(|r| r.0).collect();
    sorted.sort_unstable();
    let mut previous = None;
    for id in sorted {
        if id != node {
            return Err(format!(
                "The manual partition assignment includes broker {id}, but no such broker is registered."
            ));
        }
        if previous == Some(id) {
            return Err(format!("The manual partition assignment includes the broker {id} more than once."));
        }
        previous = Some(id);
    }
    Ok(())
}

pub fn alter(broker: &Arc<Broker>, request: AlterPartitionReassignmentsRequest) -> AlterPartitionReassignmentsResponse {
    let node = broker.node_id();
    let responses = request
        .topics
        .into_iter()
        .map(|t| {
            let topic = broker.topic(t.name.as_str());
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let (code, message) = match &topic {
                        None => (
                            error_code::UNKNOWN_TOPIC_OR_PARTITION,
                            Some(format!("Unable to find a topic named {}.", t.name.as_str())),
                        ),
                        Some(topic) if topic.partition(p.partition_index).is_none() => (
                            error_code::UNKNOWN_TOPIC_OR_PARTITION,
                            Some(format!("Unable to find partition {}:{}.", t.name.as_str(), p.partition_index)),
                        ),
                        Some(_) => match &p.replicas {
                            None => (error_code::NO_REASSIGNMENT_IN_PROGRESS, None),
                            Some(replicas) => match check_replicas(node, replicas) {
                                Ok(()) => (error_code::NONE, None),
                                Err(m) => (error_code::INVALID_REPLICA_ASSIGNMENT, Some(m)),
                            },
                        },
                    };
                    ReassignablePartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                        .with_error_message(message.map(str_bytes))
                })
                .collect();
            ReassignableTopicResponse::default().with_name(t.name).with_partitions(partitions)
        })
        .collect();
    AlterPartitionReassignmentsResponse::default()
        .with_allow_replication_factor_change(request.allow_replication_factor_change)
        .with_responses(responses)
}
