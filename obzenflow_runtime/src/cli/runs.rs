//! `obzenflow runs`: find the run directories under a base directory, check their journals
//! frame by frame (checksums, sequence, seals; no record is decoded), take their counts from
//! the seals, and format the listing.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use obzenflow_core::{ErrorChain, Lane, RunId};

use crate::journal::inspect::{self, escape_name, JournalHealth, JournalValidation};
use crate::journal::is_temp_name;
use crate::journal::{RunDirError, RunDirectory, RunManifest, RunState};

/// One run directory, as listed.
#[derive(Debug)]
pub struct RunListing {
    /// The run directory.
    pub run_dir: PathBuf,
    /// Its manifest, or why it could not be read.
    pub manifest: Result<RunManifest, RunDirError>,
    /// How the run stands, if its manifest and lock could be read.
    pub state: Option<RunState>,
    /// The record counts of its stages, in declaration order.
    pub stages: Vec<StageCounts>,
    /// Its damaged journals, as `validate` reports them (a torn tail of a run that did not
    /// finish is what a crash leaves, and is not listed here), or why its journals could not
    /// be checked.
    pub damage: Result<Vec<JournalValidation>, RunDirError>,
    /// The journals its manifest names that have no directory: damage in a run that ended,
    /// journals not opened yet (or never, if its process died first) in one that did not.
    pub missing: Vec<(String, Lane)>,
    /// Whether the run recorded its end (completed, failed or cancelled).
    pub finished: bool,
}

impl RunListing {
    /// Whether the listing found damage.
    pub fn is_damaged(&self) -> bool {
        (self.finished && !self.missing.is_empty())
            || self
                .damage
                .as_ref()
                .map_or(true, |damage| !damage.is_empty())
    }
}

/// The records of one stage's journals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageCounts {
    /// The stage's name.
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// Data records in its data journal, from its seal; `None` if the journal is not sealed
    /// (its run did not finish) or is damaged.
    pub data: Option<u64>,
    /// Records in its error journal, from its seal; `None` as for `data`.
    pub errors: Option<u64>,
}

/// Lists the run directories under `base` (the subdirectories holding a `manifest.json` or
/// named by a run id), in name order, which for run ids is start order. Every journal is
/// checked frame by frame as `validate` checks it, but no record is decoded: counts come from
/// the journals' seals.
///
/// ```no_run
/// use obzenflow_runtime::cli::{format_runs, list_runs};
///
/// let runs = list_runs("target/obzenflow/runs")?;
/// print!("{}", format_runs(&runs));
/// # Ok::<(), obzenflow_runtime::journal::RunDirError>(())
/// ```
pub fn list_runs(base: impl AsRef<Path>) -> Result<Vec<RunListing>, RunDirError> {
    let base = base.as_ref();
    let io_error = |source| RunDirError::Io {
        operation: "list",
        path: base.to_path_buf(),
        source,
    };
    let mut run_dirs = Vec::new();
    for entry in std::fs::read_dir(base).map_err(io_error)? {
        let entry = entry.map_err(io_error)?;
        // A hidden `.….tmp` directory is a run directory being created (or one a kill left
        // while it was being created): not a run yet.
        if entry.file_name().to_str().is_some_and(is_temp_name) {
            continue;
        }
        let path = entry.path();
        if path.is_dir() && (path.join("manifest.json").is_file() || is_named_like_a_run(&path)) {
            run_dirs.push(path);
        }
    }
    run_dirs.sort();
    Ok(run_dirs.into_iter().map(listing).collect())
}

/// Whether the directory's name is a run id: a run whose manifest is missing is listed too,
/// with what is wrong with it, rather than hidden.
fn is_named_like_a_run(path: &Path) -> bool {
    path.file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| name.parse::<RunId>().is_ok())
}

fn listing(run_dir: PathBuf) -> RunListing {
    let (manifest, state) = match RunDirectory::open(&run_dir) {
        Ok(run) => {
            let manifest = run.read_manifest();
            let state = manifest
                .as_ref()
                .ok()
                .and_then(|manifest| run.state_of(manifest).ok());
            (manifest, state)
        }
        Err(error) => (Err(error), None),
    };
    let finished = matches!(
        state,
        Some(RunState::Completed | RunState::Failed | RunState::Cancelled)
    );
    // A run without a readable manifest is listed as such; its journals are not checked.
    let checked = match &manifest {
        Ok(manifest) => inspect::check_run_frames(&run_dir, manifest, finished).map(Some),
        Err(_) => Ok(None),
    };
    let (checked, missing) = match checked {
        Ok(Some(frames)) => (Ok(frames.journals), frames.missing),
        Ok(None) => (Ok(Vec::new()), Vec::new()),
        Err(error) => (Err(error), Vec::new()),
    };
    let journals: &[JournalValidation] = checked.as_deref().unwrap_or(&[]);
    let count = |name: &str, lane: Lane| {
        journals
            .iter()
            .find(|journal| journal.name == name && journal.lane == lane)
            .filter(|journal| journal.health == JournalHealth::Clean)
            .and_then(|journal| journal.data_records)
    };
    let stages = match &manifest {
        Ok(manifest) => manifest
            .stages
            .iter()
            .map(|stage| StageCounts {
                name: stage.name.clone(),
                kind: stage.kind.clone(),
                data: count(&stage.name, Lane::Data),
                errors: count(&stage.name, Lane::Error),
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    let damage = checked.map(|journals| {
        journals
            .into_iter()
            .filter(|journal| match journal.health {
                JournalHealth::Corrupt { .. } => true,
                JournalHealth::TornTail(_) => finished,
                JournalHealth::Clean | JournalHealth::Unsealed => false,
            })
            .collect()
    });
    RunListing {
        run_dir,
        manifest,
        state,
        stages,
        damage,
        missing,
        finished,
    }
}

/// The listing as text: one line per run, one indented line per stage.
///
/// ```
/// use obzenflow_runtime::cli::format_runs;
///
/// assert_eq!(format_runs(&[]), "no runs\n");
/// ```
pub fn format_runs(runs: &[RunListing]) -> String {
    if runs.is_empty() {
        return "no runs\n".to_owned();
    }
    let mut text = String::new();
    for run in runs {
        format_run(&mut text, run);
    }
    text
}

/// Everything printed here was read from disk; names and messages are escaped
/// ([`escape_name`]) so that none can break a line or drive the terminal.
fn format_run(text: &mut String, run: &RunListing) {
    let name = run.run_dir.file_name().map_or_else(
        || run.run_dir.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    );
    let name = escape_name(&name);
    let manifest = match &run.manifest {
        Ok(manifest) => manifest,
        Err(error) => {
            let error = ErrorChain::new(error).to_string();
            let _ = writeln!(text, "{name}  manifest unreadable: {}", escape_name(&error));
            return;
        }
    };
    let duration = manifest.ended_at.map_or_else(
        || "-".to_owned(),
        |ended| format!("{:.2?}", ended.saturating_since(manifest.started_at)),
    );
    let _ = write!(
        text,
        "{name}  flow `{}`  {}  started {}  took {duration}",
        escape_name(&manifest.flow_name),
        run.state.map_or("unknown", RunState::as_str),
        manifest.started_at
    );
    if let Some(original) = &manifest.replayed_from {
        let original = original.display().to_string();
        let _ = write!(text, "  replay of {}", escape_name(&original));
    }
    if let Some(reason) = &manifest.reason {
        let _ = write!(text, "  because: {}", escape_name(reason));
    }
    text.push('\n');
    // A run that ended has sealed journals; without a seal a count is damage.
    let sealed = matches!(
        run.state,
        Some(RunState::Completed | RunState::Failed | RunState::Cancelled)
    );
    let width = run
        .stages
        .iter()
        .map(|stage| escape_name(&stage.name).len())
        .max();
    for stage in &run.stages {
        let _ = writeln!(
            text,
            "    {:<width$}  {:<9}  data {:>8}  errors {:>8}",
            escape_name(&stage.name),
            escape_name(&stage.kind),
            count_text(stage.data, sealed),
            count_text(stage.errors, sealed),
            width = width.unwrap_or(0)
        );
    }
    for (name, lane) in &run.missing {
        let name = escape_name(name);
        let _ = if run.finished {
            writeln!(
                text,
                "    damaged: {name}.{lane}: named by the manifest, but there is no journal directory"
            )
        } else {
            writeln!(
                text,
                "    not opened: {name}.{lane}: the run did not finish before opening this journal"
            )
        };
    }
    match &run.damage {
        Ok(damage) => {
            for journal in damage {
                let line = journal.to_string();
                let _ = writeln!(text, "    damaged: {}", escape_name(&line));
            }
        }
        Err(error) => {
            let error = ErrorChain::new(error).to_string();
            let _ = writeln!(text, "    journals unreadable: {}", escape_name(&error));
        }
    }
}

/// A count from a seal; without one, `unsealed` for a run that did not finish (its journals
/// have no seal yet) and `damaged` for one that did.
fn count_text(count: Option<u64>, sealed: bool) -> String {
    match (count, sealed) {
        (Some(count), _) => count.to_string(),
        (None, true) => "damaged".to_owned(),
        (None, false) => "unsealed".to_owned(),
    }
}
