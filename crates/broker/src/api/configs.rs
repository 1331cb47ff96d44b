//! DescribeConfigs (32), AlterConfigs (33) and IncrementalAlterConfigs (44) for topics; broker
//! configs are described (read-only: they come from the config file) and not altered.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_configs_response::{DescribeConfigsResourceResult, DescribeConfigsResult};
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest, AlterConfigsResponse,
    DescribeConfigsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};

use super::create_topics::{SOURCE_DEFAULT, SOURCE_DYNAMIC_TOPIC, SOURCE_STATIC_BROKER};
use super::str_bytes;
use crate::broker::{Broker, TopicError};
use crate::config::Durability;
use crate::error_code;
use crate::topic_config::{self, ConfigType};

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

fn broker_configs(broker: &Broker) -> Vec<(&'static str, String, ConfigType)> {
    let c = &broker.config;
    let d = &c.log_defaults;
    let (host, port) = broker.advertised();
    // Listening on port 0 means "any": the port bound is the one advertised by default.
    let listen = match c.listen.port() {
        0 if c.advertise.is_none() => std::net::SocketAddr::new(c.listen.ip(), port),
        _ => c.listen,
    };
    vec![
        ("node.id", c.node_id.to_string(), ConfigType::Int),
        ("listeners", format!("PLAINTEXT://{listen}"), ConfigType::List),
        // Kafka 4 answers this one STATIC_BROKER_CONFIG and read-only, as Sluice answers all.
        ("advertised.listeners", format!("PLAINTEXT://{host}:{port}"), ConfigType::List),
        ("log.dirs", c.data_dir.display().to_string(), ConfigType::String),
        ("num.partitions", c.num_partitions.to_string(), ConfigType::Int),
        ("auto.create.topics.enable", c.auto_create_topics.to_string(), ConfigType::Boolean),
        ("default.replication.factor", "1".into(), ConfigType::Int),
        ("min.insync.replicas", "1".into(), ConfigType::Int),
        ("log.retention.ms", d.retention_ms.to_string(), ConfigType::Long),
        ("log.retention.bytes", d.retention_bytes.to_string(), ConfigType::Long),
        ("log.segment.bytes", d.segment_bytes.to_string(), ConfigType::Int),
        ("log.roll.ms", d.segment_ms.to_string(), ConfigType::Long),
        ("message.max.bytes", d.max_message_bytes.to_string(), ConfigType::Int),
        ("socket.request.max.bytes", c.request_bytes_max.to_string(), ConfigType::Int),
        ("log.retention.check.interval.ms", c.retention_check_interval_ms.to_string(), ConfigType::Long),
        (
            "sluice.durability",
            match c.durability {
                Durability::Fsync => "fsync".into(),
                Durability::PageCache => "page-cache".into(),
            },
            ConfigType::String,
        ),
    ]
}

fn entry(
    name: &str,
    value: String,
    source: i8,
    read_only: bool,
    kind: ConfigType,
    version: i16,
) -> DescribeConfigsResourceResult {
    let r = DescribeConfigsResourceResult::default()
        .with_name(str_bytes(name))
        .with_value(Some(str_bytes(value)))
        .with_read_only(read_only)
        .with_config_source(source);
    if version >= 3 {
        r.with_config_type(kind as i8)
    } else {
        r
    }
}

pub fn describe(broker: &Arc<Broker>, request: DescribeConfigsRequest, version: i16) -> DescribeConfigsResponse {
    let results = request
        .resources
        .into_iter()
        .map(|res| {
            let keys: Option<Vec<String>> =
                res.configuration_keys.as_ref().map(|k| k.iter().map(|s| s.as_str().to_owned()).collect());
            let wanted = |name: &str| keys.as_ref().is_none_or(|k| k.iter().any(|x| x == name));
            let base = DescribeConfigsResult::default()
                .with_resource_type(res.resource_type)
                .with_resource_name(res.resource_name.clone());
            match res.resource_type {
                RESOURCE_TOPIC => match broker.topic(res.resource_name.as_str()) {
                    None => base
                        .with_error_code(error_code::UNKNOWN_TOPIC_OR_PARTITION)
                        .with_error_message(Some(str_bytes(format!("unknown topic '{}'", res.resource_name.as_str())))),
                    Some(topic) => {
                        let overrides = topic.configs.read().clone();
                        let configs = topic_config::effective(&broker.config.log_defaults, &overrides)
                            .into_iter()
                            .filter(|(k, _, _)| wanted(k.name))
                            .map(|(k, v, set)| {
                                let source = if set { SOURCE_DYNAMIC_TOPIC } else { SOURCE_DEFAULT };
                                let e = entry(k.name, v, source, false, k.kind, version);
                                if version >= 3 && request.include_documentation {
                                    e.with_documentation(Some(str_bytes(k.doc)))
                                } else {
                                    e
                                }
                            })
                            .collect();
                        base.with_configs(configs)
                    }
                },
                RESOURCE_BROKER => {
                    let name = res.resource_name.as_str();
                    if !name.is_empty() && name != broker.node_id().to_string() {
                        return base.with_error_code(error_code::INVALID_REQUEST).with_error_message(Some(str_bytes(
                            format!("no broker '{name}'; this node is {}", broker.node_id()),
                        )));
                    }
                    let configs = broker_configs(broker)
                        .into_iter()
                        .filter(|(k, _, _)| wanted(k))
                        .map(|(k, v, kind)| entry(k, v, SOURCE_STATIC_BROKER, true, kind, version))
                        .collect();
                    base.with_configs(configs)
                }
                other => base
                    .with_error_code(error_code::INVALID_REQUEST)
                    .with_error_message(Some(str_bytes(format!("resource type {other} is not supported")))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

/// The topic the resource names, or the error to answer.
fn topic_resource(broker: &Broker, resource_type: i8, name: &str) -> Result<BTreeMap<String, String>, TopicError> {
    if resource_type == RESOURCE_BROKER {
        return Err(TopicError::new(
            error_code::INVALID_REQUEST,
            "broker configs are static in Sluice: set them in the config file and restart",
        ));
    }
    if resource_type != RESOURCE_TOPIC {
        return Err(TopicError::new(
            error_code::INVALID_REQUEST,
            format!("resource type {resource_type} is not supported"),
        ));
    }
    broker
        .topic(name)
        .map(|t| t.configs.read().clone())
        .ok_or_else(|| TopicError::new(error_code::UNKNOWN_TOPIC_OR_PARTITION, format!("unknown topic '{name}'")))
}

fn apply(
    broker: &Arc<Broker>,
    name: &str,
    configs: BTreeMap<String, String>,
    validate_only: bool,
) -> Result<(), TopicError> {
    for (k, v) in &configs {
        topic_config::validate(k, v).map_err(|m| TopicError::new(error_code::INVALID_CONFIG, m))?;
    }
    if validate_only {
        return Ok(());
    }
    broker.set_topic_configs(name, configs)
}

pub fn alter(broker: &Arc<Broker>, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let responses = request
        .resources
        .into_iter()
        .map(|res| {
            let name = res.resource_name.as_str().to_owned();
            // AlterConfigs replaces the whole set of overrides.
            let result = topic_resource(broker, res.resource_type, &name).and_then(|_| {
                let configs = res
                    .configs
                    .iter()
                    .filter_map(|c| c.value.as_ref().map(|v| (c.name.as_str().to_owned(), v.as_str().to_owned())))
                    .collect();
                apply(broker, &name, configs, request.validate_only)
            });
            let (code, message) = error_fields(result);
            alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(res.resource_type)
                .with_resource_name(res.resource_name)
                .with_error_code(code)
                .with_error_message(message)
        })
        .collect();
    AlterConfigsResponse::default().with_responses(responses)
}

/// The error code and message of an alter result (NONE and null on success).
fn error_fields(result: Result<(), TopicError>) -> (i16, Option<kafka_protocol::protocol::StrBytes>) {
    match result {
        Ok(()) => (error_code::NONE, None),
        Err(e) => (e.code, Some(str_bytes(e.message))),
    }
}

fn list_values(v: Option<&String>) -> Vec<String> {
    v.map(|s| s.split(',').map(|x| x.trim().to_owned()).filter(|x| !x.is_empty()).collect()).unwrap_or_default()
}

pub fn incremental_alter(
    broker: &Arc<Broker>,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let responses = request
        .resources
        .into_iter()
        .map(|res| {
            let name = res.resource_name.as_str().to_owned();
            let result = topic_resource(broker, res.resource_type, &name).and_then(|mut configs| {
                for c in &res.configs {
                    let key = c.name.as_str().to_owned();
                    let value = c.value.as_ref().map(|v| v.as_str().to_owned());
                    let is_list = topic_config::key(&key).is_some_and(|k| k.kind == ConfigType::List);
                    match (c.config_operation, value) {
                        (OP_SET, Some(v)) => {
                            configs.insert(key, v);
                        }
                        (OP_DELETE, _) => {
                            configs.remove(&key);
                        }
                        (OP_APPEND, Some(v)) if is_list => {
                            let mut items = list_values(configs.get(&key));
                            for x in list_values(Some(&v)) {
                                if !items.contains(&x) {
                                    items.push(x);
                                }
                            }
                            configs.insert(key, items.join(","));
                        }
                        (OP_SUBTRACT, Some(v)) if is_list => {
                            let remove = list_values(Some(&v));
                            let items: Vec<String> =
                                list_values(configs.get(&key)).into_iter().filter(|x| !remove.contains(x)).collect();
                            configs.insert(key, items.join(","));
                        }
                        (op, _) => {
                            return Err(TopicError::new(
                                error_code::INVALID_CONFIG,
                                format!("operation {op} on '{key}' is not valid"),
                            ));
                        }
                    }
                }
                apply(broker, &name, configs, request.validate_only)
            });
            let (code, message) = error_fields(result);
            incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(res.resource_type)
                .with_resource_name(res.resource_name)
                .with_error_code(code)
                .with_error_message(message)
        })
        .collect();
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
