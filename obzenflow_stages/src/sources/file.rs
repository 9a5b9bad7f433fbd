//! What the file sources share: errors that name the file, and bad lines turned into error-lane
//! records that keep the raw input.

use std::io;
use std::path::Path;

use obzenflow_core::{ChainEvent, ErrorKind, ProcessingStatus, TypedPayload};
use obzenflow_runtime::stages::HandlerFailure;
use serde::{Deserialize, Serialize};

/// The payload of an error-lane record written for an input line that could not be decoded.
///
/// The record's status carries the reason (`ErrorKind::Decode`, message
/// `<file>:<line>: <what was wrong>`); the payload keeps the line itself, so nothing of the
/// input is lost and the line can be fixed and replayed.
///
/// ```
/// use obzenflow_core::{ChainEvent, TypedPayload};
/// use obzenflow_stages::sources::BadRow;
///
/// let row = BadRow { file: "orders.csv".into(), line: 7, raw: "o-7,,oops".into() };
/// let event = row.to_event()?;
/// assert_eq!(BadRow::from_event(&event)?.line, 7);
/// # Ok::<(), obzenflow_core::PayloadError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadRow {
    /// The file the line came from, as the source was given it.
    pub file: String,
    /// The 1-based line number where the bad record starts.
    pub line: u64,
    /// The raw line, without its line terminator; invalid UTF-8 is replaced by `U+FFFD`. For a
    /// line over a [`JsonLinesSource`](super::JsonLinesSource)'s length limit, only its first
    /// `max_line_bytes` bytes.
    pub raw: String,
}

impl TypedPayload for BadRow {
    const EVENT_TYPE: &'static str = "bad_row";
}

impl BadRow {
    /// A bad row from the raw bytes of a line.
    pub(crate) fn new(file: &str, line: u64, raw: &[u8]) -> Self {
        Self {
            file: file.to_owned(),
            line,
            raw: String::from_utf8_lossy(trim_line_terminator(raw)).into_owned(),
        }
    }

    /// The error-lane record for this row: decode error `<file>:<line>: <reason>`.
    pub(crate) fn into_event(self, reason: &str) -> ChainEvent {
        let message = format!("{}:{}: {reason}", self.file, self.line);
        let payload = serde_json::json!({
            "file": self.file,
            "line": self.line,
            "raw": self.raw,
        });
        ChainEvent::data(Self::EVENT_TYPE, payload).with_status(ProcessingStatus::error(
            ErrorKind::Decode,
            message,
            None,
        ))
    }
}

/// Strips a trailing `\n` or `\r\n` (and any leading line terminators a CSV record may start
/// with after blank lines).
pub(crate) fn trim_line_terminator(raw: &[u8]) -> &[u8] {
    let is_terminator = |byte: &u8| *byte == b'\n' || *byte == b'\r';
    let start = raw
        .iter()
        .position(|byte| !is_terminator(byte))
        .unwrap_or(raw.len());
    let end = raw
        .iter()
        .rposition(|byte| !is_terminator(byte))
        .map_or(start, |end| end + 1);
    &raw[start..end]
}

/// The stage failure for an input file that cannot be opened.
pub(crate) fn open_failure(path: &Path, error: io::Error) -> HandlerFailure {
    HandlerFailure::with_source(
        format!("cannot open input file `{}`: {error}", path.display()),
        error,
    )
}

/// The stage failure for an input file that cannot be read (a directory, an I/O error).
pub(crate) fn read_failure(path: &Path, error: io::Error) -> HandlerFailure {
    HandlerFailure::with_source(
        format!("cannot read input file `{}`: {error}", path.display()),
        error,
    )
}

/// The stage failure for `next_batch` called before `initialize`.
pub(crate) fn not_opened(path: &Path) -> HandlerFailure {
    HandlerFailure::msg(format!(
        "input file `{}` is not open: `initialize` must run before `next_batch`",
        path.display()
    ))
}

/// A serde_json error without its `at line 1 column N` suffix, which is meaningless for a
/// single line: the column is kept, the line number is the file's.
pub(crate) fn describe_json_error(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    match text.strip_suffix(&suffix) {
        Some(message) => format!("{message} at column {}", error.column()),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_terminators_are_trimmed() {
        assert_eq!(trim_line_terminator(b"a,b\r\n"), b"a,b");
        assert_eq!(trim_line_terminator(b"\n\na,b\n"), b"a,b");
        assert_eq!(trim_line_terminator(b"\r\n"), b"");
        assert_eq!(trim_line_terminator(b"x"), b"x");
    }

    #[test]
    fn json_errors_keep_the_column_only() {
        let error = serde_json::from_str::<serde_json::Value>("{\"a\": }").unwrap_err();
        assert_eq!(describe_json_error(&error), "expected value at column 7");
        let error = serde_json::from_str::<u64>("").unwrap_err();
        assert_eq!(
            describe_json_error(&error),
            "EOF while parsing a value at column 0"
        );
    }

    #[test]
    fn bad_rows_keep_the_raw_line_and_name_the_place() {
        let event = BadRow::new("in.csv", 4, b"1,\xff,3\n").into_event("bad field");
        let ProcessingStatus::Error { kind, message, .. } = &event.processing_info.status else {
            panic!("not an error: {event:?}");
        };
        assert_eq!(*kind, ErrorKind::Decode);
        assert_eq!(message, "in.csv:4: bad field");
        let row = BadRow::from_event(&event).unwrap();
        assert_eq!(row.raw, "1,\u{fffd},3");
        assert_eq!((row.file.as_str(), row.line), ("in.csv", 4));
    }
}
