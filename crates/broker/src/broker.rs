//! The broker's state: topics and their partitions, the persisted metadata image, producer
//! ids, and the fatal-error signal. API modules call into this; it knows nothing of sockets.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, RwLock};
use sluice_log::{FsStorage, LogError, PartitionLog, Storage};
use tokio::sync::watch;
use uuid::Uuid;

use crate::config::BrokerConfig;
use crate::error::BrokerError;
use crate::error_code;
use crate::groups::store::{OFFSETS_LOG_DIR, OFFSETS_TOPIC};
use crate::groups::Groups;
use crate::metadata::{self, MetadataImage, TopicRecord, PRODUCER_ID_BLOCK};
use crate::partition::Partition;
use crate::topic_config;

/// Longest topic name Kafka allows.
pub const TOPIC_NAME_BYTES_MAX: usize = 249;
/// Most partitions one topic may have on this node: each is a directory with open files, so a
/// request for two billion of them is refused instead of exhausting the disk and descriptors.
pub const TOPIC_PARTITIONS_MAX: i32 = 10_000;

fn check_partition_count(count: i32) -> Result<(), TopicError> {
    if count <= 0 || count > TOPIC_PARTITIONS_MAX {
        return Err(TopicError::new(
            error_code::INVALID_PARTITIONS,
            format!("number of partitions must be between 1 and {TOPIC_PARTITIONS_MAX}, not {count}"),
        ));
    }
    Ok(())
}

pub struct Topic {
    pub name: String,
    pub id: Uuid,
    pub partitions: RwLock<Vec<Arc<Partition>>>,
    pub configs: RwLock<BTreeMap<String, String>>,
    /// `__consumer_offsets`: listed and readable like any topic, never written by clients,
    /// never deleted, grown or reconfigured.
    pub internal: bool,
}

impl Topic {
    pub fn partition(&self, index: i32) -> Option<Arc<Partition>> {
        if index < 0 {
            return None;
        }
        self.partitions.read().get(index as usize).cloned()
    }
    pub fn partition_count(&self) -> i32 {
        self.partitions.read().len() as i32
    }
}

/// A topic-level failure with its Kafka error code and a message for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicError {
    pub code: i16,
    pub message: String,
}

impl TopicError {
    pub fn new(code: i16, message: impl Into<String>) -> Self {
        TopicError { code, message: message.into() }
    }
}

/// The live topics, by name and by id (Fetch v13+ names topics by id on every request).
#[derive(Default)]
struct Registry {
    by_name: HashMap<String, Arc<Topic>>,
    by_id: HashMap<Uuid, Arc<Topic>>,
}

impl Registry {
    fn insert(&mut self, topic: Arc<Topic>) {
        self.by_id.insert(topic.id, topic.clone());
        self.by_name.insert(topic.name.clone(), topic);
    }
    fn remove(&mut self, name: &str) -> Option<Arc<Topic>> {
        let topic = self.by_name.remove(name)?;
        self.by_id.remove(&topic.id);
        Some(topic)
    }
}

pub struct Broker {
    pub config: BrokerConfig,
    /// The group coordinator (its own lock; never held with a partition's).
    pub groups: Arc<Groups>,
    storage: Arc<dyn Storage>,
    /// The persisted image; its lock also serialises topic changes.
    image: Mutex<MetadataImage>,
    topics: RwLock<Registry>,
    /// `__consumer_offsets`, kept out of `topics` so that retention, deletion and partition
    /// changes never reach it.
    offsets_topic: Arc<Topic>,
    producer_ids: Mutex<(i64, i64)>,
    advertised: RwLock<(String, u16)>,
    fatal: watch::Sender<Option<String>>,
    /// Held for the broker's lifetime: one broker per data directory.
    _dir_lock: Option<std::fs::File>,
}

/// Changes clients may not make to `__consumer_offsets`: INVALID_REQUEST, with a message.
fn refuse_internal(name: &str, what: &str) -> Result<(), TopicError> {
    if name == OFFSETS_TOPIC {
        return Err(TopicError::new(
            error_code::INVALID_REQUEST,
            format!("'{OFFSETS_TOPIC}' is the group coordinator's internal topic and cannot be {what}"),
        ));
    }
    Ok(())
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Kafka's rule: 1-249 characters of `[a-zA-Z0-9._-]`, not "." or "..".
pub fn validate_topic_name(name: &str) -> Result<(), TopicError> {
    let bad = |m: String| Err(TopicError::new(error_code::INVALID_TOPIC_EXCEPTION, m));
    if name.is_empty() || name == "." || name == ".." {
        return bad(format!("topic name '{name}' is illegal"));
    }
    if name.len() > TOPIC_NAME_BYTES_MAX {
        return bad(format!("topic name is {} characters; the limit is {TOPIC_NAME_BYTES_MAX}", name.len()));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-') {
        return bad(format!("topic name '{name}' may only contain ASCII letters, digits, '.', '_' and '-'"));
    }
    Ok(())
}

impl Broker {
    /// Opens the data directory on the real file system: takes its lock, loads (or creates) the
    /// metadata image, removes partition directories of deleted topics, and opens (recovering)
    /// every partition log.
    pub fn open(config: BrokerConfig) -> Result<Arc<Broker>, BrokerError> {
        config.validate().map_err(BrokerError::Config)?;
        std::fs::create_dir_all(&config.data_dir).map_err(|e| BrokerError::io(&config.data_dir, e))?;
        let lock_path = config.data_dir.join(".lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| BrokerError::io(&lock_path, e))?;
        if lock.try_lock().is_err() {
            return Err(BrokerError::Config(format!(
                "data directory {} is in use by another sluice process; stop it or choose another --data-dir",
                config.data_dir.display()
            )));
        }
        Self::open_with(config, Arc::new(FsStorage), Some(lock))
    }

    pub fn open_with(
        config: BrokerConfig,
        storage: Arc<dyn Storage>,
        dir_lock: Option<std::fs::File>,
    ) -> Result<Arc<Broker>, BrokerError> {
        let data_dir = config.data_dir.clone();
        storage.create_dir_all(&data_dir).map_err(|e| BrokerError::io(&data_dir, e))?;
        let image = match metadata::load(storage.as_ref(), &data_dir).map_err(BrokerError::Config)? {
            Some(mut image) if image.offsets_topic_id.is_nil() => {
                image.offsets_topic_id = Uuid::new_v4();
                metadata::store(storage.as_ref(), &data_dir, &image).map_err(|e| BrokerError::io(&data_dir, e))?;
                image
            }
            Some(image) => image,
            None => {
                let image = MetadataImage::new(config.node_id);
                metadata::store(storage.as_ref(), &data_dir, &image).map_err(|e| BrokerError::io(&data_dir, e))?;
                image
            }
        };
        let (fatal, _) = watch::channel(None);
        let advertised = match &config.advertise {
            Some(a) => a.clone(),
            None => (config.listen.ip().to_string(), config.listen.port()),
        };
        let fatal_hook = Self::fatal_hook_for(&fatal);
        let groups = Groups::open(storage.clone(), &data_dir, config.groups.clone(), fatal_hook)?;
        let offsets_topic = Arc::new(Topic {
            name: OFFSETS_TOPIC.to_string(),
            id: image.offsets_topic_id,
            partitions: RwLock::new(vec![groups.log_partition()]),
            configs: RwLock::new(BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())])),
            internal: true,
        });
        let broker = Arc::new(Broker {
            groups: Arc::new(groups),
            offsets_topic,
            producer_ids: Mutex::new((image.producer_id_reserved_until, image.producer_id_reserved_until)),
            image: Mutex::new(image.clone()),
            topics: RwLock::new(Registry::default()),
            advertised: RwLock::new(advertised),
            fatal,
            storage,
            config,
            _dir_lock: dir_lock,
        });
        broker.remove_orphan_partition_dirs(&image);
        for (name, record) in &image.topics {
            let topic = broker.open_topic(name, record)?;
            broker.topics.write().insert(topic);
        }
        Ok(broker)
    }

    fn remove_orphan_partition_dirs(&self, image: &MetadataImage) {
        let Ok(entries) = self.storage.list(&self.config.data_dir) else { return };
        for entry in entries {
            if entry == OFFSETS_LOG_DIR {
                continue;
            }
            let Some((topic, partition)) = entry.rsplit_once('-') else { continue };
            let Ok(index) = partition.parse::<i32>() else { continue };
            let known = image.topics.get(topic).is_some_and(|t| index < t.partitions);
            if !known {
                let path = self.config.data_dir.join(&entry);
                tracing::info!(dir = %path.display(), "removing the directory of a deleted partition");
                if let Err(e) = self.storage.remove_dir_all(&path) {
                    tracing::warn!(dir = %path.display(), error = %e, "could not remove a deleted partition's directory");
                }
            }
        }
    }

    fn partition_dir(&self, topic: &str, index: i32) -> PathBuf {
        self.config.data_dir.join(format!("{topic}-{index}"))
    }

    fn fatal_hook(self: &Arc<Self>) -> Arc<dyn Fn(String) + Send + Sync> {
        Self::fatal_hook_for(&self.fatal)
    }

    fn fatal_hook_for(fatal: &watch::Sender<Option<String>>) -> Arc<dyn Fn(String) + Send + Sync> {
        let tx = fatal.clone();
        Arc::new(move |reason: String| {
            tracing::error!(%reason, "storage failure: the broker stops so that it never serves half-written data");
            tx.send_if_modified(|v| {
                if v.is_none() {
                    *v = Some(reason.clone());
                    true
                } else {
                    false
                }
            });
        })
    }

    fn open_partition(
        self: &Arc<Self>,
        topic: &str,
        index: i32,
        record: &TopicRecord,
    ) -> Result<Arc<Partition>, BrokerError> {
        let dir = self.partition_dir(topic, index);
        let config = topic_config::log_config(&self.config.log_defaults, &record.configs);
        let log = PartitionLog::open(self.storage.clone(), dir.clone(), config, now_ms())
            .map_err(|e| BrokerError::Log { partition: format!("{topic}-{index}"), source: e })?;
        Ok(Arc::new(Partition::new(
            topic.to_string(),
            index,
            record.leader_epoch,
            self.config.durability,
            log,
            self.fatal_hook(),
        )))
    }

    fn open_topic(self: &Arc<Self>, name: &str, record: &TopicRecord) -> Result<Arc<Topic>, BrokerError> {
        let mut partitions = Vec::with_capacity(record.partitions as usize);
        for index in 0..record.partitions {
            partitions.push(self.open_partition(name, index, record)?);
        }
        Ok(Arc::new(Topic {
            name: name.to_string(),
            id: record.id,
            partitions: RwLock::new(partitions),
            configs: RwLock::new(record.configs.clone()),
            internal: false,
        }))
    }

    /// Resolves when a storage failure means the broker must stop; yields the reason.
    pub fn fatal_receiver(&self) -> watch::Receiver<Option<String>> {
        self.fatal.subscribe()
    }

    pub fn cluster_id(&self) -> String {
        self.image.lock().cluster_id.clone()
    }
    pub fn node_id(&self) -> i32 {
        self.config.node_id
    }
    pub fn advertised(&self) -> (String, u16) {
        self.advertised.read().clone()
    }
    /// Called once the listener is bound, when no address was set to advertise.
    pub fn set_bound_address(&self, addr: std::net::SocketAddr) {
        if self.config.advertise.is_none() {
            *self.advertised.write() = (addr.ip().to_string(), addr.port());
        }
    }

    /// A topic by name, the internal `__consumer_offsets` included.
    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        if name == OFFSETS_TOPIC {
            return Some(self.offsets_topic.clone());
        }
        self.topics.read().by_name.get(name).cloned()
    }
    pub fn topic_by_id(&self, id: Uuid) -> Option<Arc<Topic>> {
        if id == self.offsets_topic.id {
            return Some(self.offsets_topic.clone());
        }
        self.topics.read().by_id.get(&id).cloned()
    }
    /// The internal topic `__consumer_offsets` (Metadata lists it with `is_internal`).
    pub fn offsets_topic(&self) -> Arc<Topic> {
        self.offsets_topic.clone()
    }
    /// All user topics, sorted by name (not `__consumer_offsets`).
    pub fn topics(&self) -> Vec<Arc<Topic>> {
        let mut v: Vec<_> = self.topics.read().by_name.values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Creates a topic (CreateTopics, or auto-creation with `partitions = None`).
    pub fn create_topic(
        self: &Arc<Self>,
        name: &str,
        partitions: Option<i32>,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<TopicRecord, TopicError> {
        validate_topic_name(name)?;
        if name == OFFSETS_TOPIC {
            return Err(TopicError::new(
                error_code::TOPIC_ALREADY_EXISTS,
                format!("'{OFFSETS_TOPIC}' is the group coordinator's internal topic"),
            ));
        }
        let partitions = partitions.unwrap_or(self.config.num_partitions);
        check_partition_count(partitions)?;
        for (k, v) in &configs {
            topic_config::validate(k, v).map_err(|m| TopicError::new(error_code::INVALID_CONFIG, m))?;
        }
        let mut image = self.image.lock();
        if image.topics.contains_key(name) {
            return Err(TopicError::new(error_code::TOPIC_ALREADY_EXISTS, format!("topic '{name}' already exists")));
        }
        let record = TopicRecord { id: Uuid::new_v4(), partitions, leader_epoch: 0, configs };
        if validate_only {
            return Ok(record);
        }
        let mut next = image.clone();
        next.topics.insert(name.to_string(), record.clone());
        self.persist(&next)?;
        *image = next;
        let topic = self.open_topic(name, &record).map_err(|e| self.storage_failure(e))?;
        self.topics.write().insert(topic);
        tracing::info!(topic = name, partitions, "created topic");
        Ok(record)
    }

    /// Returns the topic, creating it when auto-creation is on and `allow` says so.
    pub fn topic_or_create(self: &Arc<Self>, name: &str, allow: bool) -> Result<Arc<Topic>, TopicError> {
        if let Some(t) = self.topic(name) {
            return Ok(t);
        }
        if !(allow && self.config.auto_create_topics) {
            return Err(TopicError::new(error_code::UNKNOWN_TOPIC_OR_PARTITION, format!("unknown topic '{name}'")));
        }
        match self.create_topic(name, None, BTreeMap::new(), false) {
            // Created now, or by a concurrent request in between: either way it is there.
            Ok(_) => {}
            Err(e) if e.code == error_code::TOPIC_ALREADY_EXISTS => {}
            Err(e) => return Err(e),
        }
        self.topic(name).ok_or_else(|| TopicError::new(error_code::UNKNOWN_TOPIC_OR_PARTITION, "topic vanished"))
    }

    pub fn delete_topic(self: &Arc<Self>, name: &str) -> Result<Uuid, TopicError> {
        refuse_internal(name, "deleted")?;
        let mut image = self.image.lock();
        let Some(record) = image.topics.get(name).cloned() else {
            return Err(TopicError::new(error_code::UNKNOWN_TOPIC_OR_PARTITION, format!("unknown topic '{name}'")));
        };
        let mut next = image.clone();
        next.topics.remove(name);
        self.persist(&next)?;
        *image = next;
        if let Some(topic) = self.topics.write().remove(name) {
            for p in topic.partitions.write().drain(..) {
                p.wake_all();
                let dir = self.partition_dir(name, p.index);
                if let Err(e) = self.storage.remove_dir_all(&dir) {
                    tracing::warn!(dir = %dir.display(), error = %e, "could not remove a deleted partition; it is removed at the next start");
                }
            }
        }
        let (_, delivery) = self.groups.step(|core, _now| ((), core.delete_topic_offsets(name)));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let groups = self.groups.clone();
            runtime.spawn(async move { groups.deliver(delivery).await });
        }
        tracing::info!(topic = name, "deleted topic");
        Ok(record.id)
    }

    pub fn add_partitions(self: &Arc<Self>, name: &str, count: i32, validate_only: bool) -> Result<(), TopicError> {
        refuse_internal(name, "given more partitions")?;
        let mut image = self.image.lock();
        let Some(record) = image.topics.get(name).cloned() else {
            return Err(TopicError::new(error_code::UNKNOWN_TOPIC_OR_PARTITION, format!("unknown topic '{name}'")));
        };
        check_partition_count(count)?;
        if count <= record.partitions {
            return Err(TopicError::new(
                error_code::INVALID_PARTITIONS,
                format!(
                    "topic '{name}' has {} partitions; the new count must be larger, not {count}",
                    record.partitions
                ),
            ));
        }
        if validate_only {
            return Ok(());
        }
        let mut next = image.clone();
        next.topics.get_mut(name).expect("present").partitions = count;
        self.persist(&next)?;
        *image = next;
        let topic = self.topic(name).expect("registered with the image");
        let mut partitions = topic.partitions.write();
        for index in record.partitions..count {
            let p = self.open_partition(name, index, &record).map_err(|e| self.storage_failure(e))?;
            partitions.push(p);
        }
        tracing::info!(topic = name, count, "added partitions");
        Ok(())
    }

    /// Replaces a topic's config overrides (validated already by the caller).
    pub fn set_topic_configs(
        self: &Arc<Self>,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<(), TopicError> {
        refuse_internal(name, "reconfigured")?;
        for (k, v) in &configs {
            topic_config::validate(k, v).map_err(|m| TopicError::new(error_code::INVALID_CONFIG, m))?;
        }
        let mut image = self.image.lock();
        if !image.topics.contains_key(name) {
            return Err(TopicError::new(error_code::UNKNOWN_TOPIC_OR_PARTITION, format!("unknown topic '{name}'")));
        }
        let mut next = image.clone();
        next.topics.get_mut(name).expect("present").configs = configs.clone();
        self.persist(&next)?;
        *image = next;
        if let Some(topic) = self.topic(name) {
            let log_config = topic_config::log_config(&self.config.log_defaults, &configs);
            *topic.configs.write() = configs;
            for p in topic.partitions.read().iter() {
                p.with_log(|log| log.set_config(log_config.clone()));
            }
        }
        Ok(())
    }

    /// A new producer id (InitProducerId). Reserves a block in the metadata first, so an id is
    /// never reused after a crash.
    pub fn next_producer_id(&self) -> Result<i64, TopicError> {
        let mut ids = self.producer_ids.lock();
        if ids.0 >= ids.1 {
            let mut image = self.image.lock();
            let mut next = image.clone();
            next.producer_id_reserved_until = image.producer_id_reserved_until + PRODUCER_ID_BLOCK;
            self.persist(&next)?;
            *ids = (image.producer_id_reserved_until, next.producer_id_reserved_until);
            *image = next;
        }
        let id = ids.0;
        ids.0 += 1;
        Ok(id)
    }

    fn persist(&self, image: &MetadataImage) -> Result<(), TopicError> {
        metadata::store(self.storage.as_ref(), &self.config.data_dir, image).map_err(|e| {
            let reason = format!("cannot write metadata in {}: {e}", self.config.data_dir.display());
            self.fatal.send_replace(Some(reason.clone()));
            TopicError::new(error_code::KAFKA_STORAGE_ERROR, reason)
        })
    }

    fn storage_failure(&self, e: BrokerError) -> TopicError {
        let reason = e.to_string();
        self.fatal.send_replace(Some(reason.clone()));
        TopicError::new(error_code::KAFKA_STORAGE_ERROR, reason)
    }

    /// Every partition of every topic.
    pub fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.topics().iter().flat_map(|t| t.partitions.read().clone()).collect()
    }

    /// Retention on every partition (L8). Returns segments deleted.
    pub fn enforce_retention(&self) -> usize {
        let now = now_ms();
        let mut deleted = 0;
        for p in self.all_partitions() {
            match p.with_log(|log| log.enforce_retention(now)) {
                Ok(n) => deleted += n,
                Err(e) => {
                    tracing::error!(topic = %p.topic, partition = p.index, error = %e, "retention failed");
                    if e.is_fatal() {
                        self.fatal.send_replace(Some(e.to_string()));
                    }
                }
            }
        }
        deleted
    }

    /// Clean shutdown: every log synced and marked clean, so the next start skips recovery.
    pub fn close(&self) -> Result<(), LogError> {
        let mut first_error = None;
        for p in self.all_partitions() {
            if let Err(e) = p.with_log(|log| log.close()) {
                tracing::error!(topic = %p.topic, partition = p.index, error = %e, "closing the log failed");
                first_error.get_or_insert(e);
            }
        }
        if let Err(e) = self.groups.close() {
            tracing::error!(error = %e, "closing the offsets log failed");
            first_error.get_or_insert(e);
        }
        first_error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafkas_rules() {
        assert!(validate_topic_name("orders.v1_a-b").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("a b").is_err());
        assert!(validate_topic_name(&"x".repeat(250)).is_err());
        assert!(validate_topic_name(&"x".repeat(249)).is_ok());
    }
}
