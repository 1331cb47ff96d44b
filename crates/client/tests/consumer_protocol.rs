//! The consumer protocol encodings: byte-exact against what Kafka's Java client writes (built
//! by hand from the schemas), round trips, forward compatibility and bad bytes.

use proptest::prelude::*;
use sluice_client::assignor::{
    decode_cooperative_user_data, encode_cooperative_user_data, StickyAssignorUserData, Subscription,
};
use sluice_client::consumer_protocol::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, DecodeError, EncodeError, TopicPartitions, VERSION_MAX,
};
use sluice_client::TopicPartition;

/// Hand-assembled wire bytes.
#[derive(Default)]
struct Wire(Vec<u8>);

impl Wire {
    fn i16(mut self, v: i16) -> Self {
        self.0.extend(v.to_be_bytes());
        self
    }
    fn i32(mut self, v: i32) -> Self {
        self.0.extend(v.to_be_bytes());
        self
    }
    fn string(self, s: &str) -> Self {
        let mut w = self.i16(s.len() as i16);
        w.0.extend(s.as_bytes());
        w
    }
    fn bytes(self, b: &[u8]) -> Self {
        let mut w = self.i32(b.len() as i32);
        w.0.extend(b);
        w
    }
    /// `[topic partitions:[i32]]`
    fn topic_partitions(self, groups: &[(&str, &[i32])]) -> Self {
        let mut w = self.i32(groups.len() as i32);
        for (topic, partitions) in groups {
            w = w.string(topic).i32(partitions.len() as i32);
            for p in *partitions {
                w = w.i32(*p);
            }
        }
        w
    }
}

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

/// The member Java would describe as `new Subscription([t1, t0], null, [t1-2, t0-1, t0-0], 5,
/// Optional.of("r1"))`.
fn java_subscription() -> Subscription {
    Subscription {
        topics: vec!["t1".into(), "t0".into()],
        user_data: None,
        owned_partitions: vec![tp("t1", 2), tp("t0", 1), tp("t0", 0)],
        generation_id: Some(5),
        group_instance_id: None,
        rack_id: Some("r1".into()),
    }
}

#[test]
fn subscription_bytes_equal_javas_at_every_version() {
    let protocol = java_subscription().to_protocol();
    // Java sorts topics and owned partitions, groups owned partitions by topic.
    let prefix = |version| Wire::default().i16(version).i32(2).string("t0").string("t1").i32(-1);
    let owned: &[(&str, &[i32])] = &[("t0", &[0, 1]), ("t1", &[2])];
    let v0 = prefix(0);
    let v1 = prefix(1).topic_partitions(owned);
    let v2 = prefix(2).topic_partitions(owned).i32(5);
    let v3 = prefix(3).topic_partitions(owned).i32(5).string("r1");
    for (version, wire) in [(0, v0), (1, v1), (2, v2), (3, v3)] {
        assert_eq!(protocol.encode(version).unwrap(), wire.0, "version {version}");
    }
    // The same bytes, as Kafka 4.3.1's ConsumerProtocol.serializeSubscription printed them.
    assert_eq!(
        hex(&protocol.encode(3).unwrap()),
        "0003000000020002743000027431ffffffff00000002000274300000000200000000000000010002743100000001000000020000000500027231"
    );
}

#[test]
fn subscription_defaults_are_written_as_java_writes_them() {
    // No owned partitions, no generation, no rack, some user data.
    let subscription = Subscription { user_data: Some(vec![1, 2, 3]), ..Subscription::new(["orders"]) };
    let expected = Wire::default().i16(3).i32(1).string("orders").bytes(&[1, 2, 3]).i32(0).i32(-1).i16(-1);
    assert_eq!(subscription.to_protocol().encode(VERSION_MAX).unwrap(), expected.0);
}

#[test]
fn assignment_bytes_equal_javas() {
    // Java groups by topic in order of first appearance and merges a topic that reappears.
    let partitions = [tp("t0", 0), tp("t1", 0), tp("t0", 1)];
    let assignment = ConsumerProtocolAssignment::from_partitions(&partitions, None);
    let body = |version| Wire::default().i16(version).topic_partitions(&[("t0", &[0, 1]), ("t1", &[0])]).i32(-1);
    for version in 0..=VERSION_MAX {
        assert_eq!(assignment.encode(version).unwrap(), body(version).0, "version {version}");
    }
    assert_eq!(
        hex(&assignment.encode(3).unwrap()),
        "00030000000200027430000000020000000000000001000274310000000100000000ffffffff"
    );
    assert_eq!(assignment.partitions(), [tp("t0", 0), tp("t0", 1), tp("t1", 0)]);
}

#[test]
fn sticky_user_data_bytes_equal_javas() {
    let data = StickyAssignorUserData {
        previous_assignment: vec![tp("t0", 0), tp("t0", 2), tp("t1", 1)],
        generation: Some(3),
    };
    let expected = Wire::default().topic_partitions(&[("t0", &[0, 2]), ("t1", &[1])]).i32(3);
    assert_eq!(data.encode().unwrap(), expected.0);
    assert_eq!(hex(&expected.0), "000000020002743000000002000000000000000200027431000000010000000100000003");
    assert_eq!(StickyAssignorUserData::decode(&expected.0).unwrap(), data);
    // Cooperative: the generation alone; -1 before the first assignment.
    assert_eq!(encode_cooperative_user_data(-1), [0xff; 4]);
    assert_eq!(decode_cooperative_user_data(&[0, 0, 0, 9, 0xaa]).unwrap(), 9);
    assert!(decode_cooperative_user_data(&[0, 0, 9]).is_err());
}

#[test]
fn librdkafka_subscription_decodes() {
    // librdkafka writes v3 with empty (not null) user data when its assignor has none, an
    // empty owned array, generation -1 and a null rack.
    let bytes = Wire::default().i16(3).i32(1).string("orders").bytes(&[]).i32(0).i32(-1).i16(-1);
    let decoded = ConsumerProtocolSubscription::decode(&bytes.0).unwrap();
    assert_eq!(decoded.user_data, Some(vec![]));
    let subscription = Subscription::from_protocol(decoded, Some("instance-1".into()));
    assert_eq!(subscription.generation_id, None);
    assert_eq!(subscription.rack_id, None);
    assert_eq!(subscription.group_instance_id.as_deref(), Some("instance-1"));
}

#[test]
fn from_protocol_follows_javas_deserialize_subscription() {
    let protocol = ConsumerProtocolSubscription {
        topics: vec!["t0".into()],
        user_data: None,
        owned_partitions: vec![TopicPartitions { topic: "t0".into(), partitions: vec![2, 0] }],
        generation_id: 7,
        rack_id: Some(String::new()),
    };
    let subscription = Subscription::from_protocol(protocol, None);
    assert_eq!(subscription.owned_partitions, [tp("t0", 2), tp("t0", 0)]);
    assert_eq!(subscription.generation_id, Some(7));
    assert_eq!(subscription.rack_id, None, "an empty rack is no rack");
}

#[test]
fn newer_versions_read_the_known_prefix() {
    // A v4 subscription: the v3 fields, then a field this reader does not know.
    let v4 = Wire::default()
        .i16(4)
        .i32(1)
        .string("t0")
        .bytes(&[7])
        .topic_partitions(&[("t0", &[1])])
        .i32(12)
        .string("rack-a")
        .string("a field from the future");
    let (version, decoded) = ConsumerProtocolSubscription::decode_with_version(&v4.0).unwrap();
    assert_eq!(version, 4);
    assert_eq!(decoded.topics, ["t0"]);
    assert_eq!(decoded.user_data, Some(vec![7]));
    assert_eq!(decoded.owned_partitions_flat(), [tp("t0", 1)]);
    assert_eq!(decoded.generation_id, 12);
    assert_eq!(decoded.rack_id.as_deref(), Some("rack-a"));

    // An older version followed by extra bytes: the extra bytes are ignored, not read as v1+.
    let v0 = Wire::default().i16(0).i32(1).string("t0").i32(-1).i32(0);
    let decoded = ConsumerProtocolSubscription::decode(&v0.0).unwrap();
    assert!(decoded.owned_partitions.is_empty());
    assert_eq!(decoded.generation_id, -1);

    let v9 = Wire::default().i16(9).topic_partitions(&[("t0", &[3])]).i32(-1).i32(42);
    let (version, decoded) = ConsumerProtocolAssignment::decode_with_version(&v9.0).unwrap();
    assert_eq!((version, decoded.partitions()), (9, vec![tp("t0", 3)]));
}

#[test]
fn negative_versions_are_refused() {
    let bytes = Wire::default().i16(-1).i32(0).i32(-1);
    assert_eq!(ConsumerProtocolSubscription::decode(&bytes.0), Err(DecodeError::UnsupportedVersion(-1)));
    assert_eq!(ConsumerProtocolAssignment::decode(&bytes.0), Err(DecodeError::UnsupportedVersion(-1)));
    let subscription = ConsumerProtocolSubscription::default();
    assert_eq!(subscription.encode(-1), Err(EncodeError::UnsupportedVersion(-1)));
    assert_eq!(subscription.encode(4), Err(EncodeError::UnsupportedVersion(4)));
    assert_eq!(ConsumerProtocolAssignment::default().encode(4), Err(EncodeError::UnsupportedVersion(4)));
}

#[test]
fn every_truncation_is_an_error() {
    let subscription = java_subscription().to_protocol().encode(3).unwrap();
    for cut in 0..subscription.len() {
        assert!(ConsumerProtocolSubscription::decode(&subscription[..cut]).is_err(), "cut at {cut}");
    }
    let assignment = ConsumerProtocolAssignment::from_partitions(&[tp("t0", 0)], Some(vec![1, 2])).encode(3).unwrap();
    for cut in 0..assignment.len() {
        assert!(ConsumerProtocolAssignment::decode(&assignment[..cut]).is_err(), "cut at {cut}");
    }
    let sticky =
        StickyAssignorUserData { previous_assignment: vec![tp("t0", 0)], generation: Some(1) }.encode().unwrap();
    // Without the generation it is v0; any shorter cut is an error.
    for cut in 0..sticky.len() - 4 {
        assert!(StickyAssignorUserData::decode(&sticky[..cut]).is_err(), "cut at {cut}");
    }
}

#[test]
fn lying_counts_are_refused_before_allocating() {
    let huge = Wire::default().i16(3).i32(i32::MAX);
    assert!(matches!(
        ConsumerProtocolSubscription::decode(&huge.0),
        Err(DecodeError::ArrayTooLong { field: "topics", count: i32::MAX, remaining: 0 })
    ));
    // One topic of two bytes fits; three cannot fit in four bytes (2 bytes each at least).
    let three = Wire::default().i16(0).i32(3).string("a");
    assert!(matches!(ConsumerProtocolSubscription::decode(&three.0), Err(DecodeError::ArrayTooLong { .. })));
    let partitions = Wire::default().i16(0).i32(1).string("t").i32(1_000_000_000);
    assert!(matches!(
        ConsumerProtocolAssignment::decode(&partitions.0),
        Err(DecodeError::ArrayTooLong { field: "assigned_partitions", .. })
    ));
    let user_data = Wire::default().i16(0).i32(0).i32(i32::MAX);
    assert!(matches!(
        ConsumerProtocolSubscription::decode(&user_data.0),
        Err(DecodeError::Truncated { field: "user_data", .. })
    ));
    let sticky = Wire::default().i32(i32::MAX);
    assert!(matches!(StickyAssignorUserData::decode(&sticky.0), Err(DecodeError::ArrayTooLong { .. })));
}

#[test]
fn null_where_the_schema_forbids_it_is_an_error() {
    let null_topics = Wire::default().i16(0).i32(-1).i32(-1);
    assert_eq!(
        ConsumerProtocolSubscription::decode(&null_topics.0),
        Err(DecodeError::UnexpectedNull { field: "topics", length: -1 })
    );
    let null_topic = Wire::default().i16(0).i32(1).i16(-1).i32(-1);
    assert!(matches!(
        ConsumerProtocolSubscription::decode(&null_topic.0),
        Err(DecodeError::UnexpectedNull { field: "topics", .. })
    ));
    let null_owned = Wire::default().i16(1).i32(0).i32(-1).i32(-1);
    assert!(matches!(
        ConsumerProtocolSubscription::decode(&null_owned.0),
        Err(DecodeError::UnexpectedNull { field: "owned_partitions", .. })
    ));
    // Null user data and rack are fine, whatever the negative length.
    let nulls = Wire::default().i16(3).i32(0).i32(-7).i32(0).i32(-1).i16(-2);
    let decoded = ConsumerProtocolSubscription::decode(&nulls.0).unwrap();
    assert_eq!((decoded.user_data, decoded.rack_id), (None, None));
}

#[test]
fn invalid_utf8_is_an_error() {
    let mut bytes = Wire::default().i16(0).i32(1).i16(2).0;
    bytes.extend([0xc3, 0x28]);
    bytes.extend((-1i32).to_be_bytes());
    assert_eq!(ConsumerProtocolSubscription::decode(&bytes), Err(DecodeError::InvalidUtf8 { field: "topics" }));
}

#[test]
fn oversized_strings_are_refused_when_encoding() {
    let long = "t".repeat(i16::MAX as usize + 1);
    let subscription = ConsumerProtocolSubscription { topics: vec![long], ..Default::default() };
    assert!(matches!(subscription.encode(0), Err(EncodeError::TooLong { field: "topics", .. })));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn topic() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._-]{1,12}|\\PC{0,6}"
}

fn topic_partitions() -> impl Strategy<Value = Vec<TopicPartitions>> {
    prop::collection::vec(
        (topic(), prop::collection::vec(any::<i32>(), 0..5))
            .prop_map(|(topic, partitions)| TopicPartitions { topic, partitions }),
        0..4,
    )
}

fn subscription() -> impl Strategy<Value = ConsumerProtocolSubscription> {
    (
        prop::collection::vec(topic(), 0..5),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..16)),
        topic_partitions(),
        any::<i32>(),
        prop::option::of(topic()),
    )
        .prop_map(|(topics, user_data, owned_partitions, generation_id, rack_id)| ConsumerProtocolSubscription {
            topics,
            user_data,
            owned_partitions,
            generation_id,
            rack_id,
        })
}

proptest! {
    #[test]
    fn subscriptions_round_trip_at_every_version(subscription in subscription(), version in 0..=VERSION_MAX) {
        let bytes = subscription.encode(version).unwrap();
        let (read_version, decoded) = ConsumerProtocolSubscription::decode_with_version(&bytes).unwrap();
        prop_assert_eq!(read_version, version);
        // Fields the version lacks come back as their defaults.
        let mut expected = subscription.clone();
        if version < 1 { expected.owned_partitions.clear(); }
        if version < 2 { expected.generation_id = -1; }
        if version < 3 { expected.rack_id = None; }
        prop_assert_eq!(decoded, expected);
    }

    #[test]
    fn assignments_round_trip(partitions in topic_partitions(), user_data in prop::option::of(prop::collection::vec(any::<u8>(), 0..16)), version in 0..=VERSION_MAX) {
        let assignment = ConsumerProtocolAssignment { assigned_partitions: partitions, user_data };
        let bytes = assignment.encode(version).unwrap();
        prop_assert_eq!(ConsumerProtocolAssignment::decode(&bytes).unwrap(), assignment);
    }

    #[test]
    fn sticky_user_data_round_trips(partitions in prop::collection::vec((topic(), any::<i32>()), 0..8), generation in prop::option::of(any::<i32>())) {
        let data = StickyAssignorUserData {
            previous_assignment: partitions.into_iter().map(|(t, p)| TopicPartition::new(t, p)).collect(),
            generation,
        };
        let decoded = StickyAssignorUserData::decode(&data.encode().unwrap()).unwrap();
        // Grouped by topic on the way out, so compare as multisets.
        let (mut a, mut b) = (data.previous_assignment.clone(), decoded.previous_assignment.clone());
        a.sort();
        b.sort();
        prop_assert_eq!(a, b);
        prop_assert_eq!(decoded.generation, data.generation);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = ConsumerProtocolSubscription::decode(&bytes);
        let _ = ConsumerProtocolAssignment::decode(&bytes);
        let _ = StickyAssignorUserData::decode(&bytes);
    }

    #[test]
    fn corrupted_valid_bytes_never_panic(subscription in subscription(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let mut bytes = subscription.encode(3).unwrap();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if let Ok(decoded) = ConsumerProtocolSubscription::decode(&bytes) {
            // Whatever decodes re-encodes without error (lengths came from the input).
            prop_assert!(decoded.encode(3).is_ok());
        }
    }
}
