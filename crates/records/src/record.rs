//! Individual records inside a batch: a bounded decoder and a whole-batch encoder.
//!
//! ```text
//! record: length varint | attributes i8 (unused) | timestampDelta varlong | offsetDelta varint
//!         | keyLength varint (-1 = null) | key | valueLength varint (-1 = null) | value
//!         | headerCount varint | [headerKeyLength varint | headerKey utf8
//!                                | headerValueLength varint (-1 = null) | headerValue]*
//! ```
//! All varints are zigzag (see [`crate::varint`]). With compression, everything after the
//! batch header's `recordsCount` is one compressed blob holding these records.
//!
//! Architecture invariants:
//! - The broker's produce path never comes here; this module serves timestamp look-ups, tests
//!   and clients.
//! - [`records`] trusts no count or length from the wire to reserve memory: capacities are
//!   clamped to what the remaining bytes could hold, and decompression is bounded by the caller.
//! - [`records`] never panics, whatever the bytes; it does not check the CRC (call
//!   [`crate::validate_batch`] or [`crate::validate::crc_matches`] first where that matters).
//! - Duplicate header keys are kept, in order: Kafka allows them (unlike the `kafka-protocol`
//!   crate's map, DEPENDENCIES trap 3).
//! - [`encode_batch`] writes what Kafka's Java producer writes: base offset 0, offset deltas
//!   0..n-1, the first record's timestamp as base timestamp (unless told otherwise), the
//!   largest as max timestamp, CreateTime, and a CRC32C over attributes..end.

use bytes::{BufMut, Bytes, BytesMut};

use crate::compression::{self, Compression};
use crate::error::RecordsError;
use crate::header::{self, BatchHeader, BATCH_HEADER_BYTES, CRC_START, LOG_OVERHEAD_BYTES};
use crate::validate::check_framing;
use crate::varint::{read_varint, read_varlong, write_varint, write_varlong};

/// Kafka's "no timestamp" (`RecordBatch.NO_TIMESTAMP`).
pub const NO_TIMESTAMP: i64 = -1;
/// Kafka's "no producer id / epoch / sequence".
pub const NO_PRODUCER_ID: i64 = -1;
pub const NO_PRODUCER_EPOCH: i16 = -1;
pub const NO_SEQUENCE: i32 = -1;
/// Kafka's "no partition leader epoch".
pub const NO_PARTITION_LEADER_EPOCH: i32 = -1;

/// The smallest encoded record: a one-byte length, then attributes, timestampDelta,
/// offsetDelta, keyLength, valueLength and headerCount of one byte each.
const RECORD_BYTES_MIN: usize = 7;
/// The smallest encoded header: an empty key (one byte) and a null value (one byte).
const HEADER_BYTES_MIN: usize = 2;

/// A record read from a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Batch base offset + offsetDelta.
    pub offset: i64,
    /// Base timestamp + timestampDelta; the batch's max timestamp under LogAppendTime.
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    /// In wire order; keys may repeat. Keys that are not UTF-8 are decoded lossily, as Java does.
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// A record to encode with [`encode_batch`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewRecord {
    /// Absolute timestamp in ms; written as a delta from the batch's base timestamp.
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// Batch-level fields for [`encode_batch`]. `Default` is a plain, non-idempotent,
/// uncompressed batch: producer id, epoch and base sequence -1, partition leader epoch -1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOptions {
    pub compression: Compression,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    /// `None`: the first record's timestamp (as the Java producer does), or -1 with no records.
    pub base_timestamp: Option<i64>,
    pub partition_leader_epoch: i32,
    /// Sets attribute bit 4.
    pub transactional: bool,
    /// Sets attribute bit 5. Brokers refuse such batches from clients; this is for tests.
    pub control: bool,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            compression: Compression::None,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            base_sequence: NO_SEQUENCE,
            base_timestamp: None,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            transactional: false,
            control: false,
        }
    }
}

/// Decodes every record of the batch that starts at `batch[0]`.
///
/// Checks the framing (length, magic) but not the CRC. A compressed batch is decompressed
/// into at most `max_decompressed_bytes`; an uncompressed one is copied once (its records can
/// be no larger than the batch). Keys, values and header values share that one buffer.
///
/// Fails with [`RecordsError::MalformedRecord`] when a record does not parse, when the batch
/// holds fewer or more records than `recordsCount` says, or when bytes remain after the last.
pub fn records(batch: &[u8], max_decompressed_bytes: usize) -> Result<Vec<Record>, RecordsError> {
    let header = check_framing(batch)?;
    let body = &batch[BATCH_HEADER_BYTES..header.total_bytes()];
    let codec = Compression::from_bits(header.compression_bits())
        .ok_or(RecordsError::UnknownCompression(header.compression_bits()))?;
    let data = match codec {
        Compression::None => Bytes::copy_from_slice(body),
        codec => Bytes::from(compression::decompress(codec, body, max_decompressed_bytes)?),
    };
    decode_records(&header, &data)
}

fn decode_records(header: &BatchHeader, data: &Bytes) -> Result<Vec<Record>, RecordsError> {
    let count =
        usize::try_from(header.records_count).map_err(|_| RecordsError::MalformedRecord("negative record count"))?;
    let mut out = Vec::with_capacity(count.min(data.len() / RECORD_BYTES_MIN));
    let mut cursor = Cursor { data, position: 0, end: data.len() };
    for _ in 0..count {
        if cursor.position == cursor.end {
            return Err(RecordsError::MalformedRecord("fewer records than recordsCount"));
        }
        out.push(decode_record(header, &mut cursor)?);
    }
    if cursor.position != cursor.end {
        return Err(RecordsError::MalformedRecord("bytes remain after the last record"));
    }
    Ok(out)
}

fn decode_record(header: &BatchHeader, cursor: &mut Cursor<'_>) -> Result<Record, RecordsError> {
    let length = cursor.varint("bad record length")?;
    let length = usize::try_from(length).map_err(|_| RecordsError::MalformedRecord("negative record length"))?;
    if length > cursor.remaining() {
        return Err(RecordsError::MalformedRecord("record runs past the end of the batch"));
    }
    let end = cursor.position + length;
    let mut record = Cursor { data: cursor.data, position: cursor.position, end };
    let _attributes = record.byte("record attributes missing")?;
    let timestamp_delta = record.varlong("bad timestamp delta")?;
    let offset_delta = record.varint("bad offset delta")?;
    let key = record.nullable_bytes("bad key")?;
    let value = record.nullable_bytes("bad value")?;
    let header_count = record.varint("bad header count")?;
    let header_count =
        usize::try_from(header_count).map_err(|_| RecordsError::MalformedRecord("negative header count"))?;
    let mut headers = Vec::with_capacity(header_count.min(record.remaining() / HEADER_BYTES_MIN));
    for _ in 0..header_count {
        let header_key = record.nullable_bytes("bad header key")?;
        let header_key = header_key.ok_or(RecordsError::MalformedRecord("null header key"))?;
        let header_value = record.nullable_bytes("bad header value")?;
        headers.push((String::from_utf8_lossy(&header_key).into_owned(), header_value));
    }
    if record.position != end {
        return Err(RecordsError::MalformedRecord("record length does not match its fields"));
    }
    cursor.position = end;
    let timestamp = if header.is_log_append_time() {
        header.max_timestamp
    } else {
        header.base_timestamp.wrapping_add(timestamp_delta)
    };
    Ok(Record { offset: header.base_offset.wrapping_add(i64::from(offset_delta)), timestamp, key, value, headers })
}

/// Reads fields from `data[position..end]`; slices share `data`'s buffer.
struct Cursor<'a> {
    data: &'a Bytes,
    position: usize,
    end: usize,
}

impl Cursor<'_> {
    fn remaining(&self) -> usize {
        self.end - self.position
    }
    fn byte(&mut self, what: &'static str) -> Result<u8, RecordsError> {
        if self.position == self.end {
            return Err(RecordsError::MalformedRecord(what));
        }
        self.position += 1;
        Ok(self.data[self.position - 1])
    }
    fn varint(&mut self, what: &'static str) -> Result<i32, RecordsError> {
        let (value, len) =
            read_varint(&self.data[self.position..self.end]).ok_or(RecordsError::MalformedRecord(what))?;
        self.position += len;
        Ok(value)
    }
    fn varlong(&mut self, what: &'static str) -> Result<i64, RecordsError> {
        let (value, len) =
            read_varlong(&self.data[self.position..self.end]).ok_or(RecordsError::MalformedRecord(what))?;
        self.position += len;
        Ok(value)
    }
    /// A varint length (-1 = null) and that many bytes.
    fn nullable_bytes(&mut self, what: &'static str) -> Result<Option<Bytes>, RecordsError> {
        let len = self.varint(what)?;
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| RecordsError::MalformedRecord(what))?;
        if len > self.remaining() {
            return Err(RecordsError::MalformedRecord(what));
        }
        self.position += len;
        Ok(Some(self.data.slice(self.position - len..self.position)))
    }
}

/// Encodes `records` as one v2 batch with base offset 0, offset deltas 0..n-1 and a valid
/// CRC32C (see the module docs for what else it writes).
///
/// Panics if a length does not fit Kafka's i32 fields (a key, value or batch of 2 GiB):
/// that is a caller's bug, not an input error.
pub fn encode_batch(records: &[NewRecord], opts: BatchOptions) -> BytesMut {
    let base_timestamp = opts.base_timestamp.or_else(|| records.first().map(|r| r.timestamp)).unwrap_or(NO_TIMESTAMP);
    let max_timestamp = records.iter().map(|r| r.timestamp).max().unwrap_or(NO_TIMESTAMP);

    let mut body = Vec::new();
    let mut scratch = Vec::new();
    for (offset_delta, record) in records.iter().enumerate() {
        scratch.clear();
        scratch.push(0); // attributes: unused
        write_varlong(&mut scratch, record.timestamp.wrapping_sub(base_timestamp));
        write_varint(&mut scratch, i32_len(offset_delta));
        write_nullable(&mut scratch, record.key.as_deref());
        write_nullable(&mut scratch, record.value.as_deref());
        write_varint(&mut scratch, i32_len(record.headers.len()));
        for (key, value) in &record.headers {
            write_nullable(&mut scratch, Some(key.as_bytes()));
            write_nullable(&mut scratch, value.as_deref());
        }
        write_varint(&mut body, i32_len(scratch.len()));
        body.extend_from_slice(&scratch);
    }
    let payload = match opts.compression {
        Compression::None => body,
        codec => compression::compress(codec, &body),
    };

    let mut attributes = i16::from(opts.compression.bits());
    if opts.transactional {
        attributes |= header::ATTR_TRANSACTIONAL;
    }
    if opts.control {
        attributes |= header::ATTR_CONTROL;
    }
    let total = BATCH_HEADER_BYTES + payload.len();
    let mut out = BytesMut::with_capacity(total);
    out.put_i64(0); // baseOffset: the broker assigns it
    out.put_i32(i32_len(total - LOG_OVERHEAD_BYTES));
    out.put_i32(opts.partition_leader_epoch);
    out.put_i8(2); // magic
    out.put_u32(0); // crc, filled in below
    out.put_i16(attributes);
    out.put_i32(i32_len(records.len()) - 1); // lastOffsetDelta
    out.put_i64(base_timestamp);
    out.put_i64(max_timestamp);
    out.put_i64(opts.producer_id);
    out.put_i16(opts.producer_epoch);
    out.put_i32(opts.base_sequence);
    out.put_i32(i32_len(records.len()));
    debug_assert_eq!(out.len(), BATCH_HEADER_BYTES);
    out.put_slice(&payload);
    let crc = crc32c::crc32c(&out[CRC_START..]);
    out[header::OFFSET_CRC..header::OFFSET_CRC + 4].copy_from_slice(&crc.to_be_bytes());
    out
}

fn i32_len(len: usize) -> i32 {
    i32::try_from(len).expect("length does not fit Kafka's i32 field")
}

fn write_nullable(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => write_varint(out, -1),
        Some(bytes) => {
            write_varint(out, i32_len(bytes.len()));
            out.extend_from_slice(bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::set_log_append_time;

    fn new_record(timestamp: i64, key: Option<&str>, value: Option<&str>) -> NewRecord {
        NewRecord {
            timestamp,
            key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
            value: value.map(|v| Bytes::copy_from_slice(v.as_bytes())),
            headers: Vec::new(),
        }
    }

    #[test]
    fn duplicate_header_keys_are_kept_in_order() {
        let mut record = new_record(10, Some("k"), Some("v"));
        record.headers = vec![
            ("h".into(), Some(Bytes::from_static(b"1"))),
            ("h".into(), None),
            ("".into(), Some(Bytes::new())),
            ("h".into(), Some(Bytes::from_static(b"3"))),
        ];
        let batch = encode_batch(std::slice::from_ref(&record), BatchOptions::default());
        let decoded = records(&batch, 1 << 20).unwrap();
        assert_eq!(decoded[0].headers, record.headers);
    }

    #[test]
    fn empty_key_and_value_differ_from_null() {
        let record = NewRecord { timestamp: 1, key: Some(Bytes::new()), value: None, headers: Vec::new() };
        let decoded = records(&encode_batch(&[record], BatchOptions::default()), 1024).unwrap();
        assert_eq!(decoded[0].key, Some(Bytes::new()));
        assert_eq!(decoded[0].value, None);
    }

    #[test]
    fn log_append_time_gives_every_record_the_max_timestamp() {
        let mut batch =
            encode_batch(&[new_record(5, None, Some("a")), new_record(9, None, Some("b"))], BatchOptions::default());
        set_log_append_time(&mut batch, 1234);
        let decoded = records(&batch, 1024).unwrap();
        assert_eq!(decoded.iter().map(|r| r.timestamp).collect::<Vec<_>>(), vec![1234, 1234]);
        crate::validate_batch(&batch, 1 << 20).unwrap();
    }

    #[test]
    fn offsets_follow_the_base_offset() {
        let mut batch = encode_batch(&[new_record(5, None, None), new_record(5, None, None)], BatchOptions::default());
        header::set_base_offset(&mut batch, 1000);
        let offsets: Vec<i64> = records(&batch, 1024).unwrap().iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![1000, 1001]);
    }

    #[test]
    fn base_timestamp_option_and_negative_deltas() {
        let opts = BatchOptions { base_timestamp: Some(100), ..BatchOptions::default() };
        let batch = encode_batch(&[new_record(150, None, None), new_record(40, None, None)], opts);
        let header = BatchHeader::parse(&batch).unwrap();
        assert_eq!((header.base_timestamp, header.max_timestamp), (100, 150));
        let timestamps: Vec<i64> = records(&batch, 1024).unwrap().iter().map(|r| r.timestamp).collect();
        assert_eq!(timestamps, vec![150, 40]);
    }

    #[test]
    fn no_records_encode_an_empty_batch_that_validation_refuses() {
        let batch = encode_batch(&[], BatchOptions::default());
        let header = BatchHeader::parse(&batch).unwrap();
        assert_eq!((header.records_count, header.last_offset_delta, header.max_timestamp), (0, -1, -1));
        assert_eq!(records(&batch, 0).unwrap(), Vec::new());
        assert!(matches!(crate::validate_batch(&batch, 1 << 20), Err(RecordsError::CountMismatch { .. })));
    }

    /// Rewrites the records region of an uncompressed batch (the CRC is not checked by `records`).
    fn with_body(count: i32, body: &[u8]) -> Vec<u8> {
        let mut batch = encode_batch(&[], BatchOptions::default()).to_vec();
        batch.extend_from_slice(body);
        let length = (batch.len() - LOG_OVERHEAD_BYTES) as i32;
        batch[header::OFFSET_BATCH_LENGTH..header::OFFSET_BATCH_LENGTH + 4].copy_from_slice(&length.to_be_bytes());
        batch[header::OFFSET_RECORDS_COUNT..header::OFFSET_RECORDS_COUNT + 4].copy_from_slice(&count.to_be_bytes());
        batch
    }

    fn malformed(count: i32, body: &[u8]) -> &'static str {
        match records(&with_body(count, body), 1 << 20) {
            Err(RecordsError::MalformedRecord(what)) => what,
            other => panic!("expected a malformed record, got {other:?}"),
        }
    }

    #[test]
    fn malformed_records_are_refused() {
        // A well-formed minimal record: len 6, attrs, ts 0, off 0, key null, value null, 0 headers.
        let minimal = [0x0c, 0, 0, 0, 0x01, 0x01, 0];
        assert_eq!(records(&with_body(1, &minimal), 1024).unwrap().len(), 1);
        assert_eq!(malformed(2, &minimal), "fewer records than recordsCount");
        assert_eq!(malformed(0, &minimal), "bytes remain after the last record");
        assert_eq!(malformed(-1, &minimal), "negative record count");
        assert_eq!(malformed(1, &[0x01]), "negative record length");
        assert_eq!(malformed(1, &[0x0e, 0, 0, 0, 0x01, 0x01, 0]), "record runs past the end of the batch");
        assert_eq!(malformed(1, &[0x0a, 0, 0, 0, 0x01, 0x01, 0]), "bad header count");
        assert_eq!(malformed(1, &[0x0e, 0, 0, 0, 0x01, 0x01, 0, 0]), "record length does not match its fields");
        assert_eq!(malformed(1, &[0x0c, 0, 0, 0, 0x03, 0x01, 0]), "bad key");
        assert_eq!(malformed(1, &[0x0c, 0, 0, 0, 0x01, 0x04, 0]), "bad value");
        assert_eq!(malformed(1, &[0x0c, 0, 0, 0, 0x01, 0x01, 0x01]), "negative header count");
        assert_eq!(malformed(1, &[0x0e, 0, 0, 0, 0x01, 0x01, 0x02, 0x01]), "null header key");
        // A header count of 2^30 with nothing behind it: refused without reserving for it.
        assert_eq!(malformed(1, &[0x14, 0, 0, 0, 0x01, 0x01, 0x80, 0x80, 0x80, 0x80, 0x08]), "bad header key");
        // A record count of i32::MAX over 7 bytes: refused without reserving for it.
        assert_eq!(malformed(i32::MAX, &minimal), "fewer records than recordsCount");
        assert_eq!(
            malformed(1, &[0x0c, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            "bad timestamp delta"
        );
    }

    #[test]
    fn lossy_header_keys() {
        // One header whose key is the single byte 0xff.
        let body = [0x12, 0, 0, 0, 0x01, 0x01, 0x02, 0x02, 0xff, 0x01];
        let decoded = records(&with_body(1, &body), 1024).unwrap();
        assert_eq!(decoded[0].headers, vec![("\u{fffd}".to_string(), None)]);
    }

    #[test]
    fn framing_errors_come_first() {
        let batch = encode_batch(&[new_record(1, None, None)], BatchOptions::default());
        assert!(matches!(records(&batch[..60], 1024), Err(RecordsError::Truncated { .. })));
        assert!(matches!(records(&batch[..batch.len() - 1], 1024), Err(RecordsError::Truncated { .. })));
        let mut bad = batch.to_vec();
        bad[header::OFFSET_ATTRIBUTES + 1] |= 0x05;
        assert_eq!(records(&bad, 1024), Err(RecordsError::UnknownCompression(5)));
    }
}
