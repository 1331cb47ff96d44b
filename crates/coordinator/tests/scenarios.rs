//! Scenario tests: the coordinator driven with a scripted clock, named by checklist item
//! (SEMANTICS.md sections 5 and 6).

use std::collections::BTreeMap;

use bytes::Bytes;
use sluice_coordinator::error_code::*;
use sluice_coordinator::group::{HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, SyncGroupRequest};
use sluice_coordinator::offsets::{OffsetCommitRequest, PartitionCommit};
use sluice_coordinator::output::{JoinGroupResponse, SyncGroupResponse};
use sluice_coordinator::state::GroupState;
use sluice_coordinator::{Coordinator, CoordinatorConfig, Output, Record, RequestId, Response, TimerKey, TimerOp};

const SESSION_MS: i32 = 10_000;
const REBALANCE_MS: i32 = 30_000;

/// A scripted world: the coordinator, a clock, a timer wheel, the persisted log and the answers.
struct World {
    coordinator: Coordinator,
    now_ms: i64,
    timers: BTreeMap<TimerKey, i64>,
    answers: BTreeMap<RequestId, Response>,
    log: Vec<Record>,
    next_request_id: RequestId,
}

impl World {
    fn new(config: CoordinatorConfig) -> World {
        World {
            coordinator: Coordinator::new(config),
            now_ms: 0,
            timers: BTreeMap::new(),
            answers: BTreeMap::new(),
            log: Vec::new(),
            next_request_id: 0,
        }
    }

    fn no_delay() -> World {
        World::new(CoordinatorConfig { group_initial_rebalance_delay_ms: 0, ..CoordinatorConfig::default() })
    }

    /// Members "a" and "b" joined generation 1 (no initial delay); neither has synced yet.
    fn two_joined() -> (World, String, String) {
        let mut w = World::no_delay();
        let a = w.member_id("a");
        let b = w.member_id("b");
        let ja = w.join(&a, "a");
        let jb = w.join(&b, "b");
        w.join_answer(ja).unwrap();
        w.join_answer(jb).unwrap();
        (w, a, b)
    }

    fn apply(&mut self, out: Output) {
        for record in out.records {
            assert_eq!(Record::decode(&record.encode()).as_ref(), Ok(&record), "record round-trips");
            self.log.push(record);
        }
        for op in out.timers {
            match op {
                TimerOp::Arm { key, deadline_ms } => {
                    self.timers.insert(key, deadline_ms);
                }
                TimerOp::Cancel { key } => {
                    self.timers.remove(&key);
                }
            }
        }
        for completed in out.completed {
            let old = self.answers.insert(completed.request_id, completed.response);
            assert!(old.is_none(), "request {} answered twice", completed.request_id);
        }
        for group in self.coordinator.state.groups.values() {
            group.check_invariants();
        }
    }

    fn request_id(&mut self) -> RequestId {
        self.next_request_id += 1;
        self.next_request_id
    }

    /// Moves the clock to `to_ms`, firing due timers in deadline order.
    fn advance_to(&mut self, to_ms: i64) {
        loop {
            let due = self.timers.iter().filter(|(_, d)| **d <= to_ms).min_by_key(|(k, d)| (**d, (*k).clone()));
            let Some((key, deadline_ms)) = due.map(|(k, d)| (k.clone(), *d)) else { break };
            self.timers.remove(&key);
            self.now_ms = self.now_ms.max(deadline_ms);
            let out = self.coordinator.on_timer(&key, self.now_ms);
            self.apply(out);
        }
        self.now_ms = to_ms;
    }

    fn advance(&mut self, by_ms: i64) {
        self.advance_to(self.now_ms + by_ms);
    }

    fn join_req(&self, member_id: &str, client: &str, protocols: &[&str]) -> JoinGroupRequest {
        JoinGroupRequest {
            group_id: "g".into(),
            member_id: member_id.into(),
            group_instance_id: None,
            protocol_type: "consumer".into(),
            protocols: protocols.iter().map(|p| (p.to_string(), Bytes::from(format!("{client}:{p}")))).collect(),
            session_timeout_ms: SESSION_MS,
            rebalance_timeout_ms: REBALANCE_MS,
            client_id: client.into(),
            client_host: "/127.0.0.1".into(),
            requires_known_member_id: true,
            member_id_suffix: format!("{}", self.next_request_id + 1),
        }
    }

    fn send_join(&mut self, req: JoinGroupRequest) -> RequestId {
        let id = self.request_id();
        let out = self.coordinator.join_group(id, req, self.now_ms);
        self.apply(out);
        id
    }

    /// KIP-394 first round trip: returns the member id the coordinator assigned.
    fn member_id(&mut self, client: &str) -> String {
        let id = self.send_join(self.join_req("", client, &["range"]));
        let response = self.join_answer(id).expect("answered at once");
        assert_eq!(response.error_code, MEMBER_ID_REQUIRED);
        response.member_id
    }

    fn join(&mut self, member_id: &str, client: &str) -> RequestId {
        self.send_join(self.join_req(member_id, client, &["range"]))
    }

    fn join_answer(&mut self, id: RequestId) -> Option<JoinGroupResponse> {
        match self.answers.remove(&id)? {
            Response::JoinGroup(r) => Some(r),
            other => panic!("expected a JoinGroup answer, got {other:?}"),
        }
    }

    fn sync(&mut self, member_id: &str, generation_id: i32, assignments: Vec<(String, Bytes)>) -> RequestId {
        let id = self.request_id();
        let req = SyncGroupRequest {
            group_id: "g".into(),
            member_id: member_id.into(),
            group_instance_id: None,
            generation_id,
            protocol_type: Some("consumer".into()),
            protocol_name: None,
            assignments,
        };
        let out = self.coordinator.sync_group(id, req, self.now_ms);
        self.apply(out);
        id
    }

    fn sync_answer(&mut self, id: RequestId) -> Option<SyncGroupResponse> {
        match self.answers.remove(&id)? {
            Response::SyncGroup(r) => Some(r),
            other => panic!("expected a SyncGroup answer, got {other:?}"),
        }
    }

    fn heartbeat(&mut self, member_id: &str, generation_id: i32) -> i16 {
        let id = self.request_id();
        let req = HeartbeatRequest {
            group_id: "g".into(),
            member_id: member_id.into(),
            group_instance_id: None,
            generation_id,
        };
        let out = self.coordinator.heartbeat(id, req, self.now_ms);
        self.apply(out);
        match self.answers.remove(&id) {
            Some(Response::Heartbeat { error_code }) => error_code,
            other => panic!("expected a Heartbeat answer, got {other:?}"),
        }
    }

    fn leave(&mut self, members: Vec<(String, Option<String>)>) -> Vec<i16> {
        let id = self.request_id();
        let out = self.coordinator.leave_group(id, LeaveGroupRequest { group_id: "g".into(), members }, self.now_ms);
        self.apply(out);
        match self.answers.remove(&id) {
            Some(Response::LeaveGroup(r)) => {
                assert_eq!(r.error_code, NONE);
                r.members.iter().map(|m| m.error_code).collect()
            }
            other => panic!("expected a LeaveGroup answer, got {other:?}"),
        }
    }

    fn state(&self) -> GroupState {
        self.coordinator.state.groups["g"].state
    }

    fn generation(&self) -> i32 {
        self.coordinator.state.groups["g"].generation_id
    }

    /// Two members A (leader) and B in a Stable generation 1.
    fn stable_pair(&mut self) -> (String, String) {
        let a = self.member_id("a");
        let b = self.member_id("b");
        let ja = self.join(&a, "a");
        assert!(self.join_answer(ja).is_none(), "parked until B joins");
        let jb = self.join(&b, "b");
        let ra = self.join_answer(ja).expect("join completes");
        let rb = self.join_answer(jb).expect("join completes");
        assert_eq!((ra.generation_id, rb.generation_id), (1, 1));
        let sb = self.sync(&b, 1, vec![]);
        assert!(self.sync_answer(sb).is_none(), "follower waits for the leader");
        let sa = self.sync(&a, 1, vec![(a.clone(), Bytes::from("pa")), (b.clone(), Bytes::from("pb"))]);
        assert_eq!(self.sync_answer(sa).unwrap().assignment, Bytes::from("pa"));
        assert_eq!(self.sync_answer(sb).unwrap().assignment, Bytes::from("pb"));
        assert_eq!(self.state(), GroupState::Stable);
        (a, b)
    }
}

#[test]
fn g4_join_validation() {
    let mut w = World::no_delay();
    let mut req = w.join_req("", "a", &["range"]);
    req.group_id = String::new();
    let id = w.send_join(req);
    assert_eq!(w.join_answer(id).unwrap().error_code, INVALID_GROUP_ID);

    let mut req = w.join_req("", "a", &["range"]);
    req.session_timeout_ms = 5_999;
    let id = w.send_join(req);
    assert_eq!(w.join_answer(id).unwrap().error_code, INVALID_SESSION_TIMEOUT);

    let id = w.send_join(w.join_req("", "a", &[]));
    assert_eq!(w.join_answer(id).unwrap().error_code, INCONSISTENT_GROUP_PROTOCOL);
    assert!(w.coordinator.state.groups.is_empty(), "a rejected join creates no group");

    let (_a, _b) = w.stable_pair();
    let id = w.send_join(w.join_req("", "c", &["roundrobin"]));
    assert_eq!(w.join_answer(id).unwrap().error_code, INCONSISTENT_GROUP_PROTOCOL);
    let mut req = w.join_req("", "c", &["range"]);
    req.protocol_type = "connect".into();
    let id = w.send_join(req);
    assert_eq!(w.join_answer(id).unwrap().error_code, INCONSISTENT_GROUP_PROTOCOL);
}

#[test]
fn g5_first_join_gets_member_id_required_then_joins() {
    let mut w = World::no_delay();
    let a = w.member_id("a");
    assert!(a.starts_with("a-"));
    assert!(w.coordinator.state.groups["g"].pending_members.contains(&a));
    let id = w.join(&a, "a");
    let r = w.join_answer(id).expect("only member: completes at once with no delay");
    assert_eq!((r.error_code, r.generation_id, r.leader.as_str()), (NONE, 1, a.as_str()));
    assert_eq!(r.members.len(), 1);
}

#[test]
fn g5_pending_member_expires_after_session_timeout() {
    let mut w = World::no_delay();
    let a = w.member_id("a");
    w.advance(i64::from(SESSION_MS));
    assert!(w.coordinator.state.groups["g"].pending_members.is_empty());
    let id = w.join(&a, "a");
    assert_eq!(w.join_answer(id).unwrap().error_code, UNKNOWN_MEMBER_ID);
}

#[test]
fn g5_join_v3_without_member_id_skips_member_id_required() {
    let mut w = World::no_delay();
    let mut req = w.join_req("", "a", &["range"]);
    req.requires_known_member_id = false;
    let id = w.send_join(req);
    let r = w.join_answer(id).unwrap();
    assert_eq!((r.error_code, r.generation_id), (NONE, 1));
}

#[test]
fn g6_unknown_member_id() {
    let mut w = World::no_delay();
    let id = w.join("nobody", "x");
    assert_eq!(w.join_answer(id).unwrap().error_code, UNKNOWN_MEMBER_ID);
    w.stable_pair();
    let id = w.join("nobody", "x");
    assert_eq!(w.join_answer(id).unwrap().error_code, UNKNOWN_MEMBER_ID);
}

#[test]
fn g7_rebalance_barrier_bumps_generation() {
    let mut w = World::no_delay();
    let (a, b) = w.stable_pair();
    let c = w.member_id("c");
    let jc = w.join(&c, "c");
    assert_eq!(w.state(), GroupState::PreparingRebalance);
    assert!(w.join_answer(jc).is_none(), "parked at the barrier");
    assert_eq!(w.heartbeat(&a, 1), REBALANCE_IN_PROGRESS);
    let ja = w.join(&a, "a");
    assert!(w.join_answer(ja).is_none(), "B has not rejoined yet");
    let jb = w.join(&b, "b");
    let (ra, rb, rc) = (w.join_answer(ja).unwrap(), w.join_answer(jb).unwrap(), w.join_answer(jc).unwrap());
    assert_eq!((ra.generation_id, rb.generation_id, rc.generation_id), (2, 2, 2));
    assert_eq!(ra.leader, a);
    assert_eq!(ra.members.len(), 3);
    assert!(rb.members.is_empty() && rc.members.is_empty());
    assert_eq!(w.state(), GroupState::CompletingRebalance);
}

#[test]
fn g7_members_that_do_not_rejoin_are_removed_at_the_rebalance_timeout() {
    let mut w = World::no_delay();
    let (a, b) = w.stable_pair();
    w.advance(1_000);
    let c = w.member_id("c");
    let jc = w.join(&c, "c");
    let start = w.now_ms;
    // A keeps heartbeating (and learns of the rebalance) but B went silent and never rejoins.
    let ja = w.join(&a, "a");
    w.advance_to(start + i64::from(REBALANCE_MS) - 1);
    // B's session already expired (10 s) and removed it; A and C complete as generation 2.
    let ra = w.join_answer(ja).expect("completes once B is gone");
    assert_eq!(ra.generation_id, 2);
    assert!(w.join_answer(jc).is_some());
    assert!(w.coordinator.state.groups["g"].member(&b).is_none());
}

#[test]
fn g7_rebalance_timeout_completes_without_laggard() {
    let mut w = World::no_delay();
    let (a, b) = w.stable_pair();
    let c = w.member_id("c");
    let jc = w.join(&c, "c");
    let start = w.now_ms;
    let ja = w.join(&a, "a");
    // B heartbeats (so its session never expires) but never rejoins.
    for t in (3_000..i64::from(REBALANCE_MS)).step_by(3_000) {
        w.advance_to(start + t);
        assert_eq!(w.heartbeat(&b, 1), REBALANCE_IN_PROGRESS);
    }
    assert!(w.join_answer(ja).is_none());
    w.advance_to(start + i64::from(REBALANCE_MS));
    assert_eq!(w.join_answer(ja).unwrap().generation_id, 2);
    assert_eq!(w.join_answer(jc).unwrap().generation_id, 2);
    assert!(w.coordinator.state.groups["g"].member(&b).is_none());
    assert_eq!(w.heartbeat(&b, 2), UNKNOWN_MEMBER_ID);
}

#[test]
fn g8_new_leader_is_first_rejoined_member_when_leader_is_gone() {
    let mut w = World::no_delay();
    let (a, b) = w.stable_pair();
    assert_eq!(w.leave(vec![(a.clone(), None)]), vec![NONE]);
    assert_eq!(w.state(), GroupState::PreparingRebalance);
    let jb = w.join(&b, "b");
    let rb = w.join_answer(jb).unwrap();
    assert_eq!((rb.generation_id, rb.leader.as_str(), rb.members.len()), (2, b.as_str(), 1));
}

#[test]
fn g8_last_member_leaving_gives_empty_group_and_bumps_generation() {
    let mut w = World::no_delay();
    let (a, b) = w.stable_pair();
    let before = w.log.len();
    assert_eq!(w.leave(vec![(a, None), (b, None)]), vec![NONE, NONE]);
    assert_eq!(w.state(), GroupState::Empty);
    assert_eq!(w.generation(), 2);
    let last = w.log[before..].last().expect("empty group persisted");
    assert!(
        matches!(last, Record::GroupMetadata { value: Some(v), .. } if v.members.is_empty() && v.generation_id == 2)
    );
}

#[test]
fn g9_protocol_selection_by_vote_among_common_protocols() {
    for (a_protocols, b_protocols, expected) in [
        (vec!["range", "cooperative-sticky"], vec!["cooperative-sticky"], "cooperative-sticky"),
        (vec!["range", "cooperative-sticky"], vec!["range", "cooperative-sticky"], "range"),
    ] {
        let mut w = World::no_delay();
        let a = w.member_id("a");
        let b = w.member_id("b");
        let ja = w.send_join(w.join_req(&a, "a", &a_protocols));
        let jb = w.send_join(w.join_req(&b, "b", &b_protocols));
        let ra = w.join_answer(ja).unwrap();
        assert_eq!(ra.protocol_name.as_deref(), Some(expected));
        assert_eq!(w.join_answer(jb).unwrap().protocol_name.as_deref(), Some(expected));
        let metadata = &ra.members.iter().find(|m| m.member_id == b).unwrap().metadata;
        assert_eq!(metadata, &Bytes::from(format!("b:{expected}")), "leader sees the selected protocol's metadata");
    }
}

#[test]
fn g10_initial_rebalance_delay_extends_while_members_arrive() {
    let mut w = World::new(CoordinatorConfig::default());
    let a = w.member_id("a");
    let ja = w.join(&a, "a");
    w.advance_to(2_000);
    let b = w.member_id("b");
    let jb = w.join(&b, "b");
    w.advance_to(5_999);
    assert!(w.join_answer(ja).is_none() && w.join_answer(jb).is_none());
    w.advance_to(6_000);
    assert_eq!(w.join_answer(ja).unwrap().generation_id, 1);
    assert_eq!(w.join_answer(jb).unwrap().generation_id, 1);

    let mut w = World::new(CoordinatorConfig::default());
    let a = w.member_id("a");
    let ja = w.join(&a, "a");
    w.advance_to(2_999);
    assert!(w.join_answer(ja).is_none());
    w.advance_to(3_000);
    assert_eq!(w.join_answer(ja).unwrap().members.len(), 1);
}

#[test]
fn g11_new_member_parked_too_long_is_expired() {
    let mut w = World::no_delay();
    // A alone, with a 10-minute rebalance timeout, Stable at generation 1.
    let a = w.member_id("a");
    let mut req = w.join_req(&a, "a", &["range"]);
    req.rebalance_timeout_ms = 600_000;
    let ja = w.send_join(req);
    w.join_answer(ja).unwrap();
    let sa = w.sync(&a, 1, vec![]);
    w.sync_answer(sa).unwrap();
    // C joins; A keeps heartbeating but never rejoins, so the barrier holds for 10 minutes.
    let c = w.member_id("c");
    let jc = w.join(&c, "c");
    for _ in 0..100 {
        w.advance(3_000);
        assert_eq!(w.heartbeat(&a, 1), REBALANCE_IN_PROGRESS);
    }
    assert_eq!(w.join_answer(jc).unwrap().error_code, UNKNOWN_MEMBER_ID, "expired after 5 minutes");
    assert!(w.coordinator.state.groups["g"].member(&c).is_none());
    assert_eq!(w.state(), GroupState::PreparingRebalance);
}

#[test]
fn g14_sync_validation_precedence() {
    let mut w = World::no_delay();
    let id = w.sync("nobody", 1, vec![]);
    assert_eq!(w.sync_answer(id).unwrap().error_code, UNKNOWN_MEMBER_ID, "no group");
    let (a, _b) = w.stable_pair();
    let id = w.sync("nobody", 1, vec![]);
    assert_eq!(w.sync_answer(id).unwrap().error_code, UNKNOWN_MEMBER_ID);
    let id = w.sync(&a, 7, vec![]);
    assert_eq!(w.sync_answer(id).unwrap().error_code, ILLEGAL_GENERATION);
    let c = w.member_id("c");
    w.join(&c, "c");
    let id = w.sync(&a, 1, vec![]);
    assert_eq!(w.sync_answer(id).unwrap().error_code, REBALANCE_IN_PROGRESS);
    let id = w.sync(&a, 2, vec![]);
    assert_eq!(w.sync_answer(id).unwrap().error_code, ILLEGAL_GENERATION, "generation before state");
}

#[test]
fn g15_leader_assignment_persists_and_releases_followers() {
    let (mut w, a, b) = World::two_joined();
    let sb = w.sync(&b, 1, vec![]);
    assert!(w.sync_answer(sb).is_none());
    let before = w.log.len();
    let sa = w.sync(&a, 1, vec![(a.clone(), Bytes::from("pa"))]);
    assert_eq!(w.sync_answer(sa).unwrap().assignment, Bytes::from("pa"));
    let rb = w.sync_answer(sb).unwrap();
    assert_eq!((rb.error_code, rb.assignment.len()), (NONE, 0), "absent from the leader's list: empty");
    assert_eq!(rb.protocol_name.as_deref(), Some("range"));
    assert_eq!(w.log.len(), before + 1, "group metadata persisted once");
    assert_eq!(w.state(), GroupState::Stable);
    let again = w.sync(&a, 1, vec![]);
    assert_eq!(w.sync_answer(again).unwrap().assignment, Bytes::from("pa"), "Stable: stored assignment");
}

#[test]
fn g16_member_that_never_syncs_is_removed() {
    let (mut w, a, b) = World::two_joined();
    let sa = w.sync(&a, 1, vec![]);
    w.sync_answer(sa).unwrap();
    // B heartbeats but never syncs.
    for _ in 0..9 {
        w.advance(3_000);
        assert_eq!(w.heartbeat(&a, 1), NONE);
        w.heartbeat(&b, 1);
    }
    w.advance(3_000);
    assert!(w.coordinator.state.groups["g"].member(&b).is_none());
    assert_eq!(w.heartbeat(&a, 1), REBALANCE_IN_PROGRESS);
}

#[test]
fn g17_rebalance_during_completing_answers_parked_syncs() {
    let (mut w, _a, b) = World::two_joined();
    let sb = w.sync(&b, 1, vec![]);
    let c = w.member_id("c");
    w.join(&c, "c");
    assert_eq!(w.sync_answer(sb).unwrap().error_code, REBALANCE_IN_PROGRESS);
    assert_eq!(w.state(), GroupState::PreparingRebalance);
}

#[test]
fn g18_heartbeat_error_matrix() {
    let mut w = World::no_delay();
    assert_eq!(w.heartbeat("x", 0), UNKNOWN_MEMBER_ID, "no group");
    let a = w.member_id("a");
    let b = w.member_id("b");
    let ja = w.join(&a, "a");
    w.join(&b, "b");
    w.join_answer(ja).unwrap();
    assert_eq!(w.heartbeat(&a, 1), NONE, "CompletingRebalance: NONE");
    assert_eq!(w.heartbeat("x", 1), UNKNOWN_MEMBER_ID);
    assert_eq!(w.heartbeat(&a, 0), ILLEGAL_GENERATION);
    let sa = w.sync(&a, 1, vec![]);
    w.sync_answer(sa).unwrap();
    assert_eq!(w.heartbeat(&b, 1), NONE, "Stable: NONE");
    let c = w.member_id("c");
    w.join(&c, "c");
    assert_eq!(w.heartbeat(&b, 1), REBALANCE_IN_PROGRESS);
}

#[test]
fn g19_silent_member_expires_and_survivor_forms_next_generation() {
    let mut w = World::no_delay();
    let (a, b) = w.stable_pair();
    for _ in 0..3 {
        w.advance(3_000);
        assert_eq!(w.heartbeat(&b, 1), NONE);
    }
    w.advance(1_000 + 3_000);
    assert_eq!(w.state(), GroupState::PreparingRebalance, "A expired 10 s after its last heartbeat");
    assert_eq!(w.heartbeat(&b, 1), REBALANCE_IN_PROGRESS);
    let jb = w.join(&b, "b");
    let rb = w.join_answer(jb).unwrap();
    assert_eq!((rb.generation_id, rb.leader.as_str(), rb.members.len()), (2, b.as_str(), 1));
    assert_eq!(w.heartbeat(&a, 2), UNKNOWN_MEMBER_ID);
}

#[test]
fn g19_parked_member_is_alive() {
    let mut w = World::no_delay();
    let (a, b) = w.stable_pair();
    let ja = w.join(&a, "a");
    // B heartbeats for 25 s without rejoining; A is parked in JoinGroup and sends nothing.
    for _ in 0..8 {
        w.advance(3_000);
        w.heartbeat(&b, 1);
    }
    assert!(w.coordinator.state.groups["g"].member(&a).is_some());
    w.advance(6_000);
    assert_eq!(w.join_answer(ja).unwrap().generation_id, 2);
}

#[test]
fn g21_leave_group() {
    let mut w = World::no_delay();
    let (a, b) = w.stable_pair();
    let p = w.member_id("p");
    assert_eq!(w.leave(vec![("ghost".into(), None), (p, None)]), vec![UNKNOWN_MEMBER_ID, NONE]);
    assert_eq!(w.state(), GroupState::Stable);
    let ja = w.join(&a, "a");
    assert_eq!(w.leave(vec![(b, None)]), vec![NONE]);
    assert_eq!(w.join_answer(ja).unwrap().generation_id, 2, "everybody left or rejoined: completes");
}

fn static_join(w: &World, instance: &str, member_id: &str) -> JoinGroupRequest {
    let mut req = w.join_req(member_id, instance, &["range"]);
    req.group_instance_id = Some(instance.into());
    req
}

#[test]
fn g23_g24_static_member_restart_keeps_the_generation() {
    let mut w = World::no_delay();
    let ji = w.send_join(static_join(&w, "i", ""));
    let ri = w.join_answer(ji).unwrap();
    assert_eq!(ri.error_code, NONE, "static members skip MEMBER_ID_REQUIRED");
    let old = ri.member_id.clone();
    let si = w.sync(&old, 1, vec![(old.clone(), Bytes::from("p0"))]);
    w.sync_answer(si).unwrap();
    let before = w.log.len();
    // The process restarts: same instance id, empty member id.
    let ji = w.send_join(static_join(&w, "i", ""));
    let ri = w.join_answer(ji).unwrap();
    assert_ne!(ri.member_id, old);
    assert_eq!((ri.generation_id, ri.skip_assignment), (1, true), "no rebalance");
    assert_eq!(w.state(), GroupState::Stable);
    assert_eq!(w.log.len(), before + 1, "the replacement is persisted");
    // The old process is fenced.
    let id = w.request_id();
    let hb = HeartbeatRequest {
        group_id: "g".into(),
        member_id: old,
        group_instance_id: Some("i".into()),
        generation_id: 1,
    };
    let out = w.coordinator.heartbeat(id, hb, w.now_ms);
    w.apply(out);
    assert_eq!(w.answers.remove(&id), Some(Response::Heartbeat { error_code: FENCED_INSTANCE_ID }));
    let si = w.sync(&ri.member_id, 1, vec![]);
    assert_eq!(w.sync_answer(si).unwrap().assignment, Bytes::from("p0"), "keeps its assignment");
}

#[test]
fn o8_restart_reloads_stable_group_and_expires_absent_members() {
    let mut w = World::no_delay();
    let (a, b) = w.stable_pair();
    let mut restarted = World::no_delay();
    for record in &w.log {
        restarted.coordinator.load(&Record::decode(&record.encode()).unwrap());
    }
    restarted.now_ms = 100_000;
    let out = restarted.coordinator.on_loaded(restarted.now_ms);
    restarted.apply(out);
    assert_eq!(restarted.state(), GroupState::Stable);
    assert_eq!(restarted.generation(), 1);
    assert_eq!(restarted.heartbeat(&a, 1), NONE);
    let s = restarted.sync(&b, 1, vec![]);
    assert_eq!(restarted.sync_answer(s).unwrap().assignment, Bytes::from("pb"));
    for _ in 0..3 {
        restarted.advance(3_000);
        assert_eq!(restarted.heartbeat(&a, 1), NONE);
    }
    restarted.advance(2_000);
    assert!(restarted.coordinator.state.groups["g"].member(&b).is_none(), "b never came back");
    assert_eq!(restarted.heartbeat(&a, 1), REBALANCE_IN_PROGRESS);
}

/// A deterministic xorshift generator (no dependency, same sequence on every run).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone, Debug)]
enum Client {
    Out,
    Joining { member_id: String, request: RequestId },
    Syncing { member_id: String, generation: i32, request: RequestId },
    In { member_id: String, generation: i32 },
}

/// One step of a well-behaved Java-like client.
fn step(w: &mut World, name: &str, client: Client) -> Client {
    match client {
        Client::Out => Client::Out,
        Client::Joining { member_id, request } => match w.join_answer(request) {
            None => Client::Joining { member_id, request },
            Some(r) if r.error_code == MEMBER_ID_REQUIRED => {
                let request = w.join(&r.member_id, name);
                Client::Joining { member_id: r.member_id, request }
            }
            Some(r) if r.error_code == NONE => {
                let assignments = r.members.iter().map(|m| (m.member_id.clone(), Bytes::from("x"))).collect();
                let request = w.sync(&r.member_id, r.generation_id, assignments);
                Client::Syncing { member_id: r.member_id, generation: r.generation_id, request }
            }
            Some(_) => {
                let request = w.join(&member_id, name);
                Client::Joining { member_id, request }
            }
        },
        Client::Syncing { member_id, generation, request } => match w.sync_answer(request) {
            None => Client::Syncing { member_id, generation, request },
            Some(r) if r.error_code == NONE => Client::In { member_id, generation },
            Some(r) => {
                let rejoin_id = if r.error_code == UNKNOWN_MEMBER_ID { String::new() } else { member_id };
                let request = w.join(&rejoin_id, name);
                Client::Joining { member_id: rejoin_id, request }
            }
        },
        Client::In { member_id, generation } => match w.heartbeat(&member_id, generation) {
            NONE => Client::In { member_id, generation },
            UNKNOWN_MEMBER_ID => {
                let request = w.join("", name);
                Client::Joining { member_id: String::new(), request }
            }
            _ => {
                let request = w.join(&member_id, name);
                Client::Joining { member_id, request }
            }
        },
    }
}

fn member_of(client: &Client) -> Option<&str> {
    match client {
        Client::Out => None,
        Client::Joining { member_id, .. } | Client::Syncing { member_id, .. } | Client::In { member_id, .. } => {
            (!member_id.is_empty()).then_some(member_id.as_str())
        }
    }
}

#[test]
fn churn_twenty_members_converge_to_one_stable_generation() {
    for seed in [1_u64, 7, 42, 2024] {
        let mut w = World::new(CoordinatorConfig { group_initial_rebalance_delay_ms: 500, ..Default::default() });
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let names: Vec<String> = (0..20).map(|i| format!("c{i}")).collect();
        let mut clients: Vec<Client> = vec![Client::Out; 20];
        // Churn: random joins and leaves while everybody keeps stepping.
        for _ in 0..400 {
            let i = rng.below(20) as usize;
            match (&clients[i], rng.below(4)) {
                (Client::Out, 0 | 1) => {
                    let request = w.join("", &names[i]);
                    clients[i] = Client::Joining { member_id: String::new(), request };
                }
                (c, 2) if member_of(c).is_some() => {
                    let member_id = member_of(c).unwrap().to_string();
                    w.leave(vec![(member_id, None)]);
                    // Whatever was parked for it has been answered; forget it.
                    clients[i] = Client::Out;
                }
                _ => {}
            }
            for (j, name) in names.iter().enumerate() {
                clients[j] = step(&mut w, name, clients[j].clone());
            }
            w.advance(rng.below(1_000) as i64);
        }
        // Settle: no more churn; clients keep stepping until the group is stable.
        for _ in 0..200 {
            for (j, name) in names.iter().enumerate() {
                clients[j] = step(&mut w, name, clients[j].clone());
            }
            w.advance(500);
        }
        let group = &w.coordinator.state.groups["g"];
        let active: Vec<&Client> = clients.iter().filter(|c| !matches!(c, Client::Out)).collect();
        assert!(group.generation_id > 20, "seed {seed}: the churn forced many rebalances");
        assert!(!active.is_empty(), "seed {seed}: the churn left somebody in");
        assert_eq!(group.state, GroupState::Stable, "seed {seed}");
        assert_eq!(group.members.len(), active.len(), "seed {seed}: every active client is a member");
        for c in active {
            match c {
                Client::In { member_id, generation } => {
                    assert_eq!(
                        *generation, group.generation_id,
                        "seed {seed}: {member_id} is on the group's generation"
                    );
                    assert!(group.member(member_id).is_some());
                }
                other => panic!("seed {seed}: client not settled: {other:?}"),
            }
        }
        // Loading the persisted log rebuilds the same Stable group.
        let mut restarted = Coordinator::new(CoordinatorConfig::default());
        for record in &w.log {
            restarted.load(record);
        }
        let reloaded = &restarted.state.groups["g"];
        assert_eq!((reloaded.state, reloaded.generation_id), (GroupState::Stable, group.generation_id));
        assert_eq!(reloaded.leader_id, group.leader_id);
        let ids = |g: &sluice_coordinator::state::ClassicGroup| -> Vec<String> {
            g.members.iter().map(|m| m.member_id.clone()).collect()
        };
        assert_eq!(ids(reloaded), ids(group), "seed {seed}");
    }
}

fn commit(w: &mut World, member_id: &str, generation_id: i32, offset: i64, metadata: &str) -> i16 {
    commit_to(
        w,
        member_id,
        generation_id,
        "t0",
        PartitionCommit { partition: 0, offset, leader_epoch: 5, metadata: metadata.into() },
    )
}

/// One OffsetCommit of one partition; returns its error code.
fn commit_to(w: &mut World, member_id: &str, generation_id: i32, topic: &str, commit: PartitionCommit) -> i16 {
    let id = w.request_id();
    let req = OffsetCommitRequest {
        group_id: "g".into(),
        member_id: member_id.into(),
        group_instance_id: None,
        generation_id,
        version_9_or_later: true,
        topics: vec![(topic.into(), vec![commit])],
    };
    let out = w.coordinator.offset_commit(id, req, w.now_ms);
    w.apply(out);
    match w.answers.remove(&id) {
        Some(Response::OffsetCommit(r)) => r.partitions[0].error_code,
        other => panic!("expected an OffsetCommit answer, got {other:?}"),
    }
}

fn fetch_t0(w: &World) -> i64 {
    let topics = [("t0".to_string(), vec![0])];
    w.coordinator.offset_fetch("g", Some(&topics))[0].committed_offset
}

#[test]
fn o3_simple_commit_creates_an_empty_group_and_o5_fetch_returns_it() {
    let mut w = World::no_delay();
    assert_eq!(fetch_t0(&w), -1, "unknown group: -1, no error");
    assert_eq!(commit(&mut w, "", 3, 1, ""), GROUP_ID_NOT_FOUND, "generation >= 0 needs a group");
    assert_eq!(commit(&mut w, "", -1, 42, "m"), NONE);
    assert_eq!(w.state(), GroupState::Empty);
    assert_eq!(w.coordinator.state.groups["g"].protocol_type, None);
    let all = w.coordinator.offset_fetch("g", None);
    assert_eq!(all.len(), 1);
    assert_eq!((all[0].committed_offset, all[0].committed_leader_epoch, all[0].metadata.as_str()), (42, 5, "m"));
    let topics = [("t0".to_string(), vec![1])];
    assert_eq!(w.coordinator.offset_fetch("g", Some(&topics))[0].committed_offset, -1, "never committed");
}

#[test]
fn o2_commit_checks_member_generation_and_state() {
    let mut w = World::no_delay();
    let (a, _b) = w.stable_pair();
    assert_eq!(commit(&mut w, "", -1, 1, ""), UNKNOWN_MEMBER_ID, "simple commit into an active group");
    assert_eq!(commit(&mut w, "ghost", 1, 1, ""), UNKNOWN_MEMBER_ID);
    assert_eq!(commit(&mut w, &a, 0, 1, ""), ILLEGAL_GENERATION);
    assert_eq!(commit(&mut w, &a, 1, 10, ""), NONE);
    let c = w.member_id("c");
    w.join(&c, "c");
    assert_eq!(commit(&mut w, &a, 1, 11, ""), NONE, "PreparingRebalance accepts the current generation");
    assert_eq!(fetch_t0(&w), 11);
}

#[test]
fn o2_commit_in_completing_rebalance_is_rebalance_in_progress() {
    let mut w = World::no_delay();
    let a = w.member_id("a");
    let b = w.member_id("b");
    let ja = w.join(&a, "a");
    w.join(&b, "b");
    w.join_answer(ja).unwrap();
    assert_eq!(commit(&mut w, &a, 1, 1, ""), REBALANCE_IN_PROGRESS);
}

#[test]
fn o4_oversized_metadata_is_rejected_per_partition() {
    let mut w = World::no_delay();
    assert_eq!(commit(&mut w, "", -1, 1, &"x".repeat(4097)), OFFSET_METADATA_TOO_LARGE);
    assert_eq!(fetch_t0(&w), -1);
    assert_eq!(commit(&mut w, "", -1, 1, &"x".repeat(4096)), NONE);
}

#[test]
fn o8_offsets_survive_a_restart() {
    let mut w = World::no_delay();
    let (a, _b) = w.stable_pair();
    assert_eq!(commit(&mut w, &a, 1, 42, "meta"), NONE);
    let mut restarted = World::no_delay();
    for record in &w.log {
        restarted.coordinator.load(&Record::decode(&record.encode()).unwrap());
    }
    assert_eq!(fetch_t0(&restarted), 42);
    assert_eq!(restarted.coordinator.state.offsets, w.coordinator.state.offsets);
    let durable = |g: &sluice_coordinator::state::ClassicGroup| {
        let members: Vec<(String, Bytes)> =
            g.members.iter().map(|m| (m.member_id.clone(), m.assignment.clone())).collect();
        (g.state, g.generation_id, g.leader_id.clone(), g.protocol_type.clone(), g.protocol_name.clone(), members)
    };
    assert_eq!(durable(&restarted.coordinator.state.groups["g"]), durable(&w.coordinator.state.groups["g"]));
}

#[test]
fn g27_g28_list_and_delete_groups() {
    let mut w = World::no_delay();
    let (a, b) = w.stable_pair();
    assert_eq!(commit(&mut w, &a, 1, 42, ""), NONE);
    let described = w.coordinator.describe_group("g");
    assert_eq!((described.group_state, described.protocol_data.as_str()), ("Stable", "range"));
    assert_eq!(described.members[1].member_assignment, Bytes::from("pb"));
    assert_eq!(w.coordinator.describe_group("nope").group_state, "Dead");
    let listed = w.coordinator.list_groups(&[]);
    assert_eq!((listed[0].group_id.as_str(), listed[0].group_state), ("g", "Stable"));
    let ids = vec!["g".to_string(), "nope".to_string()];
    let (results, _) = w.coordinator.delete_groups(&ids);
    assert_eq!(results, vec![("g".to_string(), NON_EMPTY_GROUP), ("nope".to_string(), GROUP_ID_NOT_FOUND)]);
    w.leave(vec![(a, None), (b, None)]);
    let (results, out) = w.coordinator.delete_groups(&ids[..1]);
    w.apply(out);
    assert_eq!(results, vec![("g".to_string(), NONE)]);
    assert_eq!(fetch_t0(&w), -1, "offsets deleted with the group");
    assert!(w.coordinator.list_groups(&[]).is_empty());
    // Replaying the whole log gives the same (empty) state.
    let mut restarted = World::no_delay();
    for record in &w.log {
        restarted.coordinator.load(record);
    }
    assert!(restarted.coordinator.state.groups.is_empty() && restarted.coordinator.state.offsets.is_empty());
}

#[test]
fn g12_group_max_size() {
    let mut w = World::new(CoordinatorConfig {
        group_initial_rebalance_delay_ms: 0,
        group_max_size: 2,
        ..CoordinatorConfig::default()
    });
    w.stable_pair();
    let jc = w.join("", "c");
    assert_eq!(w.join_answer(jc).unwrap().error_code, GROUP_MAX_SIZE_REACHED, "before MEMBER_ID_REQUIRED");
    assert_eq!(w.state(), GroupState::Stable);
}

#[test]
fn g21_admin_removal_of_a_static_member_by_instance_id() {
    let mut w = World::no_delay();
    let ji = w.send_join(static_join(&w, "i", ""));
    let member_id = w.join_answer(ji).unwrap().member_id;
    assert_eq!(w.leave(vec![(String::new(), Some("unknown".into()))]), vec![UNKNOWN_MEMBER_ID]);
    assert_eq!(w.leave(vec![("wrong".into(), Some("i".into()))]), vec![FENCED_INSTANCE_ID]);
    assert_eq!(w.leave(vec![(String::new(), Some("i".into()))]), vec![NONE]);
    assert!(w.coordinator.state.groups["g"].member(&member_id).is_none());
    assert_eq!(w.state(), GroupState::Empty);
}

#[test]
fn g7_static_member_that_does_not_rejoin_is_kept() {
    let mut w = World::no_delay();
    let ji = w.send_join(static_join(&w, "i", ""));
    let i = w.join_answer(ji).unwrap().member_id;
    let si = w.sync(&i, 1, vec![]);
    w.sync_answer(si).unwrap();
    let b = w.member_id("b");
    let jb = w.join(&b, "b");
    // The static member neither rejoins nor heartbeats within the rebalance timeout... but its
    // session (10 s) is shorter, so keep it alive with heartbeats and let the barrier time out.
    for _ in 0..10 {
        w.advance(3_000);
        w.heartbeat(&i, 1);
    }
    let rb = w.join_answer(jb).unwrap();
    assert_eq!((rb.generation_id, rb.leader.as_str()), (2, b.as_str()), "first rejoined member leads");
    assert!(w.coordinator.state.groups["g"].member(&i).is_some(), "static member kept");
}

#[test]
fn o9_offsets_of_an_empty_group_expire_from_when_it_became_empty() {
    let mut w = World::no_delay();
    let (a, b) = w.stable_pair();
    assert_eq!(commit(&mut w, &a, 1, 42, ""), NONE);
    // Stable for two minutes: nothing expires however old the commit.
    for _ in 0..40 {
        w.advance(3_000);
        assert_eq!(w.heartbeat(&a, 1), NONE);
        assert_eq!(w.heartbeat(&b, 1), NONE);
    }
    let out = w.coordinator.expire_offsets(w.now_ms, 60_000);
    assert!(out.records.is_empty());
    w.leave(vec![(a, None), (b, None)]);
    let left_ms = w.now_ms;
    let out = w.coordinator.expire_offsets(left_ms + 59_999, 60_000);
    assert!(out.records.is_empty(), "counted from when the group became Empty");
    let out = w.coordinator.expire_offsets(left_ms + 61_000, 60_000);
    w.apply(out);
    assert_eq!(fetch_t0(&w), -1);
    assert!(w.coordinator.list_groups(&[]).is_empty(), "a drained Empty group is deleted");
}

#[test]
fn o9_simple_group_offsets_expire_by_commit_time() {
    let mut w = World::no_delay();
    assert_eq!(commit(&mut w, "", -1, 1, ""), NONE);
    w.advance(30_000);
    commit_topic(&mut w, "", -1, "t1", 7);
    let out = w.coordinator.expire_offsets(60_000, 60_000);
    w.apply(out);
    assert_eq!(fetch_t0(&w), -1, "t0 committed at 0 expired");
    assert_eq!(w.coordinator.offset_fetch("g", None).len(), 1, "t1 committed at 30 s is kept");
    assert_eq!(w.coordinator.list_groups(&[]).len(), 1);
}

/// A ConsumerProtocolSubscription v0 naming `topics`.
fn subscription(topics: &[&str]) -> Bytes {
    let mut b = 0_i16.to_be_bytes().to_vec();
    b.extend((topics.len() as i32).to_be_bytes());
    for t in topics {
        b.extend((t.len() as i16).to_be_bytes());
        b.extend(t.as_bytes());
    }
    b.extend(0_i32.to_be_bytes()); // no user data
    Bytes::from(b)
}

fn commit_topic(w: &mut World, member_id: &str, generation_id: i32, topic: &str, offset: i64) {
    let commit = PartitionCommit { partition: 0, offset, leader_epoch: -1, metadata: String::new() };
    assert_eq!(commit_to(w, member_id, generation_id, topic, commit), NONE);
}

/// Two members subscribed to t0 only (their metadata made real ConsumerProtocol bytes).
fn stable_pair_subscribed_to_t0(w: &mut World) -> (String, String) {
    let (a, b) = w.stable_pair();
    for m in &mut w.coordinator.state.groups.get_mut("g").unwrap().members {
        m.protocols = vec![("range".into(), subscription(&["t0"]))];
    }
    (a, b)
}

#[test]
fn o11_offset_delete_refuses_subscribed_topics_of_an_active_group() {
    let mut w = World::no_delay();
    assert_eq!(w.coordinator.offset_delete("g", &[("t0".into(), 0)]).0, GROUP_ID_NOT_FOUND);
    let (a, b) = stable_pair_subscribed_to_t0(&mut w);
    commit_topic(&mut w, &a, 1, "t0", 10);
    commit_topic(&mut w, &a, 1, "t1", 20);
    let (group_error, errors, out) = w.coordinator.offset_delete("g", &[("t0".into(), 0), ("t1".into(), 0)]);
    w.apply(out);
    assert_eq!((group_error, errors), (NONE, vec![GROUP_SUBSCRIBED_TO_TOPIC, NONE]));
    assert_eq!(fetch_t0(&w), 10, "subscribed topic kept");
    assert!(w.coordinator.offset_fetch("g", None).iter().all(|o| o.topic == "t0"), "t1 deleted");
    // Once Empty, anything goes.
    w.leave(vec![(a, None), (b, None)]);
    let (group_error, errors, out) = w.coordinator.offset_delete("g", &[("t0".into(), 0)]);
    w.apply(out);
    assert_eq!((group_error, errors), (NONE, vec![NONE]));
    assert_eq!(fetch_t0(&w), -1);
}

#[test]
fn o11_offset_delete_on_an_active_non_consumer_group_is_non_empty_group() {
    let mut w = World::no_delay();
    w.stable_pair();
    w.coordinator.state.groups.get_mut("g").unwrap().protocol_type = Some("connect".into());
    assert_eq!(w.coordinator.offset_delete("g", &[("t0".into(), 0)]).0, NON_EMPTY_GROUP);
}

#[test]
fn o9_stable_consumer_group_expires_offsets_of_unsubscribed_topics_by_commit_time() {
    let mut w = World::no_delay();
    let (a, _b) = stable_pair_subscribed_to_t0(&mut w);
    commit_topic(&mut w, &a, 1, "t0", 10);
    commit_topic(&mut w, &a, 1, "t1", 20);
    let out = w.coordinator.expire_offsets(w.now_ms + 61_000, 60_000);
    w.apply(out);
    let left: Vec<String> = w.coordinator.offset_fetch("g", None).into_iter().map(|o| o.topic).collect();
    assert_eq!(left, vec!["t0".to_string()]);
    assert_eq!(w.state(), GroupState::Stable, "the group itself stays");
}

#[test]
fn g27_list_groups_state_filter_is_case_insensitive() {
    let mut w = World::no_delay();
    w.stable_pair();
    assert_eq!(w.coordinator.list_groups(&["stable".into()]).len(), 1);
    assert_eq!(w.coordinator.list_groups(&["Empty".into(), "STABLE".into()]).len(), 1);
    assert!(w.coordinator.list_groups(&["Empty".into()]).is_empty());
}

#[test]
fn deleting_a_topic_deletes_its_committed_offsets_in_every_group() {
    let mut w = World::no_delay();
    let (a, _b) = w.stable_pair();
    commit_topic(&mut w, &a, 1, "t0", 10);
    commit_topic(&mut w, &a, 1, "t1", 20);
    let out = w.coordinator.delete_topic_offsets("t0");
    assert_eq!(out.records.len(), 1);
    w.apply(out);
    assert_eq!(fetch_t0(&w), -1);
    assert_eq!(w.coordinator.offset_fetch("g", None).len(), 1, "t1 kept");
}

/// G23/G25: a restarted static member sends different metadata (it owns nothing yet): as long
/// as the selected protocol stays, there is no rebalance.
#[test]
fn g25_static_restart_with_new_metadata_but_same_protocol_does_not_rebalance() {
    let mut w = World::no_delay();
    let (a, b) = w.stable_pair();
    let ji = w.send_join(static_join(&w, "i", ""));
    assert!(w.join_answer(ji).is_none(), "a new static member starts a rebalance");
    let ja = w.join(&a, "a");
    let jb = w.join(&b, "b");
    let ri = w.join_answer(ji).unwrap();
    w.join_answer(ja).unwrap();
    w.join_answer(jb).unwrap();
    let sb = w.sync(&b, 2, vec![]);
    w.sync_answer(sb);
    let si = w.sync(&ri.member_id, 2, vec![]);
    let sa = w.sync(&a, 2, vec![(ri.member_id.clone(), Bytes::from("pi"))]);
    w.sync_answer(sa).unwrap();
    assert_eq!(w.sync_answer(si).unwrap().assignment, Bytes::from("pi"));
    assert_eq!((w.state(), w.generation()), (GroupState::Stable, 2));

    let mut restart = static_join(&w, "i", "");
    restart.protocols = vec![("range".into(), Bytes::from("new process, owns nothing"))];
    let ji = w.send_join(restart);
    let ri2 = w.join_answer(ji).unwrap();
    assert_eq!((ri2.error_code, ri2.generation_id), (NONE, 2), "no rebalance");
    assert_eq!(w.state(), GroupState::Stable);
    let si = w.sync(&ri2.member_id, 2, vec![]);
    assert_eq!(w.sync_answer(si).unwrap().assignment, Bytes::from("pi"), "keeps its assignment");

    // Preferring another protocol the others lack changes nothing: "range" stays selected.
    let mut other = static_join(&w, "i", "");
    other.protocols = vec![("roundrobin".into(), Bytes::new()), ("range".into(), Bytes::new())];
    let ji = w.send_join(other);
    assert_eq!(w.join_answer(ji).unwrap().generation_id, 2);
    assert_eq!(w.state(), GroupState::Stable);
}
