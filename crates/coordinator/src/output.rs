//! What a handler returns: completed responses, records to persist, timers to arm or cancel.
//!
//! **Invariants:** the caller persists `records` (in order) before sending any response of the
//! same [`Output`]; arming a [`TimerKey`] that is already armed replaces its deadline; a timer
//! that fires is handed back through `Coordinator::on_timer`, which tolerates stale firings.

use bytes::Bytes;

use crate::records::Record;

/// An id the caller gives each request, so that a parked request can be completed later.
pub type RequestId = u64;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerKind {
    /// A member's session expiry; for a brand-new member parked in JoinGroup, the new-member
    /// join timeout (G11); for a pending KIP-394 member, its session timeout (G5).
    Session,
    /// The join phase's rebalance timeout (G7).
    Join,
    /// One period of `group.initial.rebalance.delay.ms` (G10).
    InitialDelay,
    /// Members that have not sent SyncGroup within the rebalance timeout (G16).
    PendingSync,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimerKey {
    pub group_id: String,
    /// Empty for group-wide timers.
    pub member_id: String,
    pub kind: TimerKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimerOp {
    Arm { key: TimerKey, deadline_ms: i64 },
    Cancel { key: TimerKey },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinGroupResponse {
    pub error_code: i16,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub skip_assignment: bool,
    pub member_id: String,
    /// Only the leader gets the members.
    pub members: Vec<JoinMember>,
}

impl JoinGroupResponse {
    pub fn error(error_code: i16, member_id: &str) -> JoinGroupResponse {
        JoinGroupResponse {
            error_code,
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            skip_assignment: false,
            member_id: member_id.to_string(),
            members: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncGroupResponse {
    pub error_code: i16,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncGroupResponse {
    pub fn error(error_code: i16) -> SyncGroupResponse {
        SyncGroupResponse { error_code, protocol_type: None, protocol_name: None, assignment: Bytes::new() }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaveMemberResponse {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub error_code: i16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaveGroupResponse {
    pub error_code: i16,
    pub members: Vec<LeaveMemberResponse>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    JoinGroup(JoinGroupResponse),
    SyncGroup(SyncGroupResponse),
    Heartbeat { error_code: i16 },
    LeaveGroup(LeaveGroupResponse),
    OffsetCommit(OffsetCommitResponse),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionError {
    pub topic: String,
    pub partition: i32,
    pub error_code: i16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetCommitResponse {
    pub partitions: Vec<PartitionError>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completed {
    pub request_id: RequestId,
    pub response: Response,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    pub completed: Vec<Completed>,
    pub records: Vec<Record>,
    pub timers: Vec<TimerOp>,
}

impl Output {
    pub(crate) fn complete(&mut self, request_id: RequestId, response: Response) {
        self.completed.push(Completed { request_id, response });
    }

    pub(crate) fn arm(&mut self, group_id: &str, member_id: &str, kind: TimerKind, deadline_ms: i64) {
        let key = TimerKey { group_id: group_id.to_string(), member_id: member_id.to_string(), kind };
        self.timers.push(TimerOp::Arm { key, deadline_ms });
    }

    pub(crate) fn cancel(&mut self, group_id: &str, member_id: &str, kind: TimerKind) {
        let key = TimerKey { group_id: group_id.to_string(), member_id: member_id.to_string(), kind };
        self.timers.push(TimerOp::Cancel { key });
    }
}
