//! Topic configs: the keys Sluice honours, their validation, and how overrides on top of the
//! broker defaults become a `LogConfig`.
//!
//! Invariant: a key is accepted only if Sluice acts on it (or, like `min.insync.replicas`, its
//! only meaningful value on one node is what Sluice does). Anything else is INVALID_CONFIG, so
//! a client never believes a setting took effect when it did not.

use std::collections::BTreeMap;

use sluice_log::{LogConfig, TimestampType};

/// Kafka's config types, as DescribeConfigs v3+ reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Long = 5,
    List = 7,
}

pub struct ConfigKey {
    pub name: &'static str,
    pub kind: ConfigType,
    pub doc: &'static str,
}

pub const KEYS: &[ConfigKey] = &[
    ConfigKey { name: "cleanup.policy", kind: ConfigType::List, doc: "Only 'delete' is supported." },
    ConfigKey {
        name: "compression.type",
        kind: ConfigType::String,
        doc: "Only 'producer': batches are stored as sent.",
    },
    ConfigKey { name: "max.message.bytes", kind: ConfigType::Int, doc: "Largest record batch accepted." },
    ConfigKey { name: "message.timestamp.type", kind: ConfigType::String, doc: "CreateTime or LogAppendTime." },
    ConfigKey { name: "min.insync.replicas", kind: ConfigType::Int, doc: "Must be 1 on a single node." },
    ConfigKey { name: "retention.bytes", kind: ConfigType::Long, doc: "Size bound of the log; -1 is none." },
    ConfigKey { name: "retention.ms", kind: ConfigType::Long, doc: "Age bound of the log; -1 is none." },
    ConfigKey { name: "segment.bytes", kind: ConfigType::Int, doc: "Segment file size before a roll." },
    ConfigKey { name: "segment.ms", kind: ConfigType::Long, doc: "Segment age before a roll." },
    ConfigKey { name: "index.interval.bytes", kind: ConfigType::Int, doc: "Bytes between offset index entries." },
    ConfigKey { name: "segment.index.bytes", kind: ConfigType::Int, doc: "Largest offset index file." },
];

pub fn key(name: &str) -> Option<&'static ConfigKey> {
    KEYS.iter().find(|k| k.name == name)
}

fn parse_long(name: &str, value: &str, min: i64) -> Result<i64, String> {
    let v: i64 = value.trim().parse().map_err(|_| format!("{name} must be a number, not '{value}'"))?;
    if v < min {
        return Err(format!("{name} must be at least {min}, not {v}"));
    }
    Ok(v)
}

fn parse_int(name: &str, value: &str, min: i64) -> Result<i64, String> {
    let v = parse_long(name, value, min)?;
    if v > i32::MAX as i64 {
        return Err(format!("{name} must fit in 32 bits, not {v}"));
    }
    Ok(v)
}

/// Checks one key and value; the message names what is wrong and what is allowed.
pub fn validate(name: &str, value: &str) -> Result<(), String> {
    match name {
        "cleanup.policy" => {
            if value.split(',').map(str::trim).all(|p| p == "delete") {
                Ok(())
            } else {
                Err(format!("cleanup.policy '{value}' is not supported: Sluice does not compact yet; use 'delete'"))
            }
        }
        "compression.type" => match value {
            "producer" => Ok(()),
            other => Err(format!("compression.type '{other}' is not supported: Sluice stores batches as the producer sent them; use 'producer'")),
        },
        "max.message.bytes" => parse_int(name, value, 0).map(drop),
        "message.timestamp.type" => match value {
            "CreateTime" | "LogAppendTime" => Ok(()),
            other => Err(format!("message.timestamp.type must be CreateTime or LogAppendTime, not '{other}'")),
        },
        "min.insync.replicas" => match value.trim() {
            "1" => Ok(()),
            other => Err(format!("min.insync.replicas {other} cannot be met: this cluster has one broker")),
        },
        "retention.bytes" | "retention.ms" => parse_long(name, value, -1).map(drop),
        "segment.bytes" => parse_int(name, value, 14).map(drop),
        "segment.ms" => parse_long(name, value, 1).map(drop),
        "index.interval.bytes" => parse_int(name, value, 0).map(drop),
        "segment.index.bytes" => parse_int(name, value, 8).map(drop),
        other => Err(format!("unknown or unsupported topic config '{other}'")),
    }
}

/// Every key with its effective value: the override if set, else the broker default.
pub fn effective(
    defaults: &LogConfig,
    overrides: &BTreeMap<String, String>,
) -> Vec<(&'static ConfigKey, String, bool)> {
    KEYS.iter()
        .map(|k| match overrides.get(k.name) {
            Some(v) => (k, v.clone(), true),
            None => (k, default_value(defaults, k.name), false),
        })
        .collect()
}

fn default_value(d: &LogConfig, name: &str) -> String {
    match name {
        "cleanup.policy" => "delete".into(),
        "compression.type" => "producer".into(),
        "max.message.bytes" => d.max_message_bytes.to_string(),
        "message.timestamp.type" => match d.timestamp_type {
            TimestampType::CreateTime => "CreateTime".into(),
            TimestampType::LogAppendTime => "LogAppendTime".into(),
        },
        "min.insync.replicas" => "1".into(),
        "retention.bytes" => d.retention_bytes.to_string(),
        "retention.ms" => d.retention_ms.to_string(),
        "segment.bytes" => d.segment_bytes.to_string(),
        "segment.ms" => d.segment_ms.to_string(),
        "index.interval.bytes" => d.index_interval_bytes.to_string(),
        "segment.index.bytes" => d.segment_index_bytes.to_string(),
        _ => String::new(),
    }
}

/// The log settings for a topic. Overrides were validated when set, so parse failures fall
/// back to the default (they cannot happen for persisted, validated values).
pub fn log_config(defaults: &LogConfig, overrides: &BTreeMap<String, String>) -> LogConfig {
    let mut c = defaults.clone();
    let num = |k: &str| overrides.get(k).and_then(|v| v.trim().parse::<i64>().ok());
    if let Some(v) = num("max.message.bytes") {
        c.max_message_bytes = v as usize;
    }
    if let Some(v) = num("retention.bytes") {
        c.retention_bytes = v;
    }
    if let Some(v) = num("retention.ms") {
        c.retention_ms = v;
    }
    if let Some(v) = num("segment.bytes") {
        c.segment_bytes = v as u64;
    }
    if let Some(v) = num("segment.ms") {
        c.segment_ms = v;
    }
    if let Some(v) = num("index.interval.bytes") {
        c.index_interval_bytes = v as usize;
    }
    if let Some(v) = num("segment.index.bytes") {
        c.segment_index_bytes = v as usize;
    }
    if let Some(v) = overrides.get("message.timestamp.type") {
        c.timestamp_type = if v == "LogAppendTime" { TimestampType::LogAppendTime } else { TimestampType::CreateTime };
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_reach_the_log_config() {
        let mut o = BTreeMap::new();
        o.insert("segment.bytes".to_string(), "1048576".to_string());
        o.insert("retention.ms".to_string(), "-1".to_string());
        o.insert("message.timestamp.type".to_string(), "LogAppendTime".to_string());
        let c = log_config(&LogConfig::default(), &o);
        assert_eq!(c.segment_bytes, 1048576);
        assert_eq!(c.retention_ms, -1);
        assert_eq!(c.timestamp_type, TimestampType::LogAppendTime);
    }

    #[test]
    fn unsupported_values_are_refused_with_a_reason() {
        assert!(validate("cleanup.policy", "compact").unwrap_err().contains("compact"));
        assert!(validate("retention.ms", "-2").is_err());
        assert!(validate("retention.ms", "abc").is_err());
        assert!(validate("no.such.key", "1").is_err());
        assert!(validate("min.insync.replicas", "2").is_err());
        assert!(validate("cleanup.policy", "delete").is_ok());
        assert!(validate("segment.bytes", "1073741824").is_ok());
    }
}
