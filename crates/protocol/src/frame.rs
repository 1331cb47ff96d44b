//! Frames: a big-endian i32 length, then that many bytes.

use crate::error::ProtocolError;

pub const FRAME_LENGTH_BYTES: usize = 4;

/// Reads the length prefix and checks it against `frame_bytes_max` before anything is
/// allocated for the frame (`socket.request.max.bytes`, default 100 MiB).
pub fn frame_length(prefix: [u8; 4], frame_bytes_max: usize) -> Result<usize, ProtocolError> {
    let length = i32::from_be_bytes(prefix);
    if length < 0 || length as usize > frame_bytes_max {
        return Err(ProtocolError::FrameLength { length: length as i64, max: frame_bytes_max });
    }
    Ok(length as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_and_absurd_lengths_are_refused() {
        assert!(frame_length((-1i32).to_be_bytes(), 100).is_err());
        assert!(frame_length(101i32.to_be_bytes(), 100).is_err());
        assert!(frame_length(i32::MAX.to_be_bytes(), 100 << 20).is_err());
        assert_eq!(frame_length(100i32.to_be_bytes(), 100), Ok(100));
        assert_eq!(frame_length(0i32.to_be_bytes(), 100), Ok(0));
    }
}
