//! `ProcessingStatus`: what happened to a record at the stage that wrote it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::id::StageId;

/// The outcome recorded on every event.
///
/// A record in [`ProcessingStatus::Error`] flows past transforms untouched and lands on the error
/// lane; nothing is dropped without a record of why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ProcessingStatus {
    /// Processed normally.
    #[default]
    Success,
    /// Deliberately dropped by a filter; kept only where a stage records its filtered records.
    Filtered {
        /// Why the record was filtered, if the filter said.
        reason: Option<String>,
    },
    /// Processing failed for this record.
    Error {
        /// The class of failure.
        kind: ErrorKind,
        /// A human-readable reason.
        message: String,
        /// The stage that raised the error, when known.
        stage_id: Option<StageId>,
    },
    /// The record was retried; `attempt` counts from 1.
    Retried {
        /// Which attempt produced this record.
        attempt: u32,
    },
}

impl ProcessingStatus {
    /// An error status raised by `stage_id`.
    pub fn error(kind: ErrorKind, message: impl Into<String>, stage_id: Option<StageId>) -> Self {
        Self::Error {
            kind,
            message: message.into(),
            stage_id,
        }
    }

    /// Whether this is an error status.
    pub const fn is_error(&self) -> bool {
        matches!(self, Self::Error { .. })
    }

    /// A stable name for the status, for metrics and filters (`success`, `error`, …).
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Filtered { .. } => "filtered",
            Self::Error { .. } => "error",
            Self::Retried { .. } => "retried",
        }
    }
}

/// The class of a per-record failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The record broke a rule of the domain (a negative amount, a missing field).
    Validation,
    /// The record could not be decoded (malformed JSON or CSV, wrong types).
    Decode,
    /// An operation on the record took too long.
    Timeout,
    /// A remote system refused or failed.
    Remote,
    /// Retrying will not help.
    Permanent,
    /// The handler panicked while processing the record.
    Panic,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: [ErrorKind; 7] = [
        Self::Validation,
        Self::Decode,
        Self::Timeout,
        Self::Remote,
        Self::Permanent,
        Self::Panic,
        Self::Other,
    ];

    /// The stable snake_case name used in JSON and metrics labels.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Validation => "validation",
            Self::Decode => "decode",
            Self::Timeout => "timeout",
            Self::Remote => "remote",
            Self::Permanent => "permanent",
            Self::Panic => "panic",
            Self::Other => "other",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_serialize_with_a_tag() {
        let status = ProcessingStatus::error(ErrorKind::Decode, "bad row", None);
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["status"], "error");
        assert_eq!(json["kind"], "decode");
        assert_eq!(
            serde_json::from_value::<ProcessingStatus>(json).unwrap(),
            status
        );
    }

    #[test]
    fn kind_names_match_serde_names() {
        for kind in ErrorKind::ALL {
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, kind.as_str());
        }
    }
}
