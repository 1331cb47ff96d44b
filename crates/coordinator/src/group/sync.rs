//! SyncGroup (G14–G17): followers wait for the leader's assignment, which is persisted (and
//! replayed) before anyone is answered.
//!
//! **Invariants:** see [`crate::group`]: no I/O, no clock; every request is answered exactly
//! once.

use super::*;

impl Coordinator {
    pub fn sync_group(&mut self, request_id: RequestId, req: SyncGroupRequest, now_ms: i64) -> Output {
        let mut out = Output::default();
        if let Err(code) = self.sync(request_id, &req, now_ms, &mut out) {
            sync_error(&mut out, request_id, code);
        }
        out
    }

    fn sync(
        &mut self,
        request_id: RequestId,
        req: &SyncGroupRequest,
        now_ms: i64,
        out: &mut Output,
    ) -> Result<(), i16> {
        let Some(group) = self.state.groups.get_mut(&req.group_id) else {
            return Err(UNKNOWN_MEMBER_ID);
        };
        if group.state == GroupState::Dead {
            return Err(COORDINATOR_NOT_AVAILABLE);
        }
        validate_member(group, &req.member_id, req.group_instance_id.as_deref())?;
        if req.generation_id != group.generation_id {
            return Err(ILLEGAL_GENERATION);
        }
        if req.protocol_type.as_ref().is_some_and(|t| Some(t) != group.protocol_type.as_ref())
            || req.protocol_name.as_ref().is_some_and(|n| Some(n) != group.protocol_name.as_ref())
        {
            return Err(INCONSISTENT_GROUP_PROTOCOL);
        }
        match group.state {
            GroupState::Empty | GroupState::Dead => Err(UNKNOWN_MEMBER_ID),
            GroupState::PreparingRebalance => Err(REBALANCE_IN_PROGRESS),
            GroupState::Stable => {
                let group_id = group.group_id.clone();
                let member = group.member_mut(&req.member_id).expect("validated");
                member.session_deadline_ms = now_ms + i64::from(member.session_timeout_ms);
                out.arm(&group_id, &req.member_id, TimerKind::Session, member.session_deadline_ms);
                let assignment = member.assignment.clone();
                remove_pending_sync(group, &req.member_id, out);
                out.complete(request_id, Response::SyncGroup(sync_response(group, assignment)));
                Ok(())
            }
            GroupState::CompletingRebalance => {
                let group_id = group.group_id.clone();
                let member = group.member_mut(&req.member_id).expect("validated");
                if let Some(old) = member.awaiting_sync.replace(request_id) {
                    sync_error(out, old, REBALANCE_IN_PROGRESS);
                }
                member.session_deadline_ms = now_ms + i64::from(member.session_timeout_ms);
                out.arm(&group_id, &req.member_id, TimerKind::Session, member.session_deadline_ms);
                remove_pending_sync(group, &req.member_id, out);
                if group.leader_id.as_deref() == Some(req.member_id.as_str()) {
                    // G15: members absent from the leader's list get an empty assignment.
                    for member in &mut group.members {
                        member.assignment = req
                            .assignments
                            .iter()
                            .find(|(id, _)| *id == member.member_id)
                            .map(|(_, a)| a.clone())
                            .unwrap_or_default();
                    }
                    let record = group_metadata_record(group, now_ms);
                    self.persist(out, record);
                    let group = self.group_mut(&req.group_id);
                    debug_assert_eq!(group.state, GroupState::Stable);
                    let parked: Vec<(RequestId, Bytes)> = group
                        .members
                        .iter_mut()
                        .filter_map(|m| Some((m.awaiting_sync.take()?, m.assignment.clone())))
                        .collect();
                    for (parked, assignment) in parked {
                        out.complete(parked, Response::SyncGroup(sync_response(group, assignment)));
                    }
                }
                Ok(())
            }
        }
    }
}
