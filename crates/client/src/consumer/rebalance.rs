//! What a rebalance does to the member's partitions, and when the listener hears of it
//! (SEMANTICS C10-C12, KIP-429).
//!
//! **Invariants:**
//! - Lost generation (session or poll interval expired, UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION):
//!   `on_partitions_lost(owned)` if any, nothing committed, then a fresh join.
//! - Otherwise, with auto-commit on, the consumed positions are committed before JoinGroup.
//! - Eager: `on_partitions_revoked(owned)` (even when empty) before JoinGroup; the member owns
//!   nothing while it joins; after SyncGroup `on_partitions_assigned(assignment)`.
//! - Cooperative: the member keeps its partitions while it joins (only partitions of topics it
//!   no longer subscribes to are revoked first); after SyncGroup, revoked = owned - assigned
//!   gets `on_partitions_revoked` only if non-empty and makes the member rejoin at once (the
//!   second round hands them to their new owners); then `on_partitions_assigned(assigned -
//!   owned)`, always. A partition is therefore given up (callback returned, commits done)
//!   before the member's next JoinGroup, which the new owner's assignment needs.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use kafka_protocol::error::ResponseError;

use super::listener::{Kind, RebalanceContext};
use super::Consumer;
use crate::assignor::RebalanceProtocol;
use crate::error::Result;
use crate::TopicPartition;

impl Consumer {
    /// Drops every trace of `partitions`: assignment, position, pause, buffered records.
    pub(super) fn drop_partitions(&mut self, partitions: &[TopicPartition]) {
        let gone: BTreeSet<&TopicPartition> = partitions.iter().collect();
        self.assignment.retain(|tp| !gone.contains(tp));
        self.positions.retain(|tp, _| !gone.contains(tp));
        self.paused.retain(|tp| !gone.contains(tp));
        self.buffer.retain(|r| !gone.contains(&TopicPartition::new(&r.topic, r.partition)));
    }

    /// Calls the listener (if any) and then commits what it asked for (not for `Lost`).
    pub(super) async fn call_listener(&mut self, kind: Kind, partitions: &[TopicPartition]) {
        let Some(listener) = self.listener.take() else { return };
        let mut listener = listener.into_inner().unwrap_or_else(|e| e.into_inner());
        let mut ctx = RebalanceContext::new(&self.positions);
        match kind {
            Kind::Revoked => listener.on_partitions_revoked(&mut ctx, partitions),
            Kind::Assigned => listener.on_partitions_assigned(&mut ctx, partitions),
            Kind::Lost => listener.on_partitions_lost(&mut ctx, partitions),
        }
        let commits = ctx.into_commits();
        if !commits.is_empty() && kind != Kind::Lost {
            let result = self.commit_offsets(&commits).await;
            listener.on_commit(&commits, result.as_ref().map(|_| ()));
        }
        self.listener = Some(std::sync::Mutex::new(listener));
    }

    /// One rebalance of this member, from giving up partitions to the new assignment.
    pub(super) async fn rejoin(&mut self) -> Result<()> {
        self.discard_fetch();
        self.stop_metadata_watch();
        if self.shared.lost.swap(false, Ordering::AcqRel) {
            let owned = std::mem::take(&mut self.assignment);
            self.drop_partitions(&owned);
            if !owned.is_empty() {
                self.call_listener(Kind::Lost, &owned).await;
            }
        } else {
            if self.config.enable_auto_commit && !self.positions.is_empty() && self.generation_id() >= 0 {
                if let Err(e) = self.commit_sync().await {
                    tracing::debug!(error = %e, "commit before rejoin failed");
                }
            }
            let revoke: Vec<TopicPartition> = match self.protocol {
                RebalanceProtocol::Eager => self.assignment.clone(),
                RebalanceProtocol::Cooperative => {
                    let topics = self.subscription.clone().unwrap_or_default();
                    self.assignment.iter().filter(|tp| !topics.contains(&tp.topic)).cloned().collect()
                }
            };
            if self.protocol == RebalanceProtocol::Eager || !revoke.is_empty() {
                self.call_listener(Kind::Revoked, &revoke).await;
                self.drop_partitions(&revoke);
            }
        }
        self.shared.lock().stable = false;

        self.shared.joining.store(true, Ordering::Release);
        let joined = self.join_with_retries().await;
        self.shared.polled();
        self.shared.joining.store(false, Ordering::Release);
        let (assigned, _generation) = joined?;
        self.start_heartbeat();
        self.start_metadata_watch();
        match self.protocol {
            RebalanceProtocol::Eager => {
                self.assignment = assigned.clone();
                self.call_listener(Kind::Assigned, &assigned).await;
                self.init_positions(&assigned).await
            }
            RebalanceProtocol::Cooperative => {
                let owned: BTreeSet<TopicPartition> = self.assignment.iter().cloned().collect();
                let new: BTreeSet<TopicPartition> = assigned.iter().cloned().collect();
                let revoked: Vec<TopicPartition> = owned.difference(&new).cloned().collect();
                let added: Vec<TopicPartition> = new.difference(&owned).cloned().collect();
                if !revoked.is_empty() {
                    self.call_listener(Kind::Revoked, &revoked).await;
                    self.drop_partitions(&revoked);
                    // KIP-429: the second round gives them to their new owners.
                    self.shared.request_rejoin();
                }
                self.assignment = assigned;
                self.call_listener(Kind::Assigned, &added).await;
                self.init_positions(&added).await
            }
        }
    }

    async fn join_with_retries(&mut self) -> Result<(Vec<TopicPartition>, i32)> {
        let mut attempts = 0u32;
        loop {
            self.shared.rejoin_needed.store(false, Ordering::Release);
            match self.join_and_sync().await {
                Ok(joined) => return Ok(joined),
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
                        // Out of the generation while still owning partitions (cooperative):
                        // they are lost, not revoked (C12).
                        if !self.assignment.is_empty() {
                            let owned = std::mem::take(&mut self.assignment);
                            self.drop_partitions(&owned);
                            self.call_listener(Kind::Lost, &owned).await;
                        }
                        let mut m = self.shared.lock();
                        if code == Some(ResponseError::UnknownMemberId) {
                            m.member_id.clear();
                        }
                        m.generation_id = -1;
                    }
                    if matches!(code, Some(ResponseError::NotCoordinator | ResponseError::CoordinatorNotAvailable))
                        || code.is_none()
                    {
                        self.coordinator = None;
                        if let Some(h) = self.heartbeat.take() {
                            h.abort();
                        }
                    }
                }
            }
        }
    }
}
