//! Errors raised while parsing the textual form of core values.

/// A string could not be parsed as one of the core id types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} `{input}`: {reason}")]
pub struct IdParseError {
    /// The id kind that was expected, e.g. `event id`.
    pub kind: &'static str,
    /// The offending input, truncated to 64 characters so a huge input cannot flood a log.
    pub input: String,
    /// What was wrong with it.
    pub reason: String,
}

impl IdParseError {
    pub(crate) fn new(kind: &'static str, input: &str, reason: impl Into<String>) -> Self {
        let input: String = input.chars().take(64).collect();
        Self {
            kind,
            input,
            reason: reason.into(),
        }
    }
}
