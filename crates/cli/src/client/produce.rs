//! `sluice produce TOPIC`: one record per input line (standard input or `--file`), with an
//! optional key (`--key-separator`), headers (`--header` for every record, or per line with
//! `--headers-delimiter`), a rate limit (`--rate`) and a progress bar.
//!
//! Invariants: records are sent in input order; the command exits 0 only after every record
//! was acknowledged (per `--acks`); a failed delivery stops it with the error; at most
//! `PENDING_DELIVERIES_MAX` deliveries are outstanding, so memory stays bounded; with `--rate R`
//! record i is not sent before `start + i / R`, so no window of the run goes faster than R
//! (after the first record).

use std::io::BufRead;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use sluice_client::{Acks, Bytes, Producer, ProducerConfig, ProducerRecord};

use super::{compression, stderr_is_tty, ConnectArgs};

/// Deliveries `produce` keeps unchecked before it waits for the oldest.
const PENDING_DELIVERIES_MAX: usize = 10_000;

#[derive(Args, Debug)]
pub struct ProduceArgs {
    /// Topic to write to.
    pub topic: String,
    /// Split each line at the first SEP into key and value; lines without SEP are refused.
    #[arg(long, value_name = "SEP")]
    pub key_separator: Option<String>,
    /// A header for every record, KEY=VALUE (KEY alone: a null value); repeatable.
    #[arg(long = "header", value_name = "KEY=VALUE")]
    pub headers: Vec<String>,
    /// Each line starts with its headers, then SEP, then the record (key and value):
    /// `k1=v1,k2=v2SEPrest`. Headers are comma-separated KEY=VALUE (KEY alone: null value); the
    /// list may be empty. Added after the --header ones.
    #[arg(long, value_name = "SEP")]
    pub headers_delimiter: Option<String>,
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
    /// Send at most this many records per second.
    #[arg(long, value_name = "RECORDS_PER_S")]
    pub rate: Option<f64>,
    /// Read records from this file instead of standard input.
    #[arg(long)]
    pub file: Option<std::path::PathBuf>,
    /// Draw a progress bar (records/s, MB/s) on standard error even when it is not a terminal.
    /// Drawn by default for --file on a terminal.
    #[arg(long)]
    pub progress: bool,
    /// Never draw a progress bar.
    #[arg(long, conflicts_with = "progress")]
    pub no_progress: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Parses `KEY=VALUE` (or `KEY` for a null value).
fn parse_header(h: &str) -> Result<(String, Option<Bytes>)> {
    let (k, v) = match h.split_once('=') {
        Some((k, v)) => (k, Some(Bytes::from(v.to_string()))),
        None => (h, None),
    };
    if k.is_empty() {
        bail!("header {h:?} has no key; write KEY=VALUE");
    }
    Ok((k.to_string(), v))
}

/// A progress bar over input bytes (`total` when the input size is known) whose `{rate}` shows
/// the records sent (read from `records`), records/s and MB/s. Only `set_position` is called
/// while running, so each update draws once.
pub(super) fn progress_bar(total: Option<u64>, records: Arc<AtomicU64>) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(total, super::progress_target());
    let template = if total.is_some() {
        "{bar:30} {percent:>3}% {bytes}/{total_bytes} {rate} eta {eta}"
    } else {
        "{spinner} {bytes} {rate}"
    };
    let rate = move |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
        let n = records.load(Ordering::Relaxed);
        let secs = state.elapsed().as_secs_f64().max(1e-9);
        let _ = write!(w, "{n} records, {:.0} rec/s, {:.2} MB/s", n as f64 / secs, state.pos() as f64 / secs / 1e6);
    };
    bar.set_style(indicatif::ProgressStyle::with_template(template).expect("valid template").with_key("rate", rate));
    bar
}

/// `N records, R rec/s, M MB/s` since `start`.
pub(super) fn rate_message(records: u64, bytes: u64, start: Instant) -> String {
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    format!("{records} records, {:.0} rec/s, {:.2} MB/s", records as f64 / secs, bytes as f64 / secs / 1e6)
}

pub(super) async fn run(args: ProduceArgs) -> Result<()> {
    let acks: Acks = args.acks.parse()?;
    if let Some(r) = args.rate {
        if !(r > 0.0 && r.is_finite()) {
            bail!("--rate {r}: give a positive number of records per second");
        }
    }
    let fixed_headers = args.headers.iter().map(|h| parse_header(h)).collect::<Result<Vec<_>>>()?;
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

    let (input, size): (Box<dyn BufRead + Send>, Option<u64>) = match &args.file {
        Some(path) => {
            let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            let size = f.metadata().ok().map(|m| m.len());
            (Box::new(std::io::BufReader::new(f)), size)
        }
        None => (Box::new(std::io::BufReader::new(std::io::stdin())), None),
    };
    let show = !args.no_progress && (args.progress || (args.file.is_some() && stderr_is_tty()));
    let records_sent = Arc::new(AtomicU64::new(0));
    let bar = show.then(|| progress_bar(size, records_sent.clone()));
    // Input is read on its own thread, so a slow or interactive stdin never stalls the sender
    // (linger timers, responses). Each line comes with the bytes it took in the input.
    let (tx, mut lines) = tokio::sync::mpsc::channel::<std::io::Result<(Vec<u8>, u64)>>(1024);
    std::thread::spawn(move || {
        let mut input = input;
        loop {
            let mut line = Vec::new();
            let item = match input.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(n) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                        if line.last() == Some(&b'\r') {
                            line.pop();
                        }
                    }
                    Ok((line, n as u64))
                }
                Err(e) => Err(e),
            };
            let failed = item.is_err();
            if tx.blocking_send(item).is_err() || failed {
                break;
            }
        }
    });
    // Deliveries are checked as they complete, so a failure stops the run early and memory
    // stays bounded.
    let mut pending = std::collections::VecDeque::new();
    let mut sent = 0u64;
    let mut bytes_read = 0u64;
    let start = Instant::now();
    let tokio_start = tokio::time::Instant::now();
    let mut last_draw = start;
    while let Some(item) = lines.recv().await {
        let (line, n) = item.context("reading input")?;
        bytes_read += n;
        let mut rest: &[u8] = &line;
        let mut record = ProducerRecord::new(&args.topic);
        for (k, v) in &fixed_headers {
            record = record.header(k.clone(), v.clone());
        }
        if let Some(sep) = &args.headers_delimiter {
            let Some(i) = find(rest, sep.as_bytes()) else {
                bail!("line {} has no headers delimiter {sep:?}; write K=V,K=V{sep}RECORD", sent + 1);
            };
            let headers =
                std::str::from_utf8(&rest[..i]).with_context(|| format!("line {}: headers are not UTF-8", sent + 1))?;
            for h in headers.split(',').filter(|h| !h.is_empty()) {
                let (k, v) = parse_header(h).with_context(|| format!("line {}", sent + 1))?;
                record = record.header(k, v);
            }
            rest = &rest[i + sep.len()..];
        }
        match &args.key_separator {
            Some(sep) => {
                let Some(i) = find(rest, sep.as_bytes()) else {
                    bail!("line {} has no key separator {sep:?}; write KEY{sep}VALUE", sent + 1);
                };
                record = record.key(rest[..i].to_vec()).value(rest[i + sep.len()..].to_vec());
            }
            None => record = record.value(rest.to_vec()),
        }
        if let Some(p) = args.partition {
            record = record.partition(p);
        }
        if let Some(rate) = args.rate {
            // Record `sent` is due at start + sent / rate.
            let due = tokio_start + Duration::from_secs_f64(sent as f64 / rate);
            tokio::time::sleep_until(due).await;
        }
        pending.push_back(producer.send(record).await?);
        sent += 1;
        while pending.len() > PENDING_DELIVERIES_MAX {
            pending.pop_front().expect("non-empty").await.context("delivering a record")?;
        }
        if let Some(bar) = &bar {
            if last_draw.elapsed() >= Duration::from_millis(100) {
                last_draw = Instant::now();
                records_sent.store(sent, Ordering::Relaxed);
                bar.set_position(bytes_read);
            }
        }
    }
    producer.flush().await?;
    for delivery in pending {
        delivery.await.context("delivering a record")?;
    }
    producer.close().await?;
    if let Some(bar) = &bar {
        records_sent.store(sent, Ordering::Relaxed);
        bar.set_length(bytes_read);
        bar.finish();
    }
    eprintln!("sluice: produced {sent} record(s) to {} ({})", args.topic, rate_message(sent, bytes_read, start));
    Ok(())
}

/// The first position of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse_with_null_values() {
        assert_eq!(parse_header("a=b=c").unwrap(), ("a".to_string(), Some(Bytes::from("b=c"))));
        assert_eq!(parse_header("flag").unwrap(), ("flag".to_string(), None));
        assert_eq!(parse_header("k=").unwrap(), ("k".to_string(), Some(Bytes::new())));
        assert!(parse_header("=v").is_err());
    }
}
