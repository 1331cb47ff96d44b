//! CreateTopics (19). One node: replication factor -1 or 1, manual assignments only onto this
//! node; anything else is INVALID_REPLICATION_FACTOR / INVALID_REPLICA_ASSIGNMENT.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};

use super::str_bytes;
use crate::broker::{Broker, TopicError};
use crate::error_code;
use crate::topic_config;

/// DescribeConfigs / CreateTopics config sources.
pub const SOURCE_DYNAMIC_TOPIC: i8 = 1;
pub const SOURCE_STATIC_BROKER: i8 = 4;
pub const SOURCE_DEFAULT: i8 = 5;

fn check(broker: &Broker, t: &CreatableTopic) -> Result<(Option<i32>, BTreeMap<String, String>), TopicError> {
    let node = broker.node_id();
    let partitions = if !t.assignments.is_empty() {
        if t.num_partitions != -1 || t.replication_factor != -1 {
            return Err(TopicError::new(
                error_code::INVALID_REQUEST,
                "give either assignments or partitions and replication factor, not both",
            ));
        }
        let mut indexes: Vec<i32> = t.assignments.iter().map(|a| a.partition_index).collect();
        indexes.sort_unstable();
        if indexes.iter().enumerate().any(|(i, p)| *p != i as i32) {
            return Err(TopicError::new(
                error_code::INVALID_REPLICA_ASSIGNMENT,
                "assignments must name partitions 0..n-1 once each",
            ));
        }
        if t.assignments.iter().any(|a| a.broker_ids.len() != 1 || a.broker_ids[0].0 != node) {
            return Err(TopicError::new(
                error_code::INVALID_REPLICA_ASSIGNMENT,
                format!("this cluster has one broker (id {node}): each partition must be assigned to it alone"),
            ));
        }
        Some(t.assignments.len() as i32)
    } else {
        if t.replication_factor != -1 && t.replication_factor != 1 {
            return Err(TopicError::new(
                error_code::INVALID_REPLICATION_FACTOR,
                format!("replication factor {} is larger than the 1 available broker", t.replication_factor),
            ));
        }
        if t.num_partitions == -1 {
            None
        } else {
            Some(t.num_partitions)
        }
    };
    let mut configs = BTreeMap::new();
    for c in &t.configs {
        if let Some(v) = &c.value {
            configs.insert(c.name.as_str().to_owned(), v.as_str().to_owned());
        }
    }
    Ok((partitions, configs))
}

pub fn handle(broker: &Arc<Broker>, request: CreateTopicsRequest, version: i16) -> CreateTopicsResponse {
    let mut seen = std::collections::HashSet::new();
    let topics = request
        .topics
        .iter()
        .map(|t| {
            let name = t.name.0.as_str();
            let base = CreatableTopicResult::default().with_name(t.name.clone());
            let result = if !seen.insert(name.to_owned()) {
                Err(TopicError::new(
                    error_code::INVALID_REQUEST,
                    format!("topic '{name}' appears twice in the request"),
                ))
            } else {
                check(broker, t).and_then(|(partitions, configs)| {
                    broker.create_topic(name, partitions, configs, request.validate_only)
                })
            };
            match result {
                Ok(record) => {
                    let configs = topic_config::effective(&broker.config.log_defaults, &record.configs)
                        .into_iter()
                        .map(|(k, v, set)| {
                            CreatableTopicConfigs::default()
                                .with_name(str_bytes(k.name))
                                .with_value(Some(str_bytes(v)))
                                .with_config_source(if set { SOURCE_DYNAMIC_TOPIC } else { SOURCE_DEFAULT })
                        })
                        .collect();
                    let base = base.with_num_partitions(record.partitions).with_replication_factor(1);
                    let base = if version >= 5 { base.with_configs(Some(configs)) } else { base };
                    if version >= 7 {
                        base.with_topic_id(record.id)
                    } else {
                        base
                    }
                }
                Err(e) => base
                    .with_error_code(e.code)
                    .with_error_message(Some(str_bytes(e.message)))
                    .with_num_partitions(-1)
                    .with_replication_factor(-1),
            }
        })
        .collect();
    CreateTopicsResponse::default().with_topics(topics)
}
