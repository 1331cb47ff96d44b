use thiserror::Error;

/// Why a frame could not be turned into a request. Where the header was readable, the
/// correlation id is kept so the broker can answer instead of only closing.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// The frame length prefix is negative or larger than `socket.request.max.bytes`.
    #[error("frame length {length} outside 0..={max}")]
    FrameLength { length: i64, max: usize },
    /// Fewer bytes than a request header needs.
    #[error("request of {0} bytes is too short for a header")]
    TooShort(usize),
    /// An API key Sluice does not serve (or that does not exist).
    #[error("api key {api_key} is not served")]
    UnknownApi { api_key: i16, api_version: i16, correlation_id: i32 },
    /// A served API at a version outside the served range.
    #[error("api key {api_key} version {api_version} is not served")]
    UnsupportedVersion { api_key: i16, api_version: i16, correlation_id: i32 },
    /// The header or body does not decode.
    #[error("api key {api_key} v{api_version}: malformed request: {reason}")]
    Malformed { api_key: i16, api_version: i16, correlation_id: i32, reason: String },
}
