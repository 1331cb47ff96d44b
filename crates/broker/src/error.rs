use std::path::Path;

use thiserror::Error;

/// Why the broker could not start or had to stop.
#[derive(Debug, Error)]
pub enum BrokerError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("partition {partition}: {source}")]
    Log { partition: String, source: sluice_log::LogError },
    #[error("cannot listen on {addr}: {source}; is another broker using that port? choose another with --listen")]
    Bind { addr: String, source: std::io::Error },
    #[error("stopped after a storage failure: {0}")]
    Storage(String),
}

impl BrokerError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        BrokerError::Io { path: path.display().to_string(), source }
    }
}
