//! LeaveGroup (G21) and member removal.
//!
//! **Invariants:** see [`crate::group`]: no I/O, no clock; every request is answered exactly
//! once.

use super::*;

impl Coordinator {
    pub fn leave_group(&mut self, request_id: RequestId, req: LeaveGroupRequest, now_ms: i64) -> Output {
        let mut out = Output::default();
        let response = match self.state.groups.get(&req.group_id).map(|g| g.state) {
            None => LeaveGroupResponse { error_code: UNKNOWN_MEMBER_ID, members: Vec::new() },
            Some(GroupState::Dead) => LeaveGroupResponse { error_code: COORDINATOR_NOT_AVAILABLE, members: Vec::new() },
            Some(_) => {
                let members = req
                    .members
                    .iter()
                    .map(|(member_id, instance_id)| LeaveMemberResponse {
                        member_id: member_id.clone(),
                        group_instance_id: instance_id.clone(),
                        error_code: self.leave_one(&req.group_id, member_id, instance_id.as_deref(), now_ms, &mut out),
                    })
                    .collect();
                LeaveGroupResponse { error_code: NONE, members }
            }
        };
        out.complete(request_id, Response::LeaveGroup(response));
        out
    }

    /// G21: one leaving member.
    fn leave_one(
        &mut self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        now_ms: i64,
        out: &mut Output,
    ) -> i16 {
        let group = self.group_mut(group_id);
        if group.pending_members.remove(member_id) {
            out.cancel(group_id, member_id, TimerKind::Session);
            self.maybe_complete_join(group_id, now_ms, out);
            return NONE;
        }
        let target = match (member_id.is_empty(), instance_id) {
            (true, Some(instance_id)) => match group.static_member(instance_id) {
                Some(m) => m.member_id.clone(),
                None => return UNKNOWN_MEMBER_ID,
            },
            _ => {
                if let Err(code) = validate_member(group, member_id, instance_id) {
                    return code;
                }
                member_id.to_string()
            }
        };
        self.remove_member_and_update(group_id, &target, now_ms, out);
        NONE
    }

    /// Removes a member (leave, expiry) and moves the group on (G19, G21).
    pub(crate) fn remove_member_and_update(&mut self, group_id: &str, member_id: &str, now_ms: i64, out: &mut Output) {
        let group = self.group_mut(group_id);
        remove_member(group, member_id, out);
        match group.state {
            GroupState::Stable | GroupState::CompletingRebalance => self.prepare_rebalance(group_id, now_ms, out),
            GroupState::PreparingRebalance => self.maybe_complete_join(group_id, now_ms, out),
            GroupState::Empty | GroupState::Dead => {}
        }
    }
}
