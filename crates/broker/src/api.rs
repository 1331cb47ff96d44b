//! One module per Kafka API. `handle` routes a decoded request to its handler and encodes the
//! answer; handlers return typed responses and never touch sockets.

pub mod api_versions;
pub mod configs;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_topics;
pub mod describe_cluster;
pub mod fetch;
pub mod init_producer_id;
pub mod list_offsets;
pub mod metadata;
pub mod produce;

use std::sync::Arc;

use bytes::BytesMut;
use kafka_protocol::messages::{RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::{encode_response, Request};

use crate::broker::Broker;

/// What the connection does with a request's result.
pub enum Outcome {
    /// Write these bytes (a whole response frame).
    Respond(BytesMut),
    /// Write nothing (Produce with acks=0).
    Silent,
    /// Close the connection, logging the reason (acks=0 failure, handler bug).
    Close(String),
}

pub async fn handle(broker: Arc<Broker>, request: Request) -> Outcome {
    let version = request.header.api_version;
    let response = match request.body {
        RequestKind::ApiVersions(r) => ResponseKind::ApiVersions(api_versions::handle(&r, version)),
        RequestKind::Metadata(r) => ResponseKind::Metadata(metadata::handle(&broker, r, version)),
        RequestKind::Produce(r) => match produce::handle(&broker, r, version).await {
            produce::ProduceOutcome::Respond(r) => ResponseKind::Produce(r),
            produce::ProduceOutcome::Silent => return Outcome::Silent,
            produce::ProduceOutcome::Close(reason) => return Outcome::Close(reason),
        },
        RequestKind::Fetch(r) => ResponseKind::Fetch(fetch::handle(&broker, r, version).await),
        RequestKind::ListOffsets(r) => ResponseKind::ListOffsets(list_offsets::handle(&broker, r, version)),
        RequestKind::CreateTopics(r) => ResponseKind::CreateTopics(create_topics::handle(&broker, r, version)),
        RequestKind::DeleteTopics(r) => ResponseKind::DeleteTopics(delete_topics::handle(&broker, r, version)),
        RequestKind::CreatePartitions(r) => ResponseKind::CreatePartitions(create_partitions::handle(&broker, r)),
        RequestKind::DescribeConfigs(r) => ResponseKind::DescribeConfigs(configs::describe(&broker, r, version)),
        RequestKind::AlterConfigs(r) => ResponseKind::AlterConfigs(configs::alter(&broker, r)),
        RequestKind::IncrementalAlterConfigs(r) => {
            ResponseKind::IncrementalAlterConfigs(configs::incremental_alter(&broker, r))
        }
        RequestKind::InitProducerId(r) => ResponseKind::InitProducerId(init_producer_id::handle(&broker, r)),
        RequestKind::DescribeCluster(_) => ResponseKind::DescribeCluster(describe_cluster::handle(&broker, version)),
        other => return Outcome::Close(format!("no handler for {other:?}")),
    };
    // KIP-511: an ApiVersions request newer than served is answered with v0.
    let encode_version = match &response {
        ResponseKind::ApiVersions(r) if r.error_code == crate::error_code::UNSUPPORTED_VERSION => 0,
        _ => version,
    };
    let mut out = BytesMut::new();
    match encode_response(&mut out, request.header.api_key, encode_version, request.header.correlation_id, &response) {
        Ok(()) => Outcome::Respond(out),
        Err(e) => Outcome::Close(format!("response encoding failed (a broker bug): {e}")),
    }
}

pub(crate) fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}
