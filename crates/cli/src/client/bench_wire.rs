//! `sluice bench produce|consume --client wire`: the broker's own capacity, measured with a
//! load generator that does no per-record work, so the client is not what is measured.
//!
//! - `produce`: one record batch per partition is encoded once (`--batch-size` bytes of
//!   `--record-size` records, uncompressed, no producer id, as a non-idempotent producer sends
//!   them); every Produce request carries one such batch for each partition its leader holds.
//!   Each of `--connections` connections keeps `--in-flight` requests outstanding. Latency is
//!   per request, from enqueueing to its answer. Any partition error fails the run.
//! - `consume`: `--connections` connections split the partitions between them; each keeps one
//!   Fetch outstanding (as Kafka's consumers do per broker), with Kafka's consumer defaults
//!   for the sizes (1 MiB per partition, 50 MiB per request). Records are counted from the
//!   batch headers (`recordsCount`); no record is decoded and no CRC checked. Latency is per
//!   Fetch.
//!
//! Invariants: a run ends after at least `--records` records are acknowledged or fetched, or
//! fails; MB/s in the summary counts the record batches' bytes on the wire.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use futures::stream::{FuturesUnordered, StreamExt};
use kafka_protocol::messages::{fetch_request, produce_request, BrokerId, FetchRequest, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use sluice_client::admin::OffsetSpec;
use sluice_client::connection::{Connection, ConnectionConfig};
use sluice_client::{Acks, Admin, Bytes, Cluster, TopicPartition};
use sluice_records::{encode_batch, BatchHeader, BatchOptions, NewRecord};

use super::bench::{bar, histogram, now_micros, payload, summary, BenchArgs, Progress};

/// Kafka consumer defaults: `max.partition.fetch.bytes`, `fetch.max.bytes`.
const PARTITION_MAX_BYTES: i32 = 1024 * 1024;
const FETCH_MAX_BYTES: i32 = 50 * 1024 * 1024;
const FETCH_MAX_WAIT_MS: i32 = 500;

pub(super) async fn run(kind: &str, args: &BenchArgs) -> Result<()> {
    if args.connections == 0 || args.in_flight == 0 {
        bail!("--connections and --in-flight must be at least 1");
    }
    let cluster = Cluster::connect(args.connect.client_config()).await?;
    let meta = cluster.topic(&args.topic).await?;
    // Partitions by the address of their leader.
    let brokers = cluster.brokers();
    let mut by_leader: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for p in 0..meta.num_partitions() {
        let leader = meta.leader(p).ok_or_else(|| anyhow!("partition {p} of {} has no leader", args.topic))?;
        let addr =
            brokers.get(&leader).ok_or_else(|| anyhow!("leader {leader} of partition {p} is not in the metadata"))?;
        by_leader.entry(addr.clone()).or_default().push(p);
    }
    match kind {
        "produce" => produce(args, &by_leader).await,
        "consume" => consume(args, &cluster, &by_leader).await,
        _ => bail!("--client wire measures produce and consume; use the sluice client for e2e"),
    }
}

async fn connect(addr: &str, args: &BenchArgs) -> Result<Connection> {
    let mut config = ConnectionConfig { client_id: "sluice-bench-wire".into(), ..ConnectionConfig::default() };
    config.request_timeout_ms = args.connect.request_timeout_ms;
    Connection::connect(addr, config).await.with_context(|| format!("connecting to {addr}"))
}

/// The batch every request carries for each partition, and how many records it holds.
fn batch(args: &BenchArgs) -> (Bytes, u64) {
    let value = Bytes::from(payload(args.record_size));
    // A record costs its value plus about 8 bytes of framing; the 61-byte header is shared.
    let per_batch = (args.batch_size.saturating_sub(61) / (args.record_size + 8)).max(1);
    let now = i64::try_from(now_micros() / 1000).unwrap_or(i64::MAX);
    let records: Vec<NewRecord> = (0..per_batch)
        .map(|_| NewRecord { timestamp: now, value: Some(value.clone()), ..NewRecord::default() })
        .collect();
    (encode_batch(&records, BatchOptions::default()).freeze(), per_batch as u64)
}

async fn produce(args: &BenchArgs, by_leader: &BTreeMap<String, Vec<i32>>) -> Result<()> {
    let acks = args.acks.parse::<Acks>()?;
    if acks == Acks::None {
        bail!("--client wire counts acknowledgements; use --acks 1 or all");
    }
    let (batch, per_batch) = batch(args);
    let mut lanes = Vec::new();
    for (addr, partitions) in by_leader {
        let request = ProduceRequest::default()
            .with_acks(acks.as_i16())
            .with_timeout_ms(i32::try_from(args.connect.request_timeout_ms).unwrap_or(i32::MAX))
            .with_topic_data(vec![produce_request::TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(args.topic.clone())))
                .with_partition_data(
                    partitions
                        .iter()
                        .map(|&p| {
                            produce_request::PartitionProduceData::default()
                                .with_index(p)
                                .with_records(Some(batch.clone()))
                        })
                        .collect(),
                )]);
        let records = per_batch * partitions.len() as u64;
        for _ in 0..args.connections {
            lanes.push((connect(addr, args).await?, request.clone(), records));
        }
    }
    let request_records: u64 = lanes.iter().map(|l| l.2).sum::<u64>() / lanes.len() as u64;
    let requests_total = args.records.div_ceil(request_records.max(1));
    eprintln!(
        "sluice: wire produce: {} connection(s), {} in flight each, {per_batch} records per batch ({} B), {requests_total} requests",
        lanes.len(),
        args.in_flight,
        batch.len()
    );
    let mut h = histogram();
    let mut progress = Progress::new(bar(args, "produce"));
    let (mut sent, mut acked, mut records, mut bytes) = (0u64, 0u64, 0u64, 0u64);
    let mut pending = FuturesUnordered::new();
    let start = Instant::now();
    // Fill every lane's window, then send one more on a lane each time one of its requests is
    // answered.
    let send = |lane: usize, sent: &mut u64| -> Result<_> {
        let (conn, request, n) = &lanes[lane];
        *sent += 1;
        let future = conn.enqueue(request)?;
        let t0 = Instant::now();
        let n = *n;
        Ok(async move { (lane, n, t0, future.wait().await) })
    };
    for lane in 0..lanes.len() {
        for _ in 0..args.in_flight {
            if sent < requests_total {
                pending.push(send(lane, &mut sent)?);
            }
        }
    }
    while let Some((lane, n, t0, answer)) = pending.next().await {
        let response = answer.context("Produce")?;
        for t in &response.responses {
            for p in &t.partition_responses {
                if let Some(error) = ResponseError::try_from_code(p.error_code) {
                    bail!("Produce to {}-{} failed: {error:?}", t.name.0.as_str(), p.index);
                }
            }
        }
        h.saturating_record(u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX));
        acked += 1;
        records += n;
        bytes += n / per_batch * batch.len() as u64;
        progress.update(records.min(args.records));
        if sent < requests_total {
            pending.push(send(lane, &mut sent)?);
        }
    }
    let elapsed = start.elapsed();
    progress.finish();
    println!("produce (wire): {acked} requests acknowledged");
    summary("produce (wire, per request)", records, bytes, elapsed, &h);
    Ok(())
}

async fn consume(args: &BenchArgs, cluster: &Arc<Cluster>, by_leader: &BTreeMap<String, Vec<i32>>) -> Result<()> {
    let all: Vec<TopicPartition> = by_leader.values().flatten().map(|&p| TopicPartition::new(&args.topic, p)).collect();
    let admin = Admin::from_cluster(cluster.clone());
    let starts = admin.list_offsets(&all, OffsetSpec::Earliest).await?;
    let ends = admin.list_offsets(&all, OffsetSpec::Latest).await?;
    let available: i64 = all.iter().map(|tp| ends[tp].offset - starts[tp].offset).sum();
    if available < i64::try_from(args.records).unwrap_or(i64::MAX) {
        bail!(
            "topic {} holds {available} records, fewer than --records {}; produce them first",
            args.topic,
            args.records
        );
    }
    // Each connection fetches every `connections`-th partition of its leader.
    // A lane stops once each of its partitions is read to the end offset listed at the start.
    let end_of = |p: i32| ends[&TopicPartition::new(&args.topic, p)].offset;
    let mut lanes: Vec<(Connection, BTreeMap<i32, i64>)> = Vec::new();
    for (addr, partitions) in by_leader {
        let n = args.connections.min(partitions.len());
        for i in 0..n {
            let mine = partitions
                .iter()
                .skip(i)
                .step_by(n)
                .map(|&p| (p, starts[&TopicPartition::new(&args.topic, p)].offset))
                .collect();
            lanes.push((connect(addr, args).await?, mine));
        }
    }
    eprintln!("sluice: wire consume: {} connection(s), one fetch outstanding each", lanes.len());
    let fetch = |lane: usize, offsets: &BTreeMap<i32, i64>, conn: &Connection| -> Result<_> {
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(FETCH_MAX_WAIT_MS)
            .with_min_bytes(1)
            .with_max_bytes(FETCH_MAX_BYTES)
            .with_isolation_level(0)
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(vec![fetch_request::FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(args.topic.clone())))
                .with_partitions(
                    offsets
                        .iter()
                        .map(|(&p, &offset)| {
                            fetch_request::FetchPartition::default()
                                .with_partition(p)
                                .with_current_leader_epoch(-1)
                                .with_fetch_offset(offset)
                                .with_last_fetched_epoch(-1)
                                .with_log_start_offset(-1)
                                .with_partition_max_bytes(PARTITION_MAX_BYTES)
                        })
                        .collect(),
                )]);
        let future = conn.enqueue(&request)?;
        let t0 = Instant::now();
        Ok(async move { (lane, t0, future.wait().await) })
    };
    let mut h = histogram();
    let mut progress = Progress::new(bar(args, "consume"));
    let (mut records, mut bytes, mut fetches) = (0u64, 0u64, 0u64);
    let mut pending = FuturesUnordered::new();
    let start = Instant::now();
    for (lane, (conn, offsets)) in lanes.iter().enumerate() {
        pending.push(fetch(lane, offsets, conn)?);
    }
    let mut idle_since = Instant::now();
    let mut elapsed = Duration::ZERO;
    while let Some((lane, t0, answer)) = pending.next().await {
        let response = answer.context("Fetch")?;
        if let Some(error) = ResponseError::try_from_code(response.error_code) {
            bail!("Fetch failed: {error:?}");
        }
        h.saturating_record(u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX));
        fetches += 1;
        let before = records;
        let offsets = &mut lanes[lane].1;
        for t in &response.responses {
            for p in &t.partitions {
                if let Some(error) = ResponseError::try_from_code(p.error_code) {
                    bail!("Fetch from {}-{} failed: {error:?}", args.topic, p.partition_index);
                }
                let Some(next) = offsets.get_mut(&p.partition_index) else { continue };
                let mut rest: &[u8] = p.records.as_deref().unwrap_or_default();
                // Whole batches only; a truncated last one is fetched again next time.
                while let Some(header) = BatchHeader::parse(rest) {
                    let total = header.total_bytes();
                    if total > rest.len() || total < sluice_records::BATCH_HEADER_BYTES {
                        break;
                    }
                    rest = &rest[total..];
                    if header.next_offset() <= *next {
                        continue;
                    }
                    if !header.is_control() {
                        records += u64::try_from(header.records_count).unwrap_or(0);
                        bytes += total as u64;
                    }
                    *next = header.next_offset();
                }
            }
        }
        if records > before {
            idle_since = Instant::now();
        } else if idle_since.elapsed() > Duration::from_secs(15) {
            bail!("no record for 15 s after {records} of {}", args.records);
        }
        progress.update(records.min(args.records));
        if records >= args.records {
            if elapsed.is_zero() {
                elapsed = start.elapsed();
            }
            continue;
        }
        let (conn, offsets) = &lanes[lane];
        if offsets.iter().any(|(&p, &next)| next < end_of(p)) {
            pending.push(fetch(lane, offsets, conn)?);
        }
    }
    if records < args.records {
        bail!("read every partition to its end and found {records} records, fewer than --records {}", args.records);
    }
    progress.finish();
    println!("consume (wire): {records} records in {fetches} fetches");
    summary("consume (wire, per fetch)", records, bytes, elapsed, &h);
    Ok(())
}
