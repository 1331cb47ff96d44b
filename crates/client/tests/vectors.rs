//! The assignor vectors of `../shared/vectors/assignors.json` (SEMANTICS.md section 7, items
//! A1-A19, and Appendix A), computed by running Kafka's own Java assignors. Expected lists are
//! compared as sets per member; every member must appear, possibly with an empty list.
//!
//! The vectors give previous ownership as Subscription fields (`owned`, `generation`). For
//! `cooperative-sticky` that is where a member puts it; for the eager `sticky` assignor it goes
//! into the user data, encoded as Java's `StickyAssignor` encodes it, so these cases also check
//! that encoding end to end.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::Value;
use sluice_client::assignor::{self, StickyAssignorUserData, Subscription};
use sluice_client::TopicPartition;

fn vectors() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors/assignors.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read the assignor vectors at {}: {e}. They live in the `shared` directory beside the \
             repository (a checkout at X/main expects X/shared/vectors/assignors.json).",
            path.display()
        )
    });
    serde_json::from_str(&text).expect("assignors.json is valid JSON")
}

fn case(id: &str) -> Value {
    let vectors = vectors();
    let cases = vectors["cases"].as_array().expect("a `cases` array");
    cases.iter().find(|c| c["id"] == id).unwrap_or_else(|| panic!("no case {id} in assignors.json")).clone()
}

/// `"t0-12"` → t0 partition 12 (topics may contain `-`; the partition follows the last one).
fn topic_partition(s: &str) -> TopicPartition {
    let (topic, partition) = s.rsplit_once('-').unwrap_or_else(|| panic!("bad partition {s}"));
    TopicPartition::new(topic, partition.parse().unwrap_or_else(|_| panic!("bad partition {s}")))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().map(|s| s.as_str().expect("a string").to_string()).collect()).unwrap_or_default()
}

/// Builds the assignor's input from a case, as a member of that assignor would send it.
fn input(case: &Value) -> (BTreeMap<String, i32>, BTreeMap<String, Subscription>) {
    let assignor = case["assignor"].as_str().unwrap();
    let partitions = case["partitions"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(topic, count)| (topic.clone(), count.as_i64().unwrap() as i32))
        .collect();
    let mut subscriptions = BTreeMap::new();
    for (member, m) in case["members"].as_object().unwrap() {
        let owned: Vec<TopicPartition> = strings(&m["owned"]).iter().map(|s| topic_partition(s)).collect();
        let generation = m["generation"].as_i64().map(|g| g as i32);
        let mut subscription = Subscription {
            group_instance_id: m["group_instance_id"].as_str().map(str::to_string),
            generation_id: generation,
            ..Subscription::new(strings(&m["topics"]))
        };
        if assignor == "sticky" {
            // An eager member has revoked everything before joining: what it owned travels
            // in the user data.
            if !owned.is_empty() || generation.is_some() {
                let user_data = StickyAssignorUserData { previous_assignment: owned, generation };
                subscription.user_data = Some(user_data.encode().unwrap());
            }
        } else {
            subscription.owned_partitions = owned;
        }
        subscriptions.insert(member.clone(), subscription);
    }
    (partitions, subscriptions)
}

fn expected(case: &Value) -> BTreeMap<String, BTreeSet<TopicPartition>> {
    case["expected"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(member, tps)| (member.clone(), strings(tps).iter().map(|s| topic_partition(s)).collect()))
        .collect()
}

fn run(case: &Value) -> BTreeMap<String, BTreeSet<TopicPartition>> {
    let name = case["assignor"].as_str().unwrap();
    let assignor = assignor::builtin(name).unwrap_or_else(|| panic!("no assignor {name}"));
    assert_eq!(assignor.name(), name);
    let (partitions, subscriptions) = input(case);
    let assignment = assignor.assign(&partitions, &subscriptions);
    assignment.into_iter().map(|(member, tps)| (member, tps.into_iter().collect())).collect()
}

/// Runs the named cases; all must match.
fn check(ids: &[&str]) {
    for id in ids {
        let case = case(id);
        assert_eq!(run(&case), expected(&case), "case {id}: {}", case["title"]);
    }
}

#[test]
fn every_case_in_the_file_passes() {
    let vectors = vectors();
    let cases = vectors["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 25, "assignors.json changed: add the new cases to the item tests below");
    let failures: Vec<String> = cases
        .iter()
        .filter(|case| run(case) != expected(case))
        .map(|case| format!("{}: got {:?}", case["id"], run(case)))
        .collect();
    assert!(failures.is_empty(), "failing cases: {failures:#?}");
}

#[test]
fn a1_range_two_topics_two_members() {
    check(&["R1"]);
}

#[test]
fn a2_range_first_members_get_the_remainder() {
    check(&["R2"]);
}

#[test]
fn a3_range_more_members_than_partitions_leaves_one_empty() {
    check(&["R3"]);
}

#[test]
fn a4_range_heterogeneous_subscriptions() {
    check(&["R4"]);
}

#[test]
fn a5_range_member_ids_in_java_string_order() {
    check(&["R5"]);
}

#[test]
fn a6_range_static_members_first_by_instance_id() {
    check(&["R6"]);
}

#[test]
fn a7_range_recreated_members_swap_assignments() {
    check(&["R1", "R8"]);
    // Same input shape, member ids renamed: each id takes the place its sort position gives it.
    let (r1, r8) = (expected(&case("R1")), expected(&case("R8")));
    assert_eq!(r1["C0"], r8["C2"]);
    assert_eq!(r1["C1"], r8["C3"]);
}

#[test]
fn s7_topics_absent_from_metadata_are_skipped() {
    check(&["R7"]);
}

#[test]
fn a8_roundrobin_two_members() {
    check(&["RR1"]);
}

#[test]
fn a9_roundrobin_three_members() {
    check(&["RR2"]);
}

#[test]
fn a10_roundrobin_heterogeneous_subscriptions() {
    check(&["RR3"]);
}

#[test]
fn a11_roundrobin_one_topic_seven_partitions() {
    check(&["RR4"]);
}

#[test]
fn a12_sticky_fresh_equals_round_robin() {
    check(&["S6", "K3"]);
}

#[test]
fn a13_sticky_fresh_four_topics() {
    check(&["S1"]);
}

#[test]
fn a14_sticky_member_leaves_owned_partitions_stay() {
    check(&["S2"]);
}

#[test]
fn a15_sticky_heterogeneous_fresh_then_member_leaves() {
    check(&["S3", "S4"]);
}

#[test]
fn a16_sticky_new_member_takes_the_surplus() {
    check(&["S5"]);
}

#[test]
fn a17_cooperative_withholds_moving_partitions_then_hands_them_over() {
    check(&["K1", "K2"]);
}

#[test]
fn a18_cooperative_two_rounds_eager_one() {
    check(&["K5", "K6", "S7"]);
}

#[test]
fn a19_cooperative_partitions_of_a_leaver_move_in_the_first_round() {
    check(&["K4"]);
}
