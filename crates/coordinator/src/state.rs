//! The coordinator's in-memory state: classic groups and committed offsets.
//!
//! **Invariants:** plain data, no I/O, no clock. The persisted part of a group (generation,
//! protocol, leader, members and assignments as of the last Stable/Empty transition) and all
//! committed offsets change only through [`crate::records::replay`]. The volatile rebalance
//! state (the group state between persisted points, parked requests, pending members) is not
//! persisted, as in Kafka; after a restart a group with members comes back Stable.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use crate::output::RequestId;
use crate::records::OffsetCommitValue;

/// Classic group states (names as DescribeGroups reports them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    /// (protocol name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    /// The JoinGroup parked for this member, if any.
    pub awaiting_join: Option<RequestId>,
    /// The SyncGroup parked for this member, if any.
    pub awaiting_sync: Option<RequestId>,
    /// Added in the current join phase and not yet answered (G11: such members are not kept
    /// alive by being parked).
    pub is_new: bool,
    /// When the session timer of this member fires, unless a heartbeat pushes it on.
    pub session_deadline_ms: i64,
}

impl Member {
    pub fn new(member_id: String) -> Member {
        Member {
            member_id,
            group_instance_id: None,
            client_id: String::new(),
            client_host: String::new(),
            rebalance_timeout_ms: 0,
            session_timeout_ms: 0,
            protocols: Vec::new(),
            assignment: Bytes::new(),
            awaiting_join: None,
            awaiting_sync: None,
            is_new: false,
            session_deadline_ms: 0,
        }
    }

    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols.iter().find(|(name, _)| name == protocol).map(|(_, m)| m.clone()).unwrap_or_default()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassicGroup {
    pub group_id: String,
    pub state: GroupState,
    pub state_timestamp_ms: i64,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub generation_id: i32,
    pub leader_id: Option<String>,
    /// Members in insertion order (the leader falls back to the first one).
    pub members: Vec<Member>,
    /// Members that got MEMBER_ID_REQUIRED and have not joined again yet (KIP-394).
    pub pending_members: BTreeSet<String>,
    /// Members of the current generation that have not sent SyncGroup yet (G16).
    pub pending_sync: BTreeSet<String>,
    /// Initial rebalance delay (G10): whether a member was added in this delay period, and how
    /// much of the rebalance timeout is left for further periods. `None` outside the delay.
    pub initial_delay: Option<InitialDelay>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InitialDelay {
    pub new_member_added: bool,
    pub remaining_ms: i64,
}

impl ClassicGroup {
    pub fn new(group_id: String) -> ClassicGroup {
        ClassicGroup {
            group_id,
            state: GroupState::Empty,
            state_timestamp_ms: 0,
            protocol_type: None,
            protocol_name: None,
            generation_id: 0,
            leader_id: None,
            members: Vec::new(),
            pending_members: BTreeSet::new(),
            pending_sync: BTreeSet::new(),
            initial_delay: None,
        }
    }

    pub fn member(&self, member_id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.member_id == member_id)
    }

    pub fn member_mut(&mut self, member_id: &str) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.member_id == member_id)
    }

    pub fn static_member(&self, instance_id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.group_instance_id.as_deref() == Some(instance_id))
    }

    /// Checks the relations between the group's fields; a failure is a bug in the coordinator.
    /// Cheap enough to run after every step in tests.
    pub fn check_invariants(&self) {
        let ids: BTreeSet<&str> = self.members.iter().map(|m| m.member_id.as_str()).collect();
        assert_eq!(ids.len(), self.members.len(), "{}: duplicate member ids", self.group_id);
        assert!(
            self.pending_members.iter().all(|p| !ids.contains(p.as_str())),
            "{}: pending and member",
            self.group_id
        );
        assert!(
            self.pending_sync.iter().all(|p| ids.contains(p.as_str())),
            "{}: pending sync of a non-member",
            self.group_id
        );
        match &self.leader_id {
            Some(leader) => {
                assert!(ids.contains(leader.as_str()), "{}: leader {leader} is not a member", self.group_id)
            }
            None => assert!(self.members.is_empty(), "{}: members without a leader", self.group_id),
        }
        if self.state == GroupState::Empty {
            assert!(self.members.is_empty(), "{}: Empty with members", self.group_id);
        }
        if matches!(self.state, GroupState::CompletingRebalance | GroupState::Stable) {
            assert!(self.protocol_name.is_some(), "{}: {:?} without a protocol", self.group_id, self.state);
        }
        if self.initial_delay.is_some() {
            assert_eq!(self.state, GroupState::PreparingRebalance, "{}: initial delay outside a join", self.group_id);
        }
        for m in &self.members {
            if m.awaiting_join.is_some() {
                assert_eq!(self.state, GroupState::PreparingRebalance, "{}: parked join", self.group_id);
            }
            if m.awaiting_sync.is_some() {
                assert_eq!(self.state, GroupState::CompletingRebalance, "{}: parked sync", self.group_id);
            }
        }
    }

    /// G7: every member has a parked JoinGroup and no KIP-394 member is pending.
    pub fn has_all_members_joined(&self) -> bool {
        self.members.iter().all(|m| m.awaiting_join.is_some()) && self.pending_members.is_empty()
    }

    /// The rebalance timeout: the largest of the members'.
    pub fn rebalance_timeout_ms(&self) -> i64 {
        self.members.iter().map(|m| i64::from(m.rebalance_timeout_ms)).max().unwrap_or(0)
    }

    /// G9: candidates are protocols every member supports; each member votes for its first
    /// candidate; most votes wins, ties to the candidate first in the leader's (or first
    /// member's) preference order.
    pub fn select_protocol(&self) -> Option<String> {
        let first = self.members.first()?;
        let candidates: Vec<&str> = first
            .protocols
            .iter()
            .map(|(name, _)| name.as_str())
            .filter(|name| self.members.iter().all(|m| m.protocols.iter().any(|(n, _)| n == name)))
            .collect();
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in &self.members {
            if let Some((name, _)) = m.protocols.iter().find(|(n, _)| candidates.contains(&n.as_str())) {
                *votes.entry(name.as_str()).or_default() += 1;
            }
        }
        let best = votes.values().copied().max()?;
        candidates.iter().find(|c| votes.get(*c) == Some(&best)).map(|c| c.to_string())
    }

    /// The topics a "consumer" group with members is subscribed to (O9, O11): the union of
    /// its members' subscriptions. `None` for other protocol types, for an Empty group and
    /// when a subscription does not parse.
    pub fn subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if self.protocol_type.as_deref() != Some("consumer") || self.members.is_empty() {
            return None;
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = BTreeSet::new();
        for m in &self.members {
            topics.extend(crate::consumer_protocol::subscribed_topics(&m.metadata_for(protocol))?);
        }
        Some(topics)
    }

    /// Whether a joining member with these protocols can be in this group (G4).
    pub fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols.iter().any(|(name, _)| self.members.iter().all(|m| m.protocols.iter().any(|(n, _)| n == name)))
    }
}

/// Everything the coordinator knows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    pub groups: BTreeMap<String, ClassicGroup>,
    /// group → (topic, partition) → committed offset.
    pub offsets: BTreeMap<String, BTreeMap<(String, i32), OffsetCommitValue>>,
}
