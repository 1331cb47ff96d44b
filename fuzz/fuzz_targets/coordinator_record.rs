//! Arbitrary bytes through the group coordinator's record decoder (what `__consumer_offsets-0`
//! replays at start) and the consumer-protocol subscription reader.
//!
//! Beyond "no panic, no allocation past the input", a record that decodes re-encodes to the
//! same bytes (the encoding is canonical), and replaying it never panics.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_coordinator::consumer_protocol::subscribed_topics;
use sluice_coordinator::{replay, Record, State};

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = Record::decode(data) {
        assert_eq!(record.encode().as_ref(), data, "canonical encoding");
        let mut state = State::default();
        replay(&mut state, &record);
    }
    if let Some(topics) = subscribed_topics(data) {
        assert!(topics.len() <= data.len() / 2);
    }
});
