//! One module per Kafka API. `handle` routes a decoded request to its handler and encodes the
//! answer; handlers return typed responses and never touch sockets.

pub mod api_versions;
pub mod configs;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_groups;
pub mod describe_quorum;
pub mod describe_topic_partitions;
pub mod elect_leaders;
pub mod fetch;
pub mod fetch_response;
pub mod find_coordinator;
pub mod heartbeat;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_config_resources;
pub mod list_groups;
pub mod list_offsets;
pub mod log_dirs;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod produce;
pub mod reassignments;
pub mod sync_group;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::BytesMut;
use kafka_protocol::messages::{RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::{encode_response, Request, RequestHeader};

use crate::broker::Broker;
use crate::response::Part;

/// What the connection does with a request's result.
pub enum Outcome {
    /// Write these bytes (a whole response frame).
    Respond(BytesMut),
    /// Write these parts in order (one response frame; file ranges sent as stored).
    RespondParts(Vec<Part>),
    /// Write nothing (Produce with acks=0).
    Silent,
    /// Close the connection, logging the reason (acks=0 failure, handler bug).
    Close(String),
}

/// A request's answer still being worked out (a parked fetch, a produce waiting for its
/// fsync). Runs concurrently with the connection's later requests.
pub type Completion = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// Starts a request. Everything that changes state happens here, before the connection reads
/// its next request, so one connection's requests take effect in the order they were sent;
/// only waiting (for durability, for fetchable data) is left to the returned future.
pub fn start(broker: Arc<Broker>, request: Request, peer: SocketAddr) -> Completion {
    let header = request.header;
    let version = header.api_version;
    let response = match request.body {
        RequestKind::Produce(r) => {
            let pending = produce::append(&broker, r, version);
            return Box::pin(async move {
                match produce::complete(pending).await {
                    produce::ProduceOutcome::Respond(r) => encode(&header, ResponseKind::Produce(r)),
                    produce::ProduceOutcome::Silent => Outcome::Silent,
                    produce::ProduceOutcome::Close(reason) => Outcome::Close(reason),
                }
            });
        }
        RequestKind::Fetch(r) => {
            return Box::pin(async move {
                let answer = fetch::handle(&broker, r, version).await;
                Outcome::RespondParts(fetch_response::encode(&answer, version, header.correlation_id))
            });
        }
        // Group coordinator calls: the core runs now; the answer may come later.
        RequestKind::JoinGroup(r) => {
            let client_id = header.client_id.clone().unwrap_or_default();
            let answer = join_group::start(&broker, r, version, &client_id, peer);
            return respond_later(header, async move { ResponseKind::JoinGroup(answer.await) });
        }
        RequestKind::SyncGroup(r) => {
            let answer = sync_group::start(&broker, r, version);
            return respond_later(header, async move { ResponseKind::SyncGroup(answer.await) });
        }
        RequestKind::Heartbeat(r) => {
            let answer = heartbeat::start(&broker, r);
            return respond_later(header, async move { ResponseKind::Heartbeat(answer.await) });
        }
        RequestKind::LeaveGroup(r) => {
            let answer = leave_group::start(&broker, r, version);
            return respond_later(header, async move { ResponseKind::LeaveGroup(answer.await) });
        }
        RequestKind::OffsetCommit(r) => {
            let answer = offset_commit::start(&broker, r, version);
            return respond_later(header, async move { ResponseKind::OffsetCommit(answer.await) });
        }
        RequestKind::OffsetFetch(r) => {
            let answer = offset_fetch::start(&broker, r, version);
            return respond_later(header, async move { ResponseKind::OffsetFetch(answer.await) });
        }
        RequestKind::OffsetDelete(r) => {
            let answer = offset_delete::start(&broker, r);
            return respond_later(header, async move { ResponseKind::OffsetDelete(answer.await) });
        }
        RequestKind::DescribeGroups(r) => {
            let answer = describe_groups::start(&broker, r, version);
            return respond_later(header, async move { ResponseKind::DescribeGroups(answer.await) });
        }
        RequestKind::ListGroups(r) => {
            let answer = list_groups::start(&broker, r);
            return respond_later(header, async move { ResponseKind::ListGroups(answer.await) });
        }
        RequestKind::DeleteGroups(r) => {
            let answer = delete_groups::start(&broker, r);
            return respond_later(header, async move { ResponseKind::DeleteGroups(answer.await) });
        }
        RequestKind::FindCoordinator(r) => ResponseKind::FindCoordinator(find_coordinator::handle(&broker, r, version)),
        RequestKind::ApiVersions(r) => ResponseKind::ApiVersions(api_versions::handle(&r, version)),
        RequestKind::Metadata(r) => ResponseKind::Metadata(metadata::handle(&broker, r, version)),
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
        RequestKind::DeleteRecords(r) => ResponseKind::DeleteRecords(delete_records::handle(&broker, r)),
        RequestKind::DescribeTopicPartitions(r) => {
            ResponseKind::DescribeTopicPartitions(describe_topic_partitions::handle(&broker, r))
        }
        RequestKind::DescribeLogDirs(r) => ResponseKind::DescribeLogDirs(log_dirs::describe(&broker, r)),
        RequestKind::AlterReplicaLogDirs(r) => ResponseKind::AlterReplicaLogDirs(log_dirs::alter(&broker, r)),
        RequestKind::ElectLeaders(r) => ResponseKind::ElectLeaders(elect_leaders::handle(&broker, r)),
        RequestKind::ListPartitionReassignments(r) => {
            ResponseKind::ListPartitionReassignments(reassignments::list(&broker, r))
        }
        RequestKind::AlterPartitionReassignments(r) => {
            ResponseKind::AlterPartitionReassignments(reassignments::alter(&broker, r))
        }
        RequestKind::DescribeQuorum(r) => ResponseKind::DescribeQuorum(describe_quorum::handle(&broker, r, version)),
        RequestKind::ListConfigResources(r) => {
            ResponseKind::ListConfigResources(list_config_resources::handle(&broker, r, version))
        }
        other => {
            let reason = format!("no handler for {other:?}");
            return Box::pin(std::future::ready(Outcome::Close(reason)));
        }
    };
    Box::pin(std::future::ready(encode(&header, response)))
}

fn respond_later(header: RequestHeader, answer: impl Future<Output = ResponseKind> + Send + 'static) -> Completion {
    Box::pin(async move { encode(&header, answer.await) })
}

fn encode(header: &RequestHeader, response: ResponseKind) -> Outcome {
    // KIP-511: an ApiVersions request newer than served is answered with v0.
    let version = match &response {
        ResponseKind::ApiVersions(r) if r.error_code == crate::error_code::UNSUPPORTED_VERSION => 0,
        _ => header.api_version,
    };
    let mut out = BytesMut::new();
    match encode_response(&mut out, header.api_key, version, header.correlation_id, &response) {
        Ok(()) => Outcome::Respond(out),
        Err(e) => Outcome::Close(format!("response encoding failed (a broker bug): {e}")),
    }
}

pub(crate) fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}
