//! External journals: the one journal core, with its frames stored by a journal service that
//! a crate outside the runtime provides ([`JournalBackend`]; NATS JetStream in
//! `obzenflow_stages`, feature `jetstream`).
//!
//! An [`ExternalJournal`] runs the same core as memory and disk journals (the record cache,
//! readers with backpressure windows, write-then-notify, end-of-stream and close), so its
//! semantics are theirs by construction. What differs is where the frames go: each append
//! encodes its batch once with the disk journal's codec, into the very frames a segment file
//! would hold (`[u32 length][u32 CRC32][body]`, at most 1,024 records and about 1 MiB each),
//! and hands them one at a time, in order, to the journal's [`FrameStore`], which resolves once
//! the service has stored the frame. The append returns after that, so `durable` is the count
//! the service acknowledged. A journal closed in order stores its seal last, with the same
//! digest (and, for a stage's data journal, its error journal's) a disk journal's seal has:
//! the frames of a finished external journal, written one after the other into a segment
//! file, are a sealed disk journal that every reader of run directories checks.
//!
//! As with disk journals under group commit, readers in the same process see a batch when it
//! is committed to the cache, before the service acknowledged it; a store that fails fails the
//! append (and so the stage and the flow), and the journal then refuses further appends and is
//! never sealed.

use std::fmt;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use obzenflow_core::{
    ChainEvent, Forwards, Journal, JournalError, JournalId, JournalReader, Record, SeqRange,
};

use super::backpressure::BackpressureObserver;
use super::codec::{BatchEncoder, JournalDigest, Seal};
use super::core::JournalCore;
use super::frame::{self, FrameEncodeError};
use super::run_dir::{RunDirError, RunManifest};
use super::storage::{LaneLink, Storage, MAX_FRAME_RECORDS};

/// What a journal service's client returns as its error: any error, kept as the source of
/// the [`JournalError::Backend`] or [`RunDirError::Backend`] it becomes.
pub type BackendError = Box<dyn std::error::Error + Send + Sync>;

/// Frames are split (down to one record) so that each stays about this size or smaller, as a
/// disk journal's are.
const FRAME_TARGET_BYTES: usize = 1 << 20;

/// One frame of a journal, as its [`FrameStore`] is given it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct StoredFrame<'a> {
    /// Which frame of the journal this is, from 0; the seal is the last.
    pub index: u64,
    /// The sequence of the frame's first record; for the seal, the journal's record count.
    pub first_seq: u64,
    /// How many records the frame holds; 0 for the seal.
    pub records: u64,
    /// The frame as a segment file holds it: `[u32 length][u32 CRC32][body]`, the body a batch
    /// (or the seal) in the journal codec (`codec`).
    pub bytes: &'a [u8],
}

/// Where one external journal's frames are stored.
///
/// The journal calls [`FrameStore::store`] one frame at a time, in frame order, and never
/// calls it again after a store failed: a store is expected to retry what it can (a service
/// that lost its leader, say) without storing a frame twice, and to fail only when it cannot
/// know or make the frame stored.
#[async_trait::async_trait]
pub trait FrameStore: Send + Sync {
    /// Stores `frame`; resolves once the service holds it as durably as it promises.
    ///
    /// # Cancel safety
    ///
    /// Need not be cancel safe: the journal never drops a store in flight.
    async fn store(&self, frame: StoredFrame<'_>) -> Result<(), BackendError>;
}

/// A journal service holding a run: its journals' frames and its manifest.
#[async_trait::async_trait]
pub trait RunStore: Send + Sync {
    /// The store of journal `journal` of this run.
    fn frame_store(&self, journal: &JournalId) -> Result<Arc<dyn FrameStore>, BackendError>;

    /// Records the run's manifest: as it ends (status and reason), and any time before.
    ///
    /// # Cancel safety
    ///
    /// Need not be cancel safe: the pipeline awaits it to the end.
    async fn write_manifest(&self, manifest: &RunManifest) -> Result<(), BackendError>;

    /// A reader, in this process, of `journal`, which another process of the same run writes
    /// (a worker running only some of the flow's stages: `Flow::start_worker`), for the stage
    /// `reading_stage`. It reads the journal from its first record: the reading stage starts
    /// over whenever its worker starts. The default refuses: a service that keeps runs for
    /// one process only cannot hand out such readers.
    ///
    /// # Cancel safety
    ///
    /// Need not be cancel safe: the worker awaits it to the end before any stage runs.
    async fn remote_reader(
        &self,
        journal: &JournalId,
        reading_stage: &str,
    ) -> Result<Box<dyn JournalReader>, BackendError> {
        let _ = reading_stage;
        Err(format!("this journal service cannot read journal {journal} of another process").into())
    }

    /// The positions of the reader of `journal`, which a stage of this process writes, that
    /// `reading_stage` of another process opens with [`RunStore::remote_reader`]: the worker
    /// holds the journal's writer within the edge's backpressure window of them. Asked once
    /// per such edge as the worker starts, before any stage runs; the feed reports the reader
    /// of this run of the writer (a service whose writer starts over, when its worker
    /// restarts, forgets positions read from the journal before). `Ok(None)`, the default,
    /// says the service cannot tell: the edge then holds the writer back by nothing.
    ///
    /// # Cancel safety
    ///
    /// Need not be cancel safe: the worker awaits it to the end before any stage runs.
    async fn remote_position(
        &self,
        journal: &JournalId,
        reading_stage: &str,
    ) -> Result<Option<Box<dyn PositionFeed>>, BackendError> {
        let _ = (journal, reading_stage);
        Ok(None)
    }
}

/// How far a reader in another process has read a journal of this process: what
/// [`RunStore::remote_position`] follows, so that the journal's writer keeps to the edge's
/// backpressure window across processes.
///
/// ```
/// use obzenflow_runtime::journal::{BackendError, PositionFeed};
/// use tokio::sync::watch;
///
/// /// Positions a reader in the same service sends through a watch, the latest first.
/// struct Watched {
///     positions: watch::Receiver<u64>,
///     first: bool,
/// }
///
/// #[async_trait::async_trait]
/// impl PositionFeed for Watched {
///     async fn next_position(&mut self) -> Result<Option<u64>, BackendError> {
///         // `changed` is cancel safe; a dropped sender means the reader is done.
///         if !std::mem::take(&mut self.first) && self.positions.changed().await.is_err() {
///             return Ok(None);
///         }
///         Ok(Some(*self.positions.borrow_and_update()))
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let (reported, positions) = watch::channel(0);
/// let mut feed = Watched { positions, first: true };
/// assert_eq!(feed.next_position().await?, Some(0));
/// reported.send_replace(16);
/// assert_eq!(feed.next_position().await?, Some(16));
/// drop(reported);
/// assert_eq!(feed.next_position().await?, None);
/// # Ok::<(), BackendError>(())
/// # }).unwrap();
/// ```
#[async_trait::async_trait]
pub trait PositionFeed: Send {
    /// The reader's position (how many records of the journal it has read through) once it
    /// is known or moved: the latest one known first, then each change (a service may skip
    /// positions between, never report one the reader has not reached). A reader that starts
    /// over (its worker restarted) may report lower positions than before. `Ok(None)` once
    /// the reader is done with the journal (its stage ended); the feed is not asked again.
    ///
    /// # Cancel safety
    ///
    /// Must be cancel safe: the writer's side awaits it in a `select!` with the writing
    /// stage's end, and a position it did not return is returned by the next call.
    async fn next_position(&mut self) -> Result<Option<u64>, BackendError>;
}

/// A run a worker joined ([`JournalBackend::join_run`]): the run's manifest as the service
/// records it, whose stage ids every process of the run uses, and the store of the worker's
/// part of the run.
#[non_exhaustive]
pub struct JoinedRun {
    /// The run's manifest as recorded: the first worker's proposal, or the one before it.
    pub manifest: RunManifest,
    /// The store of the worker's journals. Its [`RunStore::write_manifest`] is given, at the
    /// worker's end, the worker's outcome for its stages (the manifest's status and reason),
    /// which the service records for those stages only: the run's own outcome is completed
    /// only once every stage of the flow recorded completed.
    pub store: Arc<dyn RunStore>,
}

impl JoinedRun {
    /// A joined run of `manifest`, its journals in `store`.
    pub fn new(manifest: RunManifest, store: Arc<dyn RunStore>) -> Self {
        Self { manifest, store }
    }
}

impl fmt::Debug for JoinedRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinedRun")
            .field("run_id", &self.manifest.run_id)
            .field("flow_name", &self.manifest.flow_name)
            .finish_non_exhaustive()
    }
}

/// A journal service that runs can keep their journals in instead of memory or a run
/// directory: `Journals::backend` takes one. Implemented outside the runtime (NATS
/// JetStream in `obzenflow_stages`, feature `jetstream`).
#[async_trait::async_trait]
pub trait JournalBackend: Send + Sync + fmt::Debug {
    /// Begins the run `manifest` describes (status `running`): whatever the service needs
    /// before the run's journals are opened. Called once per run, before any stage runs and
    /// outside any await, so it must not block for long: a service that must be reached
    /// first can do so on its first store.
    fn begin_run(&self, manifest: &RunManifest) -> Result<Arc<dyn RunStore>, BackendError>;

    /// Says where and how durably the journals are kept, for the run summary and the
    /// manifest's `sync_policy` (e.g. `JetStream journals, 3 replicas, stored before acknowledged`).
    fn describe(&self) -> String;

    /// Joins the run `proposal` describes (its run id given by the caller, its stage ids made
    /// by this process) as a worker that runs only `stages` of it, each process of the run
    /// running others (`Flow::start_worker`). The first worker's proposal becomes the run's
    /// manifest; a later one gets the manifest recorded, whose flow and stages must be the
    /// proposal's. The worker's stages start over: whatever an earlier process of theirs left
    /// in their journals (a worker killed mid-run) is dropped. The default refuses: a
    /// service that keeps runs for one process only cannot run workers.
    ///
    /// # Cancel safety
    ///
    /// Need not be cancel safe: the worker awaits it to the end before any stage runs.
    async fn join_run(
        &self,
        proposal: &RunManifest,
        stages: &[String],
    ) -> Result<JoinedRun, BackendError> {
        let _ = stages;
        Err(format!(
            "{} cannot run workers (run {})",
            self.describe(),
            proposal.run_id
        )
        .into())
    }
}

/// Encodes and stores the frames of an external journal's appends.
pub(crate) struct ExternalWriter {
    journal: JournalId,
    store: Arc<dyn FrameStore>,
    encoder: BatchEncoder,
    buffer: Vec<u8>,
    /// The frames of the batch being stored: first sequence, records, data records, end.
    frames: Vec<(u64, u64, u64, usize)>,
    /// The frames stored so far, kept frame by frame for the seal.
    digest: JournalDigest,
    link: LaneLink,
    next_index: u64,
    /// How many records the service acknowledged.
    stored: Arc<AtomicU64>,
    /// Set after a store failed: the journal refuses appends and is never sealed.
    failed: bool,
}

impl ExternalWriter {
    fn new(journal: JournalId, store: Arc<dyn FrameStore>, link: LaneLink) -> Self {
        let digest = JournalDigest::EMPTY;
        if let LaneLink::Publishes(companion) = &link {
            companion.publish(digest);
        }
        Self {
            journal,
            store,
            encoder: BatchEncoder::new(),
            buffer: Vec::new(),
            frames: Vec::new(),
            digest,
            link,
            next_index: 0,
            stored: Arc::new(AtomicU64::new(0)),
            failed: false,
        }
    }

    pub(crate) fn check_usable(&self) -> Result<(), JournalError> {
        if self.failed {
            return Err(JournalError::Failed {
                journal: self.journal.clone(),
            });
        }
        Ok(())
    }

    /// Encodes `records` into frames; nothing is stored until `after_commit`, so a record
    /// that cannot be encoded fails the append before anything of it leaves the process.
    pub(crate) fn write(&mut self, first_seq: u64, records: &[Record]) -> Result<(), JournalError> {
        self.buffer.clear();
        self.frames.clear();
        let mut start = 0;
        while start < records.len() {
            let end = (start + MAX_FRAME_RECORDS).min(records.len());
            self.encode_frames(first_seq + start as u64, &records[start..end])?;
            start = end;
        }
        Ok(())
    }

    fn encode_frames(&mut self, first_seq: u64, records: &[Record]) -> Result<(), JournalError> {
        let start = self.buffer.len();
        frame::encode_batch_frame(&mut self.encoder, first_seq, records, &[], &mut self.buffer)
            .map_err(|error| self.encode_error(records, error))?;
        if self.buffer.len() - start > FRAME_TARGET_BYTES && records.len() > 1 {
            self.buffer.truncate(start);
            let half = records.len() / 2;
            self.encode_frames(first_seq, &records[..half])?;
            return self.encode_frames(first_seq + half as u64, &records[half..]);
        }
        let data_records = records.iter().filter(|record| record.is_data()).count() as u64;
        self.frames.push((
            first_seq,
            records.len() as u64,
            data_records,
            self.buffer.len(),
        ));
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

    /// Stores the frames `write` encoded, one at a time, in order.
    pub(crate) async fn after_commit(&mut self, committed: u64) -> Result<(), JournalError> {
        let mut start = 0;
        for index in 0..self.frames.len() {
            let (first_seq, records, data_records, end) = self.frames[index];
            let frame = StoredFrame {
                index: self.next_index,
                first_seq,
                records,
                bytes: &self.buffer[start..end],
            };
            if let Err(source) = self.store.store(frame).await {
                return Err(self.fail(source));
            }
            let header = frame::header_at(&self.buffer, start);
            self.digest
                .add_frame(header.crc, header.body_len, records, data_records);
            self.next_index += 1;
            start = end;
        }
        if let LaneLink::Publishes(companion) = &self.link {
            companion.publish(self.digest);
        }
        self.stored.store(committed, Ordering::Release);
        Ok(())
    }

    /// Stores the seal, the journal's last frame.
    pub(crate) async fn close(&mut self) -> Result<(), JournalError> {
        self.check_usable()?;
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
        let frame = StoredFrame {
            index: self.next_index,
            first_seq: self.stored.load(Ordering::Acquire),
            records: 0,
            bytes: &self.buffer,
        };
        match self.store.store(frame).await {
            Ok(()) => {
                self.next_index += 1;
                Ok(())
            }
            Err(source) => Err(self.fail(source)),
        }
    }

    fn fail(&mut self, source: BackendError) -> JournalError {
        self.failed = true;
        tracing::error!(journal = %self.journal, error = %obzenflow_core::ErrorChain::new(&*source), "journal store failed");
        JournalError::Backend {
            journal: self.journal.clone(),
            operation: "store a frame in",
            source,
        }
    }
}

/// A journal whose frames a [`FrameStore`] keeps (see the module docs): the memory journal's
/// core and readers, the disk journal's frames and seal.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use obzenflow_core::{ChainEvent, Journal, JournalId, Lane, StageId, WriterId};
/// use obzenflow_runtime::journal::{BackendError, ExternalJournal, FrameStore, StoredFrame};
///
/// /// Keeps frames in a vector, as a journal service would keep them.
/// #[derive(Default)]
/// struct Frames(Mutex<Vec<Vec<u8>>>);
///
/// #[async_trait::async_trait]
/// impl FrameStore for Frames {
///     async fn store(&self, frame: StoredFrame<'_>) -> Result<(), BackendError> {
///         self.0.lock().unwrap().push(frame.bytes.to_vec());
///         Ok(())
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let frames = Arc::new(Frames::default());
/// let id = JournalId::new(WriterId::Stage(StageId::new()), "orders", Lane::Data);
/// let journal = ExternalJournal::new(id, frames.clone());
/// journal.append(vec![ChainEvent::data("order", serde_json::json!({"id": 1}))]).await?;
/// assert_eq!(journal.durable(), 1);
/// journal.close().await?;
/// // One batch frame and the seal.
/// assert_eq!(frames.0.lock().unwrap().len(), 2);
/// # Ok::<(), obzenflow_core::JournalError>(())
/// # }).unwrap();
/// ```
pub struct ExternalJournal {
    core: JournalCore,
    stored: Arc<AtomicU64>,
}

impl ExternalJournal {
    /// An empty journal storing its frames in `store`, on its own (its seal carries no other
    /// lane's digest).
    pub fn new(id: JournalId, store: Arc<dyn FrameStore>) -> Self {
        Self::linked(id, store, LaneLink::Alone, None)
    }

    /// An empty journal of a stage's pair (`link`), keeping its most recent `cache` records
    /// in memory for readers (every record when `None`).
    pub(crate) fn linked(
        id: JournalId,
        store: Arc<dyn FrameStore>,
        link: LaneLink,
        cache: Option<usize>,
    ) -> Self {
        let writer = ExternalWriter::new(id.clone(), store, link);
        let stored = writer.stored.clone();
        Self {
            core: JournalCore::new(id, Storage::External(Box::new(writer)), 0, cache, None),
            stored,
        }
    }

    /// The same journal, telling `observer` (if any) of every wait of its appends for a slow
    /// reader.
    pub(crate) fn with_backpressure_observer(
        self,
        observer: Option<Arc<dyn BackpressureObserver>>,
    ) -> Self {
        Self {
            core: self.core.with_backpressure_observer(observer),
            stored: self.stored,
        }
    }
}

impl fmt::Debug for ExternalJournal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExternalJournal")
            .field("id", self.core.id())
            .field("committed", &self.core.committed())
            .field("stored", &self.stored.load(Ordering::Acquire))
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl Journal for ExternalJournal {
    fn id(&self) -> &JournalId {
        self.core.id()
    }

    /// Returns once every frame of the batch is stored.
    ///
    /// Cancel safety: not cancel safe; see [`Journal::append`].
    async fn append(&self, events: Vec<ChainEvent>) -> Result<SeqRange, JournalError> {
        self.core.append(events, Forwards::default()).await
    }

    fn committed(&self) -> u64 {
        self.core.committed()
    }

    /// The records the journal service acknowledged.
    fn durable(&self) -> u64 {
        self.stored.load(Ordering::Acquire)
    }

    fn reader(
        &self,
        from: u64,
        window: Option<NonZeroU64>,
    ) -> Result<Box<dyn JournalReader>, JournalError> {
        self.core.reader(from, window)
    }

    /// Stores the seal and refuses further appends.
    ///
    /// Cancel safety: not cancel safe, as [`Journal::close`].
    async fn close(&self) -> Result<(), JournalError> {
        self.core.close().await
    }
}

/// [`RunDirError::Backend`] for `operation` on the run of `manifest`.
pub(crate) fn run_error(
    operation: &'static str,
    manifest: &RunManifest,
    source: BackendError,
) -> RunDirError {
    RunDirError::Backend {
        operation,
        run_id: manifest.run_id,
        source,
    }
}
