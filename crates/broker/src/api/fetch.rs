//! Fetch (1), with the long poll (F1): answer at once when `min_bytes` are readable, a
//! partition has an error, or `max_wait_ms` is 0; otherwise park until an append moves a high
//! watermark (woken by that append, not by a timer loop) or the wait runs out.
//!
//! Bytes are served as stored: whole batches from the one holding the fetch offset (F3),
//! within `partition_max_bytes` and the response's `max_bytes`, except that the first
//! partition with data gets at least one whole batch (KIP-74, F4). Fetch sessions (KIP-227)
//! are declined: `session_id` is always 0, so clients send full fetches (F7).
//!
//! Reading only locates the bytes (under each partition's lock, briefly); they are sent from the
//! segment files by the connection (`response::Part::File`), after every lock is released.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::future::select_all;
use kafka_protocol::messages::FetchRequest;
use sluice_log::FileSlice;
use tokio::time::Instant;
use uuid::Uuid;

use super::fetch_response::{FetchAnswer, PartitionAnswer, TopicAnswer};
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

/// Locates every wanted partition's bytes once (no record I/O: the bytes are sent from the
/// files later). Returns the answer and whether any partition has an error.
fn read_all(topics: &[WantedTopic], max_bytes: usize) -> (FetchAnswer, bool) {
    let mut remaining = max_bytes;
    let mut total = 0u64;
    let mut any_error = false;
    let mut answer = FetchAnswer { topics: Vec::with_capacity(topics.len()) };
    for t in topics {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for w in &t.partitions {
            let failed = |code| PartitionAnswer {
                index: w.partition_index,
                error_code: code,
                high_watermark: -1,
                last_stable_offset: -1,
                log_start_offset: -1,
                records: FileSlice::empty(),
            };
            let data = match &w.target {
                Err(code) => {
                    any_error = true;
                    failed(*code)
                }
                Ok(p) => {
                    let limit = w.partition_max_bytes.min(remaining);
                    match p.read_slice(w.fetch_offset, limit, total == 0) {
                        Ok(r) => {
                            remaining = remaining.saturating_sub(r.records.len() as usize);
                            total += r.records.len();
                            PartitionAnswer {
                                index: w.partition_index,
                                error_code: error_code::NONE,
                                high_watermark: r.high_watermark,
                                last_stable_offset: r.high_watermark,
                                log_start_offset: r.log_start_offset,
                                records: r.records,
                            }
                        }
                        Err(e) => {
                            any_error = true;
                            let (hw, start) = p.with_log(|l| (l.high_watermark(), l.log_start_offset()));
                            PartitionAnswer {
                                high_watermark: hw,
                                last_stable_offset: hw,
                                log_start_offset: start,
                                ..failed(error_code::from_log(&e))
                            }
                        }
                    }
                }
            };
            partitions.push(data);
        }
        answer.topics.push(TopicAnswer { name: t.name.clone(), id: t.id, partitions });
    }
    (answer, any_error)
}

/// Answers when the fetch is satisfied or its wait runs out; encode with
/// [`fetch_response::encode`](super::fetch_response::encode).
pub async fn handle(broker: &Arc<Broker>, request: FetchRequest, version: i16) -> FetchAnswer {
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
        let (response, any_error) = read_all(&topics, max_bytes);
        let bytes = response.record_bytes();
        let satisfied = bytes > 0 && bytes >= min_bytes as u64 || min_bytes == 0;
        if any_error || satisfied || max_wait.is_zero() || parked.is_empty() || Instant::now() >= deadline {
            return response;
        }
        tokio::select! {
            _ = select_all(wakeups.iter_mut().map(|n| n.as_mut())) => {}
            _ = tokio::time::sleep_until(deadline) => {
                return read_all(&topics, max_bytes).0;
            }
        }
    }
}
