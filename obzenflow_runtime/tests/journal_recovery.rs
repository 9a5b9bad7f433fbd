//! Disk journals across restarts and damage: torn tails are cut and reported, corruption in
//! the middle is a typed error naming the segment and offset, segments roll, and readers that
//! fell behind the cache decode the very records that were appended.

mod journal_support;

use std::path::{Path, PathBuf};

use journal_support::{
    append_one_by_one, journal_id, order, orders, read_available, small_disk_config,
};
use obzenflow_core::{ChainEvent, CorruptionKind, Journal, JournalError, SeqRange};
use obzenflow_runtime::journal::{
    segment_file_name, DiskJournal, DiskJournalConfig, SegmentReader, SyncScheduler,
};

struct Setup {
    dir: tempfile::TempDir,
    scheduler: SyncScheduler,
    config: DiskJournalConfig,
}

impl Setup {
    fn new(segment_bytes: u64, cache_records: usize) -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
            scheduler: SyncScheduler::start().expect("sync thread"),
            config: small_disk_config(segment_bytes, cache_records),
        }
    }

    fn journal_dir(&self) -> PathBuf {
        self.dir.path().join("orders")
    }

    fn open(&self) -> Result<DiskJournal, JournalError> {
        DiskJournal::open(
            self.journal_dir(),
            journal_id("orders"),
            &self.config,
            &self.scheduler,
        )
    }

    fn segment(&self, first_seq: u64) -> PathBuf {
        self.journal_dir().join(segment_file_name(first_seq))
    }

    fn segments(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.journal_dir())
            .expect("list")
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }
}

fn read_all(journal: &dyn Journal, from: u64) -> Vec<ChainEvent> {
    let mut reader = journal.reader(from, None).expect("reader");
    read_available(reader.as_mut(), 100)
        .iter()
        .map(|event| (**event).clone())
        .collect()
}

/// How many records the frames of a segment hold.
fn segment_records(path: &Path) -> u64 {
    let mut reader = SegmentReader::open(path).expect("open segment");
    let mut records = 0;
    while let Some(batch) = reader.skip_batch().expect("skip") {
        records += batch.count;
    }
    records
}

/// The byte offsets at which the record frames of a segment start (its seal aside).
fn frame_offsets(path: &Path) -> Vec<u64> {
    record_frames(path)
        .into_iter()
        .map(|(start, _)| start)
        .collect()
}

/// Where each record frame of a segment starts and ends (its seal aside).
fn record_frames(path: &Path) -> Vec<(u64, u64)> {
    let mut reader = SegmentReader::open(path).expect("open segment");
    let mut frames = Vec::new();
    loop {
        let start = reader.offset();
        match reader.skip_batch().expect("skip") {
            None => return frames,
            Some(batch) if batch.is_seal() => {}
            Some(_) => frames.push((start, reader.offset())),
        }
    }
}

#[tokio::test]
async fn a_torn_last_record_is_cut_and_reported_and_nothing_before_it_is_lost() {
    let setup = Setup::new(1 << 20, 1024);
    let appended = orders(0, 10);
    let journal = setup.open().expect("open");
    append_one_by_one(&journal, &appended).await;
    journal.close().await.expect("close");
    drop(journal);

    let segment = setup.segment(0);
    let (last_frame, frame_end) = *record_frames(&segment).last().expect("frames");
    let torn_len = last_frame + (frame_end - last_frame) / 2;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .and_then(|file| file.set_len(torn_len))
        .expect("tear the last record");

    let journal = setup.open().expect("reopen");
    let report = journal.recovery().expect("a recovery report").clone();
    assert_eq!(report.segment, segment);
    assert_eq!(report.offset, last_frame);
    assert_eq!(report.bytes_cut, torn_len - last_frame);
    assert_eq!(report.records_kept, 9);
    assert!(
        matches!(report.reason, CorruptionKind::Truncated { .. }),
        "{report}"
    );
    assert!(report.to_string().contains("9 records kept"), "{report}");
    assert_eq!(
        std::fs::metadata(&segment).expect("metadata").len(),
        last_frame
    );

    assert_eq!(journal.committed(), 9);
    assert_eq!(read_all(&journal, 0), appended[..9]);
    // Appending continues right after the last good record.
    let extra = order(99);
    let range = journal.append(vec![extra.clone()]).await.expect("append");
    assert_eq!(range, SeqRange { start: 9, end: 10 });
    journal.close().await.expect("close");
    drop(journal);
    let journal = setup.open().expect("reopen again");
    assert!(journal.recovery().is_none());
    assert_eq!(read_all(&journal, 9), vec![extra]);
}

#[tokio::test]
async fn a_flipped_byte_in_the_middle_is_a_corrupt_error_naming_segment_and_offset() {
    let setup = Setup::new(1 << 20, 1024);
    let journal = setup.open().expect("open");
    append_one_by_one(&journal, &orders(0, 10)).await;
    journal.close().await.expect("close");
    drop(journal);

    let segment = setup.segment(0);
    let offsets = frame_offsets(&segment);
    let damaged_frame = offsets[4];
    let mut bytes = std::fs::read(&segment).expect("read");
    // A byte inside the body of the fifth record.
    bytes[damaged_frame as usize + 20] ^= 0x40;
    std::fs::write(&segment, &bytes).expect("write");

    let error = setup.open().expect_err("corrupt");
    assert!(
        matches!(&error, JournalError::Corrupt { segment: path, offset, kind: CorruptionKind::ChecksumMismatch { .. } }
            if *path == segment && *offset == damaged_frame),
        "{error:?}"
    );
    let expected = format!(
        "corrupt record in {} at byte offset {damaged_frame}: checksum mismatch (stored 0x",
        segment.display()
    );
    assert!(error.to_string().starts_with(&expected), "{error}");
    // Nothing was cut.
    assert_eq!(std::fs::read(&segment).expect("read"), bytes);
}

#[tokio::test]
async fn a_zero_filled_tail_is_cut_like_a_torn_one() {
    let setup = Setup::new(1 << 20, 1024);
    let journal = setup.open().expect("open");
    let appended = orders(0, 3);
    append_one_by_one(&journal, &appended).await;
    journal.close().await.expect("close");
    drop(journal);
    let segment = setup.segment(0);
    let len = std::fs::metadata(&segment).expect("metadata").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .and_then(|file| file.set_len(len + 4096))
        .expect("extend with zeros");

    let journal = setup.open().expect("reopen");
    let report = journal.recovery().expect("report");
    assert_eq!(
        (report.offset, report.bytes_cut, report.records_kept),
        (len, 4096, 3)
    );
    assert_eq!(read_all(&journal, 0), appended);
}

#[tokio::test]
async fn segments_roll_and_everything_reads_back_live_and_after_reopening() {
    let setup = Setup::new(512, 64);
    let journal = setup.open().expect("open");
    let appended = orders(0, 300);
    for chunk in appended.chunks(37) {
        journal.append(chunk.to_vec()).await.expect("append");
    }
    assert_eq!(read_all(&journal, 0), appended);
    journal.close().await.expect("close");
    drop(journal);

    let segments = setup.segments();
    assert!(segments.len() > 5, "{segments:?}");
    let mut next_first = 0;
    for name in &segments {
        assert_eq!(*name, segment_file_name(next_first));
        let records = segment_records(&setup.journal_dir().join(name));
        assert!(records > 0);
        let size = std::fs::metadata(setup.journal_dir().join(name))
            .expect("metadata")
            .len();
        assert!(size <= 2048, "{name} has {size} bytes");
        next_first += records;
    }
    assert_eq!(next_first, 300);

    let journal = setup.open().expect("reopen");
    assert_eq!(journal.committed(), 300);
    assert_eq!(read_all(&journal, 0), appended);
    for from in [1, 63, 64, 65, 150, 299, 300] {
        assert_eq!(
            read_all(&journal, from),
            appended[from as usize..],
            "from {from}"
        );
    }
}

#[tokio::test]
async fn a_reader_behind_the_cache_decodes_the_appended_records_from_disk() {
    let setup = Setup::new(1 << 16, 16);
    let journal = setup.open().expect("open");
    let mut behind = journal.reader(0, None).expect("reader");
    let appended = orders(0, 3000);
    for chunk in appended.chunks(100) {
        journal.append(chunk.to_vec()).await.expect("append");
    }
    // The cache holds the last 16 records; everything before comes from the segment files.
    let mut records = Vec::new();
    let mut calls = 0;
    while behind.read(500, &mut records).expect("read") > 0 {
        calls += 1;
    }
    let records: Vec<ChainEvent> = records.iter().map(|event| (**event).clone()).collect();
    assert_eq!(records, appended);
    assert!(calls >= 6, "reads are bounded by `max`: {calls}");
    for from in [0, 1023, 1024, 1025, 2047, 2984, 2999] {
        assert_eq!(
            read_all(&journal, from),
            appended[from as usize..],
            "from {from}"
        );
    }
}

#[tokio::test]
async fn corruption_in_a_segment_that_is_not_the_last_is_never_cut() {
    let setup = Setup::new(1024, 64);
    let journal = setup.open().expect("open");
    append_one_by_one(&journal, &orders(0, 50)).await;
    journal.close().await.expect("close");
    drop(journal);
    let first = setup.segment(0);
    let len = std::fs::metadata(&first).expect("metadata").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&first)
        .and_then(|file| file.set_len(len - 3))
        .expect("tear the first segment");

    let error = setup.open().expect_err("corrupt");
    assert!(
        matches!(&error, JournalError::Corrupt { segment, kind: CorruptionKind::Truncated { .. }, .. } if *segment == first),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_missing_segment_is_a_sequence_gap() {
    let setup = Setup::new(1024, 64);
    let journal = setup.open().expect("open");
    append_one_by_one(&journal, &orders(0, 50)).await;
    journal.close().await.expect("close");
    drop(journal);
    let segments = setup.segments();
    std::fs::remove_file(setup.journal_dir().join(&segments[1])).expect("remove");

    let error = setup.open().expect_err("gap");
    match error {
        JournalError::Corrupt {
            segment,
            offset: 0,
            kind: CorruptionKind::SequenceGap { expected, found },
        } => {
            assert_eq!(segment, setup.journal_dir().join(&segments[2]));
            assert!(expected < found);
        }
        other => panic!("unexpected error: {other:?}"),
    }
}

#[tokio::test]
async fn reopening_continues_the_sequence_and_counts_what_was_synced() {
    let mut setup = Setup::new(4096, 64);
    setup.config.sync = obzenflow_runtime::journal::SyncPolicy::EveryBatch;
    let journal = setup.open().expect("open");
    let mut appended = orders(0, 10);
    // Records 0..5 are written by the first session, 5..10 by the second.
    journal
        .append(appended[..5].to_vec())
        .await
        .expect("append");
    assert_eq!(journal.durable(), 5);
    drop(journal);

    let journal = setup.open().expect("reopen");
    assert_eq!((journal.committed(), journal.durable()), (5, 5));
    let tail = appended.split_off(5);
    let range = journal.append(tail.clone()).await.expect("append");
    assert_eq!(range, SeqRange { start: 5, end: 10 });
    appended.extend(tail);
    assert_eq!(read_all(&journal, 0), appended);
}

/// The shape a machine crash leaves: the last frame written in part, then zeros to the end of
/// the file (pages the file system had allocated but the page cache never wrote back).
#[tokio::test]
async fn a_partly_written_frame_followed_by_zeros_is_a_torn_tail() {
    let setup = Setup::new(1 << 20, 1024);
    let appended = orders(0, 10);
    let journal = setup.open().expect("open");
    append_one_by_one(&journal, &appended).await;
    journal.close().await.expect("close");
    drop(journal);

    let segment = setup.segment(0);
    let (last_frame, frame_end) = *record_frames(&segment).last().expect("frames");
    let mut bytes = std::fs::read(&segment).expect("read");
    // The seal goes with the torn frame, as it would if the writer had died in it.
    bytes.truncate(frame_end as usize);
    let frame_len = bytes.len() - last_frame as usize;
    // Keep the header and half the body, zero the rest, and add a page of zeros after it.
    for byte in &mut bytes[last_frame as usize + 8 + (frame_len - 8) / 2..] {
        *byte = 0;
    }
    bytes.extend_from_slice(&[0; 4096]);
    std::fs::write(&segment, &bytes).expect("write");

    let journal = setup
        .open()
        .expect("a torn tail, not corruption in the middle");
    let report = journal.recovery().expect("a recovery report").clone();
    assert_eq!((report.offset, report.records_kept), (last_frame, 9));
    assert_eq!(read_all(&journal, 0), appended[..9]);
}

/// A frame removed from the middle of a segment leaves frames that decode and checksum
/// perfectly; only the sequences they carry show the loss.
#[tokio::test]
async fn a_frame_removed_at_a_frame_boundary_is_named_not_skipped() {
    let setup = Setup::new(1 << 20, 1024);
    let journal = setup.open().expect("open");
    append_one_by_one(&journal, &orders(0, 10)).await;
    journal.close().await.expect("close");
    drop(journal);

    let segment = setup.segment(0);
    let offsets = frame_offsets(&segment);
    let mut bytes = std::fs::read(&segment).expect("read");
    bytes.drain(offsets[4] as usize..offsets[5] as usize);
    std::fs::write(&segment, &bytes).expect("write");

    let error = setup.open().expect_err("a lost frame must not open");
    let JournalError::Corrupt {
        segment: named,
        offset,
        kind,
    } = &error
    else {
        panic!("{error}");
    };
    assert_eq!((named, *offset), (&segment, offsets[4]));
    assert_eq!(
        kind,
        &CorruptionKind::FrameOutOfSequence {
            expected: 4,
            found: 5
        }
    );
    assert!(
        error
            .to_string()
            .contains("frame starts at sequence 5, but the records before it end at 4"),
        "{error}"
    );
}
