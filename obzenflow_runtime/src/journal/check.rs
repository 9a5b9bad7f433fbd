//! The one check of a run's journals that every reader runs: `validate`, `inspect`, `verify`,
//! replay and the run listing all call [`check_owner`], and differ only in how deep it reads
//! ([`ScanDepth`]).
//!
//! A stage's two journals are checked together, because each says something about the other:
//! the data journal's seal carries the error journal's digest, and its `completed` record
//! counts the error journal's records. A journal of a finished run must be sealed; one of a
//! run that did not finish may lack a seal, which is reported as such and is not damage.

use std::path::{Path, PathBuf};

use obzenflow_core::{CorruptionKind, JournalError, JournalId, Lane, WriterId};

use super::audit::check_companion;
use super::escape::escape_name;
use super::files::{irregular, not_regular};
use super::run_dir::{relative_journal_dir, RunDirError};
use super::segment::{list_segments, scan_journal, JournalScan, ScanDepth, SegmentFile};

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
    /// Every frame checks out, and the journal is sealed.
    Clean,
    /// Every frame checks out, but the journal has no seal: its run did not finish (it is
    /// running, or was killed), so this is no damage. In a finished run it is
    /// [`CorruptionKind::Unsealed`].
    Unsealed,
    /// The last segment ends in a torn tail, which opening the journal will cut.
    TornTail(TornTail),
    /// A record is damaged where cutting it would lose later records, a segment or frame is
    /// missing or out of place, the seal disagrees with the frames, or the records contradict
    /// each other; opening (or reading) the journal fails.
    Corrupt {
        /// The segment (the journal's directory if it has no segment).
        segment: PathBuf,
        /// The offset of the damaged frame.
        offset: u64,
        /// What is wrong.
        kind: CorruptionKind,
    },
}

impl JournalHealth {
    /// Whether this is damage: a torn tail or corruption.
    pub fn is_damage(&self) -> bool {
        matches!(self, Self::TornTail(_) | Self::Corrupt { .. })
    }

    /// The journal error a reader reports for corruption; `None` otherwise.
    pub(crate) fn corruption(&self) -> Option<JournalError> {
        match self {
            Self::Corrupt {
                segment,
                offset,
                kind,
            } => Some(JournalError::Corrupt {
                segment: segment.clone(),
                offset: *offset,
                kind: kind.clone(),
            }),
            _ => None,
        }
    }
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
    /// How many records its frames hold: all of them for a clean or unsealed journal, those
    /// before the tail for a torn one, and 0 for a corrupt one (its scan stops at the damage).
    pub records: u64,
    /// How many of them are data records, where known: from the seal, or from decoding.
    pub data_records: Option<u64>,
    /// What was found.
    pub health: JournalHealth,
}

impl std::fmt::Display for JournalValidation {
    /// One line: the journal's name (escaped), its records and its health, naming segment and
    /// offset for damage.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (name, lane, records) = (escape_name(&self.name), self.lane, self.records);
        match &self.health {
            JournalHealth::Clean => write!(f, "{name}.{lane}: {records} records, ok"),
            JournalHealth::Unsealed => write!(
                f,
                "{name}.{lane}: {records} records, unsealed (the run did not finish)"
            ),
            JournalHealth::TornTail(tail) => write!(
                f,
                "{name}.{lane}: {records} records, torn tail of {} bytes at offset {} of {} ({})",
                tail.bytes,
                tail.offset,
                tail.segment.display(),
                tail.reason
            ),
            JournalHealth::Corrupt {
                segment,
                offset,
                kind,
            } => write!(
                f,
                "{name}.{lane}: corrupt record in {} at byte offset {offset}: {kind}",
                segment.display()
            ),
        }
    }
}

/// The segments of the journal in `dir`, each checked to be a regular file: a FIFO or a device
/// named like a segment is [`RunDirError::NotARegularFile`], refused before anything opens it.
pub(crate) fn regular_segments(dir: &Path) -> Result<Vec<SegmentFile>, RunDirError> {
    let files = list_segments(dir).map_err(|source| RunDirError::Io {
        operation: "list segments in",
        path: dir.to_path_buf(),
        source,
    })?;
    for file in &files {
        if let Some(found) = irregular(&file.path) {
            return Err(not_regular(&file.path, found));
        }
    }
    Ok(files)
}

/// Checks the journals `lanes` of the owner `name` in the run at `run_dir` to `depth`: a
/// stage's data and error journals (those of them that have directories), or a system
/// component's journal. `finished` says the run ended, so every journal must be sealed.
///
/// Damage is in each [`JournalValidation`]'s health; an error means a journal could not be
/// read at all.
pub(crate) fn check_owner(
    run_dir: &Path,
    name: &str,
    lanes: &[Lane],
    finished: bool,
    depth: ScanDepth,
) -> Result<Vec<JournalValidation>, RunDirError> {
    let mut scans = Vec::with_capacity(lanes.len());
    // The error journal first: the data journal's checks use what it holds.
    let mut ordered = lanes.to_vec();
    ordered.sort_by_key(|lane| *lane != Lane::Error);
    for lane in ordered {
        let path = run_dir.join(relative_journal_dir(name, lane));
        // The scan opens every segment: refuse a FIFO or a device first, naming it.
        regular_segments(&path)?;
        let journal = JournalId::new(WriterId::Unassigned, name, lane);
        let scanned = match scan_journal(&path, &journal, depth) {
            Ok(scan) => Ok(scan),
            Err(error @ JournalError::Corrupt { .. }) => Err(error),
            Err(source) => return Err(RunDirError::Journal { path, source }),
        };
        scans.push((lane, path, scanned));
    }
    let error_scan = match scans.iter().find(|(lane, _, _)| *lane == Lane::Error) {
        Some((_, path, scan)) => scan.as_ref().ok().map(|scan| (path.clone(), scan.clone())),
        // A stage whose error journal directory is gone: its data journal's seal says what
        // it held, so check against nothing.
        None if lanes.contains(&Lane::Data) => Some((
            run_dir.join(relative_journal_dir(name, Lane::Error)),
            JournalScan::empty(),
        )),
        None => None,
    };
    let mut checked: Vec<JournalValidation> = scans
        .into_iter()
        .map(|(lane, path, scanned)| {
            let (records, data_records, health) =
                judge(scanned, &path, finished, error_scan.as_ref());
            JournalValidation {
                name: name.to_owned(),
                lane,
                path,
                records,
                data_records,
                health,
            }
        })
        .collect();
    checked.sort_by_key(|journal| journal.lane);
    Ok(checked)
}

/// The verdict on one scanned journal; `error` is the stage's scanned error journal, for a
/// data journal's cross-checks.
fn judge(
    scanned: Result<JournalScan, JournalError>,
    path: &Path,
    finished: bool,
    error: Option<&(PathBuf, JournalScan)>,
) -> (u64, Option<u64>, JournalHealth) {
    let scan = match scanned {
        Ok(scan) => scan,
        Err(error) => return (0, None, corrupt(error)),
    };
    let records = scan.records;
    if let Some(tail) = &scan.torn_tail {
        let tail = TornTail {
            bytes: tail.file_len.saturating_sub(tail.offset),
            segment: tail.segment.clone(),
            offset: tail.offset,
            reason: tail.kind.clone(),
        };
        return (records, None, JournalHealth::TornTail(tail));
    }
    if let Err(error) = sealed_checks(&scan, path, finished, error) {
        return (0, None, corrupt(error));
    }
    let data_records = match (scan.frames.seal(), &scan.record_audit) {
        (Some(found), _) => Some(found.seal.digest.data_records),
        (None, Some(_)) => Some(scan.frames.digest().data_records),
        (None, None) => None,
    };
    let health = match scan.frames.seal() {
        Some(_) => JournalHealth::Clean,
        None => JournalHealth::Unsealed,
    };
    (records, data_records, health)
}

/// The errored records an error journal holds: its data records, without the end-of-stream
/// marker that ends it.
fn errored_records(scan: &JournalScan) -> u64 {
    match (scan.frames.seal(), &scan.record_audit) {
        (Some(found), _) => found.seal.digest.data_records,
        (None, Some(_)) => scan.frames.digest().data_records,
        (None, None) => scan.records,
    }
}

/// The checks of a journal's end: sealed if it must be, and, once sealed, its terminal record
/// and its seal's companion against the stage's error journal.
fn sealed_checks(
    scan: &JournalScan,
    path: &Path,
    finished: bool,
    error: Option<&(PathBuf, JournalScan)>,
) -> Result<(), JournalError> {
    scan.frames.finish(path, finished)?;
    let Some(seal) = scan.frames.seal() else {
        return Ok(());
    };
    if seal.seal.lane == Lane::Data {
        if let Some((error_dir, error_scan)) = error {
            check_companion(seal, &error_scan.frames, error_dir)?;
        }
    }
    if let Some(audit) = &scan.record_audit {
        let error_records = error.map(|(_, error_scan)| errored_records(error_scan));
        audit.finish_sealed(&seal.place, error_records)?;
    }
    Ok(())
}

fn corrupt(error: JournalError) -> JournalHealth {
    match error {
        JournalError::Corrupt {
            segment,
            offset,
            kind,
        } => JournalHealth::Corrupt {
            segment,
            offset,
            kind,
        },
        // `check_owner` passes only corruption on.
        other => JournalHealth::Corrupt {
            segment: PathBuf::new(),
            offset: 0,
            kind: CorruptionKind::Undecodable {
                reason: other.to_string(),
            },
        },
    }
}
