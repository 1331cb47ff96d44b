//! DescribeGroups (api 15, G26): state, protocol and members; metadata and assignments only
//! while Stable. An unknown group is "Dead"; from v6 (KIP-1043) also GROUP_ID_NOT_FOUND.

use std::future::Future;
use std::sync::Arc;

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse, GroupId};

use super::str_bytes;
use crate::broker::Broker;
use crate::error_code;

/// Without ACLs every caller may READ (3), DELETE (6) and DESCRIBE (8) a group.
const GROUP_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8);
/// "Not requested".
const OPERATIONS_OMITTED: i32 = i32::MIN;

pub fn start(
    broker: &Arc<Broker>,
    r: DescribeGroupsRequest,
    version: i16,
) -> impl Future<Output = DescribeGroupsResponse> + Send + 'static {
    let ids: Vec<String> = r.groups.iter().map(|g| g.to_string()).collect();
    let groups = broker.groups.clone();
    let (described, delivery) = groups.read(|core| {
        ids.iter().map(|id| (core.state.groups.contains_key(id), core.describe_group(id))).collect::<Vec<_>>()
    });
    let operations = if r.include_authorized_operations { GROUP_OPERATIONS } else { OPERATIONS_OMITTED };
    async move {
        groups.deliver(delivery).await;
        let groups = described
            .into_iter()
            .map(|(exists, g)| {
                let (error_code, error_message) = if exists || version < 6 {
                    (error_code::NONE, None)
                } else {
                    (error_code::GROUP_ID_NOT_FOUND, Some(str_bytes(format!("group {} not found", g.group_id))))
                };
                DescribedGroup::default()
                    .with_error_code(error_code)
                    .with_error_message(error_message)
                    .with_group_id(GroupId(str_bytes(g.group_id)))
                    .with_group_state(str_bytes(g.group_state))
                    .with_protocol_type(str_bytes(g.protocol_type))
                    .with_protocol_data(str_bytes(g.protocol_data))
                    .with_members(
                        g.members
                            .into_iter()
                            .map(|m| {
                                DescribedGroupMember::default()
                                    .with_member_id(str_bytes(m.member_id))
                                    .with_group_instance_id(m.group_instance_id.map(str_bytes))
                                    .with_client_id(str_bytes(m.client_id))
                                    .with_client_host(str_bytes(m.client_host))
                                    .with_member_metadata(m.member_metadata)
                                    .with_member_assignment(m.member_assignment)
                            })
                            .collect(),
                    )
                    .with_authorized_operations(operations)
            })
            .collect();
        DescribeGroupsResponse::default().with_groups(groups)
    }
}
