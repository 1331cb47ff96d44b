//! Broker settings, with Kafka's names and defaults where Kafka has them, and the named limits.

use std::net::SocketAddr;
use std::path::PathBuf;

/// When a produce with acks=1 or acks=all is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// After the batch is fsynced (fdatasync) to the partition's segment file. Appends that
    /// arrive while one fsync runs share the next one (group commit). The high watermark, and
    /// so what consumers see, advances only over fsynced data. The default.
    Fsync,
    /// After the batch is written to the page cache, as Kafka does by default
    /// (`flush.messages` unset): survives a broker crash, not a machine crash.
    PageCache,
}

impl std::str::FromStr for Durability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fsync" => Ok(Durability::Fsync),
            "page-cache" | "page_cache" => Ok(Durability::PageCache),
            other => Err(format!("unknown durability '{other}': use fsync or page-cache")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// `node.id`.
    pub node_id: i32,
    pub listen: SocketAddr,
    /// Host and port put in Metadata; the bound address when None.
    pub advertise: Option<(String, u16)>,
    pub data_dir: PathBuf,
    pub durability: Durability,
    /// `auto.create.topics.enable`.
    pub auto_create_topics: bool,
    /// `num.partitions`: partitions of auto-created topics and of CreateTopics with -1.
    pub num_partitions: i32,
    /// `socket.request.max.bytes`: the largest request frame read.
    pub request_bytes_max: usize,
    /// Requests read ahead on one connection before the oldest is answered.
    pub requests_in_flight_max: usize,
    /// `log.retention.check.interval.ms`.
    pub retention_check_interval_ms: u64,
    /// Broker-wide defaults for topic configs (`log.retention.ms`, `log.segment.bytes`, ...).
    pub log_defaults: sluice_log::LogConfig,
    /// The group coordinator's settings (`group.*`, `offsets.*`).
    pub groups: crate::groups::GroupsConfig,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            node_id: 1,
            listen: "127.0.0.1:9092".parse().expect("literal address"),
            advertise: None,
            data_dir: PathBuf::from("sluice-data"),
            durability: Durability::Fsync,
            auto_create_topics: true,
            num_partitions: 1,
            request_bytes_max: 100 * 1024 * 1024,
            requests_in_flight_max: 64,
            retention_check_interval_ms: 5 * 60 * 1000,
            log_defaults: sluice_log::LogConfig::default(),
            groups: crate::groups::GroupsConfig::default(),
        }
    }
}

impl BrokerConfig {
    /// Checks the relations between limits; the broker refuses to start on a violation.
    pub fn validate(&self) -> Result<(), String> {
        if self.num_partitions < 1 || self.num_partitions > crate::broker::TOPIC_PARTITIONS_MAX {
            return Err(format!(
                "num.partitions must be between 1 and {}, not {}",
                crate::broker::TOPIC_PARTITIONS_MAX,
                self.num_partitions
            ));
        }
        if self.request_bytes_max < 1024 {
            return Err("socket.request.max.bytes must be at least 1024".into());
        }
        if self.requests_in_flight_max == 0 {
            return Err("requests in flight must be at least 1".into());
        }
        if self.log_defaults.max_message_bytes as u64 > self.log_defaults.segment_bytes {
            return Err("message.max.bytes must not exceed log.segment.bytes".into());
        }
        let g = &self.groups.coordinator;
        if g.group_min_session_timeout_ms <= 0 || g.group_min_session_timeout_ms > g.group_max_session_timeout_ms {
            return Err(format!(
                "group.min.session.timeout.ms ({}) must be positive and at most group.max.session.timeout.ms ({})",
                g.group_min_session_timeout_ms, g.group_max_session_timeout_ms
            ));
        }
        if g.group_initial_rebalance_delay_ms < 0 {
            return Err("group.initial.rebalance.delay.ms must not be negative".into());
        }
        if self.groups.offsets_retention_ms <= 0 || self.groups.offsets_retention_check_interval_ms == 0 {
            return Err("offsets.retention.minutes and offsets.retention.check.interval.ms must be positive".into());
        }
        if self.retention_check_interval_ms == 0 {
            return Err("log.retention.check.interval.ms must be positive".into());
        }
        Ok(())
    }
}
