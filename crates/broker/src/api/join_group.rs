//! JoinGroup (api 11): the request goes to the coordinator core, which may park it until the
//! join phase completes (G4-G13, G23). Only the oneshot answer is awaited; no lock is held.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use sluice_coordinator::group::JoinGroupRequest as CoreJoin;
use sluice_coordinator::output::JoinGroupResponse as CoreAnswer;
use sluice_coordinator::Response;

use super::str_bytes;
use crate::broker::Broker;
use crate::error_code;

pub fn start(
    broker: &Arc<Broker>,
    r: JoinGroupRequest,
    version: i16,
    client_id: &str,
    peer: SocketAddr,
) -> impl Future<Output = JoinGroupResponse> + Send + 'static {
    let member_id = r.member_id.to_string();
    if let Some(reason) = r.reason.as_deref().filter(|_| !member_id.is_empty()) {
        // G13 (KIP-800): why a known member rejoins, for the operator.
        tracing::info!(group = %r.group_id.as_str(), member = %member_id, reason, "member rejoins");
    }
    let req = CoreJoin {
        group_id: r.group_id.to_string(),
        member_id: member_id.clone(),
        group_instance_id: r.group_instance_id.map(|s| s.to_string()),
        protocol_type: r.protocol_type.to_string(),
        protocols: r.protocols.into_iter().map(|p| (p.name.to_string(), p.metadata)).collect(),
        session_timeout_ms: r.session_timeout_ms,
        // v0 has no rebalance timeout: the session timeout stands in, as in Kafka.
        rebalance_timeout_ms: if version >= 1 { r.rebalance_timeout_ms } else { r.session_timeout_ms },
        client_id: client_id.to_string(),
        client_host: format!("/{}", peer.ip()),
        requires_known_member_id: version >= 4,
        member_id_suffix: uuid::Uuid::new_v4().to_string(),
    };
    let groups = broker.groups.clone();
    let waiting = groups.call(|core, id, now| core.join_group(id, req, now));
    async move {
        let answer = match waiting.answer(&groups).await {
            Some(Response::JoinGroup(answer)) => answer,
            _ => CoreAnswer::error(error_code::COORDINATOR_NOT_AVAILABLE, &member_id),
        };
        to_wire(answer, version)
    }
}

fn to_wire(a: CoreAnswer, version: i16) -> JoinGroupResponse {
    // v0-6 cannot carry a null protocol name.
    let protocol_name = match a.protocol_name {
        None if version < 7 => Some(str_bytes("")),
        other => other.map(str_bytes),
    };
    // Fields newer than the request's version are left out, as Kafka does for these ignorable
    // fields: protocol_type from v7, skip_assignment from v9 (KIP-814; before it a rejoining
    // static leader simply gets the members and assigns again), group_instance_id from v5.
    JoinGroupResponse::default()
        .with_error_code(a.error_code)
        .with_generation_id(a.generation_id)
        .with_protocol_type(if version >= 7 { a.protocol_type.map(str_bytes) } else { None })
        .with_protocol_name(protocol_name)
        .with_leader(str_bytes(a.leader))
        .with_skip_assignment(version >= 9 && a.skip_assignment)
        .with_member_id(str_bytes(a.member_id))
        .with_members(
            a.members
                .into_iter()
                .map(|m| {
                    JoinGroupResponseMember::default()
                        .with_member_id(str_bytes(m.member_id))
                        .with_group_instance_id(if version >= 5 { m.group_instance_id.map(str_bytes) } else { None })
                        .with_metadata(m.metadata)
                })
                .collect(),
        )
}
