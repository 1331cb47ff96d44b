//! DeleteGroups (api 42, G28): an Empty group is deleted with its offsets; a group with
//! members is NON_EMPTY_GROUP; an unknown one GROUP_ID_NOT_FOUND.

use std::future::Future;
use std::sync::Arc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse, GroupId};

use super::str_bytes;
use crate::broker::Broker;
use crate::error_code;

pub fn start(
    broker: &Arc<Broker>,
    r: DeleteGroupsRequest,
) -> impl Future<Output = DeleteGroupsResponse> + Send + 'static {
    let ids: Vec<String> = r.groups_names.iter().map(|g| g.to_string()).collect();
    let groups = broker.groups.clone();
    let (results, delivery) = groups.step(|core, _now| core.delete_groups(&ids));
    async move {
        let durable = groups.deliver(delivery).await;
        let results = results
            .into_iter()
            .map(|(group_id, code)| {
                DeletableGroupResult::default()
                    .with_group_id(GroupId(str_bytes(group_id)))
                    .with_error_code(if durable { code } else { error_code::COORDINATOR_NOT_AVAILABLE })
            })
            .collect();
        DeleteGroupsResponse::default().with_results(results)
    }
}
