//! Zigzag varints, as Kafka's records use them (protobuf `sint32` / `sint64`).
//!
//! Zigzag maps signed to unsigned so that small magnitudes stay short: 0→`00`, -1→`01`,
//! 1→`02`, 64→`80 01`, 300→`d8 04`. Then 7 bits per byte, least significant group first, the
//! high bit set on every byte but the last.
//!
//! Invariants:
//! - A varint is at most [`VARINT_BYTES_MAX`] bytes and a varlong at most
//!   [`VARLONG_BYTES_MAX`]; longer encodings, and encodings whose value does not fit the type,
//!   are errors rather than silently truncated (Kafka's reader drops the excess bits; our
//!   encoder never produces such bytes, so refusing them loses nothing).
//! - Readers never panic on any input; they return `None` when the bytes end or are invalid.

/// The longest encoding of a 32-bit varint.
pub const VARINT_BYTES_MAX: usize = 5;
/// The longest encoding of a 64-bit varlong.
pub const VARLONG_BYTES_MAX: usize = 10;

/// Reads an unsigned LEB128 value of at most `bytes_max` bytes whose value fits `value_bits`.
/// Returns the value and the number of bytes read.
fn read_unsigned(bytes: &[u8], bytes_max: usize, value_bits: u32) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    for (i, &byte) in bytes.iter().take(bytes_max).enumerate() {
        let group = u64::from(byte & 0x7f);
        let shift = 7 * i as u32;
        // The last permitted byte may only carry the bits that are left.
        if shift + 7 > value_bits && group >> (value_bits - shift) != 0 {
            return None;
        }
        value |= group << shift;
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Reads a zigzag varint (i32). Returns the value and its length in bytes.
pub fn read_varint(bytes: &[u8]) -> Option<(i32, usize)> {
    let (raw, len) = read_unsigned(bytes, VARINT_BYTES_MAX, 32)?;
    let raw = raw as u32;
    Some((((raw >> 1) as i32) ^ -((raw & 1) as i32), len))
}

/// Reads a zigzag varlong (i64). Returns the value and its length in bytes.
pub fn read_varlong(bytes: &[u8]) -> Option<(i64, usize)> {
    let (raw, len) = read_unsigned(bytes, VARLONG_BYTES_MAX, 64)?;
    Some((((raw >> 1) as i64) ^ -((raw & 1) as i64), len))
}

fn write_unsigned(out: &mut Vec<u8>, mut raw: u64) {
    while raw >= 0x80 {
        out.push((raw as u8 & 0x7f) | 0x80);
        raw >>= 7;
    }
    out.push(raw as u8);
}

/// Appends `value` as a zigzag varint.
pub fn write_varint(out: &mut Vec<u8>, value: i32) {
    write_unsigned(out, u64::from(((value << 1) ^ (value >> 31)) as u32));
}

/// Appends `value` as a zigzag varlong.
pub fn write_varlong(out: &mut Vec<u8>, value: i64) {
    write_unsigned(out, ((value << 1) ^ (value >> 63)) as u64);
}

/// The encoded length of `value` as a zigzag varint.
pub fn varint_len(value: i32) -> usize {
    let raw = ((value << 1) ^ (value >> 31)) as u32;
    (32 - raw.leading_zeros()).max(1).div_ceil(7) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `vectors/record-batches.txt`: zigzag varint(value) = bytes.
    const VECTORS: &[(i32, &[u8])] = &[
        (0, &[0x00]),
        (1, &[0x02]),
        (-1, &[0x01]),
        (2, &[0x04]),
        (-2, &[0x03]),
        (63, &[0x7e]),
        (-64, &[0x7f]),
        (64, &[0x80, 0x01]),
        (300, &[0xd8, 0x04]),
        (-300, &[0xd7, 0x04]),
    ];

    #[test]
    fn golden_varints_encode_and_decode() {
        for &(value, bytes) in VECTORS {
            let mut out = Vec::new();
            write_varint(&mut out, value);
            assert_eq!(out, bytes, "encode {value}");
            assert_eq!(varint_len(value), bytes.len(), "len {value}");
            assert_eq!(read_varint(bytes), Some((value, bytes.len())), "decode {value}");
            let mut long = Vec::new();
            write_varlong(&mut long, i64::from(value));
            assert_eq!(long, bytes, "varlong encode {value}");
            assert_eq!(read_varlong(bytes), Some((i64::from(value), bytes.len())));
        }
    }

    #[test]
    fn extremes_round_trip() {
        for value in [i32::MIN, i32::MAX, i32::MIN + 1, i32::MAX - 1] {
            let mut out = Vec::new();
            write_varint(&mut out, value);
            assert_eq!(out.len(), VARINT_BYTES_MAX);
            assert_eq!(varint_len(value), VARINT_BYTES_MAX);
            assert_eq!(read_varint(&out), Some((value, out.len())));
        }
        for value in [i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            write_varlong(&mut out, value);
            assert_eq!(out.len(), VARLONG_BYTES_MAX);
            assert_eq!(read_varlong(&out), Some((value, out.len())));
        }
    }

    #[test]
    fn invalid_encodings_are_refused() {
        // Ends mid-varint.
        assert_eq!(read_varint(&[]), None);
        assert_eq!(read_varint(&[0x80]), None);
        // Six bytes for an i32.
        assert_eq!(read_varint(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00]), None);
        // Five bytes whose last carries bits beyond 32.
        assert_eq!(read_varint(&[0xff, 0xff, 0xff, 0xff, 0x1f]), None);
        assert_eq!(read_varint(&[0xff, 0xff, 0xff, 0xff, 0x0f]), Some((i32::MIN, 5)));
        // Eleven bytes for an i64, and a tenth byte beyond 64 bits.
        assert_eq!(read_varlong(&[0x80; 11]), None);
        let mut too_big = vec![0xff; 9];
        too_big.push(0x02);
        assert_eq!(read_varlong(&too_big), None);
    }
}
