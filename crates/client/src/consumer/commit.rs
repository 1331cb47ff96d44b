//! OffsetCommit (synchronous, and asynchronous with a future) and OffsetFetch.
//!
//! **Invariants:**
//! - A subscribed member commits with its member id, generation and instance id; a member that
//!   is not in a generation (it left after `max_poll_interval_ms` or lost its session) fails
//!   locally without sending, as Kafka's CommitFailedException (SEMANTICS C6). An assigned
//!   consumer commits with generation -1 and an empty member id (C7).
//! - REBALANCE_IN_PROGRESS asks for a rejoin (the next poll rejoins) and fails the commit with
//!   [`Error::RebalanceInProgress`], which is not fatal: commit again after that poll (SEMANTICS
//!   C6, as Java's RebalanceInProgressException). ILLEGAL_GENERATION and UNKNOWN_MEMBER_ID mean
//!   the generation is lost (the next poll reports the partitions lost).
//! - A synchronous commit retries what Java's commitSync retries (C6): the coordinator moved or
//!   is not available (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS:
//!   the coordinator is looked up again), REQUEST_TIMED_OUT, and a broken or timed-out
//!   connection, every `retry_backoff_ms` until `default_api_timeout_ms` has passed; then the
//!   last error is returned. Group errors (above) are never retried.
//! - Async commits go out at once, in call order, on the coordinator connection; `close` waits
//!   for them (no retries, C7).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    offset_commit_request, offset_fetch_request, ApiKey, GroupId, OffsetCommitRequest, OffsetFetchRequest, TopicName,
};
use tokio::sync::oneshot;

use super::group::Shared;
use super::{s, Consumer};
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::TopicPartition;

fn topic_name(t: &str) -> TopicName {
    TopicName(s(t))
}

/// Committed offsets of `group` for `partitions` (-1 where none).
pub(crate) async fn fetch_committed(
    coordinator: &Connection,
    group: &str,
    partitions: &[TopicPartition],
) -> Result<BTreeMap<TopicPartition, i64>> {
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        topics.entry(tp.topic.as_str()).or_default().push(tp.partition);
    }
    let request = OffsetFetchRequest::default().with_group_id(GroupId(s(group))).with_topics(Some(
        topics
            .into_iter()
            .map(|(t, ps)| {
                offset_fetch_request::OffsetFetchRequestTopic::default()
                    .with_name(topic_name(t))
                    .with_partition_indexes(ps)
            })
            .collect(),
    ));
    let response = coordinator.send(&request).await?;
    if let Some(e) = Error::from_code(response.error_code, || format!("OffsetFetch for group {group}"), None) {
        return Err(e);
    }
    let mut out = BTreeMap::new();
    for t in &response.topics {
        for p in &t.partitions {
            if let Some(e) = Error::from_code(
                p.error_code,
                || format!("OffsetFetch for {}-{}", t.name.0.as_str(), p.partition_index),
                None,
            ) {
                return Err(e);
            }
            out.insert(TopicPartition::new(t.name.0.as_str(), p.partition_index), p.committed_offset);
        }
    }
    Ok(out)
}

/// Sends one OffsetCommit and interprets the answer (see the module invariants).
async fn send_commit(conn: &Connection, request: OffsetCommitRequest, group: &str, shared: &Shared) -> Result<()> {
    interpret(conn.send(&request).await?, group, shared)
}

/// The result of [`Consumer::commit_async`]; the commit proceeds whether or not this is awaited.
pub struct CommitFuture {
    rx: oneshot::Receiver<Result<()>>,
}

impl Future for CommitFuture {
    type Output = Result<()>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        Pin::new(&mut self.rx).poll(cx).map(|r| r.unwrap_or(Err(Error::Closed)))
    }
}

impl Consumer {
    fn commit_request(&self, offsets: &BTreeMap<TopicPartition, i64>) -> Result<OffsetCommitRequest> {
        let group = self.group()?;
        let (member_id, generation) = if self.subscription.is_some() {
            let m = self.shared.lock();
            (m.member_id.clone(), m.generation_id)
        } else {
            (String::new(), -1)
        };
        if self.subscription.is_some() && (member_id.is_empty() || generation < 0) {
            return Err(Error::Kafka {
                context: format!(
                    "commit for group {group}: this member is not in a generation of the group (it left after \
                     max_poll_interval_ms without a poll, or lost its session); poll to rejoin"
                ),
                error: ResponseError::UnknownMemberId,
                message: None,
            });
        }
        let mut topics: BTreeMap<&str, Vec<offset_commit_request::OffsetCommitRequestPartition>> = BTreeMap::new();
        for (tp, &offset) in offsets {
            topics.entry(tp.topic.as_str()).or_default().push(
                offset_commit_request::OffsetCommitRequestPartition::default()
                    .with_partition_index(tp.partition)
                    .with_committed_offset(offset)
                    .with_committed_leader_epoch(-1),
            );
        }
        let instance_id = match (&self.subscription, &self.config.group_instance_id, &self.coordinator) {
            (Some(_), Some(id), Some(conn)) if conn.version(ApiKey::OffsetCommit).unwrap_or(0) >= 7 => Some(s(id)),
            _ => None,
        };
        Ok(OffsetCommitRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(s(&member_id))
            .with_group_instance_id(instance_id)
            .with_retention_time_ms(-1)
            .with_topics(
                topics
                    .into_iter()
                    .map(|(t, ps)| {
                        offset_commit_request::OffsetCommitRequestTopic::default()
                            .with_name(topic_name(t))
                            .with_partitions(ps)
                    })
                    .collect(),
            ))
    }

    /// Commits the current positions (the offsets after the records poll has returned).
    pub async fn commit_sync(&mut self) -> Result<()> {
        let offsets = self.positions.clone();
        self.commit_offsets(&offsets).await
    }

    /// Commits explicit offsets (each the offset of the next record to read).
    pub async fn commit_offsets(&mut self, offsets: &BTreeMap<TopicPartition, i64>) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let group = self.group()?.to_string();
        let deadline = Instant::now() + Duration::from_millis(self.config.default_api_timeout_ms);
        loop {
            let result = self.commit_once(offsets, &group).await;
            let Err(e) = result else { return Ok(()) };
            if !commit_retriable(&e) {
                return Err(e);
            }
            if coordinator_stale(&e) {
                self.coordinator = None;
            }
            let backoff = Duration::from_millis(self.config.retry_backoff_ms);
            if Instant::now() + backoff >= deadline {
                return Err(e);
            }
            tracing::debug!(group, error = %e, "commit failed; retrying");
            tokio::time::sleep(backoff).await;
        }
    }

    /// One OffsetCommit to the group's coordinator (looked up when unknown).
    async fn commit_once(&mut self, offsets: &BTreeMap<TopicPartition, i64>, group: &str) -> Result<()> {
        // The coordinator first: the request's instance id depends on its version.
        let conn = self.coordinator().await?;
        let request = self.commit_request(offsets)?;
        send_commit(&conn, request, group, &self.shared).await
    }

    /// Commits the current positions without waiting; see [`commit_offsets_async`](Self::commit_offsets_async).
    pub fn commit_async(&mut self) -> CommitFuture {
        let offsets = self.positions.clone();
        self.commit_offsets_async(offsets)
    }

    /// Sends an OffsetCommit now and returns a future of its outcome (SEMANTICS C7: no
    /// retries). The request leaves at once when the coordinator is known; dropping the future
    /// does not cancel the commit, and `close` waits for it.
    pub fn commit_offsets_async(&mut self, offsets: BTreeMap<TopicPartition, i64>) -> CommitFuture {
        let (tx, rx) = oneshot::channel();
        if offsets.is_empty() {
            let _ = tx.send(Ok(()));
            return CommitFuture { rx };
        }
        let prepared = self.group().map(str::to_string).and_then(|g| Ok((g, self.commit_request(&offsets)?)));
        let (group, request) = match prepared {
            Ok(p) => p,
            Err(e) => {
                let _ = tx.send(Err(e));
                return CommitFuture { rx };
            }
        };
        let shared: Arc<Shared> = self.shared.clone();
        let known = self.coordinator.clone().filter(|c| !c.is_closed());
        // Enqueue on the known coordinator now so async commits keep their call order.
        let enqueued = known.as_ref().map(|c| (c.clone(), c.enqueue(&request)));
        let cluster = self.cluster.clone();
        let handle = tokio::spawn(async move {
            let result = match enqueued {
                Some((_conn, Ok(future))) => match future.wait().await {
                    Ok(response) => interpret(response, &group, &shared),
                    Err(e) => Err(e),
                },
                Some((_, Err(e))) => Err(e),
                None => match super::find_coordinator(&cluster, &group, 0).await {
                    Ok(conn) => send_commit(&conn, request, &group, &shared).await,
                    Err(e) => Err(e),
                },
            };
            let _ = tx.send(result);
        });
        self.async_commits.push(handle);
        CommitFuture { rx }
    }
}

/// Failures a synchronous commit tries again (see the module invariants).
fn commit_retriable(e: &Error) -> bool {
    match e.kafka_error() {
        None => matches!(e, Error::Unreachable { .. } | Error::Disconnected { .. } | Error::Timeout { .. }),
        Some(k) => coordinator_stale(e) || matches!(k, ResponseError::RequestTimedOut),
    }
}

/// The coordinator connection is no use any more: look the coordinator up again.
fn coordinator_stale(e: &Error) -> bool {
    match e.kafka_error() {
        None => true,
        Some(k) => matches!(
            k,
            ResponseError::NotCoordinator
                | ResponseError::CoordinatorNotAvailable
                | ResponseError::CoordinatorLoadInProgress
                | ResponseError::RequestTimedOut
        ),
    }
}

fn interpret(response: kafka_protocol::messages::OffsetCommitResponse, group: &str, shared: &Shared) -> Result<()> {
    for t in &response.topics {
        for p in &t.partitions {
            if let Some(e) = Error::from_code(
                p.error_code,
                || format!("OffsetCommit of {}-{} for group {group}", t.name.0.as_str(), p.partition_index),
                None,
            ) {
                match e.kafka_error() {
                    Some(ResponseError::RebalanceInProgress) => {
                        shared.request_rejoin();
                        return Err(Error::RebalanceInProgress { context: format!("OffsetCommit for group {group}") });
                    }
                    Some(ResponseError::IllegalGeneration) => shared.lose_generation(false),
                    Some(ResponseError::UnknownMemberId) => shared.lose_generation(true),
                    Some(ResponseError::FencedInstanceId) => shared.set_fatal(ResponseError::FencedInstanceId),
                    _ => {}
                }
                return Err(e);
            }
        }
    }
    Ok(())
}
