//! The group coordinator over the wire: every group API at every served version, the
//! coordinator never blocking produce and fetch, session expiry driven by the broker's timers,
//! persistence across restarts and compaction of the offsets log. Items name SEMANTICS.md.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use sluice_broker::BrokerConfig;

const MEMBER_ID_REQUIRED: i16 = 79;
const REBALANCE_IN_PROGRESS: i16 = 27;
const UNKNOWN_MEMBER_ID: i16 = 25;
const ILLEGAL_GENERATION: i16 = 22;
const GROUP_ID_NOT_FOUND: i16 = 69;
const NON_EMPTY_GROUP: i16 = 68;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_string())
}

fn gid(x: &str) -> GroupId {
    GroupId(s(x))
}

fn versions(key: ApiKey) -> std::ops::RangeInclusive<i16> {
    let (lo, hi) = sluice_protocol::versions::served_range(key).unwrap();
    lo..=hi
}

/// No initial rebalance delay, and short sessions allowed, unless a test says otherwise.
fn fast(c: &mut BrokerConfig) {
    c.groups.coordinator.group_initial_rebalance_delay_ms = 0;
    c.groups.coordinator.group_min_session_timeout_ms = 100;
}

fn join_request(group: &str, member_id: &str, session_ms: i32) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(gid(group))
        .with_member_id(s(member_id))
        .with_session_timeout_ms(session_ms)
        .with_rebalance_timeout_ms(session_ms)
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(Bytes::from_static(b"subscription"))])
}

/// One member joins `group` alone (KIP-394 round trip from v4) and syncs: (member id, generation).
async fn join_alone(c: &mut Conn, group: &str, join_v: i16, sync_v: i16, session_ms: i32) -> (String, i32) {
    let mut r: JoinGroupResponse = c.call(ApiKey::JoinGroup, join_v, &join_request(group, "", session_ms)).await;
    if join_v >= 4 {
        assert_eq!(r.error_code, MEMBER_ID_REQUIRED, "G5 JoinGroup v{join_v}");
        let member_id = r.member_id.to_string();
        assert!(member_id.starts_with("wire-test-"), "member id is client id + suffix: {member_id}");
        r = c.call(ApiKey::JoinGroup, join_v, &join_request(group, &member_id, session_ms)).await;
    }
    assert_eq!(r.error_code, 0, "JoinGroup v{join_v}");
    assert_eq!(r.leader, r.member_id, "G8 a lone member leads");
    assert_eq!(r.members.len(), 1, "G8 the leader gets the members");
    assert_eq!(r.protocol_name.as_deref(), Some("range"));
    let member_id = r.member_id.to_string();
    let sync = SyncGroupRequest::default()
        .with_group_id(gid(group))
        .with_member_id(s(&member_id))
        .with_generation_id(r.generation_id)
        .with_protocol_type(Some(s("consumer")))
        .with_protocol_name(Some(s("range")))
        .with_assignments(vec![sync_group_request::SyncGroupRequestAssignment::default()
            .with_member_id(s(&member_id))
            .with_assignment(Bytes::from_static(b"assignment"))]);
    let sr: SyncGroupResponse = c.call(ApiKey::SyncGroup, sync_v, &sync).await;
    assert_eq!((sr.error_code, sr.assignment.as_ref()), (0, &b"assignment"[..]), "G15 SyncGroup v{sync_v}");
    (member_id, r.generation_id)
}

async fn heartbeat(c: &mut Conn, group: &str, member_id: &str, generation: i32) -> i16 {
    let req = HeartbeatRequest::default()
        .with_group_id(gid(group))
        .with_member_id(s(member_id))
        .with_generation_id(generation);
    let r: HeartbeatResponse = c.call(ApiKey::Heartbeat, 4, &req).await;
    r.error_code
}

fn commit_request(
    group: &str,
    member_id: &str,
    generation: i32,
    topic: &str,
    partitions: &[(i32, i64)],
) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(gid(group))
        .with_member_id(s(member_id))
        .with_generation_id_or_member_epoch(generation)
        .with_topics(vec![offset_commit_request::OffsetCommitRequestTopic::default()
            .with_name(name(topic))
            .with_partitions(
                partitions
                    .iter()
                    .map(|(p, o)| {
                        offset_commit_request::OffsetCommitRequestPartition::default()
                            .with_partition_index(*p)
                            .with_committed_offset(*o)
                            .with_committed_leader_epoch(-1)
                            .with_committed_metadata(Some(s(&format!("meta-{o}"))))
                    })
                    .collect(),
            )])
}

/// Committed offset and metadata of (topic, partition) for `group` (OffsetFetch v8, batched form).
async fn committed(c: &mut Conn, group: &str, topic: &str, partition: i32) -> (i64, String) {
    let req = OffsetFetchRequest::default().with_groups(vec![offset_fetch_request::OffsetFetchRequestGroup::default()
        .with_group_id(gid(group))
        .with_topics(Some(vec![offset_fetch_request::OffsetFetchRequestTopics::default()
            .with_name(name(topic))
            .with_partition_indexes(vec![partition])]))]);
    let r: OffsetFetchResponse = c.call(ApiKey::OffsetFetch, 8, &req).await;
    let p = &r.groups[0].topics[0].partitions[0];
    (p.committed_offset, p.metadata.as_deref().unwrap_or_default().to_string())
}

async fn describe(c: &mut Conn, group: &str) -> describe_groups_response::DescribedGroup {
    let req = DescribeGroupsRequest::default().with_groups(vec![gid(group)]);
    let r: DescribeGroupsResponse = c.call(ApiKey::DescribeGroups, 5, &req).await;
    r.groups[0].clone()
}

#[tokio::test]
async fn every_group_api_at_every_served_version() {
    let b = TestBroker::start_with(fast).await;
    let mut c = b.connect().await;
    assert_eq!(create_topic(&mut c, "gt", 2, &[]).await.error_code, 0);

    for v in versions(ApiKey::FindCoordinator) {
        let req = if v >= 4 {
            FindCoordinatorRequest::default().with_coordinator_keys(vec![s("g1"), s("g2")])
        } else {
            FindCoordinatorRequest::default().with_key(s("g1"))
        };
        let r: FindCoordinatorResponse = c.call(ApiKey::FindCoordinator, v, &req).await;
        if v >= 4 {
            assert_eq!(r.coordinators.len(), 2, "G2 batched v{v}");
            for k in &r.coordinators {
                assert_eq!((k.error_code, k.node_id.0, k.port), (0, 1, i32::from(b.addr.port())), "v{v}");
            }
        } else {
            assert_eq!((r.error_code, r.node_id.0, r.port), (0, 1, i32::from(b.addr.port())), "G1 v{v}");
        }
    }

    for v in versions(ApiKey::JoinGroup) {
        let group = format!("join-v{v}");
        let (member, generation) = join_alone(&mut c, &group, v, v.min(5), 10_000).await;
        assert_eq!(generation, 1, "G8 the first generation is 1");
        assert_eq!(heartbeat(&mut c, &group, &member, generation).await, 0);
    }

    let (member, generation) = join_alone(&mut c, "hb", 9, 5, 10_000).await;
    for v in versions(ApiKey::Heartbeat) {
        let req = HeartbeatRequest::default()
            .with_group_id(gid("hb"))
            .with_member_id(s(&member))
            .with_generation_id(generation);
        let r: HeartbeatResponse = c.call(ApiKey::Heartbeat, v, &req).await;
        assert_eq!(r.error_code, 0, "Heartbeat v{v}");
        let stale: HeartbeatResponse =
            c.call(ApiKey::Heartbeat, v, &req.clone().with_generation_id(generation + 7)).await;
        assert_eq!(stale.error_code, ILLEGAL_GENERATION, "G18 Heartbeat v{v}");
    }

    for v in versions(ApiKey::OffsetCommit) {
        let req = commit_request("hb", &member, generation, "gt", &[(0, 100 + i64::from(v)), (9, 1)]);
        let r: OffsetCommitResponse = c.call(ApiKey::OffsetCommit, v, &req).await;
        let errors: Vec<i16> = r.topics[0].partitions.iter().map(|p| p.error_code).collect();
        assert_eq!(errors, vec![0, UNKNOWN_TOPIC_OR_PARTITION], "OffsetCommit v{v}");
        assert_eq!(committed(&mut c, "hb", "gt", 0).await, (100 + i64::from(v), format!("meta-{}", 100 + v)), "O1");
    }

    for v in versions(ApiKey::OffsetFetch) {
        let topics = Some(vec![offset_fetch_request::OffsetFetchRequestTopic::default()
            .with_name(name("gt"))
            .with_partition_indexes(vec![0, 1])]);
        let (offsets, unknown_group): (Vec<i64>, Vec<i64>) = if v >= 8 {
            let group = |g: &str| {
                offset_fetch_request::OffsetFetchRequestGroup::default().with_group_id(gid(g)).with_topics(Some(vec![
                    offset_fetch_request::OffsetFetchRequestTopics::default()
                        .with_name(name("gt"))
                        .with_partition_indexes(vec![0, 1]),
                ]))
            };
            let req = OffsetFetchRequest::default().with_groups(vec![group("hb"), group("nobody")]);
            let r: OffsetFetchResponse = c.call(ApiKey::OffsetFetch, v, &req).await;
            let offsets = |i: usize| r.groups[i].topics[0].partitions.iter().map(|p| p.committed_offset).collect();
            (offsets(0), offsets(1))
        } else {
            let fetch = |g: &str| OffsetFetchRequest::default().with_group_id(gid(g)).with_topics(topics.clone());
            let r: OffsetFetchResponse = c.call(ApiKey::OffsetFetch, v, &fetch("hb")).await;
            let u: OffsetFetchResponse = c.call(ApiKey::OffsetFetch, v, &fetch("nobody")).await;
            let offsets = |r: &OffsetFetchResponse| r.topics[0].partitions.iter().map(|p| p.committed_offset).collect();
            (offsets(&r), offsets(&u))
        };
        assert_eq!(offsets, vec![109, -1], "O5 OffsetFetch v{v}: committed, never committed");
        assert_eq!(unknown_group, vec![-1, -1], "O5 unknown group v{v}");
    }

    for v in versions(ApiKey::DescribeGroups) {
        let req = DescribeGroupsRequest::default().with_groups(vec![gid("hb"), gid("nobody")]);
        let r: DescribeGroupsResponse = c.call(ApiKey::DescribeGroups, v, &req).await;
        let g = &r.groups[0];
        assert_eq!(
            (g.error_code, g.group_state.as_str(), g.protocol_data.as_str()),
            (0, "Stable", "range"),
            "G26 v{v}"
        );
        assert_eq!(g.members[0].member_assignment.as_ref(), b"assignment");
        assert_eq!(g.members[0].client_host.as_str(), "/127.0.0.1");
        assert_eq!(r.groups[1].group_state.as_str(), "Dead", "G26 unknown group v{v}");
        assert_eq!(r.groups[1].error_code, if v >= 6 { GROUP_ID_NOT_FOUND } else { 0 }, "KIP-1043 v{v}");
    }

    for v in versions(ApiKey::ListGroups) {
        let req = if v >= 4 {
            ListGroupsRequest::default().with_states_filter(vec![s("stable")])
        } else {
            ListGroupsRequest::default()
        };
        let r: ListGroupsResponse = c.call(ApiKey::ListGroups, v, &req).await;
        assert!(r.groups.iter().any(|g| g.group_id.as_str() == "hb"), "G27 v{v}");
        if v >= 4 {
            assert!(r.groups.iter().all(|g| g.group_state.as_str() == "Stable"), "G27 states filter v{v}");
        }
        if v >= 5 {
            let none: ListGroupsResponse = c
                .call(ApiKey::ListGroups, v, &ListGroupsRequest::default().with_types_filter(vec![s("consumer")]))
                .await;
            assert!(none.groups.is_empty(), "no KIP-848 groups: types filter v{v}");
        }
    }

    for v in versions(ApiKey::LeaveGroup) {
        let group = format!("leave-v{v}");
        let (member, _) = join_alone(&mut c, &group, 9, 5, 10_000).await;
        let req = if v >= 3 {
            LeaveGroupRequest::default().with_group_id(gid(&group)).with_members(vec![
                leave_group_request::MemberIdentity::default().with_member_id(s(&member)),
                leave_group_request::MemberIdentity::default().with_member_id(s("stranger")),
            ])
        } else {
            LeaveGroupRequest::default().with_group_id(gid(&group)).with_member_id(s(&member))
        };
        let r: LeaveGroupResponse = c.call(ApiKey::LeaveGroup, v, &req).await;
        assert_eq!(r.error_code, 0, "G21 LeaveGroup v{v}");
        if v >= 3 {
            let errors: Vec<i16> = r.members.iter().map(|m| m.error_code).collect();
            assert_eq!(errors, vec![0, UNKNOWN_MEMBER_ID], "G21 per-member errors v{v}");
        }
        assert_eq!(describe(&mut c, &group).await.group_state.as_str(), "Empty", "G21 the group empties at once");
    }

    // OffsetDelete (O11): refused for a topic the active group subscribes to? Our members'
    // metadata is not a consumer subscription, so the group protects every topic.
    let req = OffsetDeleteRequest::default().with_group_id(gid("hb")).with_topics(vec![
        offset_delete_request::OffsetDeleteRequestTopic::default().with_name(name("gt")).with_partitions(vec![
            offset_delete_request::OffsetDeleteRequestPartition::default().with_partition_index(0),
        ]),
    ]);
    let r: OffsetDeleteResponse = c.call(ApiKey::OffsetDelete, 0, &req).await;
    assert_eq!(r.topics[0].partitions[0].error_code, 86, "O11 GROUP_SUBSCRIBED_TO_TOPIC");

    for v in versions(ApiKey::DeleteGroups) {
        let group = format!("leave-v{v}");
        let req = DeleteGroupsRequest::default().with_groups_names(vec![gid(&group), gid("hb"), gid("nobody")]);
        let r: DeleteGroupsResponse = c.call(ApiKey::DeleteGroups, v, &req).await;
        let errors: Vec<i16> = r.results.iter().map(|g| g.error_code).collect();
        assert_eq!(errors, vec![0, NON_EMPTY_GROUP, GROUP_ID_NOT_FOUND], "G28 DeleteGroups v{v}");
    }

    // Once "hb" is empty, OffsetDelete removes the offset.
    let leave = LeaveGroupRequest::default().with_group_id(gid("hb")).with_member_id(s(&member));
    let _: LeaveGroupResponse = c.call(ApiKey::LeaveGroup, 2, &leave).await;
    let r: OffsetDeleteResponse = c.call(ApiKey::OffsetDelete, 0, &req).await;
    assert_eq!((r.error_code, r.topics[0].partitions[0].error_code), (0, 0), "O11");
    assert_eq!(committed(&mut c, "hb", "gt", 0).await.0, -1);
}

#[tokio::test]
async fn transaction_coordinator_is_refused_with_a_reason() {
    let b = TestBroker::start().await;
    let mut c = b.connect().await;
    let req = FindCoordinatorRequest::default().with_key_type(1).with_coordinator_keys(vec![s("tx")]);
    let r: FindCoordinatorResponse = c.call(ApiKey::FindCoordinator, 4, &req).await;
    assert_eq!(r.coordinators[0].error_code, COORDINATOR_NOT_AVAILABLE);
    assert!(r.coordinators[0].error_message.as_deref().unwrap_or_default().contains("transactions"));
}

/// The coordinator never blocks the rest of the broker: while a JoinGroup is parked (here for
/// the initial rebalance delay), produce and fetch on other connections are answered at once.
#[tokio::test]
async fn a_parked_join_blocks_no_produce_or_fetch() {
    let b = TestBroker::start_with(|c| c.groups.coordinator.group_initial_rebalance_delay_ms = 20_000).await;
    let mut admin = b.connect().await;
    create_topic(&mut admin, "busy", 1, &[]).await;
    let mut joiner = b.connect().await;
    let r: JoinGroupResponse = joiner.call(ApiKey::JoinGroup, 9, &join_request("slow", "", 10_000)).await;
    let member = r.member_id.to_string();
    joiner.send(ApiKey::JoinGroup, 9, &join_request("slow", &member, 10_000)).await;

    let started = Instant::now();
    let mut c = b.connect().await;
    for i in 0..20 {
        let p = produce(&mut c, "busy", 0, batch(&[b"x"])).await;
        assert_eq!((p.error_code, p.base_offset), (0, i));
        let f = fetch(&mut c, "busy", 0, i, 0, 1 << 20).await;
        assert_eq!((f.error_code, batches_in(f.records.unwrap_or_default()).len()), (0, 1));
    }
    let describe_answer = describe(&mut c, "slow").await;
    assert_eq!(describe_answer.group_state.as_str(), "PreparingRebalance");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?} while a join was parked", started.elapsed());
    // And the parked join is still waiting for its delay: its answer has not come.
    assert!(tokio::time::timeout(Duration::from_millis(200), joiner.read_frame()).await.is_err());
}

/// G19 through the broker's timers: a member that stops heartbeating is removed after its
/// session timeout; the survivor learns it from a heartbeat and rejoins alone.
#[tokio::test]
async fn silent_member_expires_after_its_session_timeout() {
    let b = TestBroker::start_with(fast).await;
    let (mut ca, mut cb) = (b.connect().await, b.connect().await);
    let session_ms = 1_000;
    // A forms generation 1 alone; B's join starts generation 2, which A joins after a heartbeat.
    let ra: JoinGroupResponse = ca.call(ApiKey::JoinGroup, 9, &join_request("g", "", session_ms)).await;
    let a = ra.member_id.to_string();
    let first: JoinGroupResponse = ca.call(ApiKey::JoinGroup, 9, &join_request("g", &a, session_ms)).await;
    assert_eq!(first.generation_id, 1);
    let sync1 = SyncGroupRequest::default().with_group_id(gid("g")).with_member_id(s(&a)).with_generation_id(1);
    let _: SyncGroupResponse = ca.call(ApiKey::SyncGroup, 5, &sync1).await;
    let rb: JoinGroupResponse = cb.call(ApiKey::JoinGroup, 9, &join_request("g", "", session_ms)).await;
    let bm = rb.member_id.to_string();
    cb.send(ApiKey::JoinGroup, 9, &join_request("g", &bm, session_ms)).await;
    assert_eq!(heartbeat(&mut ca, "g", &a, 1).await, REBALANCE_IN_PROGRESS, "G7");
    let ja: JoinGroupResponse = ca.call(ApiKey::JoinGroup, 9, &join_request("g", &a, session_ms)).await;
    let (_, jb): (i32, JoinGroupResponse) = cb.recv(ApiKey::JoinGroup, 9).await;
    assert_eq!((ja.generation_id, jb.generation_id), (2, 2));
    let sync = |m: &str| SyncGroupRequest::default().with_group_id(gid("g")).with_member_id(s(m)).with_generation_id(2);
    let _: SyncGroupResponse = ca.call(ApiKey::SyncGroup, 5, &sync(&a)).await;
    let _: SyncGroupResponse = cb.call(ApiKey::SyncGroup, 5, &sync(&bm)).await;
    assert_eq!(describe(&mut ca, "g").await.group_state.as_str(), "Stable");

    // B goes silent; A keeps heartbeating until it is told to rejoin.
    let silent_at = Instant::now();
    loop {
        let code = heartbeat(&mut ca, "g", &a, 2).await;
        if code == REBALANCE_IN_PROGRESS {
            break;
        }
        assert_eq!(code, 0);
        assert!(silent_at.elapsed() < Duration::from_secs(10), "B never expired");
        tokio::time::sleep(Duration::from_millis(100)).await; // the heartbeat interval
    }
    let expired_after = silent_at.elapsed();
    assert!(expired_after >= Duration::from_millis(900), "expired too early: {expired_after:?}");
    let ja: JoinGroupResponse = ca.call(ApiKey::JoinGroup, 9, &join_request("g", &a, session_ms)).await;
    assert_eq!((ja.generation_id, ja.members.len()), (3, 1), "G19 the next generation has only A");
}

/// O8: groups, generations and committed offsets survive a restart; members that do not come
/// back expire after their session timeout; one that does continues its generation.
#[tokio::test]
async fn restart_brings_back_groups_generations_and_offsets() {
    let b = TestBroker::start_with(fast).await;
    let mut c = b.connect().await;
    create_topic(&mut c, "rt", 1, &[]).await;
    let (stay, gen_stay) = join_alone(&mut c, "stays", 9, 5, 2_000).await;
    let (_gone, gen_gone) = join_alone(&mut c, "goes", 9, 5, 500).await;
    let r: OffsetCommitResponse =
        c.call(ApiKey::OffsetCommit, 9, &commit_request("stays", &stay, gen_stay, "rt", &[(0, 42)])).await;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    drop(c);
    let dir = b.stop().await;

    let b = TestBroker::start_in(dir, fast).await;
    let mut c = b.connect().await;
    assert_eq!(committed(&mut c, "stays", "rt", 0).await, (42, "meta-42".to_string()), "O8 offsets");
    assert_eq!(heartbeat(&mut c, "stays", &stay, gen_stay).await, 0, "O8 the generation continues");
    let g = describe(&mut c, "goes").await;
    assert_eq!((g.group_state.as_str(), g.members.len()), ("Stable", 1), "O8 loaded Stable");
    assert_eq!(gen_gone, 1);
    // The absent member expires (its session restarted at load); "stays" keeps heartbeating.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert_eq!(heartbeat(&mut c, "stays", &stay, gen_stay).await, 0);
        if describe(&mut c, "goes").await.group_state.as_str() == "Empty" {
            break;
        }
        assert!(Instant::now() < deadline, "the absent member never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The offsets log is compacted: a snapshot of the live records replaces the segments before
/// it, and a restart replays to the same state.
#[tokio::test]
async fn compaction_keeps_the_latest_commit_of_every_partition() {
    let b = TestBroker::start_with(fast).await;
    let mut c = b.connect().await;
    create_topic(&mut c, "ct", 3, &[]).await;
    for i in 0..300 {
        let req = commit_request("simple", "", -1, "ct", &[(i % 3, i64::from(i))]);
        let r: OffsetCommitResponse = c.call(ApiKey::OffsetCommit, 9, &req).await;
        assert_eq!(r.topics[0].partitions[0].error_code, 0);
    }
    let before = b.broker.groups.log_size_bytes();
    let deleted = b.broker.groups.compact_if_due(0, 1).await;
    assert_eq!(deleted, 1, "the segment before the snapshot is deleted");
    let after = b.broker.groups.log_size_bytes();
    assert!(after * 10 < before, "compaction shrank the log: {before} -> {after} bytes");
    for p in 0..3 {
        assert_eq!(committed(&mut c, "simple", "ct", p).await.0, 297 + i64::from(p));
    }
    drop(c);
    let dir = b.stop().await;
    let b = TestBroker::start_in(dir, fast).await;
    let mut c = b.connect().await;
    for p in 0..3 {
        assert_eq!(committed(&mut c, "simple", "ct", p).await, (297 + i64::from(p), format!("meta-{}", 297 + p)));
    }
}

/// A deleted topic takes its committed offsets with it: a topic created again under the same
/// name starts with none.
#[tokio::test]
async fn deleting_a_topic_deletes_its_committed_offsets() {
    let b = TestBroker::start_with(fast).await;
    let mut c = b.connect().await;
    create_topic(&mut c, "doomed", 1, &[]).await;
    let r: OffsetCommitResponse =
        c.call(ApiKey::OffsetCommit, 9, &commit_request("g", "", -1, "doomed", &[(0, 5)])).await;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    let req = DeleteTopicsRequest::default().with_topic_names(vec![name("doomed")]);
    let r: DeleteTopicsResponse = c.call(ApiKey::DeleteTopics, 5, &req).await;
    assert_eq!(r.responses[0].error_code, 0);
    create_topic(&mut c, "doomed", 1, &[]).await;
    assert_eq!(committed(&mut c, "g", "doomed", 0).await.0, -1);
}

/// O8 (last bullet) and kgo's TestConsumeRegex: `__consumer_offsets` is listed in Metadata as an
/// internal topic (by name and among all topics, with a stable id), can be read like a topic,
/// and refuses client writes, deletion and new partitions with Kafka's errors.
#[tokio::test]
async fn consumer_offsets_is_a_listed_read_only_internal_topic() {
    let b = TestBroker::start_with(fast).await;
    let mut c = b.connect().await;
    create_topic(&mut c, "user", 1, &[]).await;
    let r: OffsetCommitResponse =
        c.call(ApiKey::OffsetCommit, 9, &commit_request("g", "", -1, "user", &[(0, 7)])).await;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);

    let by_name = MetadataRequest::default()
        .with_topics(Some(vec![
            metadata_request::MetadataRequestTopic::default().with_name(Some(name("__consumer_offsets")))
        ]))
        .with_allow_auto_topic_creation(false);
    let r: MetadataResponse = c.call(ApiKey::Metadata, 12, &by_name).await;
    let t = &r.topics[0];
    assert_eq!((t.error_code, t.is_internal, t.partitions.len()), (0, true, 1));
    let id = t.topic_id;
    assert!(!id.is_nil());
    let r: MetadataResponse = c.call(ApiKey::Metadata, 12, &MetadataRequest::default().with_topics(None)).await;
    let listed: Vec<(String, bool)> =
        r.topics.iter().map(|t| (t.name.as_ref().unwrap().0.to_string(), t.is_internal)).collect();
    assert!(listed.contains(&("__consumer_offsets".into(), true)), "{listed:?}");
    assert!(listed.contains(&("user".into(), false)), "{listed:?}");

    // The commit is in the log, readable with Fetch (by name and by id).
    let p = fetch(&mut c, "__consumer_offsets", 0, 0, 0, 1 << 20).await;
    assert_eq!(p.error_code, 0);
    assert!(p.high_watermark >= 1);
    assert!(!batches_in(p.records.clone().unwrap()).is_empty());
    let by_id = FetchRequest::default().with_max_bytes(1 << 20).with_topics(vec![fetch_request::FetchTopic::default()
        .with_topic_id(id)
        .with_partitions(vec![fetch_request::FetchPartition::default().with_partition_max_bytes(1 << 20)])]);
    let r: FetchResponse = c.call(ApiKey::Fetch, 13, &by_id).await;
    assert_eq!(r.responses[0].partitions[0].error_code, 0);
    assert_eq!(r.responses[0].partitions[0].high_watermark, p.high_watermark);

    // Writes and changes are refused.
    let w = produce(&mut c, "__consumer_offsets", 0, batch(&[b"x"])).await;
    assert_eq!(w.error_code, 17, "INVALID_TOPIC_EXCEPTION");
    let r: DeleteTopicsResponse = c
        .call(
            ApiKey::DeleteTopics,
            5,
            &DeleteTopicsRequest::default().with_topic_names(vec![name("__consumer_offsets")]),
        )
        .await;
    assert_eq!(r.responses[0].error_code, 42, "INVALID_REQUEST");
    let req = CreatePartitionsRequest::default().with_topics(vec![
        create_partitions_request::CreatePartitionsTopic::default().with_name(name("__consumer_offsets")).with_count(3),
    ]);
    let r: CreatePartitionsResponse = c.call(ApiKey::CreatePartitions, 3, &req).await;
    assert_eq!(r.results[0].error_code, 42, "INVALID_REQUEST");
    assert_eq!(committed(&mut c, "g", "user", 0).await.0, 7, "the coordinator's log is untouched");

    // Its id survives a restart.
    drop(c);
    let dir = b.stop().await;
    let b = TestBroker::start_in(dir, fast).await;
    let mut c = b.connect().await;
    let r: MetadataResponse = c.call(ApiKey::Metadata, 12, &by_name).await;
    assert_eq!(r.topics[0].topic_id, id);
}

/// G25 at every JoinGroup version with static membership (v5+): a static leader that restarts
/// (empty member id, same instance id) is answered with the current generation — skip_assignment
/// only where it exists (v9+), and no field its version cannot carry (librdkafka's
/// 0102_static_group_rebalance rejoins at v5).
#[tokio::test]
async fn a_restarted_static_member_is_answered_at_every_version() {
    let b = TestBroker::start_with(fast).await;
    for version in 5..=9i16 {
        let group = format!("static-v{version}");
        let mut c = b.connect().await;
        let join = |member: &str| join_request(&group, member, 10_000).with_group_instance_id(Some(s("instance-1")));
        let r: JoinGroupResponse = c.call(ApiKey::JoinGroup, version, &join("")).await;
        assert_eq!(r.error_code, 0, "v{version}: a static member needs no MEMBER_ID_REQUIRED round trip");
        let (first_id, generation) = (r.member_id.to_string(), r.generation_id);
        let sync = SyncGroupRequest::default()
            .with_group_id(gid(&group))
            .with_member_id(s(&first_id))
            .with_group_instance_id(Some(s("instance-1")))
            .with_generation_id(generation)
            .with_protocol_type(Some(s("consumer")))
            .with_protocol_name(Some(s("range")))
            .with_assignments(vec![sync_group_request::SyncGroupRequestAssignment::default()
                .with_member_id(s(&first_id))
                .with_assignment(Bytes::from_static(b"assignment"))]);
        let sr: SyncGroupResponse = c.call(ApiKey::SyncGroup, version.min(5), &sync).await;
        assert_eq!(sr.error_code, 0, "v{version}");
        drop(c);

        // The restart: a new connection, no member id, the same instance id.
        let mut c = b.connect().await;
        let r: JoinGroupResponse = c.call(ApiKey::JoinGroup, version, &join("")).await;
        assert_eq!(r.error_code, 0, "v{version}: rejoin answered (not a dropped connection)");
        assert_eq!(r.generation_id, generation, "v{version}: no rebalance");
        assert_ne!(r.member_id.to_string(), first_id, "v{version}: a new member id replaces the old one");
        assert_eq!(r.leader, r.member_id, "v{version}: still the leader");
        assert_eq!(r.skip_assignment, version >= 9, "v{version}: KIP-814 skip_assignment only from v9");
    }
}
