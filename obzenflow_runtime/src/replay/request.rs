//! What a flow builder asked to replay, and the checks made on the archived run before any
//! stage starts: its manifest reads, its status is `completed` (unless allowed otherwise), and
//! it has a source of the same name for every source of the flow.

use std::path::{Path, PathBuf};

use super::archive::ArchiveSource;
use super::error::ReplayError;
use crate::journal::{RunDirectory, RunManifest};
use crate::stages::StageKind;

/// A flow builder's replay settings: none by default.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReplayRequest {
    /// The archived run directory, for a replay.
    pub(crate) run_dir: Option<PathBuf>,
    /// Whether a run that did not complete may be replayed.
    pub(crate) allow_incomplete: bool,
}

impl ReplayRequest {
    /// Opens and checks the archived run, if a replay was asked for.
    pub(crate) fn open(&self) -> Result<Option<ArchivedRun>, ReplayError> {
        self.run_dir
            .as_deref()
            .map(|run_dir| ArchivedRun::open(run_dir, self.allow_incomplete))
            .transpose()
    }
}

/// An archived run found fit to replay.
#[derive(Debug)]
pub(crate) struct ArchivedRun {
    run_dir: PathBuf,
    manifest: RunManifest,
    allow_incomplete: bool,
}

impl ArchivedRun {
    /// Reads the manifest of the run in `run_dir` and checks its status.
    fn open(run_dir: &Path, allow_incomplete: bool) -> Result<Self, ReplayError> {
        let archive_error = |source| ReplayError::Archive {
            run_dir: run_dir.to_path_buf(),
            source: Box::new(source),
        };
        let run = RunDirectory::open(run_dir).map_err(archive_error)?;
        let manifest = run.read_manifest().map_err(archive_error)?;
        let state = run.state_of(&manifest).map_err(archive_error)?;
        // An absolute path keeps `replayed_from` meaningful from any working directory.
        let run_dir = std::path::absolute(run_dir).unwrap_or_else(|_| run_dir.to_path_buf());
        if !state.is_completed() && !allow_incomplete {
            return Err(ReplayError::IncompleteRun { run_dir, state });
        }
        tracing::info!(
            archive = %run_dir.display(),
            state = state.as_str(),
            "replaying an archived run"
        );
        Ok(Self {
            run_dir,
            manifest,
            allow_incomplete,
        })
    }

    /// The archived run directory, as recorded in the replay's `replayed_from`.
    pub(crate) fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// The archived run's id.
    pub(crate) fn run_id(&self) -> obzenflow_core::RunId {
        self.manifest.run_id
    }

    /// The source that replays the archived source `stage`.
    pub(crate) fn source(&self, stage: &str) -> Result<ArchiveSource, ReplayError> {
        let source_kind = StageKind::Source.as_str();
        let archived = self
            .manifest
            .stages
            .iter()
            .any(|archived| archived.name == stage && archived.kind == source_kind);
        if !archived {
            return Err(ReplayError::SourceNotArchived {
                stage: stage.to_owned(),
                run_dir: self.run_dir.clone(),
                archived_sources: self
                    .manifest
                    .stages
                    .iter()
                    .filter(|archived| archived.kind == source_kind)
                    .map(|archived| archived.name.clone())
                    .collect(),
            });
        }
        let source = ArchiveSource::new(&self.run_dir, stage);
        Ok(if self.allow_incomplete {
            source.allow_incomplete()
        } else {
            source
        })
    }
}
