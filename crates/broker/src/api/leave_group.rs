//! LeaveGroup (api 13): v0-2 name one member; v3+ (KIP-345) a batch, each with its own error
//! (G21). The group rebalances at once, without waiting for a session timeout.

use std::future::Future;
use std::sync::Arc;

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use sluice_coordinator::group::LeaveGroupRequest as CoreLeave;
use sluice_coordinator::Response;

use super::str_bytes;
use crate::broker::Broker;
use crate::error_code;

pub fn start(
    broker: &Arc<Broker>,
    r: LeaveGroupRequest,
    version: i16,
) -> impl Future<Output = LeaveGroupResponse> + Send + 'static {
    for m in &r.members {
        let reason = m.reason.as_deref().unwrap_or("none given");
        tracing::info!(group = %r.group_id.as_str(), member = %m.member_id.as_str(), reason, "member leaves");
    }
    let members = if version >= 3 {
        r.members.into_iter().map(|m| (m.member_id.to_string(), m.group_instance_id.map(|s| s.to_string()))).collect()
    } else {
        vec![(r.member_id.to_string(), None)]
    };
    let req = CoreLeave { group_id: r.group_id.to_string(), members };
    let groups = broker.groups.clone();
    let waiting = groups.call(|core, id, now| core.leave_group(id, req, now));
    async move {
        let Some(Response::LeaveGroup(answer)) = waiting.answer(&groups).await else {
            return LeaveGroupResponse::default().with_error_code(error_code::COORDINATOR_NOT_AVAILABLE);
        };
        if version < 3 {
            // One member: its error is the request's.
            let error_code = answer.members.first().map_or(answer.error_code, |m| {
                if answer.error_code != error_code::NONE {
                    answer.error_code
                } else {
                    m.error_code
                }
            });
            return LeaveGroupResponse::default().with_error_code(error_code);
        }
        LeaveGroupResponse::default().with_error_code(answer.error_code).with_members(
            answer
                .members
                .into_iter()
                .map(|m| {
                    MemberResponse::default()
                        .with_member_id(str_bytes(m.member_id))
                        .with_group_instance_id(m.group_instance_id.map(str_bytes))
                        .with_error_code(m.error_code)
                })
                .collect(),
        )
    }
}
