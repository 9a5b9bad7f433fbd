//! `JsonLinesSource`: one record per line of a JSON Lines file, read with buffered I/O in
//! batches.

use std::fmt;
use std::io::{self, BufRead, BufReader};
use std::path::PathBuf;
use std::sync::Arc;

use obzenflow_core::{ChainEvent, EventType, TypedPayload};
use obzenflow_runtime::stages::{AsyncSourceHandler, HandlerFailure, RecordType, SourcePoll};

use super::file::{
    describe_json_error, is_would_block, not_opened, placed, read_failure, BadRow, InputFile,
};

/// Turns the bytes of one line into a record, or says why it cannot.
type LineDecoder = Box<dyn FnMut(&[u8]) -> Result<ChainEvent, String> + Send>;

/// Reads a JSON Lines file: each non-blank line is one JSON value and becomes one record.
///
/// Lines that are blank (or only whitespace) are skipped, and so is a UTF-8 byte order mark
/// before the first line; a line may end in `\n` or `\r\n`. A line that is not valid JSON
/// (including JSON nested deeper than 128 levels), is not valid UTF-8, or (for
/// [`typed`](Self::typed)) does not match the payload type becomes an error-lane record (see
/// [`BadRow`]) and reading goes on. A typed line is deserialized straight from its bytes into
/// the payload type, without an intermediate JSON value. A missing or unreadable file fails the
/// stage from `initialize`:
/// ``cannot open input file `orders.jsonl`: No such file or directory (os error 2)``. So does
/// a file truncated, replaced or rewritten while it is read, when the source reaches its end:
/// the run does not read as completed with part of its input.
///
/// Long lines are ordinary lines: a 10 MB JSON value on one line is read and delivered like a
/// short one. What guards memory against a file that is not JSON Lines at all (a binary file,
/// one with no line breaks, `/dev/zero`) is a line-length limit,
/// [`DEFAULT_MAX_LINE_BYTES`](Self::DEFAULT_MAX_LINE_BYTES) (64 MiB) unless set with
/// [`with_max_line_bytes`](Self::with_max_line_bytes): as soon as a line is longer, it becomes
/// one error-lane record, ``orders.jsonl:7: line is longer than the limit of 67108864 bytes``,
/// whose [`BadRow::raw`] quotes its first [`BadRow::RAW_LIMIT`] bytes; the rest of the line is
/// skipped and reading goes on with the next line. The source holds at most one line of that
/// size in memory, and each batch reads at most about `max_line_bytes` bytes, so an endless line
/// never keeps the source from its supervisor (a cancel reaches it between batches).
///
/// A FIFO or other stream is read as it arrives: the source never waits in `initialize` for a
/// writer, and while the stream has no input its `next_batch` awaits the descriptor on tokio's
/// reactor (no timer, no polling), so an idle FIFO costs no CPU and a cancel reaches the source
/// even while no writer has come. It is an [`AsyncSourceHandler`]: add it to a flow with
/// [`FlowBuilder::async_source`](obzenflow_runtime::pipeline::FlowBuilder::async_source).
///
/// There is no `null_values` option, unlike [`CsvSource`](super::CsvSource): JSON has its own
/// `null`, which serde already reads as `None` for an `Option` field.
///
/// ```no_run
/// use obzenflow_runtime::pipeline::FlowBuilder;
/// use obzenflow_stages::sinks::NullSink;
/// use obzenflow_stages::sources::JsonLinesSource;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let report = FlowBuilder::new("read-orders")
///     .async_source("orders", JsonLinesSource::new("orders.jsonl", "order"))
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
    /// The path as given, shared by the origins of every record.
    file: Arc<str>,
    decode: LineDecoder,
    max_line_bytes: usize,
    reader: Option<BufReader<InputFile>>,
    /// The number of the line being read, or of the last line read.
    line_number: u64,
    /// The line being read, without its `\n`: at most `max_line_bytes + 1` bytes (room for a
    /// `\r`). Kept across batches, and its capacity reused from line to line.
    line: Vec<u8>,
    /// How many bytes of the current line have been read (all of them kept while at most
    /// `max_line_bytes + 1`).
    line_length: usize,
    /// Whether some bytes of the current line have been read.
    in_line: bool,
    /// Whether the current line is over the limit, its error record written and the rest of
    /// it being skipped.
    skipping: bool,
    finished: bool,
    /// The record type it emits, when built typed; `FlowBuilder::build` checks edges by it.
    record_type: Option<RecordType>,
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

/// What one step of reading found.
enum LineStep {
    /// A whole line is in the buffer.
    Line,
    /// The current line just went over the limit.
    TooLong,
    /// The batch's byte budget is spent, or a stream has no input yet.
    Pause,
    /// The end of the input.
    End,
}

impl JsonLinesSource {
    /// The default longest line, in bytes without the line terminator: 64 MiB, far above any
    /// real record and far below what a journal frame holds (1 GiB).
    pub const DEFAULT_MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

    /// The line buffer's capacity is brought back to this after a longer line, so one long
    /// line does not pin its size for the rest of the file.
    const KEPT_LINE_CAPACITY: usize = 64 * 1024;

    /// The smallest byte budget of a batch, so a tiny line limit does not make every batch
    /// one buffer's worth.
    const MIN_BATCH_BYTES: usize = 64 * 1024;

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
            Box::new(move |line: &[u8]| {
                serde_json::from_slice::<serde_json::Value>(line)
                    .map(|value| ChainEvent::data(event_type.clone(), value))
                    .map_err(|error| describe_line_error(line, &error))
            }),
        )
    }

    /// Reads `path`; every line is deserialized from its bytes into a `T` and becomes a record
    /// of `T`'s event type. A line whose fields do not match `T` goes to the error lane.
    ///
    /// ```
    /// use obzenflow_core::TypedPayload;
    /// use obzenflow_stages::sources::JsonLinesSource;
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize, Clone)]
    /// struct Click { page: String, millis: u64 }
    /// impl TypedPayload for Click { const EVENT_TYPE: &'static str = "click"; }
    ///
    /// let source = JsonLinesSource::typed::<Click>("clicks.jsonl");
    /// ```
    pub fn typed<T: TypedPayload + 'static>(path: impl Into<PathBuf>) -> Self {
        Self::with_decoder(
            path.into(),
            Box::new(|line: &[u8]| {
                let value: T = serde_json::from_slice(line)
                    .map_err(|error| describe_line_error(line, &error))?;
                Ok(value.into_event())
            }),
        )
        .with_record_type(RecordType::of::<T>())
    }

    fn with_record_type(mut self, record_type: RecordType) -> Self {
        self.record_type = Some(record_type);
        self
    }

    /// Sets the longest line accepted, in bytes without the line terminator (see the type's
    /// docs); a longer line becomes an error-lane record. `0` is refused: `initialize` fails.
    ///
    /// ```
    /// use obzenflow_stages::sources::JsonLinesSource;
    ///
    /// let source = JsonLinesSource::new("events.jsonl", "click").with_max_line_bytes(1 << 20);
    /// ```
    #[must_use]
    pub fn with_max_line_bytes(mut self, max_line_bytes: usize) -> Self {
        self.max_line_bytes = max_line_bytes;
        self
    }

    fn with_decoder(path: PathBuf, decode: LineDecoder) -> Self {
        Self {
            record_type: None,
            display: path.display().to_string(),
            file: Arc::from(path.display().to_string()),
            path,
            decode,
            max_line_bytes: Self::DEFAULT_MAX_LINE_BYTES,
            reader: None,
            line_number: 0,
            line: Vec::new(),
            line_length: 0,
            in_line: false,
            skipping: false,
            finished: false,
        }
    }

    /// Reads on into the current line, spending at most `budget` bytes: stops at the end of a
    /// line, when the line goes over the limit, when the budget is spent or a stream has no
    /// input yet, or at the end of the input.
    fn read_step(&mut self, budget: &mut usize) -> Result<LineStep, HandlerFailure> {
        let reader = self.reader.as_mut().ok_or_else(|| not_opened(&self.path))?;
        let keep_at_most = self.max_line_bytes.saturating_add(1);
        loop {
            if *budget == 0 {
                return Ok(LineStep::Pause);
            }
            let available = match reader.fill_buf() {
                Ok(available) => available,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) if is_would_block(&error) => return Ok(LineStep::Pause),
                Err(error) => return Err(read_failure(&self.path, error)),
            };
            if available.is_empty() {
                let ended_a_line = self.in_line && !self.skipping;
                (self.in_line, self.skipping) = (false, false);
                return Ok(if ended_a_line {
                    LineStep::Line
                } else {
                    LineStep::End
                });
            }
            if !self.in_line {
                self.in_line = true;
                self.line_number += 1;
            }
            let chunk = &available[..available.len().min(*budget)];
            let newline = chunk.iter().position(|byte| *byte == b'\n');
            let content = &chunk[..newline.unwrap_or(chunk.len())];
            if !self.skipping {
                let room = keep_at_most.saturating_sub(self.line.len());
                self.line
                    .extend_from_slice(&content[..content.len().min(room)]);
                self.line_length = self.line_length.saturating_add(content.len());
            }
            let consumed = newline.map_or(chunk.len(), |newline| newline + 1);
            reader.consume(consumed);
            *budget -= consumed;
            if newline.is_some() {
                let skipped = self.skipping;
                (self.in_line, self.skipping) = (false, false);
                if !skipped {
                    return Ok(LineStep::Line);
                }
            } else if !self.skipping && self.line_length > keep_at_most {
                self.skipping = true;
                return Ok(LineStep::TooLong);
            }
        }
    }

    /// Decodes the whole line in `self.line`, good or bad, into a record placed at its line;
    /// `None` for a blank line.
    fn decode_line(&mut self) -> Option<ChainEvent> {
        let event = self.decode_line_content()?;
        Some(placed(event, &self.file, self.line_number))
    }

    fn decode_line_content(&mut self) -> Option<ChainEvent> {
        let mut raw = super::file::trim_line_terminator(&self.line);
        let mut length = self.line_length - (self.line.len() - raw.len()).min(1);
        if self.line_number == 1 {
            if let Some(rest) = raw.strip_prefix(UTF8_BOM) {
                raw = rest;
                length -= UTF8_BOM.len();
            }
        }
        if length > self.max_line_bytes {
            let row = BadRow::new(&self.display, self.line_number, raw, true);
            return Some(row.into_event(&self.too_long_reason()));
        }
        if raw.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        Some(match (self.decode)(raw) {
            Ok(event) => event,
            Err(reason) => {
                BadRow::new(&self.display, self.line_number, raw, false).into_event(&reason)
            }
        })
    }

    /// The error record of a line that went over the limit before its end.
    fn too_long_record(&self) -> ChainEvent {
        let event = BadRow::new(&self.display, self.line_number, &self.line, true)
            .into_event(&self.too_long_reason());
        placed(event, &self.file, self.line_number)
    }

    fn too_long_reason(&self) -> String {
        format!(
            "line is longer than the limit of {} bytes",
            self.max_line_bytes
        )
    }

    /// Forgets the current line's bytes, keeping a modest buffer capacity.
    fn clear_line(&mut self) {
        self.line.clear();
        self.line_length = 0;
        self.line.shrink_to(Self::KEPT_LINE_CAPACITY);
    }
}

/// Why a line could not be decoded: invalid UTF-8 named as such (serde_json would call it an
/// invalid code point), any other error with its column.
fn describe_line_error(line: &[u8], error: &serde_json::Error) -> String {
    match std::str::from_utf8(line) {
        Err(utf8) => format!("invalid UTF-8: {utf8}"),
        Ok(_) => describe_json_error(error),
    }
}

/// The UTF-8 encoding of U+FEFF, which some tools write before the first line.
const UTF8_BOM: &[u8] = b"\xef\xbb\xbf";

impl JsonLinesSource {
    fn open(&mut self) -> Result<(), HandlerFailure> {
        if self.max_line_bytes == 0 {
            return Err(HandlerFailure::msg(format!(
                "input file `{}`: the line-length limit is 0 bytes; it must be at least 1",
                self.path.display()
            )));
        }
        let mut reader = BufReader::new(InputFile::open(&self.path)?);
        // Reading now, rather than on the first batch, makes a directory or an unreadable file
        // fail the stage before the flow starts. A stream with no input yet is not a failure.
        match reader.fill_buf() {
            Ok(_) => {}
            Err(error) if is_would_block(&error) => {}
            Err(error) => return Err(read_failure(&self.path, error)),
        }
        self.reader = Some(reader);
        Ok(())
    }

    /// Returns up to `max` records, reading at most about `max_line_bytes` bytes and never
    /// waiting: a batch may hold no record (a long line being skipped, a stream without input
    /// yet) without the source being done.
    fn read_batch(&mut self, max: usize) -> Result<SourcePoll, HandlerFailure> {
        if self.finished {
            return Ok(SourcePoll::Done);
        }
        let mut records = Vec::with_capacity(max.min(super::iter::PREALLOCATE_LIMIT));
        // Room for one whole line at the limit and its `\r\n`, so a line that starts a batch
        // is decided (or found over the limit) within it.
        let mut budget = self
            .max_line_bytes
            .saturating_add(2)
            .max(Self::MIN_BATCH_BYTES);
        while records.len() < max {
            match self.read_step(&mut budget)? {
                LineStep::Line => {
                    if let Some(event) = self.decode_line() {
                        records.push(event);
                    }
                    self.clear_line();
                }
                LineStep::TooLong => {
                    records.push(self.too_long_record());
                    self.clear_line();
                }
                LineStep::Pause => break,
                LineStep::End => {
                    self.finished = true;
                    break;
                }
            }
        }
        Ok(if records.is_empty() && self.finished {
            SourcePoll::Done
        } else {
            SourcePoll::Records(records)
        })
    }
}

impl AsyncSourceHandler for JsonLinesSource {
    fn output_type(&self) -> Option<RecordType> {
        self.record_type
    }

    /// Opens the file and reads its first bytes, so a missing file, a directory or an
    /// unreadable file fails the stage before the flow starts. Never waits for a FIFO's writer.
    async fn initialize(&mut self) -> Result<(), HandlerFailure> {
        self.open()
    }

    /// Returns up to `max` records, reading at most about `max_line_bytes` bytes: a batch may
    /// hold no record (a long line being skipped) without the source being done. A regular
    /// file is read without awaiting anything; a stream without input is awaited on the
    /// reactor until its writer writes or goes.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it awaits only while it holds no record (the line read so far is kept in
    /// the source), so a dropped call loses nothing and the next call goes on with that line.
    async fn next_batch(&mut self, max: usize) -> Result<SourcePoll, HandlerFailure> {
        loop {
            let poll = self.read_batch(max)?;
            let waiting = self
                .reader
                .as_ref()
                .is_some_and(|reader| reader.get_ref().would_block());
            match poll {
                SourcePoll::Records(records) if records.is_empty() && waiting => {}
                poll => return Ok(poll),
            }
            let reader = self.reader.as_mut().ok_or_else(|| not_opened(&self.path))?;
            if let Err(error) = reader.get_mut().readable().await {
                return Err(read_failure(&self.path, error));
            }
        }
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

    async fn read_all(source: &mut JsonLinesSource, max: usize) -> Vec<ChainEvent> {
        source.initialize().await.unwrap();
        let mut all = Vec::new();
        while let SourcePoll::Records(records) = source.next_batch(max).await.unwrap() {
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

    #[tokio::test]
    async fn reads_values_in_batches_and_skips_blank_lines() {
        let (_dir, path) = source_over(b"{\"n\":1}\n\n  \n{\"n\":2}\r\n{\"n\":3}");
        let records = read_all(&mut JsonLinesSource::new(&path, "n"), 2).await;
        let values: Vec<_> = records
            .iter()
            .map(|r| r.json().unwrap()["n"].clone())
            .collect();
        assert_eq!(values, [1, 2, 3]);
        assert!(records
            .iter()
            .all(|r| r.event_type().unwrap() == "n" && !r.is_error()));
    }

    #[tokio::test]
    async fn bad_lines_become_error_records_and_reading_goes_on() {
        let (_dir, path) = source_over(b"{\"n\":1}\n{\"n\": }\n\xff\xfe\n{\"n\":4}\n");
        let records = read_all(&mut JsonLinesSource::new(&path, "n"), 10).await;
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
