//! `ReplayError` and `VerifyError`: why a replay could not be set up or run, and why two runs
//! could not be compared.

use std::fmt;
use std::path::PathBuf;

use obzenflow_core::Lane;
use serde::Serialize;

use crate::journal::{RunDirError, RunState};

/// A run directory could not be replayed.
///
/// Returned by [`FlowBuilder::build`](crate::pipeline::FlowBuilder::build) (wrapped in
/// [`FlowError::Replay`](crate::pipeline::FlowError::Replay)) for problems found before the
/// flow starts, and carried as the source of a replaying source's stage failure for problems
/// found while reading the archive (a corrupt record names its segment and byte offset).
///
/// ```
/// use std::path::PathBuf;
/// use obzenflow_runtime::journal::RunState;
/// use obzenflow_runtime::replay::ReplayError;
///
/// let error = ReplayError::IncompleteRun {
///     run_dir: PathBuf::from("runs/run_0190f1c2a3b47c8d9e0f112233445566"),
///     state: RunState::Incomplete,
/// };
/// assert!(error.to_string().contains("the run is `incomplete`"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The archived run directory or its manifest could not be read.
    #[error("cannot read the archived run {}", run_dir.display())]
    Archive {
        /// The archived run directory.
        run_dir: PathBuf,
        /// The cause.
        #[source]
        source: Box<RunDirError>,
    },
    /// The archived run did not complete and incomplete replays were not allowed.
    #[error(
        "refusing to replay {}: the run is `{state}`, not `completed`, so its journals may \
         stop short of what the run would have produced; allow it explicitly with \
         `allow_incomplete_replay()`",
        run_dir.display()
    )]
    IncompleteRun {
        /// The archived run directory.
        run_dir: PathBuf,
        /// How the run stands: running, failed, cancelled, or incomplete (its process died).
        state: RunState,
    },
    /// A source of the flow has no source of the same name in the archived run.
    #[error(
        "source `{stage}` cannot be replayed: the archived run {} has no source stage of that \
         name (its sources: {})",
        run_dir.display(),
        list_names(archived_sources)
    )]
    SourceNotArchived {
        /// The source of the flow.
        stage: String,
        /// The archived run directory.
        run_dir: PathBuf,
        /// The names of the archived run's sources.
        archived_sources: Vec<String>,
    },
    /// An archived journal of a source could not be read, e.g. a corrupt record.
    #[error(
        "cannot read the archived {lane} journal of source `{stage}` in {}",
        run_dir.display()
    )]
    ArchiveRead {
        /// The source.
        stage: String,
        /// Which of its journals.
        lane: Lane,
        /// The archived run directory.
        run_dir: PathBuf,
        /// The cause; a corrupt record is a [`RunDirError::Journal`] holding
        /// [`JournalError::Corrupt`](obzenflow_core::JournalError::Corrupt) with the segment
        /// and byte offset.
        #[source]
        source: Box<RunDirError>,
    },
    /// The archived data journal of a source ends without its end-of-stream marker.
    #[error(
        "the archived data journal of source `{stage}` in {} ends after {records} records \
         without an end-of-stream marker",
        run_dir.display()
    )]
    MissingEndOfStream {
        /// The source.
        stage: String,
        /// The archived run directory.
        run_dir: PathBuf,
        /// How many data records it holds.
        records: u64,
    },
    /// The archived data journal of a source holds another number of data records than its
    /// end-of-stream marker says.
    #[error(
        "the archived data journal of source `{stage}` in {} holds {records} data records but \
         its end-of-stream marker says {end_of_stream}",
        run_dir.display()
    )]
    EndOfStreamMismatch {
        /// The source.
        stage: String,
        /// The archived run directory.
        run_dir: PathBuf,
        /// How many data records it holds.
        records: u64,
        /// What its end-of-stream marker says.
        end_of_stream: u64,
    },
}

/// Which of the two compared runs something belongs to.
///
/// ```
/// use obzenflow_runtime::replay::Side;
///
/// assert_eq!(Side::Candidate.to_string(), "candidate");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The run compared against (usually the original).
    Baseline,
    /// The run being checked (usually the replay).
    Candidate,
}

impl Side {
    /// The stable lowercase name (`baseline`, `candidate`).
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Baseline => "baseline",
            Self::Candidate => "candidate",
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Two runs could not be compared. Differences between them are not errors: they are in the
/// [`VerifyReport`](super::VerifyReport).
///
/// Its message says what could not be read; the cause is its source, so print the chain:
///
/// ```no_run
/// use obzenflow_core::ErrorChain;
/// use obzenflow_runtime::replay::{verify, VerifyError};
///
/// match verify("runs/run_a", "runs/run_b") {
///     Ok(report) => println!("{report}"),
///     Err(VerifyError::Run { side, source, .. }) => {
///         eprintln!("the {side} run: {}", ErrorChain::new(&*source));
///     }
///     Err(error) => eprintln!("{}", ErrorChain::new(&error)),
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A run directory or its manifest could not be read.
    #[error("cannot read the {side} run {}", run_dir.display())]
    Run {
        /// Which run.
        side: Side,
        /// Its directory.
        run_dir: PathBuf,
        /// The cause.
        #[source]
        source: Box<RunDirError>,
    },
    /// A journal of a run could not be read, e.g. a corrupt record.
    #[error("cannot read the {lane} journal of `{stage}` in the {side} run")]
    Journal {
        /// Which run.
        side: Side,
        /// The stage.
        stage: String,
        /// Which of its journals.
        lane: Lane,
        /// The cause.
        #[source]
        source: Box<RunDirError>,
    },
}

fn list_names(names: &[String]) -> String {
    if names.is_empty() {
        return "none".to_owned();
    }
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
