//! A `kafka-consumer-perf-test`-style read through librdkafka (the `rdkafka` crate): assign
//! every partition of a topic from the beginning and read until `records` have arrived.
//!
//! ```sh
//! cargo run --release --example consume_perf -- 127.0.0.1:9092 perf 1000000
//! ```
//! Arguments: bootstrap, topic, records. Prints a summary line. No group: nothing committed.

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bootstrap = args.get(1).map_or("127.0.0.1:9092", String::as_str);
    let topic = args.get(2).map_or("perf", String::as_str);
    let records: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        // librdkafka wants a group id even for assign(); nothing is committed.
        .set("group.id", "consume-perf")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "1048576")
        .create()
        .expect("consumer");
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).expect("metadata");
    let partitions = metadata.topics()[0].partitions().len() as i32;
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment.add_partition_offset(topic, p, Offset::Beginning).expect("partition");
    }
    consumer.assign(&assignment).expect("assign");
    let start = Instant::now();
    let (mut count, mut bytes) = (0u64, 0u64);
    while count < records {
        match consumer.poll(Duration::from_secs(10)) {
            Some(Ok(m)) => {
                count += 1;
                bytes += m.payload().map_or(0, |p| p.len() as u64);
            }
            Some(Err(e)) => panic!("consume: {e}"),
            None => panic!("no record for 10 s after {count}"),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{count} records consumed in {secs:.2} s: {:.0} records/s, {:.1} MB/s ({partitions} partitions)",
        count as f64 / secs,
        bytes as f64 / secs / 1e6
    );
}
