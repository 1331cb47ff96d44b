//! The client's one error type. Every message says what went wrong and, where the caller can
//! do something about it, what to do.

pub use kafka_protocol::error::ResponseError;

/// An error from the client library. `Clone`, so that one failed batch can fail the delivery
/// future of every record in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// TCP connect failed or timed out.
    #[error("broker {addr} unreachable: {reason}; is it running and listening on {addr}?")]
    Unreachable { addr: String, reason: String },

    /// None of the bootstrap servers answered.
    #[error("no bootstrap server reachable ({servers}): {last}; check --bootstrap-server (or SLUICE_BOOTSTRAP) and that a broker is running")]
    NoBrokerReachable { servers: String, last: Box<Error> },

    /// The connection broke while a request was outstanding: it may or may not have been
    /// applied.
    #[error("connection to broker {addr} lost: {reason}; the request may or may not have been applied")]
    Disconnected { addr: String, reason: String },

    /// No response within the request timeout.
    #[error(
        "broker {addr} did not answer {api} within {timeout_ms} ms; is it overloaded, or is the timeout too short?"
    )]
    Timeout { addr: String, api: &'static str, timeout_ms: u64 },

    /// The broker serves no version of an API that this client can speak.
    #[error("broker {addr} does not support {api} in any version this client speaks ({ours}); upgrade the broker or use a client that matches it")]
    UnsupportedVersion { addr: String, api: &'static str, ours: String },

    /// Bytes from the broker that do not decode, or a response that does not match its request.
    #[error("bad {api} response from broker {addr}: {reason}; this is a bug in the broker or in the client")]
    Protocol { addr: String, api: &'static str, reason: String },

    /// The broker answered with a Kafka error code.
    #[error("{context}: {error}{detail} (Kafka error {code}){hint}", detail = detail(message), code = error.code(), hint = hint(*error))]
    Kafka { context: String, error: ResponseError, message: Option<String> },

    /// The topic does not exist (and was not auto-created).
    #[error(
        "unknown topic {topic}: create it first (`sluice topic create {topic}`) or enable auto-creation on the broker"
    )]
    UnknownTopic { topic: String },

    /// A partition that the topic does not have.
    #[error("topic {topic} has no partition {partition} (it has {partitions}); add partitions with `sluice topic alter` or choose another")]
    UnknownPartition { topic: String, partition: i32, partitions: i32 },

    /// A setting that cannot work.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// The producer (or client) was closed before the operation finished.
    #[error("the client was closed before the operation finished")]
    Closed,

    /// A record waited longer than `delivery_timeout_ms` for a successful send.
    #[error("record to {topic}-{partition} not delivered within {timeout_ms} ms (last error: {last}); is the broker up and the partition led?")]
    DeliveryTimeout { topic: String, partition: i32, timeout_ms: u64, last: String },

    /// A commit was answered REBALANCE_IN_PROGRESS: the group is between generations. Not fatal
    /// (Java's RebalanceInProgressException): the consumer rejoins at its next `poll`; commit
    /// again after it, for the partitions it still owns. [`Error::kafka_error`] names the code.
    #[error(
        "{context}: the group is rebalancing; call poll to complete the rebalance, then commit again (Kafka error 27)"
    )]
    RebalanceInProgress { context: String },
}

impl Error {
    /// A Kafka error code in a response as an `Error`, or `None` for 0.
    pub fn from_code(code: i16, context: impl FnOnce() -> String, message: Option<String>) -> Option<Error> {
        ResponseError::try_from_code(code).map(|error| Error::Kafka { context: context(), error, message })
    }

    /// The Kafka error, if this is one.
    pub fn kafka_error(&self) -> Option<ResponseError> {
        match self {
            Error::Kafka { error, .. } => Some(*error),
            Error::RebalanceInProgress { .. } => Some(ResponseError::RebalanceInProgress),
            _ => None,
        }
    }

    /// True when sending again (after a metadata refresh) may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Unreachable { .. } | Error::Disconnected { .. } | Error::Timeout { .. } => true,
            Error::Kafka { error, .. } => error.is_retriable(),
            _ => false,
        }
    }

    /// True when the error means the cached metadata (leader, partitions) is stale.
    pub fn needs_metadata_refresh(&self) -> bool {
        match self {
            Error::Unreachable { .. } | Error::Disconnected { .. } | Error::Timeout { .. } => true,
            Error::Kafka { error, .. } => matches!(
                error,
                ResponseError::NotLeaderOrFollower
                    | ResponseError::LeaderNotAvailable
                    | ResponseError::UnknownTopicOrPartition
                    | ResponseError::FencedLeaderEpoch
                    | ResponseError::UnknownLeaderEpoch
                    | ResponseError::KafkaStorageError
            ),
            _ => false,
        }
    }
}

fn detail(message: &Option<String>) -> String {
    match message {
        Some(m) if !m.is_empty() => format!(" ({m})"),
        _ => String::new(),
    }
}

/// What to do about the Kafka errors a user of the CLI meets most.
fn hint(error: ResponseError) -> &'static str {
    match error {
        ResponseError::TopicAlreadyExists => "; choose another name, or delete the topic first",
        ResponseError::UnknownTopicOrPartition => "; check the name with `sluice topic list`",
        ResponseError::InvalidReplicationFactor => {
            "; the replication factor cannot exceed the number of brokers (1 for a single Sluice node)"
        }
        ResponseError::InvalidPartitions => "; the partition count must be at least 1 (and can only grow)",
        ResponseError::InvalidTopicException => {
            "; topic names are 1-249 characters of [a-zA-Z0-9._-] and cannot be '.' or '..'"
        }
        ResponseError::InvalidConfig => "; check the config name and value",
        ResponseError::MessageTooLarge | ResponseError::RecordListTooLarge => {
            "; lower batch_size or raise the topic's max.message.bytes"
        }
        ResponseError::TopicDeletionDisabled => "; the broker does not allow deleting topics",
        ResponseError::PolicyViolation => "; the broker's policy refused the request",
        _ => "",
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
