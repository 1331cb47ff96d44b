//! Properties of the assignors over random groups (SEMANTICS.md A20), which also cover the
//! cases where Java's `HashMap` order makes exact lists implementation-defined, and the
//! rebalance protocol choice (A21).

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use sluice_client::assignor::{
    self, rebalance_protocol, Assignor, CooperativeStickyAssignor, RangeAssignor, RebalanceProtocol,
    RebalanceProtocolError, RoundRobinAssignor, StickyAssignor, StickyAssignorUserData, Subscription,
};
use sluice_client::TopicPartition;

type Assignment = BTreeMap<String, Vec<TopicPartition>>;

/// A group: partition counts, each member's topics, what each member owned and in which
/// generation.
#[derive(Clone, Debug)]
struct Group {
    partitions: BTreeMap<String, i32>,
    topics: BTreeMap<String, Vec<String>>,
    owned: BTreeMap<String, Vec<TopicPartition>>,
    generation: BTreeMap<String, Option<i32>>,
}

impl Group {
    fn all_partitions(&self) -> BTreeSet<TopicPartition> {
        let subscribed: BTreeSet<&String> = self.topics.values().flatten().collect();
        self.partitions
            .iter()
            .filter(|(topic, _)| subscribed.contains(topic))
            .flat_map(|(topic, &count)| (0..count).map(move |p| TopicPartition::new(topic.clone(), p)))
            .collect()
    }

    /// The subscriptions as members of `assignor` send them: eager `sticky` members carry what
    /// they owned in the user data, cooperative ones in the subscription fields.
    fn subscriptions(&self, assignor: &str) -> BTreeMap<String, Subscription> {
        self.topics
            .iter()
            .map(|(member, topics)| {
                let owned = self.owned.get(member).cloned().unwrap_or_default();
                let generation = self.generation.get(member).copied().flatten();
                let mut subscription = Subscription { generation_id: generation, ..Subscription::new(topics.clone()) };
                if assignor == "sticky" {
                    if !owned.is_empty() || generation.is_some() {
                        let data = StickyAssignorUserData { previous_assignment: owned, generation };
                        subscription.user_data = Some(data.encode().unwrap());
                    }
                } else {
                    subscription.owned_partitions = owned;
                }
                (member.clone(), subscription)
            })
            .collect()
    }

    fn assign(&self, assignor: &dyn Assignor) -> Assignment {
        assignor.assign(&self.partitions, &self.subscriptions(assignor.name()))
    }

    fn generation_of(&self, member: &str) -> i32 {
        self.generation.get(member).copied().flatten().unwrap_or(-1)
    }

    fn owners_of(&self, tp: &TopicPartition) -> Vec<&str> {
        self.owned.iter().filter(|(_, owned)| owned.contains(tp)).map(|(m, _)| m.as_str()).collect()
    }
}

fn counts(assignment: &Assignment) -> (usize, usize) {
    let sizes = assignment.values().map(Vec::len);
    (sizes.clone().min().unwrap_or(0), sizes.max().unwrap_or(0))
}

/// Every partition at most once, only to a subscriber of its topic, every member present;
/// with `complete`, every partition exactly once.
fn check_valid(group: &Group, assignment: &Assignment, complete: bool) -> Result<(), TestCaseError> {
    prop_assert_eq!(assignment.keys().collect::<Vec<_>>(), group.topics.keys().collect::<Vec<_>>());
    let mut seen = BTreeSet::new();
    for (member, partitions) in assignment {
        for tp in partitions {
            prop_assert!(seen.insert(tp.clone()), "{} assigned twice", tp);
            prop_assert!(group.topics[member].contains(&tp.topic), "{} given {} without subscribing", member, tp);
        }
    }
    let all = group.all_partitions();
    prop_assert!(seen.is_subset(&all), "assigned partitions that do not exist: {:?}", seen.difference(&all));
    if complete {
        prop_assert_eq!(seen, all, "not every partition assigned");
    }
    Ok(())
}

fn member_ids() -> impl Strategy<Value = Vec<String>> {
    // Ids whose Java order and numeric order disagree ("c-10" < "c-2").
    prop::collection::btree_set(prop_oneof!["c-[0-9]{1,2}", "[a-z]{1,4}"], 1..8).prop_map(|s| s.into_iter().collect())
}

fn partition_counts() -> impl Strategy<Value = BTreeMap<String, i32>> {
    prop::collection::vec(1..9i32, 1..5)
        .prop_map(|counts| counts.into_iter().enumerate().map(|(i, c)| (format!("t{i}"), c)).collect())
}

/// A group whose members all subscribe to every topic, with a previous assignment where each
/// partition had at most one owner, all in generation `generation` (as after a stable round).
fn equal_group_disjoint(generation_max: i32) -> impl Strategy<Value = Group> {
    (partition_counts(), member_ids(), 0..=generation_max)
        .prop_flat_map(|(partitions, members, generation)| {
            let all: Vec<TopicPartition> =
                partitions.iter().flat_map(|(t, &c)| (0..c).map(move |p| TopicPartition::new(t.clone(), p))).collect();
            let topics: Vec<String> = partitions.keys().cloned().collect();
            // Owner index per partition; `members.len()` (and beyond) means unowned.
            let owners = prop::collection::vec(0..members.len() * 2, all.len());
            (Just(partitions), Just(members), Just(topics), Just(all), owners, Just(generation))
        })
        .prop_map(|(partitions, members, topics, all, owners, generation)| {
            let mut owned: BTreeMap<String, Vec<TopicPartition>> = BTreeMap::new();
            for (tp, owner) in all.into_iter().zip(owners) {
                if let Some(member) = members.get(owner) {
                    owned.entry(member.clone()).or_default().push(tp);
                }
            }
            let generation = members.iter().map(|m| (m.clone(), owned.contains_key(m).then_some(generation))).collect();
            Group {
                partitions,
                topics: members.iter().map(|m| (m.clone(), topics.clone())).collect(),
                owned,
                generation,
            }
        })
}

/// Any group: subsets of the topics (sometimes one missing from metadata), claims on any
/// partitions (overlapping, stale, or of partitions that no longer exist), any generations.
fn any_group() -> impl Strategy<Value = Group> {
    (partition_counts(), member_ids())
        .prop_flat_map(|(partitions, members)| {
            let n = members.len();
            let topic_names: Vec<String> = partitions.keys().cloned().chain(["tX".to_string()]).collect();
            let topics =
                prop::collection::vec(prop::sample::subsequence(topic_names.clone(), 1..=topic_names.len()), n);
            let claims =
                prop::collection::vec(prop::collection::vec((prop::sample::select(topic_names), 0..10i32), 0..6), n);
            let generations = prop::collection::vec(prop::option::of(0..3i32), n);
            (Just(partitions), Just(members), topics, claims, generations)
        })
        .prop_map(|(partitions, members, topics, claims, generations)| Group {
            partitions,
            topics: members.iter().cloned().zip(topics).collect(),
            owned: members
                .iter()
                .cloned()
                .zip(claims.into_iter().map(|c| c.into_iter().map(|(t, p)| TopicPartition::new(t, p)).collect()))
                .collect(),
            generation: members.iter().cloned().zip(generations).collect(),
        })
}

/// `any_group` with every member subscribed to the same topics.
fn any_equal_group() -> impl Strategy<Value = Group> {
    any_group().prop_map(|mut group| {
        let topics = group.topics.values().next().cloned().unwrap_or_default();
        group.topics.values_mut().for_each(|t| *t = topics.clone());
        group
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A20: every partition exactly once, to a subscriber, whatever the input; the eager
    /// assignors never leave one out.
    #[test]
    fn a20_eager_assignors_assign_every_partition_exactly_once(group in any_group()) {
        for assignor in [&RangeAssignor as &dyn Assignor, &RoundRobinAssignor, &StickyAssignor] {
            check_valid(&group, &group.assign(assignor), true)?;
        }
        check_valid(&group, &group.assign(&CooperativeStickyAssignor), false)?;
    }

    /// A20: with equal subscriptions, counts differ by at most one.
    #[test]
    fn a20_equal_subscriptions_are_balanced(group in any_equal_group()) {
        for assignor in [&RoundRobinAssignor as &dyn Assignor, &StickyAssignor] {
            let (min, max) = counts(&group.assign(assignor));
            prop_assert!(max - min <= 1, "{}: min {} max {}", assignor.name(), min, max);
        }
    }

    /// A20 stickiness: members that owned no more than their share keep everything.
    #[test]
    fn a20_members_within_quota_keep_their_partitions(group in equal_group_disjoint(3)) {
        let total = group.all_partitions().len();
        let members = group.topics.len();
        let (quota_min, quota_max) = (total / members, total.div_ceil(members));
        let owners_at_max = group.owned.values().filter(|o| o.len() >= quota_max).count();
        // Enough max slots for every member that owned max or more?
        let slots_suffice = quota_min == quota_max || owners_at_max <= total % members;
        for assignor in [&StickyAssignor as &dyn Assignor, &CooperativeStickyAssignor] {
            let assignment = group.assign(assignor);
            check_valid(&group, &assignment, assignor.name() == "sticky")?;
            for (member, owned) in &group.owned {
                let keeps = owned.iter().all(|tp| assignment[member].contains(tp));
                if owned.len() <= quota_min || (slots_suffice && owned.len() <= quota_max) {
                    prop_assert!(keeps, "{}: {} owned {:?}, got {:?}", assignor.name(), member, owned, assignment[member]);
                }
                // Nobody keeps more than the quota allows.
                let kept = owned.iter().filter(|tp| assignment[member].contains(tp)).count();
                prop_assert!(kept <= quota_max);
            }
        }
    }

    /// A20 cooperative: a partition goes to member X only if no other member still lists it as
    /// owned in a generation as new as X's; and then X listed it too (it is not moving).
    #[test]
    fn a20_cooperative_never_hands_over_a_partition_still_owned(group in any_equal_group()) {
        let assignment = group.assign(&CooperativeStickyAssignor);
        check_valid(&group, &assignment, false)?;
        for (x, partitions) in &assignment {
            for tp in partitions {
                for y in group.owners_of(tp).into_iter().filter(|y| y != x) {
                    prop_assert!(group.owned[x].contains(tp), "{} given to {} while {} owns it", tp, x, y);
                    prop_assert!(group.generation_of(x) > group.generation_of(y), "{} given to {} while {} owns it in a generation as new", tp, x, y);
                }
            }
        }
    }

    /// The same without equal subscriptions (Java's general path): what one member listed as
    /// owned never goes to a member that did not list it.
    #[test]
    fn a20_cooperative_general_case_withholds_moving_partitions(group in any_group()) {
        let assignment = group.assign(&CooperativeStickyAssignor);
        for (x, partitions) in &assignment {
            for tp in partitions {
                if group.owners_of(tp).iter().any(|y| y != x) {
                    prop_assert!(group.owned[x].contains(tp), "{} given to {} while another member owns it", tp, x);
                }
            }
        }
    }

    /// Cooperative is the eager sticky assignment minus the partitions that change owner.
    #[test]
    fn cooperative_is_sticky_minus_moving_partitions(group in any_group()) {
        let eager = group.assign(&StickyAssignor);
        let cooperative = group.assign(&CooperativeStickyAssignor);
        for (member, partitions) in &eager {
            let kept: BTreeSet<&TopicPartition> = cooperative[member].iter().collect();
            prop_assert!(kept.iter().all(|tp| partitions.contains(tp)));
            for tp in partitions.iter().filter(|tp| !kept.contains(tp)) {
                prop_assert!(group.owners_of(tp).iter().any(|y| y != member), "{} withheld from {} without another owner", tp, member);
            }
        }
    }

    /// KIP-429: after the round that revokes, the next round (owners report what they kept,
    /// one generation on) hands everything out, balanced, and takes nothing away.
    #[test]
    fn cooperative_second_round_completes_the_move(group in equal_group_disjoint(3)) {
        let first = group.assign(&CooperativeStickyAssignor);
        let next_generation = group.generation.values().flatten().max().map_or(1, |g| g + 1);
        let second_group = Group {
            owned: first.clone(),
            generation: first.keys().map(|m| (m.clone(), Some(next_generation))).collect(),
            ..group.clone()
        };
        let second = second_group.assign(&CooperativeStickyAssignor);
        check_valid(&group, &second, true)?;
        let (min, max) = counts(&second);
        prop_assert!(max - min <= 1);
        for (member, kept) in &first {
            prop_assert!(kept.iter().all(|tp| second[member].contains(tp)), "{} lost partitions in round two", member);
        }
    }

    /// Fresh unequal subscriptions end balanced in Java's sense: no member could take a
    /// partition of one of its topics from a member with two or more partitions than it.
    #[test]
    fn sticky_fresh_unequal_subscriptions_are_balanced(group in any_group()) {
        let group = Group { owned: BTreeMap::new(), generation: BTreeMap::new(), ..group };
        let assignment = group.assign(&StickyAssignor);
        let owner: BTreeMap<&TopicPartition, &String> =
            assignment.iter().flat_map(|(m, tps)| tps.iter().map(move |tp| (tp, m))).collect();
        for (member, partitions) in &assignment {
            for (tp, other) in &owner {
                if group.topics[member].contains(&tp.topic) && *other != member {
                    prop_assert!(partitions.len() + 1 >= assignment[*other].len(), "{} ({}) could take {} from {} ({})", member, partitions.len(), tp, other, assignment[*other].len());
                }
            }
        }
    }

    /// Pure functions: the same input gives the same output.
    #[test]
    fn assignors_are_deterministic(group in any_group()) {
        for name in ["range", "roundrobin", "sticky", "cooperative-sticky"] {
            let assignor = assignor::builtin(name).unwrap();
            prop_assert_eq!(group.assign(assignor.as_ref()), group.assign(assignor.as_ref()));
        }
    }
}

#[test]
fn a20_balance_and_stickiness_in_a_worked_example() {
    // Three members own 3, 3, 2 of eight partitions; a fourth joins. Quotas 2/2: each old
    // member keeps two (the lowest partition numbers), the newcomer gets the two released.
    let topics = vec!["t0".to_string(), "t1".to_string()];
    let group = Group {
        partitions: [("t0".to_string(), 4), ("t1".to_string(), 4)].into(),
        topics: ["a", "b", "c", "d"].iter().map(|m| (m.to_string(), topics.clone())).collect(),
        owned: [
            (
                "a".to_string(),
                vec![TopicPartition::new("t0", 0), TopicPartition::new("t0", 3), TopicPartition::new("t1", 2)],
            ),
            (
                "b".to_string(),
                vec![TopicPartition::new("t0", 1), TopicPartition::new("t1", 0), TopicPartition::new("t1", 3)],
            ),
            ("c".to_string(), vec![TopicPartition::new("t0", 2), TopicPartition::new("t1", 1)]),
        ]
        .into(),
        generation: ["a", "b", "c"].iter().map(|m| (m.to_string(), Some(4))).collect(),
    };
    let eager = group.assign(&StickyAssignor);
    assert_eq!(eager["a"], [TopicPartition::new("t0", 0), TopicPartition::new("t1", 2)]);
    assert_eq!(eager["b"], [TopicPartition::new("t0", 1), TopicPartition::new("t1", 0)]);
    assert_eq!(eager["c"], [TopicPartition::new("t0", 2), TopicPartition::new("t1", 1)]);
    assert_eq!(eager["d"], [TopicPartition::new("t0", 3), TopicPartition::new("t1", 3)]);
    let cooperative = group.assign(&CooperativeStickyAssignor);
    assert!(cooperative["d"].is_empty(), "both of d's partitions are still owned: {cooperative:?}");
    assert_eq!(cooperative["a"], eager["a"]);
}

#[test]
fn a21_rebalance_protocol_is_the_highest_all_assignors_share() {
    let range: &dyn Assignor = &RangeAssignor;
    let cooperative: &dyn Assignor = &CooperativeStickyAssignor;
    // Java's default [range, cooperative-sticky]: eager until range is dropped.
    assert_eq!(rebalance_protocol(&[range, cooperative]), Ok(RebalanceProtocol::Eager));
    assert_eq!(rebalance_protocol(&[cooperative, range]), Ok(RebalanceProtocol::Eager));
    assert_eq!(rebalance_protocol(&[cooperative]), Ok(RebalanceProtocol::Cooperative));
    assert_eq!(rebalance_protocol(&[&StickyAssignor, &RoundRobinAssignor]), Ok(RebalanceProtocol::Eager));
    assert_eq!(rebalance_protocol(&[]), Err(RebalanceProtocolError::NoAssignors));

    struct CooperativeOnly;
    impl Assignor for CooperativeOnly {
        fn name(&self) -> &'static str {
            "cooperative-only"
        }
        fn rebalance_protocols(&self) -> &[RebalanceProtocol] {
            &[RebalanceProtocol::Cooperative]
        }
        fn assign(&self, _: &BTreeMap<String, i32>, s: &BTreeMap<String, Subscription>) -> Assignment {
            s.keys().map(|m| (m.clone(), Vec::new())).collect()
        }
    }
    assert_eq!(
        rebalance_protocol(&[&CooperativeOnly, range]),
        Err(RebalanceProtocolError::NoCommonProtocol(vec!["cooperative-only", "range"]))
    );
    assert!(RebalanceProtocol::Eager < RebalanceProtocol::Cooperative);
}

#[test]
fn wire_names_and_protocols() {
    for (name, protocols) in [
        ("range", &[RebalanceProtocol::Eager][..]),
        ("roundrobin", &[RebalanceProtocol::Eager]),
        ("sticky", &[RebalanceProtocol::Eager]),
        ("cooperative-sticky", &[RebalanceProtocol::Cooperative, RebalanceProtocol::Eager]),
    ] {
        let assignor = assignor::builtin(name).unwrap();
        assert_eq!(assignor.name(), name);
        assert_eq!(assignor.rebalance_protocols(), protocols);
    }
    assert!(assignor::builtin("uniform").is_none());
}

#[test]
fn user_data_for_the_next_subscription() {
    use sluice_client::assignor::LastAssignment;
    let partitions = [TopicPartition::new("t0", 1)];
    let last = LastAssignment { partitions: &partitions, generation_id: 6 };
    assert_eq!(RangeAssignor.subscription_user_data(Some(last)), Ok(None));
    assert_eq!(StickyAssignor.subscription_user_data(None), Ok(None));
    let sticky = StickyAssignor.subscription_user_data(Some(last)).unwrap().unwrap();
    assert_eq!(
        StickyAssignorUserData::decode(&sticky).unwrap(),
        StickyAssignorUserData { previous_assignment: partitions.to_vec(), generation: Some(6) }
    );
    assert_eq!(CooperativeStickyAssignor.subscription_user_data(None), Ok(Some(vec![0xff; 4])));
    assert_eq!(CooperativeStickyAssignor.subscription_user_data(Some(last)), Ok(Some(vec![0, 0, 0, 6])));
}
