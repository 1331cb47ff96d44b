//! The classic group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) as a state machine.
//!
//! **Invariants:** no I/O, no clock, no randomness: every handler takes `now_ms` (and the
//! caller's member-id suffix) and returns an [`Output`]. Each request given a [`RequestId`] is
//! answered exactly once, either in the `Output` of its own call or in a later one (a parked
//! JoinGroup or SyncGroup). Records are applied with [`replay`] before they are returned.
//! Transitions follow ClassicGroupState: Empty → PreparingRebalance → CompletingRebalance →
//! Stable → PreparingRebalance; PreparingRebalance → Empty when the last member is gone.

use bytes::Bytes;

use crate::error_code::*;
use crate::output::{
    JoinGroupResponse, JoinMember, LeaveGroupResponse, LeaveMemberResponse, Output, RequestId, Response,
    SyncGroupResponse, TimerKey, TimerKind,
};
use crate::records::{replay, GroupMetadataValue, MemberMetadata, Record};
use crate::state::{ClassicGroup, GroupState, InitialDelay, Member, State};

// One file per API; they share the helpers below.
mod heartbeat;
mod join;
mod leave;
mod sync;
mod timers;

/// Broker settings of the group coordinator (GroupCoordinatorConfig), with Kafka's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoordinatorConfig {
    pub group_min_session_timeout_ms: i32,
    pub group_max_session_timeout_ms: i32,
    pub group_initial_rebalance_delay_ms: i64,
    pub group_max_size: usize,
    /// CLASSIC_GROUP_NEW_MEMBER_JOIN_TIMEOUT_MS (G11).
    pub new_member_join_timeout_ms: i64,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
            group_initial_rebalance_delay_ms: 3_000,
            group_max_size: i32::MAX as usize,
            new_member_join_timeout_ms: 300_000,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinGroupRequest {
    pub group_id: String,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub protocol_type: String,
    /// (name, metadata) in order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub client_id: String,
    pub client_host: String,
    /// JoinGroup v4+ (KIP-394): an empty member id first gets MEMBER_ID_REQUIRED.
    pub requires_known_member_id: bool,
    /// What the caller generated to make a new member id unique (Kafka uses a UUID).
    pub member_id_suffix: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncGroupRequest {
    pub group_id: String,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// (member id, assignment): only the leader sends them.
    pub assignments: Vec<(String, Bytes)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeartbeatRequest {
    pub group_id: String,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub generation_id: i32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaveGroupRequest {
    pub group_id: String,
    /// (member id, group instance id); v0–2 send one member without an instance id.
    pub members: Vec<(String, Option<String>)>,
}

/// The coordinator: state plus configuration. See the module docs for the invariants.
#[derive(Clone, Debug, Default)]
pub struct Coordinator {
    pub config: CoordinatorConfig,
    pub state: State,
}

fn join_error(out: &mut Output, request_id: RequestId, error_code: i16, member_id: &str) {
    out.complete(request_id, Response::JoinGroup(JoinGroupResponse::error(error_code, member_id)));
}

fn sync_error(out: &mut Output, request_id: RequestId, error_code: i16) {
    out.complete(request_id, Response::SyncGroup(SyncGroupResponse::error(error_code)));
}

impl Coordinator {
    pub fn new(config: CoordinatorConfig) -> Coordinator {
        Coordinator { config, state: State::default() }
    }

    /// Applies a record read back from the coordinator's log while loading.
    pub fn load(&mut self, record: &Record) {
        replay(&mut self.state, record);
    }

    /// After loading: every member of every group gets a fresh session timer (O8).
    pub fn on_loaded(&mut self, now_ms: i64) -> Output {
        let mut out = Output::default();
        for group in self.state.groups.values_mut() {
            for member in &mut group.members {
                member.session_deadline_ms = now_ms + i64::from(member.session_timeout_ms);
                out.arm(&group.group_id, &member.member_id, TimerKind::Session, member.session_deadline_ms);
            }
        }
        out
    }

    pub(crate) fn persist(&mut self, out: &mut Output, record: Record) {
        replay(&mut self.state, &record);
        out.records.push(record);
    }

    pub(crate) fn group_mut(&mut self, group_id: &str) -> &mut ClassicGroup {
        self.state.groups.get_mut(group_id).expect("group exists")
    }
}

/// Member lookup with static-membership fencing (G24): UNKNOWN_MEMBER_ID or FENCED_INSTANCE_ID.
fn validate_member(group: &ClassicGroup, member_id: &str, instance_id: Option<&str>) -> Result<(), i16> {
    if let Some(instance_id) = instance_id {
        if let Some(m) = group.static_member(instance_id) {
            if m.member_id != member_id {
                return Err(FENCED_INSTANCE_ID);
            }
        }
    }
    if group.member(member_id).is_none() {
        return Err(UNKNOWN_MEMBER_ID);
    }
    Ok(())
}

/// Drops a member: its parked requests get UNKNOWN_MEMBER_ID, its timer is cancelled, and the
/// leadership moves to the first remaining member.
fn remove_member(group: &mut ClassicGroup, member_id: &str, out: &mut Output) {
    let Some(index) = group.members.iter().position(|m| m.member_id == member_id) else {
        return;
    };
    let member = group.members.remove(index);
    if let Some(parked) = member.awaiting_join {
        join_error(out, parked, UNKNOWN_MEMBER_ID, member_id);
    }
    if let Some(parked) = member.awaiting_sync {
        sync_error(out, parked, UNKNOWN_MEMBER_ID);
    }
    out.cancel(&group.group_id, member_id, TimerKind::Session);
    group.pending_sync.remove(member_id);
    if group.leader_id.as_deref() == Some(member_id) {
        group.leader_id = group.members.first().map(|m| m.member_id.clone());
    }
}

fn remove_pending_sync(group: &mut ClassicGroup, member_id: &str, out: &mut Output) {
    if group.pending_sync.remove(member_id) && group.pending_sync.is_empty() {
        out.cancel(&group.group_id, "", TimerKind::PendingSync);
    }
}

/// G8: the leader stays if it rejoined, else the first rejoined member leads.
fn elect_joined_leader(group: &mut ClassicGroup) -> bool {
    if let Some(leader) = group.leader_id.as_deref().and_then(|id| group.member(id)) {
        if leader.awaiting_join.is_some() {
            return true;
        }
    }
    match group.members.iter().find(|m| m.awaiting_join.is_some()) {
        Some(m) => {
            group.leader_id = Some(m.member_id.clone());
            true
        }
        None => false,
    }
}

/// The JoinGroup answer for the current generation; only the leader gets the members.
fn current_generation_response(group: &ClassicGroup, member_id: &str, skip_assignment: bool) -> JoinGroupResponse {
    let leader = group.leader_id.clone().unwrap_or_default();
    let protocol = group.protocol_name.clone().unwrap_or_default();
    let members = if leader == member_id {
        group
            .members
            .iter()
            .map(|m| JoinMember {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                metadata: m.metadata_for(&protocol),
            })
            .collect()
    } else {
        Vec::new()
    };
    JoinGroupResponse {
        error_code: NONE,
        generation_id: group.generation_id,
        protocol_type: group.protocol_type.clone(),
        protocol_name: group.protocol_name.clone(),
        leader,
        skip_assignment,
        member_id: member_id.to_string(),
        members,
    }
}

fn sync_response(group: &ClassicGroup, assignment: Bytes) -> SyncGroupResponse {
    SyncGroupResponse {
        error_code: NONE,
        protocol_type: group.protocol_type.clone(),
        protocol_name: group.protocol_name.clone(),
        assignment,
    }
}

/// The group as persisted (O8): written when a generation becomes Stable or the group Empty.
fn group_metadata_record(group: &ClassicGroup, now_ms: i64) -> Record {
    let protocol = group.protocol_name.clone().unwrap_or_default();
    Record::GroupMetadata {
        group_id: group.group_id.clone(),
        value: Some(GroupMetadataValue {
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            generation_id: group.generation_id,
            protocol: group.protocol_name.clone(),
            leader: group.leader_id.clone(),
            current_state_timestamp_ms: now_ms,
            members: group
                .members
                .iter()
                .map(|m| MemberMetadata {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata_for(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }),
    }
}
