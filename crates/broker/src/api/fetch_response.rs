//! The Fetch response (v4–17) encoded by hand, so that record bytes are not copied into it:
//! each partition's records are a [`Part::File`] between the encoded fields.
//!
//! Field order and encodings follow Kafka's `FetchResponse.json`; flexible versions (12+) use
//! compact arrays, strings and bytes and end every struct with an empty tagged-field section.
//! What Sluice never sends is written as its default: no aborted transactions (an empty array),
//! preferred read replica -1, no diverging epoch, current leader or snapshot id (tags), no
//! node endpoints. A test checks the bytes against `kafka-protocol`'s encoder at every version.

use bytes::{BufMut, BytesMut};
use sluice_log::FileSlice;
use uuid::Uuid;

use crate::response::Part;

/// One partition's answer.
#[derive(Debug, Clone)]
pub struct PartitionAnswer {
    pub index: i32,
    pub error_code: i16,
    pub high_watermark: i64,
    /// No transactions yet: the high watermark, or -1 with an error.
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    pub records: FileSlice,
}

#[derive(Debug, Clone)]
pub struct TopicAnswer {
    pub name: String,
    pub id: Uuid,
    pub partitions: Vec<PartitionAnswer>,
}

/// A whole Fetch answer (fetch sessions are declined: session id 0, no top-level error).
#[derive(Debug, Clone, Default)]
pub struct FetchAnswer {
    pub topics: Vec<TopicAnswer>,
}

impl FetchAnswer {
    /// Bytes of records it carries.
    pub fn record_bytes(&self) -> u64 {
        self.topics.iter().flat_map(|t| &t.partitions).map(|p| p.records.len()).sum()
    }
}

/// Encoded bytes so far, and the parts already cut off.
struct Writer {
    flexible: bool,
    buf: BytesMut,
    parts: Vec<Part>,
}

impl Writer {
    fn array_len(&mut self, n: usize) {
        if self.flexible {
            uvarint(&mut self.buf, n as u64 + 1);
        } else {
            self.buf.put_i32(n as i32);
        }
    }
    fn string(&mut self, s: &str) {
        if self.flexible {
            uvarint(&mut self.buf, s.len() as u64 + 1);
        } else {
            self.buf.put_i16(s.len() as i16);
        }
        self.buf.put_slice(s.as_bytes());
    }
    fn no_tags(&mut self) {
        if self.flexible {
            self.buf.put_u8(0);
        }
    }
    fn records(&mut self, slice: &FileSlice) {
        if self.flexible {
            uvarint(&mut self.buf, slice.len() + 1);
        } else {
            self.buf.put_i32(slice.len() as i32);
        }
        if !slice.is_empty() {
            let head = self.buf.split().freeze();
            self.parts.push(Part::Bytes(head));
            self.parts.push(Part::File(slice.clone()));
        }
    }
}

fn uvarint(buf: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// The response frame (length, header, body) for `version` (4..=17) in parts.
pub fn encode(answer: &FetchAnswer, version: i16, correlation_id: i32) -> Vec<Part> {
    let flexible = version >= 12;
    let mut w = Writer { flexible, buf: BytesMut::with_capacity(256), parts: Vec::new() };
    w.buf.put_i32(0); // the frame length, set below
    w.buf.put_i32(correlation_id);
    w.no_tags(); // response header v1 from Fetch v12
    w.buf.put_i32(0); // throttle_time_ms
    if version >= 7 {
        w.buf.put_i16(0); // error_code
        w.buf.put_i32(0); // session_id: sessions declined
    }
    w.array_len(answer.topics.len());
    for t in &answer.topics {
        if version >= 13 {
            w.buf.put_slice(t.id.as_bytes());
        } else {
            w.string(&t.name);
        }
        w.array_len(t.partitions.len());
        for p in &t.partitions {
            w.buf.put_i32(p.index);
            w.buf.put_i16(p.error_code);
            w.buf.put_i64(p.high_watermark);
            w.buf.put_i64(p.last_stable_offset);
            if version >= 5 {
                w.buf.put_i64(p.log_start_offset);
            }
            w.array_len(0); // aborted_transactions
            if version >= 11 {
                w.buf.put_i32(-1); // preferred_read_replica
            }
            w.records(&p.records);
            w.no_tags();
        }
        w.no_tags();
    }
    w.no_tags();
    let mut parts = w.parts;
    parts.push(Part::Bytes(w.buf.freeze()));
    let total: usize = parts.iter().map(Part::len).sum();
    let length = (total - 4) as i32;
    // The length goes into the first part, which begins with its placeholder.
    if let Some(Part::Bytes(first)) = parts.first_mut() {
        let mut patched = BytesMut::from(&first[..]);
        patched[..4].copy_from_slice(&length.to_be_bytes());
        *first = patched.freeze();
    }
    parts
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::{ApiKey, FetchResponse, ResponseKind, TopicName};
    use kafka_protocol::protocol::StrBytes;
    use sluice_log::{MemStorage, Storage};

    use super::*;
    use crate::response::flatten;

    fn file_with(bytes: &[u8]) -> Arc<dyn sluice_log::StorageFile> {
        let storage = MemStorage::default();
        storage.create_dir_all(Path::new("/d")).unwrap();
        let f = storage.open(Path::new("/d/seg.log"), true).unwrap();
        f.append(bytes).unwrap();
        f
    }

    fn sample() -> FetchAnswer {
        let data: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
        let file = file_with(&data);
        let part = |index, error_code: i16, pos, len| PartitionAnswer {
            index,
            error_code,
            high_watermark: if error_code == 0 { 1000 + i64::from(index) } else { -1 },
            last_stable_offset: if error_code == 0 { 1000 + i64::from(index) } else { -1 },
            log_start_offset: if error_code == 0 { 7 } else { -1 },
            records: if len == 0 { FileSlice::empty() } else { FileSlice::new(file.clone(), pos, len) },
        };
        FetchAnswer {
            topics: vec![
                TopicAnswer {
                    name: "orders".into(),
                    id: Uuid::from_u128(0x1234_5678_9abc_def0_1122_3344_5566_7788),
                    partitions: vec![part(0, 0, 10, 200), part(1, 0, 0, 0), part(2, 3, 0, 0)],
                },
                TopicAnswer { name: "t2".into(), id: Uuid::from_u128(42), partitions: vec![part(5, 0, 2000, 1000)] },
                TopicAnswer { name: "empty".into(), id: Uuid::nil(), partitions: vec![] },
            ],
        }
    }

    /// The same answer as `kafka-protocol`'s typed response (records read in).
    fn typed(answer: &FetchAnswer, version: i16) -> FetchResponse {
        let topics = answer
            .topics
            .iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        PartitionData::default()
                            .with_partition_index(p.index)
                            .with_error_code(p.error_code)
                            .with_high_watermark(p.high_watermark)
                            .with_last_stable_offset(p.last_stable_offset)
                            .with_log_start_offset(p.log_start_offset)
                            .with_records(Some(p.records.read().unwrap()))
                    })
                    .collect();
                let topic = if version >= 13 {
                    FetchableTopicResponse::default().with_topic_id(t.id)
                } else {
                    FetchableTopicResponse::default().with_topic(TopicName(StrBytes::from_string(t.name.clone())))
                };
                topic.with_partitions(partitions)
            })
            .collect();
        FetchResponse::default().with_session_id(0).with_responses(topics)
    }

    #[test]
    fn bytes_equal_kafka_protocols_encoding_at_every_served_version() {
        let answer = sample();
        for version in 4..=17 {
            let mut expected = BytesMut::new();
            sluice_protocol::encode_response(
                &mut expected,
                ApiKey::Fetch,
                version,
                77,
                &ResponseKind::Fetch(typed(&answer, version)),
            )
            .unwrap();
            let parts = encode(&answer, version, 77);
            assert_eq!(flatten(&parts).unwrap(), expected.to_vec(), "Fetch v{version}");
            // Records travel as file ranges, never copied into the encoded bytes.
            let files: Vec<u64> =
                parts.iter().filter_map(|p| if let Part::File(f) = p { Some(f.len()) } else { None }).collect();
            assert_eq!(files, vec![200, 1000], "v{version}");
        }
    }

    #[test]
    fn an_answer_without_records_is_one_part() {
        let answer = FetchAnswer { topics: vec![] };
        let parts = encode(&answer, 12, 1);
        assert_eq!(parts.len(), 1);
        let Part::Bytes(b) = &parts[0] else { panic!("bytes expected") };
        assert_eq!(i32::from_be_bytes(b[..4].try_into().unwrap()) as usize, b.len() - 4);
    }
}
