//! CreatePartitions (37): grow a topic; assignments, when given, must name this node only.

use std::sync::Arc;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};

use super::str_bytes;
use crate::broker::{Broker, TopicError};
use crate::error_code;

pub fn handle(broker: &Arc<Broker>, request: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let node = broker.node_id();
    let results = request
        .topics
        .iter()
        .map(|t| {
            let name = t.name.0.as_str();
            let assignments_ok = t
                .assignments
                .as_ref()
                .is_none_or(|a| a.iter().all(|x| x.broker_ids.len() == 1 && x.broker_ids[0].0 == node));
            let result = if !assignments_ok {
                Err(TopicError::new(
                    error_code::INVALID_REPLICA_ASSIGNMENT,
                    format!("this cluster has one broker (id {node})"),
                ))
            } else {
                broker.add_partitions(name, t.count, request.validate_only)
            };
            let r = CreatePartitionsTopicResult::default().with_name(t.name.clone());
            match result {
                Ok(()) => r,
                Err(e) => r.with_error_code(e.code).with_error_message(Some(str_bytes(e.message))),
            }
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}
