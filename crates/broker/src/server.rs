//! The TCP server: accepts connections, reads frames, runs each request as its own task and
//! writes the responses back in request order.
//!
//! Invariants:
//! - A frame's length is checked against `socket.request.max.bytes` before it is read.
//! - At most `requests_in_flight_max` requests of one connection are in progress; reading
//!   waits when that many are.
//! - A bad frame costs only its own connection: one log line, and an error answer or a close.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use sluice_protocol::{decode_request, encode_unsupported_version, frame_length, ProtocolError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::api::{self, Outcome};
use crate::broker::Broker;
use crate::error::BrokerError;

pub async fn bind(broker: &Broker) -> Result<TcpListener, BrokerError> {
    let addr = broker.config.listen;
    let listener =
        TcpListener::bind(addr).await.map_err(|e| BrokerError::Bind { addr: addr.to_string(), source: e })?;
    if let Ok(bound) = listener.local_addr() {
        broker.set_bound_address(bound);
    }
    Ok(listener)
}

/// Serves until `shutdown` completes or a storage failure stops the broker, then closes every
/// log cleanly (after a storage failure: not cleanly, so the next start recovers).
pub async fn serve(
    broker: Arc<Broker>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), BrokerError> {
    let mut fatal = broker.fatal_receiver();
    let retention = tokio::spawn(retention_loop(broker.clone()));
    let coordinator = tokio::spawn(broker.groups.clone().run());
    tokio::pin!(shutdown);
    let result = loop {
        tokio::select! {
            _ = &mut shutdown => break Ok(()),
            changed = fatal.changed() => {
                if changed.is_ok() {
                    if let Some(reason) = fatal.borrow().clone() {
                        break Err(BrokerError::Storage(reason));
                    }
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(connection(broker.clone(), stream, peer));
                }
                Err(e) => tracing::warn!(error = %e, "accept failed"),
            },
        }
    };
    retention.abort();
    coordinator.abort();
    if result.is_ok() {
        let b = broker.clone();
        match tokio::task::spawn_blocking(move || b.close()).await {
            Ok(Ok(())) => tracing::info!("logs closed cleanly"),
            Ok(Err(e)) => tracing::error!(error = %e, "closing the logs failed; the next start recovers them"),
            Err(e) => tracing::error!(error = %e, "closing the logs failed"),
        }
    }
    result
}

async fn retention_loop(broker: Arc<Broker>) {
    let period = std::time::Duration::from_millis(broker.config.retention_check_interval_ms);
    // The first check comes one period after start, not at once (Kafka waits too).
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let b = broker.clone();
        match tokio::task::spawn_blocking(move || b.enforce_retention()).await {
            Ok(n) if n > 0 => tracing::info!(segments = n, "retention deleted segments"),
            _ => {}
        }
    }
}

async fn connection(broker: Arc<Broker>, stream: TcpStream, peer: SocketAddr) {
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<JoinHandle<Outcome>>(broker.config.requests_in_flight_max);
    let writer = tokio::spawn(async move {
        while let Some(handle) = rx.recv().await {
            match handle.await {
                Ok(Outcome::Respond(bytes)) => {
                    if let Err(e) = wr.write_all(&bytes).await {
                        tracing::debug!(%peer, error = %e, "write failed; closing");
                        return;
                    }
                }
                Ok(Outcome::RespondParts(parts)) => {
                    if let Err(e) = crate::send::write_parts(&mut wr, &parts).await {
                        tracing::warn!(%peer, error = %e, "writing a fetch answer failed; closing");
                        return;
                    }
                }
                Ok(Outcome::Silent) => {}
                Ok(Outcome::Close(reason)) => {
                    tracing::warn!(%peer, %reason, "closing connection");
                    return;
                }
                Err(e) => {
                    tracing::error!(%peer, error = %e, "request handler failed; closing connection");
                    return;
                }
            }
        }
        let _ = wr.shutdown().await;
    });
    if let Err(reason) = read_loop(&broker, peer, &mut rd, &tx).await {
        tracing::warn!(%peer, %reason, "closing connection");
    }
    drop(tx);
    let _ = writer.await;
}

/// Reads frames until the peer closes (Ok) or sends something that ends the connection (Err
/// with the reason to log).
async fn read_loop(
    broker: &Arc<Broker>,
    peer: SocketAddr,
    rd: &mut tokio::net::tcp::OwnedReadHalf,
    tx: &mpsc::Sender<JoinHandle<Outcome>>,
) -> Result<(), String> {
    loop {
        let mut prefix = [0u8; 4];
        tokio::select! {
            r = rd.read_exact(&mut prefix) => match r {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(format!("read failed: {e}")),
            },
            _ = tx.closed() => return Ok(()),
        }
        let len = frame_length(prefix, broker.config.request_bytes_max).map_err(|e| e.to_string())?;
        let mut frame = BytesMut::zeroed(len);
        tokio::select! {
            r = rd.read_exact(&mut frame) => {
                r.map_err(|e| format!("torn frame: expected {len} bytes: {e}"))?;
            }
            _ = tx.closed() => return Ok(()),
        }
        let handle = match decode_request(Bytes::from(frame)) {
            // State changes happen here, in request order; only the waiting runs as a task.
            Ok(request) => tokio::spawn(api::start(broker.clone(), request, peer)),
            Err(
                e @ (ProtocolError::UnknownApi { correlation_id, .. }
                | ProtocolError::UnsupportedVersion { correlation_id, .. }),
            ) => {
                tracing::warn!(error = %e, "answering UNSUPPORTED_VERSION");
                let mut out = BytesMut::new();
                encode_unsupported_version(&mut out, correlation_id);
                tokio::spawn(async move { Outcome::Respond(out) })
            }
            Err(e) => return Err(e.to_string()),
        };
        if tx.send(handle).await.is_err() {
            return Ok(());
        }
    }
}
