//! A TCP proxy between a client and the real broker that can intervene in the conversation,
//! for failures a real broker shows only at moments a test cannot arrange: a lost response, a
//! request that never arrives, an error answer from the coordinator.
//!
//! Start the broker with `--advertise PROXY_ADDR` so that every connection the client opens
//! (bootstrap, leaders, coordinator) goes through the proxy. For each request frame the client
//! sends, `on_request` decides: forward it, swallow it (the broker never sees it and the client
//! gets no answer), or answer it from the proxy. For each response the broker sends,
//! `on_response` (told the api key of the request it answers) decides: forward it, or drop it
//! and close the connection. Answers keep the connection's order: a forged answer goes out
//! once every response owed before it has.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

/// What to do with a request frame (length prefix included).
pub enum OnRequest {
    Forward,
    Swallow,
    /// A whole response frame (length prefix included) to give the client instead.
    Answer(Vec<u8>),
}

/// What to do with a response frame from the broker.
pub enum OnResponse {
    Forward,
    /// Drop it and close the client's connection (and the broker's).
    DropConnection,
}

pub type RequestHook = Arc<dyn Fn(&[u8]) -> OnRequest + Send + Sync>;
pub type ResponseHook = Arc<dyn Fn(i16, &[u8]) -> OnResponse + Send + Sync>;

/// The api key of a request frame.
pub fn api_key(frame: &[u8]) -> i16 {
    i16::from_be_bytes([frame[4], frame[5]])
}

/// The proxy; it runs until the test's runtime ends.
pub struct Interposer {
    pub addr: String,
}

impl Interposer {
    pub fn start(
        listener: TcpListener,
        broker_addr: String,
        on_request: RequestHook,
        on_response: ResponseHook,
    ) -> Self {
        let addr = listener.local_addr().expect("proxy address").to_string();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(broker) = TcpStream::connect(&broker_addr).await else { return };
                relay(client, broker, on_request.clone(), on_response.clone());
            }
        });
        Interposer { addr }
    }
}

/// A response the client is owed, in request order.
enum Owed {
    Broker(i16),
    Forged(Vec<u8>),
}

struct ToClient {
    owed: VecDeque<Owed>,
    write: OwnedWriteHalf,
}

impl ToClient {
    /// Writes the forged answers now at the head of the order.
    async fn flush_forged(&mut self) {
        while let Some(Owed::Forged(_)) = self.owed.front() {
            let Some(Owed::Forged(frame)) = self.owed.pop_front() else { unreachable!() };
            let _ = self.write.write_all(&frame).await;
        }
    }
}

fn relay(client: TcpStream, broker: TcpStream, on_request: RequestHook, on_response: ResponseHook) {
    let (mut client_read, client_write) = client.into_split();
    let (mut broker_read, mut broker_write) = broker.into_split();
    let to_client = Arc::new(Mutex::new(ToClient { owed: VecDeque::new(), write: client_write }));
    let requests_to = to_client.clone();
    tokio::spawn(async move {
        while let Some(frame) = read_frame(&mut client_read).await {
            let mut to_client = requests_to.lock().await;
            match on_request(&frame) {
                OnRequest::Swallow => {}
                OnRequest::Answer(response) => {
                    to_client.owed.push_back(Owed::Forged(response));
                    to_client.flush_forged().await;
                }
                OnRequest::Forward => {
                    to_client.owed.push_back(Owed::Broker(api_key(&frame)));
                    drop(to_client);
                    if broker_write.write_all(&frame).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = broker_write.shutdown().await;
    });
    tokio::spawn(async move {
        while let Some(frame) = read_frame(&mut broker_read).await {
            let mut to_client = to_client.lock().await;
            let key = match to_client.owed.pop_front() {
                Some(Owed::Broker(key)) => key,
                _ => -1,
            };
            match on_response(key, &frame) {
                OnResponse::Forward => {
                    if to_client.write.write_all(&frame).await.is_err() {
                        break;
                    }
                    to_client.flush_forged().await;
                }
                OnResponse::DropConnection => {
                    let _ = to_client.write.shutdown().await;
                    break;
                }
            }
        }
    });
}

/// One length-prefixed frame, prefix included.
async fn read_frame(s: &mut OwnedReadHalf) -> Option<Vec<u8>> {
    let len = s.read_i32().await.ok()?;
    let mut frame = len.to_be_bytes().to_vec();
    frame.resize(4 + usize::try_from(len).ok()?, 0);
    s.read_exact(&mut frame[4..]).await.ok()?;
    Some(frame)
}
