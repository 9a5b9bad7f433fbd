//! [`FlowFailure`]: why a flow failed, typed from the error that failed it to
//! [`FlowState::Failed`](super::FlowState::Failed) and [`FlowReport::failure`](super::FlowReport::failure);
//! and [`EndNotRecorded`], a flow whose end could not be written down.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

use obzenflow_core::{ErrorChain, JournalError};

use crate::journal::RunDirError;
use crate::stages::StageFailure;
use crate::supervised_base::SupervisorFailure;

/// Why a flow failed.
///
/// Each variant keeps its cause typed: a stage's [`StageFailure`] (with the stage's own error,
/// and behind it a handler's error, as its source), the pipeline supervisor's
/// [`SupervisorFailure`], or the [`EndNotRecorded`] error. Match on the variant and on
/// [`StageFailure::kind`]; reach an error of your own type with
/// [`downcast_ref`](Self::downcast_ref). `Display` is the top line only; [`ErrorChain`] prints
/// the whole chain, each cause once, as the flow's terminal lifecycle record and its run
/// manifest hold it.
///
/// ```no_run
/// use obzenflow_core::ErrorChain;
/// use obzenflow_runtime::pipeline::FlowFailure;
/// use obzenflow_runtime::stages::FailureKind;
///
/// # async fn run(flow: obzenflow_runtime::pipeline::Flow) -> Result<(), obzenflow_runtime::pipeline::FlowError> {
/// let report = flow.run().await?;
/// match report.failure() {
///     None => println!("ok"),
///     Some(FlowFailure::Stage(failure)) if failure.kind() == FailureKind::ErrorBudgetExceeded => {
///         println!("stage `{}` rejected too many records", failure.stage());
///     }
///     Some(failure) => match failure.downcast_ref::<std::io::Error>() {
///         Some(io) => println!("I/O failed ({:?}): {}", io.kind(), ErrorChain::new(failure)),
///         None => println!("{}", ErrorChain::new(failure)),
///     },
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FlowFailure {
    /// A stage failed; the flow cancelled the others. Transparent: it displays as the stage's
    /// failure and its source is the stage's cause.
    #[error(transparent)]
    Stage(StageFailure),
    /// A stage was cancelled by something other than the flow (every holder of its control
    /// channel went away); the flow cancelled the others.
    #[error("stage `{stage}` was cancelled: {reason}")]
    StageCancelled {
        /// The stage.
        stage: String,
        /// Why it was cancelled, as its cancellation said.
        reason: String,
    },
    /// The pipeline supervisor's own code failed (an action, a dispatch).
    #[error("the pipeline supervisor failed")]
    Supervisor(#[source] SupervisorFailure),
    /// The flow ran to an end, but that end could not be recorded. Transparent.
    #[error(transparent)]
    EndNotRecorded(EndNotRecorded),
}

impl FlowFailure {
    /// The stage that failed (or was cancelled on its own), if a stage is what failed.
    pub fn stage(&self) -> Option<&str> {
        match self {
            Self::Stage(failure) => Some(failure.stage()),
            Self::StageCancelled { stage, .. } => Some(stage),
            Self::Supervisor(_) | Self::EndNotRecorded(_) => None,
        }
    }

    /// The stage's failure, if a stage failed.
    pub fn stage_failure(&self) -> Option<&StageFailure> {
        match self {
            Self::Stage(failure) => Some(failure),
            _ => None,
        }
    }

    /// The first error of type `E` in the failure's chain: a handler's own error type, a
    /// [`StageError`](crate::stages::StageError), a [`JournalError`], an `io::Error`.
    pub fn downcast_ref<E: Error + 'static>(&self) -> Option<&E> {
        ErrorChain::new(self).find::<E>()
    }
}

/// What could not be written when a flow's end could not be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Record {
    /// The pipeline's terminal lifecycle record, in its system journal.
    Journal,
    /// The run manifest's outcome.
    Manifest,
}

/// A flow ran to an end, drained, failed or cancelled, but that end could not be recorded: the
/// pipeline's journal or the run manifest could not be written (a full disk, a failed fsync,
/// the run directory deleted).
///
/// Its source is the [`JournalError`] or [`RunDirError`] that stopped it. When the journal
/// failed and then the manifest could not be written either, the manifest's error is named in
/// the message (it is not the source: the chain follows the first failure).
#[derive(Debug, Clone)]
pub struct EndNotRecorded {
    outcome: &'static str,
    record: Record,
    cause: Arc<dyn Error + Send + Sync + 'static>,
    manifest_also: Option<Arc<RunDirError>>,
}

impl EndNotRecorded {
    /// The pipeline journal could not take the flow's terminal record.
    pub(crate) fn journal(outcome: &'static str, error: JournalError) -> Self {
        Self {
            outcome,
            record: Record::Journal,
            cause: Arc::new(error),
            manifest_also: None,
        }
    }

    /// The run manifest could not be written.
    pub(crate) fn manifest(outcome: &'static str, error: RunDirError) -> Self {
        Self {
            outcome,
            record: Record::Manifest,
            cause: Arc::new(error),
            manifest_also: None,
        }
    }

    /// The manifest that was to record this failure could not be written either.
    pub(crate) fn with_manifest_failure(mut self, error: RunDirError) -> Self {
        self.manifest_also = Some(Arc::new(error));
        self
    }

    /// How the flow ended before its end could not be recorded: `drained`, `failed` or
    /// `cancelled`.
    pub fn outcome(&self) -> &'static str {
        self.outcome
    }

    /// The error that stopped the record: a [`JournalError`] or a [`RunDirError`].
    pub fn cause(&self) -> &(dyn Error + Send + Sync + 'static) {
        &*self.cause
    }
}

impl fmt::Display for EndNotRecorded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.record {
            Record::Journal => "its pipeline journal could not record it",
            Record::Manifest => "its run manifest could not be written",
        };
        write!(f, "the flow ended {} but {what}", self.outcome)?;
        if let Some(manifest) = &self.manifest_also {
            let manifest: &(dyn Error + 'static) = &**manifest;
            write!(
                f,
                " (nor could its run manifest: {})",
                ErrorChain::new(manifest)
            )?;
        }
        Ok(())
    }
}

impl Error for EndNotRecorded {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(self.cause())
    }
}

impl PartialEq for EndNotRecorded {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.cause, &other.cause)
            && self.manifest_also.is_some() == other.manifest_also.is_some()
    }
}

impl Eq for EndNotRecorded {}
