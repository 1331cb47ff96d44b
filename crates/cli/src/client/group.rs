//! `sluice group list|describe|reset-offsets|delete`, after Kafka's `kafka-consumer-groups.sh`.
//!
//! Invariants:
//! - `reset-offsets` changes nothing unless `--execute` is given; without it, it prints the
//!   offsets it would commit. It refuses (in both modes) a group that has members, as Kafka's
//!   ConsumerGroupCommand does: a live member would overwrite the new offsets with its own.
//! - `delete` refuses a group with members (the broker's NON_EMPTY_GROUP), with the same advice.
//! - New offsets are always within the partition's `[log start, log end]`: `--to-offset` and
//!   `--shift-by` are clamped, as Kafka clamps them.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use sluice_client::admin::{ListedOffset, OffsetSpec};
use sluice_client::consumer::GroupDescription;
use sluice_client::error::ResponseError;
use sluice_client::{Admin, AutoOffsetReset, Consumer, ConsumerConfig, TopicPartition};

use super::timefmt;
use super::ConnectArgs;

#[derive(Subcommand, Debug)]
pub enum GroupCommand {
    /// List consumer groups: GROUP, protocol type, state (tab-separated).
    List {
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Describe a group: its state and members with their assignments, then per partition the
    /// committed offset, the log end offset, the lag in records and the lag in time.
    ///
    /// LAG is LOG-END-OFFSET minus CURRENT-OFFSET (the committed offset). LAG-TIME is how long
    /// the oldest unconsumed record has been waiting: now minus the timestamp of the record at
    /// the committed offset (the next one the group will read), in seconds; 0 when LAG is 0,
    /// `-` when nothing is committed or that record could not be read. With CreateTime
    /// timestamps it measures from when the producer made the record.
    Describe {
        group: String,
        /// Do not read records to compute LAG-TIME (one Fetch per lagging partition).
        #[arg(long)]
        no_lag_time: bool,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Move a group's committed offsets. Prints the plan (TOPIC PARTITION CURRENT-OFFSET
    /// NEW-OFFSET) and changes nothing unless --execute is given. The group must have no
    /// members: stop its consumers first.
    ResetOffsets(ResetArgs),
    /// Delete groups (their committed offsets included). A group must have no members.
    Delete {
        #[arg(required = true)]
        groups: Vec<String>,
        #[command(flatten)]
        connect: ConnectArgs,
    },
}

#[derive(Args, Debug)]
pub struct ResetArgs {
    pub group: String,
    /// A topic whose offsets to reset: TOPIC (every partition) or TOPIC:P,P,... (repeatable).
    #[arg(long = "topic", value_name = "TOPIC[:P,...]", required_unless_present = "all_topics")]
    pub topics: Vec<String>,
    /// Every topic the group has committed offsets for.
    #[arg(long, conflicts_with = "topics")]
    pub all_topics: bool,
    #[command(flatten)]
    pub target: ResetTarget,
    /// Commit the new offsets (without it the command only previews them).
    #[arg(long)]
    pub execute: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Where to move the offsets; exactly one.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub struct ResetTarget {
    /// To the log start offset.
    #[arg(long)]
    pub to_earliest: bool,
    /// To the log end offset (skip everything there now).
    #[arg(long)]
    pub to_latest: bool,
    /// To this offset (clamped to the partition's range).
    #[arg(long, value_name = "OFFSET")]
    pub to_offset: Option<i64>,
    /// Move the committed offset by N (negative: back), clamped to the partition's range.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub shift_by: Option<i64>,
    /// To the first record at or after this time: YYYY-MM-DDTHH:MM:SS[.fff][Z|+HH:MM] (UTC
    /// without a zone) or epoch milliseconds; the log end where there is none.
    #[arg(long, value_name = "DATETIME")]
    pub to_datetime: Option<String>,
    /// To the first record at or after now minus this ISO-8601 duration (PnDTnHnMnS, e.g.
    /// PT30M); the log end where there is none.
    #[arg(long, value_name = "DURATION")]
    pub by_duration: Option<String>,
}

/// The advice for a group that still has members.
fn not_empty(group: &str, detail: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "group not empty: stop its consumers first ({group} {detail}); `sluice group describe {group}` lists them"
    )
}

pub(super) async fn run(command: GroupCommand) -> Result<()> {
    match command {
        GroupCommand::List { connect } => {
            let admin = Admin::connect(connect.client_config()).await?;
            for (id, protocol_type, state) in admin.list_groups().await? {
                println!("{id}\t{protocol_type}\t{state}");
            }
            Ok(())
        }
        GroupCommand::Describe { group, no_lag_time, connect } => describe(&group, !no_lag_time, &connect).await,
        GroupCommand::ResetOffsets(args) => reset_offsets(args).await,
        GroupCommand::Delete { groups, connect } => {
            let admin = Admin::connect(connect.client_config()).await?;
            let refs: Vec<&str> = groups.iter().map(String::as_str).collect();
            let mut failed = 0;
            for (group, result) in admin.delete_groups(&refs).await? {
                match result {
                    Ok(()) => println!("deleted group {group}"),
                    Err(e) => {
                        failed += 1;
                        match e.kafka_error() {
                            Some(ResponseError::NonEmptyGroup) => {
                                eprintln!("sluice: cannot delete group {group}: {}", not_empty(&group, "has members"))
                            }
                            Some(ResponseError::GroupIdNotFound) => eprintln!(
                                "sluice: cannot delete group {group}: it does not exist (`sluice group list` shows the groups)"
                            ),
                            _ => eprintln!("sluice: {e}"),
                        }
                    }
                }
            }
            if failed > 0 {
                bail!("{failed} of {} group(s) not deleted", groups.len());
            }
            Ok(())
        }
    }
}

/// The group's description; an unknown group (DescribeGroups v6+ answers GROUP_ID_NOT_FOUND,
/// older versions state Dead) comes back as Dead without members.
async fn describe_group(admin: &Admin, group: &str) -> Result<GroupDescription> {
    match admin.describe_group(group).await {
        Err(e) if e.kafka_error() == Some(ResponseError::GroupIdNotFound) => Ok(GroupDescription {
            group_id: group.to_string(),
            state: "Dead".to_string(),
            protocol_type: String::new(),
            protocol: String::new(),
            members: Vec::new(),
        }),
        other => Ok(other?),
    }
}

/// State, members, and per partition committed and end offsets, lag and lag time.
async fn describe(group: &str, lag_time: bool, connect: &ConnectArgs) -> Result<()> {
    let admin = Admin::connect(connect.client_config()).await?;
    let description = describe_group(&admin, group).await?;
    let committed = admin.group_offsets(group).await?;
    if description.state == "Dead" && committed.is_empty() {
        bail!("group {group} does not exist (`sluice group list` shows the groups)");
    }
    let mut owner: BTreeMap<TopicPartition, (&str, &str)> = BTreeMap::new();
    for m in &description.members {
        for tp in &m.assignment {
            owner.insert(tp.clone(), (m.member_id.as_str(), m.host.as_str()));
        }
    }
    let mut partitions: Vec<TopicPartition> = committed.keys().chain(owner.keys()).cloned().collect();
    partitions.sort();
    partitions.dedup();
    let ends = if partitions.is_empty() {
        BTreeMap::new()
    } else {
        admin.list_offsets(&partitions, OffsetSpec::Latest).await?
    };
    let lagging: BTreeMap<TopicPartition, i64> = committed
        .iter()
        .filter(|(tp, &c)| ends.get(*tp).is_some_and(|e| e.offset > c))
        .map(|(tp, &c)| (tp.clone(), c))
        .collect();
    let timestamps = if lag_time && !lagging.is_empty() {
        next_record_timestamps(connect, &lagging).await.unwrap_or_else(|e| {
            eprintln!("sluice: cannot read records for LAG-TIME: {e:#}");
            BTreeMap::new()
        })
    } else {
        BTreeMap::new()
    };
    let now = timefmt::now_ms();

    println!(
        "group {}  state {}  protocol {}  members {}",
        description.group_id,
        description.state,
        if description.protocol.is_empty() { "-" } else { &description.protocol },
        description.members.len()
    );
    if !description.members.is_empty() {
        println!("{:<48} {:<20} {:<20} ASSIGNMENT", "MEMBER-ID", "CLIENT-ID", "HOST");
        for m in &description.members {
            let assignment = m.assignment.iter().map(|tp| tp.to_string()).collect::<Vec<_>>().join(",");
            println!(
                "{:<48} {:<20} {:<20} {}",
                m.member_id,
                m.client_id,
                m.host,
                if assignment.is_empty() { "-" } else { &assignment }
            );
        }
        println!();
    }
    println!(
        "{:<24} {:>9} {:>14} {:>14} {:>8} {:>10}  {:<48} HOST",
        "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "LAG-TIME", "CONSUMER-ID"
    );
    for tp in partitions {
        let current = committed.get(&tp).copied();
        let end = ends.get(&tp).map(|o| o.offset);
        let lag = match (current, end) {
            (Some(c), Some(e)) => Some((e - c).max(0)),
            _ => None,
        };
        let lag_time = match lag {
            Some(0) => "0s".to_string(),
            Some(_) => {
                timestamps.get(&tp).map_or("-".to_string(), |&ts| format!("{:.1}s", (now - ts).max(0) as f64 / 1000.0))
            }
            None => "-".to_string(),
        };
        let (member, host) = owner.get(&tp).copied().unwrap_or(("-", "-"));
        println!(
            "{:<24} {:>9} {:>14} {:>14} {:>8} {:>10}  {:<48} {}",
            tp.topic,
            tp.partition,
            current.map_or("-".to_string(), |c| c.to_string()),
            end.map_or("-".to_string(), |e| e.to_string()),
            lag.map_or("-".to_string(), |l| l.to_string()),
            lag_time,
            member,
            host
        );
    }
    Ok(())
}

/// The timestamp of the first record at or after each offset (read without a group, so
/// nothing is committed). Partitions whose record does not arrive within a few seconds are
/// left out.
async fn next_record_timestamps(
    connect: &ConnectArgs,
    offsets: &BTreeMap<TopicPartition, i64>,
) -> Result<BTreeMap<TopicPartition, i64>> {
    let mut config = ConsumerConfig::new(connect.bootstrap_server.clone());
    config.client = connect.client_config();
    config.auto_offset_reset = AutoOffsetReset::Earliest;
    config.enable_auto_commit = false;
    config.fetch_max_wait_ms = 100;
    let mut consumer = Consumer::new(config).await?;
    consumer.assign(offsets.keys().cloned().collect()).await?;
    for (tp, &offset) in offsets {
        consumer.seek(tp, offset);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut out = BTreeMap::new();
    while out.len() < offsets.len() {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            break;
        }
        for r in consumer.poll(left).await? {
            out.entry(TopicPartition::new(&r.topic, r.partition)).or_insert(r.timestamp);
        }
    }
    consumer.close().await?;
    Ok(out)
}

/// Parses `TOPIC` or `TOPIC:P,P,...`.
fn parse_topic_spec(spec: &str) -> Result<(String, Option<Vec<i32>>)> {
    match spec.split_once(':') {
        None => Ok((spec.to_string(), None)),
        Some((topic, parts)) => {
            let ps = parts
                .split(',')
                .map(|p| p.trim().parse::<i32>().with_context(|| format!("--topic {spec:?}: {p:?} is not a partition")))
                .collect::<Result<Vec<_>>>()?;
            Ok((topic.to_string(), Some(ps)))
        }
    }
}

async fn reset_offsets(args: ResetArgs) -> Result<()> {
    let group = args.group.as_str();
    let admin = Admin::connect(args.connect.client_config()).await?;
    let description = describe_group(&admin, group).await?;
    if !description.members.is_empty() || !matches!(description.state.as_str(), "Empty" | "Dead") {
        return Err(not_empty(
            group,
            &format!("is {} with {} member(s)", description.state, description.members.len()),
        ));
    }
    let committed = admin.group_offsets(group).await?;

    // Which partitions.
    let mut partitions: Vec<TopicPartition> = Vec::new();
    if args.all_topics {
        partitions.extend(committed.keys().cloned());
        if partitions.is_empty() {
            bail!("group {group} has no committed offsets; name the topics with --topic");
        }
    } else {
        for spec in &args.topics {
            let (topic, chosen) = parse_topic_spec(spec)?;
            let meta = admin.describe_topics(&[topic.as_str()]).await?.remove(0);
            let n = meta.num_partitions();
            match chosen {
                None => partitions.extend((0..n).map(|p| TopicPartition::new(&topic, p))),
                Some(ps) => {
                    for p in ps {
                        if !(0..n).contains(&p) {
                            return Err(
                                sluice_client::Error::UnknownPartition { topic, partition: p, partitions: n }.into()
                            );
                        }
                        partitions.push(TopicPartition::new(&topic, p));
                    }
                }
            }
        }
    }
    partitions.sort();
    partitions.dedup();

    let earliest = admin.list_offsets(&partitions, OffsetSpec::Earliest).await?;
    let latest = admin.list_offsets(&partitions, OffsetSpec::Latest).await?;
    let offset_of = |m: &BTreeMap<TopicPartition, ListedOffset>, tp: &TopicPartition| m.get(tp).map_or(0, |o| o.offset);
    let clamp = |tp: &TopicPartition, o: i64| o.clamp(offset_of(&earliest, tp), offset_of(&latest, tp).max(0));
    let t = &args.target;
    let by_time = match (&t.to_datetime, &t.by_duration) {
        (Some(dt), _) => Some(timefmt::parse_datetime(dt)?),
        (_, Some(d)) => Some(timefmt::now_ms() - timefmt::parse_duration(d)?),
        _ => None,
    };
    let at_time = match by_time {
        Some(ts) => {
            eprintln!("sluice: the first offsets at or after {}", timefmt::format_ms(ts));
            admin.list_offsets(&partitions, OffsetSpec::Timestamp(ts)).await?
        }
        None => BTreeMap::new(),
    };
    let mut plan: BTreeMap<TopicPartition, i64> = BTreeMap::new();
    for tp in &partitions {
        let new = if t.to_earliest {
            offset_of(&earliest, tp)
        } else if t.to_latest {
            offset_of(&latest, tp)
        } else if let Some(o) = t.to_offset {
            clamp(tp, o)
        } else if let Some(n) = t.shift_by {
            let Some(&current) = committed.get(tp) else {
                bail!(
                    "cannot shift the offset of {tp}: group {group} has no committed offset there; use --to-earliest, --to-latest or --to-offset for it"
                );
            };
            clamp(tp, current.saturating_add(n))
        } else {
            // --to-datetime / --by-duration: the first record at or after the time, else the end.
            match at_time.get(tp) {
                Some(o) if o.offset >= 0 => o.offset,
                _ => offset_of(&latest, tp),
            }
        };
        plan.insert(tp.clone(), new);
    }

    println!("{:<24} {:>9} {:>14} {:>14}", "TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET");
    for (tp, new) in &plan {
        let current = committed.get(tp).map_or("-".to_string(), |c| c.to_string());
        println!("{:<24} {:>9} {:>14} {:>14}", tp.topic, tp.partition, current, new);
    }
    if !args.execute {
        eprintln!("sluice: preview only, nothing changed; add --execute to commit these offsets for group {group}");
        return Ok(());
    }
    match admin.alter_group_offsets(group, &plan).await {
        Ok(()) => {
            eprintln!("sluice: committed {} offset(s) for group {group}", plan.len());
            Ok(())
        }
        Err(e)
            if matches!(
                e.kafka_error(),
                Some(
                    ResponseError::UnknownMemberId
                        | ResponseError::IllegalGeneration
                        | ResponseError::RebalanceInProgress
                        | ResponseError::NonEmptyGroup
                )
            ) =>
        {
            Err(not_empty(group, &format!("gained a member while resetting: {e}")))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_specs_parse() {
        assert_eq!(parse_topic_spec("orders").unwrap(), ("orders".to_string(), None));
        assert_eq!(parse_topic_spec("orders:0,2").unwrap(), ("orders".to_string(), Some(vec![0, 2])));
        assert!(parse_topic_spec("orders:x").is_err());
    }
}
