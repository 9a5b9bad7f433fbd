//! `JsonLinesSource`: one record per line of a JSON Lines file, read with buffered I/O in
//! batches.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::PathBuf;

use obzenflow_core::{ChainEvent, EventType, TypedPayload};
use obzenflow_runtime::stages::{HandlerFailure, SourceHandler, SourcePoll};

use super::file::{describe_json_error, not_opened, open_failure, read_failure, BadRow};

/// Turns the text of one line into a record, or says why it cannot.
type LineDecoder = Box<dyn FnMut(&str) -> Result<ChainEvent, String> + Send>;

/// Reads a JSON Lines file: each non-blank line is one JSON value and becomes one record.
///
/// Lines that are blank (or only whitespace) are skipped, and so is a UTF-8 byte order mark
/// before the first line. A line that is not valid JSON (including JSON nested deeper than 128
/// levels), is not valid UTF-8, or (for [`typed`](Self::typed)) does not match the payload type
/// becomes an error-lane record (see [`BadRow`]) and reading goes on. A missing or unreadable
/// file fails the stage from `initialize`:
/// ``cannot open input file `orders.jsonl`: No such file or directory (os error 2)``.
///
/// Long lines are ordinary lines: a 10 MB JSON value on one line is read and delivered like a
/// short one. What guards memory against a file that is not JSON Lines at all (a binary file,
/// one with no line breaks) is a line-length limit,
/// [`DEFAULT_MAX_LINE_BYTES`](Self::DEFAULT_MAX_LINE_BYTES) (64 MiB) unless set with
/// [`with_max_line_bytes`](Self::with_max_line_bytes): a longer line becomes an error-lane
/// record, ``orders.jsonl:7: line is 104857601 bytes long, over the limit of 67108864 bytes``,
/// whose [`BadRow::raw`] keeps the line's first `max_line_bytes` bytes only; reading goes on
/// with the next line. The source holds at most one line of that size in memory.
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
    max_line_bytes: usize,
    reader: Option<BufReader<File>>,
    line_number: u64,
    line: Vec<u8>,
}

impl fmt::Debug for JsonLinesSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonLinesSource")
            .field("path", &self.path)
            .field("max_line_bytes", &self.max_line_bytes)
            .field("line_number", &self.line_number)
            .finish_non_exhaustive()
    }
}

impl JsonLinesSource {
    /// The default longest line, in bytes without the line terminator: 64 MiB, far above any
    /// real record and far below what a journal frame holds (1 GiB) even for an error-lane
    /// record quoting a line of that size.
    pub const DEFAULT_MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

    /// The line buffer's capacity is brought back to this after a longer line, so one long
    /// line does not pin its size for the rest of the file.
    const KEPT_LINE_CAPACITY: usize = 64 * 1024;

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

    /// Sets the longest line accepted, in bytes without the line terminator (see the type's
    /// docs); a longer line becomes an error-lane record. `0` is refused: `initialize` fails.
    ///
    /// ```
    /// use obzenflow_stages::sources::JsonLinesSource;
    ///
    /// let source = JsonLinesSource::new("events.jsonl", "click").with_max_line_bytes(1 << 20);
    /// ```
    pub fn with_max_line_bytes(mut self, max_line_bytes: usize) -> Self {
        self.max_line_bytes = max_line_bytes;
        self
    }

    fn with_decoder(path: PathBuf, decode: LineDecoder) -> Self {
        Self {
            display: path.display().to_string(),
            path,
            decode,
            max_line_bytes: Self::DEFAULT_MAX_LINE_BYTES,
            reader: None,
            line_number: 0,
            line: Vec::new(),
        }
    }

    /// Reads the next line into `self.line` without its `\n`, keeping at most
    /// `max_line_bytes + 1` bytes of it (room for a `\r`); returns the line's length in the
    /// file without its line terminator, or `None` at the end of the file.
    fn read_line(&mut self) -> Result<Option<usize>, HandlerFailure> {
        self.line.clear();
        let reader = self.reader.as_mut().ok_or_else(|| not_opened(&self.path))?;
        let keep_at_most = self.max_line_bytes.saturating_add(1);
        let (mut length, mut last_byte, mut read_any) = (0, None, false);
        loop {
            let available = match reader.fill_buf() {
                Ok(available) => available,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(read_failure(&self.path, error)),
            };
            if available.is_empty() {
                return Ok(read_any.then_some(length));
            }
            read_any = true;
            let newline = available.iter().position(|byte| *byte == b'\n');
            let content = &available[..newline.unwrap_or(available.len())];
            let room = keep_at_most.saturating_sub(self.line.len());
            self.line
                .extend_from_slice(&content[..content.len().min(room)]);
            length += content.len();
            last_byte = content.last().copied().or(last_byte);
            let consumed = newline.map_or(available.len(), |newline| newline + 1);
            reader.consume(consumed);
            if newline.is_some() {
                return Ok(Some(length - usize::from(last_byte == Some(b'\r'))));
            }
        }
    }

    /// Decodes the line in `self.line`, `length` bytes long in the file; `None` for a blank
    /// line.
    fn decode_line(&mut self, mut length: usize) -> Option<ChainEvent> {
        let mut raw = super::file::trim_line_terminator(&self.line);
        if self.line_number == 1 {
            if let Some(rest) = raw.strip_prefix(UTF8_BOM) {
                raw = rest;
                length -= UTF8_BOM.len();
            }
        }
        if length > self.max_line_bytes {
            let kept = &raw[..raw.len().min(self.max_line_bytes)];
            let row = BadRow::new(&self.display, self.line_number, kept);
            return Some(row.into_event(&format!(
                "line is {length} bytes long, over the limit of {} bytes",
                self.max_line_bytes
            )));
        }
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

/// The UTF-8 encoding of U+FEFF, which some tools write before the first line.
const UTF8_BOM: &[u8] = b"\xef\xbb\xbf";

impl SourceHandler for JsonLinesSource {
    fn initialize(&mut self) -> Result<(), HandlerFailure> {
        if self.max_line_bytes == 0 {
            return Err(HandlerFailure::msg(format!(
                "input file `{}`: the line-length limit is 0 bytes; it must be at least 1",
                self.path.display()
            )));
        }
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
            let Some(length) = self.read_line()? else {
                break;
            };
            self.line_number += 1;
            if let Some(event) = self.decode_line(length) {
                records.push(event);
            }
            self.line.shrink_to(Self::KEPT_LINE_CAPACITY);
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
