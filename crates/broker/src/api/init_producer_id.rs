//! InitProducerId (22): producer ids for idempotent producers (SEMANTICS P14). Transactions
//! are not served yet: a transactional id is refused with INVALID_REQUEST and a message.

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use crate::broker::Broker;
use crate::error_code;

pub fn handle(broker: &Broker, request: InitProducerIdRequest) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default();
    if request.transactional_id.is_some() {
        tracing::warn!("InitProducerId with a transactional id: transactions are not supported yet");
        return response
            .with_error_code(error_code::INVALID_REQUEST)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
    }
    // KIP-360: an idempotent producer that lost its sequence state asks for an epoch bump.
    if request.producer_id.0 >= 0 && request.producer_epoch >= 0 && request.producer_epoch < i16::MAX - 1 {
        return response.with_producer_id(request.producer_id).with_producer_epoch(request.producer_epoch + 1);
    }
    match broker.next_producer_id() {
        Ok(id) => response.with_producer_id(ProducerId(id)).with_producer_epoch(0),
        Err(e) => response.with_error_code(e.code).with_producer_id(ProducerId(-1)).with_producer_epoch(-1),
    }
}
