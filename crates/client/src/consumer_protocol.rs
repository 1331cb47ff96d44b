//! The "consumer" embedded protocol: what a member puts in JoinGroup's protocol metadata
//! (`ConsumerProtocolSubscription`) and what the leader puts in SyncGroup's assignments
//! (`ConsumerProtocolAssignment`), as Kafka's `clients/src/main/resources/common/message/`
//! schemas define them and Kafka's Java client (`ConsumerProtocol`) writes them.
//!
//! Layout (non-flexible, big-endian; **field order is load-bearing**, fields are only ever
//! appended):
//!
//! ```text
//! Subscription := version:i16 topics:[string] user_data:nullable_bytes
//!                 owned_partitions:[topic:string partitions:[i32]]   (v1+)
//!                 generation_id:i32                                  (v2+, default -1)
//!                 rack_id:nullable_string                            (v3+, default null)
//! Assignment   := version:i16 assigned_partitions:[topic:string partitions:[i32]]
//!                 user_data:nullable_bytes                           (same in v0-v3)
//! string   := len:i16 utf8[len]            nullable_string: len -1 is null
//! bytes    := len:i32 byte[len]            nullable_bytes:  len -1 is null
//! [T]      := count:i32 T[count]           never null here
//! ```
//!
//! **Versions.** Encoding takes a version in 0..=3; fields a lower version lacks are dropped
//! silently, as Java drops them (they are all "ignorable"). Decoding follows Java's
//! forward-compatibility rule (`ConsumerProtocol.checkSubscriptionVersion`): a negative version
//! is an error, a version above 3 is read with the v3 layout, i.e. the known prefix, and any
//! bytes after the last known field are ignored at every version (Java's generated readers never
//! look at what follows). That is why the schemas may only ever append fields.
//!
//! **Invariants:** decoding never panics, whatever the bytes; an array count is checked against
//! the bytes that remain (each element needs at least 2, 4 or 6 bytes) before anything is
//! reserved, so no input can make the decoder allocate more than the input's own size.
//! Negative lengths mean null where the schema allows null (`user_data`, `rack_id`), and are an
//! error elsewhere, as in Java. A string that is not UTF-8 is an error (Java would substitute
//! U+FFFD; no Kafka client writes one, and legal topic names are ASCII).

use crate::TopicPartition;

/// `protocol_type` of groups that use this protocol.
pub const PROTOCOL_TYPE: &str = "consumer";
/// Highest version of both schemas; Java and librdkafka write this one.
pub const VERSION_MAX: i16 = 3;

/// Why bytes are not a valid subscription, assignment or assignor user data.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{field}: needs {needed} bytes, only {remaining} remain")]
    Truncated { field: &'static str, needed: usize, remaining: usize },
    #[error("unsupported version {0}: the lowest is 0")]
    UnsupportedVersion(i16),
    #[error("{field}: negative length {length} (null) where the schema does not allow null")]
    UnexpectedNull { field: &'static str, length: i32 },
    #[error("{field}: {count} elements cannot fit in the {remaining} bytes that remain")]
    ArrayTooLong { field: &'static str, count: i32, remaining: usize },
    #[error("{field}: not valid UTF-8")]
    InvalidUtf8 { field: &'static str },
}

/// Why a value cannot be written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("unsupported version {0}: valid versions are 0..={VERSION_MAX}")]
    UnsupportedVersion(i16),
    #[error("{field}: length {len} exceeds the wire limit {max}")]
    TooLong { field: &'static str, len: usize, max: usize },
}

/// One topic's partitions, as both schemas group them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopicPartitions {
    pub topic: String,
    pub partitions: Vec<i32>,
}

/// `ConsumerProtocolSubscription`, field for field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerProtocolSubscription {
    pub topics: Vec<String>,
    pub user_data: Option<Vec<u8>>,
    /// v1+.
    pub owned_partitions: Vec<TopicPartitions>,
    /// v2+; -1 when absent.
    pub generation_id: i32,
    /// v3+.
    pub rack_id: Option<String>,
}

impl Default for ConsumerProtocolSubscription {
    fn default() -> Self {
        ConsumerProtocolSubscription {
            topics: Vec::new(),
            user_data: None,
            owned_partitions: Vec::new(),
            generation_id: -1,
            rack_id: None,
        }
    }
}

impl ConsumerProtocolSubscription {
    /// The bytes Java's `ConsumerProtocol.serializeSubscription(_, version)` writes for the same
    /// field values (Java sorts topics and owned partitions first; see
    /// [`crate::assignor::Subscription::to_protocol`]).
    pub fn encode(&self, version: i16) -> Result<Vec<u8>, EncodeError> {
        check_encode_version(version)?;
        let mut out = Vec::new();
        out.extend(version.to_be_bytes());
        put_array_len(&mut out, self.topics.len(), "topics")?;
        for topic in &self.topics {
            put_string(&mut out, topic, "topics")?;
        }
        put_nullable_bytes(&mut out, self.user_data.as_deref(), "user_data")?;
        if version >= 1 {
            put_topic_partitions(&mut out, &self.owned_partitions, "owned_partitions")?;
        }
        if version >= 2 {
            out.extend(self.generation_id.to_be_bytes());
        }
        if version >= 3 {
            put_nullable_string(&mut out, self.rack_id.as_deref(), "rack_id")?;
        }
        Ok(out)
    }

    /// Reads a subscription of any version; see the module docs for newer versions.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::decode_with_version(bytes).map(|(_, subscription)| subscription)
    }

    /// Like [`Self::decode`], also returning the version found on the wire (which may be
    /// above [`VERSION_MAX`]).
    pub fn decode_with_version(bytes: &[u8]) -> Result<(i16, Self), DecodeError> {
        let mut r = Reader::new(bytes);
        let version = read_version(&mut r)?;
        let layout = version.min(VERSION_MAX);
        let count = r.array_len("topics", STRING_BYTES_MIN)?;
        let mut topics = Vec::with_capacity(count);
        for _ in 0..count {
            topics.push(r.string("topics")?);
        }
        let user_data = r.nullable_bytes("user_data")?;
        let mut subscription = ConsumerProtocolSubscription { topics, user_data, ..Default::default() };
        if layout >= 1 {
            subscription.owned_partitions = read_topic_partitions(&mut r, "owned_partitions")?;
        }
        if layout >= 2 {
            subscription.generation_id = r.i32("generation_id")?;
        }
        if layout >= 3 {
            subscription.rack_id = r.nullable_string("rack_id")?;
        }
        Ok((version, subscription))
    }

    /// The owned partitions, one entry per partition, in wire order.
    pub fn owned_partitions_flat(&self) -> Vec<TopicPartition> {
        flatten(&self.owned_partitions)
    }
}

/// `ConsumerProtocolAssignment`, field for field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConsumerProtocolAssignment {
    pub assigned_partitions: Vec<TopicPartitions>,
    pub user_data: Option<Vec<u8>>,
}

impl ConsumerProtocolAssignment {
    /// Groups partitions by topic as Java's `serializeAssignment` does: topics in order of first
    /// appearance, each topic's partitions in the order given (a topic that reappears later is
    /// merged into its first group).
    pub fn from_partitions(partitions: &[TopicPartition], user_data: Option<Vec<u8>>) -> Self {
        let mut assigned_partitions: Vec<TopicPartitions> = Vec::new();
        for tp in partitions {
            match assigned_partitions.iter_mut().find(|group| group.topic == tp.topic) {
                Some(group) => group.partitions.push(tp.partition),
                None => assigned_partitions
                    .push(TopicPartitions { topic: tp.topic.clone(), partitions: vec![tp.partition] }),
            }
        }
        ConsumerProtocolAssignment { assigned_partitions, user_data }
    }

    /// The bytes Java's `ConsumerProtocol.serializeAssignment(_, version)` writes. Every
    /// version has the same layout; only the prefix differs.
    pub fn encode(&self, version: i16) -> Result<Vec<u8>, EncodeError> {
        check_encode_version(version)?;
        let mut out = Vec::new();
        out.extend(version.to_be_bytes());
        put_topic_partitions(&mut out, &self.assigned_partitions, "assigned_partitions")?;
        put_nullable_bytes(&mut out, self.user_data.as_deref(), "user_data")?;
        Ok(out)
    }

    /// Reads an assignment of any version; see the module docs for newer versions.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::decode_with_version(bytes).map(|(_, assignment)| assignment)
    }

    /// Like [`Self::decode`], also returning the version found on the wire.
    pub fn decode_with_version(bytes: &[u8]) -> Result<(i16, Self), DecodeError> {
        let mut r = Reader::new(bytes);
        let version = read_version(&mut r)?;
        let assigned_partitions = read_topic_partitions(&mut r, "assigned_partitions")?;
        let user_data = r.nullable_bytes("user_data")?;
        Ok((version, ConsumerProtocolAssignment { assigned_partitions, user_data }))
    }

    /// The assigned partitions, one entry per partition, in wire order.
    pub fn partitions(&self) -> Vec<TopicPartition> {
        flatten(&self.assigned_partitions)
    }
}

/// Smallest encoding of a string (its length prefix).
pub(crate) const STRING_BYTES_MIN: usize = 2;
/// Smallest encoding of `{topic: string, partitions: [i32]}`.
pub(crate) const TOPIC_PARTITIONS_BYTES_MIN: usize = STRING_BYTES_MIN + 4;

fn flatten(groups: &[TopicPartitions]) -> Vec<TopicPartition> {
    groups.iter().flat_map(|g| g.partitions.iter().map(|&p| TopicPartition::new(g.topic.clone(), p))).collect()
}

fn check_encode_version(version: i16) -> Result<(), EncodeError> {
    if (0..=VERSION_MAX).contains(&version) {
        Ok(())
    } else {
        Err(EncodeError::UnsupportedVersion(version))
    }
}

fn read_version(r: &mut Reader<'_>) -> Result<i16, DecodeError> {
    let version = r.i16("version")?;
    if version < 0 {
        return Err(DecodeError::UnsupportedVersion(version));
    }
    Ok(version)
}

/// `[topic:string partitions:[i32]]`, shared by both schemas and the sticky user data.
pub(crate) fn read_topic_partitions(
    r: &mut Reader<'_>,
    field: &'static str,
) -> Result<Vec<TopicPartitions>, DecodeError> {
    let count = r.array_len(field, TOPIC_PARTITIONS_BYTES_MIN)?;
    let mut groups = Vec::with_capacity(count);
    for _ in 0..count {
        let topic = r.string(field)?;
        let partition_count = r.array_len(field, 4)?;
        let mut partitions = Vec::with_capacity(partition_count);
        for _ in 0..partition_count {
            partitions.push(r.i32(field)?);
        }
        groups.push(TopicPartitions { topic, partitions });
    }
    Ok(groups)
}

pub(crate) fn put_topic_partitions(
    out: &mut Vec<u8>,
    groups: &[TopicPartitions],
    field: &'static str,
) -> Result<(), EncodeError> {
    put_array_len(out, groups.len(), field)?;
    for group in groups {
        put_string(out, &group.topic, field)?;
        put_array_len(out, group.partitions.len(), field)?;
        for partition in &group.partitions {
            out.extend(partition.to_be_bytes());
        }
    }
    Ok(())
}

pub(crate) fn put_array_len(out: &mut Vec<u8>, len: usize, field: &'static str) -> Result<(), EncodeError> {
    let len = i32::try_from(len).map_err(|_| EncodeError::TooLong { field, len, max: i32::MAX as usize })?;
    out.extend(len.to_be_bytes());
    Ok(())
}

pub(crate) fn put_string(out: &mut Vec<u8>, s: &str, field: &'static str) -> Result<(), EncodeError> {
    let len =
        i16::try_from(s.len()).map_err(|_| EncodeError::TooLong { field, len: s.len(), max: i16::MAX as usize })?;
    out.extend(len.to_be_bytes());
    out.extend(s.as_bytes());
    Ok(())
}

fn put_nullable_string(out: &mut Vec<u8>, s: Option<&str>, field: &'static str) -> Result<(), EncodeError> {
    match s {
        Some(s) => put_string(out, s, field),
        None => {
            out.extend((-1i16).to_be_bytes());
            Ok(())
        }
    }
}

fn put_nullable_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>, field: &'static str) -> Result<(), EncodeError> {
    match bytes {
        Some(bytes) => {
            put_array_len(out, bytes.len(), field)?;
            out.extend(bytes);
        }
        None => out.extend((-1i32).to_be_bytes()),
    }
    Ok(())
}

/// A cursor over untrusted bytes: every read is bounds-checked and returns a typed error.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if n > self.rest.len() {
            return Err(DecodeError::Truncated { field, needed: n, remaining: self.rest.len() });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N, field)?);
        Ok(a)
    }

    pub(crate) fn i16(&mut self, field: &'static str) -> Result<i16, DecodeError> {
        self.array(field).map(i16::from_be_bytes)
    }

    pub(crate) fn i32(&mut self, field: &'static str) -> Result<i32, DecodeError> {
        self.array(field).map(i32::from_be_bytes)
    }

    /// An array count, refused if the remaining bytes cannot hold `count` elements of at
    /// least `element_bytes_min` each. This is what bounds every allocation by the input size.
    pub(crate) fn array_len(&mut self, field: &'static str, element_bytes_min: usize) -> Result<usize, DecodeError> {
        let count = self.i32(field)?;
        let Ok(len) = usize::try_from(count) else {
            return Err(DecodeError::UnexpectedNull { field, length: count });
        };
        if len > self.remaining() / element_bytes_min {
            return Err(DecodeError::ArrayTooLong { field, count, remaining: self.remaining() });
        }
        Ok(len)
    }

    fn utf8(&mut self, len: usize, field: &'static str) -> Result<String, DecodeError> {
        let bytes = self.take(len, field)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::InvalidUtf8 { field })
    }

    pub(crate) fn string(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let length = self.i16(field)?;
        let Ok(len) = usize::try_from(length) else {
            return Err(DecodeError::UnexpectedNull { field, length: length.into() });
        };
        self.utf8(len, field)
    }

    fn nullable_string(&mut self, field: &'static str) -> Result<Option<String>, DecodeError> {
        let length = self.i16(field)?;
        match usize::try_from(length) {
            Ok(len) => self.utf8(len, field).map(Some),
            Err(_) => Ok(None),
        }
    }

    fn nullable_bytes(&mut self, field: &'static str) -> Result<Option<Vec<u8>>, DecodeError> {
        let length = self.i32(field)?;
        match usize::try_from(length) {
            Ok(len) => self.take(len, field).map(|bytes| Some(bytes.to_vec())),
            Err(_) => Ok(None),
        }
    }
}
