//! Topic administration and metadata over the wire.

mod common;

use common::*;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};

#[tokio::test]
async fn api_versions_advertises_the_served_table_and_kip511_fallback() {
    let b = TestBroker::start().await;
    let mut c = b.connect().await;
    let r: ApiVersionsResponse = c
        .call(
            ApiKey::ApiVersions,
            3,
            &ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("t"))
                .with_client_software_version(StrBytes::from_static_str("1")),
        )
        .await;
    assert_eq!(r.error_code, 0);
    let fetch = r.api_keys.iter().find(|k| k.api_key == 1).unwrap();
    assert_eq!((fetch.min_version, fetch.max_version), (4, 17));
    let join = r.api_keys.iter().find(|k| k.api_key == 11).unwrap();
    assert_eq!((join.min_version, join.max_version), (0, 9), "JoinGroup");
    assert!(r.api_keys.iter().all(|k| k.api_key != 68), "no ConsumerGroupHeartbeat (KIP-848) yet");
    // A version newer than served: answered as v0 with UNSUPPORTED_VERSION and the table.
    let mut frame = encode_request(ApiKey::ApiVersions, 3, 99, &ApiVersionsRequest::default());
    frame[6..8].copy_from_slice(&42i16.to_be_bytes());
    tokio::io::AsyncWriteExt::write_all(&mut c.stream, &frame).await.unwrap();
    let mut body = c.read_frame().await.unwrap();
    let header = ResponseHeader::decode(&mut body, 0).unwrap();
    assert_eq!(header.correlation_id, 99);
    let v0 = ApiVersionsResponse::decode(&mut body, 0).unwrap();
    assert_eq!(v0.error_code, 35);
    assert!(!v0.api_keys.is_empty());
}

#[tokio::test]
async fn metadata_auto_creates_and_describes_this_broker() {
    let b = TestBroker::start_with(|c| c.num_partitions = 3).await;
    let mut c = b.connect().await;
    let req = MetadataRequest::default()
        .with_allow_auto_topic_creation(true)
        .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default().with_name(Some(name("auto")))]));
    let r: MetadataResponse = c.call(ApiKey::Metadata, 12, &req).await;
    assert_eq!(r.brokers.len(), 1);
    assert_eq!(r.brokers[0].port as u16, b.addr.port());
    assert_eq!(r.controller_id, r.brokers[0].node_id);
    let t = &r.topics[0];
    assert_eq!(t.error_code, 0);
    assert_eq!(t.partitions.len(), 3);
    assert!(!t.topic_id.is_nil());
    assert!(t.partitions.iter().all(|p| p.leader_id == r.brokers[0].node_id && p.isr_nodes.len() == 1));
    // Without permission, no creation.
    let req = MetadataRequest::default().with_allow_auto_topic_creation(false).with_topics(Some(vec![
        metadata_request::MetadataRequestTopic::default().with_name(Some(name("not-created"))),
    ]));
    let r: MetadataResponse = c.call(ApiKey::Metadata, 12, &req).await;
    assert_eq!(r.topics[0].error_code, 3);
    // Null topics = all: "auto" and the internal __consumer_offsets.
    let r: MetadataResponse = c.call(ApiKey::Metadata, 12, &MetadataRequest::default().with_topics(None)).await;
    let mut listed: Vec<_> = r.topics.iter().map(|t| (t.name.as_ref().unwrap().0.to_string(), t.is_internal)).collect();
    listed.sort();
    assert_eq!(listed, [("__consumer_offsets".to_string(), true), ("auto".to_string(), false)]);
}

#[tokio::test]
async fn create_topics_errors() {
    let b = TestBroker::start().await;
    let mut c = b.connect().await;
    let ok = create_topic(&mut c, "t1", 2, &[("retention.ms", "1000")]).await;
    assert_eq!((ok.error_code, ok.num_partitions), (0, 2));
    assert_eq!(create_topic(&mut c, "t1", 2, &[]).await.error_code, 36);
    assert_eq!(create_topic(&mut c, "bad name", 1, &[]).await.error_code, 17);
    assert_eq!(create_topic(&mut c, "t2", 0, &[]).await.error_code, 37);
    assert_eq!(create_topic(&mut c, "t3", 1, &[("no.such", "1")]).await.error_code, 40);
    assert_eq!(create_topic(&mut c, "t4", 1, &[("cleanup.policy", "compact")]).await.error_code, 40);
    let req = CreateTopicsRequest::default().with_topics(vec![create_topics_request::CreatableTopic::default()
        .with_name(name("rf3"))
        .with_num_partitions(1)
        .with_replication_factor(3)]);
    let r: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &req).await;
    assert_eq!(r.topics[0].error_code, 38);
}

#[tokio::test]
async fn delete_and_recreate_topic_starts_empty() {
    let b = TestBroker::start().await;
    let mut c = b.connect().await;
    create_topic(&mut c, "gone", 1, &[]).await;
    produce(&mut c, "gone", 0, batch(&[b"old"])).await;
    let r: DeleteTopicsResponse = c
        .call(
            ApiKey::DeleteTopics,
            6,
            &DeleteTopicsRequest::default()
                .with_topics(vec![delete_topics_request::DeleteTopicState::default().with_name(Some(name("gone")))]),
        )
        .await;
    assert_eq!(r.responses[0].error_code, 0);
    let r: DeleteTopicsResponse =
        c.call(ApiKey::DeleteTopics, 4, &DeleteTopicsRequest::default().with_topic_names(vec![name("gone")])).await;
    assert_eq!(r.responses[0].error_code, 3);
    create_topic(&mut c, "gone", 1, &[]).await;
    assert_eq!(fetch(&mut c, "gone", 0, 0, 0, 1024).await.high_watermark, 0);
}

#[tokio::test]
async fn create_partitions_grows_a_topic() {
    let b = TestBroker::start().await;
    let mut c = b.connect().await;
    create_topic(&mut c, "grow", 1, &[]).await;
    let req = |count| {
        CreatePartitionsRequest::default()
            .with_topics(vec![create_partitions_request::CreatePartitionsTopic::default()
                .with_name(name("grow"))
                .with_count(count)])
    };
    let r: CreatePartitionsResponse = c.call(ApiKey::CreatePartitions, 3, &req(4)).await;
    assert_eq!(r.results[0].error_code, 0);
    let r: CreatePartitionsResponse = c.call(ApiKey::CreatePartitions, 3, &req(2)).await;
    assert_eq!(r.results[0].error_code, 37);
    assert_eq!(produce(&mut c, "grow", 3, batch(&[b"x"])).await.error_code, 0);
}

#[tokio::test]
async fn describe_and_alter_topic_configs() {
    let b = TestBroker::start().await;
    let mut c = b.connect().await;
    create_topic(&mut c, "cfg", 1, &[("retention.ms", "5000")]).await;
    let describe = DescribeConfigsRequest::default().with_resources(vec![
        describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("cfg"))
            .with_configuration_keys(None),
    ]);
    let r: DescribeConfigsResponse = c.call(ApiKey::DescribeConfigs, 4, &describe).await;
    let value = |r: &DescribeConfigsResponse, k: &str| {
        r.results[0]
            .configs
            .iter()
            .find(|e| e.name.as_str() == k)
            .map(|e| (e.value.clone().unwrap().to_string(), e.config_source))
    };
    assert_eq!(value(&r, "retention.ms"), Some(("5000".into(), 1)));
    assert_eq!(value(&r, "segment.bytes"), Some(("1073741824".into(), 5)));

    let alter = IncrementalAlterConfigsRequest::default().with_resources(vec![
        incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("cfg"))
            .with_configs(vec![
                incremental_alter_configs_request::AlterableConfig::default()
                    .with_name(StrBytes::from_static_str("segment.bytes"))
                    .with_config_operation(0)
                    .with_value(Some(StrBytes::from_static_str("1048576"))),
                incremental_alter_configs_request::AlterableConfig::default()
                    .with_name(StrBytes::from_static_str("retention.ms"))
                    .with_config_operation(1),
            ]),
    ]);
    let r: IncrementalAlterConfigsResponse = c.call(ApiKey::IncrementalAlterConfigs, 1, &alter).await;
    assert_eq!(r.responses[0].error_code, 0);
    let r: DescribeConfigsResponse = c.call(ApiKey::DescribeConfigs, 4, &describe).await;
    assert_eq!(value(&r, "segment.bytes"), Some(("1048576".into(), 1)));
    assert_eq!(value(&r, "retention.ms"), Some(("604800000".into(), 5)));

    let bad = IncrementalAlterConfigsRequest::default().with_resources(vec![
        incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("cfg"))
            .with_configs(vec![incremental_alter_configs_request::AlterableConfig::default()
                .with_name(StrBytes::from_static_str("retention.ms"))
                .with_config_operation(0)
                .with_value(Some(StrBytes::from_static_str("soon")))]),
    ]);
    let r: IncrementalAlterConfigsResponse = c.call(ApiKey::IncrementalAlterConfigs, 1, &bad).await;
    assert_eq!(r.responses[0].error_code, 40);
}

#[tokio::test]
async fn describe_cluster_names_this_node() {
    let b = TestBroker::start().await;
    let mut c = b.connect().await;
    let r: DescribeClusterResponse = c.call(ApiKey::DescribeCluster, 1, &DescribeClusterRequest::default()).await;
    assert_eq!(r.brokers.len(), 1);
    assert_eq!(r.cluster_id.len(), 22);
    assert_eq!(r.controller_id, r.brokers[0].broker_id);
}

/// A request for absurdly many partitions is refused, not attempted.
#[tokio::test]
async fn absurd_partition_counts_are_refused() {
    let b = TestBroker::start().await;
    let mut c = b.connect().await;
    assert_eq!(create_topic(&mut c, "huge", i32::MAX, &[]).await.error_code, 37);
    assert_eq!(create_topic(&mut c, "small", 1, &[]).await.error_code, 0);
    let req = CreatePartitionsRequest::default().with_topics(vec![
        create_partitions_request::CreatePartitionsTopic::default().with_name(name("small")).with_count(i32::MAX),
    ]);
    let r: CreatePartitionsResponse = c.call(ApiKey::CreatePartitions, 3, &req).await;
    assert_eq!(r.results[0].error_code, 37);
}
