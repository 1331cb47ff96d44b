use thiserror::Error;

#[derive(Debug, Error)]
pub enum LogError {
    /// Fetch or read offset below the log start or past the log end (OFFSET_OUT_OF_RANGE).
    #[error("offset {offset} out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange { offset: i64, log_start_offset: i64, log_end_offset: i64 },
    /// Sequence gap or unknown non-duplicate sequence (OUT_OF_ORDER_SEQUENCE_NUMBER).
    #[error("out of order sequence for producer {producer_id}: expected {expected}, got {got}")]
    OutOfOrderSequence { producer_id: i64, expected: i32, got: i32 },
    /// Epoch older than the one the log knows (INVALID_PRODUCER_EPOCH).
    #[error("producer {producer_id} epoch {got} is older than {current}")]
    InvalidProducerEpoch { producer_id: i64, current: i16, got: i16 },
    /// A batch failed validation (mapped by the broker per variant).
    #[error(transparent)]
    Records(#[from] sluice_records::RecordsError),
    /// The record set does not fit a segment (RECORD_LIST_TOO_LARGE).
    #[error("record set of {size} bytes is larger than segment.bytes {segment_bytes}")]
    RecordListTooLarge { size: usize, segment_bytes: u64 },
    /// An I/O error: the log is now failed and refuses further writes (KAFKA_STORAGE_ERROR).
    #[error("I/O error on {path}: {source}")]
    Io { path: String, source: std::io::Error },
    /// A previous I/O error failed this log.
    #[error("log failed after an earlier I/O error: {0}")]
    Failed(String),
}

impl LogError {
    /// True when the broker must not keep serving this log.
    pub fn is_fatal(&self) -> bool {
        matches!(self, LogError::Io { .. } | LogError::Failed(_))
    }
}
