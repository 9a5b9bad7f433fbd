//! Frames: `[u32 LE body length][u32 LE CRC32 of body][body]`, as pure functions; a body is
//! one batch of records (see [`super::codec`]).
//!
//! Segment files are sequences of frames. The length lets a reader skip a record without
//! decoding it; the CRC32 (IEEE) catches torn writes and bit rot before the body is decoded.

use obzenflow_core::{ChainEvent, CorruptionKind};

use super::codec::{self, BatchEncodeError, BatchEncoder, BatchHeader, Seal};

/// The size of a frame header: body length and checksum.
pub const FRAME_HEADER_LEN: usize = 8;

/// The largest body a frame may carry (1 GiB). Longer length fields are corruption.
pub const MAX_BODY_LEN: u32 = 1 << 30;

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The body length in bytes.
    pub body_len: u32,
    /// The CRC32 of the body.
    pub crc: u32,
}

impl FrameHeader {
    /// Parses a header from its 8 bytes.
    pub fn parse(bytes: [u8; FRAME_HEADER_LEN]) -> Self {
        let [l0, l1, l2, l3, c0, c1, c2, c3] = bytes;
        Self {
            body_len: u32::from_le_bytes([l0, l1, l2, l3]),
            crc: u32::from_le_bytes([c0, c1, c2, c3]),
        }
    }

    /// Checks that the length field is possible: a body holds at least its version byte and
    /// at most [`MAX_BODY_LEN`] bytes.
    pub fn check_length(&self) -> Result<(), CorruptionKind> {
        if self.body_len == 0 || self.body_len > MAX_BODY_LEN {
            return Err(CorruptionKind::LengthOutOfRange {
                length: u64::from(self.body_len),
            });
        }
        Ok(())
    }

    /// The whole frame's length, header included.
    pub fn frame_len(&self) -> u64 {
        FRAME_HEADER_LEN as u64 + u64::from(self.body_len)
    }

    /// Checks `body` against the stored checksum.
    pub fn check_body(&self, body: &[u8]) -> Result<(), CorruptionKind> {
        let computed = crc32fast::hash(body);
        if computed != self.crc {
            return Err(CorruptionKind::ChecksumMismatch {
                stored: self.crc,
                computed,
            });
        }
        Ok(())
    }
}

/// Appends one complete frame holding the batch `events` (the first at sequence `first_seq`)
/// to `out`, the records `forwards` places written as references (see
/// [`BatchEncoder::encode_forwarding`]). An empty batch appends nothing.
///
/// On error `out` is left as it was.
pub fn encode_batch_frame<E: std::borrow::Borrow<ChainEvent>>(
    encoder: &mut BatchEncoder,
    first_seq: u64,
    events: &[E],
    forwards: &[Option<codec::ForwardRef<'_>>],
    out: &mut Vec<u8>,
) -> Result<(), FrameEncodeError> {
    if events.is_empty() {
        return Ok(());
    }
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_LEN]);
    if let Err(error) = encoder.encode_forwarding(first_seq, events, forwards, out) {
        out.truncate(start);
        return Err(FrameEncodeError::Encode(error));
    }
    let body_start = start + FRAME_HEADER_LEN;
    let body_len = out.len() - body_start;
    let body_len = match u32::try_from(body_len) {
        Ok(length) if length <= MAX_BODY_LEN => length,
        _ => {
            out.truncate(start);
            return Err(FrameEncodeError::TooLarge {
                bytes: body_len as u64,
            });
        }
    };
    fill_header(out, start, body_len);
    Ok(())
}

/// Writes the length and checksum of the body that follows the header at `start`.
fn fill_header(out: &mut [u8], start: usize, body_len: u32) {
    let body_start = start + FRAME_HEADER_LEN;
    let crc = crc32fast::hash(&out[body_start..]);
    out[start..start + 4].copy_from_slice(&body_len.to_le_bytes());
    out[start + 4..body_start].copy_from_slice(&crc.to_le_bytes());
}

/// Appends the seal frame of a journal (see [`codec::encode_seal`]) to `out`.
pub fn encode_seal_frame(seal: &Seal, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_LEN]);
    codec::encode_seal(seal, out);
    // A seal is a few dozen bytes.
    let body_len = (out.len() - start - FRAME_HEADER_LEN) as u32;
    fill_header(out, start, body_len);
}

/// The header of the frame starting at `start` in `bytes`, which must hold it.
pub(crate) fn header_at(bytes: &[u8], start: usize) -> FrameHeader {
    let mut header = [0; FRAME_HEADER_LEN];
    header.copy_from_slice(&bytes[start..start + FRAME_HEADER_LEN]);
    FrameHeader::parse(header)
}

/// Appends one complete frame holding `event` alone, at sequence 0 (tests and tools).
pub fn encode_frame(event: &ChainEvent, out: &mut Vec<u8>) -> Result<(), FrameEncodeError> {
    encode_batch_frame(
        &mut BatchEncoder::new(),
        0,
        std::slice::from_ref(event),
        &[],
        out,
    )
}

/// A frame could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameEncodeError {
    /// A record's payload could not be encoded.
    #[error(transparent)]
    Encode(#[from] BatchEncodeError),
    /// The encoded batch does not fit a frame.
    #[error("the encoded batch of {bytes} bytes is larger than the 1 GiB frame limit")]
    TooLarge {
        /// The body's size.
        bytes: u64,
    },
}

/// Decodes the frame at the start of `bytes`; returns its batch and the frame's length.
///
/// A frame that does not fit in `bytes` is [`CorruptionKind::Truncated`]. Never panics.
pub fn decode_batch_frame(
    bytes: &[u8],
) -> Result<((BatchHeader, Vec<ChainEvent>), usize), CorruptionKind> {
    let Some(header_bytes) = bytes.first_chunk::<FRAME_HEADER_LEN>() else {
        return Err(CorruptionKind::Truncated {
            missing: (FRAME_HEADER_LEN - bytes.len()) as u64,
        });
    };
    let header = FrameHeader::parse(*header_bytes);
    header.check_length()?;
    let frame_len = header.frame_len();
    let available = bytes.len() as u64;
    if frame_len > available {
        return Err(CorruptionKind::Truncated {
            missing: frame_len - available,
        });
    }
    // `frame_len` fits in `bytes`, so it fits in usize.
    let frame_len = frame_len as usize;
    let body = &bytes[FRAME_HEADER_LEN..frame_len];
    header.check_body(body)?;
    let batch = codec::decode_batch(body, &mut codec::NoForwards)?;
    Ok((batch, frame_len))
}

/// Decodes a frame holding one record at the start of `bytes` (tests and tools); returns the
/// event and the frame's length.
pub fn decode_frame(bytes: &[u8]) -> Result<(ChainEvent, usize), CorruptionKind> {
    let ((header, mut events), frame_len) = decode_batch_frame(bytes)?;
    match (header.count, events.pop()) {
        (1, Some(event)) => Ok((event, frame_len)),
        (count, _) => Err(CorruptionKind::Undecodable {
            reason: format!("expected one record, found {count}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn frames_round_trip_and_detect_damage() {
        let event = ChainEvent::data("order", json!({"id": 3}));
        let mut bytes = Vec::new();
        encode_frame(&event, &mut bytes).unwrap();
        let (decoded, length) = decode_frame(&bytes).unwrap();
        assert_eq!((decoded, length), (event, bytes.len()));

        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        assert!(matches!(
            decode_frame(&bytes),
            Err(CorruptionKind::ChecksumMismatch { .. })
        ));
        assert_eq!(
            decode_frame(&bytes[..5]),
            Err(CorruptionKind::Truncated { missing: 3 })
        );
        assert_eq!(
            decode_frame(&[0; 8]),
            Err(CorruptionKind::LengthOutOfRange { length: 0 })
        );
    }
}
