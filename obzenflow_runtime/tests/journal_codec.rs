//! Property tests of the record codec, the frame decoder and the segment decoders (in memory
//! and from a file): round trips are exact, no input (random bytes, truncations, flipped bytes,
//! random bodies behind right checksums) makes them panic, the records before a damaged frame
//! decode unchanged, and the damage is a typed error naming the damaged frame's offset.

mod journal_support;

use std::ops::Range;

use journal_support::{chain_event, open_disk, read_available, runtime, small_disk_config};
use obzenflow_core::{ChainEvent, CorruptionKind, Journal, JournalError};
use obzenflow_runtime::journal::frame::{FrameHeader, FRAME_HEADER_LEN};
use obzenflow_runtime::journal::{
    codec, decode_segment_bytes, frame, DamagedFrame, FrameError, SegmentReader, SyncScheduler,
};
use proptest::prelude::*;

fn encode(event: &ChainEvent) -> Vec<u8> {
    let mut body = Vec::new();
    codec::encode_into(event, &mut body).expect("encode");
    body
}

fn frames(events: &[ChainEvent]) -> Vec<u8> {
    framed(events).0
}

/// The frames of `events`, and the byte range of each frame.
fn framed(events: &[ChainEvent]) -> (Vec<u8>, Vec<Range<usize>>) {
    let mut bytes = Vec::new();
    let mut ranges = Vec::with_capacity(events.len());
    for event in events {
        let start = bytes.len();
        frame::encode_frame(event, &mut bytes).expect("encode frame");
        ranges.push(start..bytes.len());
    }
    (bytes, ranges)
}

/// Decodes every frame of `bytes` held in memory, until the first damaged one.
fn decode_frames(bytes: &[u8]) -> (Vec<ChainEvent>, Option<DamagedFrame>) {
    let mut events = Vec::new();
    for decoded in decode_segment_bytes(bytes) {
        match decoded {
            Ok(event) => events.push(event),
            Err(damage) => return (events, Some(damage)),
        }
    }
    (events, None)
}

/// Reads a segment file with [`SegmentReader`] until its end or the first error.
fn read_segment(path: &std::path::Path) -> (Vec<ChainEvent>, Option<FrameError>) {
    let mut reader = SegmentReader::open(path).expect("open segment");
    let mut events = Vec::new();
    loop {
        match reader.next_event() {
            Ok(Some(event)) => events.push(event),
            Ok(None) => return (events, None),
            Err(error) => return (events, Some(error)),
        }
    }
}

/// Overwrites the checksum of every frame whose body fits in `bytes` with the right one, so
/// that random bodies get past the checksum to the body codec.
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

/// What the in-memory decoder promises for any bytes: records whose frames follow each other,
/// each of which encodes and decodes again to itself; then at most one damaged frame, starting
/// where the last good frame ends; then nothing.
fn check_decoder_contract(bytes: &[u8]) -> Result<Vec<ChainEvent>, TestCaseError> {
    let mut decoder = decode_segment_bytes(bytes);
    let mut events = Vec::new();
    let mut frame_start = 0;
    while let Some(decoded) = decoder.next() {
        match decoded {
            Ok(event) => {
                prop_assert!(decoder.offset() > frame_start);
                prop_assert!(decoder.offset() <= bytes.len() as u64);
                frame_start = decoder.offset();
                let redecoded = codec::decode(&encode(&event));
                prop_assert_eq!(redecoded.as_ref(), Ok(&event));
                events.push(event);
            }
            Err(damage) => {
                prop_assert_eq!(damage.offset, frame_start);
                prop_assert_eq!(decoder.offset(), frame_start);
                prop_assert!(damage.offset < bytes.len() as u64);
            }
        }
    }
    prop_assert!(decoder.next().is_none(), "the decoder is fused");
    Ok(events)
}

/// What can happen to a segment on its way through a disk and back.
#[derive(Debug, Clone)]
enum Damage {
    /// The file ends at this byte.
    Truncate(prop::sample::Index),
    /// A burst of 1 to 4 bytes starting here is XORed with these non-zero masks: up to 32
    /// bits, which CRC32 always detects.
    Flip(prop::sample::Index, Vec<u8>),
    /// Bytes that are not a frame follow the last frame.
    Append(Vec<u8>),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        any::<prop::sample::Index>().prop_map(Damage::Truncate),
        (
            any::<prop::sample::Index>(),
            prop::collection::vec(1u8.., 1..=4)
        )
            .prop_map(|(at, masks)| Damage::Flip(at, masks)),
        prop::collection::vec(any::<u8>(), 1..64).prop_map(Damage::Append),
    ]
}

/// Applies `damage` to `bytes`; returns the offset of the first changed or missing byte.
fn apply(damage: &Damage, bytes: &mut Vec<u8>) -> usize {
    match damage {
        Damage::Truncate(cut) => {
            let cut = cut.index(bytes.len());
            bytes.truncate(cut);
            cut
        }
        Damage::Flip(at, masks) => {
            let at = at.index(bytes.len());
            for (byte, mask) in bytes[at..].iter_mut().zip(masks) {
                *byte ^= mask;
            }
            at
        }
        Damage::Append(garbage) => {
            let end = bytes.len();
            bytes.extend_from_slice(garbage);
            end
        }
    }
}

proptest! {
    #[test]
    fn events_round_trip_through_the_codec(event in chain_event()) {
        prop_assert_eq!(codec::decode(&encode(&event)), Ok(event));
    }

    #[test]
    fn random_bytes_never_panic_the_decoders(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = codec::decode(&bytes);
        let _ = frame::decode_frame(&bytes);
        // Behind each version this build reads, so that the codec reads past its first byte.
        for version in codec::OLDEST_FORMAT_VERSION..=codec::FORMAT_VERSION {
            let mut versioned = vec![version];
            versioned.extend(&bytes);
            let _ = codec::decode(&versioned);
            let _ = codec::decode_batch(&versioned, &mut codec::NoForwards);
        }
    }

    #[test]
    fn batches_round_trip_with_and_without_origins(
        events in prop::collection::vec(chain_event(), 1..12),
        first_seq in any::<u32>(),
    ) {
        // Origins come and go between records, files repeat and lines go back and forth:
        // each is written relative to the one before it in the batch.
        let mut body = Vec::new();
        codec::BatchEncoder::new()
            .encode(u64::from(first_seq), &events, &mut body)
            .expect("encode");
        let (header, decoded) = codec::decode_batch(&body, &mut codec::NoForwards)
            .expect("decode");
        prop_assert_eq!(header.count, events.len() as u64);
        prop_assert_eq!(decoded, events);
    }

    #[test]
    fn a_batch_with_an_origin_is_refused_as_version_4(
        events in prop::collection::vec(chain_event(), 1..6),
    ) {
        // Version 4 had no origin flag (nor the joined-correlation flag of version 6): a body
        // claiming version 4 that holds either is an error, one that holds neither reads the
        // same as the current version.
        let mut body = Vec::new();
        codec::BatchEncoder::new().encode(0, &events, &mut body).expect("encode");
        body[0] = codec::OLDEST_FORMAT_VERSION;
        let decoded = codec::decode_batch(&body, &mut codec::NoForwards);
        let newer = |event: &ChainEvent| {
            event.origin().is_some() || event.causality.joined_correlation_id.is_some()
        };
        if events.iter().any(newer) {
            prop_assert!(decoded.is_err());
        } else {
            prop_assert_eq!(decoded.map(|(_, events)| events), Ok(events));
        }
    }

    #[test]
    fn flipped_bytes_in_a_batch_with_origins_give_an_error_or_events(
        events in prop::collection::vec(chain_event(), 1..6),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..), 1..4),
    ) {
        let mut body = Vec::new();
        codec::BatchEncoder::new().encode(0, &events, &mut body).expect("encode");
        for (at, mask) in &flips {
            let at = at.index(body.len());
            body[at] ^= mask;
        }
        if let Ok((_, decoded)) = codec::decode_batch(&body, &mut codec::NoForwards) {
            // Whatever decodes encodes and decodes again to itself.
            let mut again = Vec::new();
            codec::BatchEncoder::new().encode(0, &decoded, &mut again).expect("encode");
            let (_, redecoded) = codec::decode_batch(&again, &mut codec::NoForwards)
                .expect("decode");
            prop_assert_eq!(redecoded, decoded);
        }
    }

    #[test]
    fn every_truncated_body_is_an_error(event in chain_event(), cut in any::<prop::sample::Index>()) {
        let body = encode(&event);
        let cut = cut.index(body.len());
        prop_assert!(codec::decode(&body[..cut]).is_err());
    }

    #[test]
    fn flipped_bytes_in_a_body_give_an_error_or_an_event(
        event in chain_event(),
        at in any::<prop::sample::Index>(),
        mask in 1u8..,
    ) {
        let mut body = encode(&event);
        let at = at.index(body.len());
        body[at] ^= mask;
        let _ = codec::decode(&body);
    }

    #[test]
    fn truncated_frame_sequences_keep_every_whole_frame(
        events in prop::collection::vec(chain_event(), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let bytes = frames(&events);
        let cut = cut.index(bytes.len());
        let (decoded, error) = decode_frames(&bytes[..cut]);
        prop_assert_eq!(&decoded[..], &events[..decoded.len()]);
        prop_assert!(decoded.len() < events.len());
        let kind = error.map(|damage| damage.kind);
        prop_assert!(matches!(kind, None | Some(CorruptionKind::Truncated { .. })), "{:?}", kind);
    }

    #[test]
    fn flipped_bytes_in_a_frame_sequence_are_detected(
        events in prop::collection::vec(chain_event(), 1..6),
        at in any::<prop::sample::Index>(),
        mask in 1u8..,
    ) {
        let mut bytes = frames(&events);
        let at = at.index(bytes.len());
        bytes[at] ^= mask;
        let (decoded, error) = decode_frames(&bytes);
        // Frames before the damaged one decode unchanged; the damaged one is an error.
        prop_assert!(decoded.len() < events.len());
        prop_assert_eq!(&decoded[..], &events[..decoded.len()]);
        prop_assert!(error.is_some());
    }
}

/// What opening a damaged journal may do: fail with `Corrupt`, or cut a tail and keep a prefix.
fn check_damaged_journal(events: &[ChainEvent], damage: impl FnOnce(&mut Vec<u8>)) {
    let dir = tempfile::tempdir().expect("temp dir");
    let scheduler = SyncScheduler::start().expect("sync thread");
    let config = small_disk_config(1 << 20, 1024);
    let journal = open_disk(dir.path(), &config, &scheduler);
    let segment = journal.dir().join("00000000000000000000.seg");
    runtime().block_on(async {
        journal.append(events.to_vec()).await.expect("append");
        journal.close().await.expect("close");
    });
    drop(journal);
    let mut bytes = std::fs::read(&segment).expect("read segment");
    damage(&mut bytes);
    std::fs::write(&segment, &bytes).expect("write segment");

    let (read, _) = read_segment(&segment);
    assert_eq!(read[..], events[..read.len()]);
    match obzenflow_runtime::journal::DiskJournal::open(
        dir.path().join("journal"),
        journal_support::journal_id("damaged"),
        &config,
        &scheduler,
    ) {
        Ok(reopened) => {
            let mut reader = reopened.reader(0, None).expect("reader");
            let kept = read_available(reader.as_mut(), 7);
            let kept: Vec<ChainEvent> = kept.iter().map(|event| (**event).clone()).collect();
            assert_eq!(kept[..], events[..kept.len()]);
            let cut = reopened.recovery().map(|report| report.records_kept);
            assert!(cut.is_none() || cut == Some(kept.len() as u64));
        }
        Err(JournalError::Corrupt { segment: path, .. }) => assert_eq!(path, segment),
        Err(error) => panic!("unexpected error: {error}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn truncated_segments_reopen_with_a_clean_cut(
        events in prop::collection::vec(chain_event(), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        check_damaged_journal(&events, |bytes| {
            let cut = cut.index(bytes.len());
            bytes.truncate(cut);
        });
    }

    #[test]
    fn damaged_segments_reopen_with_a_clean_cut_or_a_corrupt_error(
        events in prop::collection::vec(chain_event(), 1..8),
        at in any::<prop::sample::Index>(),
        mask in 1u8..,
    ) {
        check_damaged_journal(&events, |bytes| {
            let at = at.index(bytes.len());
            bytes[at] ^= mask;
        });
    }

    #[test]
    fn random_segment_files_never_panic_the_reader(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("00000000000000000000.seg");
        std::fs::write(&path, &bytes).expect("write");
        let _ = read_segment(&path);
        let mut reader = SegmentReader::open(&path).expect("open");
        while let Ok(true) = reader.skip_frame() {}
    }
}

/// A valid segment of `events` with every flip applied (`(at, mask)`, non-zero masks), then
/// every frame's checksum made right; with the offset of the first flipped byte.
fn mutated_behind_checksums(
    events: &[ChainEvent],
    flips: &[(prop::sample::Index, u8)],
) -> (Vec<u8>, Vec<Range<usize>>, usize) {
    let (mut bytes, ranges) = framed(events);
    let mut first_flipped = bytes.len();
    for (at, mask) in flips {
        let at = at.index(bytes.len());
        bytes[at] ^= mask;
        first_flipped = first_flipped.min(at);
    }
    seal_checksums(&mut bytes);
    (bytes, ranges, first_flipped)
}

/// How many frames of `ranges` lie wholly before byte `offset`.
fn frames_before(ranges: &[Range<usize>], offset: usize) -> usize {
    ranges
        .iter()
        .take_while(|range| range.end <= offset)
        .count()
}

proptest! {
    #[test]
    fn random_segments_keep_the_decoder_contract(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        check_decoder_contract(&bytes)?;
    }

    #[test]
    fn random_bodies_behind_right_checksums_keep_the_decoder_contract(
        bodies in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..160), 1..4),
    ) {
        // Most start with a format version this build reads (the newest or the oldest), so
        // that the codec reads past its first byte.
        let mut bytes = Vec::new();
        for (index, body) in bodies.iter().enumerate() {
            let versioned = index % 4 != 3;
            let length = body.len() + usize::from(versioned);
            bytes.extend_from_slice(&(length as u32).to_le_bytes());
            bytes.extend_from_slice(&[0; 4]);
            if versioned {
                bytes.push(match index % 2 {
                    0 => codec::FORMAT_VERSION,
                    _ => codec::OLDEST_FORMAT_VERSION,
                });
            }
            bytes.extend_from_slice(body);
        }
        seal_checksums(&mut bytes);
        check_decoder_contract(&bytes)?;
    }

    #[test]
    fn mutated_records_behind_right_checksums_decode_or_fail_and_keep_the_intact_prefix(
        events in prop::collection::vec(chain_event(), 1..5),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..), 1..4),
    ) {
        let (bytes, ranges, first_flipped) = mutated_behind_checksums(&events, &flips);
        let decoded = check_decoder_contract(&bytes)?;
        let intact = frames_before(&ranges, first_flipped);
        prop_assert!(decoded.len() >= intact);
        prop_assert_eq!(&decoded[..intact], &events[..intact]);
    }

    #[test]
    fn damaged_segments_decode_their_intact_prefix_and_name_the_damaged_frame(
        events in prop::collection::vec(chain_event(), 1..6),
        damage in damage(),
    ) {
        let (mut bytes, ranges) = framed(&events);
        let valid_len = bytes.len();
        let first_changed = apply(&damage, &mut bytes);
        let intact = frames_before(&ranges, first_changed);
        let (decoded, error) = decode_frames(&bytes);
        match damage {
            Damage::Truncate(_) => {
                prop_assert_eq!(&decoded[..], &events[..intact]);
                let frame = &ranges[intact];
                let into_frame = first_changed - frame.start;
                let missing = match into_frame {
                    0 => None,
                    cut if cut < FRAME_HEADER_LEN => Some(FRAME_HEADER_LEN - cut),
                    _ => Some(frame.end - first_changed),
                };
                let expected = missing.map(|missing| (frame.start as u64, CorruptionKind::Truncated {
                    missing: missing as u64,
                }, true));
                let error = error.map(|damage| (damage.offset, damage.kind, damage.at_tail));
                prop_assert_eq!(error, expected);
            }
            Damage::Flip(..) => {
                prop_assert_eq!(&decoded[..], &events[..intact]);
                let frame = &ranges[intact];
                let error = error.expect("a flip within 32 bits is always detected");
                prop_assert_eq!(error.offset, frame.start as u64);
                // With the length field intact, only the checksum can catch the flip.
                if first_changed - frame.start >= 4 {
                    prop_assert!(matches!(error.kind, CorruptionKind::ChecksumMismatch { .. }), "{:?}", error);
                    prop_assert_eq!(error.at_tail, intact + 1 == events.len());
                }
            }
            Damage::Append(_) => {
                prop_assert_eq!(&decoded[..events.len()], &events[..]);
                // Random garbage is a frame with a right checksum once in 2^32 tries at most.
                let error = error.expect("garbage after the last frame is damage");
                prop_assert_eq!(decoded.len(), events.len());
                prop_assert_eq!(error.offset, valid_len as u64);
            }
        }
    }
}

/// Bytes to compare the two segment decoders on: random, a damaged valid segment, or valid
/// records mutated behind right checksums.
fn segment_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        (prop::collection::vec(chain_event(), 1..5), damage()).prop_map(|(events, damage)| {
            let mut bytes = frames(&events);
            apply(&damage, &mut bytes);
            bytes
        }),
        (
            prop::collection::vec(chain_event(), 1..5),
            prop::collection::vec((any::<prop::sample::Index>(), 1u8..), 1..4),
        )
            .prop_map(|(events, flips)| mutated_behind_checksums(&events, &flips).0),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn the_segment_reader_agrees_with_the_in_memory_decoder(bytes in segment_bytes()) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("00000000000000000000.seg");
        std::fs::write(&path, &bytes).expect("write");
        let (from_file, file_error) = read_segment(&path);
        let (from_memory, memory_error) = decode_frames(&bytes);
        prop_assert_eq!(from_file, from_memory);
        let file_error = match file_error {
            None => None,
            Some(FrameError::Damaged { path: damaged, offset, kind, at_tail }) => {
                prop_assert_eq!(damaged, path);
                Some((offset, kind, at_tail))
            }
            Some(other) => return Err(TestCaseError::fail(format!("not a damaged frame: {other}"))),
        };
        let memory_error = memory_error.map(|damage| (damage.offset, damage.kind, damage.at_tail));
        prop_assert_eq!(file_error, memory_error);
    }
}
