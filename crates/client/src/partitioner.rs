//! Choosing a partition for a record.
//!
//! - [`DefaultPartitioner`]: Kafka's Java client. A keyed record goes to
//!   `toPositive(murmur2(key)) % numPartitions`, so Sluice, Java and librdkafka (with
//!   `partitioner=murmur2_random`) put the same key on the same partition. A keyless record
//!   goes to the topic's current *sticky* partition, which changes after `batch_size` bytes have
//!   been sent to it (KIP-794, uniform sticky): batches fill up, and over time every partition
//!   gets the same share.
//! - [`RoundRobinPartitioner`]: every record (keyed or not) to the next partition in turn, as
//!   Java's `RoundRobinPartitioner`.
//! - [`Partitioner`]: the trait for custom ones.
//!
//! Partitions with a leader are preferred for keyless records (as in Java); keyed records
//! always hash over all partitions, so a key's partition does not move while a leader is away.

use std::collections::HashMap;
use std::sync::Mutex;

/// What a partitioner sees of a record and its topic.
#[derive(Debug, Clone, Copy)]
pub struct PartitionInput<'a> {
    pub topic: &'a str,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    /// Approximate encoded size of the record, for sticky partitioning.
    pub record_bytes: usize,
    /// Number of partitions of the topic; always at least 1.
    pub num_partitions: i32,
    /// Partitions that have a leader now, ascending; may be empty.
    pub available_partitions: &'a [i32],
}

/// Chooses the partition of a record. Implementations keep their own state behind `&self`.
pub trait Partitioner: Send + Sync {
    /// Returns a partition in `0..input.num_partitions`.
    fn partition(&self, input: &PartitionInput<'_>) -> i32;
}

/// Java's `Utils.murmur2`: 32-bit MurmurHash2 with seed `0x9747b28c`, little-endian words.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    // Java's length is an int; a key can't reach 2 GiB in a Kafka record.
    let length = data.len() as u32;
    let mut h: u32 = SEED ^ length;
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        let mut k = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = words.remainder();
    // Java's switch falls through from case 3 to case 1.
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Java's `Utils.toPositive`: clears the sign bit (not `abs`, which overflows on `i32::MIN`).
pub fn to_positive(n: i32) -> i32 {
    n & 0x7fff_ffff
}

/// The partition Kafka's default partitioner gives a keyed record.
pub fn partition_for_key(key: &[u8], num_partitions: i32) -> i32 {
    assert!(num_partitions > 0, "a topic has at least one partition");
    to_positive(murmur2(key)) % num_partitions
}

/// A small xorshift64* generator: the sticky partitioner needs cheap, not cryptographic,
/// randomness, and tests need to seed it.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn from_entropy() -> Rng {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x5eed);
        Rng(h.finish() | 1)
    }
    fn next_u32(&mut self) -> u32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
    }
    /// Uniform in `0..n` (n > 0), as Java's `toPositive(nextInt()) % n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next_u32() & 0x7fff_ffff) as usize % n
    }
}

#[derive(Debug)]
struct Sticky {
    partition: i32,
    produced_bytes: usize,
}

/// Kafka's default: murmur2 for keyed records, uniform sticky for keyless ones (KIP-794).
#[derive(Debug)]
pub struct DefaultPartitioner {
    /// Bytes sent to a sticky partition before switching (the producer's `batch_size`).
    sticky_batch_bytes: usize,
    state: Mutex<(Rng, HashMap<String, Sticky>)>,
}

impl DefaultPartitioner {
    pub fn new(sticky_batch_bytes: usize) -> DefaultPartitioner {
        Self::with_rng(sticky_batch_bytes, Rng::from_entropy())
    }

    /// Deterministic sticky choices, for tests.
    pub fn with_seed(sticky_batch_bytes: usize, seed: u64) -> DefaultPartitioner {
        Self::with_rng(sticky_batch_bytes, Rng(seed | 1))
    }

    fn with_rng(sticky_batch_bytes: usize, rng: Rng) -> DefaultPartitioner {
        DefaultPartitioner { sticky_batch_bytes: sticky_batch_bytes.max(1), state: Mutex::new((rng, HashMap::new())) }
    }
}

fn random_partition(rng: &mut Rng, input: &PartitionInput<'_>) -> i32 {
    if input.available_partitions.is_empty() {
        rng.below(input.num_partitions as usize) as i32
    } else {
        input.available_partitions[rng.below(input.available_partitions.len())]
    }
}

impl Partitioner for DefaultPartitioner {
    fn partition(&self, input: &PartitionInput<'_>) -> i32 {
        if let Some(key) = input.key {
            return partition_for_key(key, input.num_partitions);
        }
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (rng, topics) = &mut *guard;
        let sticky = topics
            .entry(input.topic.to_string())
            .or_insert_with(|| Sticky { partition: random_partition(rng, input), produced_bytes: 0 });
        // A partition that vanished (topic recreated smaller) or lost its leader is left at once.
        let usable = sticky.partition < input.num_partitions
            && (input.available_partitions.is_empty() || input.available_partitions.contains(&sticky.partition));
        if !usable {
            *sticky = Sticky { partition: random_partition(rng, input), produced_bytes: 0 };
        }
        let chosen = sticky.partition;
        sticky.produced_bytes += input.record_bytes;
        // Switch after the record that fills a batch, so each sticky run fills one batch.
        if sticky.produced_bytes >= self.sticky_batch_bytes {
            *sticky = Sticky { partition: random_partition(rng, input), produced_bytes: 0 };
        }
        chosen
    }
}

/// Every record to the next partition in turn (Java's `RoundRobinPartitioner`), preferring
/// partitions with a leader.
#[derive(Debug, Default)]
pub struct RoundRobinPartitioner {
    counters: Mutex<HashMap<String, u32>>,
}

impl RoundRobinPartitioner {
    pub fn new() -> RoundRobinPartitioner {
        RoundRobinPartitioner::default()
    }
}

impl Partitioner for RoundRobinPartitioner {
    fn partition(&self, input: &PartitionInput<'_>) -> i32 {
        let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        let counter = counters.entry(input.topic.to_string()).or_insert(0);
        let n = *counter;
        *counter = counter.wrapping_add(1);
        let n = (n & 0x7fff_ffff) as usize;
        if input.available_partitions.is_empty() {
            (n % input.num_partitions as usize) as i32
        } else {
            input.available_partitions[n % input.available_partitions.len()]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(
        topic: &'a str,
        key: Option<&'a [u8]>,
        n: i32,
        available: &'a [i32],
        bytes: usize,
    ) -> PartitionInput<'a> {
        PartitionInput {
            topic,
            key,
            value: None,
            record_bytes: bytes,
            num_partitions: n,
            available_partitions: available,
        }
    }

    #[test]
    fn murmur2_matches_every_vector() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/vectors/murmur2.json");
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
        let doc: serde_json::Value = serde_json::from_str(&text).expect("murmur2.json parses");
        let keys = doc["keys"].as_array().expect("keys array");
        assert!(keys.len() >= 10, "the vector file holds the cases");
        let mut checked = 0;
        for case in keys {
            let key = case["key_utf8"].as_str().expect("key_utf8").as_bytes();
            let hash = case["murmur2_i32"].as_i64().expect("murmur2_i32") as i32;
            assert_eq!(murmur2(key), hash, "murmur2({:?})", case["key_utf8"]);
            assert_eq!(i64::from(to_positive(hash)), case["to_positive"].as_i64().unwrap(), "toPositive {key:?}");
            for (n, want) in case["partition_for_n"].as_object().expect("partition_for_n") {
                let n: i32 = n.parse().expect("partition count");
                let want = want.as_i64().unwrap() as i32;
                assert_eq!(partition_for_key(key, n), want, "partition of {:?} among {n}", case["key_utf8"]);
                let p = DefaultPartitioner::new(16384);
                let all: Vec<i32> = (0..n).collect();
                assert_eq!(p.partition(&input("t", Some(key), n, &all, 10)), want);
                // Keyed records ignore availability: the key's partition never moves.
                assert_eq!(p.partition(&input("t", Some(key), n, &[], 10)), want);
                checked += 1;
            }
        }
        assert!(checked > 50, "checked {checked} (key, n) cases");
    }

    #[test]
    fn to_positive_is_not_abs() {
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(-1), i32::MAX);
        assert_eq!(to_positive(5), 5);
    }

    #[test]
    fn sticky_stays_until_a_batch_is_full_then_switches() {
        let p = DefaultPartitioner::with_seed(100, 7);
        let all: Vec<i32> = (0..6).collect();
        let first = p.partition(&input("t", None, 6, &all, 30));
        // 30 + 30 + 30 < 100: same partition; the fourth record reaches 120 and is still there.
        for _ in 0..3 {
            assert_eq!(p.partition(&input("t", None, 6, &all, 30)), first);
        }
        // Then a new sticky partition is chosen; runs of 4 records repeat.
        let mut runs = Vec::new();
        for _ in 0..50 {
            let q = p.partition(&input("t", None, 6, &all, 30));
            for _ in 0..3 {
                assert_eq!(p.partition(&input("t", None, 6, &all, 30)), q);
            }
            runs.push(q);
        }
        // Uniform over time: every partition is chosen at some point.
        for q in 0..6 {
            assert!(runs.contains(&q), "partition {q} never chosen in {runs:?}");
        }
    }

    #[test]
    fn sticky_is_per_topic_and_prefers_available_partitions() {
        let p = DefaultPartitioner::with_seed(1 << 20, 3);
        for _ in 0..20 {
            let q = p.partition(&input("a", None, 8, &[2, 5], 10));
            assert!(q == 2 || q == 5, "{q}");
        }
        // Losing the leader of the sticky partition moves the topic at once.
        let now = p.partition(&input("a", None, 8, &[2, 5], 10));
        let other = if now == 2 { 5 } else { 2 };
        assert_eq!(p.partition(&input("a", None, 8, &[other], 10)), other);
        // Another topic has its own sticky partition, within its own count.
        for _ in 0..20 {
            assert!(p.partition(&input("b", None, 3, &[], 10)) < 3);
        }
    }

    #[test]
    fn sticky_survives_a_shrunk_topic() {
        let p = DefaultPartitioner::with_seed(1 << 20, 11);
        let all: Vec<i32> = (0..50).collect();
        for _ in 0..5 {
            p.partition(&input("t", None, 50, &all, 1));
        }
        for _ in 0..20 {
            assert_eq!(p.partition(&input("t", None, 1, &[0], 1)), 0);
        }
    }

    #[test]
    fn round_robin_cycles_over_available_partitions_keyed_or_not() {
        let p = RoundRobinPartitioner::new();
        let all: Vec<i32> = (0..4).collect();
        let got: Vec<i32> =
            (0..8).map(|i| p.partition(&input("t", (i % 2 == 0).then_some(b"k".as_slice()), 4, &all, 1))).collect();
        assert_eq!(got, vec![0, 1, 2, 3, 0, 1, 2, 3]);
        let got: Vec<i32> = (0..4).map(|_| p.partition(&input("t", None, 4, &[1, 3], 1))).collect();
        assert_eq!(got, vec![1, 3, 1, 3]);
        // Per topic.
        assert_eq!(p.partition(&input("u", None, 4, &all, 1)), 0);
        // No available partition: over all of them.
        let got: Vec<i32> = (0..3).map(|_| p.partition(&input("v", None, 3, &[], 1))).collect();
        assert_eq!(got, vec![0, 1, 2]);
    }

    #[test]
    fn a_custom_partitioner_is_a_trait_object() {
        struct Last;
        impl Partitioner for Last {
            fn partition(&self, input: &PartitionInput<'_>) -> i32 {
                input.num_partitions - 1
            }
        }
        let p: Box<dyn Partitioner> = Box::new(Last);
        assert_eq!(p.partition(&input("t", None, 7, &[], 1)), 6);
    }
}
