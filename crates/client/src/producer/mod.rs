//! The producer: records in, batches per partition, Produce requests out, one delivery future
//! per record.
//!
//! `send` chooses the partition and appends the record to that partition's open batch. One
//! sender task drains batches that are full, older than `linger_ms`, or wanted by `flush`,
//! groups them by leader and sends one Produce request per broker (one batch per partition per
//! request), at most `max_in_flight` requests per broker at a time, pipelined on the broker's
//! single connection. A response task completes the records of each batch or puts the batch
//! back for a retry.
//!
//! **Idempotence** (on by default, needs acks=all): the producer gets a producer id and epoch
//! (InitProducerId); each batch gets the partition's next sequence number when it is first
//! sent, and a retry resends the very same bytes, so a broker that already appended it answers
//! with the original offsets instead of appending twice. Retries go back in sequence order,
//! ahead of batches never sent; batches that were behind a failed one come back
//! OUT_OF_ORDER_SEQUENCE_NUMBER and are retried too. When a partition's batches may go out, and
//! the epoch bump after a batch is given up: [`sequence`].
//!
//! Not yet: transactions.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    produce_request, InitProducerIdRequest, ProduceRequest, ProduceResponse, ProducerId, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use sluice_records::{encode_batch, BatchOptions, Compression, NewRecord};
use tokio::sync::{oneshot, Notify};

use crate::cluster::{ClientConfig, Cluster};
use crate::error::{Error, Result};
use crate::partitioner::{DefaultPartitioner, PartitionInput, Partitioner};
use crate::TopicPartition;
use sequence::{Gate, Idempotence, Sequencing, Stamp};

mod sequence;

/// How many acknowledgements a Produce waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// acks=0: no response; delivery futures resolve with offset -1 once the request is written.
    None,
    /// acks=1: the leader has appended.
    Leader,
    /// acks=all (-1): every in-sync replica has.
    All,
}

impl Acks {
    pub fn as_i16(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

impl std::str::FromStr for Acks {
    type Err = Error;
    fn from_str(s: &str) -> Result<Acks> {
        match s {
            "0" => Ok(Acks::None),
            "1" => Ok(Acks::Leader),
            "all" | "-1" => Ok(Acks::All),
            _ => Err(Error::Config(format!("acks must be 0, 1 or all, not {s:?}"))),
        }
    }
}

/// Producer settings, with Kafka's names and (Kafka 4.x) defaults.
#[derive(Clone)]
pub struct ProducerConfig {
    pub client: ClientConfig,
    pub acks: Acks,
    /// How long a batch waits for more records before it is sent.
    pub linger_ms: u64,
    /// Bytes of records per batch before it is closed (and the sticky partition switches).
    pub batch_size: usize,
    pub compression: Compression,
    /// `None`: on unless `acks` is not `All` (as Java does when idempotence is not set).
    /// `Some(true)` with acks other than all is a configuration error.
    pub enable_idempotence: Option<bool>,
    /// Produce requests in flight per broker (at most 5 with idempotence).
    pub max_in_flight: usize,
    /// Retries of a batch after retriable errors.
    pub retries: u32,
    pub retry_backoff_ms: u64,
    /// Upper bound on the time from `send` to a delivery result.
    pub delivery_timeout_ms: u64,
    /// Bytes of records buffered before `send` waits.
    pub buffer_memory: usize,
    /// Largest record accepted by `send` (its estimated encoded size).
    pub max_request_size: usize,
    /// `None`: [`DefaultPartitioner`] with `batch_size`.
    pub partitioner: Option<Arc<dyn Partitioner>>,
}

impl std::fmt::Debug for ProducerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerConfig")
            .field("client", &self.client)
            .field("acks", &self.acks)
            .field("linger_ms", &self.linger_ms)
            .field("batch_size", &self.batch_size)
            .field("compression", &self.compression)
            .field("enable_idempotence", &self.enable_idempotence)
            .finish_non_exhaustive()
    }
}

impl ProducerConfig {
    pub fn new(bootstrap_servers: impl Into<String>) -> ProducerConfig {
        ProducerConfig {
            client: ClientConfig::new(bootstrap_servers),
            acks: Acks::All,
            linger_ms: 5,
            batch_size: 16_384,
            compression: Compression::None,
            enable_idempotence: None,
            max_in_flight: 5,
            retries: u32::MAX,
            retry_backoff_ms: 100,
            delivery_timeout_ms: 120_000,
            buffer_memory: 32 * 1024 * 1024,
            max_request_size: 1024 * 1024,
            partitioner: None,
        }
    }

    fn idempotent(&self) -> Result<bool> {
        match (self.enable_idempotence, self.acks) {
            (Some(true), Acks::All) | (None, Acks::All) => {
                if self.max_in_flight > 5 {
                    return Err(Error::Config(format!(
                        "idempotence allows at most 5 requests in flight, not {}; lower max_in_flight or disable idempotence",
                        self.max_in_flight
                    )));
                }
                Ok(true)
            }
            (Some(true), acks) => Err(Error::Config(format!(
                "idempotence needs acks=all, not acks={}; set acks=all or disable idempotence",
                acks.as_i16()
            ))),
            _ => Ok(false),
        }
    }
}

/// A record to send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerRecord {
    pub topic: String,
    /// `None`: the partitioner chooses.
    pub partition: Option<i32>,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    /// In order; keys may repeat.
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Milliseconds since the epoch; `None`: now.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    pub fn new(topic: impl Into<String>) -> ProducerRecord {
        ProducerRecord { topic: topic.into(), ..Default::default() }
    }
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }
    pub fn value(mut self, value: impl Into<Bytes>) -> Self {
        self.value = Some(value.into());
        self
    }
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }
    pub fn header(mut self, key: impl Into<String>, value: Option<Bytes>) -> Self {
        self.headers.push((key.into(), value));
        self
    }
    pub fn timestamp(mut self, timestamp_ms: i64) -> Self {
        self.timestamp = Some(timestamp_ms);
        self
    }

    /// The estimated encoded size: sizes plus the worst-case varint overhead.
    fn estimated_bytes(&self) -> usize {
        const RECORD_OVERHEAD_BYTES: usize = 21;
        const HEADER_OVERHEAD_BYTES: usize = 10;
        let len = |b: &Option<Bytes>| b.as_ref().map_or(0, |b| b.len());
        RECORD_OVERHEAD_BYTES
            + len(&self.key)
            + len(&self.value)
            + self.headers.iter().map(|(k, v)| HEADER_OVERHEAD_BYTES + k.len() + len(v)).sum::<usize>()
    }
}

/// Where a record was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    pub topic: String,
    pub partition: i32,
    /// -1 with acks=0 (the broker does not say).
    pub offset: i64,
    /// The record's timestamp, or the broker's append time for LogAppendTime topics.
    pub timestamp: i64,
}

/// Resolves when the record is acknowledged (or has failed for good).
#[derive(Debug)]
pub struct DeliveryFuture {
    rx: oneshot::Receiver<Result<RecordMetadata>>,
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx).poll(cx).map(|r| r.unwrap_or(Err(Error::Closed)))
    }
}

impl DeliveryFuture {
    /// Blocks the thread until the delivery result is known. Not from inside a runtime.
    pub fn wait(self) -> Result<RecordMetadata> {
        self.rx.blocking_recv().unwrap_or(Err(Error::Closed))
    }
}

type Reply = oneshot::Sender<Result<RecordMetadata>>;

struct Batch {
    tp: TopicPartition,
    records: Vec<NewRecord>,
    replies: Vec<Reply>,
    bytes: usize,
    created: Instant,
    /// Encoded bytes and base sequence, fixed at the first send so retries resend them as is.
    encoded: Option<(Bytes, i32)>,
    attempts: u32,
    retry_after: Option<Instant>,
    last_error: Option<Error>,
}

impl Batch {
    fn base_sequence(&self) -> Option<i32> {
        self.encoded.as_ref().map(|(_, s)| *s).filter(|s| *s >= 0)
    }
}

#[derive(Default)]
struct PartitionQueue {
    open: Option<Batch>,
    /// Closed batches in send order; retried ones go back in sequence order.
    ready: VecDeque<Batch>,
    in_flight: usize,
    sequencing: Sequencing,
}

#[derive(Default)]
struct State {
    partitions: BTreeMap<TopicPartition, PartitionQueue>,
    node_in_flight: HashMap<i32, usize>,
    buffered_bytes: usize,
    /// Batches created and not yet completed (open, ready or in flight).
    outstanding_batches: usize,
    flushing: usize,
    closed: bool,
    refreshing: HashSet<String>,
    /// `None` when not idempotent.
    idempotence: Option<Idempotence>,
    /// InitProducerId for a new producer id is under way.
    producer_id_requested: bool,
}

struct Inner {
    config: ProducerConfig,
    cluster: Arc<Cluster>,
    partitioner: Arc<dyn Partitioner>,
    state: Mutex<State>,
    /// Wakes the sender task.
    wake: Notify,
    /// Wakes `flush` and `send` waiting for buffer space.
    progress: Notify,
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The async producer. Dropping it without [`close`](Producer::close) still delivers what was
/// sent, in the background.
pub struct Producer {
    inner: Arc<Inner>,
    sender: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl Producer {
    /// Connects to the cluster and, when idempotent, gets a producer id.
    pub async fn new(config: ProducerConfig) -> Result<Producer> {
        if config.batch_size == 0 || config.max_in_flight == 0 {
            return Err(Error::Config("batch_size and max_in_flight must be at least 1".into()));
        }
        let idempotent = config.idempotent()?;
        let cluster = Cluster::connect(config.client.clone()).await?;
        let producer_id = if idempotent { Some(init_producer_id(&cluster).await?) } else { None };
        let partitioner =
            config.partitioner.clone().unwrap_or_else(|| Arc::new(DefaultPartitioner::new(config.batch_size)));
        let inner = Arc::new(Inner {
            config,
            cluster,
            partitioner,
            state: Mutex::new(State {
                idempotence: producer_id.map(|(id, epoch)| Idempotence::new(Stamp { id, epoch })),
                ..State::default()
            }),
            wake: Notify::new(),
            progress: Notify::new(),
        });
        let sender = tokio::spawn(run_sender(inner.clone()));
        Ok(Producer { inner, sender: Some(sender) })
    }

    /// The cluster view this producer uses (shared with nothing else).
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.inner.cluster
    }

    /// The producer id and current epoch, when idempotent. The epoch grows when a batch that was
    /// sent is given up (see [`sequence`]).
    pub fn producer_id(&self) -> Option<(i64, i16)> {
        self.inner.lock().idempotence.as_ref().map(|i| (i.current.id, i.current.epoch))
    }

    /// The topic's metadata for `send`: a metadata request that fails on a broken or timed-out
    /// connection is tried again (another connection may answer) until `delivery_timeout_ms`,
    /// as Java's send waits for metadata through such failures; other errors return at once.
    async fn topic_metadata(&self, topic: &str) -> Result<Arc<crate::cluster::TopicMetadata>> {
        let inner = &self.inner;
        let deadline = tokio::time::Instant::now() + Duration::from_millis(inner.config.delivery_timeout_ms);
        loop {
            match inner.cluster.topic(topic).await {
                Err(e) if e.is_retriable() && tokio::time::Instant::now() < deadline => {
                    tracing::debug!(topic, error = %e, "metadata for send failed; retrying");
                    tokio::time::sleep(Duration::from_millis(inner.config.retry_backoff_ms)).await;
                }
                other => return other,
            }
        }
    }

    /// Partitions `record` and appends it to its partition's batch. Returns once the record is
    /// buffered (waiting for buffer space if `buffer_memory` is used up); the future resolves
    /// when it is acknowledged. Fails at once for an unknown topic or partition; a metadata
    /// request that fails on a broken connection is retried until `delivery_timeout_ms`.
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        let inner = &self.inner;
        if inner.lock().closed {
            return Err(Error::Closed);
        }
        let bytes = record.estimated_bytes();
        if bytes > inner.config.max_request_size {
            return Err(Error::Kafka {
                context: format!("record of {bytes} bytes to {}", record.topic),
                error: ResponseError::MessageTooLarge,
                message: Some(format!("larger than max_request_size {}", inner.config.max_request_size)),
            });
        }
        let mut meta = self.topic_metadata(&record.topic).await?;
        if record.partition.is_some_and(|p| p >= meta.num_partitions()) {
            // The cached metadata may predate partitions added since: look again once.
            inner.cluster.invalidate(&record.topic);
            meta = self.topic_metadata(&record.topic).await?;
        }
        let partition = match record.partition {
            Some(p) => p,
            None => {
                let available = meta.available_partitions();
                inner.partitioner.partition(&PartitionInput {
                    topic: &record.topic,
                    key: record.key.as_deref(),
                    value: record.value.as_deref(),
                    record_bytes: bytes,
                    num_partitions: meta.num_partitions(),
                    available_partitions: &available,
                })
            }
        };
        if partition < 0 || partition >= meta.num_partitions() {
            return Err(Error::UnknownPartition {
                topic: record.topic.clone(),
                partition,
                partitions: meta.num_partitions(),
            });
        }

        // Back-pressure: wait while the buffer is full (a record always fits an empty buffer).
        loop {
            let notified = inner.progress.notified();
            {
                let state = inner.lock();
                if state.closed {
                    return Err(Error::Closed);
                }
                if state.buffered_bytes == 0 || state.buffered_bytes + bytes <= inner.config.buffer_memory {
                    break;
                }
            }
            notified.await;
        }

        let (tx, rx) = oneshot::channel();
        let tp = TopicPartition::new(record.topic, partition);
        let new = NewRecord {
            timestamp: record.timestamp.unwrap_or_else(now_ms),
            key: record.key,
            value: record.value,
            headers: record.headers,
        };
        let mut wake = false;
        {
            let mut state = inner.lock();
            let state = &mut *state;
            state.buffered_bytes += bytes;
            let q = state.partitions.entry(tp.clone()).or_default();
            if q.open.as_ref().is_some_and(|b| b.bytes + bytes > inner.config.batch_size) {
                q.ready.push_back(q.open.take().expect("checked"));
                wake = true;
            }
            if q.open.is_none() {
                q.open = Some(Batch {
                    tp,
                    records: Vec::new(),
                    replies: Vec::new(),
                    bytes: 0,
                    created: Instant::now(),
                    encoded: None,
                    attempts: 0,
                    retry_after: None,
                    last_error: None,
                });
                state.outstanding_batches += 1;
                wake = true;
            }
            let batch = q.open.as_mut().expect("just ensured");
            batch.records.push(new);
            batch.replies.push(tx);
            batch.bytes += bytes;
            if batch.bytes >= inner.config.batch_size {
                q.ready.push_back(q.open.take().expect("just used"));
                wake = true;
            }
        }
        if wake {
            inner.wake.notify_one();
        }
        Ok(DeliveryFuture { rx })
    }

    /// Sends every buffered record now and waits until each has a delivery result.
    pub async fn flush(&self) -> Result<()> {
        let inner = &self.inner;
        inner.lock().flushing += 1;
        inner.wake.notify_one();
        loop {
            let notified = inner.progress.notified();
            if inner.lock().outstanding_batches == 0 {
                break;
            }
            notified.await;
        }
        inner.lock().flushing -= 1;
        Ok(())
    }

    /// Flushes, then stops the sender. Later `send`s fail with [`Error::Closed`].
    pub async fn close(mut self) -> Result<()> {
        self.inner.lock().closed = true;
        self.inner.wake.notify_one();
        self.inner.progress.notify_waiters();
        if let Some(sender) = self.sender.take() {
            let _ = sender.await;
        }
        Ok(())
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        // The sender delivers what is buffered and then stops.
        self.inner.lock().closed = true;
        self.inner.wake.notify_one();
        self.inner.progress.notify_waiters();
    }
}

async fn init_producer_id(cluster: &Cluster) -> Result<(i64, i16)> {
    let request = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(i32::MAX)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let mut attempt = 0;
    loop {
        let conn = cluster.any_connection().await?;
        let response = conn.send(&request).await?;
        match Error::from_code(response.error_code, || "InitProducerId".to_string(), None) {
            None => return Ok((response.producer_id.0, response.producer_epoch)),
            Some(e) if e.is_retriable() && attempt < 10 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Some(e) => return Err(e),
        }
    }
}

/// One Produce request's worth of work for one broker.
struct Send {
    node: i32,
    batches: Vec<Batch>,
}

async fn run_sender(inner: Arc<Inner>) {
    loop {
        let notified = inner.wake.notified();
        let (sends, deadline, refresh, done) = drain(&inner);
        for topic in refresh {
            spawn_refresh(inner.clone(), topic);
        }
        spawn_new_producer_id(&inner);
        for send in sends {
            dispatch(&inner, send).await;
        }
        if done {
            break;
        }
        match deadline {
            Some(at) => {
                tokio::select! {
                    _ = notified => {}
                    _ = tokio::time::sleep_until(at.into()) => {}
                }
            }
            None => notified.await,
        }
    }
    inner.progress.notify_waiters();
}

fn spawn_refresh(inner: Arc<Inner>, topic: String) {
    tokio::spawn(async move {
        inner.cluster.invalidate(&topic);
        if inner.cluster.topic(&topic).await.is_err() {
            tokio::time::sleep(Duration::from_millis(inner.config.retry_backoff_ms)).await;
        }
        inner.lock().refreshing.remove(&topic);
        inner.wake.notify_one();
    });
}

/// Gets a new producer id once the epoch is exhausted (retrying until it comes).
fn spawn_new_producer_id(inner: &Arc<Inner>) {
    {
        let mut state = inner.lock();
        let needed = state.idempotence.as_ref().is_some_and(|i| i.new_id_needed);
        if !needed || state.producer_id_requested {
            return;
        }
        state.producer_id_requested = true;
    }
    let inner = inner.clone();
    tokio::spawn(async move {
        loop {
            match init_producer_id(&inner.cluster).await {
                Ok((id, epoch)) => {
                    let mut state = inner.lock();
                    state.producer_id_requested = false;
                    if let Some(i) = state.idempotence.as_mut() {
                        i.set_new_id(Stamp { id, epoch });
                    }
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "InitProducerId for a new producer id failed; retrying");
                    tokio::time::sleep(Duration::from_millis(inner.config.retry_backoff_ms)).await;
                }
            }
        }
        inner.wake.notify_one();
    });
}

/// Picks the batches to send now; returns them by broker, the next time something becomes due,
/// topics whose metadata needs a refresh, and whether the producer is closed and empty.
fn drain(inner: &Inner) -> (Vec<Send>, Option<Instant>, Vec<String>, bool) {
    let config = &inner.config;
    let now = Instant::now();
    let linger = Duration::from_millis(config.linger_ms);
    let delivery_timeout = Duration::from_millis(config.delivery_timeout_ms);
    let mut state = inner.lock();
    let state = &mut *state;
    let send_all = state.flushing > 0 || state.closed;
    let mut deadline: Option<Instant> = None;
    let mut due = |at: Instant| deadline = Some(deadline.map_or(at, |d: Instant| d.min(at)));
    let mut by_node: BTreeMap<i32, Vec<Batch>> = BTreeMap::new();
    let mut refresh = Vec::new();
    let mut expired = Vec::new();

    let mut idempotence = state.idempotence.as_mut();
    for (tp, q) in state.partitions.iter_mut() {
        if let Some(open) = &q.open {
            if send_all || now >= open.created + linger {
                q.ready.push_back(q.open.take().expect("checked"));
            } else {
                due(open.created + linger);
            }
        }
        // Give up on batches that have waited too long and are not in flight.
        while q.ready.front().is_some_and(|b| now >= b.created + delivery_timeout) {
            let batch = q.ready.pop_front().expect("checked");
            q.sequencing.failed(batch.base_sequence());
            expired.push(batch);
        }
        let Some(front) = q.ready.front() else { continue };
        if let Some(at) = front.retry_after.filter(|at| *at > now) {
            due(at);
            continue;
        }
        let front_is_retry = front.encoded.is_some();
        let leader = inner.cluster.cached_topic(&tp.topic).and_then(|t| t.leader(tp.partition));
        let Some(node) = leader else {
            if state.refreshing.insert(tp.topic.clone()) {
                refresh.push(tp.topic.clone());
            }
            continue;
        };
        let in_flight = state.node_in_flight.get(&node).copied().unwrap_or(0);
        if in_flight >= config.max_in_flight && !by_node.contains_key(&node) {
            continue;
        }
        match q.sequencing.gate(idempotence.as_deref_mut(), front_is_retry, q.in_flight) {
            Gate::Wait => continue,
            Gate::Send => {}
            Gate::SendRestamped => {
                for b in q.ready.iter_mut() {
                    b.encoded = None;
                }
            }
        }
        let mut batch = q.ready.pop_front().expect("checked");
        q.in_flight += 1;
        if batch.encoded.is_none() {
            let (producer_id, producer_epoch, base_sequence) =
                q.sequencing.stamp(idempotence.as_deref(), batch.records.len());
            let opts = BatchOptions {
                compression: config.compression,
                producer_id,
                producer_epoch,
                base_sequence,
                ..BatchOptions::default()
            };
            batch.encoded = Some((encode_batch(&batch.records, opts).freeze(), base_sequence));
        }
        by_node.entry(node).or_default().push(batch);
    }
    for node in by_node.keys() {
        *state.node_in_flight.entry(*node).or_default() += 1;
    }
    if !expired.is_empty() {
        // `flush` and `send` (buffer space) wait for completions.
        inner.progress.notify_waiters();
    }
    for batch in expired {
        let last = batch.last_error.as_ref().map_or_else(|| "none".to_string(), |e| e.to_string());
        let error = Error::DeliveryTimeout {
            topic: batch.tp.topic.clone(),
            partition: batch.tp.partition,
            timeout_ms: config.delivery_timeout_ms,
            last,
        };
        finish(state, batch, Err(error));
    }
    let done = state.closed && state.outstanding_batches == 0;
    let sends = by_node.into_iter().map(|(node, batches)| Send { node, batches }).collect();
    (sends, deadline, refresh, done)
}

/// Completes every record of a batch that is out of the queues.
fn finish(state: &mut State, batch: Batch, result: Result<(i64, i64)>) {
    state.buffered_bytes -= batch.bytes;
    state.outstanding_batches -= 1;
    match result {
        Ok((base_offset, log_append_time)) => {
            for (i, (reply, record)) in batch.replies.into_iter().zip(&batch.records).enumerate() {
                let _ = reply.send(Ok(RecordMetadata {
                    topic: batch.tp.topic.clone(),
                    partition: batch.tp.partition,
                    offset: if base_offset < 0 { -1 } else { base_offset + i as i64 },
                    timestamp: if log_append_time >= 0 { log_append_time } else { record.timestamp },
                }));
            }
        }
        Err(e) => {
            for reply in batch.replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

async fn dispatch(inner: &Arc<Inner>, send: Send) {
    let Send { node, batches } = send;
    let conn = match inner.cluster.connection(node).await {
        Ok(c) => c,
        Err(e) => {
            complete(inner, node, batches.into_iter().map(|b| (b, Err(e.clone()))).collect());
            return;
        }
    };
    let mut topics: BTreeMap<&str, Vec<produce_request::PartitionProduceData>> = BTreeMap::new();
    for b in &batches {
        let (bytes, _) = b.encoded.as_ref().expect("encoded when drained");
        topics.entry(b.tp.topic.as_str()).or_default().push(
            produce_request::PartitionProduceData::default()
                .with_index(b.tp.partition)
                .with_records(Some(bytes.clone())),
        );
    }
    let request = ProduceRequest::default()
        .with_acks(inner.config.acks.as_i16())
        .with_timeout_ms(i32::try_from(inner.config.client.connection.request_timeout_ms).unwrap_or(i32::MAX))
        .with_topic_data(
            topics
                .into_iter()
                .map(|(t, partitions)| {
                    produce_request::TopicProduceData::default()
                        .with_name(TopicName(StrBytes::from_string(t.to_string())))
                        .with_partition_data(partitions)
                })
                .collect(),
        );
    if inner.config.acks == Acks::None {
        match conn.enqueue_no_response(&request) {
            Ok(written) => {
                let inner = inner.clone();
                tokio::spawn(async move {
                    let result = written.await.map(|()| (-1, -1));
                    complete(&inner, node, batches.into_iter().map(|b| (b, result.clone())).collect());
                });
            }
            Err(e) => complete(inner, node, batches.into_iter().map(|b| (b, Err(e.clone()))).collect()),
        }
        return;
    }
    match conn.enqueue(&request) {
        Ok(response) => {
            let inner = inner.clone();
            let addr = conn.addr().to_string();
            tokio::spawn(async move {
                let results = match response.wait().await {
                    Ok(r) => match_responses(&r, batches, &addr),
                    Err(e) => batches.into_iter().map(|b| (b, Err(e.clone()))).collect(),
                };
                complete(&inner, node, results);
            });
        }
        Err(e) => complete(inner, node, batches.into_iter().map(|b| (b, Err(e.clone()))).collect()),
    }
}

type BatchResult = (Batch, Result<(i64, i64)>);

fn match_responses(response: &ProduceResponse, batches: Vec<Batch>, addr: &str) -> Vec<BatchResult> {
    batches
        .into_iter()
        .map(|b| {
            let partition = response
                .responses
                .iter()
                .filter(|t| t.name.0.as_str() == b.tp.topic)
                .flat_map(|t| t.partition_responses.iter())
                .find(|p| p.index == b.tp.partition);
            let result = match partition {
                None => Err(Error::Protocol {
                    addr: addr.to_string(),
                    api: "Produce",
                    reason: format!("no answer for {}", b.tp),
                }),
                Some(p) => match ResponseError::try_from_code(p.error_code) {
                    None => Ok((p.base_offset, p.log_append_time_ms)),
                    // The broker has this batch but no longer knows its offsets (Java: success).
                    Some(ResponseError::DuplicateSequenceNumber) => Ok((-1, -1)),
                    Some(error) => Err(Error::Kafka {
                        context: format!("Produce to {}", b.tp),
                        error,
                        message: p.error_message.as_ref().map(|m| m.to_string()),
                    }),
                },
            };
            (b, result)
        })
        .collect()
}

/// Applies the results of one request: completes, retries or fails each batch.
fn complete(inner: &Inner, node: i32, results: Vec<BatchResult>) {
    let config = &inner.config;
    let now = Instant::now();
    let mut invalidate = HashSet::new();
    {
        let mut state = inner.lock();
        let state = &mut *state;
        if let Some(n) = state.node_in_flight.get_mut(&node) {
            *n = n.saturating_sub(1);
        }
        for (mut batch, result) in results {
            let q = state.partitions.get_mut(&batch.tp).expect("a batch in flight has a queue");
            q.in_flight -= 1;
            let error = match result {
                Ok(offsets) => {
                    q.sequencing.acked(batch.base_sequence(), batch.records.len());
                    finish(state, batch, Ok(offsets));
                    continue;
                }
                Err(e) => e,
            };
            // Behind a batch that is being retried: the broker saw a gap, not a real error.
            let behind_a_retry = error.kafka_error() == Some(ResponseError::OutOfOrderSequenceNumber)
                && q.sequencing.behind_unacked(batch.base_sequence());
            let timed_out = now >= batch.created + Duration::from_millis(config.delivery_timeout_ms);
            let retry = !timed_out && (behind_a_retry || (error.is_retriable() && batch.attempts < config.retries));
            if !retry {
                tracing::debug!(tp = %batch.tp, seq = ?batch.base_sequence(), %error, "batch failed");
                q.sequencing.failed(batch.base_sequence());
                let error = if timed_out && error.is_retriable() {
                    Error::DeliveryTimeout {
                        topic: batch.tp.topic.clone(),
                        partition: batch.tp.partition,
                        timeout_ms: config.delivery_timeout_ms,
                        last: error.to_string(),
                    }
                } else {
                    error
                };
                finish(state, batch, Err(error));
                continue;
            }
            tracing::debug!(tp = %batch.tp, seq = ?batch.base_sequence(), %error, attempt = batch.attempts, "retrying batch");
            if error.needs_metadata_refresh() {
                invalidate.insert(batch.tp.topic.clone());
            }
            if !behind_a_retry {
                batch.attempts += 1;
            }
            batch.retry_after = Some(now + Duration::from_millis(config.retry_backoff_ms));
            batch.last_error = Some(error);
            // Back in sequence order, ahead of batches never sent.
            let seq = batch.base_sequence();
            let at = q
                .ready
                .iter()
                .position(|b| match (b.base_sequence(), seq) {
                    (None, _) => true,
                    (Some(other), Some(mine)) => other > mine,
                    (Some(_), None) => false,
                })
                .unwrap_or(q.ready.len());
            q.ready.insert(at, batch);
        }
    }
    for topic in invalidate {
        inner.cluster.invalidate(&topic);
    }
    inner.wake.notify_one();
    inner.progress.notify_waiters();
}

/// A producer for code without an async runtime: it owns a small one.
pub struct BlockingProducer {
    runtime: tokio::runtime::Runtime,
    producer: Option<Producer>,
}

impl BlockingProducer {
    pub fn new(config: ProducerConfig) -> Result<BlockingProducer> {
        let runtime = crate::blocking_runtime("producer")?;
        let producer = runtime.block_on(Producer::new(config))?;
        Ok(BlockingProducer { runtime, producer: Some(producer) })
    }

    fn producer(&self) -> &Producer {
        self.producer.as_ref().expect("present until close")
    }

    /// Buffers the record; [`DeliveryFuture::wait`] blocks for its result.
    pub fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        self.runtime.block_on(self.producer().send(record))
    }

    pub fn flush(&self) -> Result<()> {
        self.runtime.block_on(self.producer().flush())
    }

    pub fn close(mut self) -> Result<()> {
        let producer = self.producer.take().expect("present until close");
        self.runtime.block_on(producer.close())
    }
}
