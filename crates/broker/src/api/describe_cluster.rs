//! DescribeCluster (60): this node, as broker and controller.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterResponse};

use super::str_bytes;
use crate::broker::Broker;

pub fn handle(broker: &Broker, _version: i16) -> DescribeClusterResponse {
    let (host, port) = broker.advertised();
    DescribeClusterResponse::default()
        .with_cluster_id(str_bytes(broker.cluster_id()))
        .with_controller_id(BrokerId(broker.node_id()))
        .with_cluster_authorized_operations(i32::MIN)
        .with_brokers(vec![DescribeClusterBroker::default()
            .with_broker_id(BrokerId(broker.node_id()))
            .with_host(str_bytes(host))
            .with_port(port as i32)])
}
