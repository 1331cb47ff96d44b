//! Validation of produced batches, without decompressing or decoding records.

use crate::compression::Compression;
use crate::error::RecordsError;
use crate::header::{BatchHeader, BATCH_HEADER_BYTES, CRC_START, LOG_OVERHEAD_BYTES};

/// The smallest legal `batchLength`: the header after the length field.
const BATCH_LENGTH_MIN: i32 = (BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES) as i32;

/// A batch that passed [`validate_batch`]: where it sits in the input and its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidatedBatch {
    /// Byte position of the batch in the buffer that was validated.
    pub position: usize,
    pub header: BatchHeader,
}

impl ValidatedBatch {
    pub fn len(&self) -> usize {
        self.header.total_bytes()
    }
    pub fn is_empty(&self) -> bool {
        false
    }
    pub fn range(&self) -> std::ops::Range<usize> {
        self.position..self.position + self.len()
    }
}

/// Checks the batch that starts at `bytes[0]` the way Kafka's broker checks a produced batch
/// (SEMANTICS B4, B5, B9, B11, P20): the length fits, magic is 2, CRC32C matches, the record
/// count agrees with lastOffsetDelta, the codec is known, it is not a control batch, an
/// idempotent batch has a sequence, and it is no larger than `max_batch_bytes`.
///
/// Returns the header; the batch occupies `header.total_bytes()` bytes from the start.
pub fn validate_batch(bytes: &[u8], max_batch_bytes: usize) -> Result<BatchHeader, RecordsError> {
    let header = check_framing(bytes)?;
    let total = header.total_bytes();
    if total > max_batch_bytes {
        return Err(RecordsError::TooLarge { size: total, max: max_batch_bytes });
    }
    let actual = crc32c::crc32c(&bytes[CRC_START..total]);
    if actual != header.crc {
        return Err(RecordsError::CrcMismatch { expected: header.crc, actual });
    }
    if header.records_count <= 0 || header.last_offset_delta.checked_add(1) != Some(header.records_count) {
        return Err(RecordsError::CountMismatch {
            count: header.records_count,
            last_offset_delta: header.last_offset_delta,
        });
    }
    if Compression::from_bits(header.compression_bits()).is_none() {
        return Err(RecordsError::UnknownCompression(header.compression_bits()));
    }
    if header.is_control() {
        return Err(RecordsError::ControlBatch);
    }
    if header.producer_id >= 0 && header.base_sequence < 0 {
        return Err(RecordsError::InvalidSequence {
            producer_id: header.producer_id,
            base_sequence: header.base_sequence,
        });
    }
    Ok(header)
}

/// Length and magic only: enough to step to the next batch. Used by recovery and reads too.
pub fn check_framing(bytes: &[u8]) -> Result<BatchHeader, RecordsError> {
    let header = BatchHeader::parse(bytes)
        .ok_or(RecordsError::Truncated { needed: BATCH_HEADER_BYTES, available: bytes.len() })?;
    if header.batch_length < BATCH_LENGTH_MIN {
        return Err(RecordsError::InvalidLength(header.batch_length));
    }
    if header.magic != 2 {
        return Err(RecordsError::UnsupportedMagic(header.magic));
    }
    let total = header.total_bytes();
    if total > bytes.len() {
        return Err(RecordsError::Truncated { needed: total, available: bytes.len() });
    }
    Ok(header)
}

/// Checks the CRC of a batch whose framing is known good (recovery uses this).
pub fn crc_matches(batch: &[u8], header: &BatchHeader) -> bool {
    crc32c::crc32c(&batch[CRC_START..header.total_bytes()]) == header.crc
}

/// Validates every batch of a produced record set. Fails on the first bad batch: Kafka rejects
/// the whole partition's record set when one batch is bad.
pub fn batches(bytes: &[u8], max_batch_bytes: usize) -> Result<Vec<ValidatedBatch>, RecordsError> {
    if bytes.is_empty() {
        return Err(RecordsError::Empty);
    }
    let mut out = Vec::with_capacity(1);
    let mut position = 0;
    while position < bytes.len() {
        let header = validate_batch(&bytes[position..], max_batch_bytes)?;
        out.push(ValidatedBatch { position, header });
        position += header.total_bytes();
    }
    Ok(out)
}

/// Walks stored batches by their framing (length and magic), without CRC checks. Stops at the
/// first batch that does not frame; `remainder()` tells where that was.
pub struct BatchIter<'a> {
    bytes: &'a [u8],
    position: usize,
    error: Option<RecordsError>,
}

impl<'a> BatchIter<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        BatchIter { bytes, position: 0, error: None }
    }
    /// Byte position after the last whole batch returned.
    pub fn position(&self) -> usize {
        self.position
    }
    /// Why iteration stopped before the end, if it did.
    pub fn error(&self) -> Option<&RecordsError> {
        self.error.as_ref()
    }
}

impl Iterator for BatchIter<'_> {
    type Item = ValidatedBatch;
    fn next(&mut self) -> Option<ValidatedBatch> {
        if self.position >= self.bytes.len() || self.error.is_some() {
            return None;
        }
        match check_framing(&self.bytes[self.position..]) {
            Ok(header) => {
                let batch = ValidatedBatch { position: self.position, header };
                self.position += header.total_bytes();
                Some(batch)
            }
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }
}
