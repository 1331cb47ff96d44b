//! DeleteTopics (20): by name (all versions) or by topic id (v6+).

use std::sync::Arc;

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};

use super::str_bytes;
use crate::broker::Broker;
use crate::error_code;

pub fn handle(broker: &Arc<Broker>, request: DeleteTopicsRequest, version: i16) -> DeleteTopicsResponse {
    let wanted: Vec<(Option<String>, uuid::Uuid)> = if version >= 6 {
        request.topics.iter().map(|t| (t.name.as_ref().map(|n| n.0.as_str().to_owned()), t.topic_id)).collect()
    } else {
        request.topic_names.iter().map(|n| (Some(n.0.as_str().to_owned()), uuid::Uuid::nil())).collect()
    };
    let responses = wanted
        .into_iter()
        .map(|(name, id)| {
            let name = name.or_else(|| broker.topic_by_id(id).map(|t| t.name.clone()));
            let result = DeletableTopicResult::default().with_name(name.clone().map(|n| TopicName(str_bytes(n))));
            let Some(name) = name else {
                return result
                    .with_topic_id(id)
                    .with_error_code(error_code::UNKNOWN_TOPIC_ID)
                    .with_error_message(Some(str_bytes(format!("unknown topic id {id}"))));
            };
            match broker.delete_topic(&name) {
                Ok(id) => {
                    if version >= 6 {
                        result.with_topic_id(id)
                    } else {
                        result
                    }
                }
                Err(e) => {
                    let r = result.with_error_code(e.code);
                    if version >= 5 {
                        r.with_error_message(Some(str_bytes(e.message)))
                    } else {
                        r
                    }
                }
            }
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}
