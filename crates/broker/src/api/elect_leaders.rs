//! ElectLeaders (43). On one node every partition's leader is this node, its only and
//! preferred replica, so there is never an election to hold. As Kafka's controller
//! (`ReplicationControlManager.electLeaders`): each partition named gets ELECTION_NOT_NEEDED,
//! an unknown topic or partition UNKNOWN_TOPIC_OR_PARTITION (with Kafka's messages); a null
//! list means every partition, and then the partitions needing no election are left out, so
//! each topic is listed with no results.

use std::sync::Arc;

use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};

use super::str_bytes;
use crate::broker::Broker;
use crate::error_code;

pub fn handle(broker: &Arc<Broker>, request: ElectLeadersRequest) -> ElectLeadersResponse {
    let results = match request.topic_partitions {
        None => std::iter::once(broker.offsets_topic())
            .chain(broker.topics())
            .map(|t| ReplicaElectionResult::default().with_topic(TopicName(str_bytes(t.name.clone()))))
            .collect(),
        Some(list) => list
            .into_iter()
            .map(|t| {
                let topic = broker.topic(t.topic.as_str());
                let partition_result = t
                    .partitions
                    .iter()
                    .map(|&index| {
                        let (code, message) = match &topic {
                            None => (
                                error_code::UNKNOWN_TOPIC_OR_PARTITION,
                                format!("No such topic as {}", t.topic.as_str()),
                            ),
                            Some(topic) if topic.partition(index).is_none() => (
                                error_code::UNKNOWN_TOPIC_OR_PARTITION,
                                format!("No such partition as {}-{index}", t.topic.as_str()),
                            ),
                            Some(_) => (
                                error_code::ELECTION_NOT_NEEDED,
                                "Leader election not needed for topic partition.".to_string(),
                            ),
                        };
                        PartitionResult::default()
                            .with_partition_id(index)
                            .with_error_code(code)
                            .with_error_message(Some(str_bytes(message)))
                    })
                    .collect();
                ReplicaElectionResult::default().with_topic(t.topic).with_partition_result(partition_result)
            })
            .collect(),
    };
    ElectLeadersResponse::default().with_replica_election_results(results)
}
