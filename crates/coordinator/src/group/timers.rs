//! Timer firings: session expiry (G5, G11, G19), the rebalance timeout (G7), the initial delay
//! (G10) and pending syncs (G16).
//!
//! **Invariants:** see [`crate::group`]: no I/O, no clock; every request is answered exactly
//! once.

use super::*;

impl Coordinator {
    /// A timer the caller armed has fired. Stale or early firings are ignored (or re-armed).
    pub fn on_timer(&mut self, key: &TimerKey, now_ms: i64) -> Output {
        let mut out = Output::default();
        let Some(group) = self.state.groups.get_mut(&key.group_id) else {
            return out;
        };
        match key.kind {
            TimerKind::Session => {
                if group.pending_members.remove(&key.member_id) {
                    self.maybe_complete_join(&key.group_id, now_ms, &mut out);
                    return out;
                }
                let Some(member) = group.member_mut(&key.member_id) else {
                    return out;
                };
                if now_ms < member.session_deadline_ms {
                    out.arm(&key.group_id, &key.member_id, TimerKind::Session, member.session_deadline_ms);
                    return out;
                }
                let parked = member.awaiting_join.is_some() || member.awaiting_sync.is_some();
                if parked && !member.is_new {
                    // G19: a member parked in JoinGroup or SyncGroup is alive.
                    member.session_deadline_ms = now_ms + i64::from(member.session_timeout_ms);
                    out.arm(&key.group_id, &key.member_id, TimerKind::Session, member.session_deadline_ms);
                    return out;
                }
                self.remove_member_and_update(&key.group_id, &key.member_id, now_ms, &mut out);
            }
            TimerKind::Join => {
                if group.state == GroupState::PreparingRebalance && group.initial_delay.is_none() {
                    self.complete_join(&key.group_id, now_ms, &mut out);
                }
            }
            TimerKind::InitialDelay => {
                let Some(delay) = group.initial_delay else {
                    return out;
                };
                if delay.new_member_added && delay.remaining_ms > 0 {
                    let initial_ms = self.config.group_initial_rebalance_delay_ms;
                    let delay_ms = initial_ms.min(delay.remaining_ms);
                    group.initial_delay = Some(InitialDelay {
                        new_member_added: false,
                        remaining_ms: (delay.remaining_ms - initial_ms).max(0),
                    });
                    out.arm(&key.group_id, "", TimerKind::InitialDelay, now_ms + delay_ms);
                } else {
                    self.complete_join(&key.group_id, now_ms, &mut out);
                }
            }
            TimerKind::PendingSync => {
                // G16: members of this generation that never sent SyncGroup are removed.
                if matches!(group.state, GroupState::CompletingRebalance | GroupState::Stable) {
                    let late: Vec<String> = group.pending_sync.iter().cloned().collect();
                    for member_id in late {
                        if self.state.groups[&key.group_id].member(&member_id).is_some() {
                            self.remove_member_and_update(&key.group_id, &member_id, now_ms, &mut out);
                        }
                    }
                }
            }
        }
        out
    }
}
