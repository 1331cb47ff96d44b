//! `sluice topic create|list|describe|alter|delete`.

use anyhow::{bail, Result};
use clap::Subcommand;
use sluice_client::admin::OffsetSpec;
use sluice_client::{Admin, NewTopic};

use super::ConnectArgs;

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
        /// Also print each topic's configs (NAME=VALUE; `(default)` marks values not set on
        /// the topic itself).
        #[arg(long)]
        configs: bool,
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

pub(super) async fn run(command: TopicCommand) -> Result<()> {
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
        TopicCommand::Describe { names, configs, connect } => {
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
                if configs {
                    println!("  configs:");
                    for c in admin.describe_topic_configs(&t.name).await? {
                        let value = if c.is_sensitive { "(sensitive)" } else { c.value.as_deref().unwrap_or("(null)") };
                        println!("    {}={}{}", c.name, value, if c.is_default { "  (default)" } else { "" });
                    }
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
