//! Typed errors for batch validation; the broker maps each to one Kafka error code.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RecordsError {
    /// The bytes end before the batch does, or a length field points outside the buffer.
    #[error("truncated record batch: need {needed} bytes, have {available}")]
    Truncated { needed: usize, available: usize },
    /// `batchLength` is negative or too small to hold a v2 header.
    #[error("invalid batch length {0}")]
    InvalidLength(i32),
    /// Only v2 (magic 2) batches are accepted, as Kafka 4.x does.
    #[error("unsupported record batch magic {0}")]
    UnsupportedMagic(i8),
    /// CRC32C over attributes..end does not match the header (Kafka: CORRUPT_MESSAGE).
    #[error("CRC mismatch: header says {expected:#010x}, bytes give {actual:#010x}")]
    CrcMismatch { expected: u32, actual: u32 },
    /// recordsCount <= 0 or lastOffsetDelta + 1 != recordsCount (Kafka: INVALID_RECORD).
    #[error("record count {count} does not match last offset delta {last_offset_delta}")]
    CountMismatch { count: i32, last_offset_delta: i32 },
    /// Compression bits name no known codec (Kafka: UNSUPPORTED_COMPRESSION_TYPE).
    #[error("unknown compression codec {0}")]
    UnknownCompression(u8),
    /// A producer may not send control batches (Kafka: INVALID_RECORD).
    #[error("control batches may not be produced by clients")]
    ControlBatch,
    /// producerId >= 0 with a negative base sequence (Kafka: INVALID_RECORD, SEMANTICS P20).
    #[error("producer id {producer_id} with invalid base sequence {base_sequence}")]
    InvalidSequence { producer_id: i64, base_sequence: i32 },
    /// The batch is larger than the topic's `max.message.bytes` (Kafka: MESSAGE_TOO_LARGE).
    #[error("batch of {size} bytes exceeds max.message.bytes {max}")]
    TooLarge { size: usize, max: usize },
    /// A produce request carried no batches at all (Kafka: INVALID_RECORD).
    #[error("empty record set")]
    Empty,
    /// Decompression failed or would exceed the caller's bound.
    #[error("decompression failed: {0}")]
    Decompression(String),
    /// A record inside a batch is malformed.
    #[error("malformed record: {0}")]
    MalformedRecord(&'static str),
}
