//! ListConfigResources (74; v0 was ListClientMetricsResources). As Kafka's
//! `KafkaApis.handleListConfigResources`: v0 lists client-metrics resources only (Sluice has
//! none); v1 lists the resources of the types asked for (every supported type when none is
//! named): this broker (BROKER, its node id) and every topic (TOPIC), `__consumer_offsets`
//! included. Sluice has no client-metrics subscriptions, group configs or broker loggers, so
//! those types list nothing. A type Kafka does not support fails the request with
//! UNSUPPORTED_VERSION.

use std::sync::Arc;

use kafka_protocol::messages::list_config_resources_response::ConfigResource;
use kafka_protocol::messages::{ListConfigResourcesRequest, ListConfigResourcesResponse};

use super::configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::str_bytes;
use crate::broker::Broker;
use crate::error_code;

pub const RESOURCE_BROKER_LOGGER: i8 = 8;
pub const RESOURCE_CLIENT_METRICS: i8 = 16;
pub const RESOURCE_GROUP: i8 = 32;

/// Kafka's `ListConfigResourcesRequest.supportedResourceTypes()`, in the order its answer
/// lists them.
const SUPPORTED: [i8; 5] =
    [RESOURCE_CLIENT_METRICS, RESOURCE_GROUP, RESOURCE_BROKER_LOGGER, RESOURCE_BROKER, RESOURCE_TOPIC];

pub fn handle(broker: &Arc<Broker>, request: ListConfigResourcesRequest, version: i16) -> ListConfigResourcesResponse {
    let types: Vec<i8> = if version == 0 {
        vec![RESOURCE_CLIENT_METRICS]
    } else if request.resource_types.is_empty() {
        SUPPORTED.to_vec()
    } else {
        request.resource_types
    };
    if types.iter().any(|t| !SUPPORTED.contains(t)) {
        return ListConfigResourcesResponse::default().with_error_code(error_code::UNSUPPORTED_VERSION);
    }
    let mut resources = Vec::new();
    for kind in SUPPORTED.iter().filter(|k| types.contains(k)) {
        match *kind {
            RESOURCE_BROKER => resources.push(
                ConfigResource::default()
                    .with_resource_name(str_bytes(broker.node_id().to_string()))
                    .with_resource_type(RESOURCE_BROKER),
            ),
            RESOURCE_TOPIC => {
                resources.extend(std::iter::once(broker.offsets_topic()).chain(broker.topics()).map(|t| {
                    ConfigResource::default()
                        .with_resource_name(str_bytes(t.name.clone()))
                        .with_resource_type(RESOURCE_TOPIC)
                }))
            }
            _ => {}
        }
    }
    ListConfigResourcesResponse::default().with_config_resources(resources)
}
