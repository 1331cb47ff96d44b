//! `range` (Java's `RangeAssignor`): per topic, independently, the topic's subscribers in member
//! order get consecutive ranges of its partitions; with P partitions and M subscribers the first
//! P % M get P / M + 1 and the rest P / M. Co-partitioned topics therefore line up (partition i of
//! every topic goes to the same member), at the price of imbalance across topics.

use std::collections::BTreeMap;

use super::{assignable_topics, empty_assignment, member_order, Assignor, RebalanceProtocol, Subscription};
use crate::TopicPartition;

/// The `range` assignor.
#[derive(Clone, Copy, Debug, Default)]
pub struct RangeAssignor;

impl Assignor for RangeAssignor {
    fn name(&self) -> &'static str {
        "range"
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
        for (topic, partition_count) in assignable_topics(partitions_per_topic, subscriptions) {
            let subscribers: Vec<&str> =
                members.iter().copied().filter(|m| subscriptions[*m].topics.iter().any(|t| t == topic)).collect();
            let member_count = subscribers.len() as i64;
            let partition_count = i64::from(partition_count);
            let (quota, extra) = (partition_count / member_count, partition_count % member_count);
            let mut next = 0i64;
            for (i, member) in (0..).zip(subscribers) {
                let take = quota + i64::from(i < extra);
                let partitions = assignment.get_mut(member).expect("every member has an entry");
                // `next + take <= partition_count <= i32::MAX`, so the cast is exact.
                partitions.extend((next..next + take).map(|p| TopicPartition::new(topic, p as i32)));
                next += take;
            }
        }
        assignment.values_mut().for_each(|partitions| partitions.sort());
        assignment
    }
}
