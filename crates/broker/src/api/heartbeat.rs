//! Heartbeat (api 12): the G18 error matrix; a valid heartbeat extends the member's session.

use std::future::Future;
use std::sync::Arc;

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
use sluice_coordinator::group::HeartbeatRequest as CoreHeartbeat;
use sluice_coordinator::Response;

use crate::broker::Broker;
use crate::error_code;

pub fn start(broker: &Arc<Broker>, r: HeartbeatRequest) -> impl Future<Output = HeartbeatResponse> + Send + 'static {
    let req = CoreHeartbeat {
        group_id: r.group_id.to_string(),
        member_id: r.member_id.to_string(),
        group_instance_id: r.group_instance_id.map(|s| s.to_string()),
        generation_id: r.generation_id,
    };
    let groups = broker.groups.clone();
    let waiting = groups.call(|core, id, now| core.heartbeat(id, req, now));
    async move {
        let error_code = match waiting.answer(&groups).await {
            Some(Response::Heartbeat { error_code }) => error_code,
            _ => error_code::COORDINATOR_NOT_AVAILABLE,
        };
        HeartbeatResponse::default().with_error_code(error_code)
    }
}
