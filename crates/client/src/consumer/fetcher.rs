//! Fetch requests for the consumer, run as a background task so the next records are on their
//! way while the application processes the last ones (fetch-ahead).
//!
//! **Invariants:** a fetch is a pure function of the partitions and offsets it was given: it
//! returns, per partition, the offset it asked for, the records at or after that offset (in
//! offset order, control batches skipped) and the offset after what it saw. It never touches
//! consumer state; the consumer decides whether the result still applies. Retriable errors
//! (connection loss, leadership moves) invalidate metadata, wait a short backoff and return no
//! data for those partitions, so a failing broker is retried without spinning.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{fetch_request, BrokerId, FetchRequest, TopicName};

use super::{s, ConsumerRecord};
use crate::cluster::Cluster;
use crate::error::{Error, Result};
use crate::TopicPartition;

const RETRY_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Clone, Copy, Debug)]
pub(super) struct Settings {
    pub max_wait_ms: u64,
    pub max_bytes: i32,
    pub partition_max_bytes: i32,
}

/// What one fetch brought for one partition.
#[derive(Debug)]
pub(super) struct PartitionData {
    pub tp: TopicPartition,
    pub fetch_offset: i64,
    pub records: Vec<ConsumerRecord>,
    /// The offset after the last record or control batch seen (`fetch_offset` if none).
    pub next: i64,
    pub out_of_range: bool,
}

/// Fetches `wanted` (partition, offset) from their leaders, one request per leader, in parallel.
pub(super) async fn fetch(
    cluster: Arc<Cluster>,
    wanted: Vec<(TopicPartition, i64)>,
    settings: Settings,
) -> Result<Vec<PartitionData>> {
    let mut by_leader: BTreeMap<i32, Vec<(TopicPartition, i64)>> = BTreeMap::new();
    let mut failed = false;
    for (tp, offset) in wanted {
        match cluster.leader(&tp.topic, tp.partition).await {
            Ok((leader, _)) => by_leader.entry(leader).or_default().push((tp, offset)),
            Err(e) if e.is_retriable() || e.needs_metadata_refresh() => {
                cluster.invalidate(&tp.topic);
                failed = true;
            }
            Err(e) => return Err(e),
        }
    }
    let mut pending = Vec::new();
    for (leader, parts) in by_leader {
        let offsets: BTreeMap<TopicPartition, i64> = parts.iter().cloned().collect();
        let mut topics: BTreeMap<&str, Vec<fetch_request::FetchPartition>> = BTreeMap::new();
        for (tp, offset) in &parts {
            topics.entry(tp.topic.as_str()).or_default().push(
                fetch_request::FetchPartition::default()
                    .with_partition(tp.partition)
                    .with_current_leader_epoch(-1)
                    .with_fetch_offset(*offset)
                    .with_last_fetched_epoch(-1)
                    .with_log_start_offset(-1)
                    .with_partition_max_bytes(settings.partition_max_bytes),
            );
        }
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(i32::try_from(settings.max_wait_ms).unwrap_or(i32::MAX))
            .with_min_bytes(1)
            .with_max_bytes(settings.max_bytes)
            .with_isolation_level(0)
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(
                topics
                    .into_iter()
                    .map(|(t, ps)| fetch_request::FetchTopic::default().with_topic(TopicName(s(t))).with_partitions(ps))
                    .collect(),
            );
        match cluster.connection(leader).await {
            Ok(conn) => match conn.enqueue(&request) {
                Ok(future) => pending.push((conn.addr().to_string(), offsets, future)),
                Err(e) => return Err(e),
            },
            Err(e) if e.is_retriable() => {
                offsets.keys().for_each(|tp| cluster.invalidate(&tp.topic));
                failed = true;
            }
            Err(e) => return Err(e),
        }
    }
    let mut out = Vec::new();
    for (addr, offsets, future) in pending {
        let response = match future.wait().await {
            Ok(r) => r,
            Err(e) if e.is_retriable() => {
                tracing::debug!(%addr, error = %e, "fetch failed; retrying");
                offsets.keys().for_each(|tp| cluster.invalidate(&tp.topic));
                failed = true;
                continue;
            }
            Err(e) => return Err(e),
        };
        if let Some(e) = Error::from_code(response.error_code, || "Fetch".into(), None) {
            return Err(e);
        }
        for t in &response.responses {
            let topic = t.topic.0.as_str();
            for p in &t.partitions {
                let tp = TopicPartition::new(topic, p.partition_index);
                let Some(&fetch_offset) = offsets.get(&tp) else { continue };
                let mut data =
                    PartitionData { tp, fetch_offset, records: Vec::new(), next: fetch_offset, out_of_range: false };
                match ResponseError::try_from_code(p.error_code) {
                    None => {}
                    Some(ResponseError::OffsetOutOfRange) => {
                        data.out_of_range = true;
                        out.push(data);
                        continue;
                    }
                    Some(error) => {
                        let e = Error::Kafka { context: format!("Fetch from {}", data.tp), error, message: None };
                        if e.needs_metadata_refresh() || e.is_retriable() {
                            cluster.invalidate(topic);
                            failed = true;
                            continue;
                        }
                        return Err(e);
                    }
                }
                if let Some(bytes) = &p.records {
                    decode_into(&mut data, bytes, &addr)?;
                }
                out.push(data);
            }
        }
    }
    if failed && out.iter().all(|d| d.records.is_empty()) {
        tokio::time::sleep(RETRY_BACKOFF).await;
    }
    Ok(out)
}

/// Decodes the record batches of one partition into `data` (skipping what is before
/// `fetch_offset` and control batches; a truncated last batch is left for the next fetch).
fn decode_into(data: &mut PartitionData, bytes: &[u8], addr: &str) -> Result<()> {
    let mut rest: &[u8] = bytes;
    while let Some(header) = sluice_records::BatchHeader::parse(rest) {
        let total = header.total_bytes();
        if total > rest.len() || total < sluice_records::BATCH_HEADER_BYTES {
            break;
        }
        let batch = &rest[..total];
        rest = &rest[total..];
        if header.is_control() {
            data.next = data.next.max(header.base_offset + i64::from(header.last_offset_delta) + 1);
            continue;
        }
        let records = sluice_records::records(batch, 64 * 1024 * 1024).map_err(|e| Error::Protocol {
            addr: addr.to_string(),
            api: "Fetch",
            reason: format!("undecodable batch from {}: {e}", data.tp),
        })?;
        for r in records {
            if r.offset < data.next {
                continue;
            }
            data.next = r.offset + 1;
            data.records.push(ConsumerRecord {
                topic: data.tp.topic.clone(),
                partition: data.tp.partition,
                offset: r.offset,
                timestamp: r.timestamp,
                key: r.key,
                value: r.value,
                headers: r.headers,
            });
        }
    }
    Ok(())
}
