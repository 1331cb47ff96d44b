//! FindCoordinator (api 10): this broker coordinates every group (G1-G2). v4+ batches keys
//! (KIP-699), each with its own error. Transaction coordinators are not served yet.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};

use super::str_bytes;
use crate::broker::Broker;
use crate::error_code;

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

pub fn handle(broker: &Broker, r: FindCoordinatorRequest, version: i16) -> FindCoordinatorResponse {
    let (host, port) = broker.advertised();
    let answer = |key: &str| -> Coordinator {
        let refused = |code: i16, message: &str| {
            Coordinator::default()
                .with_key(str_bytes(key))
                .with_node_id(BrokerId(-1))
                .with_host(str_bytes(""))
                .with_port(-1)
                .with_error_code(code)
                .with_error_message(Some(str_bytes(message)))
        };
        match r.key_type {
            KEY_TYPE_GROUP => Coordinator::default()
                .with_key(str_bytes(key))
                .with_node_id(BrokerId(broker.node_id()))
                .with_host(str_bytes(host.clone()))
                .with_port(i32::from(port))
                .with_error_code(error_code::NONE)
                .with_error_message(None),
            KEY_TYPE_TRANSACTION => refused(
                error_code::COORDINATOR_NOT_AVAILABLE,
                "Sluice does not coordinate transactions yet; use a non-transactional producer",
            ),
            other => refused(error_code::INVALID_REQUEST, &format!("unknown coordinator key type {other}")),
        }
    };
    if version >= 4 {
        let coordinators = r.coordinator_keys.iter().map(|key| answer(key)).collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let one = answer(&r.key);
    FindCoordinatorResponse::default()
        .with_error_code(one.error_code)
        .with_error_message(one.error_message)
        .with_node_id(one.node_id)
        .with_host(one.host)
        .with_port(one.port)
}
