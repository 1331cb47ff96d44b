//! `sluice consume TOPIC`: in a group (`--group`, committing as it goes) or from chosen
//! partitions and positions without one; as text (one value a line) or JSON (one object a
//! line, see `json`).
//!
//! Invariants: records are printed in the order poll returns them (offset order within a
//! partition); with `--max N` at most N are printed and, in a group, no more than the printed
//! ones are taken from the broker, so the committed offsets never pass what was printed.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use sluice_client::admin::OffsetSpec;
use sluice_client::{Admin, AutoOffsetReset, Consumer, ConsumerConfig, TopicPartition};

use super::{json, timefmt, ConnectArgs};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The value of each record, one a line (with --key-separator: KEY SEP VALUE).
    Text,
    /// One JSON object a line: topic, partition, offset, timestamp, key, value, headers.
    /// Byte strings that are not UTF-8 are written as {"base64": "..."}.
    Json,
}

#[derive(Args, Debug)]
pub struct ConsumeArgs {
    /// Topic to read.
    pub topic: String,
    /// Read as a member of this consumer group (committing offsets); without it, read every
    /// partition (or those given with --partition) without a group.
    #[arg(long)]
    pub group: Option<String>,
    /// Start at the earliest offset where nothing is committed (default: the end). Without a
    /// group, the same as --offset earliest.
    #[arg(long)]
    pub from_beginning: bool,
    /// Read only these partitions (repeatable or comma-separated); not with --group.
    #[arg(long = "partition", value_delimiter = ',', conflicts_with = "group")]
    pub partitions: Vec<i32>,
    /// Where to start without a group: earliest, latest, or an offset (each partition read
    /// starts there; an offset past the end waits for records there).
    #[arg(long, value_name = "earliest|latest|N", conflicts_with_all = ["group", "from_timestamp"])]
    pub offset: Option<String>,
    /// Start at the first record whose timestamp is at or after this time, without a group:
    /// YYYY-MM-DDTHH:MM:SS[.fff][Z|+HH:MM] (UTC without a zone) or epoch milliseconds.
    #[arg(long, value_name = "DATETIME", conflicts_with = "group")]
    pub from_timestamp: Option<String>,
    /// Exit once every partition read has been read up to the end offset it had at the start.
    #[arg(long, conflicts_with = "group")]
    pub to_end: bool,
    /// Exit after this many records.
    #[arg(long)]
    pub max: Option<u64>,
    /// Exit when no record arrives for this many milliseconds.
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// In text format, print KEY SEP VALUE instead of the value alone.
    #[arg(long, value_name = "SEP")]
    pub key_separator: Option<String>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Where a group-less read starts.
enum Start {
    Earliest,
    Latest,
    Offset(i64),
    Timestamp(i64),
}

fn start_of(args: &ConsumeArgs) -> Result<Start> {
    if let Some(ts) = &args.from_timestamp {
        return Ok(Start::Timestamp(timefmt::parse_datetime(ts)?));
    }
    Ok(match args.offset.as_deref() {
        Some("earliest") | Some("beginning") => Start::Earliest,
        Some("latest") | Some("end") => Start::Latest,
        Some(n) => Start::Offset(
            n.parse::<i64>()
                .ok()
                .filter(|o| *o >= 0)
                .with_context(|| format!("--offset {n:?}: use earliest, latest or a non-negative offset"))?,
        ),
        None if args.from_beginning => Start::Earliest,
        None => Start::Latest,
    })
}

pub(super) async fn run(args: ConsumeArgs) -> Result<()> {
    let start = start_of(&args)?;
    let mut config = ConsumerConfig::new(args.connect.bootstrap_server.clone());
    config.client = args.connect.client_config();
    config.client.allow_auto_topic_creation = false;
    config.group_id = args.group.clone();
    config.auto_offset_reset = match (&args.group, &start) {
        (Some(_), _) if args.from_beginning => AutoOffsetReset::Earliest,
        (None, Start::Earliest) => AutoOffsetReset::Earliest,
        _ => AutoOffsetReset::Latest,
    };
    config.enable_auto_commit = args.group.is_some();
    let mut consumer = Consumer::new(config).await?;
    let meta = consumer.cluster().topic(&args.topic).await?;
    // The end offsets at the start, for --to-end: partition -> end.
    let mut ends: BTreeMap<TopicPartition, i64> = BTreeMap::new();
    match &args.group {
        Some(_) => consumer.subscribe(vec![args.topic.clone()]).await?,
        None => {
            let n = meta.num_partitions();
            let chosen: Vec<i32> = if args.partitions.is_empty() { (0..n).collect() } else { args.partitions.clone() };
            for &p in &chosen {
                if !(0..n).contains(&p) {
                    return Err(sluice_client::Error::UnknownPartition {
                        topic: args.topic.clone(),
                        partition: p,
                        partitions: n,
                    }
                    .into());
                }
            }
            let tps: Vec<TopicPartition> = chosen.iter().map(|&p| TopicPartition::new(&args.topic, p)).collect();
            consumer.assign(tps.clone()).await?;
            let admin = Admin::from_cluster(consumer.cluster().clone());
            match start {
                Start::Offset(o) => tps.iter().for_each(|tp| consumer.seek(tp, o)),
                Start::Timestamp(ts) => {
                    let found = admin.list_offsets(&tps, OffsetSpec::Timestamp(ts)).await?;
                    let latest = admin.list_offsets(&tps, OffsetSpec::Latest).await?;
                    for tp in &tps {
                        let o = match found.get(tp) {
                            Some(o) if o.offset >= 0 => o.offset,
                            _ => latest.get(tp).map_or(0, |o| o.offset),
                        };
                        consumer.seek(tp, o);
                    }
                }
                Start::Earliest | Start::Latest => {}
            }
            if args.to_end {
                ends = admin
                    .list_offsets(&tps, OffsetSpec::Latest)
                    .await?
                    .into_iter()
                    .map(|(tp, o)| (tp, o.offset))
                    .collect();
            }
        }
    }
    let reached_end = |consumer: &Consumer, ends: &BTreeMap<TopicPartition, i64>| {
        ends.iter().all(|(tp, &end)| consumer.position(tp).is_some_and(|p| p >= end))
    };
    let idle = args.timeout_ms.map(Duration::from_millis);
    let mut seen = 0u64;
    let stdout = std::io::stdout();
    'outer: loop {
        if args.max.is_some_and(|m| seen >= m) || (args.to_end && reached_end(&consumer, &ends)) {
            break;
        }
        if let Some(m) = args.max {
            // Never take (and auto-commit) more than will be printed.
            consumer.set_max_poll_records(usize::try_from(m - seen).unwrap_or(usize::MAX).min(500));
        }
        let wait = idle.unwrap_or(Duration::from_secs(3600));
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
            match args.format {
                Format::Json => {
                    serde_json::to_writer(&mut out, &json::record(&r))?;
                    out.write_all(b"\n")?;
                }
                Format::Text => {
                    if let Some(sep) = &args.key_separator {
                        out.write_all(r.key.as_deref().unwrap_or_default())?;
                        out.write_all(sep.as_bytes())?;
                    }
                    out.write_all(r.value.as_deref().unwrap_or_default())?;
                    out.write_all(b"\n")?;
                }
            }
            seen += 1;
        }
        out.flush()?;
    }
    let short_of_end = args.to_end && args.max.is_none_or(|m| seen < m) && !reached_end(&consumer, &ends);
    consumer.close().await?;
    eprintln!("sluice: consumed {seen} record(s) from {}", args.topic);
    if short_of_end {
        bail!("--timeout-ms passed before the end offsets were reached; raise it to read to the end");
    }
    Ok(())
}
