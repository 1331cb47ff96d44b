//! Client-side partition assignors of the classic group protocol.
//!
//! The group leader (a client, not the broker) runs the assignor the group agreed on over every
//! member's [`Subscription`] and the partition counts it knows from metadata, and sends each
//! member its share in SyncGroup. The four built-ins carry Kafka's wire names, so a group can mix
//! Sluice, Java and librdkafka members:
//!
//! | name | type | protocols | user data |
//! |---|---|---|---|
//! | `range` | [`RangeAssignor`] | eager | none |
//! | `roundrobin` | [`RoundRobinAssignor`] | eager | none |
//! | `sticky` | [`StickyAssignor`] | eager | `StickyAssignorUserData` v1: previous assignment + generation |
//! | `cooperative-sticky` | [`CooperativeStickyAssignor`] | cooperative, eager | generation as `i32` |
//!
//! Rules common to all four (Java's `AbstractPartitionAssignor`):
//! - Topics nobody subscribes to, topics absent from `partitions_per_topic` and topics with no
//!   partitions are skipped; every member appears in the result, possibly with an empty list.
//! - Where member order matters (range, round robin), members with a `group_instance_id` come
//!   first, ordered by it, then the others by member id, both in Java `String` order (so
//!   `"consumer-10" < "consumer-2"`).
//! - A member's topics are a set: a topic listed twice counts once.
//! - Each member's list is returned sorted by (topic, partition).
//!
//! Rack-aware assignment needs the replica racks of every partition, which this signature does
//! not carry; like Java's `assign(Map<String, Integer>, …)`, these assignors are rack-unaware
//! (the rack is still carried in [`Subscription`] and on the wire).

mod range;
mod round_robin;
mod sticky;

pub use range::RangeAssignor;
pub use round_robin::RoundRobinAssignor;
pub use sticky::{
    decode_cooperative_user_data, encode_cooperative_user_data, CooperativeStickyAssignor, StickyAssignor,
    StickyAssignorUserData,
};

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use crate::consumer_protocol::{ConsumerProtocolSubscription, EncodeError, TopicPartitions};
use crate::TopicPartition;

/// How a member gives up partitions in a rebalance. Ordered: `Eager < Cooperative`, as the
/// `RebalanceProtocol` ids 0 and 1 are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RebalanceProtocol {
    /// Every member revokes everything before it rejoins.
    Eager = 0,
    /// Members keep what they own; only partitions that move are revoked, then a second
    /// rebalance hands them out (KIP-429).
    Cooperative = 1,
}

/// What a member tells the leader in JoinGroup, decoded: [`ConsumerProtocolSubscription`] plus
/// the member's `group_instance_id`, which JoinGroup's response carries beside the metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subscription {
    pub topics: Vec<String>,
    pub user_data: Option<Vec<u8>>,
    pub owned_partitions: Vec<TopicPartition>,
    /// The generation in which the member owned `owned_partitions`; `None` when unknown
    /// (protocol v0/v1, or -1 on the wire).
    pub generation_id: Option<i32>,
    pub group_instance_id: Option<String>,
    pub rack_id: Option<String>,
}

impl Subscription {
    pub fn new(topics: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Subscription { topics: topics.into_iter().map(Into::into).collect(), ..Default::default() }
    }

    /// As Java's `ConsumerProtocol.deserializeSubscription`: a negative generation is unknown,
    /// an empty rack is no rack.
    pub fn from_protocol(subscription: ConsumerProtocolSubscription, group_instance_id: Option<String>) -> Self {
        let owned_partitions = subscription.owned_partitions_flat();
        Subscription {
            topics: subscription.topics,
            user_data: subscription.user_data,
            owned_partitions,
            generation_id: (subscription.generation_id >= 0).then_some(subscription.generation_id),
            group_instance_id,
            rack_id: subscription.rack_id.filter(|rack| !rack.is_empty()),
        }
    }

    /// As Java's `ConsumerProtocol.serializeSubscription` prepares it: topics sorted, owned
    /// partitions sorted by (topic, partition) and grouped by topic, generation -1 if unknown.
    pub fn to_protocol(&self) -> ConsumerProtocolSubscription {
        let mut topics = self.topics.clone();
        topics.sort_by(|a, b| java_cmp(a, b));
        let mut owned: Vec<&TopicPartition> = self.owned_partitions.iter().collect();
        owned.sort_by(|a, b| java_cmp(&a.topic, &b.topic).then(a.partition.cmp(&b.partition)));
        let mut owned_partitions: Vec<TopicPartitions> = Vec::new();
        for tp in owned {
            match owned_partitions.last_mut() {
                Some(group) if group.topic == tp.topic => group.partitions.push(tp.partition),
                _ => owned_partitions.push(TopicPartitions { topic: tp.topic.clone(), partitions: vec![tp.partition] }),
            }
        }
        ConsumerProtocolSubscription {
            topics,
            user_data: self.user_data.clone(),
            owned_partitions,
            generation_id: self.generation_id.unwrap_or(-1),
            rack_id: self.rack_id.clone(),
        }
    }
}

/// What a member received in its last completed rebalance, from which some assignors build the
/// user data of its next subscription (Java's `onAssignment`).
#[derive(Clone, Copy, Debug)]
pub struct LastAssignment<'a> {
    pub partitions: &'a [TopicPartition],
    pub generation_id: i32,
}

/// A client-side partition assignor. Implementations are pure functions: no I/O, no clock,
/// no randomness, the same output for the same input.
pub trait Assignor: Send + Sync {
    /// The protocol name members vote with in JoinGroup.
    fn name(&self) -> &'static str;

    /// The rebalance protocols this assignor supports; the consumer uses the highest one all
    /// its assignors share ([`rebalance_protocol`]).
    fn rebalance_protocols(&self) -> &[RebalanceProtocol];

    /// The user data to put in the member's next subscription for this assignor, given what it
    /// received last time (`None` before its first assignment). Required because the eager
    /// `sticky` assignor only learns previous ownership from it.
    fn subscription_user_data(&self, last: Option<LastAssignment<'_>>) -> Result<Option<Vec<u8>>, EncodeError> {
        let _ = last;
        Ok(None)
    }

    /// Member id → its partitions, for every member in `subscriptions`.
    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        subscriptions: &BTreeMap<String, Subscription>,
    ) -> BTreeMap<String, Vec<TopicPartition>>;
}

/// The built-in assignor with this wire name.
pub fn builtin(name: &str) -> Option<Box<dyn Assignor>> {
    match name {
        "range" => Some(Box::new(RangeAssignor)),
        "roundrobin" => Some(Box::new(RoundRobinAssignor)),
        "sticky" => Some(Box::new(StickyAssignor)),
        "cooperative-sticky" => Some(Box::new(CooperativeStickyAssignor)),
        _ => None,
    }
}

/// Why a set of assignors has no rebalance protocol.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RebalanceProtocolError {
    #[error("no assignors configured")]
    NoAssignors,
    #[error("assignors {0:?} share no rebalance protocol")]
    NoCommonProtocol(Vec<&'static str>),
}

/// The rebalance protocol of a consumer configured with `assignors`: the highest one every
/// assignor supports (Java's `ConsumerCoordinator` constructor; SEMANTICS A21). So
/// `[range, cooperative-sticky]`, Java's default, is eager until `range` is dropped.
pub fn rebalance_protocol(assignors: &[&dyn Assignor]) -> Result<RebalanceProtocol, RebalanceProtocolError> {
    let (first, rest) = assignors.split_first().ok_or(RebalanceProtocolError::NoAssignors)?;
    first
        .rebalance_protocols()
        .iter()
        .copied()
        .filter(|protocol| rest.iter().all(|a| a.rebalance_protocols().contains(protocol)))
        .max()
        .ok_or_else(|| RebalanceProtocolError::NoCommonProtocol(assignors.iter().map(|a| a.name()).collect()))
}

/// Java's `String.compareTo`: lexicographic over UTF-16 code units.
pub(crate) fn java_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Member ids in `AbstractPartitionAssignor.MemberInfo` order: members with a group instance id
/// first, by instance id; then the others by member id. Ties (two members claiming one instance
/// id) fall back to the member id, so the order is total.
pub(crate) fn member_order<'a>(members: impl IntoIterator<Item = (&'a String, &'a Subscription)>) -> Vec<&'a str> {
    let mut members: Vec<(&str, Option<&str>)> =
        members.into_iter().map(|(id, s)| (id.as_str(), s.group_instance_id.as_deref())).collect();
    members.sort_by(|(a_id, a_instance), (b_id, b_instance)| {
        match (a_instance, b_instance) {
            (Some(a), Some(b)) => java_cmp(a, b),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        }
        .then_with(|| java_cmp(a_id, b_id))
    });
    members.into_iter().map(|(id, _)| id).collect()
}

/// The topics that can be assigned: subscribed by some member, present in metadata, with at
/// least one partition (Java's `AbstractPartitionAssignor.assign` builds the same map).
pub(crate) fn assignable_topics<'a>(
    partitions_per_topic: &'a BTreeMap<String, i32>,
    subscriptions: &BTreeMap<String, Subscription>,
) -> BTreeMap<&'a str, i32> {
    let subscribed: BTreeSet<&str> = subscriptions.values().flat_map(|s| s.topics.iter().map(String::as_str)).collect();
    partitions_per_topic
        .iter()
        .filter(|(topic, &count)| count > 0 && subscribed.contains(topic.as_str()))
        .map(|(topic, &count)| (topic.as_str(), count))
        .collect()
}

/// Every member with an empty list, to be filled.
pub(crate) fn empty_assignment(
    subscriptions: &BTreeMap<String, Subscription>,
) -> BTreeMap<String, Vec<TopicPartition>> {
    subscriptions.keys().map(|member| (member.clone(), Vec::new())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_string_order_is_utf16_order() {
        assert_eq!(java_cmp("consumer-10", "consumer-2"), Ordering::Less);
        assert_eq!(java_cmp("a", "ab"), Ordering::Less);
        // Above U+FFFF the orders differ: U+1F600 is F0.. in UTF-8 (after U+FF61's EF..) but
        // the surrogate pair D83D DE00 in UTF-16 (before FF61).
        let bmp_high = "\u{FF61}";
        let astral = "\u{1F600}";
        assert_eq!(bmp_high.cmp(astral), Ordering::Less);
        assert_eq!(java_cmp(bmp_high, astral), Ordering::Greater);
    }

    #[test]
    fn static_members_first_then_dynamic_by_member_id() {
        let mut subs = BTreeMap::new();
        subs.insert("m-a".to_string(), Subscription::new(["t"]));
        subs.insert(
            "m-b".to_string(),
            Subscription { group_instance_id: Some("I1".into()), ..Subscription::new(["t"]) },
        );
        subs.insert(
            "m-c".to_string(),
            Subscription { group_instance_id: Some("I0".into()), ..Subscription::new(["t"]) },
        );
        subs.insert("consumer-10".to_string(), Subscription::new(["t"]));
        assert_eq!(member_order(&subs), ["m-c", "m-b", "consumer-10", "m-a"]);
    }
}
