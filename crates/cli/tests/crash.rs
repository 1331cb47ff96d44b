//! Durability and recovery: every record acknowledged with acks=all survives `kill -9` at the
//! same offset with the same value; a torn or corrupt log tail is cut off on restart; SIGTERM
//! is a clean shutdown.

mod common;

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use common::*;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{
    BaseRecord, FutureProducer, FutureRecord, Producer, ProducerContext, PurgeConfig, ThreadedProducer,
};
use rdkafka::util::Timeout;

const PARTITIONS: i32 = 3;

/// One acknowledged record.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Ack {
    partition: i32,
    offset: i64,
    value: Vec<u8>,
}

/// Records every successful delivery report and wakes waiters on each one.
#[derive(Clone, Default)]
struct AckLog {
    acks: Arc<(Mutex<Vec<Ack>>, Condvar)>,
}

impl ClientContext for AckLog {}

impl ProducerContext for AckLog {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        // Failed deliveries (including those purged after the kill) are not acknowledged and
        // promise nothing.
        if let Ok(m) = result {
            let (lock, cvar) = &*self.acks;
            lock.lock().unwrap().push(Ack {
                partition: m.partition(),
                offset: m.offset(),
                value: m.payload().expect("payload").to_vec(),
            });
            cvar.notify_all();
        }
    }
}

impl AckLog {
    /// Blocks until at least `count` deliveries were acknowledged.
    fn wait_for(&self, count: usize, timeout: Duration) {
        let (lock, cvar) = &*self.acks;
        let guard = lock.lock().unwrap();
        let (guard, res) = cvar.wait_timeout_while(guard, timeout, |acks| acks.len() < count).unwrap();
        assert!(!res.timed_out(), "only {} of {count} records acknowledged within {timeout:?}", guard.len());
    }

    fn take(&self) -> Vec<Ack> {
        std::mem::take(&mut *self.acks.0.lock().unwrap())
    }
}

/// A value that names its cycle and sequence number, padded with bytes derived from both so a
/// record moved or damaged on disk cannot match another's value.
fn value(cycle: u32, seq: u64) -> Vec<u8> {
    let mut v = format!("c{cycle}-s{seq:09}-").into_bytes();
    let len = 100 + (seq % 400) as usize;
    v.extend((0..len).map(|i| b'a' + ((seq as usize + i * 7 + cycle as usize) % 26) as u8));
    v
}

/// Produces with acks=all from a sender thread until stopped, kills the broker with SIGKILL
/// after `kill_after` acknowledgements while the sends continue, and returns every record
/// acknowledged before the producer gave up.
fn produce_and_kill(broker: &mut Broker, topic: &str, cycle: u32, kill_after: usize) -> Vec<Ack> {
    let log = AckLog::default();
    let producer: ThreadedProducer<AckLog> = producer_config(broker, "all")
        .set("linger.ms", "2")
        .set("batch.num.messages", "200")
        .set("max.in.flight.requests.per.connection", "5")
        .set("queue.buffering.max.messages", "20000")
        .set("message.timeout.ms", "60000")
        .create_with_context(log.clone())
        .expect("producer");
    let producer = Arc::new(producer);
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let producer = Arc::clone(&producer);
        let stop = Arc::clone(&stop);
        let topic = topic.to_string();
        std::thread::spawn(move || {
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let v = value(cycle, seq);
                let partition = (seq % PARTITIONS as u64) as i32;
                let record = BaseRecord::<(), [u8]>::to(&topic).partition(partition).payload(&v[..]);
                match producer.send(record) {
                    Ok(()) => seq += 1,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        // Back-pressure: the local queue drains as the broker acknowledges.
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err((e, _)) => panic!("enqueue: {e}"),
                }
            }
            seq
        })
    };

    log.wait_for(kill_after, Duration::from_secs(120));
    let unacknowledged_at_kill = producer.in_flight_count();
    broker.kill9();
    // Keep sending for a moment against the dead broker, then give up on everything pending.
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let sent = sender.join().expect("sender thread");
    producer.purge(PurgeConfig::default().queue().inflight());
    let _ = producer.flush(Duration::from_secs(10));
    drop(producer);
    let acks = log.take();
    eprintln!(
        "cycle {cycle}: killed with {unacknowledged_at_kill} records unacknowledged; {} of {sent} sent were \
         acknowledged",
        acks.len()
    );
    assert!(acks.len() >= kill_after, "acks were lost from the log");
    assert!(
        (acks.len() as u64) < sent,
        "cycle {cycle}: all {sent} sends were acknowledged: the kill did not happen mid-stream"
    );
    acks
}

/// Verifies that every acknowledged record is in the log at its offset with its value, that
/// each partition's offsets run 0.. without gaps, and that acknowledged records keep their
/// send order.
fn verify(broker: &Broker, topic: &str, acks: &[Ack]) {
    let mut by_partition: BTreeMap<i32, Vec<&Ack>> = BTreeMap::new();
    for a in acks {
        by_partition.entry(a.partition).or_default().push(a);
    }
    for partition in 0..PARTITIONS {
        let recs = consume_all(broker, topic, partition);
        for (i, r) in recs.iter().enumerate() {
            assert_eq!(r.offset, i as i64, "offsets of {topic}/{partition} have a gap");
        }
        let mut acked = by_partition.remove(&partition).unwrap_or_default();
        assert!(!acked.is_empty(), "no acknowledged records in partition {partition}");
        acked.sort_by_key(|a| a.offset);
        for a in &acked {
            let rec = recs.get(a.offset as usize).unwrap_or_else(|| {
                panic!("acknowledged offset {}/{} lost: the log ends at {}", partition, a.offset, recs.len())
            });
            assert_eq!(
                rec.value.as_deref(),
                Some(&a.value[..]),
                "acknowledged record {}/{} has a different value after the crash",
                partition,
                a.offset
            );
        }
        for pair in acked.windows(2) {
            assert_ne!(pair[0].offset, pair[1].offset, "two acks for one offset");
            // Values start with "c{cycle}-s{seq:09}-", so byte order is send order.
            assert!(
                pair[0].value[..14] < pair[1].value[..14],
                "acknowledged records out of send order in partition {partition}: offset {} \
                 holds {}, offset {} holds {}",
                pair[0].offset,
                String::from_utf8_lossy(&pair[0].value[..14]),
                pair[1].offset,
                String::from_utf8_lossy(&pair[1].value[..14]),
            );
        }
    }
}

fn crash_cycles(durability: &str) {
    let mut broker = Broker::start_with(&["--durability", durability]);
    let topic = unique_topic("crash");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(create_topic(&broker, &topic, PARTITIONS, &[]));
    let mut acks = Vec::new();
    for cycle in 0..3 {
        acks.extend(produce_and_kill(&mut broker, &topic, cycle, 10_000));
        broker.start_again();
        wait_for_partitions(&broker, &topic, PARTITIONS as usize);
        verify(&broker, &topic, &acks);
    }
    // The log continues after the recovered end: nothing acknowledged is overwritten.
    let consumer: BaseConsumer = consumer_config(&broker).create().expect("consumer");
    let (_, high) = watermarks(&consumer, &topic, 0);
    let producer: FutureProducer = producer_config(&broker, "all").create().expect("producer");
    let d = rt
        .block_on(
            producer
                .send(FutureRecord::<(), str>::to(&topic).partition(0).payload("after"), Timeout::After(OP_TIMEOUT)),
        )
        .expect("produce after recovery");
    assert_eq!(d.offset, high, "first offset after recovery");
    verify(&broker, &topic, &acks);
}

#[test]
fn acknowledged_records_survive_kill9_fsync() {
    crash_cycles("fsync");
}

#[test]
fn acknowledged_records_survive_kill9_page_cache() {
    // A SIGKILL leaves the page cache intact, so acknowledging after write(2) is enough here.
    crash_cycles("page-cache");
}

async fn produce_sequentially(broker: &Broker, topic: &str, count: usize) -> Vec<Vec<u8>> {
    let producer: FutureProducer = producer_config(broker, "all").create().expect("producer");
    let mut values = Vec::new();
    for i in 0..count {
        let v = value(9, i as u64);
        // Awaiting each send makes each record its own batch.
        let d = producer
            .send(FutureRecord::<(), [u8]>::to(topic).partition(0).payload(&v[..]), Timeout::After(OP_TIMEOUT))
            .await
            .unwrap_or_else(|(e, _)| panic!("produce: {e}"));
        assert_eq!(d.offset, i as i64);
        values.push(v);
    }
    values
}

fn files_with_extension(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            files_with_extension(&path, ext, out);
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
}

/// The newest segment file of partition 0 of `topic`: the last `*.log` (by name) in a
/// directory whose name contains `{topic}-0`.
fn active_segment(data_dir: &Path, topic: &str) -> PathBuf {
    let mut logs = Vec::new();
    files_with_extension(data_dir, "log", &mut logs);
    let wanted = format!("{topic}-0");
    let mut segments: Vec<PathBuf> = logs
        .into_iter()
        .filter(|p| p.parent().and_then(|d| d.file_name()).is_some_and(|n| n.to_string_lossy().contains(&wanted)))
        .collect();
    segments.sort();
    segments.pop().unwrap_or_else(|| panic!("no segment for {wanted} under {}", data_dir.display()))
}

/// The byte range of the last record batch in a segment that is a concatenation of v2 batches.
fn last_batch(segment: &[u8]) -> std::ops::Range<usize> {
    let mut pos = 0usize;
    let mut last = None;
    while pos < segment.len() {
        assert!(pos + 12 <= segment.len(), "segment ends inside a batch header");
        let len = i32::from_be_bytes(segment[pos + 8..pos + 12].try_into().unwrap());
        assert!(len >= 49, "batch length {len} at byte {pos}");
        let end = pos + 12 + len as usize;
        assert!(end <= segment.len(), "segment ends inside a batch");
        assert_eq!(segment[pos + 16], 2, "magic of the batch at byte {pos}");
        last = Some(pos..end);
        pos = end;
    }
    last.expect("segment holds at least one batch")
}

#[derive(Clone, Copy, Debug)]
enum Damage {
    /// The first half of a batch: a write torn by the crash.
    TornBatch,
    /// A whole batch whose records no longer match its CRC.
    BadCrc,
}

async fn recovery_cuts_damaged_tail(damage: Damage) {
    let mut broker = Broker::start();
    let topic = unique_topic("damaged");
    create_topic(&broker, &topic, 1, &[]).await;
    let values = produce_sequentially(&broker, &topic, 10).await;
    broker.kill9();

    // Append a copy of the last batch, renumbered to follow it, then damage it.
    let path = active_segment(broker.data_dir(), &topic);
    let bytes = fs::read(&path).expect("read segment");
    let range = last_batch(&bytes);
    let mut copy = bytes[range.clone()].to_vec();
    let base = i64::from_be_bytes(copy[0..8].try_into().unwrap());
    let last_delta = i32::from_be_bytes(copy[23..27].try_into().unwrap());
    copy[0..8].copy_from_slice(&(base + i64::from(last_delta) + 1).to_be_bytes());
    match damage {
        Damage::TornBatch => copy.truncate(copy.len() / 2),
        Damage::BadCrc => {
            let last = copy.len() - 1;
            copy[last] ^= 0xff;
        }
    }
    OpenOptions::new().append(true).open(&path).expect("open segment").write_all(&copy).expect("append damage");

    broker.start_again();
    wait_for_partitions(&broker, &topic, 1);
    assert_eq!(
        fs::metadata(&path).expect("segment after recovery").len(),
        bytes.len() as u64,
        "{damage:?}: recovery must truncate the segment to the end of the last valid batch"
    );
    let consumer: BaseConsumer = consumer_config(&broker).create().expect("consumer");
    assert_eq!(watermarks(&consumer, &topic, 0), (0, 10), "{damage:?}: the damaged batch must not be visible");
    let got: Vec<Vec<u8>> = consume_all(&broker, &topic, 0).into_iter().map(|r| r.value.unwrap()).collect();
    assert_eq!(got, values, "{damage:?}");
    let producer: FutureProducer = producer_config(&broker, "all").create().expect("producer");
    let d = producer
        .send(FutureRecord::<(), str>::to(&topic).partition(0).payload("next"), Timeout::After(OP_TIMEOUT))
        .await
        .expect("produce after recovery");
    assert_eq!(d.offset, 10, "{damage:?}: appends continue at the recovered end");
    let recs = consume(&broker, &topic, 0, rdkafka::Offset::Offset(10), 1);
    assert_eq!(recs[0].value.as_deref(), Some(&b"next"[..]));
}

#[tokio::test]
async fn recovery_truncates_torn_batch() {
    recovery_cuts_damaged_tail(Damage::TornBatch).await;
}

#[tokio::test]
async fn recovery_truncates_batch_with_bad_crc() {
    recovery_cuts_damaged_tail(Damage::BadCrc).await;
}

#[tokio::test]
async fn sigterm_is_a_clean_shutdown() {
    let mut broker = Broker::start();
    let topic = unique_topic("sigterm");
    create_topic(&broker, &topic, 1, &[]).await;
    let values = produce_sequentially(&broker, &topic, 5).await;
    let status = broker.terminate();
    assert!(status.success(), "exit status after SIGTERM: {status}");
    broker.start_again();
    wait_for_partitions(&broker, &topic, 1);
    let got: Vec<Vec<u8>> = consume_all(&broker, &topic, 0).into_iter().map(|r| r.value.unwrap()).collect();
    assert_eq!(got, values);
    assert!(list_topics(&broker).contains(&topic), "topics survive a restart");
}

#[test]
fn data_dir_is_locked_while_a_broker_runs() {
    let broker = Broker::start();
    // A second broker on the same data directory must refuse to start rather than share it.
    let mut second = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(broker.data_dir())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run second broker");
    let deadline = Instant::now() + READY_TIMEOUT;
    let status = loop {
        if let Some(status) = second.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = second.kill();
            let _ = second.wait();
            panic!("a second broker on a locked data dir kept running");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut second.stdout.take().unwrap(), &mut stdout).expect("read stdout");
    assert!(!status.success(), "second broker exited with success");
    assert!(!stdout.contains("listening"), "second broker on a locked data dir became ready: {stdout}");
    let consumer: BaseConsumer = consumer_config(&broker).create().expect("consumer");
    consumer.fetch_metadata(None, OP_TIMEOUT).expect("first broker still serves");
}
