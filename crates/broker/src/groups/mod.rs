//! The group coordinator as the broker runs it: the deterministic core
//! (`sluice_coordinator::Coordinator`) fed with requests and the clock, its records appended
//! to the internal log, its timers kept in a wheel, and its answers delivered once durable.
//!
//! **Invariants:**
//! - One lock (`inner`) serialises the core, the log appends and the timer wheel, so the log
//!   holds the records in the order the core produced them. It is held only for in-memory
//!   work and a page-cache write: never across an fsync or an `.await`. No partition lock is
//!   taken under it except the offsets log's own.
//! - An answer is sent only once the offsets log is durable up to its end as it was when the
//!   answer was produced, so no client ever sees coordinator state that a crash could take back.
//! - A parked request (JoinGroup, SyncGroup) holds nothing but a oneshot receiver; it is
//!   answered by whichever later call or timer completes it.

pub mod store;
pub mod timer_wheel;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use sluice_coordinator::{Coordinator, CoordinatorConfig, Output, RequestId, Response};
use sluice_log::Storage;
use tokio::sync::{oneshot, Notify};

use crate::broker::now_ms;
use crate::error::BrokerError;
use crate::partition::Partition;
use store::OffsetsLog;
use timer_wheel::TimerWheel;

/// Settings of the coordinator as the broker runs it (Kafka's names and defaults).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupsConfig {
    pub coordinator: CoordinatorConfig,
    /// `offsets.retention.minutes`, in ms.
    pub offsets_retention_ms: i64,
    /// `offsets.retention.check.interval.ms`.
    pub offsets_retention_check_interval_ms: u64,
    /// `offsets.topic.segment.bytes`.
    pub offsets_segment_bytes: u64,
}

impl Default for GroupsConfig {
    fn default() -> Self {
        GroupsConfig {
            coordinator: CoordinatorConfig::default(),
            offsets_retention_ms: 7 * 24 * 60 * 60 * 1000,
            offsets_retention_check_interval_ms: 600_000,
            offsets_segment_bytes: 100 * 1024 * 1024,
        }
    }
}

/// Compaction runs when the offsets log has grown past this size...
const COMPACTION_BYTES_MIN: u64 = 16 * 1024 * 1024;
/// ... and to this many times its size after the last compaction.
const COMPACTION_GROWTH_FACTOR: u64 = 4;

struct Inner {
    core: Coordinator,
    store: OffsetsLog,
    timers: TimerWheel,
    parked: HashMap<RequestId, oneshot::Sender<Response>>,
}

/// Answers produced by one step of the core, to send once the log is durable.
#[must_use = "answers are sent only by Groups::deliver"]
pub struct Delivery {
    durable_upto: i64,
    sends: Vec<(oneshot::Sender<Response>, Response)>,
}

/// A request handed to the core, answered now or later.
pub struct Waiting {
    delivery: Delivery,
    answer: oneshot::Receiver<Response>,
}

pub struct Groups {
    pub config: GroupsConfig,
    inner: Mutex<Inner>,
    log: Arc<Partition>,
    timers_changed: Notify,
    next_request_id: AtomicU64,
}

impl Groups {
    /// Opens the offsets log in `data_dir` and replays it into a fresh core; members of loaded
    /// groups get fresh session timers (O8).
    pub fn open(
        storage: Arc<dyn Storage>,
        data_dir: &Path,
        config: GroupsConfig,
        fatal: Arc<dyn Fn(String) + Send + Sync>,
    ) -> Result<Groups, BrokerError> {
        let now = now_ms();
        let dir = data_dir.join(store::OFFSETS_LOG_DIR);
        let (store, records) = OffsetsLog::open(storage, dir, config.offsets_segment_bytes, now, fatal)
            .map_err(|e| BrokerError::Log { partition: store::OFFSETS_LOG_DIR.to_string(), source: e })?;
        let mut core = Coordinator::new(config.coordinator.clone());
        for record in &records {
            core.load(record);
        }
        let loaded = core.on_loaded(now);
        tracing::info!(
            records = records.len(),
            groups = core.state.groups.len(),
            committed_groups = core.state.offsets.len(),
            "group coordinator loaded"
        );
        let log = store.partition.clone();
        let mut timers = TimerWheel::default();
        for op in loaded.timers {
            timers.apply(op);
        }
        Ok(Groups {
            config,
            inner: Mutex::new(Inner { core, store, timers, parked: HashMap::new() }),
            log,
            timers_changed: Notify::new(),
            next_request_id: AtomicU64::new(1),
        })
    }

    /// The offsets log, served read-only as partition 0 of the internal topic `__consumer_offsets`.
    pub fn log_partition(&self) -> Arc<Partition> {
        self.log.clone()
    }

    /// Hands a request to the core. `handler` gets the core, the request's id and the time.
    pub fn call(&self, handler: impl FnOnce(&mut Coordinator, RequestId, i64) -> Output) -> Waiting {
        let request_id = self.next_request_id.fetch_add(1, Ordering::Relaxed);
        let (tx, answer) = oneshot::channel();
        let now = now_ms();
        let mut inner = self.inner.lock();
        inner.parked.insert(request_id, tx);
        let out = handler(&mut inner.core, request_id, now);
        let delivery = self.apply(&mut inner, out, now);
        Waiting { delivery, answer }
    }

    /// A step of the core that answers directly (no request id): DeleteGroups, OffsetDelete,
    /// the retention sweep. Returns its result and what to wait for before answering.
    pub fn step<R>(&self, handler: impl FnOnce(&mut Coordinator, i64) -> (R, Output)) -> (R, Delivery) {
        let now = now_ms();
        let mut inner = self.inner.lock();
        let (result, out) = handler(&mut inner.core, now);
        let delivery = self.apply(&mut inner, out, now);
        (result, delivery)
    }

    /// Reads the core (DescribeGroups, ListGroups, OffsetFetch). The answer must wait for the
    /// returned delivery too, so that it never shows state not yet durable.
    pub fn read<R>(&self, reader: impl FnOnce(&Coordinator) -> R) -> (R, Delivery) {
        let inner = self.inner.lock();
        let result = reader(&inner.core);
        (result, Delivery { durable_upto: inner.store.end_offset(), sends: Vec::new() })
    }

    fn apply(&self, inner: &mut Inner, out: Output, now: i64) -> Delivery {
        let Output { completed, records, timers } = out;
        let appended = inner.store.append(&records, now);
        let before = inner.timers.next_deadline_ms();
        for op in timers {
            inner.timers.apply(op);
        }
        if inner.timers.next_deadline_ms() != before {
            self.timers_changed.notify_one();
        }
        let mut sends = Vec::with_capacity(completed.len());
        for c in completed {
            if let Some(tx) = inner.parked.remove(&c.request_id) {
                sends.push((tx, c.response));
            }
        }
        if let Err(e) = appended {
            // The senders are dropped: the waiting handlers answer COORDINATOR_NOT_AVAILABLE.
            tracing::error!(error = %e, "appending to the offsets log failed");
            sends.clear();
        }
        Delivery { durable_upto: inner.store.end_offset(), sends }
    }

    /// Waits until the offsets log is durable up to the delivery's point, then sends its
    /// answers. On a storage failure the answers are dropped (the broker is stopping).
    pub async fn deliver(&self, delivery: Delivery) -> bool {
        match self.log.wait_durable(delivery.durable_upto).await {
            Ok(()) => {
                for (tx, response) in delivery.sends {
                    // The client may have gone; nothing to do then.
                    let _ = tx.send(response);
                }
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "the offsets log is not durable; dropping coordinator answers");
                false
            }
        }
    }

    /// Fires due timers, sweeps expired offsets and compacts the log, until the task is
    /// aborted.
    pub async fn run(self: Arc<Self>) {
        let sweep_period = Duration::from_millis(self.config.offsets_retention_check_interval_ms.max(1));
        let mut next_sweep = tokio::time::Instant::now() + sweep_period;
        loop {
            let changed = self.timers_changed.notified();
            let next = self.inner.lock().timers.next_deadline_ms();
            let wait_ms = next.map(|deadline| (deadline - now_ms()).max(0) as u64);
            let sleep_until = match wait_ms {
                Some(ms) => (tokio::time::Instant::now() + Duration::from_millis(ms)).min(next_sweep),
                None => next_sweep,
            };
            tokio::select! {
                _ = changed => continue,
                _ = tokio::time::sleep_until(sleep_until) => {}
            }
            self.fire_due_timers();
            if tokio::time::Instant::now() >= next_sweep {
                next_sweep = tokio::time::Instant::now() + sweep_period;
                self.sweep_and_compact().await;
            }
        }
    }

    fn fire_due_timers(self: &Arc<Self>) {
        let now = now_ms();
        let mut deliveries = Vec::new();
        {
            let mut inner = self.inner.lock();
            for key in inner.timers.pop_due(now) {
                let out = inner.core.on_timer(&key, now);
                deliveries.push(self.apply(&mut inner, out, now));
            }
        }
        for delivery in deliveries {
            if delivery.sends.is_empty() && delivery.durable_upto <= self.log.with_log(|l| l.high_watermark()) {
                continue;
            }
            let me = self.clone();
            tokio::spawn(async move { me.deliver(delivery).await });
        }
    }

    /// O9: the offsets retention sweep; then compaction when the log has grown enough.
    pub async fn sweep_and_compact(&self) {
        let retention_ms = self.config.offsets_retention_ms;
        let (expired, delivery) = self.step(|core, now| {
            let out = core.expire_offsets(now, retention_ms);
            (out.records.len(), out)
        });
        if expired > 0 {
            tracing::info!(records = expired, "offsets retention removed expired offsets and groups");
        }
        self.deliver(delivery).await;
        self.compact_if_due(COMPACTION_BYTES_MIN, COMPACTION_GROWTH_FACTOR).await;
    }

    /// Compacts the offsets log when it is `factor` times its last compacted size and at
    /// least `min_bytes`. Returns the segments deleted.
    pub async fn compact_if_due(&self, min_bytes: u64, factor: u64) -> usize {
        let started = {
            let mut inner = self.inner.lock();
            if !inner.store.compaction_due(min_bytes, factor) {
                return 0;
            }
            let now = now_ms();
            inner.store.start_compaction(now).map(|base| (base, inner.store.end_offset()))
        };
        let (base, end) = match started {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "offsets log compaction failed to start");
                return 0;
            }
        };
        if self.log.wait_durable(end).await.is_err() {
            return 0;
        }
        let mut inner = self.inner.lock();
        match inner.store.finish_compaction(base) {
            Ok(deleted) => {
                tracing::info!(deleted, live = inner.store.live_records(), "compacted the offsets log");
                deleted
            }
            Err(e) => {
                tracing::error!(error = %e, "offsets log compaction failed");
                0
            }
        }
    }

    /// Bytes in the offsets log's segments.
    pub fn log_size_bytes(&self) -> u64 {
        self.log.with_log(|log| log.size_bytes())
    }

    /// Closes the offsets log cleanly (shutdown).
    pub fn close(&self) -> Result<(), sluice_log::LogError> {
        self.log.with_log(|log| log.close())
    }
}

impl Waiting {
    /// Sends this step's answers once durable, then waits for this request's own answer
    /// (which may come from a later step). `None` when the coordinator could not answer.
    pub async fn answer(self, groups: &Groups) -> Option<Response> {
        groups.deliver(self.delivery).await;
        self.answer.await.ok()
    }
}

impl Delivery {
    /// A delivery with nothing to wait for.
    pub fn none() -> Delivery {
        Delivery { durable_upto: 0, sends: Vec::new() }
    }
}
