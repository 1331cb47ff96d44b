//! Hand-made frames over a plain TcpStream: ApiVersions, Produce edge cases (acks=0, corrupt
//! batches) and malformed input. Whatever arrives, the broker answers with an error or closes
//! that connection, and keeps serving everyone else.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::Offset;

/// How long a connection may stay silent before the test calls it hung.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// The `V1` batch of `shared/vectors/record-batches.txt`: one record key="k" value="v",
/// ts=1700000000000, valid CRC32C.
const BATCH_V1: [u8; 70] = [
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3a, 0xff, 0xff, 0xff, 0xff, 0x02, 0xe9, 0x9b,
    0x8d, 0xd8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, 0x00, 0x00, 0x01,
    0x8b, 0xcf, 0xe5, 0x68, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x00, 0x00, 0x00, 0x01, 0x10, 0x00, 0x00, 0x00, 0x02, 0x6b, 0x02, 0x76, 0x00,
];

const API_PRODUCE: i16 = 0;
const API_METADATA: i16 = 3;
const API_VERSIONS: i16 = 18;

/// API keys the broker serves (see the command-line contract).
const SERVED_APIS: [(i16, &str); 13] = [
    (0, "Produce"),
    (1, "Fetch"),
    (2, "ListOffsets"),
    (3, "Metadata"),
    (18, "ApiVersions"),
    (19, "CreateTopics"),
    (20, "DeleteTopics"),
    (22, "InitProducerId"),
    (32, "DescribeConfigs"),
    (33, "AlterConfigs"),
    (37, "CreatePartitions"),
    (44, "IncrementalAlterConfigs"),
    (60, "DescribeCluster"),
];

fn connect(broker: &Broker) -> TcpStream {
    let s = TcpStream::connect(broker.addr()).expect("connect");
    s.set_read_timeout(Some(ANSWER_TIMEOUT)).expect("timeout");
    s.set_nodelay(true).expect("nodelay");
    s
}

/// A request header v1 (non-flexible: api key, version, correlation id, client id) + body,
/// framed with its length.
fn frame(api_key: i16, version: i16, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let client_id = b"sluice-e2e";
    let mut msg = Vec::new();
    msg.extend_from_slice(&api_key.to_be_bytes());
    msg.extend_from_slice(&version.to_be_bytes());
    msg.extend_from_slice(&correlation_id.to_be_bytes());
    msg.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    msg.extend_from_slice(client_id);
    msg.extend_from_slice(body);
    let mut out = (msg.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&msg);
    out
}

/// Produce v3 body with one topic and one partition.
fn produce_body(acks: i16, topic: &str, partition: i32, records: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&(-1i16).to_be_bytes()); // transactional_id: null
    b.extend_from_slice(&acks.to_be_bytes());
    b.extend_from_slice(&10_000i32.to_be_bytes()); // timeout_ms
    b.extend_from_slice(&1i32.to_be_bytes()); // topics
    b.extend_from_slice(&(topic.len() as i16).to_be_bytes());
    b.extend_from_slice(topic.as_bytes());
    b.extend_from_slice(&1i32.to_be_bytes()); // partitions
    b.extend_from_slice(&partition.to_be_bytes());
    b.extend_from_slice(&(records.len() as i32).to_be_bytes());
    b.extend_from_slice(records);
    b
}

/// Reads one response frame; returns (correlation id, rest of the frame).
fn read_frame(s: &mut TcpStream) -> std::io::Result<(i32, Vec<u8>)> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let len = i32::from_be_bytes(len);
    assert!((4..=64 << 20).contains(&len), "response frame length {len} out of range");
    let mut buf = vec![0u8; len as usize];
    s.read_exact(&mut buf)?;
    let corr = i32::from_be_bytes(buf[0..4].try_into().unwrap());
    Ok((corr, buf[4..].to_vec()))
}

/// A cursor over a response body.
struct Body<'a>(&'a [u8]);

impl Body<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        assert!(self.0.len() >= N, "response body too short");
        let (head, rest) = self.0.split_at(N);
        self.0 = rest;
        head.try_into().unwrap()
    }
    fn i16(&mut self) -> i16 {
        i16::from_be_bytes(self.take())
    }
    fn i32(&mut self) -> i32 {
        i32::from_be_bytes(self.take())
    }
    fn i64(&mut self) -> i64 {
        i64::from_be_bytes(self.take())
    }
    fn string(&mut self) -> String {
        let len = self.i16();
        assert!(len >= 0, "null string");
        let mut s = vec![0u8; len as usize];
        for b in s.iter_mut() {
            *b = self.take::<1>()[0];
        }
        String::from_utf8(s).expect("utf-8")
    }
}

/// ApiVersions v0 response body: (error code, [(api key, min, max)]).
fn parse_api_versions(body: &[u8]) -> (i16, Vec<(i16, i16, i16)>) {
    let mut b = Body(body);
    let error = b.i16();
    let n = b.i32();
    assert!((0..1000).contains(&n), "api_keys count {n}");
    let keys = (0..n).map(|_| (b.i16(), b.i16(), b.i16())).collect();
    (error, keys)
}

/// Sends ApiVersions v0 and checks the answer: the broker is alive on this connection.
fn assert_api_versions_answered(s: &mut TcpStream, correlation_id: i32) {
    s.write_all(&frame(API_VERSIONS, 0, correlation_id, &[])).expect("send ApiVersions");
    let (corr, body) = read_frame(s).expect("ApiVersions response");
    assert_eq!(corr, correlation_id);
    let (error, keys) = parse_api_versions(&body);
    assert_eq!(error, 0, "ApiVersions v0 error code");
    assert!(keys.iter().any(|k| k.0 == API_PRODUCE), "Produce listed");
}

/// The broker process is alive and serves both a raw request and a real client.
fn assert_still_serving(broker: &mut Broker, what: &str) {
    assert!(broker.is_running(), "broker died after {what}");
    let mut s = connect(broker);
    assert_api_versions_answered(&mut s, 7);
    let consumer: BaseConsumer = consumer_config(broker).create().expect("consumer");
    consumer.fetch_metadata(None, OP_TIMEOUT).unwrap_or_else(|e| panic!("Metadata after {what}: {e}"));
}

#[derive(Debug, PartialEq)]
enum Outcome {
    /// The broker closed the connection (after `answers` complete response frames).
    Closed { answers: Vec<i32> },
    /// The broker answered (whether it then closes the connection is not awaited).
    Answered { answers: Vec<i32> },
    /// Neither an answer nor a close within ANSWER_TIMEOUT.
    Hung,
}

/// Complete response frames at the start of `buf`, as their correlation ids.
fn complete_frames(buf: &[u8]) -> Vec<i32> {
    let mut answers = Vec::new();
    let mut rest = buf;
    while rest.len() >= 8 {
        let len = i32::from_be_bytes(rest[0..4].try_into().unwrap());
        assert!(len >= 4, "answer frame length {len}");
        if rest.len() < 4 + len as usize {
            break;
        }
        answers.push(i32::from_be_bytes(rest[4..8].try_into().unwrap()));
        rest = &rest[4 + len as usize..];
    }
    answers
}

/// Writes `bytes` (ignoring write errors: the broker may close early), optionally half-closes,
/// then reads until the broker answers, closes, or stays silent for ANSWER_TIMEOUT.
fn send_and_observe(broker: &Broker, bytes: &[u8], half_close: bool) -> Outcome {
    let mut s = connect(broker);
    let _ = s.write_all(bytes);
    if half_close {
        let _ = s.shutdown(Shutdown::Write);
    }
    let deadline = Instant::now() + ANSWER_TIMEOUT;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Outcome::Hung;
        }
        s.set_read_timeout(Some(left)).expect("timeout");
        match s.read(&mut chunk) {
            Ok(0) => return Outcome::Closed { answers: complete_frames(&buf) },
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                let answers = complete_frames(&buf);
                if !answers.is_empty() {
                    return Outcome::Answered { answers };
                }
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                return Outcome::Closed { answers: complete_frames(&buf) }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return Outcome::Hung,
            Err(e) => panic!("read: {e}"),
        }
    }
}

#[test]
fn api_versions_lists_every_served_api() {
    let broker = Broker::start();
    let mut s = connect(&broker);
    s.write_all(&frame(API_VERSIONS, 0, 41, &[])).expect("send");
    let (corr, body) = read_frame(&mut s).expect("response");
    assert_eq!(corr, 41);
    let (error, keys) = parse_api_versions(&body);
    assert_eq!(error, 0);
    for (key, name) in SERVED_APIS {
        let (_, min, max) = keys
            .iter()
            .copied()
            .find(|k| k.0 == key)
            .unwrap_or_else(|| panic!("{name} ({key}) missing from ApiVersions"));
        assert!(0 <= min && min <= max, "{name}: versions {min}..={max}");
    }
    // Kafka 4.x floors (KIP-896) and the versions librdkafka 2.x and the Java client need.
    for (key, name, max_at_least) in [(0, "Produce", 9), (1, "Fetch", 12), (3, "Metadata", 12)] {
        let (_, _, max) = keys.iter().copied().find(|k| k.0 == key).unwrap();
        assert!(max >= max_at_least, "{name} max version {max} < {max_at_least}");
    }
}

#[test]
fn api_versions_too_new_falls_back_to_v0() {
    // KIP-511: an ApiVersions request newer than the broker knows gets a v0 response with
    // UNSUPPORTED_VERSION and the supported ranges, so the client can retry with a known one.
    // A client sends its newest version as a flexible request: header v2 (client id, then
    // tagged fields) and a v3-style body (software name and version, tagged fields).
    let broker = Broker::start();
    let mut s = connect(&broker);
    let mut msg = Vec::new();
    msg.extend_from_slice(&API_VERSIONS.to_be_bytes());
    msg.extend_from_slice(&127i16.to_be_bytes());
    msg.extend_from_slice(&5i32.to_be_bytes());
    msg.extend_from_slice(&4i16.to_be_bytes());
    msg.extend_from_slice(b"e2e!");
    msg.push(0); // header tagged fields
    msg.push(5);
    msg.extend_from_slice(b"e2e!"); // client_software_name (compact string)
    msg.push(4);
    msg.extend_from_slice(b"1.0"); // client_software_version
    msg.push(0); // body tagged fields
    let mut bytes = (msg.len() as i32).to_be_bytes().to_vec();
    bytes.extend_from_slice(&msg);
    s.write_all(&bytes).expect("send");
    let (corr, body) = read_frame(&mut s).expect("response");
    assert_eq!(corr, 5);
    let (error, keys) = parse_api_versions(&body);
    assert_eq!(error, 35, "UNSUPPORTED_VERSION");
    let (_, min, max) =
        keys.iter().copied().find(|k| k.0 == API_VERSIONS).expect("ApiVersions listed in the fallback answer");
    assert!(min <= 3 && 3 <= max, "ApiVersions {min}..={max} must include v3");
}

/// Produce v3, acks=1, of `records`; returns (error code, base offset) of the one partition.
fn produce_raw(s: &mut TcpStream, topic: &str, records: &[u8], correlation_id: i32) -> (i16, i64) {
    s.write_all(&frame(API_PRODUCE, 3, correlation_id, &produce_body(1, topic, 0, records))).expect("send Produce");
    let (corr, body) = read_frame(s).expect("Produce response");
    assert_eq!(corr, correlation_id);
    let mut b = Body(&body);
    assert_eq!(b.i32(), 1, "topics in response");
    assert_eq!(b.string(), topic);
    assert_eq!(b.i32(), 1, "partitions in response");
    assert_eq!(b.i32(), 0, "partition index");
    let error = b.i16();
    let base_offset = b.i64();
    (error, base_offset)
}

#[tokio::test]
async fn produce_acks0_sends_no_response() {
    // P10: with acks=0 a successful append gets no response at all.
    let broker = Broker::start();
    let topic = unique_topic("raw-acks0");
    create_topic(&broker, &topic, 1, &[]).await;
    let mut s = connect(&broker);
    s.write_all(&frame(API_PRODUCE, 3, 1, &produce_body(0, &topic, 0, &BATCH_V1))).expect("send Produce");
    // The next frame on this connection must answer the ApiVersions request, not the Produce.
    assert_api_versions_answered(&mut s, 2);
    let recs = consume(&broker, &topic, 0, Offset::Beginning, 1);
    assert_eq!(recs[0].offset, 0);
    assert_eq!(recs[0].key.as_deref(), Some(&b"k"[..]));
    assert_eq!(recs[0].value.as_deref(), Some(&b"v"[..]));
    assert_eq!(recs[0].timestamp, Some(1_700_000_000_000));
}

#[tokio::test]
async fn produce_acks0_failure_closes_connection() {
    // P10: with acks=0 a failed append closes the connection, so the client notices.
    let mut broker = Broker::start_with(&["--auto-create-topics", "false"]);
    let missing = unique_topic("raw-missing");
    let outcome = send_and_observe(&broker, &frame(API_PRODUCE, 3, 1, &produce_body(0, &missing, 0, &BATCH_V1)), false);
    assert_eq!(outcome, Outcome::Closed { answers: vec![] });
    assert_still_serving(&mut broker, "acks=0 produce to a missing topic");
}

#[tokio::test]
async fn produce_rejects_corrupt_batches() {
    let broker = Broker::start();
    let topic = unique_topic("raw-corrupt");
    create_topic(&broker, &topic, 1, &[]).await;
    let mut s = connect(&broker);

    // A record byte flipped: the CRC32C no longer matches → CORRUPT_MESSAGE (2).
    assert_eq!(crc32c::crc32c(&BATCH_V1[21..]).to_be_bytes(), BATCH_V1[17..21], "the test vector's CRC");
    let mut bad_crc = BATCH_V1;
    bad_crc[67] ^= 0x01;
    let (error, _) = produce_raw(&mut s, &topic, &bad_crc, 10);
    assert_eq!(error, 2, "bad CRC → CORRUPT_MESSAGE");

    // A batch length that runs past the end of the records field.
    let mut bad_len = BATCH_V1;
    bad_len[11] = 0x50;
    let (error, _) = produce_raw(&mut s, &topic, &bad_len, 11);
    assert!(error == 2 || error == 87, "truncated batch → CORRUPT_MESSAGE or INVALID_RECORD, got {error}");

    // Magic 1 (a v1 message set) is not accepted by Kafka 4.x either.
    let mut bad_magic = BATCH_V1;
    bad_magic[16] = 1;
    let (error, _) = produce_raw(&mut s, &topic, &bad_magic, 12);
    assert_ne!(error, 0, "magic 1 batch accepted");

    // The valid batch still goes to offset 0: nothing above was appended.
    let (error, base) = produce_raw(&mut s, &topic, &BATCH_V1, 13);
    assert_eq!((error, base), (0, 0));
    let consumer: BaseConsumer = consumer_config(&broker).create().expect("consumer");
    assert_eq!(consumer.fetch_watermarks(&topic, 0, OP_TIMEOUT).expect("watermarks"), (0, 1));
}

fn check_bad_input(name: &str, bytes: &[u8], half_close: bool, may_answer: bool) {
    let mut broker = Broker::start();
    let outcome = send_and_observe(&broker, bytes, half_close);
    match &outcome {
        Outcome::Closed { answers } if answers.is_empty() => {}
        Outcome::Closed { answers } | Outcome::Answered { answers } if may_answer => {
            // The correlation id sits after the length, api key and version.
            let request_corr = i32::from_be_bytes(bytes[8..12].try_into().unwrap());
            assert!(
                answers.iter().all(|&c| c == request_corr),
                "{name}: answers {answers:?} do not carry the request's correlation id {request_corr}"
            );
        }
        other => panic!("{name}: {other:?}; expected the connection to be closed"),
    }
    assert_still_serving(&mut broker, name);
}

#[test]
fn negative_frame_length_closes_connection() {
    check_bad_input("length -1", &[0xff, 0xff, 0xff, 0xff, 0, 18, 0, 0], false, false);
}

#[test]
fn two_gib_frame_length_closes_connection() {
    // The broker must refuse the size up front instead of waiting for (or allocating) 2 GiB.
    let mut bytes = i32::MAX.to_be_bytes().to_vec();
    bytes.extend_from_slice(&frame(API_VERSIONS, 0, 77, &[])[4..]);
    check_bad_input("length 2 GiB", &bytes, false, false);
}

#[test]
fn unknown_api_key_is_answered_or_closed() {
    check_bad_input("unknown api key", &frame(9999, 0, 77, &[1, 2, 3, 4]), false, true);
}

#[test]
fn unsupported_version_of_known_api_is_answered_or_closed() {
    check_bad_input("Metadata v999", &frame(API_METADATA, 999, 77, &[0, 0, 0, 0]), false, true);
}

#[test]
fn garbage_bytes_close_connection() {
    // An HTTP request: its first four bytes read as a 1.1 GB frame length.
    check_bad_input("HTTP request", b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", false, false);
}

#[test]
fn garbage_inside_a_frame_is_answered_or_closed() {
    let bytes: Vec<u8> = {
        let body: Vec<u8> = (0..64u32).map(|i| (i * 37 + 11) as u8).collect();
        let mut out = (body.len() as i32).to_be_bytes().to_vec();
        out.extend_from_slice(&body);
        out
    };
    check_bad_input("random frame body", &bytes, false, true);
}

#[test]
fn huge_array_count_does_not_abort() {
    // DEPENDENCIES.md trap 1: a Metadata v1 request whose topic array claims 2^31-1 entries
    // made kafka-protocol try to allocate ~150 GB and abort the process.
    check_bad_input(
        "Metadata v1 with a 2^31-1 topic count",
        &frame(API_METADATA, 1, 77, &[0x7f, 0xff, 0xff, 0xff, 0x00, 0x01, 0x61]),
        false,
        true,
    );
}

#[tokio::test]
async fn huge_record_count_does_not_abort() {
    // The same pattern inside a record batch: a record count of 2^31-1 in a batch whose CRC
    // is valid, sent to an existing partition so that the batch itself is examined.
    let mut broker = Broker::start();
    let topic = unique_topic("raw-count");
    create_topic(&broker, &topic, 1, &[]).await;
    let mut batch = BATCH_V1;
    batch[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    let mut s = connect(&broker);
    let (error, _) = produce_raw(&mut s, &topic, &batch, 20);
    assert!(error == 2 || error == 87, "record count 2^31-1 → CORRUPT_MESSAGE or INVALID_RECORD, got {error}");
    assert_still_serving(&mut broker, "a batch with a 2^31-1 record count");
    let consumer: BaseConsumer = consumer_config(&broker).create().expect("consumer");
    assert_eq!(consumer.fetch_watermarks(&topic, 0, OP_TIMEOUT).expect("watermarks"), (0, 0));
}

#[test]
fn truncated_request_body_is_answered_or_closed() {
    let full = frame(API_PRODUCE, 3, 77, &produce_body(1, "t", 0, &BATCH_V1));
    // Keep the frame length honest but cut the body: the frame ends inside the records.
    let mut body = full[4..full.len() - 30].to_vec();
    let mut bytes = (body.len() as i32).to_be_bytes().to_vec();
    bytes.append(&mut body);
    check_bad_input("truncated Produce body", &bytes, false, true);
}

#[test]
fn torn_frame_then_close() {
    let full = frame(API_VERSIONS, 0, 77, &[]);
    let mut bytes = 100i32.to_be_bytes().to_vec();
    bytes.extend_from_slice(&full[4..]);
    check_bad_input("torn frame then close", &bytes, true, false);
}

#[test]
fn many_connections_with_torn_frames() {
    // Connections that die mid-frame must not accumulate into a failure.
    let mut broker = Broker::start();
    for i in 0..200i32 {
        let mut s = connect(&broker);
        let _ = s.write_all(&(1000 + i).to_be_bytes());
        let _ = s.write_all(&[0u8; 10]);
        drop(s);
    }
    assert_still_serving(&mut broker, "200 torn connections");
}
