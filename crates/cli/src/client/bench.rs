//! `sluice bench produce|consume|e2e`: throughput (records/s, MB/s) and latency percentiles
//! (HdrHistogram, microsecond resolution, p50/p99/p99.9/max) against any Kafka-compatible
//! broker, with the Sluice client, (built with `--features rdkafka`) librdkafka, or `wire`: no
//! client library at all, to measure the broker itself (`bench_wire.rs`).
//!
//! What is measured:
//! - `produce`: latency is from the `send` call to the delivery acknowledgement of that record.
//! - `consume`: reads `--records` records from the start of the topic; latency is the time of
//!   each `poll` call that returned records.
//! - `e2e`: a consumer (assigned to every partition at the end) and a producer in the same
//!   process; each record carries its send time (microseconds since the epoch, first 8 bytes of
//!   the value, big-endian) and latency is receive time minus send time.
//!
//! Invariants: the payload is the same `--record-size` bytes for every record (letters from a
//! fixed-seed generator, so compression sees text, not zeros); a run ends after exactly
//! `--records` acknowledgements / receptions or fails; with `--rate R` record i is not sent
//! before `start + i / R`.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use futures::StreamExt;
use hdrhistogram::Histogram;
use sluice_client::admin::OffsetSpec;
use sluice_client::{
    Acks, Admin, AutoOffsetReset, Bytes, Consumer, ConsumerConfig, NewTopic, Producer, ProducerConfig, ProducerRecord,
    TopicPartition,
};

use super::{compression, stderr_is_tty, ConnectArgs};

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Produce --records records; latency from send to acknowledgement.
    Produce(BenchArgs),
    /// Consume --records records from the start of the topic (produce them first); latency of
    /// each poll that returned records; records/s counted after the first of them.
    Consume(BenchArgs),
    /// Produce and consume at once; latency from send to receipt by the consumer.
    E2e(BenchArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Client {
    /// This project's Rust client (sluice-client).
    Sluice,
    /// librdkafka through the rdkafka crate (needs a build with `--features rdkafka`).
    Rdkafka,
    /// No client library: pre-encoded batches and raw Fetch requests, no per-record work, so
    /// what is measured is the broker (produce and consume only).
    Wire,
}

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Topic to use; created with --partitions when missing.
    #[arg(long, default_value = "sluice-bench")]
    pub topic: String,
    /// Records to produce or consume.
    #[arg(long, default_value_t = 100_000)]
    pub records: u64,
    /// Bytes of value per record (at least 8 for e2e).
    #[arg(long, default_value_t = 100)]
    pub record_size: usize,
    /// Partitions of the topic when it is created.
    #[arg(long, default_value_t = 1)]
    pub partitions: i32,
    /// 0, 1 or all.
    #[arg(long, default_value = "all")]
    pub acks: String,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    pub compression: String,
    /// Send at most this many records per second (default: as fast as possible).
    #[arg(long, value_name = "RECORDS_PER_S")]
    pub rate: Option<f64>,
    /// Producer linger.ms.
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u64,
    /// Producer batch.size in bytes.
    #[arg(long, default_value_t = 16_384)]
    pub batch_size: usize,
    /// Which client library to measure.
    #[arg(long, value_enum, default_value_t = Client::Sluice)]
    pub client: Client,
    /// Connections to each broker (`--client wire` only).
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
    /// Produce requests outstanding per connection (`--client wire` only; Kafka's
    /// max.in.flight.requests.per.connection is 5).
    #[arg(long, default_value_t = 5)]
    pub in_flight: usize,
    /// Draw a progress bar on standard error even when it is not a terminal.
    #[arg(long)]
    pub progress: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Sends not yet acknowledged at most (besides the producer's own buffer limit).
const WINDOW: usize = 100_000;
/// How long a consumer waits without a record before the run fails.
const IDLE_TIMEOUT: Duration = Duration::from_secs(15);

pub(super) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// The payload: `size` letters from a fixed-seed xorshift.
pub(super) fn payload(size: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b'A' + (x % 26) as u8
        })
        .collect()
}

pub(super) fn now_micros() -> u64 {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// A records progress bar, or none when not asked for and not on a terminal.
pub(super) fn bar(args: &BenchArgs, what: &str) -> Option<indicatif::ProgressBar> {
    (args.progress || stderr_is_tty()).then(|| {
        let bar = indicatif::ProgressBar::with_draw_target(Some(args.records), super::progress_target());
        let template = format!("{what} {{bar:30}} {{pos}}/{{len}} {{rate}}");
        let size = args.record_size as f64;
        let rate = move |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
            let secs = state.elapsed().as_secs_f64().max(1e-9);
            let per_s = state.pos() as f64 / secs;
            let _ = write!(w, "{per_s:.0} rec/s, {:.2} MB/s", per_s * size / 1e6);
        };
        let style = indicatif::ProgressStyle::with_template(&template).expect("valid template").with_key("rate", rate);
        bar.set_style(style);
        bar
    })
}

/// Updates the bar at most every 100 ms.
pub(super) struct Progress {
    bar: Option<indicatif::ProgressBar>,
    last: Instant,
}

impl Progress {
    pub(super) fn new(bar: Option<indicatif::ProgressBar>) -> Progress {
        Progress { bar, last: Instant::now() }
    }

    pub(super) fn update(&mut self, done: u64) {
        if let Some(bar) = &self.bar {
            if self.last.elapsed() >= Duration::from_millis(100) {
                self.last = Instant::now();
                bar.set_position(done);
            }
        }
    }

    pub(super) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}

/// Prints the summary: throughput and percentiles (in ms).
pub(super) fn summary(label: &str, records: u64, bytes: u64, elapsed: Duration, h: &Histogram<u64>) {
    let secs = elapsed.as_secs_f64().max(1e-9);
    println!(
        "{label}: {records} records in {secs:.3} s: {:.0} records/s, {:.2} MB/s",
        records as f64 / secs,
        bytes as f64 / secs / 1e6
    );
    let ms = |us: u64| us as f64 / 1000.0;
    println!(
        "{label} latency ms: p50 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  (mean {:.3}, {} samples)",
        ms(h.value_at_quantile(0.50)),
        ms(h.value_at_quantile(0.99)),
        ms(h.value_at_quantile(0.999)),
        ms(h.max()),
        h.mean() / 1000.0,
        h.len()
    );
}

/// Creates the topic when it is missing; returns its partition count.
async fn ensure_topic(args: &BenchArgs) -> Result<i32> {
    let admin = Admin::connect(args.connect.client_config()).await?;
    match admin.describe_topics(&[args.topic.as_str()]).await {
        Ok(t) => {
            let n = t[0].num_partitions();
            if n != args.partitions {
                eprintln!("sluice: topic {} exists with {n} partition(s); using it as it is", args.topic);
            }
            Ok(n)
        }
        Err(sluice_client::Error::UnknownTopic { .. }) => {
            admin.create_topic(NewTopic::new(&args.topic, args.partitions, 1)).await?;
            // Wait until every partition has a leader (Kafka publishes them shortly after).
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let t = admin.describe_topics(&[args.topic.as_str()]).await;
                if let Ok(t) = t {
                    if t[0].num_partitions() == args.partitions && t[0].partitions.iter().all(|p| p.leader >= 0) {
                        return Ok(args.partitions);
                    }
                }
                if Instant::now() > deadline {
                    bail!("topic {} created but its partitions have no leader after 30 s", args.topic);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Err(e) => Err(e.into()),
    }
}

fn describe(kind: &str, args: &BenchArgs, partitions: i32) {
    eprintln!(
        "sluice: bench {kind}: {} records of {} B, topic {} ({partitions} partitions), acks {}, compression {}, rate {}, client {:?}",
        args.records,
        args.record_size,
        args.topic,
        args.acks,
        args.compression,
        args.rate.map_or("unlimited".to_string(), |r| format!("{r}/s")),
        args.client
    );
}

pub(super) async fn run(command: BenchCommand) -> Result<()> {
    let (kind, args) = match &command {
        BenchCommand::Produce(a) => ("produce", a),
        BenchCommand::Consume(a) => ("consume", a),
        BenchCommand::E2e(a) => ("e2e", a),
    };
    if args.records == 0 {
        bail!("--records must be at least 1");
    }
    if kind == "e2e" && args.record_size < 8 {
        bail!("e2e needs --record-size of at least 8 (the send time travels in the value)");
    }
    if let Some(r) = args.rate {
        if !(r > 0.0 && r.is_finite()) {
            bail!("--rate {r}: give a positive number of records per second");
        }
    }
    compression(&args.compression)?;
    if args.client == Client::Wire && kind == "e2e" {
        bail!("--client wire measures produce and consume; use the sluice or rdkafka client for e2e");
    }
    let partitions = ensure_topic(args).await?;
    describe(kind, args, partitions);
    match args.client {
        Client::Sluice => match kind {
            "produce" => produce_bench(args, None).await.map(|_| ()),
            "consume" => consume_bench(args).await,
            _ => e2e_bench(args, partitions).await,
        },
        Client::Wire => super::bench_wire::run(kind, args).await,
        #[cfg(feature = "rdkafka")]
        Client::Rdkafka => super::bench_rdkafka::run(kind, args, partitions).await,
        #[cfg(not(feature = "rdkafka"))]
        Client::Rdkafka => {
            bail!("this sluice was built without librdkafka; rebuild with `cargo build --release --features rdkafka`")
        }
    }
}

/// Produces `--records` records; with `stamp`, each value starts with its send time and the
/// run starts only when `stamp` resolves (the consumer is ready).
async fn produce_bench(args: &BenchArgs, stamp: Option<tokio::sync::oneshot::Receiver<()>>) -> Result<Histogram<u64>> {
    let mut config = ProducerConfig::new(args.connect.bootstrap_server.clone());
    config.client = args.connect.client_config();
    config.client.allow_auto_topic_creation = false;
    config.acks = args.acks.parse::<Acks>()?;
    config.compression = compression(&args.compression)?;
    config.linger_ms = args.linger_ms;
    config.batch_size = args.batch_size;
    let producer = Producer::new(config).await?;
    producer.cluster().topic(&args.topic).await?;
    let stamped = stamp.is_some();
    if let Some(ready) = stamp {
        ready.await.context("the e2e consumer failed before it was ready")?;
    }
    let base = payload(args.record_size);
    let shared = Bytes::from(base.clone());

    // The collector awaits deliveries as they complete, so each latency is taken when its
    // acknowledgement arrives, whatever the order across partitions.
    type Pending = (Instant, sluice_client::DeliveryFuture);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Pending>(WINDOW);
    let total = args.records;
    let mut progress = Progress::new(bar(args, "produce"));
    let collector = tokio::spawn(async move {
        let mut h = histogram();
        let mut inflight = futures::stream::FuturesUnordered::new();
        let mut open = true;
        let mut done = 0u64;
        while open || !inflight.is_empty() {
            tokio::select! {
                next = rx.recv(), if open => match next {
                    Some((t0, fut)) => inflight.push(async move { (fut.await, t0) }),
                    None => open = false,
                },
                Some((result, t0)) = inflight.next(), if !inflight.is_empty() => {
                    result.context("delivering a record")?;
                    h.saturating_record(u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX));
                    done += 1;
                    progress.update(done);
                }
            }
        }
        progress.finish();
        anyhow::Ok((h, done))
    });

    let start = Instant::now();
    let tokio_start = tokio::time::Instant::now();
    for i in 0..total {
        if let Some(rate) = args.rate {
            tokio::time::sleep_until(tokio_start + Duration::from_secs_f64(i as f64 / rate)).await;
        }
        let value = if stamped {
            let mut v = base.clone();
            v[..8].copy_from_slice(&now_micros().to_be_bytes());
            Bytes::from(v)
        } else {
            shared.clone()
        };
        let t0 = Instant::now();
        let delivery = producer.send(ProducerRecord::new(&args.topic).value(value)).await?;
        if tx.send((t0, delivery)).await.is_err() {
            break; // the collector failed; its error is reported below
        }
    }
    drop(tx);
    producer.flush().await?;
    let (h, done) = collector.await.context("the delivery collector panicked")??;
    let elapsed = start.elapsed();
    producer.close().await?;
    if done != total {
        bail!("only {done} of {total} records were acknowledged");
    }
    summary("produce", total, total * args.record_size as u64, elapsed, &h);
    Ok(h)
}

fn consumer_config(args: &BenchArgs, reset: AutoOffsetReset) -> ConsumerConfig {
    let mut config = ConsumerConfig::new(args.connect.bootstrap_server.clone());
    config.client = args.connect.client_config();
    config.auto_offset_reset = reset;
    config.enable_auto_commit = false;
    config.max_poll_records = 10_000;
    config
}

async fn consume_bench(args: &BenchArgs) -> Result<()> {
    let mut consumer = Consumer::new(consumer_config(args, AutoOffsetReset::Earliest)).await?;
    let meta = consumer.cluster().topic(&args.topic).await?;
    let tps: Vec<TopicPartition> = (0..meta.num_partitions()).map(|p| TopicPartition::new(&args.topic, p)).collect();
    let ends = Admin::from_cluster(consumer.cluster().clone()).list_offsets(&tps, OffsetSpec::Latest).await?;
    let available: i64 = ends.values().map(|o| o.offset).sum();
    if available < i64::try_from(args.records).unwrap_or(i64::MAX) {
        bail!(
            "topic {} holds {available} records, fewer than --records {}; run `sluice bench produce --topic {} --records {}` first",
            args.topic,
            args.records,
            args.topic,
            args.records
        );
    }
    consumer.assign(tps).await?;
    let mut h = histogram();
    let mut progress = Progress::new(bar(args, "consume"));
    let (mut got, mut bytes) = (0u64, 0u64);
    // Throughput is counted from the end of the first poll that returned records (start-up,
    // ListOffsets and the first fetch excluded), over the records after it.
    let mut first: Option<(Instant, u64, u64)> = None;
    let whole = Instant::now();
    while got < args.records {
        let t0 = Instant::now();
        let records = consumer.poll(IDLE_TIMEOUT).await?;
        if records.is_empty() {
            bail!("no record for {IDLE_TIMEOUT:?} after {got} of {}", args.records);
        }
        h.saturating_record(u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX));
        for r in records.iter().take(usize::try_from(args.records - got).unwrap_or(usize::MAX)) {
            bytes += r.value.as_ref().map_or(0, |v| v.len() as u64) + r.key.as_ref().map_or(0, |k| k.len() as u64);
            got += 1;
        }
        first.get_or_insert((Instant::now(), got, bytes));
        progress.update(got);
    }
    let (start, got0, bytes0) = first.expect("at least one poll returned records");
    let elapsed = start.elapsed();
    progress.finish();
    consumer.close().await?;
    // All in the first poll: nothing after it to time; count the whole run instead.
    let (n, b, elapsed) =
        if got > got0 { (got - got0, bytes - bytes0, elapsed) } else { (got, bytes, whole.elapsed()) };
    println!("consume: read {got} records");
    summary("consume (per poll)", n, b, elapsed, &h);
    Ok(())
}

async fn e2e_bench(args: &BenchArgs, partitions: i32) -> Result<()> {
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let consumer_args = args.clone();
    let consumer = tokio::spawn(async move {
        let args = consumer_args;
        let mut consumer = Consumer::new(consumer_config(&args, AutoOffsetReset::Latest)).await?;
        let tps: Vec<TopicPartition> = (0..partitions).map(|p| TopicPartition::new(&args.topic, p)).collect();
        // assign resolves the end offsets before returning: nothing produced after is missed.
        consumer.assign(tps).await?;
        let _ = ready_tx.send(());
        let mut h = histogram();
        let mut got = 0u64;
        let start = Instant::now();
        while got < args.records {
            let records = consumer.poll(IDLE_TIMEOUT).await?;
            if records.is_empty() {
                bail!("e2e consumer: no record for {IDLE_TIMEOUT:?} after {got} of {}", args.records);
            }
            let now = now_micros();
            for r in &records {
                let Some(v) = r.value.as_deref().filter(|v| v.len() >= 8) else { continue };
                let sent = u64::from_be_bytes(v[..8].try_into().expect("8 bytes"));
                h.saturating_record(now.saturating_sub(sent).max(1));
                got += 1;
            }
        }
        let elapsed = start.elapsed();
        consumer.close().await?;
        anyhow::Ok((h, got, elapsed))
    });
    let produced = produce_bench(args, Some(ready_rx)).await;
    if produced.is_err() && !consumer.is_finished() {
        // The producer failed on its own: its error is the one to report.
        consumer.abort();
        return produced.map(|_| ());
    }
    let (h, got, elapsed) = consumer.await.context("the e2e consumer panicked")??;
    produced?;
    summary("e2e", got, got * args.record_size as u64, elapsed, &h);
    Ok(())
}
