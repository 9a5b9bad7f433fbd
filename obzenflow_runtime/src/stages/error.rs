//! Stage errors: per-record failures that go to the error lane, and stage failures that stop it.

use obzenflow_core::event::FieldError;
use obzenflow_core::{ErrorChain, ErrorKind, JournalError, JournalId, PayloadError};

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
/// the failure that carries it names the stage (`stage `parse` failed: error budget exceeded:
/// …`).
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
