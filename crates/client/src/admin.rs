//! Topic, group and offset administration: what `sluice topic` and `sluice group` need.
//!
//! Invariants:
//! - Admin requests never create topics (Metadata is sent with auto-creation off).
//! - Group requests (describe, delete, offsets) go to the group's coordinator, found with
//!   FindCoordinator on each call, so a moved coordinator is followed.
//! - Offsets are altered the way Kafka's AdminClient alters them: an OffsetCommit with
//!   generation -1 and an empty member id, which a broker accepts only while the group has no
//!   members; callers check the group is empty first, and a broker that still refuses (a
//!   member joined in between) answers with an error that is returned, never retried.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    create_partitions_request, create_topics_request, list_offsets_request, BrokerId, CreatePartitionsRequest,
    CreateTopicsRequest, DeleteTopicsRequest, ListOffsetsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::cluster::{ClientConfig, Cluster, TopicMetadata};
use crate::error::{Error, Result};
use crate::TopicPartition;

fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    pub name: String,
    /// -1: the broker's default.
    pub num_partitions: i32,
    /// -1: the broker's default.
    pub replication_factor: i16,
    pub configs: Vec<(String, String)>,
}

impl NewTopic {
    pub fn new(name: impl Into<String>, num_partitions: i32, replication_factor: i16) -> NewTopic {
        NewTopic { name: name.into(), num_partitions, replication_factor, configs: Vec::new() }
    }
}

/// Which offset ListOffsets should find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The high watermark (the offset the next record will get).
    Latest,
    /// The first offset whose timestamp is at or after this (ms since the epoch).
    Timestamp(i64),
}

impl OffsetSpec {
    fn wire(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::Timestamp(t) => t,
        }
    }
}

/// A ListOffsets answer for one partition. `offset` is -1 when no record is at or after the
/// timestamp asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    pub offset: i64,
    pub timestamp: i64,
}

/// Versions of the APIs that `connection`'s negotiation table does not list yet.
const DELETE_GROUPS_VERSION: i16 = 2;
const DESCRIBE_CONFIGS_VERSION: i16 = 4;

/// One config of a topic (DescribeConfigs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConfigEntry {
    pub name: String,
    pub value: Option<String>,
    /// Not set on the topic itself (a broker or built-in default).
    pub is_default: bool,
    pub is_sensitive: bool,
}

/// An admin client.
#[derive(Debug, Clone)]
pub struct Admin {
    cluster: Arc<Cluster>,
    timeout_ms: i32,
}

impl Admin {
    /// Connects to the cluster. Admin metadata requests never auto-create topics.
    pub async fn connect(mut config: ClientConfig) -> Result<Admin> {
        config.allow_auto_topic_creation = false;
        let timeout_ms = i32::try_from(config.connection.request_timeout_ms).unwrap_or(i32::MAX);
        Ok(Admin { cluster: Cluster::connect(config).await?, timeout_ms })
    }

    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// An admin client on an existing cluster view (the consumer uses one for ListOffsets).
    pub fn from_cluster(cluster: Arc<Cluster>) -> Admin {
        let timeout_ms = i32::try_from(cluster.config().connection.request_timeout_ms).unwrap_or(i32::MAX);
        Admin { cluster, timeout_ms }
    }

    /// Every group of every broker: (group id, protocol type, state), sorted by id.
    pub async fn list_groups(&self) -> Result<Vec<(String, String, String)>> {
        self.cluster.fetch_metadata(Some(&[])).await?;
        let mut out = Vec::new();
        for id in self.cluster.brokers().keys() {
            let conn = self.cluster.connection(*id).await?;
            let response = conn.send(&kafka_protocol::messages::ListGroupsRequest::default()).await?;
            if let Some(e) = Error::from_code(response.error_code, || "ListGroups".into(), None) {
                return Err(e);
            }
            for g in response.groups {
                out.push((g.group_id.0.to_string(), g.protocol_type.to_string(), g.group_state.to_string()));
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// State, protocol and members (with decoded assignments) of `group`.
    pub async fn describe_group(&self, group: &str) -> Result<crate::consumer::GroupDescription> {
        let conn = crate::consumer::find_coordinator(&self.cluster, group, 0).await?;
        let request = kafka_protocol::messages::DescribeGroupsRequest::default()
            .with_groups(vec![kafka_protocol::messages::GroupId(StrBytes::from_string(group.to_string()))]);
        let response = conn.send(&request).await?;
        let g = response.groups.into_iter().next().ok_or_else(|| missing(conn.addr(), "DescribeGroups", group))?;
        if let Some(e) = Error::from_code(g.error_code, || format!("cannot describe group {group}"), None) {
            return Err(e);
        }
        let members = g
            .members
            .iter()
            .map(|m| crate::consumer::GroupMember {
                member_id: m.member_id.to_string(),
                client_id: m.client_id.to_string(),
                host: m.client_host.to_string(),
                assignment: if g.protocol_type.as_str() == crate::consumer_protocol::PROTOCOL_TYPE {
                    crate::consumer_protocol::ConsumerProtocolAssignment::decode(&m.member_assignment)
                        .map(|a| a.partitions())
                        .unwrap_or_default()
                } else {
                    Vec::new()
                },
            })
            .collect();
        Ok(crate::consumer::GroupDescription {
            group_id: g.group_id.0.to_string(),
            state: g.group_state.to_string(),
            protocol_type: g.protocol_type.to_string(),
            protocol: g.protocol_data.to_string(),
            members,
        })
    }

    /// Every committed offset of `group` (OffsetFetch with all topics).
    pub async fn group_offsets(&self, group: &str) -> Result<BTreeMap<TopicPartition, i64>> {
        let conn = crate::consumer::find_coordinator(&self.cluster, group, 0).await?;
        let request = kafka_protocol::messages::OffsetFetchRequest::default()
            .with_group_id(kafka_protocol::messages::GroupId(StrBytes::from_string(group.to_string())))
            .with_topics(None);
        let response = conn.send(&request).await?;
        if let Some(e) = Error::from_code(response.error_code, || format!("OffsetFetch for group {group}"), None) {
            return Err(e);
        }
        let mut out = BTreeMap::new();
        for t in &response.topics {
            for p in &t.partitions {
                if p.committed_offset >= 0 {
                    out.insert(TopicPartition::new(t.name.0.as_str(), p.partition_index), p.committed_offset);
                }
            }
        }
        Ok(out)
    }

    /// Deletes groups (DeleteGroups, sent to each group's coordinator); one result per group in
    /// the order given. A group with members fails with Kafka's `NON_EMPTY_GROUP`, an unknown
    /// one with `GROUP_ID_NOT_FOUND`.
    pub async fn delete_groups(&self, groups: &[&str]) -> Result<Vec<(String, Result<()>)>> {
        let mut out = Vec::with_capacity(groups.len());
        for group in groups {
            let result = async {
                let conn = crate::consumer::find_coordinator(&self.cluster, group, 0).await?;
                let request = kafka_protocol::messages::DeleteGroupsRequest::default().with_groups_names(vec![
                    kafka_protocol::messages::GroupId(StrBytes::from_string(group.to_string())),
                ]);
                // The connection's negotiation table has no DeleteGroups entry: v2 (flexible) is
                // served by Kafka 2.4+ and by Sluice.
                let response = conn.enqueue_at(&request, DELETE_GROUPS_VERSION)?.wait().await?;
                let r = response
                    .results
                    .iter()
                    .find(|r| r.group_id.0.as_str() == *group)
                    .ok_or_else(|| missing(conn.addr(), "DeleteGroups", group))?;
                match Error::from_code(r.error_code, || format!("cannot delete group {group}"), None) {
                    None => Ok(()),
                    Some(e) => Err(e),
                }
            }
            .await;
            out.push((group.to_string(), result));
        }
        Ok(out)
    }

    /// Sets committed offsets of `group`, which must have no members (see the module doc).
    /// Each offset is the next record the group will read.
    pub async fn alter_group_offsets(&self, group: &str, offsets: &BTreeMap<TopicPartition, i64>) -> Result<()> {
        use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
        if offsets.is_empty() {
            return Ok(());
        }
        let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
        for (tp, &offset) in offsets {
            topics.entry(tp.topic.as_str()).or_default().push(
                OffsetCommitRequestPartition::default()
                    .with_partition_index(tp.partition)
                    .with_committed_offset(offset)
                    .with_committed_leader_epoch(-1),
            );
        }
        let request = kafka_protocol::messages::OffsetCommitRequest::default()
            .with_group_id(kafka_protocol::messages::GroupId(StrBytes::from_string(group.to_string())))
            .with_generation_id_or_member_epoch(-1)
            .with_member_id(StrBytes::default())
            .with_retention_time_ms(-1)
            .with_topics(
                topics
                    .into_iter()
                    .map(|(t, ps)| OffsetCommitRequestTopic::default().with_name(topic_name(t)).with_partitions(ps))
                    .collect(),
            );
        let conn = crate::consumer::find_coordinator(&self.cluster, group, 0).await?;
        let response = conn.send(&request).await?;
        for t in &response.topics {
            for p in &t.partitions {
                if let Some(e) = Error::from_code(
                    p.error_code,
                    || {
                        format!(
                            "cannot set the offset of {}-{} for group {group}",
                            t.name.0.as_str(),
                            p.partition_index
                        )
                    },
                    None,
                ) {
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// The configs of `topic` as the broker reports them: (name, value, is the broker's or
    /// Kafka's default), sorted by name. Sensitive values are `None`.
    pub async fn describe_topic_configs(&self, topic: &str) -> Result<Vec<TopicConfigEntry>> {
        use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
        let request = kafka_protocol::messages::DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_string(topic.to_string()))
                .with_configuration_keys(None),
        ]);
        let conn = self.cluster.any_connection().await?;
        // As for DeleteGroups: v4 (flexible) is served by Kafka 2.8+ and by Sluice.
        let response = conn.enqueue_at(&request, DESCRIBE_CONFIGS_VERSION)?.wait().await?;
        let r = response.results.first().ok_or_else(|| missing(conn.addr(), "DescribeConfigs", topic))?;
        if r.error_code == 3 {
            return Err(Error::UnknownTopic { topic: topic.to_string() });
        }
        if let Some(e) = Error::from_code(
            r.error_code,
            || format!("cannot describe the configs of topic {topic}"),
            r.error_message.as_ref().map(|m| m.to_string()),
        ) {
            return Err(e);
        }
        let mut out: Vec<TopicConfigEntry> = r
            .configs
            .iter()
            .map(|c| TopicConfigEntry {
                name: c.name.to_string(),
                value: c.value.as_ref().map(|v| v.to_string()),
                // 1 = dynamic topic config; 5 = static broker config and 4/3/2 dynamic broker
                // configs count as defaults for the topic, as kafka-configs.sh shows them.
                is_default: c.config_source != 1,
                is_sensitive: c.is_sensitive,
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Creates the topics; one result per topic, in the order given.
    pub async fn create_topics(&self, topics: &[NewTopic], validate_only: bool) -> Result<Vec<(String, Result<()>)>> {
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(self.timeout_ms)
            .with_validate_only(validate_only)
            .with_topics(
                topics
                    .iter()
                    .map(|t| {
                        create_topics_request::CreatableTopic::default()
                            .with_name(topic_name(&t.name))
                            .with_num_partitions(t.num_partitions)
                            .with_replication_factor(t.replication_factor)
                            .with_configs(
                                t.configs
                                    .iter()
                                    .map(|(k, v)| {
                                        create_topics_request::CreatableTopicConfig::default()
                                            .with_name(StrBytes::from_string(k.clone()))
                                            .with_value(Some(StrBytes::from_string(v.clone())))
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let conn = self.cluster.controller_connection().await?;
        let response = conn.send(&request).await?;
        Ok(topics
            .iter()
            .map(|t| {
                let result = match response.topics.iter().find(|r| r.name.0.as_str() == t.name) {
                    None => Err(missing(conn.addr(), "CreateTopics", &t.name)),
                    Some(r) => match Error::from_code(
                        r.error_code,
                        || format!("cannot create topic {}", t.name),
                        r.error_message.as_ref().map(|m| m.to_string()),
                    ) {
                        None => Ok(()),
                        Some(e) => Err(e),
                    },
                };
                (t.name.clone(), result)
            })
            .collect())
    }

    /// Creates one topic.
    pub async fn create_topic(&self, topic: NewTopic) -> Result<()> {
        let mut results = self.create_topics(std::slice::from_ref(&topic), false).await?;
        let (_, result) = results.pop().expect("create_topics returns one result per topic");
        self.cluster.invalidate(&topic.name);
        result
    }

    /// Deletes the topics; one result per topic.
    pub async fn delete_topics(&self, names: &[&str]) -> Result<Vec<(String, Result<()>)>> {
        let request = DeleteTopicsRequest::default()
            .with_timeout_ms(self.timeout_ms)
            .with_topic_names(names.iter().map(|n| topic_name(n)).collect());
        let conn = self.cluster.controller_connection().await?;
        let response = conn.send(&request).await?;
        Ok(names
            .iter()
            .map(|name| {
                self.cluster.invalidate(name);
                let result =
                    match response.responses.iter().find(|r| r.name.as_ref().is_some_and(|n| n.0.as_str() == *name)) {
                        None => Err(missing(conn.addr(), "DeleteTopics", name)),
                        Some(r) => match r.error_code {
                            3 => Err(Error::UnknownTopic { topic: name.to_string() }),
                            code => match Error::from_code(
                                code,
                                || format!("cannot delete topic {name}"),
                                r.error_message.as_ref().map(|m| m.to_string()),
                            ) {
                                None => Ok(()),
                                Some(e) => Err(e),
                            },
                        },
                    };
                (name.to_string(), result)
            })
            .collect())
    }

    /// Names of all topics, sorted; internal ones only when asked.
    pub async fn list_topics(&self, include_internal: bool) -> Result<Vec<String>> {
        let (topics, _) = self.cluster.fetch_metadata(None).await?;
        let mut names: Vec<String> =
            topics.iter().filter(|t| include_internal || !t.is_internal).map(|t| t.name.clone()).collect();
        names.sort();
        Ok(names)
    }

    /// Metadata of the named topics (fresh, not cached). Unknown names are errors.
    pub async fn describe_topics(&self, names: &[&str]) -> Result<Vec<Arc<TopicMetadata>>> {
        let (topics, failed) = self.cluster.fetch_metadata(Some(names)).await?;
        if let Some((name, error)) = failed.into_iter().next() {
            return Err(match error {
                ResponseError::UnknownTopicOrPartition => Error::UnknownTopic { topic: name },
                error => Error::Kafka { context: format!("cannot describe topic {name}"), error, message: None },
            });
        }
        let mut out = Vec::new();
        for name in names {
            match topics.iter().find(|t| t.name == *name) {
                Some(t) => out.push(t.clone()),
                None => return Err(Error::UnknownTopic { topic: name.to_string() }),
            }
        }
        Ok(out)
    }

    /// Grows `topic` to `total_partitions` partitions.
    pub async fn create_partitions(&self, topic: &str, total_partitions: i32) -> Result<()> {
        let request = CreatePartitionsRequest::default().with_timeout_ms(self.timeout_ms).with_topics(vec![
            create_partitions_request::CreatePartitionsTopic::default()
                .with_name(topic_name(topic))
                .with_count(total_partitions)
                .with_assignments(None),
        ]);
        let conn = self.cluster.controller_connection().await?;
        let response = conn.send(&request).await?;
        self.cluster.invalidate(topic);
        let r = response
            .results
            .iter()
            .find(|r| r.name.0.as_str() == topic)
            .ok_or_else(|| missing(conn.addr(), "CreatePartitions", topic))?;
        if r.error_code == 3 {
            return Err(Error::UnknownTopic { topic: topic.to_string() });
        }
        match Error::from_code(
            r.error_code,
            || format!("cannot grow topic {topic} to {total_partitions} partitions"),
            r.error_message.as_ref().map(|m| m.to_string()),
        ) {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }

    /// ListOffsets for each partition, sent to each partition's leader.
    pub async fn list_offsets(
        &self,
        partitions: &[TopicPartition],
        spec: OffsetSpec,
    ) -> Result<BTreeMap<TopicPartition, ListedOffset>> {
        let mut by_leader: BTreeMap<i32, Vec<&TopicPartition>> = BTreeMap::new();
        for tp in partitions {
            let (leader, _) = self.cluster.leader(&tp.topic, tp.partition).await?;
            by_leader.entry(leader).or_default().push(tp);
        }
        let mut out = BTreeMap::new();
        for (leader, tps) in by_leader {
            let mut topics: BTreeMap<&str, Vec<list_offsets_request::ListOffsetsPartition>> = BTreeMap::new();
            for tp in &tps {
                topics.entry(tp.topic.as_str()).or_default().push(
                    list_offsets_request::ListOffsetsPartition::default()
                        .with_partition_index(tp.partition)
                        .with_current_leader_epoch(-1)
                        .with_timestamp(spec.wire()),
                );
            }
            let request = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_isolation_level(0)
                .with_timeout_ms(self.timeout_ms)
                .with_topics(
                    topics
                        .into_iter()
                        .map(|(t, ps)| {
                            list_offsets_request::ListOffsetsTopic::default()
                                .with_name(topic_name(t))
                                .with_partitions(ps)
                        })
                        .collect(),
                );
            let conn = self.cluster.connection(leader).await?;
            let response = conn.send(&request).await?;
            for tp in tps {
                let p = response
                    .topics
                    .iter()
                    .filter(|t| t.name.0.as_str() == tp.topic)
                    .flat_map(|t| t.partitions.iter())
                    .find(|p| p.partition_index == tp.partition)
                    .ok_or_else(|| missing(conn.addr(), "ListOffsets", &tp.to_string()))?;
                if let Some(e) = Error::from_code(p.error_code, || format!("ListOffsets for {tp}"), None) {
                    if e.needs_metadata_refresh() {
                        self.cluster.invalidate(&tp.topic);
                    }
                    return Err(e);
                }
                out.insert(tp.clone(), ListedOffset { offset: p.offset, timestamp: p.timestamp });
            }
        }
        Ok(out)
    }
}

fn missing(addr: &str, api: &'static str, what: &str) -> Error {
    Error::Protocol { addr: addr.to_string(), api, reason: format!("the response says nothing about {what}") }
}
