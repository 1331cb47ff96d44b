//! ListGroups (api 16, G27): every group with its protocol type; v4+ state and the
//! case-insensitive `states_filter`; v5+ group type ("classic": Sluice has no KIP-848 groups
//! yet) and `types_filter`.

use std::future::Future;
use std::sync::Arc;

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

use super::str_bytes;
use crate::broker::Broker;

const GROUP_TYPE: &str = "classic";

pub fn start(broker: &Arc<Broker>, r: ListGroupsRequest) -> impl Future<Output = ListGroupsResponse> + Send + 'static {
    let states: Vec<String> = r.states_filter.iter().map(|s| s.to_string()).collect();
    let type_matches = r.types_filter.is_empty() || r.types_filter.iter().any(|t| t.eq_ignore_ascii_case(GROUP_TYPE));
    let groups = broker.groups.clone();
    let (listed, delivery) = groups.read(|core| if type_matches { core.list_groups(&states) } else { Vec::new() });
    async move {
        groups.deliver(delivery).await;
        let groups = listed
            .into_iter()
            .map(|g| {
                ListedGroup::default()
                    .with_group_id(GroupId(str_bytes(g.group_id)))
                    .with_protocol_type(str_bytes(g.protocol_type))
                    .with_group_state(str_bytes(g.group_state))
                    .with_group_type(str_bytes(GROUP_TYPE))
            })
            .collect();
        ListGroupsResponse::default().with_groups(groups)
    }
}
