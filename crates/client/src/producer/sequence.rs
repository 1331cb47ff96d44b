//! Idempotence bookkeeping: the producer's id and epoch, and per partition the sequence numbers
//! and the rules for when a partition's next batch may go out.
//!
//! Invariants (SEMANTICS P15–P19, and the Java producer's rules):
//! - A partition's sequences belong to one producer id and epoch (its *stamp*); they start at 0
//!   and each batch takes the next `records` numbers, wrapping at `i32::MAX`. A batch keeps its
//!   stamp and sequence for every retry (the same bytes), so the broker can tell a duplicate.
//! - The broker accepts *any* sequence from a producer it holds no state for (P19), so until the
//!   first batch under a stamp is acknowledged, a partition has at most one batch in flight:
//!   otherwise a first batch refused with a retriable error (NOT_LEADER_OR_FOLLOWER on a new
//!   topic) lets the next one in, and the first can then never be appended (it would be out of
//!   order). Once the broker holds state, it refuses gaps itself (P16) and up to
//!   `max_in_flight` batches may be pipelined.
//! - A batch that is being retried goes out alone: nothing else of its partition is in flight.
//! - A batch that had a sequence and failed for good (delivery timeout, or a non-retriable error)
//!   leaves a gap the broker would refuse forever: the partition waits until its in-flight
//!   batches are back, then the producer's epoch is bumped (client side, as the Java idempotent
//!   producer does, KIP-360; a new producer id from InitProducerId once the epoch is at
//!   `i16::MAX`) and the partition's waiting batches are stamped again from sequence 0 (P18:
//!   a higher epoch starting at 0 is accepted).
//! - Other partitions keep their stamp for their in-flight and retried batches and switch to the
//!   current stamp, from sequence 0, at their next new batch once nothing of theirs is in flight.

/// A producer id and epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub id: i64,
    pub epoch: i16,
}

/// The producer's current stamp.
#[derive(Debug)]
pub(crate) struct Idempotence {
    pub current: Stamp,
    /// The epoch is exhausted: InitProducerId is needed (or under way) for a new id.
    pub new_id_needed: bool,
}

impl Idempotence {
    pub fn new(current: Stamp) -> Idempotence {
        Idempotence { current, new_id_needed: false }
    }

    /// Moves past `stale` (a stamp whose sequences have a gap). Returns false when a new producer
    /// id must come first.
    fn bump_past(&mut self, stale: Stamp) -> bool {
        if self.new_id_needed {
            return false;
        }
        if self.current != stale {
            return true; // Already bumped for another partition.
        }
        if self.current.epoch == i16::MAX {
            self.new_id_needed = true;
            return false;
        }
        self.current.epoch += 1;
        tracing::debug!(id = self.current.id, epoch = self.current.epoch, "producer epoch bumped");
        true
    }

    /// A new producer id arrived (after the epoch was exhausted).
    pub fn set_new_id(&mut self, stamp: Stamp) {
        self.current = stamp;
        self.new_id_needed = false;
    }
}

/// One partition's sequence state.
#[derive(Debug, Default)]
pub(crate) struct Sequencing {
    /// The stamp of the sequences below; `None` before the first batch.
    stamp: Option<Stamp>,
    next: i32,
    /// The sequence after the last acknowledged batch.
    acked: i32,
    /// A batch under `stamp` was acknowledged: the broker holds state for it.
    confirmed: bool,
    /// A batch with a sequence failed for good.
    gap: bool,
}

/// What the partition's front batch may do now.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Gate {
    Wait,
    Send,
    /// Send, after dropping the encodings (stamps) of every waiting batch of the partition.
    SendRestamped,
}

fn advance(sequence: i32, records: usize) -> i32 {
    sequence.wrapping_add(records as i32) & i32::MAX
}

impl Sequencing {
    /// Whether the front batch may be sent; `front_is_retry`: it already has a sequence.
    pub fn gate(&mut self, producer: Option<&mut Idempotence>, front_is_retry: bool, in_flight: usize) -> Gate {
        let Some(producer) = producer else {
            return if front_is_retry && in_flight > 0 { Gate::Wait } else { Gate::Send };
        };
        if self.gap || (!front_is_retry && self.stamp.is_some_and(|s| s != producer.current)) {
            if in_flight > 0 {
                return Gate::Wait;
            }
            if self.gap && !producer.bump_past(self.stamp.expect("a gap needs a stamped batch")) {
                return Gate::Wait;
            }
            if producer.new_id_needed {
                return Gate::Wait;
            }
            *self = Sequencing { stamp: Some(producer.current), ..Sequencing::default() };
            return Gate::SendRestamped;
        }
        if front_is_retry && in_flight > 0 {
            return Gate::Wait;
        }
        if !self.confirmed && in_flight > 0 {
            return Gate::Wait;
        }
        if self.stamp.is_none() && producer.new_id_needed {
            return Gate::Wait;
        }
        Gate::Send
    }

    /// Producer id, epoch and base sequence for a new batch of `records` records.
    pub fn stamp(&mut self, producer: Option<&Idempotence>, records: usize) -> (i64, i16, i32) {
        let Some(producer) = producer else { return (-1, -1, -1) };
        let stamp = *self.stamp.get_or_insert(producer.current);
        let sequence = self.next;
        self.next = advance(sequence, records);
        (stamp.id, stamp.epoch, sequence)
    }

    /// A batch with this base sequence was acknowledged.
    pub fn acked(&mut self, base_sequence: Option<i32>, records: usize) {
        if let Some(sequence) = base_sequence {
            self.acked = advance(sequence, records);
            self.confirmed = true;
        }
    }

    /// True when the broker refused `base_sequence` as out of order only because an earlier
    /// batch is not acknowledged yet (it is being retried): not the batch's own fault.
    pub fn behind_unacked(&self, base_sequence: Option<i32>) -> bool {
        base_sequence.is_some_and(|s| s != self.acked)
    }

    /// A batch failed for good; one that had a sequence leaves a gap.
    pub fn failed(&mut self, base_sequence: Option<i32>) {
        if base_sequence.is_some() {
            self.gap = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn producer() -> Idempotence {
        Idempotence::new(Stamp { id: 42, epoch: 7 })
    }

    #[test]
    fn first_batch_goes_alone_until_acknowledged() {
        let mut p = producer();
        let mut s = Sequencing::default();
        assert_eq!(s.gate(Some(&mut p), false, 0), Gate::Send);
        assert_eq!(s.stamp(Some(&p), 3), (42, 7, 0));
        assert_eq!(s.gate(Some(&mut p), false, 1), Gate::Wait, "broker holds no state yet");
        s.acked(Some(0), 3);
        assert_eq!(s.gate(Some(&mut p), false, 0), Gate::Send);
        assert_eq!(s.stamp(Some(&p), 2), (42, 7, 3));
        assert_eq!(s.gate(Some(&mut p), false, 1), Gate::Send, "pipelined once confirmed");
        assert_eq!(s.gate(Some(&mut p), true, 1), Gate::Wait, "a retry goes alone");
    }

    #[test]
    fn a_gap_bumps_the_epoch_once_and_restarts_at_zero() {
        let mut p = producer();
        let mut a = Sequencing::default();
        let mut b = Sequencing::default();
        a.stamp(Some(&p), 1);
        b.stamp(Some(&p), 1);
        b.acked(Some(0), 1);
        a.failed(Some(0));
        assert_eq!(a.gate(Some(&mut p), false, 1), Gate::Wait, "in-flight batches first");
        assert_eq!(a.gate(Some(&mut p), true, 0), Gate::SendRestamped);
        assert_eq!(p.current, Stamp { id: 42, epoch: 8 });
        assert_eq!(a.stamp(Some(&p), 1), (42, 8, 0));
        // b keeps its stamp while a batch of its own is in flight, then switches at sequence 0.
        assert_eq!(b.gate(Some(&mut p), false, 1), Gate::Wait);
        assert_eq!(b.gate(Some(&mut p), false, 0), Gate::SendRestamped);
        assert_eq!(b.stamp(Some(&p), 1), (42, 8, 0));
        assert_eq!(p.current.epoch, 8, "bumped once");
        // Retries of b's old stamp are not restamped.
        let mut c = Sequencing::default();
        c.stamp(Some(&Idempotence::new(Stamp { id: 42, epoch: 7 })), 1);
        assert_eq!(c.gate(Some(&mut p), true, 0), Gate::Send);
    }

    #[test]
    fn an_exhausted_epoch_waits_for_a_new_producer_id() {
        let mut p = Idempotence::new(Stamp { id: 42, epoch: i16::MAX });
        let mut s = Sequencing::default();
        s.stamp(Some(&p), 1);
        s.failed(Some(0));
        assert_eq!(s.gate(Some(&mut p), false, 0), Gate::Wait);
        assert!(p.new_id_needed);
        p.set_new_id(Stamp { id: 43, epoch: 0 });
        assert_eq!(s.gate(Some(&mut p), false, 0), Gate::SendRestamped);
        assert_eq!(s.stamp(Some(&p), 1), (43, 0, 0));
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        assert_eq!(advance(i32::MAX, 1), 0);
        assert_eq!(advance(i32::MAX - 1, 3), 1);
    }

    #[test]
    fn without_idempotence_only_retries_wait() {
        let mut s = Sequencing::default();
        assert_eq!(s.gate(None, false, 4), Gate::Send);
        assert_eq!(s.gate(None, true, 1), Gate::Wait);
        assert_eq!(s.stamp(None, 5), (-1, -1, -1));
    }
}
