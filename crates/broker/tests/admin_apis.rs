//! The single-node admin APIs over the wire, each answer as Kafka 4.3.1 gives it on one node
//! (observed against a real broker): DeleteRecords, DescribeTopicPartitions, DescribeLogDirs,
//! AlterReplicaLogDirs, ElectLeaders, List/AlterPartitionReassignments, DescribeQuorum,
//! ListConfigResources, the broker's listener configs, ListOffsets v11 and Produce v13.

mod common;

use common::*;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_owned())
}

async fn delete_records(c: &mut Conn, topic: &str, parts: &[(i32, i64)]) -> Vec<(i32, i16, i64)> {
    let req = DeleteRecordsRequest::default().with_timeout_ms(1000).with_topics(vec![
        delete_records_request::DeleteRecordsTopic::default().with_name(name(topic)).with_partitions(
            parts
                .iter()
                .map(|&(p, o)| {
                    delete_records_request::DeleteRecordsPartition::default().with_partition_index(p).with_offset(o)
                })
                .collect(),
        ),
    ]);
    let r: DeleteRecordsResponse = c.call(ApiKey::DeleteRecords, 2, &req).await;
    r.topics[0].partitions.iter().map(|p| (p.partition_index, p.error_code, p.low_watermark)).collect()
}

async fn earliest(c: &mut Conn, topic: &str, partition: i32) -> i64 {
    list_offset(c, topic, partition, -2, 9).await.1
}

async fn list_offset(c: &mut Conn, topic: &str, partition: i32, timestamp: i64, version: i16) -> (i16, i64) {
    let req = ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![
        list_offsets_request::ListOffsetsTopic::default().with_name(name(topic)).with_partitions(vec![
            list_offsets_request::ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_timestamp(timestamp),
        ]),
    ]);
    let r: ListOffsetsResponse = c.call(ApiKey::ListOffsets, version, &req).await;
    let p = &r.topics[0].partitions[0];
    (p.error_code, p.offset)
}

/// Segments of two 10-record batches, so DeleteRecords has whole segments to delete.
fn small_segments(c: &mut sluice_broker::BrokerConfig) {
    c.log_defaults.segment_bytes = 4096;
    c.log_defaults.max_message_bytes = 4096;
}

/// Kafka's `ReplicaManager.deleteRecords` on one node, and the new log start surviving a
/// restart (the log's `log-start-offset` file).
#[tokio::test]
async fn delete_records_moves_the_log_start_and_it_survives_a_restart() {
    let b = TestBroker::start_with(small_segments).await;
    let mut c = b.connect().await;
    assert_eq!(create_topic(&mut c, "dr", 3, &[]).await.error_code, 0);
    for p in 0..2 {
        for i in 0..10 {
            let v = format!("record-{i:02}-{}", "x".repeat(100));
            assert_eq!(produce(&mut c, "dr", p, batch(&[v.as_bytes(); 10])).await.error_code, 0);
        }
    }
    let got = delete_records(&mut c, "dr", &[(0, -1), (1, 45), (2, 1), (7, 0)]).await;
    // -1 = the high watermark; past it OFFSET_OUT_OF_RANGE; no such partition UNKNOWN.
    assert_eq!(got, [(0, 0, 100), (1, 0, 45), (2, 1, -1), (7, 3, -1)]);
    assert_eq!(delete_records(&mut c, "dr", &[(1, -2)]).await, [(1, 1, -1)], "negative offsets are out of range");
    assert_eq!(delete_records(&mut c, "dr", &[(1, 10)]).await, [(1, 0, 45)], "never moves back");
    assert_eq!(delete_records(&mut c, "nope", &[(0, -1)]).await, [(0, 3, -1)]);
    assert_eq!(delete_records(&mut c, "__consumer_offsets", &[(0, -1)]).await, [(0, 17, -1)], "internal topic");

    assert_eq!(fetch(&mut c, "dr", 1, 44, 0, 1 << 20).await.error_code, 1, "below the start: OFFSET_OUT_OF_RANGE");
    let from_start = fetch(&mut c, "dr", 1, 45, 0, 1 << 20).await;
    assert_eq!(from_start.error_code, 0);
    assert_eq!(from_start.log_start_offset, 45);
    assert_eq!(batches_in(from_start.records.unwrap())[0], (40, 10), "whole batches, from the one holding 45");
    assert_eq!((earliest(&mut c, "dr", 0).await, earliest(&mut c, "dr", 1).await), (100, 45));
    // Segments wholly below the start are gone (each holds a few 10-record batches).
    let dir = b.dir.path().join("dr-1");
    let first_segment = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok()?.strip_suffix(".log")?.parse::<i64>().ok())
        .min()
        .unwrap();
    assert!(first_segment > 0 && first_segment <= 45, "first segment {first_segment}");

    drop(c);
    let dir = b.stop().await;
    let b = TestBroker::start_in(dir, small_segments).await;
    let mut c = b.connect().await;
    assert_eq!((earliest(&mut c, "dr", 0).await, earliest(&mut c, "dr", 1).await), (100, 45), "after a restart");
    assert_eq!(fetch(&mut c, "dr", 1, 44, 0, 1 << 20).await.error_code, 1);
    assert_eq!(produce(&mut c, "dr", 0, batch(&[b"more"])).await.base_offset, 100);
}

async fn describe_partitions(
    c: &mut Conn,
    topics: &[&str],
    limit: i32,
    cursor: Option<(&str, i32)>,
) -> DescribeTopicPartitionsResponse {
    let req = DescribeTopicPartitionsRequest::default()
        .with_topics(
            topics
                .iter()
                .map(|t| describe_topic_partitions_request::TopicRequest::default().with_name(name(t)))
                .collect(),
        )
        .with_response_partition_limit(limit)
        .with_cursor(cursor.map(|(t, p)| {
            describe_topic_partitions_request::Cursor::default().with_topic_name(name(t)).with_partition_index(p)
        }));
    c.call(ApiKey::DescribeTopicPartitions, 0, &req).await
}

/// A topic as (name, error code, partition indexes).
type TopicSummary = (String, i16, Vec<i32>);

/// The topics and the next cursor.
fn summary(r: &DescribeTopicPartitionsResponse) -> (Vec<TopicSummary>, Option<(String, i32)>) {
    let topics = r
        .topics
        .iter()
        .map(|t| {
            let name = t.name.as_ref().unwrap().as_str().to_owned();
            (name, t.error_code, t.partitions.iter().map(|p| p.partition_index).collect())
        })
        .collect();
    (topics, r.next_cursor.as_ref().map(|c| (c.topic_name.as_str().to_owned(), c.partition_index)))
}

fn t(name: &str, code: i16, partitions: &[i32]) -> TopicSummary {
    (name.to_owned(), code, partitions.to_vec())
}

/// KIP-966 pagination as Kafka's `getTopicMetadataForDescribeTopicResponse` does it.
#[tokio::test]
async fn describe_topic_partitions_paginates_like_kafka() {
    let b = TestBroker::start().await;
    let mut c = b.connect().await;
    let tb = create_topic(&mut c, "tb", 3, &[]).await;
    create_topic(&mut c, "tc", 3, &[]).await;

    let r = describe_partitions(&mut c, &["tc", "tb"], 2, None).await;
    assert_eq!(summary(&r), (vec![t("tb", 0, &[0, 1])], Some(("tb".into(), 2))), "sorted, cut at the limit");
    let p = &r.topics[0];
    assert_eq!((p.topic_id, p.is_internal, p.topic_authorized_operations), (tb.topic_id, false, 3576));
    let p0 = &p.partitions[0];
    let node = BrokerId(b.broker.node_id());
    assert_eq!((p0.leader_id, &p0.replica_nodes, &p0.isr_nodes), (node, &vec![node], &vec![node]));
    assert_eq!((&p0.eligible_leader_replicas, &p0.offline_replicas), (&Some(vec![]), &vec![]));

    let r = describe_partitions(&mut c, &["tc", "tb", "nope"], 10, Some(("tb", 2))).await;
    assert_eq!(summary(&r), (vec![t("tb", 0, &[2]), t("tc", 0, &[0, 1, 2])], None), "topics before the cursor skipped");
    // Exactly used up at a topic's end: the cursor is the next topic at 0.
    let r = describe_partitions(&mut c, &["tb", "tc"], 3, None).await;
    assert_eq!(summary(&r), (vec![t("tb", 0, &[0, 1, 2])], Some(("tc".into(), 0))));
    // Limit 0 is 1.
    let r = describe_partitions(&mut c, &["tc"], 0, None).await;
    assert_eq!(summary(&r), (vec![t("tc", 0, &[0])], Some(("tc".into(), 1))));
    // Unknown and invalid names.
    let r = describe_partitions(&mut c, &["nope", "bad name!"], 10, None).await;
    assert_eq!(summary(&r), (vec![t("bad name!", 17, &[]), t("nope", 3, &[])], None));
    // A cursor past the end: the topic with no partitions.
    let r = describe_partitions(&mut c, &["tb"], 10, Some(("tb", 7))).await;
    assert_eq!(summary(&r), (vec![t("tb", 0, &[])], None));
    // A cursor topic not asked for: the request fails, every topic INVALID_REQUEST.
    let r = describe_partitions(&mut c, &["tb"], 10, Some(("tc", 0))).await;
    assert_eq!(summary(&r), (vec![t("tb", 42, &[])], None));
    assert_eq!(r.topics[0].topic_authorized_operations, i32::MIN);
    // All topics, the internal one included.
    let r = describe_partitions(&mut c, &[], 100, None).await;
    let names: Vec<_> = summary(&r).0.into_iter().map(|(n, _, _)| n).collect();
    assert_eq!(names, ["__consumer_offsets", "tb", "tc"]);
    assert!(r.topics[0].is_internal);
}

#[tokio::test]
async fn describe_log_dirs_reports_the_data_dir_and_partition_sizes() {
    let b = TestBroker::start().await;
    let mut c = b.connect().await;
    create_topic(&mut c, "ld", 2, &[]).await;
    produce(&mut c, "ld", 1, batch(&[b"hello"])).await;
    let dir = std::fs::canonicalize(b.dir.path()).unwrap().display().to_string();
    let req = DescribeLogDirsRequest::default().with_topics(Some(vec![
        describe_log_dirs_request::DescribableLogDirTopic::default().with_topic(name("ld")).with_partitions(vec![1, 9]),
        describe_log_dirs_request::DescribableLogDirTopic::default().with_topic(name("nope")).with_partitions(vec![0]),
    ]));
    let r: DescribeLogDirsResponse = c.call(ApiKey::DescribeLogDirs, 4, &req).await;
    let d = &r.results[0];
    assert_eq!((r.error_code, d.error_code, d.log_dir.as_str()), (0, 0, dir.as_str()));
    assert!(d.total_bytes > 0 && d.usable_bytes > 0 && d.usable_bytes <= d.total_bytes);
    assert_eq!(d.topics.len(), 1, "unknown topics and partitions are left out");
    let p = &d.topics[0].partitions;
    assert_eq!(p.len(), 1);
    assert_eq!((p[0].partition_index, p[0].offset_lag, p[0].is_future_key), (1, 0, false));
    assert_eq!(
        p[0].partition_size,
        b.broker.topic("ld").unwrap().partition(1).unwrap().with_log(|l| l.size_bytes()) as i64
    );
    assert!(p[0].partition_size > 0);

    // v5 (Kafka 4.3) adds IsCordoned (false) after UsableBytes: raw bytes checked here.
    let id = c.send(ApiKey::DescribeLogDirs, 5, &DescribeLogDirsRequest::default().with_topics(Some(vec![]))).await;
    let mut frame = c.read_frame().await.unwrap();
    let header = ResponseHeader::decode(&mut frame, 1).unwrap();
    assert_eq!(header.correlation_id, id);
    let body = frame.clone();
    // Read as v4, one byte is left over: v4's reader takes IsCordoned for the result's tag
    // count and that count for the response's.
    let v4 = DescribeLogDirsResponse::decode(&mut frame, 4).unwrap();
    assert_eq!(frame.as_ref(), &[0], "exactly one byte more than v4");
    let dir_len = v4.results[0].log_dir.len();
    // throttle 4 + error 2 + results len 1 + error 2 + dir (1 + len) + topics len 1 + total 8 + usable 8.
    let cordoned_at = 4 + 2 + 1 + 2 + 1 + dir_len + 1 + 16;
    assert_eq!(&body[cordoned_at..], &[0, 0, 0], "IsCordoned false, then the two tag sections");

    // AlterReplicaLogDirs: the current dir is a no-op; another dir is LOG_DIR_NOT_FOUND.
    for (path, codes) in [(dir.as_str(), [0, 3]), ("/elsewhere", [57, 57])] {
        let req = AlterReplicaLogDirsRequest::default().with_dirs(vec![
            alter_replica_log_dirs_request::AlterReplicaLogDir::default().with_path(s(path)).with_topics(vec![
                alter_replica_log_dirs_request::AlterReplicaLogDirTopic::default()
                    .with_name(name("ld"))
                    .with_partitions(vec![0, 9]),
            ]),
        ]);
        let r: AlterReplicaLogDirsResponse = c.call(ApiKey::AlterReplicaLogDirs, 2, &req).await;
        let got: Vec<i16> = r.results[0].partitions.iter().map(|p| p.error_code).collect();
        assert_eq!(got, codes, "{path}");
    }
}

#[tokio::test]
async fn elections_and_reassignments_on_one_node() {
    let b = TestBroker::start().await;
    let mut c = b.connect().await;
    create_topic(&mut c, "el", 2, &[]).await;
    let node = b.broker.node_id();

    let req =
        ElectLeadersRequest::default().with_election_type(0).with_timeout_ms(1000).with_topic_partitions(Some(vec![
            elect_leaders_request::TopicPartitions::default().with_topic(name("el")).with_partitions(vec![0, 1, 7]),
            elect_leaders_request::TopicPartitions::default().with_topic(name("nope")).with_partitions(vec![0]),
        ]));
    let r: ElectLeadersResponse = c.call(ApiKey::ElectLeaders, 2, &req).await;
    let got: Vec<(i32, i16, String)> = r
        .replica_election_results
        .iter()
        .flat_map(|t| t.partition_result.iter())
        .map(|p| (p.partition_id, p.error_code, p.error_message.as_ref().unwrap().to_string()))
        .collect();
    let not_needed = "Leader election not needed for topic partition.".to_string();
    assert_eq!(
        got,
        [
            (0, 84, not_needed.clone()),
            (1, 84, not_needed),
            (7, 3, "No such partition as el-7".into()),
            (0, 3, "No such topic as nope".into())
        ]
    );
    // Every partition: each topic listed, with nothing to report.
    let r: ElectLeadersResponse = c
        .call(
            ApiKey::ElectLeaders,
            2,
            &ElectLeadersRequest::default().with_timeout_ms(1000).with_topic_partitions(None),
        )
        .await;
    let topics: Vec<_> =
        r.replica_election_results.iter().map(|t| (t.topic.as_str().to_owned(), t.partition_result.len())).collect();
    assert_eq!(topics, [("__consumer_offsets".to_string(), 0), ("el".to_string(), 0)]);

    let r: ListPartitionReassignmentsResponse = c
        .call(
            ApiKey::ListPartitionReassignments,
            0,
            &ListPartitionReassignmentsRequest::default().with_topics(Some(vec![
                list_partition_reassignments_request::ListPartitionReassignmentsTopics::default()
                    .with_name(name("el"))
                    .with_partition_indexes(vec![0]),
            ])),
        )
        .await;
    assert_eq!((r.error_code, r.topics.len()), (0, 0));

    // (topic, partition, replicas, error code, error message)
    type Case<'a> = (&'a str, i32, Option<Vec<i32>>, i16, Option<String>);
    let cases: Vec<Case> = vec![
        ("el", 0, Some(vec![node]), 0, None),
        (
            "el",
            0,
            Some(vec![node, node + 1]),
            39,
            Some(format!(
                "The manual partition assignment includes broker {}, but no such broker is registered.",
                node + 1
            )),
        ),
        (
            "el",
            1,
            Some(vec![node, node]),
            39,
            Some(format!("The manual partition assignment includes the broker {node} more than once.")),
        ),
        ("el", 1, Some(vec![]), 39, Some("The manual partition assignment includes an empty replica list.".into())),
        ("el", 1, None, 85, None),
        ("el", 9, Some(vec![node]), 3, Some("Unable to find partition el:9.".into())),
        ("nope", 0, None, 3, Some("Unable to find a topic named nope.".into())),
    ];
    for (topic, partition, replicas, code, message) in cases {
        let req = AlterPartitionReassignmentsRequest::default().with_timeout_ms(1000).with_topics(vec![
            alter_partition_reassignments_request::ReassignableTopic::default().with_name(name(topic)).with_partitions(
                vec![alter_partition_reassignments_request::ReassignablePartition::default()
                    .with_partition_index(partition)
                    .with_replicas(replicas.clone().map(|r| r.into_iter().map(BrokerId).collect()))],
            ),
        ]);
        let r: AlterPartitionReassignmentsResponse = c.call(ApiKey::AlterPartitionReassignments, 1, &req).await;
        let p = &r.responses[0].partitions[0];
        assert_eq!(r.error_code, 0);
        assert_eq!((p.error_code, p.error_message.as_ref().map(|m| m.to_string())), (code, message), "{replicas:?}");
    }
}

#[tokio::test]
async fn describe_quorum_names_this_node_the_single_voter_and_leader() {
    let b = TestBroker::start().await;
    let mut c = b.connect().await;
    let node = BrokerId(b.broker.node_id());
    let ask = |topic: &str, partition: i32| {
        DescribeQuorumRequest::default().with_topics(vec![describe_quorum_request::TopicData::default()
            .with_topic_name(name(topic))
            .with_partitions(vec![describe_quorum_request::PartitionData::default().with_partition_index(partition)])])
    };
    let r: DescribeQuorumResponse = c.call(ApiKey::DescribeQuorum, 2, &ask("__cluster_metadata", 0)).await;
    let p = &r.topics[0].partitions[0];
    assert_eq!((r.error_code, p.error_code, p.leader_id, p.leader_epoch), (0, 0, node, 1));
    assert_eq!((p.high_watermark, p.current_voters.len(), p.observers.len()), (0, 1, 0));
    assert_eq!(p.current_voters[0].replica_id, node);
    assert!(p.current_voters[0].last_caught_up_timestamp > 0);
    assert_eq!(r.nodes[0].node_id, node);
    assert_eq!(r.nodes[0].listeners[0].port, b.addr.port());
    let r: DescribeQuorumResponse = c.call(ApiKey::DescribeQuorum, 2, &ask("__cluster_metadata", 1)).await;
    assert_eq!((r.error_code, r.topics[0].partitions[0].error_code), (0, 3));
}

#[tokio::test]
async fn list_config_resources_lists_the_broker_and_topics() {
    let b = TestBroker::start().await;
    let mut c = b.connect().await;
    create_topic(&mut c, "lc", 1, &[]).await;
    let list = |types: Vec<i8>| ListConfigResourcesRequest::default().with_resource_types(types);
    let node = b.broker.node_id().to_string();
    let r: ListConfigResourcesResponse = c.call(ApiKey::ListConfigResources, 1, &list(vec![])).await;
    let got: Vec<(String, i8)> =
        r.config_resources.iter().map(|r| (r.resource_name.to_string(), r.resource_type)).collect();
    assert_eq!(got, [(node.clone(), 4), ("__consumer_offsets".into(), 2), ("lc".into(), 2)]);
    let r: ListConfigResourcesResponse = c.call(ApiKey::ListConfigResources, 1, &list(vec![2])).await;
    assert_eq!(r.config_resources.len(), 2);
    let r: ListConfigResourcesResponse = c.call(ApiKey::ListConfigResources, 1, &list(vec![16, 32, 8])).await;
    assert_eq!((r.error_code, r.config_resources.len()), (0, 0));
    let r: ListConfigResourcesResponse = c.call(ApiKey::ListConfigResources, 1, &list(vec![4, 99])).await;
    assert_eq!((r.error_code, r.config_resources.len()), (35, 0), "an unsupported type fails the request");
    let r: ListConfigResourcesResponse = c.call(ApiKey::ListConfigResources, 0, &list(vec![])).await;
    assert_eq!((r.error_code, r.config_resources.len()), (0, 0), "v0: client metrics only");
}

#[tokio::test]
async fn broker_configs_include_the_listeners() {
    let b = TestBroker::start().await;
    let mut c = b.connect().await;
    let req = DescribeConfigsRequest::default().with_resources(vec![
        describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(s(&b.broker.node_id().to_string()))
            .with_configuration_keys(None),
    ]);
    let r: DescribeConfigsResponse = c.call(ApiKey::DescribeConfigs, 4, &req).await;
    let get = |k: &str| r.results[0].configs.iter().find(|e| e.name.as_str() == k).unwrap().clone();
    let advertised = get("advertised.listeners");
    let expected = format!("PLAINTEXT://127.0.0.1:{}", b.addr.port());
    assert_eq!(advertised.value.as_ref().unwrap().as_str(), expected);
    // As Kafka 4: STATIC_BROKER_CONFIG, read-only, type LIST, not sensitive, no synonyms.
    assert_eq!((advertised.config_source, advertised.read_only, advertised.config_type), (4, true, 7));
    assert!(!advertised.is_sensitive && advertised.synonyms.is_empty());
    assert_eq!(get("listeners").value.unwrap().as_str(), expected);
}

#[tokio::test]
async fn list_offsets_v11_and_produce_v13() {
    let b = TestBroker::start().await;
    let mut c = b.connect().await;
    let topic = create_topic(&mut c, "nv", 1, &[]).await;
    produce(&mut c, "nv", 0, batch(&[b"a", b"b"])).await;
    // KIP-1023: earliest pending upload (-6), no tiered storage: -1; before v11 unsupported.
    assert_eq!(list_offset(&mut c, "nv", 0, -6, 11).await, (0, -1));
    assert_eq!(list_offset(&mut c, "nv", 0, -6, 10).await, (35, -1));
    assert_eq!(list_offset(&mut c, "nv", 0, -3, 6).await, (35, -1), "max timestamp needs v7");
    assert_eq!(list_offset(&mut c, "nv", 0, -1, 11).await, (0, 2));

    // Produce v13 names topics by id (KIP-516).
    let by_id = |id| {
        let mut req = produce_request("nv", 0, -1, batch(&[b"c"]));
        req.topic_data[0] = req.topic_data[0].clone().with_name(Default::default()).with_topic_id(id);
        req
    };
    let r: ProduceResponse = c.call(ApiKey::Produce, 13, &by_id(topic.topic_id)).await;
    let p = &r.responses[0].partition_responses[0];
    assert_eq!((r.responses[0].topic_id, p.error_code, p.base_offset), (topic.topic_id, 0, 2));
    let unknown = uuid::Uuid::new_v4();
    let r: ProduceResponse = c.call(ApiKey::Produce, 13, &by_id(unknown)).await;
    assert_eq!((r.responses[0].topic_id, r.responses[0].partition_responses[0].error_code), (unknown, 100));
}
