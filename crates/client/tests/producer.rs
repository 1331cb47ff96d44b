//! The producer against a scripted fake broker, for what a real single broker never does:
//! NOT_LEADER_OR_FOLLOWER must refresh metadata and resend the very same batch (same producer
//! id, epoch and sequence), a non-retriable error must fail the records with advice, a first
//! batch refused holds the partition's next batches back (the broker has no producer state yet,
//! SEMANTICS P19), and a batch given up bumps the epoch (KIP-360, P18).

mod fake;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use fake::{ranges, read_request, respond, Seen};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, BrokerId, InitProducerIdResponse, MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse,
    ProducerId, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use sluice_client::{Error, Producer, ProducerConfig, ProducerRecord};
use tokio::net::{TcpListener, TcpStream};

/// What the fake broker saw, for the test to check afterwards.
#[derive(Default)]
struct Log {
    metadata_requests: usize,
    /// Record-set bytes of each Produce, in arrival order.
    produced: Vec<Bytes>,
}

/// How long the fake broker takes to refuse a batch.
const REFUSAL_DELAY: std::time::Duration = std::time::Duration::from_millis(50);

/// Answers Produce number `n` (0-based) carrying this record batch with an error code (0: success
/// at offset 100).
type Script = Arc<dyn Fn(usize, &[u8]) -> i16 + Send + Sync>;

async fn serve(mut s: TcpStream, port: u16, log: Arc<Mutex<Log>>, script: Script) {
    while let Some(seen) = read_request(&mut s).await {
        let v = seen.version();
        match seen.key() {
            ApiKey::ApiVersions => {
                let r = ranges(&[
                    (ApiKey::ApiVersions, 0, 3),
                    (ApiKey::Metadata, 1, 12),
                    (ApiKey::Produce, 3, 12),
                    (ApiKey::InitProducerId, 0, 5),
                ]);
                respond(&mut s, &seen, v, &r).await;
            }
            ApiKey::Metadata => {
                log.lock().unwrap().metadata_requests += 1;
                respond(&mut s, &seen, v, &metadata(&seen, port)).await;
            }
            ApiKey::InitProducerId => {
                let r = InitProducerIdResponse::default().with_producer_id(ProducerId(42)).with_producer_epoch(7);
                respond(&mut s, &seen, v, &r).await;
            }
            ApiKey::Produce => {
                let request = ProduceRequest::decode(&mut seen.body.clone(), v).unwrap();
                let records = request.topic_data[0].partition_data[0].records.clone().unwrap();
                let n = {
                    let mut log = log.lock().unwrap();
                    log.produced.push(records.clone());
                    log.produced.len() - 1
                };
                let error_code = script(n, &records);
                if error_code != 0 {
                    // Whatever the client pipelines behind a refused batch is on the wire by now.
                    tokio::time::sleep(REFUSAL_DELAY).await;
                }
                let partition = PartitionProduceResponse::default()
                    .with_index(0)
                    .with_error_code(error_code)
                    .with_base_offset(if error_code == 0 { 100 } else { -1 })
                    .with_log_append_time_ms(-1);
                let r = ProduceResponse::default().with_responses(vec![TopicProduceResponse::default()
                    .with_name(TopicName(StrBytes::from_static_str("t")))
                    .with_partition_responses(vec![partition])]);
                respond(&mut s, &seen, v, &r).await;
            }
            other => panic!("the fake broker does not serve {other:?}"),
        }
    }
}

/// One broker (node 1, this fake), and topic `t` with one partition it leads.
fn metadata(seen: &Seen, port: u16) -> MetadataResponse {
    let request = MetadataRequest::decode(&mut seen.body.clone(), seen.version()).unwrap();
    let asked_for_t =
        request.topics.is_none_or(|ts| ts.iter().any(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == "t")));
    let mut r = MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(1))
            .with_host(StrBytes::from_static_str("127.0.0.1"))
            .with_port(i32::from(port))])
        .with_controller_id(BrokerId(1));
    if asked_for_t {
        r = r.with_topics(vec![MetadataResponseTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str("t"))))
            .with_partitions(vec![MetadataResponsePartition::default()
                .with_partition_index(0)
                .with_leader_id(BrokerId(1))
                .with_replica_nodes(vec![BrokerId(1)])
                .with_isr_nodes(vec![BrokerId(1)])])]);
    }
    r
}

async fn start(script: impl Fn(usize, &[u8]) -> i16 + Send + Sync + 'static) -> (String, Arc<Mutex<Log>>) {
    let script: Script = Arc::new(script);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let log = Arc::new(Mutex::new(Log::default()));
    let l = log.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(serve(s, port, l.clone(), script.clone()));
        }
    });
    (format!("127.0.0.1:{port}"), log)
}

fn config(addr: &str) -> ProducerConfig {
    let mut c = ProducerConfig::new(addr);
    c.retry_backoff_ms = 10;
    c.delivery_timeout_ms = 20_000;
    c
}

/// Producer id, epoch and base sequence from a v2 batch header.
fn producer_fields(batch: &[u8]) -> (i64, i16, i32) {
    let id = i64::from_be_bytes(batch[43..51].try_into().unwrap());
    let epoch = i16::from_be_bytes(batch[51..53].try_into().unwrap());
    let sequence = i32::from_be_bytes(batch[53..57].try_into().unwrap());
    (id, epoch, sequence)
}

#[tokio::test]
async fn not_leader_refreshes_metadata_and_resends_the_same_batch() {
    let (addr, log) = start(|n, _| if n == 0 { 6 } else { 0 }).await; // 6: NOT_LEADER_OR_FOLLOWER
    let producer = Producer::new(config(&addr)).await.unwrap();
    assert_eq!(producer.producer_id(), Some((42, 7)));
    let metadata_before = log.lock().unwrap().metadata_requests;
    let delivery = producer.send(ProducerRecord::new("t").key("k").value("v")).await.unwrap();
    let metadata_after_send = log.lock().unwrap().metadata_requests;
    let meta = delivery.await.unwrap();
    assert_eq!((meta.partition, meta.offset), (0, 100));
    producer.close().await.unwrap();

    let log = log.lock().unwrap();
    assert_eq!(log.produced.len(), 2, "sent, refused, sent again");
    assert_eq!(log.produced[0], log.produced[1], "the retry resends the very same bytes");
    assert_eq!(producer_fields(&log.produced[0]), (42, 7, 0));
    assert!(metadata_after_send > metadata_before, "send looked the topic up");
    assert!(log.metadata_requests > metadata_after_send, "NOT_LEADER_OR_FOLLOWER refreshed the metadata");
}

#[tokio::test]
async fn sequences_advance_per_batch() {
    let (addr, log) = start(|_, _| 0).await;
    let mut c = config(&addr);
    c.linger_ms = 0;
    let producer = Producer::new(c).await.unwrap();
    for i in 0..3 {
        let d = producer.send(ProducerRecord::new("t").value(format!("v{i}"))).await.unwrap();
        d.await.unwrap();
    }
    let batch = (0..4).map(|i| ProducerRecord::new("t").value(format!("w{i}")));
    let mut deliveries = Vec::new();
    for r in batch {
        deliveries.push(producer.send(r).await.unwrap());
    }
    producer.flush().await.unwrap();
    for d in deliveries {
        d.await.unwrap();
    }
    producer.close().await.unwrap();
    let log = log.lock().unwrap();
    let sequences: Vec<i32> = log.produced.iter().map(|b| producer_fields(b).2).collect();
    assert_eq!(&sequences[..3], &[0, 1, 2], "one record per batch at first");
    // The next four records may have been split into several batches; each starts where the
    // previous one ended.
    let mut expected = 3;
    for b in &log.produced[3..] {
        assert_eq!(producer_fields(b).2, expected);
        expected += i32::from_be_bytes(b[57..61].try_into().unwrap());
    }
    assert_eq!(expected, 7);
}

#[tokio::test]
async fn a_non_retriable_error_fails_the_records_once_with_advice() {
    let (addr, log) = start(|_, _| 10).await; // 10: MESSAGE_TOO_LARGE
    let producer = Producer::new(config(&addr)).await.unwrap();
    let e = producer.send(ProducerRecord::new("t").value("v")).await.unwrap().await.unwrap_err();
    assert_eq!(e.kafka_error(), Some(sluice_client::error::ResponseError::MessageTooLarge), "{e}");
    assert!(e.to_string().contains("Produce to t-0") && e.to_string().contains("batch_size"), "{e}");
    assert!(matches!(e, Error::Kafka { .. }));
    producer.close().await.unwrap();
    assert_eq!(log.lock().unwrap().produced.len(), 1, "not retried");
}

/// Sends `n` one-record batches at once (batch_size 1) and waits for every result.
async fn send_batches(
    producer: &Producer,
    n: usize,
) -> Vec<sluice_client::error::Result<sluice_client::RecordMetadata>> {
    let mut deliveries = Vec::new();
    for i in 0..n {
        deliveries.push(producer.send(ProducerRecord::new("t").value(format!("v{i}"))).await.unwrap());
    }
    let mut results = Vec::new();
    for d in deliveries {
        results.push(d.await);
    }
    results
}

/// P19: a broker without state for the producer accepts any sequence, so when the first batch is
/// refused (NOT_LEADER_OR_FOLLOWER, as Kafka answers on a topic it is still loading), no later
/// batch of the partition may have gone out before it: the first batch appended is sequence 0,
/// and every later one follows the previous.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_batch_refused_holds_back_the_partitions_next_batches() {
    let (addr, log) = start(|n, _| if n == 0 { 6 } else { 0 }).await;
    let mut c = config(&addr);
    c.batch_size = 1;
    c.linger_ms = 0;
    let producer = Producer::new(c).await.unwrap();
    let results = send_batches(&producer, 8).await;
    producer.close().await.unwrap();
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");

    let log = log.lock().unwrap();
    let sequences: Vec<i32> = log.produced.iter().map(|b| producer_fields(b).2).collect();
    assert_eq!(sequences, vec![0, 0, 1, 2, 3, 4, 5, 6, 7], "refused, resent, then in order");
}

/// KIP-360 (P18): a batch that was sent and then given up (delivery timeout) leaves a gap in its
/// partition's sequence; the producer bumps its epoch and the next batch starts at sequence 0
/// under the new epoch, instead of failing OUT_OF_ORDER_SEQUENCE_NUMBER forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_given_up_bumps_the_epoch_and_the_next_batch_starts_at_zero() {
    // 19: NOT_ENOUGH_REPLICAS (retriable) for every batch of epoch 7; epoch 8 is appended.
    let (addr, log) = start(|_, batch| if producer_fields(batch).1 == 7 { 19 } else { 0 }).await;
    let mut c = config(&addr);
    c.delivery_timeout_ms = 300;
    c.linger_ms = 0;
    let producer = Producer::new(c).await.unwrap();
    let e = producer.send(ProducerRecord::new("t").value("lost")).await.unwrap().await.unwrap_err();
    assert!(matches!(e, Error::DeliveryTimeout { .. }), "{e}");
    assert_eq!(producer.producer_id(), Some((42, 7)), "bumped when the next batch goes out, not before");

    let meta = producer.send(ProducerRecord::new("t").value("next")).await.unwrap().await.unwrap();
    assert_eq!(meta.offset, 100);
    assert_eq!(producer.producer_id(), Some((42, 8)));
    let more = producer.send(ProducerRecord::new("t").value("after")).await.unwrap().await;
    assert!(more.is_ok(), "{more:?}");
    producer.close().await.unwrap();

    let log = log.lock().unwrap();
    let fields: Vec<(i64, i16, i32)> = log.produced.iter().map(|b| producer_fields(b)).collect();
    let (old, new): (Vec<&(i64, i16, i32)>, Vec<_>) = fields.iter().partition(|f| f.1 == 7);
    assert!(!old.is_empty() && old.iter().all(|f| **f == (42, 7, 0)), "the lost batch, resent as is: {old:?}");
    assert_eq!(new, vec![&(42, 8, 0), &(42, 8, 1)], "after the bump: sequence 0, then 1");
}
