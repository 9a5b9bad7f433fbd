//! `SourcePosition`: where in its input a source record was (file and line), carried by every
//! record that descends from it.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Where in its input a record's source record was: the file, as the source was given it,
/// and the 1-based line the record starts on.
///
/// A source that reads a file sets it on each record it emits; the runtime hands it on to
/// every record derived from that one, so an error raised stages later still names the input
/// line (see [`ChainEvent::origin`](super::ChainEvent::origin())). The file name is shared: the
/// records of one file hold one copy of it.
///
/// ```
/// use obzenflow_core::SourcePosition;
///
/// let position = SourcePosition::new("orders.csv", 7);
/// assert_eq!(position.to_string(), "orders.csv:7");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SourcePosition {
    /// The input file, as the source was given it.
    pub file: Arc<str>,
    /// The 1-based line the record starts on.
    pub line: u64,
}

impl SourcePosition {
    /// The position `line` of `file`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use obzenflow_core::SourcePosition;
    ///
    /// let file: Arc<str> = Arc::from("orders.csv");
    /// let third = SourcePosition::new(file.clone(), 3);
    /// assert_eq!((&*third.file, third.line), ("orders.csv", 3));
    /// ```
    pub fn new(file: impl Into<Arc<str>>, line: u64) -> Self {
        Self {
            file: file.into(),
            line,
        }
    }
}

impl fmt::Display for SourcePosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}
