//! One TCP connection to one broker, speaking Kafka's framing with `kafka-protocol`'s
//! client-side encoders.
//!
//! Requests are pipelined: [`Connection::enqueue`] puts a request on the wire queue at once
//! (in call order) and returns a future for its response, so a caller that enqueues several
//! requests before awaiting any keeps them in flight together. Kafka answers the requests of a
//! connection in order, so responses are matched to requests by position, and the correlation
//! id is checked as a guard.
//!
//! Two tasks own the socket: the writer assigns correlation ids (in queue order, so ids and
//! wire order always agree), registers the waiter with the reader *before* writing, and writes;
//! the reader reads frames and hands each to the oldest waiter. When either side fails, every
//! outstanding and later request fails with [`Error::Disconnected`]; the connection is not
//! reused (the cluster opens a new one).
//!
//! **Invariants:** at most one frame length is trusted before its bytes arrive, and it is
//! checked against `response_bytes_max`; a response is decoded only by the caller that sent the
//! matching request, with the version it was sent at.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};

/// Largest response frame accepted (Kafka's clients have no such bound; a fetch is bounded by
/// `fetch.max.bytes`, 50 MiB by default, so this leaves room).
pub const RESPONSE_BYTES_MAX: usize = 256 * 1024 * 1024;
/// Where the correlation id sits in a request frame: after the length (4), api key (2) and
/// api version (2). Same in every request header version.
const CORRELATION_ID_OFFSET: usize = 8;

/// The highest version of each API this client speaks: the newest versions whose request and
/// response fields the client fills and reads. Negotiation picks the lower of this and the
/// broker's maximum.
const CLIENT_MAX_VERSIONS: &[(ApiKey, i16)] = &[
    (ApiKey::Produce, 12),
    (ApiKey::Metadata, 12),
    (ApiKey::ListOffsets, 9),
    (ApiKey::ApiVersions, 3),
    (ApiKey::CreateTopics, 7),
    // v6 names topics by id; the client names them by name.
    (ApiKey::DeleteTopics, 5),
    (ApiKey::CreatePartitions, 3),
    (ApiKey::InitProducerId, 5),
    // Topics by name (v13+ names them by id).
    (ApiKey::Fetch, 12),
    // v4+ batches keys.
    (ApiKey::FindCoordinator, 3),
    (ApiKey::JoinGroup, 7),
    (ApiKey::SyncGroup, 5),
    (ApiKey::Heartbeat, 4),
    (ApiKey::LeaveGroup, 4),
    (ApiKey::OffsetCommit, 8),
    // v8+ batches groups.
    (ApiKey::OffsetFetch, 7),
    (ApiKey::DescribeGroups, 5),
    (ApiKey::ListGroups, 4),
    (ApiKey::DeleteGroups, 2),
    (ApiKey::DescribeConfigs, 4),
];

/// Settings of a connection.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    pub client_id: String,
    pub connect_timeout_ms: u64,
    pub request_timeout_ms: u64,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig { client_id: "sluice-client".into(), connect_timeout_ms: 10_000, request_timeout_ms: 30_000 }
    }
}

struct Outgoing {
    frame: BytesMut,
    /// `None`: no response is expected (Produce with acks=0); the writer reports the write.
    reply: Reply,
}

enum Reply {
    Response(oneshot::Sender<Result<Bytes>>),
    Written(oneshot::Sender<Result<()>>),
}

struct Waiter {
    correlation_id: i32,
    reply: oneshot::Sender<Result<Bytes>>,
}

/// A connection to one broker. Cheap to clone; all clones share the socket.
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

struct Inner {
    addr: String,
    config: ConnectionConfig,
    queue: mpsc::UnboundedSender<Outgoing>,
    closed: Arc<AtomicBool>,
    /// Negotiated version per API key: the highest both sides support.
    versions: HashMap<i16, i16>,
    /// The broker's ranges, for error messages.
    broker_ranges: HashMap<i16, (i16, i16)>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("addr", &self.inner.addr).finish()
    }
}

/// A response not yet arrived.
pub struct ResponseFuture<R> {
    rx: oneshot::Receiver<Result<Bytes>>,
    addr: String,
    key: ApiKey,
    version: i16,
    timeout_ms: u64,
    _marker: std::marker::PhantomData<fn() -> R>,
}

impl<R: Decodable> ResponseFuture<R> {
    /// Waits for the response (up to the request timeout) and decodes it.
    pub async fn wait(self) -> Result<R> {
        let api = api_name(self.key);
        let frame = match tokio::time::timeout(Duration::from_millis(self.timeout_ms), self.rx).await {
            Err(_) => return Err(Error::Timeout { addr: self.addr, api, timeout_ms: self.timeout_ms }),
            Ok(Err(_)) => return Err(Error::Disconnected { addr: self.addr, reason: "connection closed".into() }),
            Ok(Ok(result)) => result?,
        };
        decode_response(frame, self.key, self.version, &self.addr)
    }
}

fn decode_response<R: Decodable>(mut frame: Bytes, key: ApiKey, version: i16, addr: &str) -> Result<R> {
    let api = api_name(key);
    let protocol = |reason: String| Error::Protocol { addr: addr.to_string(), api, reason };
    ResponseHeader::decode(&mut frame, key.response_header_version(version))
        .map_err(|e| protocol(format!("response header v{version}: {e}")))?;
    let response = R::decode(&mut frame, version).map_err(|e| protocol(format!("v{version} body: {e}")))?;
    Ok(response)
}

impl Connection {
    /// Connects to `addr` (`host:port`) and negotiates API versions.
    pub async fn connect(addr: &str, config: ConnectionConfig) -> Result<Connection> {
        let unreachable = |reason: String| Error::Unreachable { addr: addr.to_string(), reason };
        let stream = match tokio::time::timeout(
            Duration::from_millis(config.connect_timeout_ms),
            TcpStream::connect(addr),
        )
        .await
        {
            Err(_) => return Err(unreachable(format!("no answer within {} ms", config.connect_timeout_ms))),
            Ok(Err(e)) => return Err(unreachable(io_reason(&e))),
            Ok(Ok(s)) => s,
        };
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        let (queue, queue_rx) = mpsc::unbounded_channel();
        let (waiters, waiters_rx) = mpsc::unbounded_channel();
        let closed = Arc::new(AtomicBool::new(false));
        tokio::spawn(write_loop(BufWriter::new(write), queue_rx, waiters, closed.clone(), addr.to_string()));
        tokio::spawn(read_loop(read, waiters_rx, closed.clone(), addr.to_string()));

        let mut conn = Connection {
            inner: Arc::new(Inner {
                addr: addr.to_string(),
                config,
                queue,
                closed,
                versions: HashMap::new(),
                broker_ranges: HashMap::new(),
            }),
        };
        let ranges = conn.api_versions().await?;
        let mut versions = HashMap::new();
        for &(key, ours) in CLIENT_MAX_VERSIONS {
            if let Some(&(lo, hi)) = ranges.get(&(key as i16)) {
                let v = ours.min(hi);
                if v >= lo && v >= min_client_version(key) {
                    versions.insert(key as i16, v);
                }
            }
        }
        let inner = Arc::get_mut(&mut conn.inner).expect("no clone of a connection exists before it is returned");
        inner.versions = versions;
        inner.broker_ranges = ranges;
        Ok(conn)
    }

    /// ApiVersions: tries our highest version; a broker that does not know it answers v0 with
    /// UNSUPPORTED_VERSION and its own range (KIP-511), and we retry within that.
    async fn api_versions(&self) -> Result<HashMap<i16, (i16, i16)>> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("sluice-client"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let mut version = 3;
        for _ in 0..2 {
            let frame = self.enqueue_raw(ApiKey::ApiVersions, version, &request)?;
            let bytes = self.wait_raw(frame, ApiKey::ApiVersions).await?;
            // The ApiVersions response header is always v0; a broker that rejects our version
            // answers with a v0 body.
            let response: ApiVersionsResponse = match decode_response::<ApiVersionsResponse>(
                bytes.clone(),
                ApiKey::ApiVersions,
                version,
                &self.inner.addr,
            ) {
                Ok(r) if r.error_code == 0 => r,
                _ => decode_response(bytes, ApiKey::ApiVersions, 0, &self.inner.addr)?,
            };
            let ranges: HashMap<i16, (i16, i16)> =
                response.api_keys.iter().map(|k| (k.api_key, (k.min_version, k.max_version))).collect();
            if response.error_code == 35 {
                match ranges.get(&(ApiKey::ApiVersions as i16)) {
                    Some(&(_, hi)) if hi < version => {
                        version = hi;
                        continue;
                    }
                    _ => {}
                }
            }
            if let Some(e) =
                Error::from_code(response.error_code, || format!("ApiVersions with broker {}", self.inner.addr), None)
            {
                return Err(e);
            }
            return Ok(ranges);
        }
        Err(Error::UnsupportedVersion { addr: self.inner.addr.clone(), api: "ApiVersions", ours: "0-3".into() })
    }

    /// `host:port` this connection was opened to.
    pub fn addr(&self) -> &str {
        &self.inner.addr
    }

    /// True once the socket failed or was closed; such a connection is never usable again.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// The version negotiated for `key`: the highest both sides support.
    pub fn version(&self, key: ApiKey) -> Result<i16> {
        self.inner.versions.get(&(key as i16)).copied().ok_or_else(|| {
            let ours = CLIENT_MAX_VERSIONS
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, hi)| format!("{}-{hi}", min_client_version(key)))
                .unwrap_or_else(|| "none".into());
            let theirs = match self.inner.broker_ranges.get(&(key as i16)) {
                Some((lo, hi)) => format!("; it serves {lo}-{hi}"),
                None => "; it does not serve it at all".into(),
            };
            Error::UnsupportedVersion {
                addr: self.inner.addr.clone(),
                api: api_name(key),
                ours: format!("{ours}{theirs}"),
            }
        })
    }

    /// Puts `request` on the wire queue now, at the negotiated version, and returns a future for
    /// its response. Requests enqueued from one task reach the broker in call order.
    pub fn enqueue<R: Request>(&self, request: &R) -> Result<ResponseFuture<R::Response>> {
        let key = api_key::<R>();
        let version = self.version(key)?;
        self.enqueue_at(request, version)
    }

    /// As [`enqueue`](Self::enqueue) at an explicit version.
    pub fn enqueue_at<R: Request>(&self, request: &R, version: i16) -> Result<ResponseFuture<R::Response>> {
        let key = api_key::<R>();
        let rx = self.enqueue_raw(key, version, request)?;
        Ok(ResponseFuture {
            rx,
            addr: self.inner.addr.clone(),
            key,
            version,
            timeout_ms: self.inner.config.request_timeout_ms,
            _marker: std::marker::PhantomData,
        })
    }

    /// Sends `request` and waits for its response.
    pub async fn send<R: Request>(&self, request: &R) -> Result<R::Response> {
        self.enqueue(request)?.wait().await
    }

    /// Sends a request the broker does not answer (Produce with acks=0); the returned future
    /// resolves once the bytes are written to the socket.
    pub fn enqueue_no_response<R: Request>(
        &self,
        request: &R,
    ) -> Result<impl std::future::Future<Output = Result<()>> + Send + 'static> {
        let key = api_key::<R>();
        let version = self.version(key)?;
        let frame = encode_request(key, version, &self.inner.config.client_id, request, &self.inner.addr)?;
        let (tx, rx) = oneshot::channel();
        self.push(Outgoing { frame, reply: Reply::Written(tx) })?;
        let addr = self.inner.addr.clone();
        Ok(async move {
            match rx.await {
                Ok(r) => r,
                Err(_) => Err(Error::Disconnected { addr, reason: "connection closed".into() }),
            }
        })
    }

    fn enqueue_raw<R: Encodable + HeaderVersion>(
        &self,
        key: ApiKey,
        version: i16,
        request: &R,
    ) -> Result<oneshot::Receiver<Result<Bytes>>> {
        let frame = encode_request(key, version, &self.inner.config.client_id, request, &self.inner.addr)?;
        let (tx, rx) = oneshot::channel();
        self.push(Outgoing { frame, reply: Reply::Response(tx) })?;
        Ok(rx)
    }

    async fn wait_raw(&self, rx: oneshot::Receiver<Result<Bytes>>, key: ApiKey) -> Result<Bytes> {
        let timeout_ms = self.inner.config.request_timeout_ms;
        match tokio::time::timeout(Duration::from_millis(timeout_ms), rx).await {
            Err(_) => Err(Error::Timeout { addr: self.inner.addr.clone(), api: api_name(key), timeout_ms }),
            Ok(Err(_)) => Err(self.disconnected()),
            Ok(Ok(r)) => r,
        }
    }

    fn push(&self, outgoing: Outgoing) -> Result<()> {
        if self.is_closed() {
            return Err(self.disconnected());
        }
        self.inner.queue.send(outgoing).map_err(|_| self.disconnected())
    }

    fn disconnected(&self) -> Error {
        Error::Disconnected { addr: self.inner.addr.clone(), reason: "connection closed".into() }
    }
}

/// The lowest version the client's request types are filled for (Kafka 4.x floors).
fn min_client_version(key: ApiKey) -> i16 {
    match key {
        ApiKey::Produce => 3,
        ApiKey::ListOffsets => 1,
        ApiKey::Metadata => 1,
        ApiKey::CreateTopics => 2,
        ApiKey::DeleteTopics => 1,
        ApiKey::Fetch => 4,
        ApiKey::FindCoordinator => 1,
        ApiKey::JoinGroup => 4,
        ApiKey::OffsetCommit => 2,
        ApiKey::OffsetFetch => 1,
        _ => 0,
    }
}

fn api_key<R: Request>() -> ApiKey {
    ApiKey::try_from(R::KEY).expect("every request type has a known key")
}

/// The API's name as Kafka spells it, for messages.
pub fn api_name(key: ApiKey) -> &'static str {
    match key {
        ApiKey::Produce => "Produce",
        ApiKey::Fetch => "Fetch",
        ApiKey::ListOffsets => "ListOffsets",
        ApiKey::Metadata => "Metadata",
        ApiKey::ApiVersions => "ApiVersions",
        ApiKey::CreateTopics => "CreateTopics",
        ApiKey::DeleteTopics => "DeleteTopics",
        ApiKey::CreatePartitions => "CreatePartitions",
        ApiKey::InitProducerId => "InitProducerId",
        ApiKey::FindCoordinator => "FindCoordinator",
        ApiKey::JoinGroup => "JoinGroup",
        ApiKey::SyncGroup => "SyncGroup",
        ApiKey::Heartbeat => "Heartbeat",
        ApiKey::LeaveGroup => "LeaveGroup",
        ApiKey::OffsetCommit => "OffsetCommit",
        ApiKey::OffsetFetch => "OffsetFetch",
        ApiKey::DescribeGroups => "DescribeGroups",
        ApiKey::ListGroups => "ListGroups",
        ApiKey::DeleteGroups => "DeleteGroups",
        ApiKey::DescribeConfigs => "DescribeConfigs",
        _ => "request",
    }
}

fn encode_request<R: Encodable + HeaderVersion>(
    key: ApiKey,
    version: i16,
    client_id: &str,
    request: &R,
    addr: &str,
) -> Result<BytesMut> {
    let api = api_name(key);
    let mut frame = BytesMut::new();
    frame.put_i32(0); // length, filled in below
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(0) // the writer assigns it
        .with_client_id(Some(StrBytes::from_string(client_id.to_string())))
        .encode(&mut frame, R::header_version(version))
        .and_then(|()| request.encode(&mut frame, version))
        .map_err(|e| Error::Protocol {
            addr: addr.to_string(),
            api,
            reason: format!("cannot encode v{version}: {e}"),
        })?;
    let len = i32::try_from(frame.len() - 4).expect("a request frame below 2 GiB");
    frame[0..4].copy_from_slice(&len.to_be_bytes());
    Ok(frame)
}

async fn write_loop(
    mut socket: BufWriter<tokio::net::tcp::OwnedWriteHalf>,
    mut queue: mpsc::UnboundedReceiver<Outgoing>,
    waiters: mpsc::UnboundedSender<Waiter>,
    closed: Arc<AtomicBool>,
    addr: String,
) {
    let mut next_correlation_id: i32 = 1;
    while let Some(first) = queue.recv().await {
        // Write every request queued now, then flush once.
        let mut batch = vec![first];
        while let Ok(more) = queue.try_recv() {
            batch.push(more);
        }
        let mut written = Vec::new();
        let mut failed: Option<String> = None;
        for Outgoing { mut frame, reply } in batch {
            if let Some(reason) = &failed {
                fail_reply(reply, &addr, reason);
                continue;
            }
            let correlation_id = next_correlation_id;
            next_correlation_id = next_correlation_id.wrapping_add(1).max(1);
            frame[CORRELATION_ID_OFFSET..CORRELATION_ID_OFFSET + 4].copy_from_slice(&correlation_id.to_be_bytes());
            match reply {
                // Registered before the write so the reader always knows whom a response is for.
                Reply::Response(reply) => {
                    if let Err(mpsc::error::SendError(w)) = waiters.send(Waiter { correlation_id, reply }) {
                        let _ = w
                            .reply
                            .send(Err(Error::Disconnected { addr: addr.clone(), reason: "reader stopped".into() }));
                        failed = Some("reader stopped".into());
                        continue;
                    }
                }
                Reply::Written(tx) => written.push(tx),
            }
            if let Err(e) = socket.write_all(&frame).await {
                failed = Some(io_reason(&e));
            }
        }
        if failed.is_none() {
            if let Err(e) = socket.flush().await {
                failed = Some(io_reason(&e));
            }
        }
        for tx in written {
            let _ = tx.send(match &failed {
                None => Ok(()),
                Some(reason) => Err(Error::Disconnected { addr: addr.clone(), reason: reason.clone() }),
            });
        }
        if failed.is_some() {
            break;
        }
    }
    closed.store(true, Ordering::Release);
    let _ = socket.shutdown().await;
    // Dropping `waiters` lets the reader fail what is still outstanding once it stops.
    queue.close();
    while let Ok(o) = queue.try_recv() {
        fail_reply(o.reply, &addr, "connection closed");
    }
}

fn fail_reply(reply: Reply, addr: &str, reason: &str) {
    let e = Error::Disconnected { addr: addr.to_string(), reason: reason.to_string() };
    match reply {
        Reply::Response(tx) => {
            let _ = tx.send(Err(e));
        }
        Reply::Written(tx) => {
            let _ = tx.send(Err(e));
        }
    }
}

async fn read_loop(
    mut socket: tokio::net::tcp::OwnedReadHalf,
    mut waiters: mpsc::UnboundedReceiver<Waiter>,
    closed: Arc<AtomicBool>,
    addr: String,
) {
    let reason = loop {
        let mut len = [0u8; 4];
        match socket.read_exact(&mut len).await {
            Ok(_) => {}
            Err(e) => break io_reason(&e),
        }
        let len = i32::from_be_bytes(len);
        let Ok(len) = usize::try_from(len) else { break format!("negative frame length {len}") };
        if !(4..=RESPONSE_BYTES_MAX).contains(&len) {
            break format!("response frame of {len} bytes (limit {RESPONSE_BYTES_MAX})");
        }
        let mut frame = vec![0u8; len];
        if let Err(e) = socket.read_exact(&mut frame).await {
            break io_reason(&e);
        }
        let correlation_id = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
        let Ok(waiter) = waiters.try_recv() else {
            break format!("unexpected response (correlation id {correlation_id}) with no request outstanding");
        };
        if waiter.correlation_id != correlation_id {
            let reason = format!(
                "response for correlation id {correlation_id} where {} was expected (responses out of order)",
                waiter.correlation_id
            );
            let _ =
                waiter.reply.send(Err(Error::Protocol { addr: addr.clone(), api: "response", reason: reason.clone() }));
            break reason;
        }
        let _ = waiter.reply.send(Ok(Bytes::from(frame)));
    };
    closed.store(true, Ordering::Release);
    waiters.close();
    while let Ok(w) = waiters.try_recv() {
        let _ = w.reply.send(Err(Error::Disconnected { addr: addr.clone(), reason: reason.clone() }));
    }
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::UnexpectedEof => "the broker closed the connection".into(),
        std::io::ErrorKind::ConnectionReset => "connection reset by the broker".into(),
        _ => e.to_string(),
    }
}
