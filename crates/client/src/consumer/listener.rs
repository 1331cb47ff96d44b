//! The rebalance listener (Kafka's `ConsumerRebalanceListener`, SEMANTICS C9-C13).
//!
//! **Invariants:** callbacks run on the task that calls `poll` or `close`, never on the
//! heartbeat task. Offsets a callback asks to commit through its [`RebalanceContext`] are
//! committed synchronously right after it returns, before the partitions are given up (before
//! JoinGroup on eager rebalances, before the follow-up rejoin on cooperative ones); the outcome
//! is reported to [`RebalanceListener::on_commit`]. Commits asked for in `on_partitions_lost`
//! are ignored: the member no longer owns those partitions (C12).

use std::collections::BTreeMap;

use crate::error::Error;
use crate::TopicPartition;

/// Told about changes of a subscribed consumer's assignment, in Kafka's order.
pub trait RebalanceListener: Send {
    /// Partitions given up in a rebalance. Eager: every owned partition (possibly none) before
    /// the member rejoins. Cooperative: only those moving to another member, only if any.
    fn on_partitions_revoked(&mut self, ctx: &mut RebalanceContext<'_>, partitions: &[TopicPartition]);

    /// Partitions received. Eager: the whole new assignment. Cooperative: the increment, possibly
    /// empty (called after every rebalance).
    fn on_partitions_assigned(&mut self, ctx: &mut RebalanceContext<'_>, partitions: &[TopicPartition]);

    /// Partitions lost without a rebalance (session or poll interval expired, fenced, the
    /// generation was reset): another member may already own them. Defaults to
    /// `on_partitions_revoked`, as in Kafka.
    fn on_partitions_lost(&mut self, ctx: &mut RebalanceContext<'_>, partitions: &[TopicPartition]) {
        self.on_partitions_revoked(ctx, partitions);
    }

    /// The outcome of a commit asked for with [`RebalanceContext::commit`].
    fn on_commit(&mut self, offsets: &BTreeMap<TopicPartition, i64>, result: Result<(), &Error>) {
        let _ = (offsets, result);
    }
}

/// What a callback may look at and ask for.
pub struct RebalanceContext<'a> {
    positions: &'a BTreeMap<TopicPartition, i64>,
    commits: BTreeMap<TopicPartition, i64>,
}

impl<'a> RebalanceContext<'a> {
    pub(super) fn new(positions: &'a BTreeMap<TopicPartition, i64>) -> RebalanceContext<'a> {
        RebalanceContext { positions, commits: BTreeMap::new() }
    }

    /// The offset after the last record `poll` returned for `tp` (what a commit would commit).
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.positions.get(tp).copied()
    }

    /// Commits these offsets synchronously once the callback returns.
    pub fn commit(&mut self, offsets: BTreeMap<TopicPartition, i64>) {
        self.commits.extend(offsets);
    }

    /// Commits the current positions of `partitions` once the callback returns.
    pub fn commit_positions(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            if let Some(&o) = self.positions.get(tp) {
                self.commits.insert(tp.clone(), o);
            }
        }
    }

    pub(super) fn into_commits(self) -> BTreeMap<TopicPartition, i64> {
        self.commits
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Revoked,
    Assigned,
    Lost,
}
