//! The coordinator's timers: what to hand back to `Coordinator::on_timer`, and when.
//!
//! **Invariants:** plain data, no clock and no tasks: deadlines are milliseconds given by the
//! caller. At most one deadline per key (arming an armed key replaces its deadline, as the
//! coordinator's `TimerOp` contract says); `pop_due` returns keys in deadline order and removes
//! them.

use std::collections::{BTreeSet, HashMap};

use sluice_coordinator::{TimerKey, TimerOp};

#[derive(Debug, Default)]
pub struct TimerWheel {
    by_key: HashMap<TimerKey, i64>,
    by_deadline: BTreeSet<(i64, TimerKey)>,
}

impl TimerWheel {
    pub fn apply(&mut self, op: TimerOp) {
        match op {
            TimerOp::Arm { key, deadline_ms } => {
                if let Some(old) = self.by_key.insert(key.clone(), deadline_ms) {
                    self.by_deadline.remove(&(old, key.clone()));
                }
                self.by_deadline.insert((deadline_ms, key));
            }
            TimerOp::Cancel { key } => {
                if let Some(old) = self.by_key.remove(&key) {
                    self.by_deadline.remove(&(old, key));
                }
            }
        }
    }

    /// The earliest deadline, if any timer is armed.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        self.by_deadline.first().map(|(deadline, _)| *deadline)
    }

    /// Removes and returns the timers due at `now_ms`, earliest first.
    pub fn pop_due(&mut self, now_ms: i64) -> Vec<TimerKey> {
        let mut due = Vec::new();
        while let Some((deadline, _)) = self.by_deadline.first() {
            if *deadline > now_ms {
                break;
            }
            let (_, key) = self.by_deadline.pop_first().expect("checked above");
            self.by_key.remove(&key);
            due.push(key);
        }
        due
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use sluice_coordinator::TimerKind;

    use super::*;

    fn key(member: &str) -> TimerKey {
        TimerKey { group_id: "g".into(), member_id: member.into(), kind: TimerKind::Session }
    }

    #[test]
    fn rearming_replaces_the_deadline_and_cancel_removes_it() {
        let mut wheel = TimerWheel::default();
        wheel.apply(TimerOp::Arm { key: key("a"), deadline_ms: 100 });
        wheel.apply(TimerOp::Arm { key: key("b"), deadline_ms: 50 });
        wheel.apply(TimerOp::Arm { key: key("a"), deadline_ms: 30 });
        assert_eq!(wheel.len(), 2);
        assert_eq!(wheel.next_deadline_ms(), Some(30));
        wheel.apply(TimerOp::Cancel { key: key("a") });
        assert_eq!(wheel.next_deadline_ms(), Some(50));
        assert!(wheel.pop_due(49).is_empty());
        assert_eq!(wheel.pop_due(50), vec![key("b")]);
        assert!(wheel.is_empty());
        assert_eq!(wheel.next_deadline_ms(), None);
    }

    #[test]
    fn pop_due_returns_every_due_key_in_deadline_order() {
        let mut wheel = TimerWheel::default();
        for (member, deadline_ms) in [("c", 30), ("a", 10), ("d", 99), ("b", 20)] {
            wheel.apply(TimerOp::Arm { key: key(member), deadline_ms });
        }
        assert_eq!(wheel.pop_due(30), vec![key("a"), key("b"), key("c")]);
        assert_eq!(wheel.next_deadline_ms(), Some(99));
    }
}
