//! `JsonLinesSource`: one record per line of a JSON Lines file, read with buffered I/O in
//! batches.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use obzenflow_core::{ChainEvent, EventType, TypedPayload};
use obzenflow_runtime::stages::{HandlerFailure, SourceHandler, SourcePoll};

use super::file::{describe_json_error, not_opened, open_failure, read_failure, BadRow};

/// Turns the text of one line into a record, or says why it cannot.
type LineDecoder = Box<dyn FnMut(&str) -> Result<ChainEvent, String> + Send>;

/// Reads a JSON Lines file: each non-blank line is one JSON value and becomes one record.
///
/// Lines that are blank (or only whitespace) are skipped. A line that is not valid JSON, is not
/// valid UTF-8, or (for [`typed`](Self::typed)) does not match the payload type becomes an
/// error-lane record (see [`BadRow`]) and reading goes on. A missing or unreadable file fails
/// the stage from `initialize`:
/// ``cannot open input file `orders.jsonl`: No such file or directory (os error 2)``.
///
/// ```no_run
/// use obzenflow_runtime::pipeline::FlowBuilder;
/// use obzenflow_stages::sinks::NullSink;
/// use obzenflow_stages::sources::JsonLinesSource;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let report = FlowBuilder::new("read-orders")
///     .source("orders", JsonLinesSource::new("orders.jsonl", "order"))
///     .sink("discard", NullSink::new())
///     .edge("orders", "discard")
///     .build()?
///     .run()
///     .await?;
/// println!("{report}");
/// # Ok(())
/// # }
/// ```
pub struct JsonLinesSource {
    path: PathBuf,
    display: String,
    decode: LineDecoder,
    reader: Option<BufReader<File>>,
    line_number: u64,
    line: Vec<u8>,
}

impl fmt::Debug for JsonLinesSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonLinesSource")
            .field("path", &self.path)
            .field("line_number", &self.line_number)
            .finish_non_exhaustive()
    }
}

impl JsonLinesSource {
    /// Reads `path`; every line becomes a record of `event_type` carrying the line's JSON value.
    ///
    /// ```
    /// use obzenflow_stages::sources::JsonLinesSource;
    ///
    /// let source = JsonLinesSource::new("events.jsonl", "click");
    /// ```
    pub fn new(path: impl Into<PathBuf>, event_type: impl Into<EventType>) -> Self {
        let event_type = event_type.into();
        Self::with_decoder(
            path.into(),
            Box::new(move |line: &str| {
                serde_json::from_str::<serde_json::Value>(line)
                    .map(|value| ChainEvent::data(event_type.clone(), value))
                    .map_err(|error| describe_json_error(&error))
            }),
        )
    }

    /// Reads `path`; every line is decoded into a `T` and becomes a record of `T`'s event type.
    /// A line whose fields do not match `T` goes to the error lane.
    ///
    /// ```
    /// use obzenflow_core::TypedPayload;
    /// use obzenflow_stages::sources::JsonLinesSource;
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Click { page: String, millis: u64 }
    /// impl TypedPayload for Click { const EVENT_TYPE: &'static str = "click"; }
    ///
    /// let source = JsonLinesSource::typed::<Click>("clicks.jsonl");
    /// ```
    pub fn typed<T: TypedPayload + 'static>(path: impl Into<PathBuf>) -> Self {
        Self::with_decoder(
            path.into(),
            Box::new(|line: &str| {
                let value: T =
                    serde_json::from_str(line).map_err(|error| describe_json_error(&error))?;
                value.to_event().map_err(|error| error.to_string())
            }),
        )
    }

    fn with_decoder(path: PathBuf, decode: LineDecoder) -> Self {
        Self {
            display: path.display().to_string(),
            path,
            decode,
            reader: None,
            line_number: 0,
            line: Vec::new(),
        }
    }

    /// Decodes the line in `self.line`; `None` for a blank line.
    fn decode_line(&mut self) -> Option<ChainEvent> {
        let raw = super::file::trim_line_terminator(&self.line);
        let text = match std::str::from_utf8(raw) {
            Ok(text) => text,
            Err(error) => {
                let row = BadRow::new(&self.display, self.line_number, raw);
                return Some(row.into_event(&format!("invalid UTF-8: {error}")));
            }
        };
        if text.trim().is_empty() {
            return None;
        }
        Some(match (self.decode)(text) {
            Ok(event) => event,
            Err(reason) => BadRow::new(&self.display, self.line_number, raw).into_event(&reason),
        })
    }
}

impl SourceHandler for JsonLinesSource {
    fn initialize(&mut self) -> Result<(), HandlerFailure> {
        let file = File::open(&self.path).map_err(|error| open_failure(&self.path, error))?;
        let mut reader = BufReader::new(file);
        // Reading now, rather than on the first batch, makes a directory or an unreadable file
        // fail the stage before the flow starts.
        reader
            .fill_buf()
            .map_err(|error| read_failure(&self.path, error))?;
        self.reader = Some(reader);
        Ok(())
    }

    fn next_batch(&mut self, max: usize) -> Result<SourcePoll, HandlerFailure> {
        let mut records = Vec::with_capacity(max.min(super::iter::PREALLOCATE_LIMIT));
        while records.len() < max {
            self.line.clear();
            let reader = self.reader.as_mut().ok_or_else(|| not_opened(&self.path))?;
            let read = reader
                .read_until(b'\n', &mut self.line)
                .map_err(|error| read_failure(&self.path, error))?;
            if read == 0 {
                break;
            }
            self.line_number += 1;
            if let Some(event) = self.decode_line() {
                records.push(event);
            }
        }
        Ok(if records.is_empty() {
            SourcePoll::Done
        } else {
            SourcePoll::Records(records)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use obzenflow_core::ProcessingStatus;
    use std::io::Write;

    fn source_over(contents: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.jsonl");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(contents)
            .unwrap();
        (dir, path)
    }

    fn read_all(source: &mut JsonLinesSource, max: usize) -> Vec<ChainEvent> {
        source.initialize().unwrap();
        let mut all = Vec::new();
        while let SourcePoll::Records(records) = source.next_batch(max).unwrap() {
            assert!(records.len() <= max);
            all.extend(records);
        }
        all
    }

    fn error_message(event: &ChainEvent) -> &str {
        match &event.processing_info.status {
            ProcessingStatus::Error { message, .. } => message,
            other => panic!("expected an error status, got {other:?}"),
        }
    }

    #[test]
    fn reads_values_in_batches_and_skips_blank_lines() {
        let (_dir, path) = source_over(b"{\"n\":1}\n\n  \n{\"n\":2}\r\n{\"n\":3}");
        let records = read_all(&mut JsonLinesSource::new(&path, "n"), 2);
        let values: Vec<_> = records
            .iter()
            .map(|r| r.payload().unwrap()["n"].clone())
            .collect();
        assert_eq!(values, [1, 2, 3]);
        assert!(records
            .iter()
            .all(|r| r.event_type().unwrap() == "n" && !r.is_error()));
    }

    #[test]
    fn bad_lines_become_error_records_and_reading_goes_on() {
        let (_dir, path) = source_over(b"{\"n\":1}\n{\"n\": }\n\xff\xfe\n{\"n\":4}\n");
        let records = read_all(&mut JsonLinesSource::new(&path, "n"), 10);
        assert_eq!(records.len(), 4);
        let shown = path.display();
        assert_eq!(
            error_message(&records[1]),
            format!("{shown}:2: expected value at column 7")
        );
        assert_eq!(
            error_message(&records[2]),
            format!("{shown}:3: invalid UTF-8: invalid utf-8 sequence of 1 bytes from index 0")
        );
        let row = BadRow::from_event(&records[1]).unwrap();
        assert_eq!(row.raw, "{\"n\": }");
        assert!(!records[3].is_error());
    }
}
