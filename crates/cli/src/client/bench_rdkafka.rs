//! `sluice bench ... --client rdkafka`: the same three benchmarks through librdkafka (the
//! `rdkafka` crate), for comparing the Sluice client with the reference C client on the same
//! broker. Built only with `--features rdkafka`.
//!
//! The settings mirror the Sluice client's: `linger.ms`, `batch.size`, `acks` and
//! `compression.type` from the command line, idempotence on exactly when acks is all (the Sluice
//! producer's default), and the same payload and latency definitions as `bench`. One empty
//! warm-up record is produced (and acknowledged) before a produce or e2e run starts its clock.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures::StreamExt;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::bench::{histogram, now_micros, payload, summary, BenchArgs, Progress};

const IDLE_TIMEOUT: Duration = Duration::from_secs(15);

fn base(args: &BenchArgs) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &args.connect.bootstrap_server)
        .set("client.id", "sluice-bench-rdkafka")
        .set("socket.timeout.ms", args.connect.request_timeout_ms.to_string());
    c
}

pub(super) async fn run(kind: &str, args: &BenchArgs, partitions: i32) -> Result<()> {
    match kind {
        "produce" => produce(args, false, None).await,
        "consume" => {
            let args = args.clone();
            tokio::task::spawn_blocking(move || consume(&args)).await.context("the consumer thread panicked")?
        }
        _ => {
            let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
            let consumer_args = args.clone();
            let consumer = tokio::task::spawn_blocking(move || e2e_consumer(&consumer_args, partitions, ready_tx));
            let produced = produce(args, true, Some(ready_rx)).await;
            let consumed = consumer.await.context("the e2e consumer thread panicked")?;
            let (h, got, elapsed) = consumed?;
            produced?;
            summary("e2e", got, got * args.record_size as u64, elapsed, &h);
            Ok(())
        }
    }
}

async fn produce(args: &BenchArgs, stamped: bool, ready: Option<tokio::sync::oneshot::Receiver<()>>) -> Result<()> {
    let mut config = base(args);
    let acks = if args.acks == "all" { "-1" } else { args.acks.as_str() };
    config
        .set("acks", acks)
        .set("enable.idempotence", if acks == "-1" { "true" } else { "false" })
        .set("linger.ms", args.linger_ms.to_string())
        .set("batch.size", args.batch_size.to_string())
        .set("compression.type", &args.compression)
        .set("queue.buffering.max.messages", "1000000")
        .set("message.timeout.ms", "120000");
    let producer: FutureProducer = config.create().context("creating the librdkafka producer")?;
    // The Sluice producer is connected, has the topic's metadata and its producer id when it
    // is created; librdkafka gets them in the background. One empty record, acknowledged
    // before the clock starts, brings it to the same state (the e2e consumer ignores it: its
    // value is shorter than a send time).
    match producer.send(FutureRecord::<(), [u8]>::to(&args.topic).payload(&[][..]), Duration::from_secs(30)).await {
        Ok(_) => {}
        Err((e, _)) => bail!("warm-up record not delivered: {e}"),
    }
    if let Some(ready) = ready {
        ready.await.context("the e2e consumer failed before it was ready")?;
    }
    let base_value = payload(args.record_size);
    let total = args.records;
    type Pending = (Instant, rdkafka::producer::DeliveryFuture);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Pending>(100_000);
    let mut progress = Progress::new(super::bench::bar(args, "produce"));
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
                    match result {
                        Ok(Ok(_)) => {}
                        Ok(Err((e, _))) => bail!("delivering a record: {e}"),
                        Err(_) => bail!("librdkafka dropped a delivery report"),
                    }
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
    let mut value = base_value.clone();
    for i in 0..total {
        if let Some(rate) = args.rate {
            tokio::time::sleep_until(tokio_start + Duration::from_secs_f64(i as f64 / rate)).await;
        }
        if stamped {
            value[..8].copy_from_slice(&now_micros().to_be_bytes());
        }
        let t0 = Instant::now();
        let delivery = loop {
            match producer.send_result::<(), [u8]>(FutureRecord::to(&args.topic).payload(&value[..])) {
                Ok(d) => break d,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err((e, _)) => bail!("librdkafka refused a record: {e}"),
            }
        };
        if tx.send((t0, delivery)).await.is_err() {
            break;
        }
    }
    drop(tx);
    let (h, done) = collector.await.context("the delivery collector panicked")??;
    let elapsed = start.elapsed();
    producer.flush(Duration::from_secs(30)).context("flushing the librdkafka producer")?;
    if done != total {
        bail!("only {done} of {total} records were acknowledged");
    }
    summary("produce", total, total * args.record_size as u64, elapsed, &h);
    Ok(())
}

fn consumer(args: &BenchArgs) -> Result<BaseConsumer> {
    let mut config = base(args);
    config
        .set("group.id", "sluice-bench-rdkafka")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "100");
    config.create().context("creating the librdkafka consumer")
}

fn consume(args: &BenchArgs) -> Result<()> {
    let c = consumer(args)?;
    let md = c.fetch_metadata(Some(&args.topic), Duration::from_secs(30))?;
    let n = md.topics().first().map_or(0, |t| t.partitions().len());
    let mut tpl = TopicPartitionList::new();
    for p in 0..n {
        tpl.add_partition_offset(&args.topic, i32::try_from(p)?, Offset::Beginning)?;
    }
    c.assign(&tpl)?;
    let mut h = histogram();
    let mut progress = Progress::new(super::bench::bar(args, "consume"));
    let (mut got, mut bytes) = (0u64, 0u64);
    // As in `bench`: throughput from the first record on (librdkafka's poll returns one).
    let mut first: Option<(Instant, u64, u64)> = None;
    let whole = Instant::now();
    while got < args.records {
        let t0 = Instant::now();
        match c.poll(IDLE_TIMEOUT) {
            None => bail!("no record for {IDLE_TIMEOUT:?} after {got} of {}", args.records),
            Some(Err(e)) => bail!("consuming: {e}"),
            Some(Ok(m)) => {
                h.saturating_record(u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX).max(1));
                bytes += m.payload().map_or(0, |v| v.len() as u64);
                got += 1;
            }
        }
        first.get_or_insert((Instant::now(), got, bytes));
        progress.update(got);
    }
    let (start, got0, bytes0) = first.expect("at least one record");
    let elapsed = start.elapsed();
    progress.finish();
    // All in the first poll: nothing after it to time; count the whole run instead.
    let (n, b, elapsed) =
        if got > got0 { (got - got0, bytes - bytes0, elapsed) } else { (got, bytes, whole.elapsed()) };
    println!("consume: read {got} records");
    summary("consume (per poll)", n, b, elapsed, &h);
    Ok(())
}

fn e2e_consumer(
    args: &BenchArgs,
    partitions: i32,
    ready: tokio::sync::oneshot::Sender<()>,
) -> Result<(hdrhistogram::Histogram<u64>, u64, Duration)> {
    let c = consumer(args)?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        // Start at the current end, resolved now, so nothing produced after `ready` is missed.
        let (_, high) = c.fetch_watermarks(&args.topic, p, Duration::from_secs(30))?;
        tpl.add_partition_offset(&args.topic, p, Offset::Offset(high))?;
    }
    c.assign(&tpl)?;
    let _ = ready.send(());
    let mut h = histogram();
    let mut got = 0u64;
    let start = Instant::now();
    while got < args.records {
        match c.poll(IDLE_TIMEOUT) {
            None => bail!("e2e consumer: no record for {IDLE_TIMEOUT:?} after {got} of {}", args.records),
            Some(Err(e)) => bail!("e2e consumer: {e}"),
            Some(Ok(m)) => {
                let now = now_micros();
                if let Some(v) = m.payload().filter(|v| v.len() >= 8) {
                    let sent = u64::from_be_bytes(v[..8].try_into().expect("8 bytes"));
                    h.saturating_record(now.saturating_sub(sent).max(1));
                    got += 1;
                }
            }
        }
    }
    Ok((h, got, start.elapsed()))
}
