//! Read-only inspection of a run directory: list its journals, read one journal's records, and
//! validate every journal with the checks `DiskJournal::open` makes, without cutting anything.
//!
//! ```no_run
//! use obzenflow_core::Lane;
//! use obzenflow_runtime::journal::inspect;
//!
//! let run = "runs/run_0190f1c2a3b47c8d9e0f112233445566";
//! for journal in inspect::list_journals(run)? {
//!     println!("{}.{}: {} records, {} bytes", journal.name, journal.lane, journal.records, journal.bytes);
//! }
//! for record in inspect::read_journal(run, "parse", Lane::Data)?.json() {
//!     println!("{}", record?);
//! }
//! let report = inspect::validate_run(run)?;
//! println!("{report}");
//! # Ok::<(), obzenflow_runtime::journal::RunDirError>(())
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::path::{Path, PathBuf};

use obzenflow_core::{ChainEvent, CorruptionKind, JournalError, JournalId, Lane, WriterId};

use super::files::{irregular, is_temp_name, not_regular};
use super::run_dir::{relative_journal_dir, RunDirError, RunDirectory, RunManifest, RunState};
use super::segment::{
    list_segments, rest_is_zero, scan_journal, FrameError, ScanDepth, SegmentFile, SegmentReader,
};

/// One journal of a run, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalSummary {
    /// The stage or system component that owns it.
    pub name: String,
    /// Which of its journals.
    pub lane: Lane,
    /// Its directory.
    pub path: PathBuf,
    /// How many complete frames its segments hold (frame headers are walked, bodies are not
    /// checked: see [`validate_run`]).
    pub records: u64,
    /// The total size of its segment files.
    pub bytes: u64,
    /// How many segment files it has.
    pub segments: usize,
}

/// Lists the journals of the run in `run_dir`, ordered by owner name, stages before system
/// components, data before error.
///
/// ```no_run
/// use obzenflow_runtime::journal::inspect;
///
/// for journal in inspect::list_journals("runs/run_0190f1c2a3b47c8d9e0f112233445566")? {
///     println!("{}.{}: {} records in {} segments", journal.name, journal.lane, journal.records, journal.segments);
/// }
/// # Ok::<(), obzenflow_runtime::journal::RunDirError>(())
/// ```
pub fn list_journals(run_dir: impl AsRef<Path>) -> Result<Vec<JournalSummary>, RunDirError> {
    let run = open_run(run_dir.as_ref())?;
    let run_dir = run.path();
    journal_dirs(run_dir)?
        .into_iter()
        .map(|(name, lane)| summarize(run_dir, name, lane))
        .collect()
}

/// Opens `run_dir` as a run: a directory holding a manifest, or (for a run whose manifest was
/// lost) journals. Any other directory, `/` say, is [`RunDirError::NotARun`], not an empty run.
fn open_run(run_dir: &Path) -> Result<RunDirectory, RunDirError> {
    let run = RunDirectory::open(run_dir)?;
    let has = |name: &str| std::fs::symlink_metadata(run.path().join(name)).is_ok();
    if has("manifest.json") || has("stages") || has("system") {
        Ok(run)
    } else {
        Err(RunDirError::NotARun {
            path: run.path().to_path_buf(),
        })
    }
}

/// The `(owner, lane)` of every journal directory in the run, from the directory layout. A
/// journal directory, or a directory holding one, that is a symbolic link is refused
/// ([`RunDirError::SymlinkedJournal`]), as [`read_journal`] refuses it: every reader of a run
/// sees the same journals.
fn journal_dirs(run_dir: &Path) -> Result<Vec<(String, Lane)>, RunDirError> {
    let mut journals = Vec::new();
    for name in subdirectories(&run_dir.join("stages"))? {
        for lane in [Lane::Data, Lane::Error] {
            if real_directory(&run_dir.join(relative_journal_dir(&name, lane)))? {
                journals.push((name.clone(), lane));
            }
        }
    }
    for name in subdirectories(&run_dir.join("system"))? {
        journals.push((name, Lane::System));
    }
    Ok(journals)
}

/// Whether `path` is a directory (`false` if it is missing or another kind of file); a
/// symbolic link is [`RunDirError::SymlinkedJournal`].
fn real_directory(path: &Path) -> Result<bool, RunDirError> {
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.file_type().is_symlink() => Err(RunDirError::SymlinkedJournal {
            path: path.to_path_buf(),
        }),
        Ok(metadata) => Ok(metadata.is_dir()),
        Err(source) if source.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(io_error("inspect", path, source)),
    }
}

/// The names of the directories in `dir`, sorted; none if `dir` does not exist. A symbolic
/// link, `dir` itself or an entry, is [`RunDirError::SymlinkedJournal`].
fn subdirectories(dir: &Path) -> Result<Vec<String>, RunDirError> {
    if !real_directory(dir)? {
        return Ok(Vec::new());
    }
    let entries = std::fs::read_dir(dir).map_err(|source| io_error("list", dir, source))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| io_error("list", dir, source))?;
        let file_type = entry
            .file_type()
            .map_err(|source| io_error("inspect", &entry.path(), source))?;
        if file_type.is_symlink() {
            return Err(RunDirError::SymlinkedJournal { path: entry.path() });
        }
        if let (true, Some(name)) = (file_type.is_dir(), entry.file_name().to_str()) {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// The directory of the `lane` journal of `name` in `run`, refusing links on the way to it.
fn journal_dir(run: &RunDirectory, name: &str, lane: Lane) -> Result<PathBuf, RunDirError> {
    let path = run.journal_dir(name, lane)?;
    let mut ancestor = run.path().to_path_buf();
    let mut found = true;
    for part in relative_journal_dir(name, lane).components() {
        ancestor.push(part);
        found = real_directory(&ancestor)?;
        if !found {
            break;
        }
    }
    if found {
        Ok(path)
    } else {
        Err(RunDirError::UnknownJournal {
            name: name.to_owned(),
            lane,
            path,
        })
    }
}

/// The segments of the journal in `dir`, each checked to be a regular file: a FIFO or a device
/// named like a segment is [`RunDirError::NotARegularFile`], refused before anything opens it.
fn regular_segments(dir: &Path) -> Result<Vec<SegmentFile>, RunDirError> {
    let files = list_segments(dir).map_err(|source| io_error("list segments in", dir, source))?;
    for file in &files {
        if let Some(found) = irregular(&file.path) {
            return Err(not_regular(&file.path, found));
        }
    }
    Ok(files)
}

fn summarize(run_dir: &Path, name: String, lane: Lane) -> Result<JournalSummary, RunDirError> {
    let path = run_dir.join(relative_journal_dir(&name, lane));
    let files = regular_segments(&path)?;
    let mut summary = JournalSummary {
        name,
        lane,
        path,
        records: 0,
        bytes: 0,
        segments: files.len(),
    };
    for file in files {
        let mut reader = SegmentReader::open(&file.path)
            .map_err(|source| io_error("open", &file.path, source))?;
        summary.bytes += reader.file_len();
        // Count up to the first damaged frame; `validate_run` says what is wrong with it.
        while let Ok(Some(batch)) = reader.skip_batch() {
            summary.records += batch.count;
        }
    }
    Ok(summary)
}

/// Reads the records of the `lane` journal of `name` (a stage, or a system component for
/// [`Lane::System`]) in the run in `run_dir`.
///
/// ```no_run
/// use obzenflow_core::Lane;
/// use obzenflow_runtime::journal::inspect;
///
/// let run = "runs/run_0190f1c2a3b47c8d9e0f112233445566";
/// for event in inspect::read_journal(run, "parse", Lane::Error)? {
///     let event = event?;
///     println!("{} {:?}", event.id, event.processing_info.status);
/// }
/// # Ok::<(), obzenflow_runtime::journal::RunDirError>(())
/// ```
pub fn read_journal(
    run_dir: impl AsRef<Path>,
    name: &str,
    lane: Lane,
) -> Result<JournalRecords, RunDirError> {
    let run = open_run(run_dir.as_ref())?;
    let path = journal_dir(&run, name, lane)?;
    let segments = regular_segments(&path)?;
    Ok(JournalRecords {
        journal: JournalId::new(WriterId::Unassigned, name, lane),
        path,
        segments: segments.into(),
        current: None,
        done: false,
        torn_tail: None,
    })
}

/// The records of one journal, in order, decoded from its segment files.
///
/// Iteration stops at a torn tail of the last segment (see [`JournalRecords::torn_tail`]);
/// damage anywhere else yields one error and ends the iteration.
pub struct JournalRecords {
    journal: JournalId,
    path: PathBuf,
    segments: VecDeque<SegmentFile>,
    current: Option<SegmentReader>,
    done: bool,
    torn_tail: Option<TornTail>,
}

impl fmt::Debug for JournalRecords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JournalRecords")
            .field("journal", &self.journal)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl JournalRecords {
    /// The torn tail the iteration stopped at, once it has.
    pub fn torn_tail(&self) -> Option<&TornTail> {
        self.torn_tail.as_ref()
    }

    /// The records as JSON values (the serde form of [`ChainEvent`]).
    pub fn json(self) -> impl Iterator<Item = Result<serde_json::Value, RunDirError>> {
        let path = self.path.clone();
        let journal = self.journal.clone();
        self.map(move |record| {
            let event = record?;
            serde_json::to_value(&event).map_err(|source| RunDirError::Journal {
                path: path.clone(),
                source: JournalError::Encode {
                    journal: journal.clone(),
                    event_id: event.id,
                    source: serde::ser::Error::custom(source),
                },
            })
        })
    }

    fn fail(&mut self, error: FrameError) -> Option<Result<ChainEvent, RunDirError>> {
        self.done = true;
        let is_last = self.segments.is_empty();
        if let FrameError::Damaged {
            path,
            offset,
            kind,
            at_tail,
        } = &error
        {
            if is_last && (*at_tail || rest_is_zero(path, *offset).unwrap_or(false)) {
                self.torn_tail = Some(TornTail {
                    segment: path.clone(),
                    offset: *offset,
                    bytes: file_len(path).saturating_sub(*offset),
                    reason: kind.clone(),
                });
                return None;
            }
        }
        Some(Err(RunDirError::Journal {
            path: self.path.clone(),
            source: error.into_journal_error(&self.journal),
        }))
    }
}

impl Iterator for JournalRecords {
    type Item = Result<ChainEvent, RunDirError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let Some(reader) = self.current.as_mut() else {
                let segment = self.segments.pop_front()?;
                match SegmentReader::open(&segment.path) {
                    Ok(reader) => self.current = Some(reader),
                    Err(source) => {
                        self.done = true;
                        return Some(Err(io_error("open", &segment.path, source)));
                    }
                }
                continue;
            };
            match reader.next_event() {
                Ok(Some(event)) => return Some(Ok(event)),
                Ok(None) => self.current = None,
                Err(error) => return self.fail(error),
            }
        }
        None
    }
}

/// A damaged end of a journal's last segment: `DiskJournal::open` would cut it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The segment.
    pub segment: PathBuf,
    /// Where the damaged frame starts.
    pub offset: u64,
    /// How many bytes would be cut.
    pub bytes: u64,
    /// What is wrong with the first damaged frame.
    pub reason: CorruptionKind,
}

/// What validation found in one journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalHealth {
    /// Every frame checks out.
    Clean,
    /// The last segment ends in a torn tail, which opening the journal will cut.
    TornTail(TornTail),
    /// A record is damaged where cutting it would lose later records (or a segment is
    /// missing); opening the journal fails.
    Corrupt {
        /// The segment.
        segment: PathBuf,
        /// The offset of the damaged frame.
        offset: u64,
        /// What is wrong.
        kind: CorruptionKind,
    },
}

/// One journal's validation result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalValidation {
    /// The owner's name.
    pub name: String,
    /// The lane.
    pub lane: Lane,
    /// The journal's directory.
    pub path: PathBuf,
    /// How many records decode cleanly: all of them for a clean journal, those before the tail
    /// for a torn one, and 0 for a corrupt one (its scan stops at the damage).
    pub records: u64,
    /// What was found.
    pub health: JournalHealth,
}

/// What [`validate_run`] found.
#[derive(Debug)]
pub struct ValidationReport {
    /// The run directory.
    pub run_dir: PathBuf,
    /// The manifest, if it could be read.
    pub manifest: Option<RunManifest>,
    /// Why the manifest could not be read.
    pub manifest_error: Option<RunDirError>,
    /// How the run stands (see [`RunDirectory::state`]), if the manifest could be read.
    pub state: Option<RunState>,
    /// Every journal, in [`list_journals`] order.
    pub journals: Vec<JournalValidation>,
    /// The journals the manifest names (stage lanes and system journals) that have no
    /// directory: a finding, since their records are lost or were never written.
    pub missing_journals: Vec<(String, Lane)>,
}

impl ValidationReport {
    /// Whether the manifest reads, the run is not [`RunState::Incomplete`], and every journal
    /// is clean.
    pub fn is_clean(&self) -> bool {
        self.manifest_error.is_none()
            && self.state != Some(RunState::Incomplete)
            && self.missing_journals.is_empty()
            && self
                .journals
                .iter()
                .all(|journal| journal.health == JournalHealth::Clean)
    }
}

impl fmt::Display for ValidationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "run {}", self.run_dir.display())?;
        if let Some(error) = &self.manifest_error {
            writeln!(f, "  manifest: {error}")?;
        }
        match self.state {
            Some(RunState::Incomplete) => writeln!(
                f,
                "  state: incomplete: the manifest records no end and no process holds the run; \
                 it was killed or crashed (run the flow again to start over from its sources)"
            )?,
            Some(state) => writeln!(f, "  state: {state}")?,
            None => {}
        }
        for (name, lane) in &self.missing_journals {
            let name = escape_name(name);
            writeln!(
                f,
                "  {name}.{lane}: named by the manifest, but there is no journal directory"
            )?;
        }
        for journal in &self.journals {
            let (name, lane, records) = (escape_name(&journal.name), journal.lane, journal.records);
            match &journal.health {
                JournalHealth::Clean => writeln!(f, "  {name}.{lane}: {records} records, ok")?,
                JournalHealth::TornTail(tail) => writeln!(
                    f,
                    "  {name}.{lane}: {records} records, torn tail of {} bytes at offset {} of {} ({})",
                    tail.bytes,
                    tail.offset,
                    tail.segment.display(),
                    tail.reason
                )?,
                JournalHealth::Corrupt {
                    segment,
                    offset,
                    kind,
                } => writeln!(
                    f,
                    "  {name}.{lane}: corrupt record in {} at byte offset {offset}: {kind}",
                    segment.display()
                )?,
            }
        }
        Ok(())
    }
}

/// Validates the run in `run_dir`: reads the manifest, then checks every frame of every journal
/// (checksum and full decode) the way opening would, without changing any file.
///
/// Damage is reported in the [`ValidationReport`]; an error means the run could not be read at
/// all (I/O failure, not a run directory).
///
/// ```no_run
/// use obzenflow_runtime::journal::inspect;
///
/// let report = inspect::validate_run("runs/run_0190f1c2a3b47c8d9e0f112233445566")?;
/// if !report.is_clean() {
///     eprintln!("{report}");
/// }
/// # Ok::<(), obzenflow_runtime::journal::RunDirError>(())
/// ```
pub fn validate_run(run_dir: impl AsRef<Path>) -> Result<ValidationReport, RunDirError> {
    let run = open_run(run_dir.as_ref())?;
    let (manifest, manifest_error) = match run.read_manifest() {
        Ok(manifest) => (Some(manifest), None),
        Err(error) => (None, Some(error)),
    };
    let state = match &manifest {
        Some(manifest) => Some(run.state_of(manifest)?),
        None => None,
    };
    let mut journals = Vec::new();
    let present = journal_dirs(run.path())?;
    for (name, lane) in present.iter().cloned() {
        journals.push(validate_journal(run.path(), name, lane)?);
    }
    let missing_journals = manifest.as_ref().map_or_else(Vec::new, |manifest| {
        manifest_journals(manifest)
            .filter(|journal| !present.contains(journal))
            .collect()
    });
    Ok(ValidationReport {
        run_dir: run.path().to_path_buf(),
        manifest,
        manifest_error,
        state,
        journals,
        missing_journals,
    })
}

/// The incomplete runs of the flow `flow_name` under `base` that came after its last run that
/// recorded an end, oldest first: the interrupted runs that a new run of the flow starts over
/// from. Directories that are not readable runs are skipped; so are runs still going.
///
/// ```no_run
/// use obzenflow_runtime::journal::inspect;
///
/// for run in inspect::incomplete_runs("target/obzenflow/runs", "quickstart") {
///     println!("interrupted: {}", run.display());
/// }
/// ```
pub fn incomplete_runs(base: impl AsRef<Path>, flow_name: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(base.as_ref()) else {
        return Vec::new();
    };
    let mut runs: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok())
        // Directories still being created (or left by a kill while being created) are hidden.
        .filter(|entry| !entry.file_name().to_str().is_some_and(is_temp_name))
        .filter(|entry| entry.file_type().is_ok_and(|file_type| file_type.is_dir()))
        .map(|entry| entry.path())
        .collect();
    // Run ids are time-ordered, so name order is start order.
    runs.sort();
    let mut incomplete = Vec::new();
    for path in runs {
        let Ok(run) = RunDirectory::open(&path) else {
            continue;
        };
        // A damaged neighbour never stops a new run: it is skipped, with a warning.
        let state = match run.read_manifest() {
            Ok(manifest) if manifest.flow_name == flow_name => run.state_of(&manifest),
            Ok(_) | Err(RunDirError::ManifestMissing { .. }) => continue,
            Err(error) => Err(error),
        };
        match state {
            Ok(RunState::Incomplete) => incomplete.push(path),
            Ok(RunState::Completed | RunState::Failed | RunState::Cancelled) => incomplete.clear(),
            Ok(RunState::Running) => {}
            Err(error) => {
                tracing::warn!(run_dir = %path.display(), error = %error, "skipping an unreadable run directory");
            }
        }
    }
    incomplete
}

/// Every journal the manifest names, as `(owner, lane)`.
fn manifest_journals(manifest: &RunManifest) -> impl Iterator<Item = (String, Lane)> + '_ {
    let stages = manifest
        .stages
        .iter()
        .flat_map(|stage| [Lane::Data, Lane::Error].map(|lane| (stage.name.clone(), lane)));
    let system = manifest
        .system_journals
        .iter()
        .map(|journal| (journal.name.clone(), Lane::System));
    stages.chain(system)
}

/// `name` (read from disk) as it is safe to print: control characters are escaped (`\n`,
/// `\u{1b}`), so a name can neither break a line nor drive the terminal.
///
/// ```
/// use obzenflow_runtime::journal::inspect::escape_name;
///
/// assert_eq!(escape_name("parse"), "parse");
/// assert_eq!(escape_name("a\x1b[2Jb\n"), "a\\u{1b}[2Jb\\n");
/// ```
pub fn escape_name(name: &str) -> std::borrow::Cow<'_, str> {
    if !name.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(name);
    }
    let mut escaped = String::with_capacity(name.len() + 8);
    for c in name.chars() {
        if c.is_control() {
            escaped.extend(c.escape_default());
        } else {
            escaped.push(c);
        }
    }
    std::borrow::Cow::Owned(escaped)
}

fn validate_journal(
    run_dir: &Path,
    name: String,
    lane: Lane,
) -> Result<JournalValidation, RunDirError> {
    let path = run_dir.join(relative_journal_dir(&name, lane));
    // The scan opens every segment: refuse a FIFO or a device first, naming it.
    regular_segments(&path)?;
    let journal = JournalId::new(WriterId::Unassigned, name.as_str(), lane);
    let (records, health) = match scan_journal(&path, &journal, ScanDepth::Decode) {
        Ok(scan) => {
            let health = match scan.torn_tail {
                None => JournalHealth::Clean,
                Some(tail) => JournalHealth::TornTail(TornTail {
                    bytes: tail.file_len.saturating_sub(tail.offset),
                    segment: tail.segment,
                    offset: tail.offset,
                    reason: tail.kind,
                }),
            };
            (scan.records, health)
        }
        Err(JournalError::Corrupt {
            segment,
            offset,
            kind,
        }) => (
            0,
            JournalHealth::Corrupt {
                segment,
                offset,
                kind,
            },
        ),
        Err(source) => return Err(RunDirError::Journal { path, source }),
    };
    Ok(JournalValidation {
        name,
        lane,
        path,
        records,
        health,
    })
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |metadata| metadata.len())
}

fn io_error(operation: &'static str, path: &Path, source: std::io::Error) -> RunDirError {
    RunDirError::Io {
        operation,
        path: path.to_path_buf(),
        source,
    }
}
