//! The part of the "consumer" protocol's subscription the coordinator reads: its topics.
//!
//! **Invariants:** never panics on bad bytes; `None` when the bytes do not parse. Every version
//! of ConsumerProtocolSubscription (0-3) starts with `version: i16` and
//! `topics: [string]` (i32 count, then i16 length and UTF-8 bytes each), non-flexible.

/// The topics a member's subscription names, or `None` if it does not parse.
pub fn subscribed_topics(metadata: &[u8]) -> Option<Vec<String>> {
    let mut at = 2; // version
    let take = |at: &mut usize, n: usize| -> Option<&[u8]> {
        let bytes = metadata.get(*at..at.checked_add(n)?)?;
        *at += n;
        Some(bytes)
    };
    metadata.get(..2)?;
    let count = i32::from_be_bytes(take(&mut at, 4)?.try_into().ok()?);
    if count < 0 || count as usize > metadata.len() / 2 {
        return None;
    }
    let mut topics = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let len = i16::from_be_bytes(take(&mut at, 2)?.try_into().ok()?);
        let len = usize::try_from(len).ok()?;
        topics.push(String::from_utf8(take(&mut at, len)?.to_vec()).ok()?);
    }
    Some(topics)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscription(version: i16, topics: &[&str], tail: &[u8]) -> Vec<u8> {
        let mut b = version.to_be_bytes().to_vec();
        b.extend((topics.len() as i32).to_be_bytes());
        for t in topics {
            b.extend((t.len() as i16).to_be_bytes());
            b.extend(t.as_bytes());
        }
        b.extend(tail);
        b
    }

    #[test]
    fn reads_the_topics_of_every_version() {
        for version in 0..=3 {
            // user data, owned partitions and so on follow; they are not read.
            let bytes = subscription(version, &["orders", "payments"], &[0, 0, 0, 0, 0xff]);
            assert_eq!(subscribed_topics(&bytes), Some(vec!["orders".to_string(), "payments".to_string()]));
        }
    }

    #[test]
    fn bad_bytes_are_none_never_a_panic() {
        assert_eq!(subscribed_topics(&[]), None);
        assert_eq!(subscribed_topics(&[0, 1, 0x7f, 0xff, 0xff, 0xff]), None);
        assert_eq!(subscribed_topics(&[0, 1, 0, 0, 0, 1, 0, 9, b'a']), None);
        assert_eq!(subscribed_topics(&[0, 1, 0, 0, 0, 1, 0xff, 0xff]), None);
        let full = subscription(1, &["abc"], &[]);
        for cut in 0..full.len() {
            assert_eq!(subscribed_topics(&full[..cut]), None, "cut at {cut}");
        }
    }
}
