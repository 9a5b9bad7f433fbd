//! Stage errors: per-record failures that go to the error lane, stage errors that stop it, and
//! [`StageFailure`], the typed cause a failed stage carries to the flow's report.

use std::fmt;
use std::sync::Arc;

use obzenflow_core::event::FieldError;
use obzenflow_core::{ErrorChain, ErrorKind, JournalError, JournalId, PayloadError};

use crate::supervised_base::{PanicError, SupervisionError, SupervisorFailure};

/// A handler failed on one record. The record goes to the stage's error lane and the stage goes
/// on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} error: {message}")]
pub struct RecordError {
    /// The class of failure, recorded on the error-lane record.
    pub kind: ErrorKind,
    /// What went wrong, in one sentence.
    pub message: String,
}

impl RecordError {
    /// A record error of the given kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// The record broke a rule of the domain.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Validation, message)
    }

    /// The record could not be decoded.
    pub fn decode(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Decode, message)
    }
}

impl From<PayloadError> for RecordError {
    fn from(error: PayloadError) -> Self {
        Self::decode(ErrorChain::new(&error).to_string())
    }
}

impl From<FieldError> for RecordError {
    fn from(error: FieldError) -> Self {
        Self::validation(ErrorChain::new(&error).to_string())
    }
}

impl From<String> for RecordError {
    fn from(message: String) -> Self {
        Self::validation(message)
    }
}

impl From<&str> for RecordError {
    fn from(message: &str) -> Self {
        Self::validation(message)
    }
}

/// Why a stage failed as a whole.
///
/// Each variant keeps the stage's name as typed context, but its message does not repeat it:
/// the [`StageFailure`](super::StageFailure) that carries it names the stage (`stage `parse`
/// failed: error budget exceeded: …`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StageError {
    /// A journal the stage reads or writes failed.
    #[error("a journal failed")]
    Journal {
        /// The stage name.
        stage: String,
        /// The journal error.
        #[source]
        source: JournalError,
    },
    /// An upstream's end-of-stream count differs from what this stage read on that edge.
    #[error(
        "edge contract broken on {upstream}: upstream wrote {expected} records, {actual} were read"
    )]
    EdgeContract {
        /// The reading stage.
        stage: String,
        /// The upstream journal.
        upstream: JournalId,
        /// What the upstream's end-of-stream says it wrote.
        expected: u64,
        /// What this stage read.
        actual: u64,
    },
    /// An upstream journal closed before its end-of-stream marker.
    #[error("upstream {upstream} closed without an end-of-stream marker")]
    UpstreamClosed {
        /// The reading stage.
        stage: String,
        /// The upstream journal.
        upstream: JournalId,
    },
    /// Too many records failed.
    #[error("error budget exceeded: {errors} errored records of {records} ({budget})")]
    ErrorBudgetExceeded {
        /// The stage name.
        stage: String,
        /// Records on the error lane so far.
        errors: u64,
        /// Records processed so far.
        records: u64,
        /// The budget, as configured.
        budget: String,
    },
    /// The handler reported a failure of the whole stage (e.g. a missing input file).
    #[error("{message}")]
    Handler {
        /// The stage name.
        stage: String,
        /// What the handler said.
        message: String,
        /// The handler's error, if it gave one.
        #[source]
        source: Option<obzenflow_fsm::BoxError>,
    },
}

/// A handler's failure of the whole stage, before the runtime adds the stage name.
///
/// Handlers return this from `initialize`, from sources and from `flush`/`drain`; the runtime
/// wraps it into [`StageError::Handler`] naming the stage.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct HandlerFailure {
    /// What went wrong.
    pub message: String,
    /// The underlying error, if any.
    #[source]
    pub source: Option<obzenflow_fsm::BoxError>,
}

impl HandlerFailure {
    /// A failure with a message only.
    pub fn msg(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// A failure with a message and the error that caused it.
    pub fn with_source(
        message: impl Into<String>,
        source: impl Into<obzenflow_fsm::BoxError>,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    pub(crate) fn into_stage_error(self, stage: &str) -> StageError {
        StageError::Handler {
            stage: stage.to_owned(),
            message: self.message,
            source: self.source,
        }
    }
}

/// How a stage failed, for matching; the [`StageFailure`] carrying it has the details.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// The handler failed the stage ([`HandlerFailure`], [`StageError::Handler`]), e.g. an
    /// input file that cannot be opened; the handler's own error is in the chain.
    Handler,
    /// More records failed than the stage's [`ErrorBudget`](super::ErrorBudget) allows.
    ErrorBudgetExceeded,
    /// An upstream's end-of-stream count differs from what the stage read on that edge.
    EdgeContract,
    /// An upstream journal closed before its end-of-stream marker.
    UpstreamClosed,
    /// A journal the stage reads or writes failed: I/O, corruption, encoding.
    Journal,
    /// Handler or supervisor code panicked; the cause is the
    /// [`PanicError`](crate::supervised_base::PanicError).
    Panic,
    /// The stage drained, but its end could not be recorded: writing its terminal record or
    /// closing (syncing) its journals failed. The cause is the stage's
    /// [`SupervisionError`](crate::supervised_base::SupervisionError).
    Finishing,
    /// The stage's supervision loop itself ended with an error before the stage reached a
    /// terminal state (an event its machine could not take, a panic outside the guarded
    /// callbacks). The cause is the [`SupervisionError`](crate::supervised_base::SupervisionError);
    /// the stage's terminal record says it failed.
    Supervision,
    /// Something else in the stage's supervision failed.
    Other,
}

impl FailureKind {
    /// The kind of failure `cause` is.
    fn of(cause: &(dyn std::error::Error + 'static)) -> Self {
        if let Some(error) = cause.downcast_ref::<StageError>() {
            return match error {
                StageError::Journal { .. } => Self::Journal,
                StageError::EdgeContract { .. } => Self::EdgeContract,
                StageError::UpstreamClosed { .. } => Self::UpstreamClosed,
                StageError::ErrorBudgetExceeded { .. } => Self::ErrorBudgetExceeded,
                StageError::Handler { .. } => Self::Handler,
            };
        }
        if cause.is::<PanicError>() {
            Self::Panic
        } else if cause.is::<JournalError>() {
            Self::Journal
        } else {
            Self::Other
        }
    }
}

/// Why a stage failed, typed from the error that failed it to the flow's
/// [`FlowReport`](crate::pipeline::FlowReport): what [`StageState::Failed`](super::StageState)
/// carries.
///
/// It names the stage and the [`kind`](Self::kind) of failure, and keeps the error itself as
/// its [`source`](std::error::Error::source) ([`cause`](Self::cause)): usually a
/// [`StageError`], whose own source for a handler failure is the handler's error, so
/// [`downcast_ref`](Self::downcast_ref) gives a user's error type back. `Display` says only
/// which stage failed (`stage `parse` failed`); [`ErrorChain`] prints the whole story, each
/// cause once, and is what the stage's terminal lifecycle record holds. Clones share the
/// cause, and two failures are equal when one is a clone of the other.
///
/// ```no_run
/// use obzenflow_core::ErrorChain;
/// use obzenflow_runtime::stages::{FailureKind, StageState};
///
/// # fn show(state: &StageState) {
/// if let StageState::Failed { failure } = state {
///     match failure.kind() {
///         FailureKind::ErrorBudgetExceeded => eprintln!("too many bad records"),
///         FailureKind::Journal => {
///             let io = failure.downcast_ref::<std::io::Error>();
///             eprintln!("storage failed ({:?}): {}", io.map(std::io::Error::kind), ErrorChain::new(failure));
///         }
///         _ => eprintln!("{}", ErrorChain::new(failure)),
///     }
/// }
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct StageFailure {
    stage: Arc<str>,
    kind: FailureKind,
    state: &'static str,
    cause: Arc<dyn std::error::Error + Send + Sync + 'static>,
}

impl StageFailure {
    /// The failure of `stage` that its supervision loop caught.
    pub(crate) fn caught(stage: Arc<str>, failure: &SupervisorFailure) -> Self {
        let cause = failure.shared_cause();
        Self {
            stage,
            kind: FailureKind::of(&*cause),
            state: failure.state(),
            cause,
        }
    }

    /// The failure of `stage` whose supervision loop ended with `error` in `last_state`:
    /// [`FailureKind::Finishing`] after a terminal state (its terminal record or its journals'
    /// final sync failed), [`FailureKind::Supervision`] before one.
    pub(crate) fn ended_with(
        stage: Arc<str>,
        last_state: &super::StageState,
        error: SupervisionError,
    ) -> Self {
        let kind = if last_state.is_terminal() {
            FailureKind::Finishing
        } else {
            FailureKind::Supervision
        };
        Self {
            stage,
            kind,
            state: obzenflow_fsm::StateVariant::variant_name(last_state),
            cause: Arc::new(error),
        }
    }

    /// The failed stage's name.
    pub fn stage(&self) -> &str {
        &self.stage
    }

    /// How it failed.
    pub fn kind(&self) -> FailureKind {
        self.kind
    }

    /// Variant name of the state the stage was in when it failed (`created` while it
    /// initialized, `running`, `draining`; for [`FailureKind::Finishing`], the last state it
    /// reached).
    pub fn state(&self) -> &'static str {
        self.state
    }

    /// The error that failed the stage: a [`StageError`], a
    /// [`PanicError`](crate::supervised_base::PanicError), a [`JournalError`] or, for
    /// [`FailureKind::Finishing`], a [`SupervisionError`].
    pub fn cause(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.cause
    }

    /// The stage's error, when the cause is one.
    pub fn stage_error(&self) -> Option<&StageError> {
        self.cause.downcast_ref::<StageError>()
    }

    /// The first error of type `E` in the cause's chain: the handler's own error type, an
    /// `io::Error`, a [`JournalError`].
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        ErrorChain::new(self.cause()).find::<E>()
    }
}

impl fmt::Display for StageFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            FailureKind::Finishing => write!(f, "stage `{}` failed while finishing", self.stage),
            FailureKind::Supervision => {
                write!(f, "stage `{}`'s supervision loop failed", self.stage)
            }
            _ => write!(f, "stage `{}` failed", self.stage),
        }
    }
}

impl std::error::Error for StageFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.cause())
    }
}

impl PartialEq for StageFailure {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.cause, &other.cause) && self.stage == other.stage
    }
}

impl Eq for StageFailure {}

#[cfg(test)]
impl StageFailure {
    /// A handler failure of `stage` saying `message`, for tests of the machines.
    pub(crate) fn for_tests(stage: &str, message: &str) -> Self {
        let error = HandlerFailure::msg(message).into_stage_error(stage);
        let failure = SupervisorFailure::new(
            crate::supervised_base::FailedStep::Dispatch,
            "running",
            error,
        );
        Self::caught(stage.into(), &failure)
    }
}
