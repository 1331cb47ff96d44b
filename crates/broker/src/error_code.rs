//! Kafka error codes (fixed forever by Kafka) and the one place typed errors map onto them.

use sluice_log::LogError;
use sluice_records::RecordsError;

pub const NONE: i16 = 0;
pub const UNKNOWN_SERVER_ERROR: i16 = -1;
pub const OFFSET_OUT_OF_RANGE: i16 = 1;
pub const CORRUPT_MESSAGE: i16 = 2;
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
pub const MESSAGE_TOO_LARGE: i16 = 10;
pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
pub const RECORD_LIST_TOO_LARGE: i16 = 18;
pub const INVALID_REQUIRED_ACKS: i16 = 21;
pub const UNSUPPORTED_VERSION: i16 = 35;
pub const TOPIC_ALREADY_EXISTS: i16 = 36;
pub const INVALID_PARTITIONS: i16 = 37;
pub const INVALID_REPLICATION_FACTOR: i16 = 38;
pub const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
pub const INVALID_CONFIG: i16 = 40;
pub const INVALID_REQUEST: i16 = 42;
pub const UNSUPPORTED_FOR_MESSAGE_FORMAT: i16 = 43;
pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
pub const INVALID_PRODUCER_EPOCH: i16 = 47;
pub const KAFKA_STORAGE_ERROR: i16 = 56;
pub const LOG_DIR_NOT_FOUND: i16 = 57;
pub const FENCED_LEADER_EPOCH: i16 = 74;
pub const UNKNOWN_LEADER_EPOCH: i16 = 75;
pub const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;
pub const ELECTION_NOT_NEEDED: i16 = 84;
pub const NO_REASSIGNMENT_IN_PROGRESS: i16 = 85;
pub const INVALID_RECORD: i16 = 87;
pub const UNKNOWN_TOPIC_ID: i16 = 100;

/// Batch validation failures (SEMANTICS B4, B5, B9, B11, P20).
pub fn from_records(e: &RecordsError) -> i16 {
    match e {
        RecordsError::CrcMismatch { .. } | RecordsError::Truncated { .. } | RecordsError::InvalidLength(_) => {
            CORRUPT_MESSAGE
        }
        RecordsError::UnsupportedMagic(0 | 1) => UNSUPPORTED_FOR_MESSAGE_FORMAT,
        RecordsError::UnsupportedMagic(_) => CORRUPT_MESSAGE,
        RecordsError::UnknownCompression(_) => UNSUPPORTED_COMPRESSION_TYPE,
        RecordsError::TooLarge { .. } => MESSAGE_TOO_LARGE,
        RecordsError::CountMismatch { .. }
        | RecordsError::ControlBatch
        | RecordsError::InvalidSequence { .. }
        | RecordsError::Empty
        | RecordsError::Decompression(_)
        | RecordsError::MalformedRecord(_) => INVALID_RECORD,
    }
}

pub fn from_log(e: &LogError) -> i16 {
    match e {
        LogError::OffsetOutOfRange { .. } => OFFSET_OUT_OF_RANGE,
        LogError::OutOfOrderSequence { .. } => OUT_OF_ORDER_SEQUENCE_NUMBER,
        LogError::InvalidProducerEpoch { .. } => INVALID_PRODUCER_EPOCH,
        LogError::Records(r) => from_records(r),
        LogError::RecordListTooLarge { .. } => RECORD_LIST_TOO_LARGE,
        LogError::Io { .. } | LogError::Failed(_) => KAFKA_STORAGE_ERROR,
    }
}

// The group coordinator's codes live with it; re-exported so handlers name one module.
pub use sluice_coordinator::error_code::{COORDINATOR_NOT_AVAILABLE, GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP};

#[cfg(test)]
mod tests {
    use super::*;

    /// SEMANTICS B4, B5, B9, B11: each validation failure gets Kafka's code.
    #[test]
    fn batch_errors_map_to_kafka_codes() {
        assert_eq!(from_records(&RecordsError::CrcMismatch { expected: 1, actual: 2 }), 2);
        assert_eq!(from_records(&RecordsError::CountMismatch { count: 2, last_offset_delta: 0 }), 87);
        assert_eq!(from_records(&RecordsError::UnknownCompression(5)), 76);
        assert_eq!(from_records(&RecordsError::TooLarge { size: 2, max: 1 }), 10);
        assert_eq!(from_records(&RecordsError::ControlBatch), 87);
        assert_eq!(from_log(&LogError::OutOfOrderSequence { producer_id: 1, expected: 1, got: 3 }), 45);
        assert_eq!(from_log(&LogError::InvalidProducerEpoch { producer_id: 1, current: 2, got: 1 }), 47);
    }
}
