//! `Connection` against a scripted fake broker: version negotiation (including the KIP-511
//! fallback), pipelining with correlation ids, and what each failure turns into.

mod fake;

use fake::{ranges, read_request, respond};
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::{
    metadata_request::MetadataRequestTopic, ApiKey, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use sluice_client::connection::{Connection, ConnectionConfig};
use sluice_client::Error;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

const USUAL: &[(ApiKey, i16, i16)] = &[(ApiKey::ApiVersions, 0, 4), (ApiKey::Metadata, 0, 9), (ApiKey::Produce, 3, 7)];

/// Accepts one connection and answers ApiVersions with `USUAL`.
async fn fake_broker() -> (String, tokio::task::JoinHandle<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let seen = read_request(&mut s).await.unwrap();
        assert_eq!(seen.key(), ApiKey::ApiVersions);
        respond(&mut s, &seen, seen.version(), &ranges(USUAL)).await;
        s
    });
    (addr, task)
}

fn metadata_request(topic: &str) -> MetadataRequest {
    MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(topic.to_string()))))
    ]))
}

fn metadata_response(topic: &str) -> MetadataResponse {
    MetadataResponse::default().with_topics(vec![
        MetadataResponseTopic::default().with_name(Some(TopicName(StrBytes::from_string(topic.to_string()))))
    ])
}

fn config(request_timeout_ms: u64) -> ConnectionConfig {
    ConnectionConfig { request_timeout_ms, ..ConnectionConfig::default() }
}

#[tokio::test]
async fn negotiates_the_highest_version_both_sides_support() {
    let (addr, broker) = fake_broker().await;
    let conn = Connection::connect(&addr, config(5000)).await.unwrap();
    let _server = broker.await.unwrap();
    assert_eq!(conn.version(ApiKey::Metadata).unwrap(), 9, "the broker's max is below ours");
    assert_eq!(conn.version(ApiKey::Produce).unwrap(), 7);
    let e = conn.version(ApiKey::CreateTopics).unwrap_err();
    assert!(matches!(e, Error::UnsupportedVersion { .. }), "{e}");
    assert!(e.to_string().contains("does not serve it"), "{e}");
}

#[tokio::test]
async fn falls_back_when_the_broker_rejects_our_api_versions_version() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let broker = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let first = read_request(&mut s).await.unwrap();
        assert_eq!(first.version(), 3, "the client tries its highest ApiVersions first");
        // KIP-511: an unknown-too-new ApiVersions gets a v0 answer with UNSUPPORTED_VERSION.
        let reject = ranges(&[(ApiKey::ApiVersions, 0, 1)]).with_error_code(35);
        respond(&mut s, &first, 0, &reject).await;
        let second = read_request(&mut s).await.unwrap();
        assert_eq!(second.version(), 1, "retried within the broker's range");
        respond(&mut s, &second, 1, &ranges(&[(ApiKey::ApiVersions, 0, 1), (ApiKey::Metadata, 1, 5)])).await;
        s
    });
    let conn = Connection::connect(&addr, config(5000)).await.unwrap();
    let _server = broker.await.unwrap();
    assert_eq!(conn.version(ApiKey::Metadata).unwrap(), 5);
}

#[tokio::test]
async fn pipelined_requests_carry_increasing_ids_and_are_answered_in_order() {
    let (addr, broker) = fake_broker().await;
    let conn = Connection::connect(&addr, config(5000)).await.unwrap();
    let mut server = broker.await.unwrap();
    let names: Vec<String> = (0..10).map(|i| format!("t{i}")).collect();
    let futures: Vec<_> = names.iter().map(|n| conn.enqueue(&metadata_request(n)).unwrap()).collect();
    // The broker reads all ten before answering any: they were in flight together.
    let mut seen = Vec::new();
    for _ in 0..10 {
        seen.push(read_request(&mut server).await.unwrap());
    }
    let ids: Vec<i32> = seen.iter().map(|s| s.header.correlation_id).collect();
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "ids {ids:?}");
    assert!(seen.iter().all(|s| s.version() == 9 && s.header.client_id.as_deref() == Some("sluice-client")));
    for (s, name) in seen.iter().zip(&names) {
        let request = MetadataRequest::decode(&mut s.body.clone(), s.version()).unwrap();
        assert_eq!(request.topics.unwrap()[0].name.as_ref().unwrap().0.as_str(), name, "sent in call order");
        respond(&mut server, s, s.version(), &metadata_response(name)).await;
    }
    for (f, name) in futures.into_iter().zip(&names) {
        let r = f.wait().await.unwrap();
        assert_eq!(r.topics[0].name.as_ref().unwrap().0.as_str(), name);
    }
}

#[tokio::test]
async fn a_response_out_of_order_is_a_protocol_error_and_closes_the_connection() {
    let (addr, broker) = fake_broker().await;
    let conn = Connection::connect(&addr, config(5000)).await.unwrap();
    let mut server = broker.await.unwrap();
    let first = conn.enqueue(&metadata_request("a")).unwrap();
    let second = conn.enqueue(&metadata_request("b")).unwrap();
    let _a = read_request(&mut server).await.unwrap();
    let b = read_request(&mut server).await.unwrap();
    respond(&mut server, &b, b.version(), &metadata_response("b")).await;
    let e = first.wait().await.unwrap_err();
    assert!(matches!(e, Error::Protocol { .. }), "{e}");
    assert!(e.to_string().contains("out of order"), "{e}");
    let e = second.wait().await.unwrap_err();
    assert!(matches!(e, Error::Disconnected { .. }), "{e}");
    assert!(conn.is_closed());
    assert!(matches!(conn.enqueue(&metadata_request("c")), Err(Error::Disconnected { .. })));
}

#[tokio::test]
async fn a_broker_that_closes_fails_what_is_outstanding() {
    let (addr, broker) = fake_broker().await;
    let conn = Connection::connect(&addr, config(5000)).await.unwrap();
    let mut server = broker.await.unwrap();
    let pending = conn.enqueue(&metadata_request("a")).unwrap();
    read_request(&mut server).await.unwrap();
    drop(server);
    let e = pending.wait().await.unwrap_err();
    assert!(matches!(&e, Error::Disconnected { addr: a, .. } if *a == addr), "{e}");
    assert!(e.to_string().contains("may or may not have been applied"), "{e}");
    assert!(e.is_retriable());
}

#[tokio::test]
async fn no_answer_within_the_request_timeout_says_which_api() {
    let (addr, broker) = fake_broker().await;
    let conn = Connection::connect(&addr, config(200)).await.unwrap();
    let mut server = broker.await.unwrap();
    let pending = conn.enqueue(&metadata_request("a")).unwrap();
    read_request(&mut server).await.unwrap();
    let e = pending.wait().await.unwrap_err();
    assert!(matches!(e, Error::Timeout { api: "Metadata", timeout_ms: 200, .. }), "{e}");
    assert!(e.to_string().contains(&addr));
}

#[tokio::test]
async fn an_oversized_frame_closes_the_connection() {
    let (addr, broker) = fake_broker().await;
    let conn = Connection::connect(&addr, config(5000)).await.unwrap();
    let mut server = broker.await.unwrap();
    let pending = conn.enqueue(&metadata_request("a")).unwrap();
    read_request(&mut server).await.unwrap();
    server.write_all(&i32::MAX.to_be_bytes()).await.unwrap();
    let e = pending.wait().await.unwrap_err();
    assert!(e.to_string().contains("limit"), "{e}");
    assert!(conn.is_closed());
}
