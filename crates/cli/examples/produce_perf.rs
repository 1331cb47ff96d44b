//! A `kafka-producer-perf-test`-style load through librdkafka (the `rdkafka` crate): fixed-size
//! records as fast as the producer goes, acknowledgements counted from delivery reports.
//!
//! ```sh
//! cargo run --release --example produce_perf -- 127.0.0.1:9092 perf 1000000 1024 all
//! ```
//! Arguments: bootstrap, topic, records, record bytes, acks. Prints progress every second and
//! a summary line. The full side-by-side benchmark with Kafka belongs under `bench/`.

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;

struct Counter {
    acked: std::sync::atomic::AtomicU64,
    failed: std::sync::atomic::AtomicU64,
}

impl ClientContext for Counter {}
impl ProducerContext for Counter {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let c = if result.is_ok() { &self.acked } else { &self.failed };
        c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bootstrap = args.get(1).map_or("127.0.0.1:9092", String::as_str);
    let topic = args.get(2).map_or("perf", String::as_str);
    let records: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let size: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(1024);
    let acks = args.get(5).map_or("all", String::as_str);
    let producer: BaseProducer<Counter> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", acks)
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("queue.buffering.max.messages", "1000000")
        .create_with_context(Counter { acked: 0.into(), failed: 0.into() })
        .expect("producer");
    let payload = vec![b'x'; size];
    let start = Instant::now();
    let mut last = Instant::now();
    let mut sent = 0u64;
    while sent < records {
        match producer.send(BaseRecord::<(), [u8]>::to(topic).payload(&payload)) {
            Ok(()) => sent += 1,
            Err((_, _)) => {
                producer.poll(Duration::from_millis(1));
            }
        }
        if sent.is_multiple_of(1024) {
            producer.poll(Duration::ZERO);
        }
        if last.elapsed() >= Duration::from_secs(1) {
            let acked = producer.context().acked.load(std::sync::atomic::Ordering::Relaxed);
            eprintln!("{acked} acknowledged, {:.0} records/s", acked as f64 / start.elapsed().as_secs_f64());
            last = Instant::now();
        }
    }
    producer.flush(Duration::from_secs(120)).expect("flush");
    let secs = start.elapsed().as_secs_f64();
    let acked = producer.context().acked.load(std::sync::atomic::Ordering::Relaxed);
    let failed = producer.context().failed.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "{acked} records acknowledged ({failed} failed) in {secs:.2} s: {:.0} records/s, {:.1} MB/s (acks={acks}, {size} B records)",
        acked as f64 / secs,
        acked as f64 * size as f64 / secs / 1e6
    );
}
