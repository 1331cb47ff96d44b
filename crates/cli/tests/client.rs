//! The Rust client library (`sluice-client`) against a real `sluice` process: records it
//! produces come back byte-exact through the broker's Fetch (read with librdkafka), compression
//! round-trips, idempotent retries do not duplicate, admin calls, and the `sluice topic` /
//! `sluice produce` commands.

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use common::interposer::{Interposer, OnRequest, OnResponse};
use common::{consume_all, unique_topic, Broker, Rec};
use kafka_protocol::messages::{metadata_request::MetadataRequestTopic, ApiKey, MetadataRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use sluice_client::admin::ListedOffset;
use sluice_client::connection::{Connection, ConnectionConfig};
use sluice_client::error::ResponseError;
use sluice_client::partitioner::partition_for_key;
use sluice_client::{
    Acks, Admin, BlockingProducer, Bytes, ClientConfig, Compression, Error, NewTopic, OffsetSpec, Producer,
    ProducerConfig, ProducerRecord, RecordMetadata, TopicPartition,
};

fn producer_config(bootstrap: &str) -> ProducerConfig {
    let mut c = ProducerConfig::new(bootstrap);
    c.client.connection.request_timeout_ms = 10_000;
    c.delivery_timeout_ms = 30_000;
    c.retry_backoff_ms = 20;
    c
}

async fn admin(broker: &Broker) -> Admin {
    Admin::connect(ClientConfig::new(broker.addr())).await.expect("admin connects")
}

async fn create(broker: &Broker, topic: &str, partitions: i32) {
    admin(broker).await.create_topic(NewTopic::new(topic, partitions, 1)).await.expect("create topic");
}

/// A record with a binary key (not UTF-8), a value, and headers with a repeated key and a null.
fn record(topic: &str, i: usize) -> ProducerRecord {
    let mut r = ProducerRecord::new(topic)
        .value(format!("value-{i}-{}", "x".repeat(i % 37)).into_bytes())
        .header("h", Some(Bytes::from(vec![0xff, i as u8])))
        .header("h", None)
        .header("trace", Some(Bytes::from_static(b"t")));
    if !i.is_multiple_of(3) {
        r = r.key(vec![0xfe, 0x00, (i % 251) as u8, b'k']);
    }
    r
}

/// Asserts that what rdkafka read is exactly what was sent, where the deliveries said.
fn assert_same(sent: &[(ProducerRecord, RecordMetadata)], topic: &str, broker: &Broker, partitions: i32) {
    let mut consumed: Vec<Rec> = Vec::new();
    for p in 0..partitions {
        consumed.extend(consume_all(broker, topic, p));
    }
    assert_eq!(consumed.len(), sent.len(), "every record once, no more");
    for (record, meta) in sent {
        let got = consumed
            .iter()
            .find(|c| c.partition == meta.partition && c.offset == meta.offset)
            .unwrap_or_else(|| panic!("no record at {}-{}@{}", topic, meta.partition, meta.offset));
        assert_eq!(got.key.as_deref(), record.key.as_deref(), "key at {}", meta.offset);
        assert_eq!(got.value.as_deref(), record.value.as_deref(), "value at {}", meta.offset);
        let headers: Vec<(String, Option<Vec<u8>>)> =
            record.headers.iter().map(|(k, v)| (k.clone(), v.as_ref().map(|v| v.to_vec()))).collect();
        assert_eq!(got.headers, headers, "headers at {}", meta.offset);
        assert_eq!(got.timestamp, Some(meta.timestamp), "timestamp at {}", meta.offset);
    }
}

/// Awaits `fut`, failing the test instead of hanging it when the client never finishes.
async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(common::OP_TIMEOUT * 2, fut).await.unwrap_or_else(|_| panic!("{what} did not finish in time"))
}

async fn send_all(producer: &Producer, records: Vec<ProducerRecord>) -> Vec<(ProducerRecord, RecordMetadata)> {
    let mut futures = Vec::new();
    for r in records {
        futures.push((r.clone(), producer.send(r).await.expect("send")));
    }
    let mut out = Vec::new();
    for (r, f) in futures {
        out.push((r, within("delivery", f).await.expect("delivered")));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produced_records_come_back_byte_exact_on_the_murmur2_partition() {
    let broker = Broker::start();
    let topic = unique_topic("client-exact");
    create(&broker, &topic, 3).await;
    let producer = Producer::new(producer_config(broker.addr())).await.expect("producer");
    assert!(producer.producer_id().is_some(), "idempotent by default");
    let sent = send_all(&producer, (0..300).map(|i| record(&topic, i)).collect()).await;
    within("close", producer.close()).await.unwrap();
    for (r, meta) in &sent {
        if let Some(key) = &r.key {
            assert_eq!(meta.partition, partition_for_key(key, 3), "keyed records go where Java puts them");
        }
    }
    // Offsets per partition are dense and in send order.
    for p in 0..3 {
        let offsets: Vec<i64> = sent.iter().filter(|(_, m)| m.partition == p).map(|(_, m)| m.offset).collect();
        assert_eq!(offsets, (0..offsets.len() as i64).collect::<Vec<_>>(), "partition {p}");
    }
    assert_same(&sent, &topic, &broker, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_codec_round_trips() {
    let broker = Broker::start();
    for codec in Compression::ALL {
        let topic = unique_topic(&format!("client-{}", codec.name()));
        create(&broker, &topic, 2).await;
        let mut config = producer_config(broker.addr());
        config.compression = codec;
        config.linger_ms = 50;
        let producer = Producer::new(config).await.unwrap();
        let sent = send_all(&producer, (0..120).map(|i| record(&topic, i)).collect()).await;
        within("close", producer.close()).await.unwrap();
        assert_same(&sent, &topic, &broker, 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_zero_and_one_deliver() {
    let broker = Broker::start();
    let topic = unique_topic("client-acks");
    create(&broker, &topic, 1).await;
    for acks in [Acks::Leader, Acks::None] {
        let mut config = producer_config(broker.addr());
        config.acks = acks;
        let producer = Producer::new(config).await.unwrap();
        assert!(producer.producer_id().is_none(), "idempotence is off unless acks=all");
        let sent =
            send_all(&producer, (0..10).map(|i| ProducerRecord::new(&topic).value(format!("{acks:?}-{i}"))).collect())
                .await;
        within("close", producer.close()).await.unwrap();
        if acks == Acks::None {
            assert!(sent.iter().all(|(_, m)| m.offset == -1), "acks=0 has no offsets");
        }
    }
    // acks=0 gets no answer; the acks=1 records are there, then the acks=0 ones.
    let consumed = common::consume(&broker, &topic, 0, rdkafka::Offset::Beginning, 20);
    let values: Vec<String> = consumed.iter().map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap()).collect();
    let want: Vec<String> = ["Leader", "None"].iter().flat_map(|a| (0..10).map(move |i| format!("{a}-{i}"))).collect();
    assert_eq!(values, want);
}

#[test]
fn idempotence_with_acks_one_is_a_config_error() {
    let mut config = ProducerConfig::new("127.0.0.1:1");
    config.acks = Acks::Leader;
    config.enable_idempotence = Some(true);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let e = rt.block_on(Producer::new(config)).unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e}");
    assert!(e.to_string().contains("acks=all"), "{e}");
}

#[test]
fn blocking_producer_sends_flushes_and_closes() {
    let broker = Broker::start();
    let topic = unique_topic("client-blocking");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(create(&broker, &topic, 1));
    let producer = BlockingProducer::new(producer_config(broker.addr())).unwrap();
    let deliveries: Vec<_> =
        (0..5).map(|i| producer.send(ProducerRecord::new(&topic).value(format!("b{i}"))).unwrap()).collect();
    producer.flush().unwrap();
    let offsets: Vec<i64> = deliveries.into_iter().map(|d| d.wait().unwrap().offset).collect();
    assert_eq!(offsets, vec![0, 1, 2, 3, 4]);
    producer.close().unwrap();
    assert_eq!(consume_all(&broker, &topic, 0).len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_topic_and_partition_fail_at_send_with_advice() {
    let broker = Broker::start_with(&["--auto-create-topics", "false"]);
    let producer = Producer::new(producer_config(broker.addr())).await.unwrap();
    let e = producer.send(ProducerRecord::new("no-such-topic").value("v")).await.unwrap_err();
    assert!(matches!(&e, Error::UnknownTopic { topic } if topic == "no-such-topic"), "{e}");
    assert!(e.to_string().contains("sluice topic create no-such-topic"), "{e}");
    let topic = unique_topic("client-partition");
    create(&broker, &topic, 2).await;
    let e = producer.send(ProducerRecord::new(&topic).partition(5).value("v")).await.unwrap_err();
    assert!(matches!(e, Error::UnknownPartition { partition: 5, partitions: 2, .. }), "{e}");
}

#[tokio::test]
async fn unreachable_broker_says_so() {
    // A port nothing listens on: bind, note it, close.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let e = Connection::connect(&addr, ConnectionConfig::default()).await.unwrap_err();
    assert!(matches!(e, Error::Unreachable { .. }), "{e}");
    let text = e.to_string();
    assert!(text.contains(&addr) && text.contains("connection refused") && text.contains("is it running"), "{text}");
    let e = Admin::connect(ClientConfig::new(addr.clone())).await.unwrap_err();
    assert!(e.to_string().contains("unreachable"), "{e}");
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let broker = Broker::start();
    let conn = Connection::connect(broker.addr(), ConnectionConfig::default()).await.unwrap();
    assert_eq!(conn.version(ApiKey::Metadata).unwrap(), 12, "highest version both sides speak");
    assert_eq!(conn.version(ApiKey::Produce).unwrap(), 12);
    let topics: Vec<String> = (0..20).map(|i| format!("pipelined-{i}")).collect();
    let mut futures = Vec::new();
    for t in &topics {
        let req = MetadataRequest::default()
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(t.clone()))))
            ]))
            .with_allow_auto_topic_creation(false);
        futures.push(conn.enqueue(&req).unwrap());
    }
    for (t, f) in topics.iter().zip(futures) {
        let resp = f.wait().await.unwrap();
        assert_eq!(resp.topics.len(), 1);
        assert_eq!(resp.topics[0].name.as_ref().unwrap().0.as_str(), t, "response {t} in its place");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_creates_lists_describes_grows_deletes_and_lists_offsets() {
    let broker = Broker::start();
    let admin = admin(&broker).await;
    let topic = unique_topic("client-admin");
    let mut new = NewTopic::new(&topic, 2, 1);
    new.configs.push(("retention.ms".into(), "3600000".into()));
    admin.create_topic(new.clone()).await.unwrap();
    let e = admin.create_topic(new).await.unwrap_err();
    assert_eq!(e.kafka_error(), Some(ResponseError::TopicAlreadyExists), "{e}");
    assert!(e.to_string().contains("delete the topic first"), "{e}");
    assert!(admin.list_topics(false).await.unwrap().contains(&topic));

    let described = admin.describe_topics(&[&topic]).await.unwrap();
    assert_eq!(described[0].num_partitions(), 2);
    assert!(described[0].partitions.iter().all(|p| p.leader == 1 && p.replicas == vec![1]));
    let e = admin.describe_topics(&["client-admin-missing"]).await.unwrap_err();
    assert!(matches!(e, Error::UnknownTopic { .. }), "{e}");

    admin.create_partitions(&topic, 4).await.unwrap();
    assert_eq!(admin.describe_topics(&[&topic]).await.unwrap()[0].num_partitions(), 4);

    let producer = Producer::new(producer_config(broker.addr())).await.unwrap();
    let base = 1_700_000_000_000;
    let sent = send_all(
        &producer,
        (0..5).map(|i| ProducerRecord::new(&topic).partition(3).value("v").timestamp(base + i * 1000)).collect(),
    )
    .await;
    within("close", producer.close()).await.unwrap();
    assert_eq!(sent.last().unwrap().1.offset, 4);
    let tp = TopicPartition::new(&topic, 3);
    let at = |spec: OffsetSpec| {
        let admin = admin.clone();
        let tp = tp.clone();
        async move { admin.list_offsets(std::slice::from_ref(&tp), spec).await.unwrap()[&tp] }
    };
    assert_eq!(at(OffsetSpec::Earliest).await.offset, 0);
    assert_eq!(at(OffsetSpec::Latest).await.offset, 5);
    assert_eq!(at(OffsetSpec::Timestamp(base + 2500)).await, ListedOffset { offset: 3, timestamp: base + 3000 });
    assert_eq!(at(OffsetSpec::Timestamp(base + 99_000)).await.offset, -1);

    let results = admin.delete_topics(&[&topic, "client-admin-missing"]).await.unwrap();
    assert_eq!(results[0].1, Ok(()));
    assert!(matches!(results[1].1, Err(Error::UnknownTopic { .. })), "{:?}", results[1]);
    assert!(!admin.list_topics(false).await.unwrap().contains(&topic));
}

/// A TCP proxy between client and broker that swallows the response to the first Produce
/// request it sees and drops that connection: the broker has appended the batch, the client
/// never learns it and must retry.
struct LosingProxy {
    addr: String,
    dropped: Arc<AtomicUsize>,
}

impl LosingProxy {
    fn start(listener: tokio::net::TcpListener, broker_addr: String) -> LosingProxy {
        let armed = Arc::new(AtomicBool::new(true));
        let dropped = Arc::new(AtomicUsize::new(0));
        let d = dropped.clone();
        let on_response = move |request_key: i16, _: &[u8]| {
            if request_key == 0 && armed.swap(false, Ordering::SeqCst) {
                d.fetch_add(1, Ordering::SeqCst);
                OnResponse::DropConnection
            } else {
                OnResponse::Forward
            }
        };
        let proxy =
            Interposer::start(listener, broker_addr, Arc::new(|_: &[u8]| OnRequest::Forward), Arc::new(on_response));
        LosingProxy { addr: proxy.addr, dropped }
    }
}

/// Produces 50 records (5 per batch, several batches in flight) through a proxy that loses
/// the first Produce response; returns the deliveries and the consumed values.
async fn produce_through_losing_proxy(idempotent: bool) -> (Vec<RecordMetadata>, Vec<String>, usize) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_addr = listener.local_addr().unwrap().to_string();
    // The broker advertises the proxy, so every connection the client opens goes through it.
    let broker = Broker::start_with(&["--advertise", &proxy_addr]);
    let proxy = LosingProxy::start(listener, broker.addr().to_string());
    let topic = unique_topic("client-retry");
    let admin = Admin::connect(ClientConfig::new(&proxy.addr)).await.unwrap();
    admin.create_topic(NewTopic::new(&topic, 1, 1)).await.unwrap();
    let mut config = producer_config(&proxy.addr);
    config.enable_idempotence = Some(idempotent);
    config.batch_size = 5 * 30;
    config.linger_ms = 0;
    let producer = Producer::new(config).await.unwrap();
    let mut futures = Vec::new();
    for i in 0..50 {
        futures.push(producer.send(ProducerRecord::new(&topic).value(format!("r{i:02}"))).await.unwrap());
    }
    let mut metas = Vec::new();
    for f in futures {
        metas.push(within("delivery", f).await.expect("delivered despite the lost response"));
    }
    within("close", producer.close()).await.unwrap();
    let values =
        consume_all(&broker, &topic, 0).into_iter().map(|r| String::from_utf8(r.value.unwrap()).unwrap()).collect();
    (metas, values, proxy.dropped.load(Ordering::SeqCst))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_retries_after_a_lost_response_do_not_duplicate() {
    let (metas, values, dropped) = produce_through_losing_proxy(true).await;
    assert_eq!(dropped, 1, "the proxy lost one Produce response");
    let want: Vec<String> = (0..50).map(|i| format!("r{i:02}")).collect();
    assert_eq!(values, want, "each record exactly once, in order");
    let offsets: Vec<i64> = metas.iter().map(|m| m.offset).collect();
    assert_eq!(offsets, (0..50).collect::<Vec<i64>>(), "the retried batch got its original offsets");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_idempotence_the_same_loss_duplicates() {
    // The control for the test above: it shows the proxy really causes a resend.
    let (_, values, dropped) = produce_through_losing_proxy(false).await;
    assert_eq!(dropped, 1);
    assert!(values.len() > 50, "a resent batch is appended twice without idempotence ({} records)", values.len());
    let mut unique = values.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 50, "no record lost");
}

// ---- the `sluice` command line ----

fn sluice(args: &[&str], bootstrap: &str, stdin: &str) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SLUICE_") {
            cmd.env_remove(key);
        }
    }
    // The bootstrap address comes from the environment, as SLUICE_BOOTSTRAP allows.
    cmd.env("SLUICE_BOOTSTRAP", bootstrap);
    let mut child = cmd.spawn().expect("run sluice");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn cli_topic_create_list_describe_delete() {
    let broker = Broker::start();
    let b = broker.addr();
    let topic = unique_topic("cli-topic");
    let out = sluice(&["topic", "create", &topic, "--partitions", "3", "--config", "retention.ms=60000"], b, "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(common::partition_count(&broker, &topic), 3);

    let out = sluice(&["topic", "create", &topic], b, "");
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("already exists"), "{}", text(&out.stderr));
    assert!(sluice(&["topic", "create", &topic, "--if-not-exists"], b, "").status.success());

    let out = sluice(&["topic", "list"], b, "");
    assert!(out.status.success());
    assert!(text(&out.stdout).lines().any(|l| l == topic), "{}", text(&out.stdout));

    let out = sluice(&["topic", "describe", &topic], b, "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains(&format!("topic {topic}")) && stdout.contains("partitions 3"), "{stdout}");
    assert_eq!(stdout.lines().filter(|l| l.trim_start().starts_with(char::is_numeric)).count(), 3, "{stdout}");

    let out = sluice(&["topic", "describe", "cli-no-such-topic"], b, "");
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("unknown topic cli-no-such-topic"), "{}", text(&out.stderr));

    let out = sluice(&["topic", "delete", &topic], b, "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!common::list_topics(&broker).contains(&topic));
    assert!(!sluice(&["topic", "delete", &topic], b, "").status.success());
    assert!(sluice(&["topic", "delete", &topic, "--if-exists"], b, "").status.success());
}

#[test]
fn cli_produce_with_key_separator_lands_where_java_would() {
    let broker = Broker::start();
    let topic = unique_topic("cli-produce");
    assert!(sluice(&["topic", "create", &topic, "-p", "4"], broker.addr(), "").status.success());
    let lines: Vec<String> = (0..40).map(|i| format!("key{i}:value {i}:with colon")).collect();
    let out = sluice(
        &["produce", &topic, "--key-separator", ":", "--acks", "all", "--compression", "lz4"],
        broker.addr(),
        &(lines.join("\n") + "\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut total = 0;
    for p in 0..4 {
        for rec in consume_all(&broker, &topic, p) {
            let key = rec.key.clone().unwrap();
            assert_eq!(partition_for_key(&key, 4), p, "key {:?}", text(&key));
            let i: usize = text(&key).strip_prefix("key").unwrap().parse().unwrap();
            assert_eq!(text(&rec.value.unwrap()), format!("value {i}:with colon"));
            total += 1;
        }
    }
    assert_eq!(total, 40);
}

#[test]
fn cli_produce_plain_lines_in_order_with_every_acks() {
    let broker = Broker::start();
    let topic = unique_topic("cli-plain");
    assert!(sluice(&["topic", "create", &topic], broker.addr(), "").status.success());
    for (acks, compression) in [("1", "gzip"), ("0", "snappy"), ("all", "zstd")] {
        let input: String = (0..5).map(|i| format!("{acks}-{i}\n")).collect();
        let out = sluice(&["produce", &topic, "--acks", acks, "--compression", compression], broker.addr(), &input);
        assert!(out.status.success(), "acks={acks}: {}", text(&out.stderr));
    }
    let got: Vec<String> = consume_all(&broker, &topic, 0).into_iter().map(|r| text(&r.value.unwrap())).collect();
    let want: Vec<String> = ["1", "0", "all"].iter().flat_map(|a| (0..5).map(move |i| format!("{a}-{i}"))).collect();
    assert_eq!(got, want);
}

#[test]
fn cli_errors_say_what_to_do() {
    let broker = Broker::start_with(&["--auto-create-topics", "false"]);
    let out = sluice(&["produce", "cli-missing"], broker.addr(), "v\n");
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("unknown topic cli-missing") && stderr.contains("sluice topic create cli-missing"),
        "{stderr}"
    );

    let topic = unique_topic("cli-sep");
    assert!(sluice(&["topic", "create", &topic], broker.addr(), "").status.success());
    let out = sluice(&["produce", &topic, "--key-separator", "="], broker.addr(), "k=v\nno separator\n");
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("line 2 has no key separator"), "{}", text(&out.stderr));

    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = sluice(&["topic", "list"], &format!("127.0.0.1:{port}"), "");
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("unreachable") && stderr.contains("is it running"), "{stderr}");

    let out = sluice(&["produce", &topic, "--acks", "2"], broker.addr(), "");
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("acks must be 0, 1 or all"), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_rides_out_a_broker_crash_without_loss_or_duplicates() {
    let mut broker = Broker::start();
    let topic = unique_topic("client-crash");
    create(&broker, &topic, 2).await;
    let mut config = producer_config(broker.addr());
    config.delivery_timeout_ms = 60_000;
    config.batch_size = 200;
    let producer = Producer::new(config).await.unwrap();
    let value = |i: usize| format!("c{i:03}");
    let mut acked = Vec::new();
    for i in 0..100 {
        acked.push(producer.send(ProducerRecord::new(&topic).value(value(i))).await.unwrap());
    }
    let mut metas = Vec::new();
    for f in acked {
        metas.push(within("delivery", f).await.unwrap());
    }
    // Records in flight or buffered when the broker is killed, and records sent while it is
    // down, are all delivered once it is back on the same port.
    let mut pending = Vec::new();
    for i in 100..200 {
        pending.push(producer.send(ProducerRecord::new(&topic).value(value(i))).await.unwrap());
    }
    broker.restart_same_port();
    for i in 200..300 {
        pending.push(producer.send(ProducerRecord::new(&topic).value(value(i))).await.unwrap());
    }
    for f in pending {
        metas.push(within("delivery", f).await.expect("delivered after the restart"));
    }
    within("close", producer.close()).await.unwrap();
    let mut consumed = Vec::new();
    for p in 0..2 {
        for rec in consume_all(&broker, &topic, p) {
            let m = metas.iter().find(|m| m.partition == p && m.offset == rec.offset);
            assert!(m.is_some(), "record at {p}@{} matches a delivery", rec.offset);
            consumed.push(text(&rec.value.unwrap()));
        }
    }
    consumed.sort();
    assert_eq!(consumed, (0..300).map(value).collect::<Vec<_>>(), "each record exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_for_a_dead_broker_fail_after_the_delivery_timeout() {
    let mut broker = Broker::start();
    let topic = unique_topic("client-dead");
    create(&broker, &topic, 1).await;
    let mut config = producer_config(broker.addr());
    config.delivery_timeout_ms = 1_000;
    config.client.connection.connect_timeout_ms = 200;
    let producer = Producer::new(config).await.unwrap();
    within("delivery", producer.send(ProducerRecord::new(&topic).value("before")).await.unwrap()).await.unwrap();
    broker.kill9();
    let delivery = producer.send(ProducerRecord::new(&topic).value("after")).await.unwrap();
    within("flush", producer.flush()).await.unwrap();
    let e = within("delivery", delivery).await.unwrap_err();
    assert!(matches!(e, Error::DeliveryTimeout { timeout_ms: 1_000, .. }), "{e}");
    let text = e.to_string();
    assert!(text.contains(&format!("{topic}-0")) && text.contains("not delivered within 1000 ms"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_records_stick_per_batch_and_round_robin_is_an_option() {
    let broker = Broker::start();
    let count =
        |sent: &[(ProducerRecord, RecordMetadata)], p: i32| sent.iter().filter(|(_, m)| m.partition == p).count();
    let keyless =
        |topic: &str| (0..300).map(|i| ProducerRecord::new(topic).value(format!("v{i:04}"))).collect::<Vec<_>>();

    // A large batch: every keyless record stays on one sticky partition.
    let topic = unique_topic("client-sticky-one");
    create(&broker, &topic, 3).await;
    let mut config = producer_config(broker.addr());
    config.batch_size = 1 << 20;
    let producer = Producer::new(config).await.unwrap();
    let sent = send_all(&producer, keyless(&topic)).await;
    within("close", producer.close()).await.unwrap();
    assert_eq!((0..3).filter(|p| count(&sent, *p) > 0).count(), 1, "one sticky partition");

    // A small batch: the sticky partition moves after each batch's worth of bytes, in runs,
    // and over 300 records every partition gets some.
    let topic = unique_topic("client-sticky-many");
    create(&broker, &topic, 3).await;
    let mut config = producer_config(broker.addr());
    config.batch_size = 100;
    let producer = Producer::new(config).await.unwrap();
    let sent = send_all(&producer, keyless(&topic)).await;
    within("close", producer.close()).await.unwrap();
    assert!((0..3).all(|p| count(&sent, p) > 0), "{:?}", (0..3).map(|p| count(&sent, p)).collect::<Vec<_>>());
    let runs = sent.windows(2).filter(|w| w[0].1.partition != w[1].1.partition).count();
    assert!(runs < 150, "records come in sticky runs, not one by one ({runs} switches)");
    assert_same(&sent, &topic, &broker, 3);

    // Round-robin, as a configured partitioner: keyed or not, one partition after another.
    let topic = unique_topic("client-rr");
    create(&broker, &topic, 3).await;
    let mut config = producer_config(broker.addr());
    config.partitioner = Some(Arc::new(sluice_client::partitioner::RoundRobinPartitioner::new()));
    let producer = Producer::new(config).await.unwrap();
    let records = (0..9).map(|i| ProducerRecord::new(&topic).key(format!("same-key-{}", i % 2)).value("v")).collect();
    let sent = send_all(&producer, records).await;
    within("close", producer.close()).await.unwrap();
    let partitions: Vec<i32> = sent.iter().map(|(_, m)| m.partition).collect();
    assert_eq!(partitions, vec![0, 1, 2, 0, 1, 2, 0, 1, 2]);
}
