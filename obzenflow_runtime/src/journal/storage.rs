//! The storage strategy behind the shared journal core: nothing (memory) or segment files.
//!
//! The disk writer encodes a chunk into one reusable buffer and hands it to the segment file
//! with one `write_all` (two around a segment roll), so a committed batch is in the page cache
//! and survives a crash of the process. The write is a plain blocking call on the appending
//! task: copying a batch into the page cache takes microseconds, far less than handing the
//! buffer to another thread would. Fsyncs, which can take milliseconds, never run on the
//! executor: they go to `spawn_blocking` or to the shared [`SyncScheduler`].

use std::fs::{File, OpenOptions};
#[cfg(not(feature = "fault-injection"))]
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use obzenflow_core::{Forwards, JournalError, JournalId, Record};

use super::codec::{BatchEncoder, ForwardRef, JournalDigest, Seal};
use super::disk_read::DiskRecords;
use super::external::ExternalWriter;
use super::forwarded::SiblingJournals;
use super::frame::{self, FrameEncodeError};
use super::segment::{range_is_marked, segment_file_name};
use super::sync::{SyncPolicy, SyncScheduler, SyncTarget};

/// Where a journal's records go besides its cache.
pub(crate) enum Storage {
    /// Nowhere: the cache keeps every record.
    Memory,
    /// Segment files.
    Disk(Box<DiskWriter>),
    /// Frames handed to a journal service (`external.rs`).
    External(Box<ExternalWriter>),
}

impl Storage {
    pub(crate) fn check_usable(&self) -> Result<(), JournalError> {
        match self {
            Self::Memory => Ok(()),
            Self::Disk(writer) => writer.check_usable(),
            Self::External(writer) => writer.check_usable(),
        }
    }

    /// Stores `records`, the first of which gets sequence `first_seq`; `forwards` places
    /// those whose content another journal already stores.
    pub(crate) fn write(
        &mut self,
        first_seq: u64,
        records: &[Record],
        forwards: Forwards<'_>,
    ) -> Result<(), JournalError> {
        match self {
            Self::Memory => Ok(()),
            Self::Disk(writer) => writer.write(first_seq, records, forwards),
            // Forwarded records are stored as references only between journals of one run
            // directory; a journal service stores each record whole.
            Self::External(writer) => writer.write(first_seq, records),
        }
    }

    /// Applies the sync policy after records up to `committed` became visible.
    pub(crate) async fn after_commit(&mut self, committed: u64) -> Result<(), JournalError> {
        match self {
            Self::Memory => Ok(()),
            Self::Disk(writer) => writer.after_commit(committed).await,
            Self::External(writer) => writer.after_commit(committed).await,
        }
    }

    pub(crate) async fn close(&mut self) -> Result<(), JournalError> {
        match self {
            Self::Memory => Ok(()),
            Self::Disk(writer) => writer.close().await,
            Self::External(writer) => writer.close().await,
        }
    }
}

/// The most records one frame holds: an append of more is split over several frames.
pub(crate) const MAX_FRAME_RECORDS: usize = 1024;

/// Frames are split (down to one record) so that each stays about this size or smaller, which
/// bounds what a reader holds to decode one.
const FRAME_TARGET_BYTES: usize = 1 << 20;

/// One frame of the batch being written: its records and where it ends in the buffer.
#[derive(Debug, Clone, Copy)]
struct EncodedFrame {
    first_seq: u64,
    count: u64,
    data_records: u64,
    end: usize,
}

/// The digest of a stage's error journal, shared with its data journal (made by the factory,
/// given to both at open): the error journal publishes its digest after every write, and the
/// data journal's seal carries the latest as its companion.
#[derive(Debug, Clone, Default)]
pub(crate) struct CompanionDigest(Arc<Mutex<Option<JournalDigest>>>);

impl CompanionDigest {
    pub(crate) fn publish(&self, digest: JournalDigest) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(digest);
    }

    pub(crate) fn get(&self) -> Option<JournalDigest> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How a disk journal takes part in its stage's pair of journals.
#[derive(Debug, Clone, Default)]
pub(crate) enum LaneLink {
    /// On its own: a system journal, or one opened by hand.
    #[default]
    Alone,
    /// An error journal: publishes its digest.
    Publishes(CompanionDigest),
    /// A data journal: its seal carries the published digest.
    Carries(CompanionDigest),
}

impl EncodedFrame {
    fn holds_mark(&self) -> bool {
        range_is_marked(self.first_seq, self.count)
    }
}

/// The append side of a disk journal.
pub(crate) struct DiskWriter {
    journal: JournalId,
    dir: PathBuf,
    segment_bytes: u64,
    policy: SyncPolicy,
    scheduler: SyncScheduler,
    file: Arc<File>,
    segment_path: PathBuf,
    /// Bytes in the current segment.
    segment_len: u64,
    /// Index of the current segment among the journal's segments.
    segment_index: usize,
    buffer: Vec<u8>,
    encoder: BatchEncoder,
    frames: Vec<EncodedFrame>,
    marks: Vec<(usize, u64, u64)>,
    records: Arc<DiskRecords>,
    sync: Arc<SyncTarget>,
    /// What the segments hold, kept frame by frame for the seal.
    digest: JournalDigest,
    link: LaneLink,
    /// The run's other disk journals, which records may refer into; `None` for a journal
    /// opened on its own.
    run: Option<SiblingJournals>,
    /// Set after a write failed: what is on disk is no longer known.
    failed: bool,
    /// Writes to fail on purpose, for tests.
    #[cfg(feature = "fault-injection")]
    faults: super::faults::WriteFaults,
}

/// Where a disk writer starts.
pub(crate) struct DiskWriterParts {
    pub(crate) journal: JournalId,
    pub(crate) dir: PathBuf,
    pub(crate) segment_bytes: u64,
    pub(crate) policy: SyncPolicy,
    pub(crate) scheduler: SyncScheduler,
    pub(crate) file: Arc<File>,
    pub(crate) segment_path: PathBuf,
    pub(crate) segment_len: u64,
    pub(crate) segment_index: usize,
    pub(crate) records: Arc<DiskRecords>,
    pub(crate) sync: Arc<SyncTarget>,
    /// What the segments hold at open.
    pub(crate) digest: JournalDigest,
    pub(crate) link: LaneLink,
    pub(crate) run: Option<SiblingJournals>,
}

impl DiskWriter {
    pub(crate) fn new(parts: DiskWriterParts) -> Self {
        // An error journal publishes what it holds from the start: a data journal sealed before
        // any error was appended still carries its (empty) error journal's digest.
        if let LaneLink::Publishes(companion) = &parts.link {
            companion.publish(parts.digest);
        }
        Self {
            journal: parts.journal,
            dir: parts.dir,
            segment_bytes: parts.segment_bytes,
            policy: parts.policy,
            scheduler: parts.scheduler,
            file: parts.file,
            segment_path: parts.segment_path,
            segment_len: parts.segment_len,
            segment_index: parts.segment_index,
            buffer: Vec::new(),
            encoder: BatchEncoder::new(),
            frames: Vec::new(),
            marks: Vec::new(),
            records: parts.records,
            sync: parts.sync,
            digest: parts.digest,
            link: parts.link,
            run: parts.run,
            failed: false,
            #[cfg(feature = "fault-injection")]
            faults: super::faults::WriteFaults::default(),
        }
    }

    /// The same writer, failing the writes `faults` plans.
    #[cfg(feature = "fault-injection")]
    pub(crate) fn with_faults(mut self, faults: super::faults::WriteFaults) -> Self {
        self.faults = faults;
        self
    }

    fn check_usable(&self) -> Result<(), JournalError> {
        if self.failed {
            return Err(JournalError::Failed {
                journal: self.journal.clone(),
            });
        }
        self.sync.check_failure()
    }

    fn write(
        &mut self,
        first_seq: u64,
        records: &[Record],
        forwards: Forwards<'_>,
    ) -> Result<(), JournalError> {
        let refs = self.forward_refs(forwards);
        // Encode everything first: a record that cannot be encoded then fails the append
        // before any byte of it reaches the file.
        self.buffer.clear();
        self.frames.clear();
        let mut start = 0;
        while start < records.len() {
            let end = (start + MAX_FRAME_RECORDS).min(records.len());
            let refs = refs.get(start..end).unwrap_or_default();
            self.encode_frames(first_seq + start as u64, &records[start..end], refs)?;
            start = end;
        }
        #[cfg(feature = "fault-injection")]
        self.faults.begin_batch();
        self.marks.clear();
        let mut flushed = 0;
        let mut frame_start = 0;
        for index in 0..self.frames.len() {
            let frame = self.frames[index];
            let before = self.segment_len + (frame_start - flushed) as u64;
            if before > 0 && before + (frame.end - frame_start) as u64 > self.segment_bytes {
                self.write_out(flushed, frame_start)?;
                flushed = frame_start;
                self.roll(frame.first_seq)?;
            }
            if frame.holds_mark() {
                let offset = self.segment_len + (frame_start - flushed) as u64;
                self.marks
                    .push((self.segment_index, frame.first_seq, offset));
            }
            frame_start = frame.end;
        }
        self.write_out(flushed, self.buffer.len())?;
        self.records.add_marks(&self.marks);
        self.add_to_digest();
        Ok(())
    }

    /// Folds the frames just written into the digest: one multiplication per frame.
    fn add_to_digest(&mut self) {
        let mut start = 0;
        for frame in &self.frames {
            let header = frame::header_at(&self.buffer, start);
            self.digest
                .add_frame(header.crc, header.body_len, frame.count, frame.data_records);
            start = frame.end;
        }
        if let LaneLink::Publishes(companion) = &self.link {
            companion.publish(self.digest);
        }
    }

    /// Writes the seal: the last frame of a journal closed in order.
    fn write_seal(&mut self) -> Result<(), JournalError> {
        let seal = Seal {
            lane: self.journal.lane,
            digest: self.digest,
            companion: match &self.link {
                LaneLink::Carries(companion) => companion.get(),
                LaneLink::Alone | LaneLink::Publishes(_) => None,
            },
        };
        self.buffer.clear();
        frame::encode_seal_frame(&seal, &mut self.buffer);
        #[cfg(feature = "fault-injection")]
        self.faults.begin_batch();
        self.write_out(0, self.buffer.len())
    }

    /// The references to write for the records `forwards` places: only into journals of this
    /// run on disk, whose syncs this journal's then wait for.
    ///
    /// A record durable here must not refer to one that is not durable there: each sync of
    /// this journal first syncs every journal it refers into (up to the records referred to),
    /// which, as those records were written before this journal could read them, a sync
    /// started after this write covers.
    fn forward_refs<'f>(&mut self, forwards: Forwards<'f>) -> Vec<Option<ForwardRef<'f>>> {
        let Some(run) = &self.run else {
            return Vec::new();
        };
        if forwards.records.iter().all(Option::is_none) {
            return Vec::new();
        }
        let targets: Vec<Option<Arc<SyncTarget>>> = forwards
            .journals
            .iter()
            .map(|journal| run.find(journal))
            .collect();
        let mut needed = vec![0u64; targets.len()];
        let refs = forwards
            .records
            .iter()
            .map(|at| {
                let at = (*at)?;
                let index = at.journal as usize;
                targets.get(index)?.as_ref()?;
                let journal = &forwards.journals[index];
                needed[index] = needed[index].max(at.seq + 1);
                Some(ForwardRef {
                    origin: &journal.name,
                    lane: journal.lane,
                    seq: at.seq,
                })
            })
            .collect();
        for (target, needed) in targets.iter().zip(needed) {
            if let Some(target) = target.as_ref().filter(|_| needed > 0) {
                self.sync.depend_on(target, needed);
            }
        }
        refs
    }

    /// Encodes `records` as one frame, or as several if one would exceed
    /// [`FRAME_TARGET_BYTES`] (a frame of one record may be larger).
    fn encode_frames(
        &mut self,
        first_seq: u64,
        records: &[Record],
        refs: &[Option<ForwardRef<'_>>],
    ) -> Result<(), JournalError> {
        let start = self.buffer.len();
        frame::encode_batch_frame(
            &mut self.encoder,
            first_seq,
            records,
            refs,
            &mut self.buffer,
        )
        .map_err(|error| self.encode_error(records, error))?;
        if self.buffer.len() - start > FRAME_TARGET_BYTES && records.len() > 1 {
            self.buffer.truncate(start);
            let half = records.len() / 2;
            let (first_refs, rest_refs) = refs.split_at(half.min(refs.len()));
            self.encode_frames(first_seq, &records[..half], first_refs)?;
            return self.encode_frames(first_seq + half as u64, &records[half..], rest_refs);
        }
        self.frames.push(EncodedFrame {
            first_seq,
            count: records.len() as u64,
            data_records: records.iter().filter(|record| record.is_data()).count() as u64,
            end: self.buffer.len(),
        });
        Ok(())
    }

    fn encode_error(&self, records: &[Record], error: FrameEncodeError) -> JournalError {
        let (event_id, source) = match error {
            FrameEncodeError::Encode(error) => (error.event_id, error.source),
            other => (
                records.first().map(|event| event.id).unwrap_or_default(),
                serde::ser::Error::custom(other),
            ),
        };
        JournalError::Encode {
            journal: self.journal.clone(),
            event_id,
            source,
        }
    }

    /// Writes `buffer[from..to]` to the current segment.
    fn write_out(&mut self, from: usize, to: usize) -> Result<(), JournalError> {
        if from == to {
            return Ok(());
        }
        let bytes = &self.buffer[from..to];
        #[cfg(feature = "fault-injection")]
        let written = self.faults.write_all(&self.file, bytes);
        #[cfg(not(feature = "fault-injection"))]
        let written = (&*self.file).write_all(bytes);
        if let Err(source) = written {
            // Best effort: leave no torn frame behind for the next open to cut.
            let _ = self.file.set_len(self.segment_len);
            return Err(self.fail("append to", self.segment_path.clone(), source));
        }
        self.segment_len += (to - from) as u64;
        Ok(())
    }

    /// Starts a new segment whose first record gets sequence `first_seq`.
    fn roll(&mut self, first_seq: u64) -> Result<(), JournalError> {
        let path = self.dir.join(segment_file_name(first_seq));
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|source| self.fail("create", path.clone(), source))?;
        let file = Arc::new(file);
        {
            let mut files = self
                .sync
                .files
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let old_path = std::mem::replace(&mut files.current_path, path.clone());
            let old_file = std::mem::replace(&mut files.current, Arc::clone(&file));
            if self.policy != SyncPolicy::Never {
                files.rolled.push((old_path, old_file));
                files.directory_dirty = true;
            }
        }
        tracing::debug!(journal = %self.journal, first_seq, "journal segment rolled");
        self.records.add_segment(first_seq, path.clone());
        self.file = file;
        self.segment_path = path;
        self.segment_len = 0;
        self.segment_index += 1;
        Ok(())
    }

    async fn after_commit(&mut self, committed: u64) -> Result<(), JournalError> {
        // Counted only once committed, so `durable` never runs ahead of `committed`.
        self.sync.written.store(committed, Ordering::Release);
        match self.policy {
            SyncPolicy::EveryBatch => self.sync_blocking().await,
            SyncPolicy::Interval(interval) => {
                if !self.sync.queued.swap(true, Ordering::AcqRel) {
                    let deadline = Instant::now() + interval;
                    self.scheduler.schedule(Arc::clone(&self.sync), deadline);
                }
                Ok(())
            }
            SyncPolicy::Never => Ok(()),
        }
    }

    async fn close(&mut self) -> Result<(), JournalError> {
        self.check_usable()?;
        self.write_seal()?;
        match self.policy {
            SyncPolicy::Never => Ok(()),
            _ => self.sync_blocking().await,
        }
    }

    /// Fsyncs on the blocking pool so the executor thread keeps running other tasks.
    async fn sync_blocking(&self) -> Result<(), JournalError> {
        let sync = Arc::clone(&self.sync);
        match tokio::task::spawn_blocking(move || sync.sync_now()).await {
            Ok(result) => result,
            Err(join_error) => Err(JournalError::Io {
                journal: self.journal.clone(),
                operation: "sync",
                path: self.segment_path.clone(),
                source: std::io::Error::other(join_error),
            }),
        }
    }

    fn fail(
        &mut self,
        operation: &'static str,
        path: PathBuf,
        source: std::io::Error,
    ) -> JournalError {
        self.failed = true;
        tracing::error!(journal = %self.journal, error = %obzenflow_core::ErrorChain::new(&source), "journal write failed");
        JournalError::Io {
            journal: self.journal.clone(),
            operation,
            path,
            source,
        }
    }
}
