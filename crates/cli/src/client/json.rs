//! The JSON form of a consumed record (`sluice consume --format json`): one object a line,
//!
//! `{"topic":"t","partition":0,"offset":5,"timestamp":1700000000000,"key":"k","value":"v","headers":[{"key":"h","value":"x"}]}`
//!
//! Keys, values and header values are JSON strings when they are valid UTF-8, `null` when
//! absent, and `{"base64":"..."}` (standard alphabet, padded) otherwise, so every byte string
//! round-trips and text stays readable.

use serde_json::{json, Value};
use sluice_client::ConsumerRecord;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A byte string as JSON (see the module doc).
pub fn bytes(b: Option<&[u8]>) -> Value {
    match b {
        None => Value::Null,
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => Value::String(s.to_string()),
            Err(_) => json!({ "base64": base64(b) }),
        },
    }
}

/// One record as a JSON object.
pub fn record(r: &ConsumerRecord) -> Value {
    json!({
        "topic": r.topic,
        "partition": r.partition,
        "offset": r.offset,
        "timestamp": r.timestamp,
        "key": bytes(r.key.as_deref()),
        "value": bytes(r.value.as_deref()),
        "headers": r.headers.iter().map(|(k, v)| json!({ "key": k, "value": bytes(v.as_deref()) })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, want) in
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("foobar", "Zm9vYmFy")]
        {
            assert_eq!(base64(input.as_bytes()), want);
        }
    }

    #[test]
    fn non_utf8_bytes_become_base64_objects() {
        assert_eq!(bytes(Some(b"text")), json!("text"));
        assert_eq!(bytes(None), Value::Null);
        assert_eq!(bytes(Some(&[0xff, 0x00])), json!({"base64": "/wA="}));
    }
}
