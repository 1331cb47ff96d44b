//! An in-process broker on an ephemeral loopback port and a minimal wire client built on the
//! `kafka-protocol` crate's client-side encoders, so tests speak real Kafka bytes.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use sluice_broker::{Broker, BrokerConfig, Durability};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// The broker binary installs this allocator; tests that feed it hostile frames need it too.
#[global_allocator]
static ALLOC: sluice_protocol::alloc_guard::GuardedAllocator = sluice_protocol::alloc_guard::GuardedAllocator;

pub struct TestBroker {
    pub addr: std::net::SocketAddr,
    pub broker: Arc<Broker>,
    pub dir: Arc<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), sluice_broker::BrokerError>>>,
}

pub fn config(dir: &std::path::Path) -> BrokerConfig {
    BrokerConfig { listen: "127.0.0.1:0".parse().unwrap(), data_dir: dir.to_path_buf(), ..BrokerConfig::default() }
}

impl TestBroker {
    pub async fn start() -> TestBroker {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(f: impl FnOnce(&mut BrokerConfig)) -> TestBroker {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        Self::start_in(dir, f).await
    }

    pub async fn start_in(dir: Arc<tempfile::TempDir>, f: impl FnOnce(&mut BrokerConfig)) -> TestBroker {
        let mut c = config(dir.path());
        f(&mut c);
        Self::serve(Broker::open(c).expect("broker opens"), dir).await
    }

    async fn serve(broker: Arc<Broker>, dir: Arc<tempfile::TempDir>) -> TestBroker {
        let listener = sluice_broker::bind(&broker).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(sluice_broker::serve(broker.clone(), listener, async {
            let _ = rx.await;
        }));
        TestBroker { addr, broker, dir, stop: Some(tx), task: Some(task) }
    }

    /// A broker whose files live in `storage` (e.g. a `MemStorage` that can be made to fail).
    pub async fn start_on(storage: Arc<dyn sluice_log::Storage>) -> TestBroker {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        Self::serve(Broker::open_with(config(dir.path()), storage, None).expect("broker opens"), dir).await
    }

    /// Waits for the server task to end by itself (it does after a storage failure).
    pub async fn finished(mut self) -> Result<(), sluice_broker::BrokerError> {
        tokio::time::timeout(Duration::from_secs(30), self.task.take().unwrap()).await.expect("broker stops").unwrap()
    }

    /// Clean shutdown; returns the data directory for a restart.
    pub async fn stop(mut self) -> Arc<tempfile::TempDir> {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap().unwrap();
        self.dir.clone()
    }

    pub async fn connect(&self) -> Conn {
        Conn { stream: TcpStream::connect(self.addr).await.unwrap(), next: 1 }
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

pub const PAGE_CACHE: fn(&mut BrokerConfig) = |c| c.durability = Durability::PageCache;

pub struct Conn {
    pub stream: TcpStream,
    next: i32,
}

impl Conn {
    /// Writes one request; returns its correlation id.
    pub async fn send<R: Encodable + HeaderVersion>(&mut self, key: ApiKey, version: i16, req: &R) -> i32 {
        let id = self.next;
        self.next += 1;
        let frame = encode_request(key, version, id, req);
        self.stream.write_all(&frame).await.unwrap();
        id
    }

    /// Reads one response frame body (after the length), or None when the broker closed.
    pub async fn read_frame(&mut self) -> Option<Bytes> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).await.ok()?;
        let mut buf = vec![0u8; i32::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut buf).await.ok()?;
        Some(Bytes::from(buf))
    }

    pub async fn recv<R: Decodable + HeaderVersion>(&mut self, key: ApiKey, version: i16) -> (i32, R) {
        let mut frame = tokio::time::timeout(Duration::from_secs(30), self.read_frame())
            .await
            .expect("response in time")
            .expect("connection open");
        let codec_version = sluice_protocol::codec_version(key, version);
        let header = ResponseHeader::decode(&mut frame, key.response_header_version(codec_version)).unwrap();
        (header.correlation_id, R::decode(&mut frame, codec_version).unwrap())
    }

    pub async fn call<Req: Encodable + HeaderVersion, Resp: Decodable + HeaderVersion>(
        &mut self,
        key: ApiKey,
        version: i16,
        req: &Req,
    ) -> Resp {
        let id = self.send(key, version, req).await;
        let (got, resp) = self.recv(key, version).await;
        assert_eq!(got, id, "responses come back in request order");
        resp
    }

    /// True when the broker closed the connection (read returns EOF or reset).
    pub async fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut b)).await, Ok(Ok(0)) | Ok(Err(_)))
    }
}

pub fn encode_request<R: Encodable + HeaderVersion>(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    req: &R,
) -> BytesMut {
    let mut body = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("wire-test")))
        .encode(&mut body, R::header_version(sluice_protocol::codec_version(key, version)))
        .unwrap();
    // Versions newer than the codec with an older version's layout (ListOffsets v11).
    req.encode(&mut body, sluice_protocol::codec_version(key, version)).unwrap();
    let mut frame = BytesMut::with_capacity(body.len() + 4);
    frame.put_i32(body.len() as i32);
    frame.put(body);
    frame
}

pub fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

/// One uncompressed v2 batch of `values`, with producer id/epoch/base sequence.
pub fn batch_with(values: &[&[u8]], producer_id: i64, epoch: i16, base_sequence: i32, timestamp: i64) -> Bytes {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // DEPENDENCIES.md trap 4: sequence = base + offset delta keeps one batch.
            sequence: base_sequence.wrapping_add(i as i32),
            timestamp,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::copy_from_slice(v)),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &RecordEncodeOptions { version: 2, compression: Compression::None },
    )
    .unwrap();
    buf.freeze()
}

/// Milliseconds since the epoch: batches carry current timestamps, or retention (7 days by
/// default) would rightly delete them.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

pub fn batch(values: &[&[u8]]) -> Bytes {
    batch_with(values, -1, -1, -1, now_ms())
}

pub fn produce_request(topic: &str, partition: i32, acks: i16, records: Bytes) -> ProduceRequest {
    ProduceRequest::default().with_acks(acks).with_timeout_ms(30_000).with_topic_data(vec![
        produce_request::TopicProduceData::default().with_name(name(topic)).with_partition_data(vec![
            produce_request::PartitionProduceData::default().with_index(partition).with_records(Some(records)),
        ]),
    ])
}

pub async fn produce(
    conn: &mut Conn,
    topic: &str,
    partition: i32,
    records: Bytes,
) -> produce_response::PartitionProduceResponse {
    let r: ProduceResponse = conn.call(ApiKey::Produce, 9, &produce_request(topic, partition, -1, records)).await;
    r.responses[0].partition_responses[0].clone()
}

pub fn fetch_request(topic: &str, partition: i32, offset: i64, max_wait_ms: i32, max_bytes: i32) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(max_bytes)
        .with_topics(vec![fetch_request::FetchTopic::default().with_topic(name(topic)).with_partitions(vec![
            fetch_request::FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(max_bytes),
        ])])
}

pub async fn fetch(
    conn: &mut Conn,
    topic: &str,
    partition: i32,
    offset: i64,
    max_wait_ms: i32,
    max_bytes: i32,
) -> fetch_response::PartitionData {
    let r: FetchResponse =
        conn.call(ApiKey::Fetch, 12, &fetch_request(topic, partition, offset, max_wait_ms, max_bytes)).await;
    r.responses[0].partitions[0].clone()
}

/// (base offset, record count) of each whole batch in fetched bytes, ignoring a truncated tail.
pub fn batches_in(mut bytes: Bytes) -> Vec<(i64, i32)> {
    let mut out = Vec::new();
    while bytes.len() >= 61 {
        let base = (&bytes[0..8]).get_i64();
        let len = (&bytes[8..12]).get_i32() as usize;
        if bytes.len() < 12 + len {
            break;
        }
        let count = (&bytes[57..61]).get_i32();
        out.push((base, count));
        bytes.advance(12 + len);
    }
    out
}

pub async fn create_topic(
    conn: &mut Conn,
    topic: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> create_topics_response::CreatableTopicResult {
    let req = CreateTopicsRequest::default().with_timeout_ms(5000).with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(name(topic))
            .with_num_partitions(partitions)
            .with_replication_factor(1)
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        create_topics_request::CreatableTopicConfig::default()
                            .with_name(StrBytes::from_string(k.to_string()))
                            .with_value(Some(StrBytes::from_string(v.to_string())))
                    })
                    .collect(),
            ),
    ]);
    let r: CreateTopicsResponse = conn.call(ApiKey::CreateTopics, 7, &req).await;
    r.topics[0].clone()
}
