//! When disk journals reach stable storage: the [`SyncPolicy`] and the shared group-commit
//! thread, [`SyncScheduler`].
//!
//! Appends always write into the OS page cache before they return, so a committed record
//! survives a crash of the process; the policy decides when it also survives a crash of the
//! machine. With [`SyncPolicy::Interval`], journals that have unsynced records register with
//! the run's scheduler, whose one thread sleeps until some journal is dirty, waits out that
//! journal's interval, then fsyncs every journal that is due and advances their durable counts.
//! No journal keeps a timer of its own, and an idle run's syncer sleeps on a condition variable.

use std::fmt;
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use obzenflow_core::{JournalError, JournalId};
use tokio::sync::Notify;

/// A journal cannot sync because a journal it refers into failed to sync first: the I/O
/// cause of the referring journal's [`JournalError::Io`].
#[derive(Debug, thiserror::Error)]
#[error("the journal {upstream} it refers into failed to sync")]
struct UpstreamSyncFailed {
    /// The journal referred into.
    upstream: JournalId,
    /// Why it failed to sync.
    #[source]
    source: JournalError,
}

/// When a disk journal fsyncs what it appended.
///
/// ```
/// use std::time::Duration;
/// use obzenflow_runtime::journal::SyncPolicy;
///
/// assert_eq!(SyncPolicy::default(), SyncPolicy::Interval(Duration::from_millis(50)));
/// assert_eq!(SyncPolicy::default().to_string(), "group commit every 50 ms");
/// assert_eq!(SyncPolicy::EveryBatch.to_string(), "fsync every batch");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncPolicy {
    /// `append` returns only once its batch is on stable storage.
    EveryBatch,
    /// Group commit: a shared thread fsyncs dirty journals at most this long after their first
    /// unsynced append. `append` returns once the batch is in the page cache.
    Interval(Duration),
    /// Never fsync; the OS writes pages back when it decides. `close` does not fsync either.
    Never,
}

impl Default for SyncPolicy {
    fn default() -> Self {
        Self::Interval(Duration::from_millis(50))
    }
}

impl fmt::Display for SyncPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EveryBatch => f.write_str("fsync every batch"),
            Self::Never => f.write_str("no fsync (OS decides)"),
            Self::Interval(interval) => {
                let micros = interval.as_micros();
                if micros % 1000 == 0 {
                    write!(f, "group commit every {} ms", micros / 1000)
                } else {
                    write!(f, "group commit every {micros} µs")
                }
            }
        }
    }
}

/// The shared group-commit thread of a run.
///
/// Cheap to clone: clones share one thread, which stops when the last clone (including those
/// held by journals) is dropped, or at [`SyncScheduler::shutdown`]. Either way it first syncs
/// every journal still waiting for it.
///
/// ```no_run
/// use obzenflow_runtime::journal::{DiskJournal, DiskJournalConfig, SyncScheduler};
/// use obzenflow_core::{JournalId, Lane, StageId, WriterId};
///
/// let scheduler = SyncScheduler::start()?;
/// let config = DiskJournalConfig::default();
/// let orders = JournalId::new(WriterId::Stage(StageId::new()), "orders", Lane::Data);
/// let journal = DiskJournal::open("run/stages/orders/data", orders, &config, &scheduler)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct SyncScheduler {
    owner: Arc<SchedulerOwner>,
}

impl fmt::Debug for SyncScheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncScheduler").finish_non_exhaustive()
    }
}

/// Owns the thread; dropping the last owner stops it.
struct SchedulerOwner {
    shared: Arc<SchedulerShared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

struct SchedulerShared {
    state: Mutex<SchedulerState>,
    wake: Condvar,
}

#[derive(Default)]
struct SchedulerState {
    due: Vec<(Instant, Arc<SyncTarget>)>,
    shutdown: bool,
}

impl SyncScheduler {
    /// Starts the group-commit thread.
    pub fn start() -> std::io::Result<Self> {
        let shared = Arc::new(SchedulerShared {
            state: Mutex::new(SchedulerState::default()),
            wake: Condvar::new(),
        });
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("obzenflow-sync".into())
            .spawn(move || thread_shared.run())?;
        Ok(Self {
            owner: Arc::new(SchedulerOwner {
                shared,
                thread: Mutex::new(Some(thread)),
            }),
        })
    }

    /// Syncs every journal waiting for the thread, then stops it and waits for it to end.
    ///
    /// Journals that append afterwards are synced only when they are closed. Blocks the caller
    /// for at most one round of fsyncs.
    pub fn shutdown(&self) {
        self.owner.stop();
    }

    /// Registers `target` to be synced at `deadline`.
    pub(crate) fn schedule(&self, target: Arc<SyncTarget>, deadline: Instant) {
        let shared = &self.owner.shared;
        let mut state = lock(&shared.state);
        if state.shutdown {
            // Nobody will sync it: let the next append try again after close.
            target.queued.store(false, Ordering::Release);
            return;
        }
        state.due.push((deadline, target));
        drop(state);
        shared.wake.notify_one();
    }
}

impl SchedulerOwner {
    fn stop(&self) {
        lock(&self.shared.state).shutdown = true;
        self.shared.wake.notify_one();
        let thread = lock(&self.thread).take();
        if let Some(thread) = thread {
            if thread.thread().id() != std::thread::current().id() && thread.join().is_err() {
                tracing::error!("journal sync thread panicked");
            }
        }
    }
}

impl Drop for SchedulerOwner {
    fn drop(&mut self) {
        self.stop();
    }
}

impl SchedulerShared {
    /// The thread: sleep until something is due, sync it, repeat; drain and stop at shutdown.
    fn run(&self) {
        let mut state = lock(&self.state);
        loop {
            if state.due.is_empty() {
                if state.shutdown {
                    return;
                }
                state = self
                    .wake
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            let now = Instant::now();
            let earliest = state.due.iter().map(|(deadline, _)| *deadline).min();
            if let Some(earliest) = earliest.filter(|earliest| *earliest > now) {
                if !state.shutdown {
                    state = self
                        .wake
                        .wait_timeout(state, earliest - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                    continue;
                }
            }
            let shutdown = state.shutdown;
            let mut due = Vec::new();
            state.due.retain(|(deadline, target)| {
                let take = shutdown || *deadline <= now;
                if take {
                    due.push(Arc::clone(target));
                }
                !take
            });
            drop(state);
            for target in due {
                target.sync_in_background();
            }
            state = lock(&self.state);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The files of one disk journal that may hold unsynced data.
pub(crate) struct SyncFiles {
    pub(crate) current: Arc<File>,
    pub(crate) current_path: PathBuf,
    /// Segments rolled away from since the last sync.
    pub(crate) rolled: Vec<(PathBuf, Arc<File>)>,
    /// Whether a segment was created since the directory was last synced.
    pub(crate) directory_dirty: bool,
}

/// What the syncer (or an `EveryBatch` append, or `close`) needs to make one journal durable.
pub(crate) struct SyncTarget {
    pub(crate) journal: JournalId,
    pub(crate) dir: PathBuf,
    pub(crate) files: Mutex<SyncFiles>,
    /// Records fully written to the files; set by the writer after each write.
    pub(crate) written: AtomicU64,
    durable: AtomicU64,
    durable_changed: Notify,
    /// Whether the target is registered with the scheduler.
    pub(crate) queued: AtomicBool,
    /// The first sync failure, until an append reports it.
    failure: Mutex<Option<JournalError>>,
    failed: AtomicBool,
    /// Held for the length of a sync.
    sync_lock: Mutex<()>,
    /// Journals this one's records refer into, with how many of their records must be durable
    /// before this one's sync may count: synced first, every time.
    depends_on: Mutex<Vec<(Arc<SyncTarget>, u64)>>,
    /// Fsyncs to fail on purpose, for tests.
    #[cfg(feature = "fault-injection")]
    faults: super::faults::SyncFaults,
}

impl SyncTarget {
    pub(crate) fn new(journal: JournalId, dir: PathBuf, files: SyncFiles, records: u64) -> Self {
        Self {
            journal,
            dir,
            files: Mutex::new(files),
            written: AtomicU64::new(records),
            durable: AtomicU64::new(records),
            durable_changed: Notify::new(),
            queued: AtomicBool::new(false),
            failure: Mutex::new(None),
            failed: AtomicBool::new(false),
            sync_lock: Mutex::new(()),
            depends_on: Mutex::new(Vec::new()),
            #[cfg(feature = "fault-injection")]
            faults: super::faults::SyncFaults::default(),
        }
    }

    /// The same target, failing the fsyncs `faults` plans.
    #[cfg(feature = "fault-injection")]
    pub(crate) fn with_faults(mut self, faults: super::faults::SyncFaults) -> Self {
        self.faults = faults;
        self
    }

    /// Makes every later sync of this journal first make `records` records of `upstream`
    /// durable: this journal now holds references to them.
    pub(crate) fn depend_on(&self, upstream: &Arc<SyncTarget>, records: u64) {
        let mut depends_on = lock(&self.depends_on);
        match depends_on
            .iter_mut()
            .find(|(target, _)| Arc::ptr_eq(target, upstream))
        {
            Some((_, needed)) => *needed = (*needed).max(records),
            None => depends_on.push((Arc::clone(upstream), records)),
        }
    }

    /// Syncs the journals this one refers into, as far as its references reach.
    fn sync_dependencies(&self) -> Result<(), JournalError> {
        let depends_on: Vec<(Arc<SyncTarget>, u64)> = lock(&self.depends_on).clone();
        for (upstream, needed) in depends_on {
            // The records referred to were written before this journal's references to them,
            // so one sync of the upstream started now covers them, whatever its count says.
            if upstream.durable() < needed {
                upstream.sync_now().map_err(|error| JournalError::Io {
                    journal: self.journal.clone(),
                    operation: "sync",
                    path: upstream.dir.clone(),
                    source: std::io::Error::other(UpstreamSyncFailed {
                        upstream: upstream.journal.clone(),
                        source: error,
                    }),
                })?;
            }
        }
        Ok(())
    }

    /// Records known to be on stable storage.
    pub(crate) fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// Waits until at least `count` records are durable.
    pub(crate) async fn wait_durable(&self, count: u64) -> Result<(), JournalError> {
        loop {
            let notified = self.durable_changed.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if self.durable() >= count {
                return Ok(());
            }
            if self.failed.load(Ordering::Acquire) {
                return Err(JournalError::Failed {
                    journal: self.journal.clone(),
                });
            }
            notified.await;
        }
    }

    /// Whether a sync has failed. A failure of the background syncer is handed out once, then
    /// (as after a failure the caller saw directly) [`JournalError::Failed`].
    pub(crate) fn check_failure(&self) -> Result<(), JournalError> {
        if !self.failed.load(Ordering::Acquire) {
            return Ok(());
        }
        Err(lock(&self.failure)
            .take()
            .unwrap_or_else(|| JournalError::Failed {
                journal: self.journal.clone(),
            }))
    }

    /// Syncs from the scheduler thread: a failure is logged and kept for the next append.
    fn sync_in_background(&self) {
        self.queued.store(false, Ordering::Release);
        if let Err(error) = self.sync_or_fail(true) {
            tracing::error!(journal = %self.journal, error = %obzenflow_core::ErrorChain::new(&error), "journal sync failed");
        }
    }

    /// Fsyncs everything written so far and advances the durable count. Blocking.
    pub(crate) fn sync_now(&self) -> Result<(), JournalError> {
        self.sync_or_fail(false)
    }

    /// Syncs, or marks the journal failed for good.
    ///
    /// After a failed fsync the page cache may have dropped the dirty pages, so a later fsync
    /// could succeed without the data being on disk: once one sync failed, every later one
    /// fails without syncing, and `durable` never advances past the failure. Syncs of one
    /// journal run one at a time, so none can succeed while another fails.
    ///
    /// `keep_for_append` keeps a copy of the failure for the next append or close to return,
    /// for a caller (the sync thread) that has nobody to return it to. The copy is in place
    /// before the journal counts as failed, so whoever sees the failure also finds its cause.
    fn sync_or_fail(&self, keep_for_append: bool) -> Result<(), JournalError> {
        let _one_at_a_time = lock(&self.sync_lock);
        if self.failed.load(Ordering::Acquire) {
            return Err(JournalError::Failed {
                journal: self.journal.clone(),
            });
        }
        let result = self.sync_files();
        if let Err(error) = &result {
            if keep_for_append {
                *lock(&self.failure) = Some(self.clone_error(error));
            }
            self.failed.store(true, Ordering::Release);
            self.durable_changed.notify_waiters();
        }
        result
    }

    fn sync_files(&self) -> Result<(), JournalError> {
        let (written, current, rolled, directory_dirty) = {
            let mut files = lock(&self.files);
            let written = self.written.load(Ordering::Acquire);
            let directory_dirty = std::mem::take(&mut files.directory_dirty);
            let current = (files.current_path.clone(), Arc::clone(&files.current));
            (
                written,
                current,
                std::mem::take(&mut files.rolled),
                directory_dirty,
            )
        };
        #[cfg(feature = "fault-injection")]
        self.faults
            .check()
            .map_err(|source| self.io_error(&current.0, source))?;
        self.sync_dependencies()?;
        for (path, file) in rolled.iter().chain(std::iter::once(&current)) {
            file.sync_data()
                .map_err(|source| self.io_error(path, source))?;
        }
        if directory_dirty {
            sync_directory(&self.dir).map_err(|source| self.io_error(&self.dir, source))?;
        }
        self.durable.fetch_max(written, Ordering::AcqRel);
        self.durable_changed.notify_waiters();
        Ok(())
    }

    fn io_error(&self, path: &std::path::Path, source: std::io::Error) -> JournalError {
        JournalError::Io {
            journal: self.journal.clone(),
            operation: "sync",
            path: path.to_path_buf(),
            source,
        }
    }

    /// A copy of a sync error for the next append: `io::Error` is not `Clone`, so the copy keeps
    /// the kind and message and the original is logged.
    fn clone_error(&self, error: &JournalError) -> JournalError {
        match error {
            JournalError::Io {
                path,
                source,
                operation,
                ..
            } => JournalError::Io {
                journal: self.journal.clone(),
                operation,
                path: path.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            _ => JournalError::Failed {
                journal: self.journal.clone(),
            },
        }
    }
}

/// Fsyncs a directory so the files created in it survive a machine crash.
pub(crate) fn sync_directory(dir: &std::path::Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        // Directories cannot be opened as files on this platform; their entries are made
        // durable by the file system's own metadata journal.
        let _ = dir;
        Ok(())
    }
}

#[cfg(all(test, feature = "fault-injection"))]
mod tests {
    use super::*;
    use crate::journal::faults::{FaultKind, JournalFault, SyncFaults};
    use obzenflow_core::{Lane, StageId, WriterId};

    fn target(dir: &std::path::Path, failing_sync: u64) -> SyncTarget {
        let id = JournalId::new(WriterId::Stage(StageId::new()), "orders", Lane::Data);
        let path = dir.join("segment");
        let files = SyncFiles {
            current: Arc::new(File::create(&path).expect("create")),
            current_path: path,
            rolled: Vec::new(),
            directory_dirty: false,
        };
        let plan = [JournalFault::new(
            "orders",
            Lane::Data,
            FaultKind::FailingSync,
            failing_sync,
        )];
        SyncTarget::new(id.clone(), dir.to_path_buf(), files, 0)
            .with_faults(SyncFaults::for_journal(&plan, &id))
    }

    #[test]
    fn no_sync_succeeds_after_one_failed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let target = target(dir.path(), 2);
        target.written.store(5, Ordering::Release);
        target.sync_now().expect("the first sync");
        assert_eq!(target.durable(), 5);
        target.written.store(9, Ordering::Release);
        let failed = target.sync_now().expect_err("the second sync fails");
        assert!(matches!(failed, JournalError::Io { .. }), "{failed:?}");
        // The third fsync would succeed; the journal must not trust its files again.
        target.written.store(12, Ordering::Release);
        let refused = target.sync_now().expect_err("refused after a failure");
        assert!(
            matches!(refused, JournalError::Failed { .. }),
            "{refused:?}"
        );
        assert_eq!(target.durable(), 5);
    }

    #[test]
    fn a_background_failure_is_handed_to_the_next_caller_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let target = target(dir.path(), 1);
        target.written.store(3, Ordering::Release);
        target.sync_in_background();
        let first = target.check_failure().expect_err("the failure is reported");
        assert!(matches!(first, JournalError::Io { .. }), "{first:?}");
        let again = target.check_failure().expect_err("and stays");
        assert!(matches!(again, JournalError::Failed { .. }), "{again:?}");
        assert_eq!(target.durable(), 0);
    }
}
