//! Client commands: `sluice topic ...` and `sluice produce`. They work against any
//! Kafka-compatible broker.

use std::io::BufRead;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use sluice_client::admin::OffsetSpec;
use sluice_client::{
    Acks, Admin, AutoOffsetReset, ClientConfig, Compression, Consumer, ConsumerConfig, NewTopic, Producer,
    ProducerConfig, ProducerRecord, TopicPartition,
};

/// Where to find the cluster; every client command takes it.
#[derive(Args, Debug, Clone)]
pub struct ConnectArgs {
    /// HOST:PORT[,HOST:PORT...] of one or more brokers to bootstrap from.
    #[arg(long = "bootstrap-server", env = "SLUICE_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    pub bootstrap_server: String,
    /// How long to wait for any one broker answer, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    pub request_timeout_ms: u64,
}

impl ConnectArgs {
    fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new(self.bootstrap_server.clone());
        c.connection.client_id = "sluice-cli".into();
        c.connection.request_timeout_ms = self.request_timeout_ms;
        c.connection.connect_timeout_ms = self.request_timeout_ms.min(10_000);
        c
    }
}

#[derive(Subcommand, Debug)]
pub enum TopicCommand {
    /// Create a topic.
    Create {
        name: String,
        #[arg(long, short = 'p', default_value_t = 1)]
        partitions: i32,
        #[arg(long, short = 'r', default_value_t = 1)]
        replication_factor: i16,
        /// A topic config, NAME=VALUE (repeatable), e.g. --config retention.ms=3600000
        #[arg(long = "config", short = 'c', value_name = "NAME=VALUE")]
        configs: Vec<String>,
        /// Succeed when the topic already exists.
        #[arg(long)]
        if_not_exists: bool,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// List topic names, one a line.
    List {
        /// Include internal topics such as __consumer_offsets.
        #[arg(long)]
        internal: bool,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Describe topics: partitions, leaders, replicas, in-sync replicas and offsets.
    Describe {
        /// Topics to describe (all when none given).
        names: Vec<String>,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Delete topics.
    Delete {
        #[arg(required = true)]
        names: Vec<String>,
        /// Succeed when a topic does not exist.
        #[arg(long)]
        if_exists: bool,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Grow a topic to more partitions.
    Alter {
        name: String,
        /// The new total number of partitions.
        #[arg(long, short = 'p')]
        partitions: i32,
        #[command(flatten)]
        connect: ConnectArgs,
    },
}

#[derive(Args, Debug)]
pub struct ProduceArgs {
    /// Topic to write to.
    pub topic: String,
    /// Split each line at the first SEP into key and value; lines without SEP are refused.
    #[arg(long, value_name = "SEP")]
    pub key_separator: Option<String>,
    /// Write every record to this partition instead of letting the partitioner choose.
    #[arg(long)]
    pub partition: Option<i32>,
    /// 0, 1 or all.
    #[arg(long, default_value = "all")]
    pub acks: String,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    pub compression: String,
    /// How long a batch waits for more records before it is sent.
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u64,
    /// Bytes of records per partition batch.
    #[arg(long, default_value_t = 16_384)]
    pub batch_size: usize,
    /// Read records from this file instead of standard input.
    #[arg(long)]
    pub file: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Args, Debug)]
pub struct ConsumeArgs {
    /// Topic to read.
    pub topic: String,
    /// Read as a member of this consumer group (committing offsets); without it, read every
    /// partition without a group.
    #[arg(long)]
    pub group: Option<String>,
    /// Start at the earliest offset where nothing is committed (default: the end).
    #[arg(long)]
    pub from_beginning: bool,
    /// Exit after this many records.
    #[arg(long)]
    pub max: Option<u64>,
    /// Exit when no record arrives for this many milliseconds.
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Subcommand, Debug)]
pub enum GroupCommand {
    /// List consumer groups.
    List {
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Describe a group: state, members, and per partition the committed offset, the log end
    /// offset and the lag.
    Describe {
        group: String,
        #[command(flatten)]
        connect: ConnectArgs,
    },
}

/// Deliveries `produce` keeps unchecked before it waits for the oldest.
const PENDING_DELIVERIES_MAX: usize = 10_000;

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the async runtime")
}

/// Runs a client command; errors go to stderr as `sluice: ...`.
pub fn run_topic(command: TopicCommand) -> ExitCode {
    report(runtime().and_then(|rt| rt.block_on(topic(command))))
}

pub fn run_produce(args: ProduceArgs) -> ExitCode {
    report(runtime().and_then(|rt| rt.block_on(produce(args))))
}

pub fn run_consume(args: ConsumeArgs) -> ExitCode {
    report(runtime().and_then(|rt| rt.block_on(consume(args))))
}

pub fn run_group(command: GroupCommand) -> ExitCode {
    report(runtime().and_then(|rt| rt.block_on(group(command))))
}

fn report(result: Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn topic(command: TopicCommand) -> Result<()> {
    match command {
        TopicCommand::Create { name, partitions, replication_factor, configs, if_not_exists, connect } => {
            let mut topic = NewTopic::new(&name, partitions, replication_factor);
            for c in configs {
                let Some((k, v)) = c.split_once('=') else { bail!("--config {c:?} is not NAME=VALUE") };
                topic.configs.push((k.to_string(), v.to_string()));
            }
            let admin = Admin::connect(connect.client_config()).await?;
            match admin.create_topic(topic).await {
                Ok(()) => println!("created topic {name} with {partitions} partition(s)"),
                Err(e)
                    if if_not_exists
                        && e.kafka_error() == Some(sluice_client::error::ResponseError::TopicAlreadyExists) =>
                {
                    println!("topic {name} already exists")
                }
                Err(e) => return Err(e.into()),
            }
        }
        TopicCommand::List { internal, connect } => {
            let admin = Admin::connect(connect.client_config()).await?;
            for name in admin.list_topics(internal).await? {
                println!("{name}");
            }
        }
        TopicCommand::Describe { names, connect } => {
            let admin = Admin::connect(connect.client_config()).await?;
            let names = if names.is_empty() { admin.list_topics(false).await? } else { names };
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            if refs.is_empty() {
                return Ok(());
            }
            let topics = admin.describe_topics(&refs).await?;
            for t in topics {
                let tps: Vec<_> =
                    t.partitions.iter().map(|p| sluice_client::TopicPartition::new(&t.name, p.partition)).collect();
                let earliest = admin.list_offsets(&tps, OffsetSpec::Earliest).await?;
                let latest = admin.list_offsets(&tps, OffsetSpec::Latest).await?;
                println!("topic {}  id {}  partitions {}", t.name, t.topic_id, t.num_partitions());
                println!(
                    "  {:>9}  {:>6}  {:>9}  {:>9}  {:>14}  {:>14}",
                    "PARTITION", "LEADER", "REPLICAS", "ISR", "EARLIEST", "LATEST"
                );
                for (p, tp) in t.partitions.iter().zip(&tps) {
                    let list = |v: &[i32]| v.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(",");
                    println!(
                        "  {:>9}  {:>6}  {:>9}  {:>9}  {:>14}  {:>14}",
                        p.partition,
                        p.leader,
                        list(&p.replicas),
                        list(&p.isr),
                        earliest.get(tp).map_or(-1, |o| o.offset),
                        latest.get(tp).map_or(-1, |o| o.offset),
                    );
                }
            }
        }
        TopicCommand::Delete { names, if_exists, connect } => {
            let admin = Admin::connect(connect.client_config()).await?;
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let mut failed = None;
            for (name, result) in admin.delete_topics(&refs).await? {
                match result {
                    Ok(()) => println!("deleted topic {name}"),
                    Err(sluice_client::Error::UnknownTopic { .. }) if if_exists => {
                        println!("topic {name} does not exist")
                    }
                    Err(e) => {
                        eprintln!("sluice: {e}");
                        failed = Some(e);
                    }
                }
            }
            if let Some(e) = failed {
                return Err(e.into());
            }
        }
        TopicCommand::Alter { name, partitions, connect } => {
            let admin = Admin::connect(connect.client_config()).await?;
            admin.create_partitions(&name, partitions).await?;
            println!("topic {name} now has {partitions} partitions");
        }
    }
    Ok(())
}

fn compression(name: &str) -> Result<Compression> {
    Compression::ALL
        .into_iter()
        .find(|c| c.name() == name)
        .with_context(|| format!("unknown --compression {name:?}; use none, gzip, snappy, lz4 or zstd"))
}

async fn produce(args: ProduceArgs) -> Result<()> {
    let acks: Acks = args.acks.parse()?;
    let mut config = ProducerConfig::new(args.connect.bootstrap_server.clone());
    config.client = args.connect.client_config();
    // Like Kafka's console producer, do not create topics by accident.
    config.client.allow_auto_topic_creation = false;
    config.acks = acks;
    config.compression = compression(&args.compression)?;
    config.linger_ms = args.linger_ms;
    config.batch_size = args.batch_size;
    let producer = Producer::new(config).await?;
    // Fail before reading input when the topic is not there.
    producer.cluster().topic(&args.topic).await?;

    let input: Box<dyn BufRead + Send> = match &args.file {
        Some(path) => Box::new(std::io::BufReader::new(
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
        )),
        None => Box::new(std::io::BufReader::new(std::io::stdin())),
    };
    // Input is read on its own thread, so a slow or interactive stdin never stalls the sender
    // (linger timers, responses).
    let (tx, mut lines) = tokio::sync::mpsc::channel::<std::io::Result<String>>(1024);
    std::thread::spawn(move || {
        for line in input.lines() {
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    // Deliveries are checked as they complete, so a failure stops the run early and memory
    // stays bounded.
    let mut pending = std::collections::VecDeque::new();
    let mut sent = 0u64;
    while let Some(line) = lines.recv().await {
        let line = line.context("reading input")?;
        let mut record = ProducerRecord::new(&args.topic);
        match &args.key_separator {
            Some(sep) => {
                let Some((key, value)) = line.split_once(sep.as_str()) else {
                    bail!("line {} has no key separator {sep:?}; write KEY{sep}VALUE", sent + 1);
                };
                record = record.key(key.to_string()).value(value.to_string());
            }
            None => record = record.value(line),
        }
        if let Some(p) = args.partition {
            record = record.partition(p);
        }
        pending.push_back(producer.send(record).await?);
        sent += 1;
        while pending.len() > PENDING_DELIVERIES_MAX {
            pending.pop_front().expect("non-empty").await.context("delivering a record")?;
        }
    }
    producer.flush().await?;
    for delivery in pending {
        delivery.await.context("delivering a record")?;
    }
    producer.close().await?;
    eprintln!("sluice: produced {sent} record(s) to {}", args.topic);
    Ok(())
}

async fn consume(args: ConsumeArgs) -> Result<()> {
    use std::io::Write;
    let mut config = ConsumerConfig::new(args.connect.bootstrap_server.clone());
    config.client = args.connect.client_config();
    config.client.allow_auto_topic_creation = false;
    config.group_id = args.group.clone();
    config.auto_offset_reset = if args.from_beginning { AutoOffsetReset::Earliest } else { AutoOffsetReset::Latest };
    config.enable_auto_commit = args.group.is_some();
    let mut consumer = Consumer::new(config).await?;
    let meta = consumer.cluster().topic(&args.topic).await?;
    match &args.group {
        Some(_) => consumer.subscribe(vec![args.topic.clone()]).await?,
        None => {
            let partitions = (0..meta.num_partitions()).map(|p| TopicPartition::new(&args.topic, p)).collect();
            consumer.assign(partitions).await?
        }
    }
    let idle = args.timeout_ms.map(std::time::Duration::from_millis);
    let mut seen = 0u64;
    let stdout = std::io::stdout();
    'outer: loop {
        if args.max.is_some_and(|m| seen >= m) {
            break;
        }
        if let Some(m) = args.max {
            // Never take (and auto-commit) more than will be printed.
            consumer.set_max_poll_records(usize::try_from(m - seen).unwrap_or(usize::MAX).min(500));
        }
        let wait = idle.unwrap_or(std::time::Duration::from_secs(3600));
        let records = consumer.poll(wait).await?;
        if records.is_empty() {
            if idle.is_some() {
                break;
            }
            continue;
        }
        let mut out = stdout.lock();
        for r in records {
            if args.max.is_some_and(|m| seen >= m) {
                break 'outer;
            }
            let value = r.value.as_deref().unwrap_or_default();
            out.write_all(value)?;
            out.write_all(b"\n")?;
            seen += 1;
        }
        out.flush()?;
    }
    consumer.close().await?;
    eprintln!("sluice: consumed {seen} record(s) from {}", args.topic);
    Ok(())
}

async fn group(command: GroupCommand) -> Result<()> {
    match command {
        GroupCommand::List { connect } => {
            let admin = Admin::connect(connect.client_config()).await?;
            for (id, protocol_type, state) in admin.list_groups().await? {
                println!("{id}\t{protocol_type}\t{state}");
            }
        }
        GroupCommand::Describe { group, connect } => {
            let admin = Admin::connect(connect.client_config()).await?;
            let description = admin.describe_group(&group).await?;
            let committed = admin.group_offsets(&group).await?;
            let mut owner: std::collections::BTreeMap<TopicPartition, (&str, &str)> = Default::default();
            for m in &description.members {
                for tp in &m.assignment {
                    owner.insert(tp.clone(), (m.member_id.as_str(), m.host.as_str()));
                }
            }
            let mut partitions: Vec<TopicPartition> = committed.keys().chain(owner.keys()).cloned().collect();
            partitions.sort();
            partitions.dedup();
            let ends = if partitions.is_empty() {
                Default::default()
            } else {
                admin.list_offsets(&partitions, OffsetSpec::Latest).await?
            };
            println!(
                "group {}  state {}  protocol {}  members {}",
                description.group_id,
                description.state,
                if description.protocol.is_empty() { "-" } else { &description.protocol },
                description.members.len()
            );
            println!(
                "{:<24} {:>9} {:>14} {:>14} {:>8}  {:<40} HOST",
                "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID"
            );
            for tp in partitions {
                let current = committed.get(&tp).copied();
                let end = ends.get(&tp).map(|o| o.offset);
                let lag = match (current, end) {
                    (Some(c), Some(e)) => (e - c).max(0).to_string(),
                    _ => "-".to_string(),
                };
                let (member, host) = owner.get(&tp).copied().unwrap_or(("-", "-"));
                println!(
                    "{:<24} {:>9} {:>14} {:>14} {:>8}  {:<40} {}",
                    tp.topic,
                    tp.partition,
                    current.map_or("-".to_string(), |c| c.to_string()),
                    end.map_or("-".to_string(), |e| e.to_string()),
                    lag,
                    member,
                    host
                );
            }
        }
    }
    Ok(())
}
