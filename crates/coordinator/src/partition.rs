//! Which `__consumer_offsets` partition coordinates a group (G1).
//!
//! **Invariants:** pure arithmetic, identical to Kafka's `GroupCoordinatorService.partitionFor`
//! so that a sharded Sluice would place groups where Kafka does.

/// `offsets.topic.num.partitions` default.
pub const OFFSETS_TOPIC_PARTITIONS_DEFAULT: i32 = 50;

/// Java's `String.hashCode`: Σ s[i]·31^(n-1-i) over UTF-16 code units, wrapping i32.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0_i32, |hash, unit| hash.wrapping_mul(31).wrapping_add(i32::from(unit)))
}

/// `abs(hashCode(group_id)) % partitions`, with Kafka's `Utils.abs(i32::MIN) == 0`.
pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
    assert!(partitions > 0, "the offsets topic has at least one partition");
    let hash = java_string_hash(group_id);
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g1_vectors() {
        assert_eq!(java_string_hash("my-group"), -1_906_497_762);
        for (group, partition) in [("my-group", 12), ("group1", 40), ("a", 47)] {
            assert_eq!(partition_for(group, OFFSETS_TOPIC_PARTITIONS_DEFAULT), partition, "{group}");
        }
    }

    #[test]
    fn g1_utf16_and_min_value() {
        // A character outside the BMP counts as two UTF-16 code units.
        assert_eq!(java_string_hash("😀"), 0xD83D * 31 + 0xDE00);
        // "polygenelubricants" is the classic string whose Java hashCode is Integer.MIN_VALUE.
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        assert_eq!(partition_for("polygenelubricants", 50), 0);
    }
}
