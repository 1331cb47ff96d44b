//! Group membership on the classic protocol: FindCoordinator, JoinGroup (KIP-394's
//! MEMBER_ID_REQUIRED; `group_instance_id` for static members, KIP-345), the leader's
//! assignment, SyncGroup, LeaveGroup, and the heartbeat task.
//!
//! **Invariants:**
//! - Requests carry only fields of the version negotiated on the coordinator connection
//!   (LeaveGroup: `member_id` up to v2, `members[]` from v3), so they always encode.
//! - The heartbeat task heartbeats only while the member is in a completed generation
//!   (`stable`), and never calls the rebalance listener: it only sets flags (`rejoin_needed`,
//!   `lost`, a fatal error) that the next `poll` acts on.
//! - When `poll` has not been called for `max_poll_interval_ms` while the member has a
//!   generation (also when a rebalance waits for it, but not while `poll` itself runs a join),
//!   the heartbeat task leaves the group (LeaveGroup for dynamic members only, SEMANTICS
//!   C4/G22), resets the generation and stops; the next `poll` reports the partitions lost and
//!   rejoins.
//! - The leader of a generation watches the partition counts its assignment was made with: every
//!   `metadata_max_age_ms` it re-reads them and asks for a rejoin once one changed (partitions
//!   added to a subscribed topic get owners, as with Java's leader); the watch stops at the next
//!   rejoin and on close. Other members do not watch (the leader's rejoin reaches them).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    join_group_request, leave_group_request, sync_group_request, ApiKey, FindCoordinatorRequest, GroupId,
    HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, SyncGroupRequest,
};
use tokio::sync::Notify;

use super::{s, Consumer};
use crate::assignor::{LastAssignment, Subscription};
use crate::cluster::Cluster;
use crate::connection::Connection;
use crate::consumer_protocol::{ConsumerProtocolAssignment, ConsumerProtocolSubscription, PROTOCOL_TYPE, VERSION_MAX};
use crate::error::{Error, Result};
use crate::{Bytes, TopicPartition};

/// Membership shared with the heartbeat task.
#[derive(Debug)]
pub(super) struct Membership {
    pub member_id: String,
    pub generation_id: i32,
    /// True between a completed SyncGroup and the next rejoin.
    pub stable: bool,
}

/// State shared between the consumer and its heartbeat task.
pub(super) struct Shared {
    membership: Mutex<Membership>,
    pub rejoin_needed: AtomicBool,
    pub rejoin_notify: Notify,
    /// The generation was lost (not given up in a rebalance): the next rejoin calls
    /// `on_partitions_lost`.
    pub lost: AtomicBool,
    pub closed: AtomicBool,
    /// True while `poll` runs a JoinGroup/SyncGroup round (which may take up to the rebalance
    /// timeout): the poll interval is not checked then.
    pub joining: AtomicBool,
    last_poll: Mutex<Instant>,
    fatal: Mutex<Option<ResponseError>>,
}

impl Shared {
    pub fn new() -> Shared {
        Shared {
            membership: Mutex::new(Membership { member_id: String::new(), generation_id: -1, stable: false }),
            rejoin_needed: AtomicBool::new(false),
            rejoin_notify: Notify::new(),
            lost: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            joining: AtomicBool::new(false),
            last_poll: Mutex::new(Instant::now()),
            fatal: Mutex::new(None),
        }
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, Membership> {
        self.membership.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn request_rejoin(&self) {
        self.lock().stable = false;
        self.rejoin_needed.store(true, Ordering::Release);
        self.rejoin_notify.notify_waiters();
    }

    /// The member is out of its generation (and, with `forget_member_id`, out of the group).
    pub fn lose_generation(&self, forget_member_id: bool) {
        {
            let mut m = self.lock();
            m.stable = false;
            m.generation_id = -1;
            if forget_member_id {
                m.member_id.clear();
            }
        }
        self.lost.store(true, Ordering::Release);
        self.rejoin_needed.store(true, Ordering::Release);
        self.rejoin_notify.notify_waiters();
    }

    pub fn set_fatal(&self, error: ResponseError) {
        *self.fatal.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
        self.lose_generation(true);
    }

    pub fn check_fatal(&self) -> Result<()> {
        match *self.fatal.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(error) => Err(Error::Kafka {
                context: "group membership (another consumer runs with the same group_instance_id)".into(),
                error,
                message: None,
            }),
            None => Ok(()),
        }
    }

    pub fn polled(&self) {
        *self.last_poll.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    fn since_poll(&self) -> Duration {
        self.last_poll.lock().unwrap_or_else(|e| e.into_inner()).elapsed()
    }
}

/// Finds the coordinator of `group` and opens a dedicated connection to it (group requests such
/// as JoinGroup park for a long time and must not hold up other traffic).
pub(crate) async fn find_coordinator(cluster: &Cluster, group: &str, request_timeout_ms: u64) -> Result<Connection> {
    let mut attempt = 0u32;
    loop {
        let conn = cluster.any_connection().await?;
        let response = conn.send(&FindCoordinatorRequest::default().with_key(s(group)).with_key_type(0)).await?;
        match ResponseError::try_from_code(response.error_code) {
            None => {
                let addr = format!("{}:{}", response.host.as_str(), response.port);
                let mut cc = cluster.config().connection.clone();
                cc.request_timeout_ms = cc.request_timeout_ms.max(request_timeout_ms);
                return Connection::connect(&addr, cc).await;
            }
            Some(e) if e.is_retriable() && attempt < 50 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Some(error) => {
                return Err(Error::Kafka {
                    context: format!("FindCoordinator for group {group}"),
                    error,
                    message: response.error_message.map(|m| m.to_string()),
                });
            }
        }
    }
}

/// A LeaveGroup request for one member at `version`: `member_id` up to v2, `members[]` from v3
/// (setting both makes the request unencodable at every version).
pub(super) fn leave_request(version: i16, group: &str, member_id: &str, reason: &str) -> LeaveGroupRequest {
    let request = LeaveGroupRequest::default().with_group_id(GroupId(s(group)));
    if version >= 3 {
        let mut member = leave_group_request::MemberIdentity::default().with_member_id(s(member_id));
        if version >= 5 {
            member = member.with_reason(Some(s(reason)));
        }
        request.with_members(vec![member])
    } else {
        request.with_member_id(s(member_id))
    }
}

/// Sends LeaveGroup for a dynamic member and waits for the answer.
pub(super) async fn leave_group(conn: &Connection, group: &str, member_id: &str, reason: &str) -> Result<()> {
    let version = conn.version(ApiKey::LeaveGroup)?;
    let response = conn.enqueue_at(&leave_request(version, group, member_id, reason), version)?.wait().await?;
    let code = if response.error_code != 0 {
        response.error_code
    } else {
        response.members.iter().map(|m| m.error_code).find(|c| *c != 0).unwrap_or(0)
    };
    match Error::from_code(code, || format!("LeaveGroup of group {group}"), None) {
        // Already gone (e.g. expired): nothing left to leave.
        Some(e) if e.kafka_error() == Some(ResponseError::UnknownMemberId) => Ok(()),
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn instance(conn: &Connection, key: ApiKey, min_version: i16, instance_id: Option<&str>) -> Result<Option<String>> {
    match instance_id {
        None => Ok(None),
        Some(id) if conn.version(key)? >= min_version => Ok(Some(id.to_string())),
        Some(_) => Err(Error::Config(format!(
            "group_instance_id needs {key:?} v{min_version}+, which broker {} does not serve",
            conn.addr()
        ))),
    }
}

impl Consumer {
    pub(super) fn protocols(&self, topics: &[String]) -> Result<Vec<join_group_request::JoinGroupRequestProtocol>> {
        let last = self.last_assignment.as_ref().map(|(p, g)| LastAssignment { partitions: p, generation_id: *g });
        let generation = self.shared.lock().generation_id;
        let mut out = Vec::new();
        for a in &self.assignors {
            let user_data =
                a.subscription_user_data(last).map_err(|e| Error::Config(format!("assignor {}: {e}", a.name())))?;
            // As Java: every subscription lists what the member owns while it joins (nothing
            // on eager rebalances, which revoke first) and its current generation.
            let sub = Subscription {
                user_data,
                owned_partitions: self.assignment.clone(),
                generation_id: (generation >= 0).then_some(generation),
                ..Subscription::new(topics.iter().cloned())
            };
            let bytes =
                sub.to_protocol().encode(VERSION_MAX).map_err(|e| Error::Config(format!("subscription: {e}")))?;
            out.push(
                join_group_request::JoinGroupRequestProtocol::default()
                    .with_name(s(a.name()))
                    .with_metadata(Bytes::from(bytes)),
            );
        }
        Ok(out)
    }

    /// JoinGroup then SyncGroup; returns the assignment received and its generation.
    pub(super) async fn join_and_sync(&mut self) -> Result<(Vec<TopicPartition>, i32)> {
        let group = self.group()?.to_string();
        let topics = self.subscription.clone().unwrap_or_default();
        let conn = self.coordinator().await?;
        let instance_id = self.config.group_instance_id.clone();
        let join_instance = instance(&conn, ApiKey::JoinGroup, 5, instance_id.as_deref())?;
        let protocols = self.protocols(&topics)?;
        let mut member_id = self.shared.lock().member_id.clone();
        let join = loop {
            let request = JoinGroupRequest::default()
                .with_group_id(GroupId(s(&group)))
                .with_session_timeout_ms(self.config.session_timeout_ms)
                .with_rebalance_timeout_ms(self.config.max_poll_interval_ms)
                .with_member_id(s(&member_id))
                .with_group_instance_id(join_instance.as_deref().map(s))
                .with_protocol_type(s(PROTOCOL_TYPE))
                .with_protocols(protocols.clone());
            let response = conn.send(&request).await?;
            match ResponseError::try_from_code(response.error_code) {
                None => break response,
                Some(ResponseError::MemberIdRequired) => {
                    // KIP-394: the broker named us; join again with that id.
                    member_id = response.member_id.to_string();
                    self.shared.lock().member_id = member_id.clone();
                }
                Some(ResponseError::FencedInstanceId) => {
                    self.shared.set_fatal(ResponseError::FencedInstanceId);
                    return Err(Error::Kafka {
                        context: format!("JoinGroup of group {group}"),
                        error: ResponseError::FencedInstanceId,
                        message: None,
                    });
                }
                Some(error) => {
                    return Err(Error::Kafka { context: format!("JoinGroup of group {group}"), error, message: None });
                }
            }
        };
        member_id = join.member_id.to_string();
        let generation = join.generation_id;
        {
            let mut m = self.shared.lock();
            m.member_id = member_id.clone();
            m.generation_id = generation;
        }
        let protocol_name = join.protocol_name.as_ref().map(|p| p.to_string()).unwrap_or_default();
        let mut assignments = Vec::new();
        self.assigned_metadata = None;
        if join.leader.as_str() == member_id {
            let (a, partitions_per_topic) = self.lead(&conn, &protocol_name, &join.members).await?;
            assignments = a;
            self.assigned_metadata = Some(partitions_per_topic);
        }
        let sync_instance = instance(&conn, ApiKey::SyncGroup, 3, instance_id.as_deref())?;
        let request = SyncGroupRequest::default()
            .with_group_id(GroupId(s(&group)))
            .with_generation_id(generation)
            .with_member_id(s(&member_id))
            .with_group_instance_id(sync_instance.as_deref().map(s))
            .with_protocol_type(Some(s(PROTOCOL_TYPE)))
            .with_protocol_name(Some(s(&protocol_name)))
            .with_assignments(assignments);
        let response = conn.send(&request).await?;
        if let Some(e) = Error::from_code(response.error_code, || format!("SyncGroup of group {group}"), None) {
            if e.kafka_error() == Some(ResponseError::FencedInstanceId) {
                self.shared.set_fatal(ResponseError::FencedInstanceId);
            }
            return Err(e);
        }
        let mut assignment = if response.assignment.is_empty() {
            Vec::new()
        } else {
            ConsumerProtocolAssignment::decode(&response.assignment)
                .map_err(|e| Error::Protocol {
                    addr: conn.addr().to_string(),
                    api: "SyncGroup",
                    reason: format!("bad assignment: {e}"),
                })?
                .partitions()
        };
        assignment.sort();
        assignment.dedup();
        tracing::debug!(%member_id, generation, ?assignment, "joined group {group}");
        self.last_assignment = Some((assignment.clone(), generation));
        self.shared.lock().stable = true;
        Ok((assignment, generation))
    }

    /// The leader's part: decode every subscription, run the chosen assignor. Returns the
    /// assignments and the partition count of each topic they were made with.
    async fn lead(
        &self,
        conn: &Connection,
        protocol_name: &str,
        members: &[kafka_protocol::messages::join_group_response::JoinGroupResponseMember],
    ) -> Result<(Vec<sync_group_request::SyncGroupRequestAssignment>, BTreeMap<String, i32>)> {
        let assignor = self.assignors.iter().find(|a| a.name() == protocol_name).ok_or_else(|| {
            Error::Config(format!("the group chose assignor {protocol_name:?}, which this consumer lacks"))
        })?;
        let mut subscriptions = BTreeMap::new();
        let mut version = VERSION_MAX;
        let mut all_topics: Vec<String> = Vec::new();
        for m in members {
            let (v, sub) =
                ConsumerProtocolSubscription::decode_with_version(&m.metadata).map_err(|e| Error::Protocol {
                    addr: conn.addr().to_string(),
                    api: "JoinGroup",
                    reason: format!("member {} sent a bad subscription: {e}", m.member_id.as_str()),
                })?;
            version = version.min(v.max(0));
            all_topics.extend(sub.topics.iter().cloned());
            subscriptions.insert(
                m.member_id.to_string(),
                Subscription::from_protocol(sub, m.group_instance_id.as_ref().map(|i| i.to_string())),
            );
        }
        all_topics.sort();
        all_topics.dedup();
        let partitions_per_topic = partition_counts(&self.cluster, &all_topics).await?;
        let result = assignor.assign(&partitions_per_topic, &subscriptions);
        let mut out = Vec::new();
        for (member, partitions) in result {
            let bytes = ConsumerProtocolAssignment::from_partitions(&partitions, None)
                .encode(version)
                .map_err(|e| Error::Config(format!("assignment: {e}")))?;
            out.push(
                sync_group_request::SyncGroupRequestAssignment::default()
                    .with_member_id(s(&member))
                    .with_assignment(Bytes::from(bytes)),
            );
        }
        Ok((out, partitions_per_topic))
    }

    /// As group leader, watches the metadata the assignment was made with (see
    /// [`watch_partition_counts`]); any watch of an earlier generation stops.
    pub(super) fn start_metadata_watch(&mut self) {
        self.stop_metadata_watch();
        let Some(assigned) = self.assigned_metadata.clone() else { return };
        let interval = Duration::from_millis(self.config.metadata_max_age_ms.max(1));
        let task = watch_partition_counts(self.cluster.clone(), self.shared.clone(), assigned, interval);
        self.metadata_watch = Some(tokio::spawn(task));
    }

    pub(super) fn stop_metadata_watch(&mut self) {
        if let Some(h) = self.metadata_watch.take() {
            h.abort();
        }
    }

    pub(super) fn start_heartbeat(&mut self) {
        if self.heartbeat.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        let (Some(conn), Some(group)) = (self.coordinator.clone(), self.config.group_id.clone()) else { return };
        let instance_id = match instance(&conn, ApiKey::Heartbeat, 3, self.config.group_instance_id.as_deref()) {
            Ok(i) => i,
            Err(e) => {
                tracing::warn!(error = %e, "no heartbeats");
                return;
            }
        };
        let task = Heartbeat {
            conn,
            group,
            instance_id,
            shared: self.shared.clone(),
            interval: Duration::from_millis(self.config.heartbeat_interval_ms.max(1)),
            max_poll_interval: Duration::from_millis(u64::try_from(self.config.max_poll_interval_ms).unwrap_or(0)),
        };
        self.heartbeat = Some(tokio::spawn(task.run()));
    }
}

/// The partition count of each of `topics` that exists (Metadata, which also refreshes the cache).
async fn partition_counts(cluster: &Cluster, topics: &[String]) -> Result<BTreeMap<String, i32>> {
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    let (metas, _) = cluster.fetch_metadata(Some(&refs)).await?;
    Ok(metas.iter().map(|t| (t.name.clone(), t.num_partitions())).collect())
}

/// The leader's metadata watch (Java's leader compares its assignment snapshot with the metadata
/// at every `metadata.max.age.ms` refresh): every `interval`, re-reads the subscribed topics;
/// once a partition count differs from the one the assignment was made with (partitions added,
/// a topic created or deleted), asks for a rejoin and stops. Failed look-ups are tried again at
/// the next interval.
async fn watch_partition_counts(
    cluster: Arc<Cluster>,
    shared: Arc<Shared>,
    assigned: BTreeMap<String, i32>,
    interval: Duration,
) {
    let topics: Vec<String> = assigned.keys().cloned().collect();
    loop {
        tokio::time::sleep(interval).await;
        if shared.closed.load(Ordering::Acquire) {
            return;
        }
        match partition_counts(&cluster, &topics).await {
            Ok(now) if now != assigned => {
                tracing::info!(?assigned, ?now, "subscribed topics' partitions changed; rejoining the group");
                shared.request_rejoin();
                return;
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "metadata refresh of the subscribed topics failed"),
        }
    }
}

struct Heartbeat {
    conn: Connection,
    group: String,
    instance_id: Option<String>,
    shared: Arc<Shared>,
    interval: Duration,
    max_poll_interval: Duration,
}

impl Heartbeat {
    async fn run(self) {
        let shared = &self.shared;
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            if shared.closed.load(Ordering::Acquire) {
                return;
            }
            if self.conn.is_closed() {
                shared.request_rejoin();
                return;
            }
            let (member_id, generation, stable) = {
                let m = shared.lock();
                (m.member_id.clone(), m.generation_id, m.stable)
            };
            if member_id.is_empty() || generation < 0 || shared.joining.load(Ordering::Acquire) {
                continue;
            }
            // Checked also while a rebalance waits for this member (not `stable`): a member that
            // does not poll must not hold the group up beyond the poll interval.
            if shared.since_poll() > self.max_poll_interval {
                // C4: the application stopped polling; give the partitions to someone else.
                tracing::warn!(
                    group = %self.group,
                    "poll was not called within max_poll_interval_ms; leaving the group"
                );
                if self.instance_id.is_none() {
                    let reason = "consumer poll timeout has expired";
                    if let Err(e) = leave_group(&self.conn, &self.group, &member_id, reason).await {
                        tracing::debug!(error = %e, "LeaveGroup after the poll timeout failed");
                    }
                }
                shared.lose_generation(self.instance_id.is_none());
                return;
            }
            if !stable {
                continue;
            }
            let request = HeartbeatRequest::default()
                .with_group_id(GroupId(s(&self.group)))
                .with_generation_id(generation)
                .with_member_id(s(&member_id))
                .with_group_instance_id(self.instance_id.as_deref().map(s));
            match self.conn.send(&request).await {
                Ok(r) => match ResponseError::try_from_code(r.error_code) {
                    None => {}
                    Some(ResponseError::RebalanceInProgress) => shared.request_rejoin(),
                    Some(ResponseError::IllegalGeneration) => shared.lose_generation(false),
                    Some(ResponseError::UnknownMemberId) => shared.lose_generation(true),
                    Some(ResponseError::FencedInstanceId) => {
                        shared.set_fatal(ResponseError::FencedInstanceId);
                        return;
                    }
                    Some(e) => tracing::debug!(error = ?e, "heartbeat error"),
                },
                Err(e) => {
                    tracing::debug!(error = %e, "heartbeat failed");
                    shared.request_rejoin();
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::{Decodable, Encodable};

    /// The close-time LeaveGroup encodes at every version and names the member where that
    /// version carries it (it once set both fields and never left the client).
    #[test]
    fn leave_request_encodes_at_every_version() {
        for version in 0..=5 {
            let request = leave_request(version, "g", "m-1", "closing");
            let mut buf = bytes::BytesMut::new();
            request.encode(&mut buf, version).unwrap_or_else(|e| panic!("v{version}: {e}"));
            let back = LeaveGroupRequest::decode(&mut buf.freeze(), version).expect("decodes");
            if version >= 3 {
                assert_eq!(back.members.len(), 1, "v{version}");
                assert_eq!(back.members[0].member_id.as_str(), "m-1");
            } else {
                assert_eq!(back.member_id.as_str(), "m-1", "v{version}");
            }
        }
    }
}
