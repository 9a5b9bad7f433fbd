//! Property tests of the record codec, the frame decoder and the segment reader: round trips
//! are exact, and no input (random bytes, truncations, flipped bytes) makes them panic.

mod journal_support;

use journal_support::{chain_event, open_disk, read_available, runtime, small_disk_config};
use obzenflow_core::{ChainEvent, CorruptionKind, Journal, JournalError};
use obzenflow_runtime::journal::{codec, frame, FrameError, SegmentReader, SyncScheduler};
use proptest::prelude::*;

fn encode(event: &ChainEvent) -> Vec<u8> {
    let mut body = Vec::new();
    codec::encode_into(event, &mut body).expect("encode");
    body
}

fn frames(events: &[ChainEvent]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for event in events {
        frame::encode_frame(event, &mut bytes).expect("encode frame");
    }
    bytes
}

/// Decodes every frame of `bytes` until the first error.
fn decode_frames(mut bytes: &[u8]) -> (Vec<ChainEvent>, Option<CorruptionKind>) {
    let mut events = Vec::new();
    while !bytes.is_empty() {
        match frame::decode_frame(bytes) {
            Ok((event, length)) => {
                events.push(event);
                bytes = &bytes[length..];
            }
            Err(kind) => return (events, Some(kind)),
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

proptest! {
    #[test]
    fn events_round_trip_through_the_codec(event in chain_event()) {
        prop_assert_eq!(codec::decode(&encode(&event)), Ok(event));
    }

    #[test]
    fn random_bytes_never_panic_the_decoders(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = codec::decode(&bytes);
        let _ = frame::decode_frame(&bytes);
        let mut versioned = vec![codec::FORMAT_VERSION];
        versioned.extend(&bytes);
        let _ = codec::decode(&versioned);
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
        prop_assert!(matches!(error, None | Some(CorruptionKind::Truncated { .. })), "{:?}", error);
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
