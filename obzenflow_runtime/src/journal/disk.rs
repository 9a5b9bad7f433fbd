//! [`DiskJournal`]: a journal stored as segment files, recovered and validated on open.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use obzenflow_core::{
    ChainEvent, CorruptionKind, Forwards, Journal, JournalError, JournalId, JournalReader, SeqRange,
};

use super::backpressure::BackpressureObserver;
use super::core::JournalCore;
use super::disk_read::{DiskRecords, IndexedSegment};
use super::forwarded::SiblingJournals;
use super::segment::{scan_journal, segment_file_name, JournalScan, ScanDepth, TornTail};
use super::storage::{DiskWriter, DiskWriterParts, LaneLink, Storage};
use super::sync::{sync_directory, SyncFiles, SyncPolicy, SyncScheduler, SyncTarget};

/// How a disk journal stores and syncs its records.
///
/// ```
/// use obzenflow_runtime::journal::{DiskJournalConfig, SyncPolicy};
///
/// let config = DiskJournalConfig { sync: SyncPolicy::EveryBatch, ..DiskJournalConfig::default() };
/// assert_eq!(config.segment_bytes, 64 * 1024 * 1024);
/// assert_eq!(config.cache_records, 8_192);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskJournalConfig {
    /// A segment file is rolled once the next frame would take it past this size. A single
    /// record larger than this gets a segment of its own.
    pub segment_bytes: u64,
    /// How many recent records stay in memory for live readers, who then never decode. Keep it
    /// at least as large as the readers' backpressure windows: a reader that falls further
    /// behind reads (and decodes) from the segment files.
    pub cache_records: usize,
    /// When appended records are fsynced.
    pub sync: SyncPolicy,
    /// Writes and fsyncs to fail on purpose, for tests (feature `fault-injection`). Each
    /// journal takes the faults that name it. Empty by default.
    #[cfg(feature = "fault-injection")]
    pub faults: Vec<super::faults::JournalFault>,
}

impl Default for DiskJournalConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 64 * 1024 * 1024,
            cache_records: 8_192,
            sync: SyncPolicy::default(),
            #[cfg(feature = "fault-injection")]
            faults: Vec::new(),
        }
    }
}

/// A torn or corrupt tail that opening a disk journal cut off.
///
/// Only the end of the last segment is ever cut; every record before `offset` is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The journal.
    pub journal: JournalId,
    /// The segment that was cut.
    pub segment: PathBuf,
    /// Where the damaged frame started, and so the segment's new length.
    pub offset: u64,
    /// How many bytes were cut.
    pub bytes_cut: u64,
    /// How many records the journal holds after the cut.
    pub records_kept: u64,
    /// What was wrong with the first cut frame.
    pub reason: CorruptionKind,
}

impl fmt::Display for RecoveryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "journal {}: cut {} bytes at offset {} of {} ({}); {} records kept",
            self.journal,
            self.bytes_cut,
            self.offset,
            self.segment.display(),
            self.reason,
            self.records_kept
        )
    }
}

/// A journal stored as a directory of segment files.
///
/// Live readers are served from an in-memory cache of recent records (`Record` clones, no
/// decoding); a reader that falls behind the cache reads from the files. Opening an existing
/// directory validates every segment and cuts a torn tail (see [`DiskJournal::recovery`]).
///
/// ```no_run
/// use obzenflow_core::{ChainEvent, Journal, JournalId, Lane, StageId, WriterId};
/// use obzenflow_runtime::journal::{DiskJournal, DiskJournalConfig, SyncScheduler};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let scheduler = SyncScheduler::start()?;
/// let id = JournalId::new(WriterId::Stage(StageId::new()), "orders", Lane::Data);
/// let config = DiskJournalConfig::default();
/// let journal = DiskJournal::open("runs/run_1/stages/orders/data", id, &config, &scheduler)?;
/// if let Some(report) = journal.recovery() {
///     eprintln!("{report}");
/// }
/// let mut reader = journal.reader(0, None)?;
/// let range = journal
///     .append(vec![ChainEvent::data("order", serde_json::json!({"id": 1}))])
///     .await?;
/// let mut records = Vec::new();
/// reader.read(1024, &mut records)?;
/// assert_eq!(records.len() as u64, range.end);
/// journal.close().await?;
/// # Ok(())
/// # }
/// ```
pub struct DiskJournal {
    core: JournalCore,
    sync: Arc<SyncTarget>,
    dir: PathBuf,
    policy: SyncPolicy,
    recovery: Option<RecoveryReport>,
}

impl fmt::Debug for DiskJournal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiskJournal")
            .field("id", self.core.id())
            .field("dir", &self.dir)
            .field("committed", &self.core.committed())
            .finish_non_exhaustive()
    }
}

impl DiskJournal {
    /// Opens the journal in `dir`, creating the directory and a first segment if needed.
    ///
    /// Every existing segment is scanned: checksums and format versions are verified and the
    /// final frame is decoded. A damaged tail of the last segment is cut off and reported (see
    /// [`DiskJournal::recovery`]); damage anywhere else is [`JournalError::Corrupt`].
    /// `scheduler` syncs the journal under [`SyncPolicy::Interval`].
    ///
    /// This is blocking file I/O proportional to the journal's size; call it from
    /// `spawn_blocking` when opening large journals inside a runtime.
    pub fn open(
        dir: impl Into<PathBuf>,
        id: JournalId,
        config: &DiskJournalConfig,
        scheduler: &SyncScheduler,
    ) -> Result<Self, JournalError> {
        Self::open_linked(dir.into(), id, config, scheduler, LaneLink::Alone, None)
    }

    /// [`DiskJournal::open`], taking part in a stage's pair of journals as `link` says.
    ///
    /// A journal that was sealed (closed in order) and is opened again loses its seal, which
    /// was checked: it is open for appends again, and its next close seals it anew.
    ///
    /// A journal of `run` may refer into the run's other journals for records it forwards
    /// ([`Journal::append_forwarding`]), and they into it.
    pub(crate) fn open_linked(
        dir: PathBuf,
        id: JournalId,
        config: &DiskJournalConfig,
        scheduler: &SyncScheduler,
        link: LaneLink,
        run: Option<SiblingJournals>,
    ) -> Result<Self, JournalError> {
        std::fs::create_dir_all(&dir).map_err(|source| io_error(&id, "create", &dir, source))?;
        let mut scan = scan_journal(&dir, &id, ScanDepth::Checksums)?;
        let recovery = match scan.torn_tail.take() {
            Some(tail) => Some(cut_torn_tail(&id, tail, scan.records)?),
            None => None,
        };
        unseal(&id, &mut scan)?;
        let append = open_append_segment(&id, &dir, &scan, config.sync)?;
        let opened = Opened {
            scan,
            append,
            recovery,
            link,
            run,
        };
        let journal = Self::assemble(id, dir, config, scheduler, opened);
        tracing::debug!(
            journal = %journal.core.id(),
            dir = %journal.dir.display(),
            records = journal.core.committed(),
            "disk journal opened"
        );
        Ok(journal)
    }

    /// Builds the journal around its recovered segments and the segment it appends to.
    fn assemble(
        id: JournalId,
        dir: PathBuf,
        config: &DiskJournalConfig,
        scheduler: &SyncScheduler,
        opened: Opened,
    ) -> Self {
        let Opened {
            scan,
            append,
            recovery,
            link,
            run,
        } = opened;
        let records = scan.records;
        let digest = scan.frames.digest();
        // What is in the files at open was synced by `open_append_segment`, except under `Never`.
        let durable = if config.sync == SyncPolicy::Never {
            0
        } else {
            records
        };
        let sync_files = SyncFiles {
            current: Arc::clone(&append.file),
            current_path: append.path.clone(),
            rolled: Vec::new(),
            directory_dirty: false,
        };
        let sync = SyncTarget::new(id.clone(), dir.clone(), sync_files, durable);
        #[cfg(feature = "fault-injection")]
        let sync = sync.with_faults(super::faults::SyncFaults::for_journal(&config.faults, &id));
        let sync = Arc::new(sync);
        if let Some(run) = &run {
            run.register(id.clone(), Arc::clone(&sync));
        }
        let segments = index_segments(scan, &append.path);
        let segment_index = segments.len() - 1;
        let disk_records = Arc::new(DiskRecords::new(id.clone(), segments));
        let writer = DiskWriter::new(DiskWriterParts {
            journal: id.clone(),
            dir: dir.clone(),
            segment_bytes: config.segment_bytes,
            policy: config.sync,
            scheduler: scheduler.clone(),
            file: append.file,
            segment_path: append.path,
            segment_len: append.len,
            segment_index,
            records: Arc::clone(&disk_records),
            sync: Arc::clone(&sync),
            digest,
            link,
            run,
        });
        #[cfg(feature = "fault-injection")]
        let writer =
            writer.with_faults(super::faults::WriteFaults::for_journal(&config.faults, &id));
        let storage = Storage::Disk(Box::new(writer));
        let cache = Some(config.cache_records);
        let core = JournalCore::new(id, storage, records, cache, Some(disk_records));
        Self {
            core,
            sync,
            dir,
            policy: config.sync,
            recovery,
        }
    }

    /// The same journal, telling `observer` (if any) of every wait of its appends for a slow
    /// reader.
    pub(crate) fn with_backpressure_observer(
        mut self,
        observer: Option<Arc<dyn BackpressureObserver>>,
    ) -> Self {
        self.core = self.core.with_backpressure_observer(observer);
        self
    }

    /// The damaged tail that opening cut off, if there was one.
    pub fn recovery(&self) -> Option<&RecoveryReport> {
        self.recovery.as_ref()
    }

    /// The journal's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The journal's sync policy.
    pub fn sync_policy(&self) -> SyncPolicy {
        self.policy
    }

    /// Waits until at least `count` records are durable.
    ///
    /// Returns [`JournalError::Failed`] if a sync failed. Under [`SyncPolicy::Never`] records
    /// become durable only if something else syncs them, so this may wait forever.
    ///
    /// Cancel safety: cancel safe.
    pub async fn wait_durable(&self, count: u64) -> Result<(), JournalError> {
        self.sync.wait_durable(count).await
    }
}

#[async_trait::async_trait]
impl Journal for DiskJournal {
    fn id(&self) -> &JournalId {
        self.core.id()
    }

    /// Cancel safety: not cancel safe; see [`Journal::append`].
    async fn append(&self, events: Vec<ChainEvent>) -> Result<SeqRange, JournalError> {
        self.core.append(events, Forwards::default()).await
    }

    /// Stores each record `forwards` places in a journal of the same run directory as a
    /// reference to that record, a few bytes long, instead of a copy (see
    /// [`codec`](super::codec)); it is resolved whenever the journal is read from its files.
    /// References to journals of other runs, or not on disk, are ignored: those records are
    /// copied.
    ///
    /// Cancel safety: not cancel safe; see [`Journal::append`].
    async fn append_forwarding(
        &self,
        events: Vec<ChainEvent>,
        forwards: Forwards<'_>,
    ) -> Result<SeqRange, JournalError> {
        self.core.append(events, forwards).await
    }

    fn committed(&self) -> u64 {
        self.core.committed()
    }

    fn durable(&self) -> u64 {
        self.sync.durable().min(self.core.committed())
    }

    fn reader(
        &self,
        from: u64,
        window: Option<NonZeroU64>,
    ) -> Result<Box<dyn JournalReader>, JournalError> {
        self.core.reader(from, window)
    }

    /// Cancel safety: not cancel safe. The journal refuses appends from the first poll on;
    /// cancelled before it finished, readers are not yet told it closed: call `close` again.
    async fn close(&self) -> Result<(), JournalError> {
        self.core.close().await
    }
}

/// Cuts the seal off a journal opened again, so that appends follow its last record.
fn unseal(id: &JournalId, scan: &mut JournalScan) -> Result<(), JournalError> {
    let Some(found) = scan.frames.seal() else {
        return Ok(());
    };
    let (segment, offset) = (found.place.segment.clone(), found.place.offset);
    let file = OpenOptions::new()
        .write(true)
        .open(&segment)
        .map_err(|source| io_error(id, "open for appending", &segment, source))?;
    file.set_len(offset)
        .map_err(|source| io_error(id, "remove the seal of", &segment, source))?;
    if let Some(last) = scan.segments.last_mut() {
        last.valid_len = offset;
        last.file_len = offset;
    }
    scan.frames = scan.frames.unsealed();
    tracing::debug!(journal = %id, segment = %segment.display(), "sealed journal reopened");
    Ok(())
}

/// Truncates the last segment back to its last good frame.
fn cut_torn_tail(
    id: &JournalId,
    tail: TornTail,
    records_kept: u64,
) -> Result<RecoveryReport, JournalError> {
    let file = OpenOptions::new()
        .write(true)
        .open(&tail.segment)
        .map_err(|source| io_error(id, "open for recovery", &tail.segment, source))?;
    file.set_len(tail.offset)
        .and_then(|()| file.sync_all())
        .map_err(|source| io_error(id, "cut the torn tail of", &tail.segment, source))?;
    let report = RecoveryReport {
        journal: id.clone(),
        segment: tail.segment,
        offset: tail.offset,
        bytes_cut: tail.file_len.saturating_sub(tail.offset),
        records_kept,
        reason: tail.kind,
    };
    tracing::warn!(
        journal = %report.journal,
        segment = %report.segment.display(),
        offset = report.offset,
        bytes_cut = report.bytes_cut,
        records_kept = report.records_kept,
        reason = %report.reason,
        "journal tail cut during recovery"
    );
    Ok(report)
}

/// What opening found and made, for `assemble`.
struct Opened {
    scan: JournalScan,
    append: AppendSegment,
    recovery: Option<RecoveryReport>,
    link: LaneLink,
    run: Option<SiblingJournals>,
}

/// The segment a journal appends to.
struct AppendSegment {
    file: Arc<File>,
    path: PathBuf,
    /// Its length: where the next frame goes.
    len: u64,
}

/// Opens the last segment for appending, or creates the first one.
fn open_append_segment(
    id: &JournalId,
    dir: &Path,
    scan: &JournalScan,
    policy: SyncPolicy,
) -> Result<AppendSegment, JournalError> {
    if let Some(last) = scan.segments.last() {
        let file = OpenOptions::new()
            .append(true)
            .open(&last.path)
            .map_err(|source| io_error(id, "open", &last.path, source))?;
        if policy != SyncPolicy::Never {
            // What a crashed process left in the page cache becomes durable before we count it.
            file.sync_data()
                .map_err(|source| io_error(id, "sync", &last.path, source))?;
        }
        return Ok(AppendSegment {
            file: Arc::new(file),
            path: last.path.clone(),
            len: last.valid_len,
        });
    }
    let path = dir.join(segment_file_name(0));
    let file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)
        .map_err(|source| io_error(id, "create", &path, source))?;
    if policy != SyncPolicy::Never {
        let parent = dir.parent().unwrap_or(dir);
        sync_directory(dir)
            .and_then(|()| sync_directory(parent))
            .map_err(|source| io_error(id, "sync", dir, source))?;
    }
    Ok(AppendSegment {
        file: Arc::new(file),
        path,
        len: 0,
    })
}

/// The read index of the scanned segments (plus a freshly created first one).
fn index_segments(scan: JournalScan, append_path: &Path) -> Vec<IndexedSegment> {
    let mut segments: Vec<IndexedSegment> = scan
        .segments
        .into_iter()
        .map(|segment| IndexedSegment {
            first_seq: segment.first_seq,
            path: segment.path,
            marks: segment.marks,
        })
        .collect();
    if segments.is_empty() {
        segments.push(IndexedSegment {
            first_seq: 0,
            path: append_path.to_path_buf(),
            marks: Vec::new(),
        });
    }
    segments
}

fn io_error(
    id: &JournalId,
    operation: &'static str,
    path: &Path,
    source: std::io::Error,
) -> JournalError {
    JournalError::Io {
        journal: id.clone(),
        operation,
        path: path.to_path_buf(),
        source,
    }
}
