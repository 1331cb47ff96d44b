//! An async consumer: `assign` without a group, or `subscribe` in a group with the classic
//! protocol (FindCoordinator, JoinGroup with KIP-394's MEMBER_ID_REQUIRED, the leader runs the
//! assignor, SyncGroup, background heartbeats, rejoin on REBALANCE_IN_PROGRESS,
//! ILLEGAL_GENERATION and UNKNOWN_MEMBER_ID).
//!
//! Rebalances are eager: before rejoining, the member commits (when auto-commit is on) and
//! gives up every partition. Cooperative rebalancing is not implemented yet.
//!
//! `poll(timeout)` returns at once when records are buffered; otherwise it fetches with the
//! broker's `max_wait_ms` (so it parks on the broker, never spins) until records come or the
//! timeout passes.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    fetch_request, join_group_request, leave_group_request, offset_commit_request, offset_fetch_request,
    sync_group_request, BrokerId, FetchRequest, FindCoordinatorRequest, GroupId, HeartbeatRequest, JoinGroupRequest,
    LeaveGroupRequest, OffsetCommitRequest, OffsetFetchRequest, SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::Notify;

use crate::admin::{Admin, OffsetSpec};
use crate::assignor::{self, Assignor, LastAssignment, Subscription};
use crate::cluster::{ClientConfig, Cluster};
use crate::connection::Connection;
use crate::consumer_protocol::{ConsumerProtocolAssignment, ConsumerProtocolSubscription, PROTOCOL_TYPE, VERSION_MAX};
use crate::error::{Error, Result};
use crate::{Bytes, TopicPartition};

/// Where to start when a partition has no committed offset (or the position is out of range).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoOffsetReset {
    Earliest,
    Latest,
    /// Fail instead.
    None,
}

impl std::str::FromStr for AutoOffsetReset {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "earliest" => Ok(AutoOffsetReset::Earliest),
            "latest" => Ok(AutoOffsetReset::Latest),
            "none" => Ok(AutoOffsetReset::None),
            other => Err(Error::Config(format!("auto_offset_reset {other:?}: use earliest, latest or none"))),
        }
    }
}

/// Consumer settings.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub client: ClientConfig,
    /// Needed by `subscribe` and by commits.
    pub group_id: Option<String>,
    pub auto_offset_reset: AutoOffsetReset,
    pub enable_auto_commit: bool,
    pub auto_commit_interval_ms: u64,
    pub session_timeout_ms: i32,
    pub heartbeat_interval_ms: u64,
    /// Also the rebalance timeout sent in JoinGroup.
    pub max_poll_interval_ms: i32,
    pub max_poll_records: usize,
    /// Assignor wire names in order of preference (`range`, `roundrobin`, `sticky`,
    /// `cooperative-sticky`).
    pub assignors: Vec<String>,
    /// Longest a single Fetch parks on the broker.
    pub fetch_max_wait_ms: u64,
    pub fetch_max_bytes: i32,
    pub max_partition_fetch_bytes: i32,
}

impl ConsumerConfig {
    pub fn new(bootstrap_servers: impl Into<String>) -> ConsumerConfig {
        let mut client = ClientConfig::new(bootstrap_servers);
        client.allow_auto_topic_creation = false;
        ConsumerConfig {
            client,
            group_id: None,
            auto_offset_reset: AutoOffsetReset::Latest,
            enable_auto_commit: true,
            auto_commit_interval_ms: 5_000,
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 3_000,
            max_poll_interval_ms: 300_000,
            max_poll_records: 500,
            assignors: vec!["range".into()],
            fetch_max_wait_ms: 500,
            fetch_max_bytes: 50 * 1024 * 1024,
            max_partition_fetch_bytes: 1024 * 1024,
        }
    }

    pub fn group(mut self, group_id: impl Into<String>) -> ConsumerConfig {
        self.group_id = Some(group_id.into());
        self
    }
}

/// A record read from a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// Membership shared with the heartbeat task.
#[derive(Debug, Default)]
struct Membership {
    member_id: String,
    generation_id: i32,
    /// True between a completed SyncGroup and the next rejoin.
    stable: bool,
}

struct Shared {
    membership: Mutex<Membership>,
    rejoin_needed: AtomicBool,
    rejoin_notify: Notify,
    closed: AtomicBool,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Membership> {
        self.membership.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn request_rejoin(&self, forget_member_id: bool) {
        {
            let mut m = self.lock();
            m.stable = false;
            if forget_member_id {
                m.member_id.clear();
                m.generation_id = -1;
            }
        }
        self.rejoin_needed.store(true, Ordering::Release);
        self.rejoin_notify.notify_waiters();
    }
}

/// The consumer.
pub struct Consumer {
    config: ConsumerConfig,
    cluster: Arc<Cluster>,
    admin: Admin,
    assignors: Vec<Box<dyn Assignor>>,
    shared: Arc<Shared>,
    coordinator: Option<Connection>,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
    /// `Some` after `subscribe`.
    subscription: Option<Vec<String>>,
    assignment: Vec<TopicPartition>,
    last_assignment: Option<(Vec<TopicPartition>, i32)>,
    /// Next offset to read (and to commit) per assigned partition.
    positions: BTreeMap<TopicPartition, i64>,
    buffer: VecDeque<ConsumerRecord>,
    next_auto_commit: Instant,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("group_id", &self.config.group_id)
            .field("assignment", &self.assignment)
            .finish()
    }
}

fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
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

impl Consumer {
    /// Connects to the cluster. Nothing is read until `assign` or `subscribe`.
    pub async fn new(config: ConsumerConfig) -> Result<Consumer> {
        let mut assignors = Vec::new();
        for name in &config.assignors {
            assignors.push(assignor::builtin(name).ok_or_else(|| {
                Error::Config(format!("unknown assignor {name:?}; use range, roundrobin, sticky or cooperative-sticky"))
            })?);
        }
        if assignors.is_empty() {
            return Err(Error::Config("no assignors configured".into()));
        }
        let mut client = config.client.clone();
        client.allow_auto_topic_creation = false;
        let cluster = Cluster::connect(client).await?;
        let admin = Admin::from_cluster(cluster.clone());
        Ok(Consumer {
            next_auto_commit: Instant::now() + Duration::from_millis(config.auto_commit_interval_ms),
            config,
            cluster,
            admin,
            assignors,
            shared: Arc::new(Shared {
                membership: Mutex::new(Membership { member_id: String::new(), generation_id: -1, stable: false }),
                rejoin_needed: AtomicBool::new(false),
                rejoin_notify: Notify::new(),
                closed: AtomicBool::new(false),
            }),
            coordinator: None,
            heartbeat: None,
            subscription: None,
            assignment: Vec::new(),
            last_assignment: None,
            positions: BTreeMap::new(),
            buffer: VecDeque::new(),
        })
    }

    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// Reads exactly these partitions, without group membership. Positions come from the
    /// group's committed offsets when a `group_id` is configured, else from `auto_offset_reset`.
    pub async fn assign(&mut self, partitions: Vec<TopicPartition>) -> Result<()> {
        if self.subscription.is_some() {
            return Err(Error::Config("assign after subscribe: a consumer either subscribes or assigns".into()));
        }
        self.buffer.clear();
        self.positions.clear();
        self.assignment = partitions;
        self.init_positions().await
    }

    /// Joins the group and reads the partitions it assigns. Needs `group_id`.
    pub async fn subscribe(&mut self, topics: Vec<String>) -> Result<()> {
        if self.config.group_id.is_none() {
            return Err(Error::Config("subscribe needs a group_id".into()));
        }
        if !self.assignment.is_empty() && self.subscription.is_none() {
            return Err(Error::Config("subscribe after assign: a consumer either subscribes or assigns".into()));
        }
        self.subscription = Some(topics);
        self.shared.request_rejoin(false);
        Ok(())
    }

    /// Caps how many records the next polls return.
    pub fn set_max_poll_records(&mut self, n: usize) {
        self.config.max_poll_records = n.max(1);
    }

    /// The partitions currently assigned.
    pub fn assignment(&self) -> &[TopicPartition] {
        &self.assignment
    }

    /// The next offset to be returned for `tp`.
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.positions.get(tp).copied()
    }

    /// The member id in the group (empty before joining).
    pub fn member_id(&self) -> String {
        self.shared.lock().member_id.clone()
    }

    /// The generation of the group (-1 before joining).
    pub fn generation_id(&self) -> i32 {
        self.shared.lock().generation_id
    }

    fn group(&self) -> Result<&str> {
        self.config.group_id.as_deref().ok_or_else(|| Error::Config("committing needs a group_id".into()))
    }

    async fn coordinator(&mut self) -> Result<Connection> {
        if let Some(c) = &self.coordinator {
            if !c.is_closed() {
                return Ok(c.clone());
            }
        }
        let group = self.group()?.to_string();
        let timeout = u64::try_from(self.config.max_poll_interval_ms).unwrap_or(300_000) + 5_000;
        let conn = find_coordinator(&self.cluster, &group, timeout).await?;
        self.coordinator = Some(conn.clone());
        Ok(conn)
    }

    /// Committed offsets of this consumer's group.
    pub async fn committed(&mut self, partitions: &[TopicPartition]) -> Result<BTreeMap<TopicPartition, i64>> {
        let group = self.group()?.to_string();
        let conn = self.coordinator().await?;
        fetch_committed(&conn, &group, partitions).await
    }

    async fn init_positions(&mut self) -> Result<()> {
        let missing: Vec<TopicPartition> =
            self.assignment.iter().filter(|tp| !self.positions.contains_key(*tp)).cloned().collect();
        if missing.is_empty() {
            return Ok(());
        }
        let mut need_reset = Vec::new();
        if self.config.group_id.is_some() {
            let committed = self.committed(&missing).await?;
            for tp in missing {
                match committed.get(&tp) {
                    Some(&o) if o >= 0 => {
                        self.positions.insert(tp, o);
                    }
                    _ => need_reset.push(tp),
                }
            }
        } else {
            need_reset = missing;
        }
        self.reset_positions(&need_reset).await
    }

    async fn reset_positions(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        if partitions.is_empty() {
            return Ok(());
        }
        let spec = match self.config.auto_offset_reset {
            AutoOffsetReset::Earliest => OffsetSpec::Earliest,
            AutoOffsetReset::Latest => OffsetSpec::Latest,
            AutoOffsetReset::None => {
                return Err(Error::Config(format!(
                    "no committed offset for {} and auto_offset_reset is none; commit or seek first, or use earliest/latest",
                    partitions.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
                )));
            }
        };
        for (tp, o) in self.admin.list_offsets(partitions, spec).await? {
            self.positions.insert(tp, o.offset);
        }
        Ok(())
    }

    /// Moves the position of `tp`; buffered records of it are dropped.
    pub fn seek(&mut self, tp: &TopicPartition, offset: i64) {
        self.buffer.retain(|r| !(r.topic == tp.topic && r.partition == tp.partition));
        self.positions.insert(tp.clone(), offset);
    }

    /// Records, up to `max_poll_records`: at once when some are buffered, otherwise waiting up
    /// to `timeout` for them. Runs group duties (rejoin, auto-commit) as Kafka's poll does.
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        let mut deadline = Instant::now() + timeout;
        self.maybe_auto_commit().await?;
        loop {
            if self.subscription.is_some() && self.shared.rejoin_needed.load(Ordering::Acquire) {
                self.rejoin().await?;
                // The wait for records starts once the member has partitions again.
                deadline = deadline.max(Instant::now() + timeout);
            }
            if !self.buffer.is_empty() {
                return Ok(self.drain());
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let remaining = deadline - now;
            if self.assignment.is_empty() {
                // Nothing to read: wait for a rebalance or the timeout, without spinning.
                let notified = self.shared.rejoin_notify.notified();
                if self.shared.rejoin_needed.load(Ordering::Acquire) {
                    continue;
                }
                let _ = tokio::time::timeout(remaining, notified).await;
                continue;
            }
            let wait = remaining.min(Duration::from_millis(self.config.fetch_max_wait_ms));
            self.fetch(wait).await?;
        }
    }

    fn drain(&mut self) -> Vec<ConsumerRecord> {
        let n = self.buffer.len().min(self.config.max_poll_records.max(1));
        let out: Vec<ConsumerRecord> = self.buffer.drain(..n).collect();
        for r in &out {
            self.positions.insert(TopicPartition::new(&r.topic, r.partition), r.offset + 1);
        }
        out
    }

    async fn fetch(&mut self, wait: Duration) -> Result<()> {
        let mut by_leader: BTreeMap<i32, Vec<TopicPartition>> = BTreeMap::new();
        for tp in &self.assignment {
            let (leader, _) = self.cluster.leader(&tp.topic, tp.partition).await?;
            by_leader.entry(leader).or_default().push(tp.clone());
        }
        let mut pending = Vec::new();
        for (leader, tps) in by_leader {
            let mut topics: BTreeMap<&str, Vec<fetch_request::FetchPartition>> = BTreeMap::new();
            for tp in &tps {
                let Some(&offset) = self.positions.get(tp) else { continue };
                topics.entry(tp.topic.as_str()).or_default().push(
                    fetch_request::FetchPartition::default()
                        .with_partition(tp.partition)
                        .with_current_leader_epoch(-1)
                        .with_fetch_offset(offset)
                        .with_last_fetched_epoch(-1)
                        .with_log_start_offset(-1)
                        .with_partition_max_bytes(self.config.max_partition_fetch_bytes),
                );
            }
            let request = FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(i32::try_from(wait.as_millis()).unwrap_or(i32::MAX))
                .with_min_bytes(1)
                .with_max_bytes(self.config.fetch_max_bytes)
                .with_isolation_level(0)
                .with_session_id(0)
                .with_session_epoch(-1)
                .with_topics(
                    topics
                        .into_iter()
                        .map(|(t, ps)| {
                            fetch_request::FetchTopic::default().with_topic(topic_name(t)).with_partitions(ps)
                        })
                        .collect(),
                );
            let conn = self.cluster.connection(leader).await?;
            pending.push((conn.clone(), conn.enqueue(&request)?));
        }
        let mut reset = Vec::new();
        for (conn, future) in pending {
            let response = match future.wait().await {
                Ok(r) => r,
                Err(e) if e.is_retriable() => {
                    for tp in &self.assignment {
                        self.cluster.invalidate(&tp.topic);
                    }
                    tracing::debug!(addr = conn.addr(), error = %e, "fetch failed; retrying");
                    continue;
                }
                Err(e) => return Err(e),
            };
            if let Some(e) = Error::from_code(response.error_code, || "Fetch".into(), None) {
                return Err(e);
            }
            for t in &response.responses {
                let topic = t.topic.0.as_str();
                for p in &t.partitions {
                    let tp = TopicPartition::new(topic, p.partition_index);
                    let Some(&position) = self.positions.get(&tp) else { continue };
                    match ResponseError::try_from_code(p.error_code) {
                        None => {}
                        Some(ResponseError::OffsetOutOfRange) => {
                            reset.push(tp);
                            continue;
                        }
                        Some(error) => {
                            let e = Error::Kafka { context: format!("Fetch from {tp}"), error, message: None };
                            if e.needs_metadata_refresh() || e.is_retriable() {
                                self.cluster.invalidate(topic);
                                continue;
                            }
                            return Err(e);
                        }
                    }
                    let Some(bytes) = &p.records else { continue };
                    let mut rest: &[u8] = bytes;
                    let mut next = position;
                    while let Some(header) = sluice_records::BatchHeader::parse(rest) {
                        let total = header.total_bytes();
                        if total > rest.len() || total < sluice_records::BATCH_HEADER_BYTES {
                            break;
                        }
                        let batch = &rest[..total];
                        rest = &rest[total..];
                        if header.is_control() {
                            next = next.max(header.base_offset + i64::from(header.last_offset_delta) + 1);
                            continue;
                        }
                        let records =
                            sluice_records::records(batch, 64 * 1024 * 1024).map_err(|e| Error::Protocol {
                                addr: conn.addr().to_string(),
                                api: "Fetch",
                                reason: format!("undecodable batch from {tp}: {e}"),
                            })?;
                        for r in records {
                            if r.offset < next {
                                continue;
                            }
                            next = r.offset + 1;
                            self.buffer.push_back(ConsumerRecord {
                                topic: topic.to_string(),
                                partition: p.partition_index,
                                offset: r.offset,
                                timestamp: r.timestamp,
                                key: r.key,
                                value: r.value,
                                headers: r.headers,
                            });
                        }
                    }
                    // Positions advance as records are handed out (drain); a batch of only
                    // control records moves the position here.
                    if next > position
                        && !self.buffer.iter().any(|r| r.topic == tp.topic && r.partition == tp.partition)
                    {
                        self.positions.insert(tp, next);
                    }
                }
            }
        }
        if !reset.is_empty() {
            self.reset_positions(&reset).await?;
        }
        Ok(())
    }

    async fn maybe_auto_commit(&mut self) -> Result<()> {
        if self.config.enable_auto_commit
            && self.config.group_id.is_some()
            && Instant::now() >= self.next_auto_commit
            && !self.positions.is_empty()
        {
            self.next_auto_commit = Instant::now() + Duration::from_millis(self.config.auto_commit_interval_ms);
            if let Err(e) = self.commit_sync().await {
                tracing::warn!(error = %e, "auto-commit failed");
            }
        }
        Ok(())
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
        let (member_id, generation) = if self.subscription.is_some() {
            let m = self.shared.lock();
            (m.member_id.clone(), m.generation_id)
        } else {
            (String::new(), -1)
        };
        let mut topics: BTreeMap<&str, Vec<offset_commit_request::OffsetCommitRequestPartition>> = BTreeMap::new();
        for (tp, &offset) in offsets {
            topics.entry(tp.topic.as_str()).or_default().push(
                offset_commit_request::OffsetCommitRequestPartition::default()
                    .with_partition_index(tp.partition)
                    .with_committed_offset(offset)
                    .with_committed_leader_epoch(-1),
            );
        }
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(s(&group)))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(s(&member_id))
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
            );
        let conn = self.coordinator().await?;
        let response = match conn.send(&request).await {
            Ok(r) => r,
            Err(e) => {
                self.coordinator = None;
                return Err(e);
            }
        };
        for t in &response.topics {
            for p in &t.partitions {
                if let Some(e) = Error::from_code(
                    p.error_code,
                    || format!("OffsetCommit of {}-{} for group {group}", t.name.0.as_str(), p.partition_index),
                    None,
                ) {
                    if matches!(
                        e.kafka_error(),
                        Some(
                            ResponseError::RebalanceInProgress
                                | ResponseError::IllegalGeneration
                                | ResponseError::UnknownMemberId
                        )
                    ) {
                        self.shared.request_rejoin(e.kafka_error() == Some(ResponseError::UnknownMemberId));
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Eager rebalance: commit (if auto), give up everything, JoinGroup, SyncGroup.
    async fn rejoin(&mut self) -> Result<()> {
        if self.config.enable_auto_commit && !self.positions.is_empty() && self.shared.lock().generation_id >= 0 {
            if let Err(e) = self.commit_sync().await {
                tracing::debug!(error = %e, "commit before rejoin failed");
            }
        }
        self.shared.lock().stable = false;
        self.assignment.clear();
        self.positions.clear();
        self.buffer.clear();
        let mut attempts = 0u32;
        loop {
            self.shared.rejoin_needed.store(false, Ordering::Release);
            match self.join_and_sync().await {
                Ok(()) => break,
                Err(e) => {
                    attempts += 1;
                    let code = e.kafka_error();
                    let retry = matches!(
                        code,
                        Some(
                            ResponseError::RebalanceInProgress
                                | ResponseError::IllegalGeneration
                                | ResponseError::UnknownMemberId
                                | ResponseError::MemberIdRequired
                                | ResponseError::NotCoordinator
                                | ResponseError::CoordinatorNotAvailable
                                | ResponseError::CoordinatorLoadInProgress
                        )
                    ) || e.is_retriable();
                    if !retry || attempts > 20 {
                        self.shared.rejoin_needed.store(true, Ordering::Release);
                        return Err(e);
                    }
                    if matches!(code, Some(ResponseError::UnknownMemberId | ResponseError::IllegalGeneration)) {
                        let mut m = self.shared.lock();
                        if code == Some(ResponseError::UnknownMemberId) {
                            m.member_id.clear();
                        }
                        m.generation_id = -1;
                    }
                    if matches!(code, Some(ResponseError::NotCoordinator | ResponseError::CoordinatorNotAvailable))
                        || e.kafka_error().is_none()
                    {
                        self.coordinator = None;
                    }
                }
            }
        }
        self.start_heartbeat();
        self.init_positions().await
    }

    fn protocols(&self, topics: &[String]) -> Result<Vec<join_group_request::JoinGroupRequestProtocol>> {
        let last = self.last_assignment.as_ref().map(|(p, g)| LastAssignment { partitions: p, generation_id: *g });
        let mut out = Vec::new();
        for a in &self.assignors {
            let user_data =
                a.subscription_user_data(last).map_err(|e| Error::Config(format!("assignor {}: {e}", a.name())))?;
            let sub = Subscription { user_data, ..Subscription::new(topics.iter().cloned()) };
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

    async fn join_and_sync(&mut self) -> Result<()> {
        let group = self.group()?.to_string();
        let topics = self.subscription.clone().unwrap_or_default();
        let conn = self.coordinator().await?;
        let protocols = self.protocols(&topics)?;
        let mut member_id = self.shared.lock().member_id.clone();
        let join = loop {
            let request = JoinGroupRequest::default()
                .with_group_id(GroupId(s(&group)))
                .with_session_timeout_ms(self.config.session_timeout_ms)
                .with_rebalance_timeout_ms(self.config.max_poll_interval_ms)
                .with_member_id(s(&member_id))
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
        if join.leader.as_str() == member_id {
            let assignor = self.assignors.iter().find(|a| a.name() == protocol_name).ok_or_else(|| {
                Error::Config(format!("the group chose assignor {protocol_name:?}, which this consumer lacks"))
            })?;
            let mut subscriptions = BTreeMap::new();
            let mut version = VERSION_MAX;
            let mut all_topics: Vec<String> = Vec::new();
            for m in &join.members {
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
            let mut partitions_per_topic = BTreeMap::new();
            let refs: Vec<&str> = all_topics.iter().map(String::as_str).collect();
            let (metas, _) = self.cluster.fetch_metadata(Some(&refs)).await?;
            for t in metas {
                partitions_per_topic.insert(t.name.clone(), t.num_partitions());
            }
            let result = assignor.assign(&partitions_per_topic, &subscriptions);
            for (member, partitions) in result {
                let bytes = ConsumerProtocolAssignment::from_partitions(&partitions, None)
                    .encode(version)
                    .map_err(|e| Error::Config(format!("assignment: {e}")))?;
                assignments.push(
                    sync_group_request::SyncGroupRequestAssignment::default()
                        .with_member_id(s(&member))
                        .with_assignment(Bytes::from(bytes)),
                );
            }
        }
        let request = SyncGroupRequest::default()
            .with_group_id(GroupId(s(&group)))
            .with_generation_id(generation)
            .with_member_id(s(&member_id))
            .with_protocol_type(Some(s(PROTOCOL_TYPE)))
            .with_protocol_name(Some(s(&protocol_name)))
            .with_assignments(assignments);
        let response = conn.send(&request).await?;
        if let Some(e) = Error::from_code(response.error_code, || format!("SyncGroup of group {group}"), None) {
            return Err(e);
        }
        let assignment = if response.assignment.is_empty() {
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
        tracing::debug!(%member_id, generation, ?assignment, "joined group {group}");
        self.assignment = assignment.clone();
        self.last_assignment = Some((assignment, generation));
        self.shared.lock().stable = true;
        Ok(())
    }

    fn start_heartbeat(&mut self) {
        if self.heartbeat.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        let Some(conn) = self.coordinator.clone() else { return };
        let Some(group) = self.config.group_id.clone() else { return };
        let shared = self.shared.clone();
        let interval = Duration::from_millis(self.config.heartbeat_interval_ms.max(1));
        self.heartbeat = Some(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                if shared.closed.load(Ordering::Acquire) || conn.is_closed() {
                    if conn.is_closed() {
                        shared.request_rejoin(false);
                    }
                    return;
                }
                let (member_id, generation, stable) = {
                    let m = shared.lock();
                    (m.member_id.clone(), m.generation_id, m.stable)
                };
                if !stable {
                    continue;
                }
                let request = HeartbeatRequest::default()
                    .with_group_id(GroupId(s(&group)))
                    .with_generation_id(generation)
                    .with_member_id(s(&member_id));
                match conn.send(&request).await {
                    Ok(r) => match ResponseError::try_from_code(r.error_code) {
                        None => {}
                        Some(ResponseError::RebalanceInProgress | ResponseError::IllegalGeneration) => {
                            shared.request_rejoin(false)
                        }
                        Some(ResponseError::UnknownMemberId | ResponseError::FencedInstanceId) => {
                            shared.request_rejoin(true)
                        }
                        Some(e) => tracing::debug!(error = ?e, "heartbeat error"),
                    },
                    Err(e) => {
                        tracing::debug!(error = %e, "heartbeat failed");
                        shared.request_rejoin(false);
                        return;
                    }
                }
            }
        }));
    }

    /// Commits when auto-commit is on, leaves the group and stops the heartbeats.
    pub async fn close(mut self) -> Result<()> {
        let mut result = Ok(());
        if self.config.enable_auto_commit && self.config.group_id.is_some() && !self.positions.is_empty() {
            result = self.commit_sync().await;
        }
        self.shared.closed.store(true, Ordering::Release);
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
        if self.subscription.is_some() {
            let member_id = self.member_id();
            if !member_id.is_empty() {
                if let (Ok(group), Some(conn)) = (self.group().map(str::to_string), self.coordinator.clone()) {
                    let request = LeaveGroupRequest::default()
                        .with_group_id(GroupId(s(&group)))
                        .with_member_id(s(&member_id))
                        .with_members(vec![
                            leave_group_request::MemberIdentity::default().with_member_id(s(&member_id))
                        ]);
                    match conn.send(&request).await {
                        Err(e) => tracing::debug!(error = %e, "LeaveGroup failed"),
                        Ok(r) => {
                            let code = if r.error_code != 0 {
                                r.error_code
                            } else {
                                r.members.iter().map(|m| m.error_code).find(|c| *c != 0).unwrap_or(0)
                            };
                            if let Some(e) = Error::from_code(code, || format!("LeaveGroup of group {group}"), None) {
                                tracing::debug!(error = %e, "LeaveGroup refused");
                            }
                        }
                    }
                }
            }
        }
        result
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
    }
}

/// A group as DescribeGroups describes it, with member assignments decoded.
#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<GroupMember>,
}

#[derive(Debug, Clone)]
pub struct GroupMember {
    pub member_id: String,
    pub client_id: String,
    pub host: String,
    pub assignment: Vec<TopicPartition>,
}
