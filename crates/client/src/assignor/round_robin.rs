//! `roundrobin` (Java's `RoundRobinAssignor`): all subscribed topics' partitions, sorted by
//! (topic, partition), are dealt one at a time to the members in member order, going round in a
//! circle and skipping members not subscribed to the partition's topic.

use std::collections::BTreeMap;

use super::{assignable_topics, empty_assignment, java_cmp, member_order, Assignor, RebalanceProtocol, Subscription};
use crate::TopicPartition;

/// The `roundrobin` assignor.
#[derive(Clone, Copy, Debug, Default)]
pub struct RoundRobinAssignor;

impl Assignor for RoundRobinAssignor {
    fn name(&self) -> &'static str {
        "roundrobin"
    }

    fn rebalance_protocols(&self) -> &[RebalanceProtocol] {
        &[RebalanceProtocol::Eager]
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        subscriptions: &BTreeMap<String, Subscription>,
    ) -> BTreeMap<String, Vec<TopicPartition>> {
        let mut assignment = empty_assignment(subscriptions);
        let members = member_order(subscriptions);
        // The circular iterator's position: the member the next partition is offered to first.
        let mut next = 0;
        // Java walks a `TreeSet<String>` of topics.
        let mut topics: Vec<(&str, i32)> = assignable_topics(partitions_per_topic, subscriptions).into_iter().collect();
        topics.sort_by(|(a, _), (b, _)| java_cmp(a, b));
        for (topic, partition_count) in topics {
            for partition in 0..partition_count {
                // Some member subscribes to `topic` (that is what makes it assignable), so the
                // search ends within one turn of the circle.
                let offset = (0..members.len())
                    .find(|offset| {
                        let member = members[(next + offset) % members.len()];
                        subscriptions[member].topics.iter().any(|t| t == topic)
                    })
                    .expect("an assignable topic has a subscriber");
                let member = members[(next + offset) % members.len()];
                assignment
                    .get_mut(member)
                    .expect("every member has an entry")
                    .push(TopicPartition::new(topic, partition));
                next = (next + offset + 1) % members.len();
            }
        }
        assignment.values_mut().for_each(|partitions| partitions.sort());
        assignment
    }
}
