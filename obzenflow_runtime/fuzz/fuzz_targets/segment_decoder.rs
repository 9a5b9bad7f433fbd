//! Fuzzes the disk journal's segment decoding: frames (`[u32 length][u32 CRC32][body]`), their
//! checks, and the record body codec, through `journal::decode_segment_bytes`.
//!
//! Every input is decoded twice: as it is, which exercises the frame header, length and
//! checksum checks, and with each frame's checksum made right, because the fuzzer could hardly
//! guess a CRC32 and its mutations would otherwise never reach the body codec. Errors are fine;
//! a panic, or a decoder that breaks one of the invariants asserted below, is a finding.

#![no_main]

use libfuzzer_sys::fuzz_target;
use obzenflow_runtime::journal::frame::{self, FrameHeader, FRAME_HEADER_LEN};
use obzenflow_runtime::journal::{codec, decode_segment_bytes};

fuzz_target!(|bytes: &[u8]| {
    check_segment(bytes);
    let mut sealed = bytes.to_vec();
    seal_checksums(&mut sealed);
    check_segment(&sealed);
    // The bytes as a single body too, without any framing in front.
    let _ = codec::decode_batch(bytes, &mut codec::NoForwards);
});

/// Decodes every frame (a batch of records) of `bytes` and checks what the decoder promises:
/// records in order, each of which encodes again into a frame that decodes to the same record;
/// then at most one damaged frame, at the offset where the last good frame ends; then nothing.
fn check_segment(bytes: &[u8]) {
    let mut frames = decode_segment_bytes(bytes);
    let mut frame_start = 0;
    while let Some(decoded) = frames.next() {
        match decoded {
            Ok(event) => {
                let mut again = Vec::new();
                frame::encode_frame(&event, &mut again).expect("a decoded record encodes");
                let (redecoded, length) =
                    frame::decode_frame(&again).expect("a re-encoded record decodes");
                assert_eq!(redecoded, event);
                assert_eq!(length, again.len());
                // Records of one frame share its offset; the next frame starts further on.
                assert!(frames.offset() >= frame_start);
                assert!(frames.offset() <= bytes.len() as u64);
                frame_start = frames.offset();
            }
            Err(damage) => {
                assert_eq!(damage.offset, frame_start);
                assert_eq!(frames.offset(), frame_start);
                assert!(damage.offset < bytes.len() as u64);
            }
        }
    }
    assert!(frames.next().is_none(), "the decoder is fused");
}

/// Overwrites the checksum of every frame whose body fits in `bytes` with the right one.
fn seal_checksums(bytes: &mut [u8]) {
    let mut offset = 0;
    while let Some(header) = bytes
        .get(offset..)
        .and_then(|rest| rest.first_chunk::<FRAME_HEADER_LEN>())
    {
        let header = FrameHeader::parse(*header);
        let body_start = offset + FRAME_HEADER_LEN;
        let body_end = body_start.saturating_add(header.body_len as usize);
        let Some(body) = bytes.get(body_start..body_end) else {
            return;
        };
        let crc = crc32fast::hash(body);
        bytes[offset + 4..body_start].copy_from_slice(&crc.to_le_bytes());
        offset = body_end;
    }
}
