//! The fixed 61-byte v2 batch header. Field order is load-bearing: it is Kafka's wire layout.
//!
//! ```text
//! offset  size  field
//!  0      8     baseOffset            (rewritten by the broker; outside the CRC)
//!  8      4     batchLength           (bytes after this field)
//! 12      4     partitionLeaderEpoch  (rewritten by the broker; outside the CRC)
//! 16      1     magic (= 2)
//! 17      4     crc (CRC32C of bytes 21..end)
//! 21      2     attributes
//! 23      4     lastOffsetDelta
//! 27      8     baseTimestamp
//! 35      8     maxTimestamp
//! 43      8     producerId
//! 51      2     producerEpoch
//! 53      4     baseSequence
//! 57      4     recordsCount
//! 61      ...   records (one compressed blob when compressed)
//! ```

/// Bytes before `batchLength` ends: baseOffset + batchLength. A batch occupies
/// `LOG_OVERHEAD_BYTES + batchLength` bytes.
pub const LOG_OVERHEAD_BYTES: usize = 12;
/// The whole v2 header, up to and including recordsCount.
pub const BATCH_HEADER_BYTES: usize = 61;
/// Where the CRC-covered region starts (attributes).
pub const CRC_START: usize = 21;

pub const OFFSET_BASE_OFFSET: usize = 0;
pub const OFFSET_BATCH_LENGTH: usize = 8;
pub const OFFSET_LEADER_EPOCH: usize = 12;
pub const OFFSET_MAGIC: usize = 16;
pub const OFFSET_CRC: usize = 17;
pub const OFFSET_ATTRIBUTES: usize = 21;
pub const OFFSET_LAST_OFFSET_DELTA: usize = 23;
pub const OFFSET_BASE_TIMESTAMP: usize = 27;
pub const OFFSET_MAX_TIMESTAMP: usize = 35;
pub const OFFSET_PRODUCER_ID: usize = 43;
pub const OFFSET_PRODUCER_EPOCH: usize = 51;
pub const OFFSET_BASE_SEQUENCE: usize = 53;
pub const OFFSET_RECORDS_COUNT: usize = 57;

pub const ATTR_COMPRESSION_MASK: i16 = 0x07;
pub const ATTR_TIMESTAMP_TYPE: i16 = 0x08;
pub const ATTR_TRANSACTIONAL: i16 = 0x10;
pub const ATTR_CONTROL: i16 = 0x20;

/// A parsed batch header. Cheap to copy; holds no bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes(b[at..at + 2].try_into().expect("2 bytes"))
}

impl BatchHeader {
    /// Parses the first [`BATCH_HEADER_BYTES`] of `bytes`. Returns `None` when fewer are given.
    /// Does not check the magic, the CRC or any relation between fields: see `validate_batch`.
    pub fn parse(bytes: &[u8]) -> Option<BatchHeader> {
        if bytes.len() < BATCH_HEADER_BYTES {
            return None;
        }
        Some(BatchHeader {
            base_offset: be_i64(bytes, OFFSET_BASE_OFFSET),
            batch_length: be_i32(bytes, OFFSET_BATCH_LENGTH),
            partition_leader_epoch: be_i32(bytes, OFFSET_LEADER_EPOCH),
            magic: bytes[OFFSET_MAGIC] as i8,
            crc: u32::from_be_bytes(bytes[OFFSET_CRC..OFFSET_CRC + 4].try_into().expect("4")),
            attributes: be_i16(bytes, OFFSET_ATTRIBUTES),
            last_offset_delta: be_i32(bytes, OFFSET_LAST_OFFSET_DELTA),
            base_timestamp: be_i64(bytes, OFFSET_BASE_TIMESTAMP),
            max_timestamp: be_i64(bytes, OFFSET_MAX_TIMESTAMP),
            producer_id: be_i64(bytes, OFFSET_PRODUCER_ID),
            producer_epoch: be_i16(bytes, OFFSET_PRODUCER_EPOCH),
            base_sequence: be_i32(bytes, OFFSET_BASE_SEQUENCE),
            records_count: be_i32(bytes, OFFSET_RECORDS_COUNT),
        })
    }

    /// Total bytes the batch occupies on the wire and on disk.
    pub fn total_bytes(&self) -> usize {
        LOG_OVERHEAD_BYTES + self.batch_length.max(0) as usize
    }
    /// baseOffset + lastOffsetDelta. Wraps rather than overflows: both come from the wire
    /// until the broker assigns the base offset, and a hostile header must not panic.
    pub fn last_offset(&self) -> i64 {
        self.base_offset.wrapping_add(self.last_offset_delta as i64)
    }
    /// Offset after this batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().wrapping_add(1)
    }
    pub fn compression_bits(&self) -> u8 {
        (self.attributes & ATTR_COMPRESSION_MASK) as u8
    }
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & ATTR_TIMESTAMP_TYPE != 0
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }
    /// Last sequence of the batch, wrapping at i32::MAX as Kafka does (SEMANTICS P17).
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return -1;
        }
        let last = self.base_sequence as i64 + self.last_offset_delta as i64;
        if last > i32::MAX as i64 {
            (last - i32::MAX as i64 - 1) as i32
        } else {
            last as i32
        }
    }
}

/// Writes `base_offset` into a batch header in place. Outside the CRC region (SEMANTICS B6).
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[OFFSET_BASE_OFFSET..OFFSET_BASE_OFFSET + 8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Writes the partition leader epoch in place. Outside the CRC region (SEMANTICS B6).
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[OFFSET_LEADER_EPOCH..OFFSET_LEADER_EPOCH + 4].copy_from_slice(&epoch.to_be_bytes());
}

/// Sets LogAppendTime: the timestamp-type attribute bit and maxTimestamp, then recomputes the
/// CRC, since both are inside the covered region (SEMANTICS B7).
///
/// `batch` starts at a batch whose framing was checked; it may extend past that batch (the
/// CRC covers the batch's own bytes only, up to `LOG_OVERHEAD_BYTES + batchLength`).
/// Panics if the slice is shorter than the batch: that is the caller's bug.
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) {
    assert!(batch.len() >= BATCH_HEADER_BYTES, "set_log_append_time: {} bytes is no batch", batch.len());
    let end = LOG_OVERHEAD_BYTES + be_i32(batch, OFFSET_BATCH_LENGTH).max(0) as usize;
    assert!(end >= BATCH_HEADER_BYTES && end <= batch.len(), "set_log_append_time: batch length {end} does not frame");
    let attrs = be_i16(batch, OFFSET_ATTRIBUTES) | ATTR_TIMESTAMP_TYPE;
    batch[OFFSET_ATTRIBUTES..OFFSET_ATTRIBUTES + 2].copy_from_slice(&attrs.to_be_bytes());
    batch[OFFSET_MAX_TIMESTAMP..OFFSET_MAX_TIMESTAMP + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crc32c::crc32c(&batch[CRC_START..end]);
    batch[OFFSET_CRC..OFFSET_CRC + 4].copy_from_slice(&crc.to_be_bytes());
}
