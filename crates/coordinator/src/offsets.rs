//! Offsets (SEMANTICS.md section 6): OffsetCommit, OffsetFetch, and group listing/deletion.
//!
//! **Invariants:** no I/O, no clock. Committed offsets change only by replaying the
//! `OffsetCommit` records these handlers return; a commit is answered in the same [`Output`] as
//! its records, so the caller acknowledges it only once they are durable (O8).

use bytes::Bytes;

use crate::error_code::*;
use crate::group::Coordinator;
use crate::output::{OffsetCommitResponse, Output, PartitionError, RequestId, Response, TimerKind};
use crate::records::{replay, OffsetCommitValue, Record};
use crate::state::GroupState;

/// `offset.metadata.max.bytes` default.
pub const OFFSET_METADATA_BYTES_MAX: usize = 4096;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionCommit {
    pub partition: i32,
    pub offset: i64,
    /// -1 when unknown (v6+ sends it).
    pub leader_epoch: i32,
    pub metadata: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetCommitRequest {
    pub group_id: String,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// -1 for a simple (admin or `assign()`) commit.
    pub generation_id: i32,
    /// OffsetCommit v9+: a missing group is GROUP_ID_NOT_FOUND rather than ILLEGAL_GENERATION.
    pub version_9_or_later: bool,
    pub topics: Vec<(String, Vec<PartitionCommit>)>,
}

/// One partition of an OffsetFetch answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchedOffset {
    pub topic: String,
    pub partition: i32,
    /// -1 when nothing was committed.
    pub committed_offset: i64,
    pub committed_leader_epoch: i32,
    pub metadata: String,
}

/// One member in a DescribeGroups answer; metadata and assignment only in Stable (G26).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescribedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub member_metadata: Bytes,
    pub member_assignment: Bytes,
}

/// A DescribeGroups answer for one group. Unknown groups are "Dead" with no members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescribedGroup {
    pub group_id: String,
    pub group_state: &'static str,
    pub protocol_type: String,
    /// The selected protocol, in Stable only.
    pub protocol_data: String,
    pub members: Vec<DescribedMember>,
}

/// One group in a ListGroups answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedGroup {
    pub group_id: String,
    pub protocol_type: String,
    pub group_state: &'static str,
}

impl Coordinator {
    pub fn offset_commit(&mut self, request_id: RequestId, req: OffsetCommitRequest, now_ms: i64) -> Output {
        let mut out = Output::default();
        let group_error = self.validate_offset_commit(&req, now_ms, &mut out);
        let mut partitions = Vec::new();
        for (topic, commits) in &req.topics {
            for commit in commits {
                let error_code = if group_error != NONE {
                    group_error
                } else if commit.metadata.len() > OFFSET_METADATA_BYTES_MAX {
                    OFFSET_METADATA_TOO_LARGE
                } else {
                    let record = Record::OffsetCommit {
                        group_id: req.group_id.clone(),
                        topic: topic.clone(),
                        partition: commit.partition,
                        value: Some(OffsetCommitValue {
                            offset: commit.offset,
                            leader_epoch: commit.leader_epoch,
                            metadata: commit.metadata.clone(),
                            commit_timestamp_ms: now_ms,
                        }),
                    };
                    replay(&mut self.state, &record);
                    out.records.push(record);
                    NONE
                };
                partitions.push(PartitionError { topic: topic.clone(), partition: commit.partition, error_code });
            }
        }
        out.complete(request_id, Response::OffsetCommit(OffsetCommitResponse { partitions }));
        out
    }

    /// O2/O3, in order. A valid commit from a member counts as a heartbeat (O4).
    fn validate_offset_commit(&mut self, req: &OffsetCommitRequest, now_ms: i64, out: &mut Output) -> i16 {
        if req.group_id.is_empty() {
            return INVALID_GROUP_ID;
        }
        let Some(group) = self.state.groups.get_mut(&req.group_id) else {
            return match (req.generation_id < 0, req.version_9_or_later) {
                // The first replayed commit creates the simple group.
                (true, _) => NONE,
                (false, true) => GROUP_ID_NOT_FOUND,
                (false, false) => ILLEGAL_GENERATION,
            };
        };
        if group.state == GroupState::Dead {
            return COORDINATOR_NOT_AVAILABLE;
        }
        if req.generation_id < 0 && group.state == GroupState::Empty {
            return NONE;
        }
        if req.generation_id >= 0 || !req.member_id.is_empty() || req.group_instance_id.is_some() {
            if let Some(instance_id) = &req.group_instance_id {
                if group.static_member(instance_id).is_some_and(|m| m.member_id != req.member_id) {
                    return FENCED_INSTANCE_ID;
                }
            }
            if group.member(&req.member_id).is_none() {
                return UNKNOWN_MEMBER_ID;
            }
            if req.generation_id != group.generation_id {
                return ILLEGAL_GENERATION;
            }
        } else {
            return UNKNOWN_MEMBER_ID;
        }
        if group.state == GroupState::CompletingRebalance {
            return REBALANCE_IN_PROGRESS;
        }
        let member = group.member_mut(&req.member_id).expect("checked above");
        member.session_deadline_ms = now_ms + i64::from(member.session_timeout_ms);
        out.arm(&req.group_id, &req.member_id, TimerKind::Session, member.session_deadline_ms);
        NONE
    }

    /// O5: `topics` None means every committed offset of the group. Unknown group or partition:
    /// offset -1, no error.
    pub fn offset_fetch(&self, group_id: &str, topics: Option<&[(String, Vec<i32>)]>) -> Vec<FetchedOffset> {
        let committed = self.state.offsets.get(group_id);
        let fetched = |topic: &str, partition: i32| {
            let value = committed.and_then(|c| c.get(&(topic.to_string(), partition)));
            FetchedOffset {
                topic: topic.to_string(),
                partition,
                committed_offset: value.map_or(-1, |v| v.offset),
                committed_leader_epoch: value.map_or(-1, |v| v.leader_epoch),
                metadata: value.map(|v| v.metadata.clone()).unwrap_or_default(),
            }
        };
        match topics {
            Some(topics) => topics
                .iter()
                .flat_map(|(topic, partitions)| partitions.iter().map(move |p| (topic.as_str(), *p)))
                .map(|(topic, partition)| fetched(topic, partition))
                .collect(),
            None => committed
                .into_iter()
                .flat_map(|c| c.keys())
                .map(|(topic, partition)| fetched(topic, *partition))
                .collect(),
        }
    }

    /// O9: the retention sweep (the caller runs it every `offsets.retention.check.interval.ms`).
    /// A group with a protocol type loses offsets only while Empty, counted from when it became
    /// Empty; a simple group (no protocol type) loses each offset by its commit time. An Empty
    /// group left without offsets is deleted. Not yet: expiry of unsubscribed topics of a Stable
    /// "consumer" group (needs the subscription parsed), per-commit retention (v2–v4).
    pub fn expire_offsets(&mut self, now_ms: i64, retention_ms: i64) -> Output {
        let mut records = Vec::new();
        for (group_id, committed) in &self.state.offsets {
            let group = self.state.groups.get(group_id);
            // A "consumer" group with members keeps the offsets of the topics it subscribes
            // to; those of other topics expire by commit time.
            let mut subscribed = None;
            let empty_since_ms = match group {
                Some(g) if g.protocol_type.is_some() && g.state != GroupState::Empty => match g.subscribed_topics() {
                    Some(topics) => {
                        subscribed = Some(topics);
                        None
                    }
                    None => continue,
                },
                Some(g) if g.protocol_type.is_some() => Some(g.state_timestamp_ms),
                _ => None,
            };
            for ((topic, partition), value) in committed {
                if subscribed.as_ref().is_some_and(|s| s.contains(topic)) {
                    continue;
                }
                let base_ms = empty_since_ms.unwrap_or(value.commit_timestamp_ms);
                if base_ms.saturating_add(retention_ms) <= now_ms {
                    records.push(Record::OffsetCommit {
                        group_id: group_id.clone(),
                        topic: topic.clone(),
                        partition: *partition,
                        value: None,
                    });
                }
            }
        }
        let mut out = Output::default();
        for record in records {
            replay(&mut self.state, &record);
            out.records.push(record);
        }
        let drained: Vec<String> = self
            .state
            .groups
            .values()
            .filter(|g| g.state == GroupState::Empty && g.pending_members.is_empty())
            .filter(|g| !self.state.offsets.contains_key(&g.group_id))
            .filter(|g| {
                out.records
                    .iter()
                    .any(|r| matches!(r, Record::OffsetCommit { group_id, .. } if *group_id == g.group_id))
            })
            .map(|g| g.group_id.clone())
            .collect();
        for group_id in drained {
            let record = Record::GroupMetadata { group_id, value: None };
            replay(&mut self.state, &record);
            out.records.push(record);
        }
        out
    }

    /// G26: DescribeGroups for one group.
    pub fn describe_group(&self, group_id: &str) -> DescribedGroup {
        let Some(group) = self.state.groups.get(group_id) else {
            return DescribedGroup {
                group_id: group_id.to_string(),
                group_state: GroupState::Dead.name(),
                protocol_type: String::new(),
                protocol_data: String::new(),
                members: Vec::new(),
            };
        };
        let stable = group.state == GroupState::Stable;
        let protocol = group.protocol_name.clone().unwrap_or_default();
        DescribedGroup {
            group_id: group_id.to_string(),
            group_state: group.state.name(),
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            protocol_data: if stable { protocol.clone() } else { String::new() },
            members: group
                .members
                .iter()
                .map(|m| DescribedMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    member_metadata: if stable { m.metadata_for(&protocol) } else { Bytes::new() },
                    member_assignment: if stable { m.assignment.clone() } else { Bytes::new() },
                })
                .collect(),
        }
    }

    /// G27: every group with its protocol type and state; `states` (case-insensitive) keeps
    /// only groups in those states when not empty.
    pub fn list_groups(&self, states: &[String]) -> Vec<ListedGroup> {
        self.state
            .groups
            .values()
            .filter(|g| states.is_empty() || states.iter().any(|s| s.eq_ignore_ascii_case(g.state.name())))
            .map(|g| ListedGroup {
                group_id: g.group_id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                group_state: g.state.name(),
            })
            .collect()
    }

    /// O11 (KIP-496): OffsetDelete. Returns the group-level error and, when there is none,
    /// each partition's: GROUP_SUBSCRIBED_TO_TOPIC for a topic a member of a "consumer" group
    /// subscribes to, else NONE (the offset, if any, is deleted).
    pub fn offset_delete(&mut self, group_id: &str, partitions: &[(String, i32)]) -> (i16, Vec<i16>, Output) {
        let mut out = Output::default();
        let Some(group) = self.state.groups.get(group_id) else {
            return (GROUP_ID_NOT_FOUND, Vec::new(), out);
        };
        let subscribed = match group.state {
            GroupState::Dead => return (GROUP_ID_NOT_FOUND, Vec::new(), out),
            GroupState::Empty => None,
            _ if group.protocol_type.as_deref() != Some("consumer") => return (NON_EMPTY_GROUP, Vec::new(), out),
            // A subscription that does not parse protects every topic.
            _ => Some(group.subscribed_topics()),
        };
        let mut errors = Vec::with_capacity(partitions.len());
        for (topic, partition) in partitions {
            let protected = match &subscribed {
                None => false,
                Some(None) => true,
                Some(Some(topics)) => topics.contains(topic),
            };
            if protected {
                errors.push(GROUP_SUBSCRIBED_TO_TOPIC);
                continue;
            }
            let committed =
                self.state.offsets.get(group_id).is_some_and(|c| c.contains_key(&(topic.clone(), *partition)));
            if committed {
                let record = Record::OffsetCommit {
                    group_id: group_id.to_string(),
                    topic: topic.clone(),
                    partition: *partition,
                    value: None,
                };
                replay(&mut self.state, &record);
                out.records.push(record);
            }
            errors.push(NONE);
        }
        (NONE, errors, out)
    }

    /// A deleted topic takes its committed offsets with it, in every group (as Kafka's
    /// coordinator does when partitions are deleted).
    pub fn delete_topic_offsets(&mut self, topic: &str) -> Output {
        let mut out = Output::default();
        let doomed: Vec<(String, i32)> = self
            .state
            .offsets
            .iter()
            .flat_map(|(group, c)| c.keys().filter(|(t, _)| t == topic).map(move |(_, p)| (group.clone(), *p)))
            .collect();
        for (group_id, partition) in doomed {
            let record = Record::OffsetCommit { group_id, topic: topic.to_string(), partition, value: None };
            replay(&mut self.state, &record);
            out.records.push(record);
        }
        out
    }

    /// G28: per group, NONE (Empty: group tombstone and every offset deleted), NON_EMPTY_GROUP
    /// or GROUP_ID_NOT_FOUND.
    pub fn delete_groups(&mut self, group_ids: &[String]) -> (Vec<(String, i16)>, Output) {
        let mut out = Output::default();
        let mut results = Vec::new();
        for group_id in group_ids {
            let error_code = match self.state.groups.get(group_id).map(|g| g.state) {
                None | Some(GroupState::Dead) => GROUP_ID_NOT_FOUND,
                Some(GroupState::Empty) => {
                    let partitions: Vec<(String, i32)> =
                        self.state.offsets.get(group_id).map(|c| c.keys().cloned().collect()).unwrap_or_default();
                    let mut records: Vec<Record> = partitions
                        .into_iter()
                        .map(|(topic, partition)| Record::OffsetCommit {
                            group_id: group_id.clone(),
                            topic,
                            partition,
                            value: None,
                        })
                        .collect();
                    records.push(Record::GroupMetadata { group_id: group_id.clone(), value: None });
                    for record in records {
                        replay(&mut self.state, &record);
                        out.records.push(record);
                    }
                    NONE
                }
                Some(_) => NON_EMPTY_GROUP,
            };
            results.push((group_id.clone(), error_code));
        }
        (results, out)
    }
}
