//! [`RunDirectory`]: one directory per run, holding its [`RunManifest`] and every journal.
//!
//! ```text
//! <base>/<run_id>/
//!     manifest.json
//!     run.lock            (locked by the running flow; see `RunDirectory::state`)
//!     stages/<stage_name>/data/00000000000000000000.seg …
//!     stages/<stage_name>/error/…
//!     system/<component>/…
//! ```
//!
//! The manifest makes a run directory self-describing: which flow ran, which stages it had and
//! where their journals are, how it ended, and how durable its journals were.
//!
//! A run directory is never seen half made: [`RunDirectory::create`] builds it under a hidden
//! temporary name in the base (`.<run_id>.<pid>.<random>.tmp`), takes its lock and writes its
//! first manifest there, and only then renames it into place. Whatever happens to the process,
//! `<base>/<run_id>/` is either absent or holds a manifest and a lock, so it reads as running,
//! as ended, or as incomplete. Listings skip the hidden temporary names.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use obzenflow_core::{FlowId, JournalError, Lane, RunId, StageId, Timestamp};
use serde::{Deserialize, Serialize};

use super::files::io_error;
use super::files::{
    open_regular, open_regular_for_writing, read_bounded, temp_path, MANIFEST_LIMIT_BYTES,
};
use super::sync::sync_directory;

const MANIFEST_FILE: &str = "manifest.json";
const LOCK_FILE: &str = "run.lock";

/// Something went wrong with a run directory or its manifest.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunDirError {
    /// The journal service of an external backend (NATS JetStream, say) failed to record
    /// or open part of a run.
    #[error("cannot {operation} run {run_id} in its journal service")]
    Backend {
        /// What was being done, e.g. `record the manifest of`.
        operation: &'static str,
        /// The run.
        run_id: obzenflow_core::RunId,
        /// What the service (or its client) said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A file system operation failed.
    #[error("cannot {operation} {}", path.display())]
    Io {
        /// What was being done, e.g. `create`.
        operation: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The run directory has no manifest.
    #[error("no run manifest at {}", path.display())]
    ManifestMissing {
        /// Where the manifest should be.
        path: PathBuf,
    },
    /// A file of the run directory is not a regular file (a FIFO, a device, a link, ...): it is
    /// refused without being read, so it can never block the reader.
    #[error("{} is {found}, not a regular file; refusing to read it", path.display())]
    NotARegularFile {
        /// The file.
        path: PathBuf,
        /// What it is instead, e.g. `a FIFO`.
        found: &'static str,
    },
    /// A journal directory of the run (or the directory holding it) is a symbolic link; a run's
    /// journals are read only inside its own directory.
    #[error("{} is a symbolic link; journal directories must be real directories", path.display())]
    SymlinkedJournal {
        /// The link.
        path: PathBuf,
    },
    /// A metadata file is larger than any this build writes; it is not read further.
    #[error("{} is larger than {limit} bytes; refusing to read it", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The most that is read.
        limit: u64,
    },
    /// The directory is not a run directory: it has no manifest.
    #[error("{} is not a run directory: it has no manifest.json", path.display())]
    NotARun {
        /// The directory.
        path: PathBuf,
    },
    /// The manifest is not valid JSON of the expected shape.
    #[error("run manifest {} is invalid", path.display())]
    ManifestInvalid {
        /// The manifest.
        path: PathBuf,
        /// What the parser said.
        #[source]
        source: serde_json::Error,
    },
    /// The manifest was written by a build with another format version.
    #[error(
        "run manifest {} has format version {found}; this build reads version {supported}",
        path.display()
    )]
    UnsupportedVersion {
        /// The manifest.
        path: PathBuf,
        /// The version it declares.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// A stage or component name cannot be used as a directory name.
    #[error("invalid journal owner name `{name}`: {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The run has no such journal.
    #[error("no {lane} journal for `{name}` at {}", path.display())]
    UnknownJournal {
        /// The stage or component name.
        name: String,
        /// The lane asked for.
        lane: Lane,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// Another live process is running in this run directory.
    #[error("run directory {} is in use by a running flow", path.display())]
    InUse {
        /// The run directory.
        path: PathBuf,
    },
    /// A journal of the run could not be opened or read.
    #[error("cannot read the journal at {}", path.display())]
    Journal {
        /// The journal's directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: JournalError,
    },
}

/// How a run ended, or that it has not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Still running, or the process died before recording an end.
    Running,
    /// Every stage drained and completed.
    Completed,
    /// A stage or the pipeline failed.
    Failed,
    /// The run was cancelled.
    Cancelled,
}

impl RunStatus {
    /// The status as the manifest and the CLI spell it: `running`, `completed`, `failed`,
    /// `cancelled`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// How a run directory's run stands, from its manifest and its lock: unlike
/// [`RunStatus`], it tells a run that is still going from one whose process died.
///
/// ```no_run
/// use obzenflow_runtime::journal::{RunDirectory, RunState};
///
/// let run = RunDirectory::open("target/obzenflow/runs/run_0190f1c2a3b47c8d9e0f112233445566")?;
/// if run.state()? == RunState::Incomplete {
///     eprintln!("{}: the run never finished; run the flow again", run.path().display());
/// }
/// # Ok::<(), obzenflow_runtime::journal::RunDirError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunState {
    /// A live process holds the run's lock: the run is going on now.
    Running,
    /// The manifest records that every stage drained and completed.
    Completed,
    /// The manifest records that a stage or the pipeline failed.
    Failed,
    /// The manifest records that the run was cancelled.
    Cancelled,
    /// The manifest records no end and no process holds the run's lock: the process was
    /// killed or crashed. The journals hold what was appended (and, per the sync policy,
    /// synced) before that; the run is not resumed.
    Incomplete,
}

impl RunState {
    /// Whether the run ended by completing.
    pub const fn is_completed(self) -> bool {
        matches!(self, Self::Completed)
    }

    /// The state in one word.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Incomplete => "incomplete",
        }
    }
}

impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The exclusive lock a running flow holds on its run directory (`run.lock`, an advisory
/// file lock the operating system releases when the process ends, however it ends).
///
/// [`RunDirectory::state`] tells a live run from a crashed one by trying this lock.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// One stage as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestStage {
    /// The stage's name, also its directory name.
    pub name: String,
    /// The stage's id.
    pub stage_id: StageId,
    /// The stage kind, e.g. `source` or `transform`.
    pub kind: String,
    /// The data journal's directory, relative to the run directory.
    pub data_journal: PathBuf,
    /// The error journal's directory, relative to the run directory.
    pub error_journal: PathBuf,
}

/// A system component's journal as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestJournal {
    /// The component's name.
    pub name: String,
    /// The journal's directory, relative to the run directory.
    pub path: PathBuf,
}

/// The self-description of a run, stored as `manifest.json` in its directory.
///
/// ```
/// use obzenflow_core::{FlowId, RunId, StageId};
/// use obzenflow_runtime::journal::{RunManifest, RunStatus, SyncPolicy};
///
/// let mut manifest = RunManifest::new("orders", FlowId::new(), RunId::new(), SyncPolicy::default());
/// manifest.add_stage("parse", StageId::new(), "transform");
/// assert_eq!(manifest.stages[0].data_journal.to_str(), Some("stages/parse/data"));
/// manifest.finish(RunStatus::Completed);
/// assert!(manifest.ended_at.is_some());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunManifest {
    /// The manifest format; [`RunManifest::FORMAT_VERSION`] when written by this build.
    pub format_version: u32,
    /// The flow's name.
    pub flow_name: String,
    /// The flow's id.
    pub flow_id: FlowId,
    /// The run's id; the run directory is named after it.
    pub run_id: RunId,
    /// The stages, in the order they were declared.
    pub stages: Vec<ManifestStage>,
    /// Journals of system components (pipeline, metrics).
    #[serde(default)]
    pub system_journals: Vec<ManifestJournal>,
    /// When the run started.
    pub started_at: Timestamp,
    /// When the run ended, once it has.
    pub ended_at: Option<Timestamp>,
    /// How the run ended, or `running`.
    pub status: RunStatus,
    /// The journals' sync policy, as the run summary states it.
    pub sync_policy: String,
    /// The run directory this run replayed, if it is a replay.
    pub replayed_from: Option<PathBuf>,
    /// Why the run failed or was cancelled, once it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl RunManifest {
    /// The manifest format version this build writes and reads.
    ///
    /// Version 2 goes with journal format 2 (batch frames): a run written with journal format 1
    /// has a version-1 manifest, so opening it fails at the manifest, naming both versions,
    /// rather than at its first segment.
    pub const FORMAT_VERSION: u32 = 2;

    /// The manifest of a run starting now, with no stages yet.
    pub fn new(
        flow_name: impl Into<String>,
        flow_id: FlowId,
        run_id: RunId,
        sync_policy: impl std::fmt::Display,
    ) -> Self {
        Self {
            format_version: Self::FORMAT_VERSION,
            flow_name: flow_name.into(),
            flow_id,
            run_id,
            stages: Vec::new(),
            system_journals: Vec::new(),
            started_at: Timestamp::now(),
            ended_at: None,
            status: RunStatus::Running,
            sync_policy: sync_policy.to_string(),
            replayed_from: None,
            reason: None,
        }
    }

    /// Records a stage and the paths of its journals.
    pub fn add_stage(
        &mut self,
        name: impl Into<String>,
        stage_id: StageId,
        kind: impl Into<String>,
    ) {
        let name = name.into();
        self.stages.push(ManifestStage {
            data_journal: relative_journal_dir(&name, Lane::Data),
            error_journal: relative_journal_dir(&name, Lane::Error),
            name,
            stage_id,
            kind: kind.into(),
        });
    }

    /// Records a system component's journal.
    pub fn add_system_journal(&mut self, name: impl Into<String>) {
        let name = name.into();
        self.system_journals.push(ManifestJournal {
            path: relative_journal_dir(&name, Lane::System),
            name,
        });
    }

    /// Records the end of the run, now.
    pub fn finish(&mut self, status: RunStatus) {
        self.status = status;
        self.ended_at = Some(Timestamp::now());
    }

    /// Records the end of the run, now, and why it ended so (a failure or cancellation).
    pub fn finish_because(&mut self, status: RunStatus, reason: impl Into<String>) {
        self.finish(status);
        self.reason = Some(reason.into());
    }
}

/// The directory of a journal relative to its run directory: `stages/<name>/data`,
/// `stages/<name>/error`, or `system/<name>` for [`Lane::System`].
pub(crate) fn relative_journal_dir(name: &str, lane: Lane) -> PathBuf {
    match lane {
        Lane::Data | Lane::Error => Path::new("stages").join(name).join(lane.as_str()),
        Lane::System => Path::new("system").join(name),
    }
}

/// Checks that `name` can be used as one directory name.
fn check_name(name: &str) -> Result<(), RunDirError> {
    match name_problem(name) {
        Some(reason) => Err(RunDirError::InvalidName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Why `name` cannot be one directory name of a run (a stage's or component's), if it cannot.
pub(crate) fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("it is empty")
    } else if name == "." || name == ".." {
        Some("it is a relative directory reference")
    } else if name.len() > 200 {
        Some("it is longer than 200 bytes")
    } else if name
        .chars()
        .any(|c| c == '/' || c == '\\' || c == ':' || c.is_control())
    {
        Some("it contains a path separator, a colon or a control character")
    } else {
        None
    }
}

/// One run's directory: `<base>/<run_id>/`.
///
/// ```no_run
/// use obzenflow_core::{FlowId, Lane, RunId, StageId};
/// use obzenflow_runtime::journal::{RunDirectory, RunManifest, RunStatus, SyncPolicy};
///
/// let mut manifest = RunManifest::new("orders", FlowId::new(), RunId::new(), SyncPolicy::default());
/// manifest.add_stage("parse", StageId::new(), "transform");
/// let (run_dir, _lock) = RunDirectory::create("runs", &manifest)?;
/// let data_dir = run_dir.journal_dir("parse", Lane::Data)?;
/// manifest.finish(RunStatus::Completed);
/// run_dir.write_manifest(&manifest)?;
/// assert_eq!(RunDirectory::open(run_dir.path())?.read_manifest()?, manifest);
/// # let _ = data_dir;
/// # Ok::<(), obzenflow_runtime::journal::RunDirError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDirectory {
    root: PathBuf,
}

/// The steps of [`RunDirectory::create`], in order; a process killed after any of them leaves
/// either no run directory or one that reads as incomplete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CreateStep {
    /// The base directory exists.
    BaseReady,
    /// The hidden temporary directory is made.
    StagingMade,
    /// Its `run.lock` is created and held.
    Locked,
    /// Its first manifest is written and synced.
    ManifestWritten,
    /// It is renamed to `<base>/<run_id>/`.
    RenamedIntoPlace,
}

impl CreateStep {
    /// Every step, in order.
    pub const ALL: [Self; 5] = [
        Self::BaseReady,
        Self::StagingMade,
        Self::Locked,
        Self::ManifestWritten,
        Self::RenamedIntoPlace,
    ];
}

/// How a step of creation is interrupted by [`RunDirectory::create_interrupted`].
#[cfg(feature = "fault-injection")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interruption {
    /// The process dies right after the step: nothing more runs, its lock is released.
    Killed,
    /// The next operation fails (a full disk): creation cleans up and returns the error.
    Failed,
}

/// What happens after each step of creation: go on, stop dead, or fail. Only tests stop or
/// fail a step (feature `fault-injection`); a normal build always goes on.
#[cfg_attr(not(feature = "fault-injection"), allow(dead_code))]
enum AfterStep {
    Continue,
    Stop,
    Fail(io::Error),
}

impl RunDirectory {
    /// Creates `<base>/<run_id>/` for `manifest`'s run (and `base` if needed), holding the
    /// manifest and the run's lock, which the returned guard keeps. Fails if the run directory
    /// exists.
    ///
    /// The directory is built under a hidden temporary name and renamed into place once its
    /// lock is held and its manifest synced (the lock is on the open file and survives the
    /// rename), so no run directory is ever seen without its manifest; on an error the
    /// temporary directory is removed.
    pub fn create(
        base: impl AsRef<Path>,
        manifest: &RunManifest,
    ) -> Result<(Self, RunLock), RunDirError> {
        let created = Self::create_observed(base.as_ref(), manifest, &mut |_| AfterStep::Continue)?;
        created.ok_or_else(|| {
            io_error(
                "create",
                base.as_ref(),
                io::Error::other("creation was stopped"),
            )
        })
    }

    /// [`create`](Self::create), interrupted right after `step` as `how` says; for tests of
    /// what a kill or a full disk at each step leaves behind (feature `fault-injection`).
    #[cfg(feature = "fault-injection")]
    pub fn create_interrupted(
        base: impl AsRef<Path>,
        manifest: &RunManifest,
        step: CreateStep,
        how: Interruption,
    ) -> Result<(), RunDirError> {
        let mut observe = |reached: CreateStep| match (reached == step, how) {
            (false, _) => AfterStep::Continue,
            (true, Interruption::Killed) => AfterStep::Stop,
            (true, Interruption::Failed) => {
                AfterStep::Fail(io::Error::from(io::ErrorKind::StorageFull))
            }
        };
        Self::create_observed(base.as_ref(), manifest, &mut observe).map(drop)
    }

    /// The creation steps, each followed by `observe`: `Ok(None)` if it stopped one.
    fn create_observed(
        base: &Path,
        manifest: &RunManifest,
        observe: &mut dyn FnMut(CreateStep) -> AfterStep,
    ) -> Result<Option<(Self, RunLock)>, RunDirError> {
        let after =
            |step, observe: &mut dyn FnMut(CreateStep) -> AfterStep, path: &Path| match observe(
                step,
            ) {
                AfterStep::Continue => Ok(true),
                AfterStep::Stop => Ok(false),
                AfterStep::Fail(source) => Err(io_error("create", path, source)),
            };
        std::fs::create_dir_all(base).map_err(|source| io_error("create", base, source))?;
        if !after(CreateStep::BaseReady, observe, base)? {
            return Ok(None);
        }
        let root = base.join(manifest.run_id.to_string());
        if std::fs::symlink_metadata(&root).is_ok() {
            let source = io::Error::from(io::ErrorKind::AlreadyExists);
            return Err(io_error("create", &root, source));
        }
        let staging = Self {
            root: temp_path(base, &manifest.run_id.to_string()),
        };
        std::fs::create_dir(&staging.root)
            .map_err(|source| io_error("create", &staging.root, source))?;
        let built = (|| {
            if !after(CreateStep::StagingMade, observe, &staging.root)? {
                return Ok(None);
            }
            let lock = staging.lock_new()?;
            if !after(CreateStep::Locked, observe, &staging.root)? {
                return Ok(None);
            }
            staging.write_manifest(manifest)?;
            if !after(CreateStep::ManifestWritten, observe, &staging.root)? {
                return Ok(None);
            }
            std::fs::rename(&staging.root, &root)
                .map_err(|source| io_error("rename into place", &root, source))?;
            Ok(Some(lock))
        })();
        let lock = match built {
            Ok(Some(lock)) => lock,
            // A kill leaves what is there: nothing more runs.
            Ok(None) => return Ok(None),
            Err(error) => {
                let _ = std::fs::remove_dir_all(&staging.root);
                return Err(error);
            }
        };
        let run_dir = Self { root };
        if !after(CreateStep::RenamedIntoPlace, observe, &run_dir.root)? {
            return Ok(None);
        }
        sync_directory(base).map_err(|source| io_error("sync", base, source))?;
        tracing::debug!(run_dir = %run_dir.root.display(), "run directory created");
        Ok(Some((run_dir, lock)))
    }

    /// Creates and takes the lock of a directory being built; the lock file must be new.
    fn lock_new(&self) -> Result<RunLock, RunDirError> {
        let path = self.root.join(LOCK_FILE);
        let file = open_regular_for_writing(&path, true)?;
        self.take_lock(file, &path)
    }

    /// Opens an existing run directory.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, RunDirError> {
        let root = root.into();
        let metadata =
            std::fs::metadata(&root).map_err(|source| io_error("open", &root, source))?;
        if !metadata.is_dir() {
            let source = io::Error::new(io::ErrorKind::NotADirectory, "not a directory");
            return Err(io_error("open", &root, source));
        }
        Ok(Self { root })
    }

    /// The run directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Where the manifest is.
    pub fn manifest_path(&self) -> PathBuf {
        self.root.join(MANIFEST_FILE)
    }

    /// Takes the run's lock for as long as the returned guard lives; a running flow holds it
    /// so that [`RunDirectory::state`] reports the run as running rather than incomplete.
    ///
    /// Fails with [`RunDirError::InUse`] if another live holder has it.
    pub fn lock(&self) -> Result<RunLock, RunDirError> {
        let path = self.root.join(LOCK_FILE);
        let file = open_regular_for_writing(&path, false)?;
        self.take_lock(file, &path)
    }

    fn take_lock(&self, file: File, path: &Path) -> Result<RunLock, RunDirError> {
        match file.try_lock() {
            Ok(()) => Ok(RunLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(RunDirError::InUse {
                path: self.root.clone(),
            }),
            Err(std::fs::TryLockError::Error(source)) => Err(io_error("lock", path, source)),
        }
    }

    /// Whether a live process holds the run's lock. A lock file that is not a regular file
    /// (a FIFO, a link) is an error naming it, never a wait.
    pub fn is_locked(&self) -> Result<bool, RunDirError> {
        let path = self.root.join(LOCK_FILE);
        let Some(file) = open_regular(&path)? else {
            return Ok(false);
        };
        // Taking a shared lock succeeds unless a running flow holds the exclusive one; the
        // lock taken here is released when `file` is dropped.
        match file.try_lock_shared() {
            Ok(()) => Ok(false),
            Err(std::fs::TryLockError::WouldBlock) => Ok(true),
            Err(std::fs::TryLockError::Error(source)) => Err(io_error("lock", &path, source)),
        }
    }

    /// How the run stands: the manifest's status, except that a run whose manifest records no
    /// end is [`RunState::Running`] only while a live process holds its lock, and
    /// [`RunState::Incomplete`] once none does.
    pub fn state(&self) -> Result<RunState, RunDirError> {
        self.state_of(&self.read_manifest()?)
    }

    /// [`state`](Self::state) for a manifest already read from this run directory.
    pub fn state_of(&self, manifest: &RunManifest) -> Result<RunState, RunDirError> {
        Ok(match manifest.status {
            RunStatus::Completed => RunState::Completed,
            RunStatus::Failed => RunState::Failed,
            RunStatus::Cancelled => RunState::Cancelled,
            RunStatus::Running if self.is_locked()? => RunState::Running,
            RunStatus::Running => RunState::Incomplete,
        })
    }

    /// The directory of the `lane` journal of the stage (or, for [`Lane::System`], the system
    /// component) `name`.
    pub fn journal_dir(&self, name: &str, lane: Lane) -> Result<PathBuf, RunDirError> {
        check_name(name)?;
        Ok(self.root.join(relative_journal_dir(name, lane)))
    }

    /// Writes the manifest atomically: to a new temporary file of a name no other writer uses
    /// (see the module docs), fsynced and then renamed over `manifest.json`, after which the
    /// directory is fsynced. A reader sees the old or the new manifest, never a mix, even
    /// across a machine crash; a failed write leaves no temporary file behind.
    pub fn write_manifest(&self, manifest: &RunManifest) -> Result<(), RunDirError> {
        let path = self.manifest_path();
        let tmp = temp_path(&self.root, MANIFEST_FILE);
        let json =
            serde_json::to_vec_pretty(manifest).map_err(|source| RunDirError::ManifestInvalid {
                path: path.clone(),
                source,
            })?;
        let written = open_regular_for_writing(&tmp, true).and_then(|mut file| {
            let mut write = || -> io::Result<()> {
                file.write_all(&json)?;
                file.write_all(b"\n")?;
                file.sync_all()
            };
            write().map_err(|source| io_error("write", &tmp, source))?;
            std::fs::rename(&tmp, &path)
                .map_err(|source| io_error("rename into place", &path, source))
        });
        if let Err(error) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(error);
        }
        sync_directory(&self.root).map_err(|source| io_error("sync", &self.root, source))
    }

    /// Reads the manifest.
    ///
    /// A missing manifest is [`RunDirError::ManifestMissing`]; one written with another format
    /// version is [`RunDirError::UnsupportedVersion`]; one that is not a regular file (a FIFO,
    /// a device, a link) is [`RunDirError::NotARegularFile`], refused without blocking; one
    /// over 1 MiB is [`RunDirError::TooLarge`], refused after reading just past the limit.
    pub fn read_manifest(&self) -> Result<RunManifest, RunDirError> {
        let path = self.manifest_path();
        let Some(file) = open_regular(&path)? else {
            return Err(RunDirError::ManifestMissing { path });
        };
        let bytes = read_bounded(file, &path, MANIFEST_LIMIT_BYTES)?;
        #[derive(Deserialize)]
        struct VersionProbe {
            format_version: u32,
        }
        let invalid = |source| RunDirError::ManifestInvalid {
            path: path.clone(),
            source,
        };
        let probe: VersionProbe = serde_json::from_slice(&bytes).map_err(invalid)?;
        if probe.format_version != RunManifest::FORMAT_VERSION {
            return Err(RunDirError::UnsupportedVersion {
                path,
                found: probe.format_version,
                supported: RunManifest::FORMAT_VERSION,
            });
        }
        serde_json::from_slice(&bytes).map_err(invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_escape_the_directory_are_refused() {
        for name in ["", ".", "..", "a/b", "a\\b", "nul\0"] {
            assert!(check_name(name).is_err(), "{name:?}");
        }
        assert!(check_name("parse_orders-2").is_ok());
    }

    #[test]
    fn journal_dirs_follow_the_layout() {
        assert_eq!(
            relative_journal_dir("parse", Lane::Error),
            Path::new("stages/parse/error")
        );
        assert_eq!(
            relative_journal_dir("pipeline", Lane::System),
            Path::new("system/pipeline")
        );
    }
}
