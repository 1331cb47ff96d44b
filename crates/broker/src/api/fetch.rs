//! Fetch (1), with the long poll (F1): answer at once when `min_bytes` are readable, a
//! partition has an error, or `max_wait_ms` is 0; otherwise park until an append moves a high
//! watermark (woken by that append, not by a timer loop) or the wait runs out.
//!
//! Bytes are served as stored: whole batches from the one holding the fetch offset (F3),
//! within `partition_max_bytes` and the response's `max_bytes`, except that the first
//! partition with data gets at least one whole batch (KIP-74, F4). Fetch sessions (KIP-227)
//! are declined: `session_id` is always 0, so clients send full fetches (F7).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::select_all;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use tokio::time::Instant;
use uuid::Uuid;

use super::str_bytes;
use crate::broker::Broker;
use crate::error_code;
use crate::partition::Partition;

struct Wanted {
    partition_index: i32,
    target: Result<Arc<Partition>, i16>,
    fetch_offset: i64,
    partition_max_bytes: usize,
}

struct WantedTopic {
    name: String,
    id: Uuid,
    partitions: Vec<Wanted>,
}

fn resolve(broker: &Broker, request: &FetchRequest, version: i16) -> Vec<WantedTopic> {
    request
        .topics
        .iter()
        .map(|t| {
            let topic = if version >= 13 { broker.topic_by_id(t.topic_id) } else { broker.topic(t.topic.0.as_str()) };
            let missing =
                if version >= 13 { error_code::UNKNOWN_TOPIC_ID } else { error_code::UNKNOWN_TOPIC_OR_PARTITION };
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let target = match &topic {
                        None => Err(missing),
                        Some(topic) => match topic.partition(p.partition) {
                            None => Err(error_code::UNKNOWN_TOPIC_OR_PARTITION),
                            Some(part) if p.current_leader_epoch >= 0 && p.current_leader_epoch > part.leader_epoch => {
                                Err(error_code::UNKNOWN_LEADER_EPOCH)
                            }
                            Some(part) if p.current_leader_epoch >= 0 && p.current_leader_epoch < part.leader_epoch => {
                                Err(error_code::FENCED_LEADER_EPOCH)
                            }
                            Some(part) => Ok(part),
                        },
                    };
                    Wanted {
                        partition_index: p.partition,
                        target,
                        fetch_offset: p.fetch_offset,
                        partition_max_bytes: p.partition_max_bytes.max(0) as usize,
                    }
                })
                .collect();
            WantedTopic {
                name: topic.as_ref().map_or_else(|| t.topic.0.as_str().to_owned(), |x| x.name.clone()),
                id: topic.as_ref().map_or(t.topic_id, |x| x.id),
                partitions,
            }
        })
        .collect()
}

/// Reads every wanted partition once. Returns the response, the bytes it carries, and whether
/// any partition has an error.
fn read_all(topics: &[WantedTopic], max_bytes: usize, version: i16) -> (FetchResponse, usize, bool) {
    let mut remaining = max_bytes;
    let mut total = 0usize;
    let mut any_error = false;
    let mut responses = Vec::with_capacity(topics.len());
    for t in topics {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for w in &t.partitions {
            let data = PartitionData::default().with_partition_index(w.partition_index);
            let data = match &w.target {
                Err(code) => {
                    any_error = true;
                    data.with_error_code(*code)
                        .with_high_watermark(-1)
                        .with_last_stable_offset(-1)
                        .with_log_start_offset(-1)
                }
                Ok(p) => {
                    let limit = w.partition_max_bytes.min(remaining);
                    match p.read(w.fetch_offset, limit, total == 0) {
                        Ok(r) => {
                            remaining = remaining.saturating_sub(r.records.len());
                            total += r.records.len();
                            data.with_high_watermark(r.high_watermark)
                                .with_last_stable_offset(r.high_watermark)
                                .with_log_start_offset(r.log_start_offset)
                                .with_records(Some(r.records))
                        }
                        Err(e) => {
                            any_error = true;
                            let (hw, start) = p.with_log(|l| (l.high_watermark(), l.log_start_offset()));
                            data.with_error_code(error_code::from_log(&e))
                                .with_high_watermark(hw)
                                .with_last_stable_offset(hw)
                                .with_log_start_offset(start)
                        }
                    }
                }
            };
            // librdkafka rejects a null record set (DEPENDENCIES.md trap 5).
            let data = if data.records.is_none() { data.with_records(Some(Bytes::new())) } else { data };
            partitions.push(data);
        }
        let topic = if version >= 13 {
            FetchableTopicResponse::default().with_topic_id(t.id)
        } else {
            FetchableTopicResponse::default().with_topic(TopicName(str_bytes(t.name.clone())))
        };
        responses.push(topic.with_partitions(partitions));
    }
    (FetchResponse::default().with_session_id(0).with_responses(responses), total, any_error)
}

pub async fn handle(broker: &Arc<Broker>, request: FetchRequest, version: i16) -> FetchResponse {
    let topics = resolve(broker, &request, version);
    let max_bytes = if request.max_bytes > 0 { request.max_bytes as usize } else { usize::MAX };
    let min_bytes = request.min_bytes.max(0) as usize;
    let max_wait = Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let deadline = Instant::now() + max_wait;
    let parked: Vec<Arc<Partition>> =
        topics.iter().flat_map(|t| t.partitions.iter()).filter_map(|w| w.target.as_ref().ok().cloned()).collect();
    loop {
        // Arm the wake-ups before reading, so an append between the read and the wait is seen.
        let mut wakeups: Vec<Pin<Box<tokio::sync::futures::Notified<'_>>>> = parked
            .iter()
            .map(|p| {
                let mut n = Box::pin(p.hw_moved());
                n.as_mut().enable();
                n
            })
            .collect();
        let (response, bytes, any_error) = read_all(&topics, max_bytes, version);
        let satisfied = bytes > 0 && bytes >= min_bytes || min_bytes == 0;
        if any_error || satisfied || max_wait.is_zero() || parked.is_empty() || Instant::now() >= deadline {
            return response;
        }
        tokio::select! {
            _ = select_all(wakeups.iter_mut().map(|n| n.as_mut())) => {}
            _ = tokio::time::sleep_until(deadline) => {
                return read_all(&topics, max_bytes, version).0;
            }
        }
    }
}
