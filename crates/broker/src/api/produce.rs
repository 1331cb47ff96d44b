//! Produce (0): validate each partition's record set (B4-B11), append it (offsets assigned by
//! the log, L1), and answer per `acks` (P9-P12): acks=0 never answers and closes the
//! connection on failure; acks=1 and acks=all answer once the append is durable as the
//! configured durability defines (on one node acks=all and acks=1 are the same promise).

use std::sync::Arc;

use bytes::Bytes;
use futures::future::join_all;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use super::str_bytes;
use crate::broker::{now_ms, Broker};
use crate::error_code;
use crate::partition::Partition;

pub enum ProduceOutcome {
    Respond(ProduceResponse),
    Silent,
    Close(String),
}

/// One partition's result before durability: an error, or the append and where it must be
/// durable to.
struct Appended {
    response: PartitionProduceResponse,
    wait: Option<(Arc<Partition>, i64)>,
}

fn failed(index: i32, code: i16, message: impl Into<String>) -> Appended {
    Appended {
        response: PartitionProduceResponse::default()
            .with_index(index)
            .with_error_code(code)
            .with_base_offset(-1)
            .with_error_message(Some(str_bytes(message))),
        wait: None,
    }
}

fn append_one(broker: &Arc<Broker>, topic: &str, index: i32, records: Option<Bytes>) -> Appended {
    let partition = match broker.topic_or_create(topic, true) {
        Ok(t) if t.internal => {
            // Kafka's answer to a client append to an internal topic.
            return failed(
                index,
                error_code::INVALID_TOPIC_EXCEPTION,
                format!("cannot append to internal topic {topic}"),
            );
        }
        Ok(t) => match t.partition(index) {
            Some(p) => p,
            None => {
                return failed(
                    index,
                    error_code::UNKNOWN_TOPIC_OR_PARTITION,
                    format!("{topic} has no partition {index}"),
                )
            }
        },
        Err(e) => return failed(index, e.code, e.message),
    };
    let Some(records) = records else {
        return failed(index, error_code::INVALID_RECORD, "no records");
    };
    let max = partition.with_log(|log| log.config().max_message_bytes);
    if let Err(e) = sluice_records::batches(&records, max) {
        tracing::debug!(topic, partition = index, error = %e, "rejected produced batch");
        return failed(index, error_code::from_records(&e), e.to_string());
    }
    match partition.append(&records, now_ms()) {
        Ok(outcome) => Appended {
            response: PartitionProduceResponse::default()
                .with_index(index)
                .with_base_offset(outcome.base_offset)
                .with_log_append_time_ms(outcome.log_append_time_ms)
                .with_log_start_offset(outcome.log_start_offset),
            wait: Some((partition, outcome.last_offset + 1)),
        },
        Err(e) => {
            tracing::debug!(topic, partition = index, error = %e, "append refused");
            failed(index, error_code::from_log(&e), e.to_string())
        }
    }
}

/// The appends of one Produce request, done; what is left is waiting for durability.
pub struct Pending {
    acks: i16,
    /// Each topic as the request named it (by name, or by id from v13) with its results.
    topics: Vec<(kafka_protocol::messages::TopicName, uuid::Uuid, Vec<Appended>)>,
}

/// Validates and appends every partition's record set, now. The connection calls this in
/// request order, before it reads the next request, so pipelined produces on one connection
/// are appended in the order they were sent (as Kafka does by muting the connection).
///
/// From v13 topics are named by id (KIP-516): an unknown id is UNKNOWN_TOPIC_ID, and no
/// topic is created by id.
pub fn append(broker: &Arc<Broker>, request: ProduceRequest, version: i16) -> Pending {
    let acks = request.acks;
    let refuse = if request.transactional_id.is_some() {
        Some((error_code::INVALID_REQUEST, "transactions are not supported yet"))
    } else if !matches!(acks, -1..=1) {
        Some((error_code::INVALID_REQUIRED_ACKS, "acks must be -1, 0 or 1"))
    } else {
        None
    };
    let mut topics = Vec::with_capacity(request.topic_data.len());
    for topic in request.topic_data {
        let name = match version {
            13.. => broker.topic_by_id(topic.topic_id).map(|t| t.name.clone()),
            _ => Some(topic.name.0.as_str().to_owned()),
        };
        let results: Vec<Appended> = topic
            .partition_data
            .into_iter()
            .map(|p| match (refuse, &name) {
                (Some((code, message)), _) => failed(p.index, code, message),
                (None, None) => {
                    failed(p.index, error_code::UNKNOWN_TOPIC_ID, format!("unknown topic id {}", topic.topic_id))
                }
                (None, Some(name)) => append_one(broker, name, p.index, p.records),
            })
            .collect();
        topics.push((topic.name, topic.topic_id, results));
    }
    Pending { acks, topics }
}

/// Waits until the appends are durable (as the configured durability defines) and builds the
/// answer. Runs concurrently with later requests of the same connection: their appends can
/// share this one's fsync (group commit); responses still go out in request order.
pub async fn complete(pending: Pending) -> ProduceOutcome {
    let Pending { acks, topics } = pending;
    if acks == 0 {
        let failure = topics.iter().flat_map(|(_, _, r)| r).find(|a| a.response.error_code != error_code::NONE);
        if let Some(f) = failure {
            return ProduceOutcome::Close(format!("acks=0 produce failed with error {}", f.response.error_code));
        }
        for (partition, offset) in topics.into_iter().flat_map(|(_, _, r)| r).filter_map(|a| a.wait) {
            tokio::spawn(async move {
                let _ = partition.wait_durable(offset).await;
            });
        }
        return ProduceOutcome::Silent;
    }

    let mut responses = Vec::with_capacity(topics.len());
    for (name, topic_id, results) in topics {
        let partitions = join_all(results.into_iter().map(|a| async move {
            match a.wait {
                None => a.response,
                Some((partition, offset)) => match partition.wait_durable(offset).await {
                    Ok(()) => a.response,
                    Err(e) => a
                        .response
                        .with_error_code(error_code::from_log(&e))
                        .with_base_offset(-1)
                        .with_error_message(Some(str_bytes(e.to_string()))),
                },
            }
        }))
        .await;
        responses.push(
            TopicProduceResponse::default()
                .with_name(name)
                .with_topic_id(topic_id)
                .with_partition_responses(partitions),
        );
    }
    ProduceOutcome::Respond(ProduceResponse::default().with_responses(responses))
}
