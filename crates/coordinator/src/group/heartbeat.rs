//! Heartbeat (G18): the error matrix; a valid heartbeat pushes the member's session deadline on.
//!
//! **Invariants:** see [`crate::group`]: no I/O, no clock; every request is answered exactly
//! once.

use super::*;

impl Coordinator {
    pub fn heartbeat(&mut self, request_id: RequestId, req: HeartbeatRequest, now_ms: i64) -> Output {
        let mut out = Output::default();
        let error_code = self.heartbeat_error(&req, now_ms, &mut out);
        out.complete(request_id, Response::Heartbeat { error_code });
        out
    }

    /// G18: Dead, unknown member, fenced, generation, then by state.
    fn heartbeat_error(&mut self, req: &HeartbeatRequest, now_ms: i64, out: &mut Output) -> i16 {
        let Some(group) = self.state.groups.get_mut(&req.group_id) else {
            return UNKNOWN_MEMBER_ID;
        };
        if group.state == GroupState::Dead {
            return COORDINATOR_NOT_AVAILABLE;
        }
        if let Err(code) = validate_member(group, &req.member_id, req.group_instance_id.as_deref()) {
            return code;
        }
        if req.generation_id != group.generation_id {
            return ILLEGAL_GENERATION;
        }
        let error_code = match group.state {
            GroupState::Empty | GroupState::Dead => return UNKNOWN_MEMBER_ID,
            GroupState::PreparingRebalance => REBALANCE_IN_PROGRESS,
            GroupState::CompletingRebalance | GroupState::Stable => NONE,
        };
        let member = group.member_mut(&req.member_id).expect("validated");
        member.session_deadline_ms = now_ms + i64::from(member.session_timeout_ms);
        out.arm(&req.group_id, &req.member_id, TimerKind::Session, member.session_deadline_ms);
        error_code
    }
}
