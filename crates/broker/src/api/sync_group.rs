//! SyncGroup (api 14): followers are parked until the leader's assignment is durable (G14-G17).

use std::future::Future;
use std::sync::Arc;

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use sluice_coordinator::group::SyncGroupRequest as CoreSync;
use sluice_coordinator::output::SyncGroupResponse as CoreAnswer;
use sluice_coordinator::Response;

use super::str_bytes;
use crate::broker::Broker;
use crate::error_code;

pub fn start(
    broker: &Arc<Broker>,
    r: SyncGroupRequest,
    version: i16,
) -> impl Future<Output = SyncGroupResponse> + Send + 'static {
    let req = CoreSync {
        group_id: r.group_id.to_string(),
        member_id: r.member_id.to_string(),
        group_instance_id: r.group_instance_id.map(|s| s.to_string()),
        generation_id: r.generation_id,
        protocol_type: r.protocol_type.map(|s| s.to_string()),
        protocol_name: r.protocol_name.map(|s| s.to_string()),
        assignments: r.assignments.into_iter().map(|a| (a.member_id.to_string(), a.assignment)).collect(),
    };
    let groups = broker.groups.clone();
    let waiting = groups.call(|core, id, now| core.sync_group(id, req, now));
    async move {
        let answer = match waiting.answer(&groups).await {
            Some(Response::SyncGroup(answer)) => answer,
            _ => CoreAnswer::error(error_code::COORDINATOR_NOT_AVAILABLE),
        };
        SyncGroupResponse::default()
            .with_error_code(answer.error_code) // v5+ echo the group's protocol (G15).
            .with_protocol_type(if version >= 5 { answer.protocol_type.map(str_bytes) } else { None })
            .with_protocol_name(if version >= 5 { answer.protocol_name.map(str_bytes) } else { None })
            .with_assignment(answer.assignment)
    }
}
