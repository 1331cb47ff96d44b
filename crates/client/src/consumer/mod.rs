//! An async consumer: `assign` without a group, or `subscribe` in a group with the classic
//! protocol (FindCoordinator, JoinGroup with KIP-394's MEMBER_ID_REQUIRED, the leader runs the
//! assignor, SyncGroup, background heartbeats, LeaveGroup on close).
//!
//! - [`group`]: coordinator discovery, JoinGroup/SyncGroup, LeaveGroup, the heartbeat task
//!   (which also enforces `max_poll_interval_ms`, KIP-62).
//! - [`rebalance`]: what a rebalance does to the member's partitions, eager or cooperative
//!   (KIP-429), and when the [`RebalanceListener`] is called.
//! - [`fetcher`]: Fetch requests, run ahead in a background task while the application
//!   processes what `poll` returned.
//! - [`commit`]: OffsetCommit (sync and async) and OffsetFetch.
//! - [`listener`]: the rebalance listener.
//!
//! **Invariants:**
//! - `positions[tp]` is the offset after the last record `poll` returned for `tp` (what a
//!   commit commits); it exists only for assigned partitions.
//! - The buffer holds only records of assigned, unpaused partitions, and the first buffered
//!   record of a partition is at its position: seek, pause and revocation drop buffered records.
//! - A background fetch is started only for partitions with nothing buffered, and its result is
//!   applied to a partition only if the partition is still assigned, unpaused, has nothing
//!   buffered and its position still equals the offset the fetch asked for; otherwise it is
//!   discarded. So prefetching never reorders, skips or repeats records.
//! - Rebalance callbacks run only inside `poll` and `close` (never on the heartbeat task), in
//!   Kafka's order (SEMANTICS C10-C12): eager: revoked(all owned) before JoinGroup, then
//!   assigned(all); cooperative: revoked(owned - assigned) only if non-empty, then
//!   assigned(assigned - owned) always; lost instead of revoked when the generation was lost.
//! - `poll(timeout)` returns at once when records are buffered; otherwise it waits for the
//!   background fetch (parked on the broker for at most `fetch_max_wait_ms`), a rebalance or
//!   the timeout, whichever comes first; it never spins.

mod blocking;
mod commit;
mod fetcher;
mod group;
mod listener;
mod rebalance;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::protocol::StrBytes;

use crate::admin::{Admin, OffsetSpec};
use crate::assignor::{self, Assignor, RebalanceProtocol};
use crate::cluster::{ClientConfig, Cluster};
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::TopicPartition;

pub use crate::Bytes;
pub use blocking::BlockingConsumer;
pub(crate) use commit::fetch_committed;
pub use commit::CommitFuture;
pub(crate) use group::find_coordinator;
pub use listener::{RebalanceContext, RebalanceListener};

use group::Shared;

/// Where to start when a partition has no committed offset (or the position is out of range).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoOffsetReset {
    Earliest,
    Latest,
    /// Fail instead (`poll` returns an error naming the partitions).
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
    /// `group.instance.id`: static membership (KIP-345). A static member does not leave the
    /// group on close; restarted within the session timeout it gets its partitions back
    /// without a rebalance.
    pub group_instance_id: Option<String>,
    pub auto_offset_reset: AutoOffsetReset,
    pub enable_auto_commit: bool,
    pub auto_commit_interval_ms: u64,
    pub session_timeout_ms: i32,
    pub heartbeat_interval_ms: u64,
    /// Longest time between two polls before the member leaves the group (KIP-62); also the
    /// rebalance timeout sent in JoinGroup.
    pub max_poll_interval_ms: i32,
    pub max_poll_records: usize,
    /// Assignor wire names in order of preference (`range`, `roundrobin`, `sticky`,
    /// `cooperative-sticky`). The rebalance protocol is cooperative when every one of them
    /// supports it (only `cooperative-sticky` does), else eager (SEMANTICS A21).
    pub assignors: Vec<String>,
    /// Longest a single Fetch parks on the broker.
    pub fetch_max_wait_ms: u64,
    pub fetch_max_bytes: i32,
    pub max_partition_fetch_bytes: i32,
    /// How often the group leader re-reads the metadata of the subscribed topics; when a topic's
    /// partition count changed since its assignment, the group rebalances so that new
    /// partitions get owners (Java's `metadata.max.age.ms`).
    pub metadata_max_age_ms: u64,
    /// How long `commit_sync`/`commit_offsets` keep retrying a retriable failure (coordinator
    /// moved or unavailable, a timed-out or broken connection) before giving up (Java's
    /// `default.api.timeout.ms`).
    pub default_api_timeout_ms: u64,
    /// Pause between two such attempts (`retry.backoff.ms`).
    pub retry_backoff_ms: u64,
}

impl ConsumerConfig {
    pub fn new(bootstrap_servers: impl Into<String>) -> ConsumerConfig {
        let mut client = ClientConfig::new(bootstrap_servers);
        client.allow_auto_topic_creation = false;
        ConsumerConfig {
            client,
            group_id: None,
            group_instance_id: None,
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
            metadata_max_age_ms: 300_000,
            default_api_timeout_ms: 60_000,
            retry_backoff_ms: 100,
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

/// The consumer. Not thread-safe by design (as Kafka's): one task polls it.
pub struct Consumer {
    config: ConsumerConfig,
    cluster: Arc<Cluster>,
    admin: Admin,
    assignors: Vec<Box<dyn Assignor>>,
    protocol: RebalanceProtocol,
    shared: Arc<Shared>,
    coordinator: Option<Connection>,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
    /// As group leader: the partition count of each topic the last assignment was made with.
    assigned_metadata: Option<BTreeMap<String, i32>>,
    /// As group leader: re-reads that metadata and asks for a rejoin when it changed.
    metadata_watch: Option<tokio::task::JoinHandle<()>>,
    /// `Some` after `subscribe`.
    subscription: Option<Vec<String>>,
    /// In a mutex only to keep `Consumer: Sync` (futures of its methods hold `&self`).
    listener: Option<std::sync::Mutex<Box<dyn RebalanceListener>>>,
    /// Sorted.
    assignment: Vec<TopicPartition>,
    paused: BTreeSet<TopicPartition>,
    last_assignment: Option<(Vec<TopicPartition>, i32)>,
    /// Next offset to return (and to commit) per assigned partition.
    positions: BTreeMap<TopicPartition, i64>,
    buffer: VecDeque<ConsumerRecord>,
    in_flight: Option<tokio::task::JoinHandle<Result<Vec<fetcher::PartitionData>>>>,
    async_commits: Vec<tokio::task::JoinHandle<()>>,
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

pub(crate) fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
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
        let refs: Vec<&dyn Assignor> = assignors.iter().map(|a| a.as_ref()).collect();
        let protocol = assignor::rebalance_protocol(&refs).map_err(|e| Error::Config(e.to_string()))?;
        if config.group_instance_id.as_deref() == Some("") {
            return Err(Error::Config("group_instance_id must not be empty".into()));
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
            protocol,
            shared: Arc::new(Shared::new()),
            coordinator: None,
            heartbeat: None,
            assigned_metadata: None,
            metadata_watch: None,
            subscription: None,
            listener: None,
            assignment: Vec::new(),
            paused: BTreeSet::new(),
            last_assignment: None,
            positions: BTreeMap::new(),
            buffer: VecDeque::new(),
            in_flight: None,
            async_commits: Vec::new(),
        })
    }

    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// The rebalance protocol of this consumer's assignors.
    pub fn rebalance_protocol(&self) -> RebalanceProtocol {
        self.protocol
    }

    /// Reads exactly these partitions, without group membership. Positions come from the
    /// group's committed offsets when a `group_id` is configured, else from `auto_offset_reset`.
    pub async fn assign(&mut self, partitions: Vec<TopicPartition>) -> Result<()> {
        if self.subscription.is_some() {
            return Err(Error::Config("assign after subscribe: a consumer either subscribes or assigns".into()));
        }
        self.discard_fetch();
        self.buffer.clear();
        self.positions.clear();
        self.paused.clear();
        let mut partitions = partitions;
        partitions.sort();
        partitions.dedup();
        self.assignment = partitions;
        let all = self.assignment.clone();
        self.init_positions(&all).await
    }

    /// Joins the group and reads the partitions it assigns. Needs `group_id`. The join itself
    /// happens in the next `poll`.
    pub async fn subscribe(&mut self, topics: Vec<String>) -> Result<()> {
        if self.config.group_id.is_none() {
            return Err(Error::Config("subscribe needs a group_id".into()));
        }
        if !self.assignment.is_empty() && self.subscription.is_none() {
            return Err(Error::Config("subscribe after assign: a consumer either subscribes or assigns".into()));
        }
        self.subscription = Some(topics);
        self.shared.request_rejoin();
        Ok(())
    }

    /// As [`subscribe`](Self::subscribe), with a listener told about every change of the
    /// assignment (see [`RebalanceListener`]).
    pub async fn subscribe_with(&mut self, topics: Vec<String>, listener: Box<dyn RebalanceListener>) -> Result<()> {
        self.listener = Some(std::sync::Mutex::new(listener));
        self.subscribe(topics).await
    }

    /// Caps how many records the next polls return.
    pub fn set_max_poll_records(&mut self, n: usize) {
        self.config.max_poll_records = n.max(1);
    }

    /// The partitions currently assigned, sorted.
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

    /// Stops returning and fetching records of these (assigned) partitions until `resume`;
    /// the group membership and the positions stay. Buffered records of them are dropped and
    /// fetched again after `resume`.
    pub fn pause(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            if self.assignment.binary_search(tp).is_ok() {
                self.paused.insert(tp.clone());
            }
        }
        self.buffer.retain(|r| !self.paused.contains(&TopicPartition::new(&r.topic, r.partition)));
    }

    /// Fetches and returns records of these partitions again (the next fetch includes them).
    pub fn resume(&mut self, partitions: &[TopicPartition]) {
        if partitions.iter().any(|tp| self.paused.contains(tp)) {
            self.discard_fetch();
        }
        for tp in partitions {
            self.paused.remove(tp);
        }
    }

    /// The paused partitions.
    pub fn paused(&self) -> Vec<TopicPartition> {
        self.paused.iter().cloned().collect()
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

    /// Gives positions to those of `partitions` that have none: the committed offset, else
    /// `auto_offset_reset`.
    async fn init_positions(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        let missing: Vec<TopicPartition> =
            partitions.iter().filter(|tp| !self.positions.contains_key(*tp)).cloned().collect();
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

    /// Moves the position of `tp`; buffered and in-flight records of it are dropped.
    pub fn seek(&mut self, tp: &TopicPartition, offset: i64) {
        self.discard_fetch();
        self.buffer.retain(|r| !(r.topic == tp.topic && r.partition == tp.partition));
        self.positions.insert(tp.clone(), offset);
    }

    /// Records, up to `max_poll_records`: at once when some are buffered, otherwise waiting up
    /// to `timeout` for them. Runs group duties (rejoin with the listener's callbacks,
    /// auto-commit) as Kafka's poll does, and starts the next fetch before returning.
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        self.shared.polled();
        self.shared.check_fatal()?;
        self.async_commits.retain(|h| !h.is_finished());
        let mut deadline = Instant::now() + timeout;
        self.maybe_auto_commit().await;
        loop {
            if self.subscription.is_some() && self.shared.rejoin_needed.load(Ordering::Acquire) {
                self.rejoin().await?;
                self.shared.polled();
                // The wait for records starts once the member has partitions again.
                deadline = deadline.max(Instant::now() + timeout);
            }
            self.shared.check_fatal()?;
            if self.in_flight.as_ref().is_some_and(|h| h.is_finished()) {
                if let Some(h) = self.in_flight.take() {
                    let result = h.await.map_err(|e| Error::Config(format!("fetch task failed: {e}")))?;
                    self.apply_fetch(result?).await?;
                }
            }
            if !self.buffer.is_empty() {
                let out = self.drain();
                self.start_fetch();
                return Ok(out);
            }
            // Started before the deadline check: a `poll(0)` also keeps records coming.
            self.start_fetch();
            let now = Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let shared = self.shared.clone();
            let notified = shared.rejoin_notify.notified();
            if self.subscription.is_some() && shared.rejoin_needed.load(Ordering::Acquire) {
                continue;
            }
            let sleep = tokio::time::sleep(deadline - now);
            match self.in_flight.as_mut() {
                Some(handle) => {
                    tokio::select! {
                        result = handle => {
                            self.in_flight = None;
                            let result = result.map_err(|e| Error::Config(format!("fetch task failed: {e}")))?;
                            self.apply_fetch(result?).await?;
                        }
                        _ = notified => {}
                        _ = sleep => {}
                    }
                }
                None => {
                    tokio::select! {
                        _ = notified => {}
                        _ = sleep => {}
                    }
                }
            }
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

    /// Starts a background fetch for the partitions with nothing buffered, unless one runs.
    fn start_fetch(&mut self) {
        if self.in_flight.is_some() {
            return;
        }
        let buffered: BTreeSet<(&str, i32)> = self.buffer.iter().map(|r| (r.topic.as_str(), r.partition)).collect();
        let wanted: Vec<(TopicPartition, i64)> = self
            .assignment
            .iter()
            .filter(|tp| !self.paused.contains(*tp) && !buffered.contains(&(tp.topic.as_str(), tp.partition)))
            .filter_map(|tp| self.positions.get(tp).map(|&o| (tp.clone(), o)))
            .collect();
        if wanted.is_empty() {
            return;
        }
        let settings = fetcher::Settings {
            max_wait_ms: self.config.fetch_max_wait_ms,
            max_bytes: self.config.fetch_max_bytes,
            partition_max_bytes: self.config.max_partition_fetch_bytes,
        };
        self.in_flight = Some(tokio::spawn(fetcher::fetch(self.cluster.clone(), wanted, settings)));
    }

    fn discard_fetch(&mut self) {
        if let Some(h) = self.in_flight.take() {
            h.abort();
        }
    }

    /// Applies a finished fetch where it is still valid (see the module invariants).
    async fn apply_fetch(&mut self, parts: Vec<fetcher::PartitionData>) -> Result<()> {
        let mut reset = Vec::new();
        for part in parts {
            let tp = &part.tp;
            if self.assignment.binary_search(tp).is_err()
                || self.paused.contains(tp)
                || self.positions.get(tp) != Some(&part.fetch_offset)
                || self.buffer.iter().any(|r| r.topic == tp.topic && r.partition == tp.partition)
            {
                continue;
            }
            if part.out_of_range {
                reset.push(part.tp);
                continue;
            }
            if part.records.is_empty() {
                // A batch of only control records moves the position here.
                if part.next > part.fetch_offset {
                    self.positions.insert(part.tp, part.next);
                }
                continue;
            }
            self.buffer.extend(part.records);
        }
        self.reset_positions(&reset).await
    }

    async fn maybe_auto_commit(&mut self) {
        if self.config.enable_auto_commit
            && self.config.group_id.is_some()
            && Instant::now() >= self.next_auto_commit
            && !self.positions.is_empty()
            && (self.subscription.is_none() || self.shared.lock().stable)
        {
            self.next_auto_commit = Instant::now() + Duration::from_millis(self.config.auto_commit_interval_ms);
            if let Err(e) = self.commit_sync().await {
                tracing::warn!(error = %e, "auto-commit failed");
            }
        }
    }

    /// Commits when auto-commit is on, waits for async commits, tells the listener the
    /// partitions are revoked (or lost), leaves the group (dynamic members only: a static
    /// member stays until its session times out) and stops the heartbeats (SEMANTICS C8, G22).
    pub async fn close(mut self) -> Result<()> {
        self.discard_fetch();
        let in_group = self.subscription.is_none() || self.generation_id() >= 0;
        let mut result = Ok(());
        if self.config.enable_auto_commit && self.config.group_id.is_some() && !self.positions.is_empty() && in_group {
            result = self.commit_sync().await;
        }
        for h in std::mem::take(&mut self.async_commits) {
            let _ = h.await;
        }
        if self.subscription.is_some() && !self.assignment.is_empty() {
            let owned = self.assignment.clone();
            let kind = if in_group && !self.shared.lost.load(Ordering::Acquire) {
                listener::Kind::Revoked
            } else {
                listener::Kind::Lost
            };
            self.call_listener(kind, &owned).await;
        }
        self.shared.closed.store(true, Ordering::Release);
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
        self.stop_metadata_watch();
        if self.subscription.is_some() && self.config.group_instance_id.is_none() {
            let member_id = self.member_id();
            if !member_id.is_empty() {
                if let (Ok(group), Some(conn)) = (self.group().map(str::to_string), self.coordinator.clone()) {
                    if let Err(e) = group::leave_group(&conn, &group, &member_id, "the consumer is closing").await {
                        tracing::warn!(error = %e, "LeaveGroup failed; the group rebalances after the session timeout");
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
        self.stop_metadata_watch();
        self.discard_fetch();
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
