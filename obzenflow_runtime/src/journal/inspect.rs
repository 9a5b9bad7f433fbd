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

use obzenflow_core::{ChainEvent, JournalError, JournalId, Lane, WriterId};

use super::audit::{FrameAudit, Place, RecordAudit};
use super::check::{check_owner, regular_segments};
pub use super::check::{JournalHealth, JournalValidation, TornTail};
pub use super::escape::escape_name;
use super::files::is_temp_name;
use super::run_dir::{relative_journal_dir, RunDirError, RunDirectory, RunManifest, RunState};
use super::segment::{
    nothing_follows, FrameBody, FrameError, ScanDepth, SegmentFile, SegmentReader,
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
    /// What the checks every reader makes found in its frames and seal (no record is
    /// decoded; [`validate_run`] also checks the records).
    pub health: JournalHealth,
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
    let finished = run_finished(&run)?;
    let run_dir = run.path();
    let present = journal_dirs(run_dir)?;
    let checked = check_journals(run_dir, &present, finished, ScanDepth::Frames)?;
    present
        .into_iter()
        .zip(checked)
        .map(|((name, lane), checked)| summarize(run_dir, name, lane, checked.health))
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

fn summarize(
    run_dir: &Path,
    name: String,
    lane: Lane,
    health: JournalHealth,
) -> Result<JournalSummary, RunDirError> {
    let path = run_dir.join(relative_journal_dir(&name, lane));
    let files = regular_segments(&path)?;
    let mut summary = JournalSummary {
        name,
        lane,
        path,
        records: 0,
        bytes: 0,
        segments: files.len(),
        health,
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
/// The journal is checked first as [`validate_run`] checks it, its frames and its seal, and for
/// a stage together with the stage's other journal: damage is [`RunDirError::Journal`]
/// naming the journal, segment and offset, before any record is read. The records themselves
/// are checked as they are read (event ids, end-of-stream and terminal records, and their
/// counts), and a disagreement is an error item naming the same. A journal of a finished run
/// must be sealed.
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
    let finished = run_finished(&run)?;
    let lanes = owner_lanes(run.path(), name, lane)?;
    let checked = check_owner(run.path(), name, &lanes, finished, ScanDepth::Frames)?;
    // Corruption is refused; so is a torn tail once the run finished (its seal went with it).
    for journal in &checked {
        let source = match &journal.health {
            JournalHealth::TornTail(tail) if finished => Some(JournalError::Corrupt {
                segment: tail.segment.clone(),
                offset: tail.offset,
                kind: tail.reason.clone(),
            }),
            health => health.corruption(),
        };
        if let Some(source) = source {
            let path = journal.path.clone();
            return Err(RunDirError::Journal { path, source });
        }
    }
    let error_records = match lane {
        Lane::Data => Some(
            checked
                .iter()
                .find(|journal| journal.lane == Lane::Error)
                .map_or(0, |journal| journal.data_records.unwrap_or(journal.records)),
        ),
        Lane::Error | Lane::System => None,
    };
    Ok(JournalRecords {
        journal: JournalId::new(WriterId::Unassigned, name, lane),
        path,
        segments: segments.into(),
        current: None,
        frames: FrameAudit::new(),
        records: RecordAudit::new(lane),
        pending: VecDeque::new(),
        place: None,
        finished,
        error_records,
        done: false,
        torn_tail: None,
    })
}

/// Whether the run ended (completed, failed or cancelled), so its journals must be sealed. A
/// run whose manifest cannot be read is not known to have ended.
fn run_finished(run: &RunDirectory) -> Result<bool, RunDirError> {
    let Ok(manifest) = run.read_manifest() else {
        return Ok(false);
    };
    Ok(matches!(
        run.state_of(&manifest)?,
        RunState::Completed | RunState::Failed | RunState::Cancelled
    ))
}

/// The lanes of the owner of a `lane` journal named `name` that have directories: a stage's
/// data and error journals are checked together.
fn owner_lanes(run_dir: &Path, name: &str, lane: Lane) -> Result<Vec<Lane>, RunDirError> {
    if lane == Lane::System {
        return Ok(vec![Lane::System]);
    }
    let mut lanes = Vec::new();
    for lane in [Lane::Data, Lane::Error] {
        if real_directory(&run_dir.join(relative_journal_dir(name, lane)))? {
            lanes.push(lane);
        }
    }
    Ok(lanes)
}

/// The records of one journal, in order, decoded from its segment files.
///
/// Every frame and record goes through the checks [`validate_run`] makes. Iteration stops at a
/// torn tail of the last segment (see [`JournalRecords::torn_tail`]); damage anywhere else,
/// a missing seal in a finished run, or records that contradict each other yield one error and
/// end the iteration.
pub struct JournalRecords {
    journal: JournalId,
    path: PathBuf,
    segments: VecDeque<SegmentFile>,
    current: Option<SegmentReader>,
    frames: FrameAudit,
    records: RecordAudit,
    /// Decoded records of the current frame not yet returned.
    pending: VecDeque<ChainEvent>,
    /// Where the current frame is.
    place: Option<Place>,
    finished: bool,
    /// For a data journal, how many records its error journal holds.
    error_records: Option<u64>,
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

    /// Whether the journal was read to its seal (only once the iteration ended).
    pub fn is_sealed(&self) -> bool {
        self.frames.seal().is_some()
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

    fn corrupt(&mut self, source: JournalError) -> Option<Result<ChainEvent, RunDirError>> {
        self.done = true;
        Some(Err(RunDirError::Journal {
            path: self.path.clone(),
            source,
        }))
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
            if is_last && (*at_tail || nothing_follows(path, *offset)) {
                self.torn_tail = Some(TornTail {
                    segment: path.clone(),
                    offset: *offset,
                    bytes: file_len(path).saturating_sub(*offset),
                    reason: kind.clone(),
                });
                return None;
            }
        }
        let source = error.into_journal_error(&self.journal);
        self.corrupt(source)
    }

    /// The end of the last segment: the journal must be sealed if its run finished, and a
    /// sealed journal's terminal record must agree with what it (and its error journal) holds.
    fn finish(&mut self) -> Option<Result<ChainEvent, RunDirError>> {
        self.done = true;
        let checked = self
            .frames
            .finish(&self.path, self.finished)
            .and_then(|()| match self.frames.seal() {
                Some(seal) => self.records.finish_sealed(&seal.place, self.error_records),
                None => Ok(()),
            });
        match checked {
            Ok(()) => None,
            Err(source) => self.corrupt(source),
        }
    }

    /// Reads the next frame into `pending`; `Some` to end the iteration with.
    fn read_frame(&mut self) -> Option<Option<Result<ChainEvent, RunDirError>>> {
        let Some(reader) = self.current.as_mut() else {
            let Some(segment) = self.segments.pop_front() else {
                return Some(self.finish());
            };
            if let Err(source) = self.frames.segment(&segment.path, segment.first_seq) {
                return Some(self.corrupt(source));
            }
            match SegmentReader::open(&segment.path) {
                Ok(reader) => self.current = Some(reader),
                Err(source) => {
                    self.done = true;
                    return Some(Some(Err(io_error("open", &segment.path, source))));
                }
            }
            return None;
        };
        let frame = match reader.read_frame(ScanDepth::Decode) {
            Ok(Some(frame)) => frame,
            Ok(None) => {
                self.current = None;
                return None;
            }
            Err(error) => return Some(self.fail(error)),
        };
        let place = Place::new(reader.path(), frame.offset);
        let content = frame.content();
        if let Err(kind) =
            self.frames
                .frame(place.clone(), frame.end, frame.header, frame.batch, content)
        {
            return Some(self.corrupt(place.corrupt(kind)));
        }
        if let FrameBody::Records(events) = frame.body {
            self.pending.extend(events);
        }
        self.place = Some(place);
        None
    }
}

impl Iterator for JournalRecords {
    type Item = Result<ChainEvent, RunDirError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            if let (Some(event), Some(place)) = (self.pending.pop_front(), &self.place) {
                return match self.records.record(&event, place) {
                    Ok(()) => Some(Ok(event)),
                    Err(source) => self.corrupt(source),
                };
            }
            if let Some(end) = self.read_frame() {
                return end;
            }
        }
        None
    }
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
    /// Whether the manifest reads, the run is not [`RunState::Incomplete`], and no journal is
    /// damaged (a journal of a finished run that lacks its seal is damaged; one of a running run
    /// is [`JournalHealth::Unsealed`], which is no damage).
    pub fn is_clean(&self) -> bool {
        self.manifest_error.is_none()
            && self.state != Some(RunState::Incomplete)
            && self.missing_journals.is_empty()
            && self
                .journals
                .iter()
                .all(|journal| !journal.health.is_damage())
    }
}

impl fmt::Display for ValidationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "run {}", self.run_dir.display())?;
        if let Some(error) = &self.manifest_error {
            writeln!(f, "  manifest: {}", obzenflow_core::ErrorChain::new(error))?;
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
            writeln!(f, "  {journal}")?;
        }
        Ok(())
    }
}

/// Validates the run in `run_dir`: reads the manifest, then checks every frame of every journal
/// (checksum and full decode) the way opening would, without changing any file, and what a
/// finished journal must be: sealed, its seal's counts and running hash matching its frames,
/// event ids in order, exactly one terminal record (after exactly one end-of-stream marker for
/// a `completed` stage) whose counts match the journal and its stage's error journal, whose
/// digest the data journal's seal also carries.
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
    let finished = matches!(
        state,
        Some(RunState::Completed | RunState::Failed | RunState::Cancelled)
    );
    let present = journal_dirs(run.path())?;
    let journals = check_journals(run.path(), &present, finished, ScanDepth::Decode)?;
    let missing_journals = manifest
        .as_ref()
        .map_or_else(Vec::new, |manifest| absent_journals(manifest, &present));
    Ok(ValidationReport {
        run_dir: run.path().to_path_buf(),
        manifest,
        manifest_error,
        state,
        journals,
        missing_journals,
    })
}

/// Checks the journals `present` (in [`list_journals`] order) of the run at `run_dir`, each
/// owner's together ([`check_owner`]).
fn check_journals(
    run_dir: &Path,
    present: &[(String, Lane)],
    finished: bool,
    depth: ScanDepth,
) -> Result<Vec<JournalValidation>, RunDirError> {
    let mut journals = Vec::with_capacity(present.len());
    let mut index = 0;
    while let Some((name, _)) = present.get(index) {
        let lanes: Vec<Lane> = present[index..]
            .iter()
            .take_while(|(other, lane)| other == name && *lane != Lane::System)
            .map(|(_, lane)| *lane)
            .collect();
        let lanes = if lanes.is_empty() {
            vec![Lane::System]
        } else {
            lanes
        };
        index += lanes.len();
        journals.extend(check_owner(run_dir, name, &lanes, finished, depth)?);
    }
    Ok(journals)
}

/// The journals the manifest of the run in `run_dir` names that have no directory (none if
/// the manifest cannot be read: [`validate_run`] says why).
///
/// ```no_run
/// use obzenflow_runtime::journal::inspect;
///
/// for (name, lane) in inspect::missing_journals("runs/run_0190f1c2a3b47c8d9e0f112233445566")? {
///     println!("{name}.{lane} is missing");
/// }
/// # Ok::<(), obzenflow_runtime::journal::RunDirError>(())
/// ```
pub fn missing_journals(run_dir: impl AsRef<Path>) -> Result<Vec<(String, Lane)>, RunDirError> {
    let run = open_run(run_dir.as_ref())?;
    let Ok(manifest) = run.read_manifest() else {
        return Ok(Vec::new());
    };
    let present = journal_dirs(run.path())?;
    Ok(absent_journals(&manifest, &present))
}

/// The journals `manifest` names that are not `present`.
fn absent_journals(manifest: &RunManifest, present: &[(String, Lane)]) -> Vec<(String, Lane)> {
    manifest_journals(manifest)
        .filter(|journal| !present.contains(journal))
        .collect()
}

/// What [`check_run_frames`] found.
#[cfg(feature = "cli")]
pub(crate) struct RunFrames {
    /// Every journal present, checked.
    pub(crate) journals: Vec<JournalValidation>,
    /// The journals the manifest names that have no directory.
    pub(crate) missing: Vec<(String, Lane)>,
}

/// The journals of the run at `run_dir` checked frame by frame, no record decoded: what the
/// run listing shows; and the journals `manifest` names that have no directory.
#[cfg(feature = "cli")]
pub(crate) fn check_run_frames(
    run_dir: &Path,
    manifest: &RunManifest,
    finished: bool,
) -> Result<RunFrames, RunDirError> {
    let run = open_run(run_dir)?;
    let present = journal_dirs(run.path())?;
    let journals = check_journals(run.path(), &present, finished, ScanDepth::Frames)?;
    let missing = absent_journals(manifest, &present);
    Ok(RunFrames { journals, missing })
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
                tracing::warn!(run_dir = %path.display(), error = %obzenflow_core::ErrorChain::new(&error), "skipping an unreadable run directory");
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
