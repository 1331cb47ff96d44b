//! Kafka v2 record batches, as bytes.
//!
//! A batch arrives from a producer, is validated here (length, magic, CRC32C, counts, codec,
//! producer fields), gets its base offset and partition leader epoch written into its header,
//! and is stored and served exactly as received. The on-disk `.log` is a concatenation of these
//! batches, so disk bytes are wire bytes.
//!
//! Architecture invariants:
//! - Nothing here does I/O or reads a clock.
//! - Validation never decompresses and never decodes individual records; only the
//!   `record` module (used by timestamp look-ups, tests and clients) walks records, and it
//!   bounds every decompression.
//! - Rewriting the base offset or the leader epoch never touches the CRC-covered region.
//! - No function here panics on bytes from the wire: malformed input is a typed
//!   [`RecordsError`]. Panics are reserved for callers' bugs (documented per function), and
//!   the decoders are fuzzed (`fuzz/`).
//!
//! Code map: `header` (the 61-byte layout and in-place rewrites), `validate` (produce-time
//! checks and framing), `compression` (codecs, bounded decompression), `varint` (zigzag),
//! `record` (record decoding and batch encoding).

pub mod compression;
pub mod error;
pub mod header;
pub mod record;
pub mod validate;
pub mod varint;

pub use compression::{compress, decompress, Compression};
pub use error::RecordsError;
pub use header::{BatchHeader, BATCH_HEADER_BYTES, LOG_OVERHEAD_BYTES};
pub use record::{encode_batch, records, BatchOptions, NewRecord, Record};
pub use validate::{batches, validate_batch, BatchIter, ValidatedBatch};
