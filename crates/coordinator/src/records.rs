//! The coordinator's records: what is persisted, its byte encoding, and [`replay`].
//!
//! **Invariants:** [`replay`] is the only function that changes durable state (group metadata
//! as of the last persisted generation, committed offsets); it is used both while serving (each
//! handler replays the records it returns) and when loading after a restart. Decoding never
//! panics on bad bytes and never allocates more than the input could hold.
//!
//! Encoding (all integers big-endian; field order is load-bearing):
//! ```text
//! record   := tag:u8 body
//! tag 1    := group_id:str  present:u8 [GroupMetadataValue]          (present 0 = tombstone)
//! tag 2    := group_id:str topic:str partition:i32 present:u8 [OffsetCommitValue]
//! str      := len:u16 utf8            nstr := len:i16 (-1 = null) utf8     bytes := len:u32 raw
//! GroupMetadataValue := protocol_type:str generation_id:i32 protocol:nstr leader:nstr
//!                       current_state_timestamp_ms:i64 count:u32 member*
//! member   := member_id:str group_instance_id:nstr client_id:str client_host:str
//!             rebalance_timeout_ms:i32 session_timeout_ms:i32 subscription:bytes assignment:bytes
//! OffsetCommitValue  := offset:i64 leader_epoch:i32 metadata:str commit_timestamp_ms:i64
//! ```

use bytes::{BufMut, Bytes, BytesMut};

use crate::state::{ClassicGroup, GroupState, Member, State};

const TAG_GROUP_METADATA: u8 = 1;
const TAG_OFFSET_COMMIT: u8 = 2;

/// One member as persisted in group metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberMetadata {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    /// Subscription (the member's metadata for the selected protocol).
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// A classic group as persisted: written when a generation becomes Stable, when the group
/// becomes Empty, and on static-member replacement (never for intermediate states).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupMetadataValue {
    pub protocol_type: String,
    pub generation_id: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub current_state_timestamp_ms: i64,
    pub members: Vec<MemberMetadata>,
}

/// A committed offset (the offset of the next record to consume).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetCommitValue {
    pub offset: i64,
    /// -1 when unknown.
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

/// A record of the coordinator's log. `None` values are tombstones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    GroupMetadata { group_id: String, value: Option<GroupMetadataValue> },
    OffsetCommit { group_id: String, topic: String, partition: i32, value: Option<OffsetCommitValue> },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record truncated: needed {needed} more bytes at position {position}")]
    Truncated { position: usize, needed: usize },
    #[error("unknown record tag {0}")]
    UnknownTag(u8),
    #[error("invalid presence flag {0}")]
    InvalidFlag(u8),
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    #[error("invalid string length {0}")]
    InvalidLength(i16),
    #[error("{0} trailing bytes after the record")]
    TrailingBytes(usize),
}

impl Record {
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::new();
        match self {
            Record::GroupMetadata { group_id, value } => {
                buf.put_u8(TAG_GROUP_METADATA);
                put_str(&mut buf, group_id);
                match value {
                    None => buf.put_u8(0),
                    Some(v) => {
                        buf.put_u8(1);
                        put_str(&mut buf, &v.protocol_type);
                        buf.put_i32(v.generation_id);
                        put_nstr(&mut buf, v.protocol.as_deref());
                        put_nstr(&mut buf, v.leader.as_deref());
                        buf.put_i64(v.current_state_timestamp_ms);
                        buf.put_u32(u32::try_from(v.members.len()).expect("member count fits u32"));
                        for m in &v.members {
                            put_str(&mut buf, &m.member_id);
                            put_nstr(&mut buf, m.group_instance_id.as_deref());
                            put_str(&mut buf, &m.client_id);
                            put_str(&mut buf, &m.client_host);
                            buf.put_i32(m.rebalance_timeout_ms);
                            buf.put_i32(m.session_timeout_ms);
                            put_bytes(&mut buf, &m.subscription);
                            put_bytes(&mut buf, &m.assignment);
                        }
                    }
                }
            }
            Record::OffsetCommit { group_id, topic, partition, value } => {
                buf.put_u8(TAG_OFFSET_COMMIT);
                put_str(&mut buf, group_id);
                put_str(&mut buf, topic);
                buf.put_i32(*partition);
                match value {
                    None => buf.put_u8(0),
                    Some(v) => {
                        buf.put_u8(1);
                        buf.put_i64(v.offset);
                        buf.put_i32(v.leader_epoch);
                        put_str(&mut buf, &v.metadata);
                        buf.put_i64(v.commit_timestamp_ms);
                    }
                }
            }
        }
        buf.freeze()
    }

    pub fn decode(input: &[u8]) -> Result<Record, DecodeError> {
        let mut r = Reader { input, position: 0 };
        let record = match r.u8()? {
            TAG_GROUP_METADATA => {
                let group_id = r.str()?;
                let value = if r.flag()? {
                    let protocol_type = r.str()?;
                    let generation_id = r.i32()?;
                    let protocol = r.nstr()?;
                    let leader = r.nstr()?;
                    let current_state_timestamp_ms = r.i64()?;
                    let count = r.u32()? as usize;
                    // Each member takes at least 30 bytes: never reserve more than the input holds.
                    let mut members = Vec::with_capacity(count.min(r.remaining() / 30));
                    for _ in 0..count {
                        members.push(MemberMetadata {
                            member_id: r.str()?,
                            group_instance_id: r.nstr()?,
                            client_id: r.str()?,
                            client_host: r.str()?,
                            rebalance_timeout_ms: r.i32()?,
                            session_timeout_ms: r.i32()?,
                            subscription: r.bytes()?,
                            assignment: r.bytes()?,
                        });
                    }
                    Some(GroupMetadataValue {
                        protocol_type,
                        generation_id,
                        protocol,
                        leader,
                        current_state_timestamp_ms,
                        members,
                    })
                } else {
                    None
                };
                Record::GroupMetadata { group_id, value }
            }
            TAG_OFFSET_COMMIT => {
                let group_id = r.str()?;
                let topic = r.str()?;
                let partition = r.i32()?;
                let value = if r.flag()? {
                    Some(OffsetCommitValue {
                        offset: r.i64()?,
                        leader_epoch: r.i32()?,
                        metadata: r.str()?,
                        commit_timestamp_ms: r.i64()?,
                    })
                } else {
                    None
                };
                Record::OffsetCommit { group_id, topic, partition, value }
            }
            tag => return Err(DecodeError::UnknownTag(tag)),
        };
        if r.remaining() != 0 {
            return Err(DecodeError::TrailingBytes(r.remaining()));
        }
        Ok(record)
    }
}

fn put_str(buf: &mut BytesMut, s: &str) {
    buf.put_u16(u16::try_from(s.len()).expect("string longer than 65535 bytes"));
    buf.put_slice(s.as_bytes());
}

fn put_nstr(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        None => buf.put_i16(-1),
        Some(s) => {
            buf.put_i16(i16::try_from(s.len()).expect("string longer than 32767 bytes"));
            buf.put_slice(s.as_bytes());
        }
    }
}

fn put_bytes(buf: &mut BytesMut, b: &[u8]) {
    buf.put_u32(u32::try_from(b.len()).expect("bytes longer than u32"));
    buf.put_slice(b);
}

struct Reader<'a> {
    input: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.input.len() - self.position
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated { position: self.position, needed: n - self.remaining() });
        }
        let slice = &self.input[self.position..self.position + n];
        self.position += n;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        Ok(self.take(N)?.try_into().expect("take returned N bytes"))
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }
    fn flag(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(DecodeError::InvalidFlag(other)),
        }
    }
    fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array()?))
    }
    fn utf8(&mut self, len: usize) -> Result<String, DecodeError> {
        std::str::from_utf8(self.take(len)?).map(str::to_owned).map_err(|_| DecodeError::InvalidUtf8)
    }
    fn str(&mut self) -> Result<String, DecodeError> {
        let len = u16::from_be_bytes(self.array()?) as usize;
        self.utf8(len)
    }
    fn nstr(&mut self) -> Result<Option<String>, DecodeError> {
        match i16::from_be_bytes(self.array()?) {
            -1 => Ok(None),
            len if len < 0 => Err(DecodeError::InvalidLength(len)),
            len => self.utf8(len as usize).map(Some),
        }
    }
    fn bytes(&mut self) -> Result<Bytes, DecodeError> {
        let len = self.u32()? as usize;
        Ok(Bytes::copy_from_slice(self.take(len)?))
    }
}

/// Applies one record to the state. The only way durable state changes.
///
/// Group metadata replaces the group's persisted view (protocol, generation, leader, members and
/// their assignments) and puts it in Stable (members) or Empty (no members), which is both what a
/// load after a restart needs and what serving needs (metadata is written exactly when a group
/// becomes Stable or Empty). Volatile per-member fields (parked requests, deadlines) of members
/// that are still present are kept. A group tombstone removes the group, not its offsets. An
/// offset commit for a group that does not exist creates it, Empty and without protocol type.
pub fn replay(state: &mut State, record: &Record) {
    match record {
        Record::GroupMetadata { group_id, value: None } => {
            state.groups.remove(group_id);
        }
        Record::GroupMetadata { group_id, value: Some(v) } => {
            let group = state.groups.entry(group_id.clone()).or_insert_with(|| ClassicGroup::new(group_id.clone()));
            let old_members = std::mem::take(&mut group.members);
            group.protocol_type = (!v.protocol_type.is_empty()).then(|| v.protocol_type.clone());
            group.generation_id = v.generation_id;
            group.protocol_name = v.protocol.clone();
            group.leader_id = v.leader.clone();
            group.state_timestamp_ms = v.current_state_timestamp_ms;
            group.state = if v.members.is_empty() { GroupState::Empty } else { GroupState::Stable };
            for m in &v.members {
                let mut member = match old_members.iter().find(|o| o.member_id == m.member_id) {
                    Some(old) => old.clone(),
                    None => Member::new(m.member_id.clone()),
                };
                member.group_instance_id = m.group_instance_id.clone();
                member.client_id = m.client_id.clone();
                member.client_host = m.client_host.clone();
                member.rebalance_timeout_ms = m.rebalance_timeout_ms;
                member.session_timeout_ms = m.session_timeout_ms;
                member.assignment = m.assignment.clone();
                if let Some(protocol) = &v.protocol {
                    if member.protocols.is_empty() {
                        member.protocols = vec![(protocol.clone(), m.subscription.clone())];
                    }
                }
                group.members.push(member);
            }
        }
        Record::OffsetCommit { group_id, topic, partition, value } => {
            let key = (topic.clone(), *partition);
            match value {
                Some(v) => {
                    // A commit for an unknown group creates a "simple" group (O3): Empty, no
                    // protocol type.
                    state.groups.entry(group_id.clone()).or_insert_with(|| {
                        let mut group = ClassicGroup::new(group_id.clone());
                        group.state_timestamp_ms = v.commit_timestamp_ms;
                        group
                    });
                    state.offsets.entry(group_id.clone()).or_default().insert(key, v.clone());
                }
                None => {
                    if let Some(offsets) = state.offsets.get_mut(group_id) {
                        offsets.remove(&key);
                        if offsets.is_empty() {
                            state.offsets.remove(group_id);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_group() -> Record {
        Record::GroupMetadata {
            group_id: "g".into(),
            value: Some(GroupMetadataValue {
                protocol_type: "consumer".into(),
                generation_id: 3,
                protocol: Some("range".into()),
                leader: Some("a-1".into()),
                current_state_timestamp_ms: 1_000,
                members: vec![
                    MemberMetadata {
                        member_id: "a-1".into(),
                        group_instance_id: None,
                        client_id: "a".into(),
                        client_host: "/127.0.0.1".into(),
                        rebalance_timeout_ms: 300_000,
                        session_timeout_ms: 45_000,
                        subscription: Bytes::from_static(b"sub-a"),
                        assignment: Bytes::from_static(b"asg-a"),
                    },
                    MemberMetadata {
                        member_id: "i-2".into(),
                        group_instance_id: Some("i".into()),
                        client_id: "b".into(),
                        client_host: "/10.0.0.2".into(),
                        rebalance_timeout_ms: 60_000,
                        session_timeout_ms: 10_000,
                        subscription: Bytes::new(),
                        assignment: Bytes::from_static(&[0, 1, 2]),
                    },
                ],
            }),
        }
    }

    fn sample_offset() -> Record {
        Record::OffsetCommit {
            group_id: "g".into(),
            topic: "t0".into(),
            partition: 7,
            value: Some(OffsetCommitValue {
                offset: 42,
                leader_epoch: -1,
                metadata: "m".into(),
                commit_timestamp_ms: 5,
            }),
        }
    }

    fn all_samples() -> Vec<Record> {
        vec![
            sample_group(),
            sample_offset(),
            Record::GroupMetadata { group_id: "g".into(), value: None },
            Record::OffsetCommit { group_id: "g".into(), topic: "t0".into(), partition: 7, value: None },
        ]
    }

    #[test]
    fn records_round_trip() {
        for record in all_samples() {
            assert_eq!(Record::decode(&record.encode()), Ok(record));
        }
    }

    #[test]
    fn every_truncation_is_an_error_never_a_panic() {
        for record in all_samples() {
            let bytes = record.encode();
            for len in 0..bytes.len() {
                assert!(Record::decode(&bytes[..len]).is_err(), "prefix of {len} bytes decoded");
            }
        }
    }

    #[test]
    fn trailing_bytes_and_bad_tags_are_rejected() {
        let mut bytes = sample_offset().encode().to_vec();
        bytes.push(0);
        assert_eq!(Record::decode(&bytes), Err(DecodeError::TrailingBytes(1)));
        assert_eq!(Record::decode(&[9]), Err(DecodeError::UnknownTag(9)));
    }

    #[test]
    fn huge_member_count_does_not_allocate() {
        let mut bytes = BytesMut::new();
        bytes.put_u8(TAG_GROUP_METADATA);
        put_str(&mut bytes, "g");
        bytes.put_u8(1);
        put_str(&mut bytes, "consumer");
        bytes.put_i32(1);
        put_nstr(&mut bytes, None);
        put_nstr(&mut bytes, None);
        bytes.put_i64(0);
        bytes.put_u32(u32::MAX);
        assert!(matches!(Record::decode(&bytes), Err(DecodeError::Truncated { .. })));
    }

    #[test]
    fn replay_loads_stable_group_and_offsets_then_tombstones_remove_them() {
        let mut state = State::default();
        replay(&mut state, &sample_group());
        replay(&mut state, &sample_offset());
        let group = &state.groups["g"];
        assert_eq!(group.state, GroupState::Stable);
        assert_eq!(group.generation_id, 3);
        assert_eq!(group.leader_id.as_deref(), Some("a-1"));
        assert_eq!(group.members.len(), 2);
        assert_eq!(group.members[1].assignment, Bytes::from_static(&[0, 1, 2]));
        assert_eq!(state.offsets["g"][&("t0".to_string(), 7)].offset, 42);

        replay(
            &mut state,
            &Record::OffsetCommit { group_id: "g".into(), topic: "t0".into(), partition: 7, value: None },
        );
        assert!(!state.offsets.contains_key("g"));
        replay(&mut state, &Record::GroupMetadata { group_id: "g".into(), value: None });
        assert!(!state.groups.contains_key("g"));
    }

    #[test]
    fn replay_of_memberless_metadata_gives_empty_group() {
        let mut state = State::default();
        let record = Record::GroupMetadata {
            group_id: "g".into(),
            value: Some(GroupMetadataValue {
                protocol_type: "consumer".into(),
                generation_id: 4,
                protocol: None,
                leader: None,
                current_state_timestamp_ms: 9,
                members: vec![],
            }),
        };
        replay(&mut state, &record);
        assert_eq!(state.groups["g"].state, GroupState::Empty);
        assert_eq!(state.groups["g"].generation_id, 4);
    }
}
