//! What the client knows about the cluster: brokers, topics, partition leaders, and one
//! connection per broker.
//!
//! Bootstrap tries each `host:port` in turn until one answers Metadata; after that, brokers
//! are reached at the addresses Metadata advertises. Topic metadata is cached; a caller that
//! sees NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION or a broken connection calls
//! [`Cluster::invalidate`] and the next look-up refreshes it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{metadata_request, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::connection::{Connection, ConnectionConfig};
use crate::error::{Error, Result};

/// Settings shared by every client.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `host:port[,host:port...]`.
    pub bootstrap_servers: String,
    pub connection: ConnectionConfig,
    /// Whether Metadata may auto-create the topics it names (producers: yes, admin: no).
    pub allow_auto_topic_creation: bool,
    /// How often a look-up waits for a partition without a leader before giving up.
    pub metadata_retry_backoff_ms: u64,
    pub metadata_max_retries: u32,
}

impl ClientConfig {
    pub fn new(bootstrap_servers: impl Into<String>) -> ClientConfig {
        ClientConfig {
            bootstrap_servers: bootstrap_servers.into(),
            connection: ConnectionConfig::default(),
            allow_auto_topic_creation: true,
            metadata_retry_backoff_ms: 100,
            metadata_max_retries: 50,
        }
    }
}

/// One partition as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetadata {
    pub partition: i32,
    /// -1 when there is no leader.
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub error: Option<ResponseError>,
}

/// One topic as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    pub name: String,
    pub topic_id: String,
    pub is_internal: bool,
    /// Ordered by partition id.
    pub partitions: Vec<PartitionMetadata>,
}

impl TopicMetadata {
    pub fn num_partitions(&self) -> i32 {
        self.partitions.len() as i32
    }

    /// Partitions with a leader, ascending.
    pub fn available_partitions(&self) -> Vec<i32> {
        self.partitions.iter().filter(|p| p.leader >= 0).map(|p| p.partition).collect()
    }

    pub fn leader(&self, partition: i32) -> Option<i32> {
        self.partitions.iter().find(|p| p.partition == partition).map(|p| p.leader).filter(|l| *l >= 0)
    }
}

#[derive(Default)]
struct State {
    /// Node id → `host:port`.
    brokers: BTreeMap<i32, String>,
    controller: Option<i32>,
    cluster_id: Option<String>,
    topics: HashMap<String, Arc<TopicMetadata>>,
    /// By address.
    connections: HashMap<String, Connection>,
}

/// The client's view of the cluster. Shared by producer and admin through an `Arc`.
pub struct Cluster {
    config: ClientConfig,
    bootstrap: Vec<String>,
    state: Mutex<State>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("bootstrap", &self.bootstrap).finish()
    }
}

impl Cluster {
    /// Connects to the first bootstrap server that answers and reads the broker list.
    pub async fn connect(config: ClientConfig) -> Result<Arc<Cluster>> {
        let bootstrap: Vec<String> =
            config.bootstrap_servers.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        if bootstrap.is_empty() {
            return Err(Error::Config("no bootstrap server given; pass HOST:PORT[,HOST:PORT...]".into()));
        }
        for server in &bootstrap {
            if !server.contains(':') {
                return Err(Error::Config(format!("bootstrap server {server:?} is not HOST:PORT")));
            }
        }
        let cluster = Arc::new(Cluster { config, bootstrap, state: Mutex::new(State::default()) });
        cluster.fetch_metadata(Some(&[])).await?;
        Ok(cluster)
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cluster id from the last Metadata, if the broker sent one.
    pub fn cluster_id(&self) -> Option<String> {
        self.lock().cluster_id.clone()
    }

    /// Node id → `host:port` of every known broker.
    pub fn brokers(&self) -> BTreeMap<i32, String> {
        self.lock().brokers.clone()
    }

    /// An open connection to `addr`, reusing a live one.
    pub async fn connection_to(&self, addr: &str) -> Result<Connection> {
        if let Some(c) = self.lock().connections.get(addr) {
            if !c.is_closed() {
                return Ok(c.clone());
            }
        }
        let conn = Connection::connect(addr, self.config.connection.clone()).await?;
        let mut state = self.lock();
        // Another task may have connected meanwhile: keep one connection per broker, so the
        // requests of one producer to one broker stay in one ordered pipe.
        match state.connections.get(addr) {
            Some(existing) if !existing.is_closed() => Ok(existing.clone()),
            _ => {
                state.connections.insert(addr.to_string(), conn.clone());
                Ok(conn)
            }
        }
    }

    /// An open connection to broker `node_id`.
    pub async fn connection(&self, node_id: i32) -> Result<Connection> {
        let addr = self.lock().brokers.get(&node_id).cloned();
        match addr {
            Some(addr) => self.connection_to(&addr).await,
            None => {
                self.fetch_metadata(Some(&[])).await?;
                let addr = self.lock().brokers.get(&node_id).cloned().ok_or_else(|| Error::Kafka {
                    context: format!("broker {node_id}"),
                    error: ResponseError::BrokerNotAvailable,
                    message: Some("not in the cluster's metadata".into()),
                })?;
                self.connection_to(&addr).await
            }
        }
    }

    /// A connection to any broker: a live one if there is one, else known brokers, else the
    /// bootstrap servers in order.
    pub async fn any_connection(&self) -> Result<Connection> {
        let (live, mut candidates) = {
            let state = self.lock();
            let live = state.connections.values().find(|c| !c.is_closed()).cloned();
            (live, state.brokers.values().cloned().collect::<Vec<_>>())
        };
        if let Some(c) = live {
            return Ok(c);
        }
        for b in &self.bootstrap {
            if !candidates.contains(b) {
                candidates.push(b.clone());
            }
        }
        let mut last = None;
        for addr in &candidates {
            match self.connection_to(addr).await {
                Ok(c) => return Ok(c),
                Err(e) => last = Some(e),
            }
        }
        let last = last.unwrap_or_else(|| Error::Config("no broker address known".into()));
        if candidates.len() == 1 {
            return Err(last);
        }
        Err(Error::NoBrokerReachable { servers: candidates.join(","), last: Box::new(last) })
    }

    /// A connection to the controller (where topic changes go).
    pub async fn controller_connection(&self) -> Result<Connection> {
        let controller = self.lock().controller;
        match controller {
            Some(id) if id >= 0 => self.connection(id).await,
            _ => self.any_connection().await,
        }
    }

    /// Sends Metadata for `topics` (`None`: all topics; `Some(&[])`: brokers only) and updates
    /// the cache. Returns the topics the response described without error; topics it
    /// reported with an error are removed from the cache and returned in the error list.
    pub async fn fetch_metadata(
        &self,
        topics: Option<&[&str]>,
    ) -> Result<(Vec<Arc<TopicMetadata>>, Vec<(String, ResponseError)>)> {
        let conn = self.any_connection().await?;
        let request = MetadataRequest::default()
            .with_topics(topics.map(|ts| {
                ts.iter()
                    .map(|t| {
                        metadata_request::MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string(t.to_string()))))
                    })
                    .collect()
            }))
            .with_allow_auto_topic_creation(self.config.allow_auto_topic_creation);
        let response: MetadataResponse = match conn.send(&request).await {
            Ok(r) => r,
            Err(e) => {
                self.forget_connection(&conn);
                return Err(e);
            }
        };
        Ok(self.apply(response))
    }

    fn forget_connection(&self, conn: &Connection) {
        let mut state = self.lock();
        if state.connections.get(conn.addr()).is_some_and(|c| c.is_closed()) {
            state.connections.remove(conn.addr());
        }
    }

    fn apply(&self, response: MetadataResponse) -> (Vec<Arc<TopicMetadata>>, Vec<(String, ResponseError)>) {
        let mut state = self.lock();
        state.brokers =
            response.brokers.iter().map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port))).collect();
        state.controller = Some(response.controller_id.0);
        state.cluster_id = response.cluster_id.as_ref().map(|c| c.to_string());
        let mut ok = Vec::new();
        let mut failed = Vec::new();
        for t in response.topics {
            let name = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
            if let Some(error) = ResponseError::try_from_code(t.error_code) {
                state.topics.remove(&name);
                failed.push((name, error));
                continue;
            }
            let mut partitions: Vec<PartitionMetadata> = t
                .partitions
                .iter()
                .map(|p| PartitionMetadata {
                    partition: p.partition_index,
                    leader: p.leader_id.0,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes.iter().map(|r| r.0).collect(),
                    isr: p.isr_nodes.iter().map(|r| r.0).collect(),
                    error: ResponseError::try_from_code(p.error_code),
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            let topic = Arc::new(TopicMetadata {
                name: name.clone(),
                topic_id: t.topic_id.to_string(),
                is_internal: t.is_internal,
                partitions,
            });
            state.topics.insert(name, topic.clone());
            ok.push(topic);
        }
        (ok, failed)
    }

    /// Cached metadata of `topic`, fetching it when missing. Waits (a bounded number of
    /// refreshes) while a new topic has no partitions or no leaders yet.
    pub async fn topic(&self, topic: &str) -> Result<Arc<TopicMetadata>> {
        if let Some(t) = self.cached_topic(topic) {
            return Ok(t);
        }
        let mut attempt = 0;
        loop {
            let (ok, failed) = self.fetch_metadata(Some(&[topic])).await?;
            if let Some(t) = ok.into_iter().find(|t| t.name == topic) {
                if !t.partitions.is_empty() && !t.available_partitions().is_empty() {
                    return Ok(t);
                }
            } else if let Some((_, error)) = failed.iter().find(|(n, _)| n == topic) {
                let retriable = matches!(error, ResponseError::LeaderNotAvailable);
                if !retriable || attempt >= self.config.metadata_max_retries {
                    return Err(match error {
                        ResponseError::UnknownTopicOrPartition => Error::UnknownTopic { topic: topic.to_string() },
                        e => Error::Kafka { context: format!("Metadata for topic {topic}"), error: *e, message: None },
                    });
                }
            }
            attempt += 1;
            if attempt > self.config.metadata_max_retries {
                return Err(Error::Kafka {
                    context: format!("Metadata for topic {topic}"),
                    error: ResponseError::LeaderNotAvailable,
                    message: Some(format!("no leader after {attempt} refreshes")),
                });
            }
            tokio::time::sleep(Duration::from_millis(self.config.metadata_retry_backoff_ms)).await;
        }
    }

    /// The cached metadata of `topic` without any request.
    pub fn cached_topic(&self, topic: &str) -> Option<Arc<TopicMetadata>> {
        self.lock().topics.get(topic).cloned()
    }

    /// Drops the cached metadata of `topic` so the next look-up asks the cluster again.
    pub fn invalidate(&self, topic: &str) {
        self.lock().topics.remove(topic);
    }

    /// The leader of `topic`/`partition` and a connection to it, refreshing stale metadata.
    pub async fn leader(&self, topic: &str, partition: i32) -> Result<(i32, Connection)> {
        let mut meta = self.topic(topic).await?;
        if partition >= meta.num_partitions() {
            // The cached metadata may predate partitions added since: look again once.
            self.invalidate(topic);
            meta = self.topic(topic).await?;
        }
        if partition < 0 || partition >= meta.num_partitions() {
            return Err(Error::UnknownPartition {
                topic: topic.to_string(),
                partition,
                partitions: meta.num_partitions(),
            });
        }
        let leader = match meta.leader(partition) {
            Some(l) => l,
            None => {
                self.invalidate(topic);
                let meta = self.topic(topic).await?;
                meta.leader(partition).ok_or_else(|| Error::Kafka {
                    context: format!("leader of {topic}-{partition}"),
                    error: ResponseError::LeaderNotAvailable,
                    message: None,
                })?
            }
        };
        match self.connection(leader).await {
            Ok(c) => Ok((leader, c)),
            Err(e) => {
                self.invalidate(topic);
                Err(e)
            }
        }
    }
}
