//! The APIs and versions Sluice serves. ApiVersions advertises exactly this table (SEMANTICS
//! X1): a request outside it is answered UNSUPPORTED_VERSION.
//!
//! Floors follow Kafka 4.x (KIP-896 removed Produce v0-2, Fetch v0-3, ListOffsets v0); ceilings
//! are the highest versions whose semantics Sluice implements.

use kafka_protocol::messages::ApiKey;

/// (api key, min version, max version).
pub const SERVED_APIS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 13),
    (ApiKey::Fetch, 4, 17),
    (ApiKey::ListOffsets, 1, 11),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 1),
    // Admin APIs answered for a single node (no elections, reassignments or other log dirs).
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::AlterReplicaLogDirs, 1, 2),
    (ApiKey::DescribeLogDirs, 1, 5),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::AlterPartitionReassignments, 0, 1),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::DescribeQuorum, 0, 2),
    (ApiKey::ListConfigResources, 0, 1),
    (ApiKey::DescribeTopicPartitions, 0, 0),
    // The group coordinator (classic protocol). OffsetCommit v0-1 and OffsetFetch v0 were
    // removed in Kafka 4.0 (KIP-896).
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
];

/// The version the `kafka-protocol` codec reads and writes a served version with. Kafka 4.3
/// added versions the crate does not know yet whose layout is an older version's:
/// ListOffsets v11 (KIP-1023: only the timestamp -6 is new) is v10 on the wire, and a
/// DescribeLogDirs v5 request is v4 (its response adds `IsCordoned` and is written by
/// [`crate::response`] itself).
pub fn codec_version(api_key: ApiKey, version: i16) -> i16 {
    match (api_key, version) {
        (ApiKey::ListOffsets, 11) => 10,
        (ApiKey::DescribeLogDirs, 5) => 4,
        _ => version,
    }
}

/// The served range for an API key, if it is served at all.
pub fn served_range(api_key: ApiKey) -> Option<(i16, i16)> {
    SERVED_APIS.iter().find(|(k, _, _)| *k == api_key).map(|(_, lo, hi)| (*lo, *hi))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::Message;

    /// Every served range lies within what the codec can decode and encode.
    #[test]
    fn served_ranges_are_within_the_codec() {
        fn check<Req: Message, Resp: Message>(key: ApiKey) {
            let (lo, hi) = served_range(key).unwrap();
            assert!(lo <= hi, "{key:?}");
            let hi = codec_version(key, hi);
            assert!(Req::VERSIONS.min <= lo && hi <= Req::VERSIONS.max, "{key:?} request");
            assert!(Resp::VERSIONS.min <= lo && hi <= Resp::VERSIONS.max, "{key:?} response");
        }
        check::<ProduceRequest, ProduceResponse>(ApiKey::Produce);
        check::<FetchRequest, FetchResponse>(ApiKey::Fetch);
        check::<ListOffsetsRequest, ListOffsetsResponse>(ApiKey::ListOffsets);
        check::<MetadataRequest, MetadataResponse>(ApiKey::Metadata);
        check::<ApiVersionsRequest, ApiVersionsResponse>(ApiKey::ApiVersions);
        check::<CreateTopicsRequest, CreateTopicsResponse>(ApiKey::CreateTopics);
        check::<DeleteTopicsRequest, DeleteTopicsResponse>(ApiKey::DeleteTopics);
        check::<InitProducerIdRequest, InitProducerIdResponse>(ApiKey::InitProducerId);
        check::<DescribeConfigsRequest, DescribeConfigsResponse>(ApiKey::DescribeConfigs);
        check::<AlterConfigsRequest, AlterConfigsResponse>(ApiKey::AlterConfigs);
        check::<CreatePartitionsRequest, CreatePartitionsResponse>(ApiKey::CreatePartitions);
        check::<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse>(ApiKey::IncrementalAlterConfigs);
        check::<DescribeClusterRequest, DescribeClusterResponse>(ApiKey::DescribeCluster);
        check::<DeleteRecordsRequest, DeleteRecordsResponse>(ApiKey::DeleteRecords);
        check::<AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse>(ApiKey::AlterReplicaLogDirs);
        check::<DescribeLogDirsRequest, DescribeLogDirsResponse>(ApiKey::DescribeLogDirs);
        check::<ElectLeadersRequest, ElectLeadersResponse>(ApiKey::ElectLeaders);
        check::<AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse>(
            ApiKey::AlterPartitionReassignments,
        );
        check::<ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse>(
            ApiKey::ListPartitionReassignments,
        );
        check::<DescribeQuorumRequest, DescribeQuorumResponse>(ApiKey::DescribeQuorum);
        check::<ListConfigResourcesRequest, ListConfigResourcesResponse>(ApiKey::ListConfigResources);
        check::<DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse>(ApiKey::DescribeTopicPartitions);
        check::<FindCoordinatorRequest, FindCoordinatorResponse>(ApiKey::FindCoordinator);
        check::<JoinGroupRequest, JoinGroupResponse>(ApiKey::JoinGroup);
        check::<SyncGroupRequest, SyncGroupResponse>(ApiKey::SyncGroup);
        check::<HeartbeatRequest, HeartbeatResponse>(ApiKey::Heartbeat);
        check::<LeaveGroupRequest, LeaveGroupResponse>(ApiKey::LeaveGroup);
        check::<OffsetCommitRequest, OffsetCommitResponse>(ApiKey::OffsetCommit);
        check::<OffsetFetchRequest, OffsetFetchResponse>(ApiKey::OffsetFetch);
        check::<OffsetDeleteRequest, OffsetDeleteResponse>(ApiKey::OffsetDelete);
        check::<DescribeGroupsRequest, DescribeGroupsResponse>(ApiKey::DescribeGroups);
        check::<ListGroupsRequest, ListGroupsResponse>(ApiKey::ListGroups);
        check::<DeleteGroupsRequest, DeleteGroupsResponse>(ApiKey::DeleteGroups);
        assert_eq!(SERVED_APIS.len(), 33);
    }
}
