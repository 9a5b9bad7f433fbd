//! `CsvSource`: one record per row of a CSV file with a header row, as typed payloads or as
//! JSON objects.

use std::fmt;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use csv::ByteRecord;
use obzenflow_core::{ChainEvent, EventType, TypedPayload};
use obzenflow_runtime::stages::{AsyncSourceHandler, HandlerFailure, RecordType, SourcePoll};

use super::file::{
    is_would_block, not_opened, placed, read_failure, trim_line_terminator, BadRow, InputFile,
};

/// Turns one row into a record, or says why it cannot.
type RowDecoder = Box<dyn FnMut(&Row<'_>) -> Result<ChainEvent, String> + Send>;

/// How a [`CsvSource`] parses its file.
///
/// ```
/// use obzenflow_stages::sources::{CsvSource, CsvSourceConfig};
///
/// let config = CsvSourceConfig::default().with_delimiter(b';');
/// let source = CsvSource::new("orders.csv", "order").with_config(config);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CsvSourceConfig {
    /// The field delimiter; `,` by default.
    pub delimiter: u8,
    /// Whether to trim whitespace around headers and fields; `true` by default.
    pub trim: bool,
    /// Field values that mean "no value", compared after trimming ASCII whitespace; none by
    /// default. A field holding one of them reads as `None` in an `Option` field of a
    /// [`typed`](CsvSource::typed) payload, and as JSON `null` from [`CsvSource::new`].
    ///
    /// A non-`Option` field reads such a value the way it reads an empty field: a number or a
    /// boolean is an error (the row goes to the error lane, the message naming the column and
    /// the value), a `String` is empty.
    ///
    /// ```
    /// use obzenflow_core::TypedPayload;
    /// use obzenflow_runtime::stages::{AsyncSourceHandler, SourcePoll};
    /// use obzenflow_stages::sources::{CsvSource, CsvSourceConfig};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Debug, PartialEq, Serialize, Deserialize, Clone)]
    /// struct Reading { sensor: String, celsius: Option<f64> }
    /// impl TypedPayload for Reading { const EVENT_TYPE: &'static str = "reading"; }
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("readings.csv");
    /// std::fs::write(&path, "sensor,celsius\na,21.5\nb,NA\nc,\n")?;
    /// let config = CsvSourceConfig::default().with_null_values(["NA", ""]);
    /// let mut source = CsvSource::typed::<Reading>(&path).with_config(config);
    /// let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// let poll = runtime.block_on(async {
    ///     source.initialize().await?;
    ///     source.next_batch(10).await
    /// })?;
    /// let SourcePoll::Records(records) = poll else { panic!("no rows") };
    /// let celsius: Vec<Option<f64>> = records
    ///     .iter()
    ///     .map(|record| Reading::from_event(record).map(|reading| reading.celsius))
    ///     .collect::<Result<_, _>>()?;
    /// assert_eq!(celsius, [Some(21.5), None, None]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub null_values: Vec<String>,
    /// The longest row accepted, in bytes without its line terminator;
    /// [`CsvSource::DEFAULT_MAX_ROW_BYTES`] (64 MiB) by default. See [`CsvSource`].
    pub max_row_bytes: usize,
}

impl Default for CsvSourceConfig {
    fn default() -> Self {
        Self {
            delimiter: b',',
            trim: true,
            null_values: Vec::new(),
            max_row_bytes: CsvSource::DEFAULT_MAX_ROW_BYTES,
        }
    }
}

impl CsvSourceConfig {
    /// Sets [`delimiter`](Self::delimiter).
    ///
    /// ```
    /// use obzenflow_stages::sources::CsvSourceConfig;
    ///
    /// assert_eq!(CsvSourceConfig::default().with_delimiter(b'\t').delimiter, b'\t');
    /// ```
    #[must_use]
    pub fn with_delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self
    }

    /// Sets [`trim`](Self::trim).
    ///
    /// ```
    /// use obzenflow_stages::sources::CsvSourceConfig;
    ///
    /// assert!(!CsvSourceConfig::default().with_trim(false).trim);
    /// ```
    #[must_use]
    pub fn with_trim(mut self, trim: bool) -> Self {
        self.trim = trim;
        self
    }

    /// Sets [`null_values`](Self::null_values).
    ///
    /// ```
    /// use obzenflow_stages::sources::CsvSourceConfig;
    ///
    /// let config = CsvSourceConfig::default().with_null_values(["NA", "-"]);
    /// assert_eq!(config.null_values, ["NA", "-"]);
    /// ```
    #[must_use]
    pub fn with_null_values<S: Into<String>>(
        mut self,
        null_values: impl IntoIterator<Item = S>,
    ) -> Self {
        self.null_values = null_values.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`max_row_bytes`](Self::max_row_bytes).
    ///
    /// ```
    /// use obzenflow_stages::sources::CsvSourceConfig;
    ///
    /// assert_eq!(CsvSourceConfig::default().with_max_row_bytes(1 << 20).max_row_bytes, 1 << 20);
    /// ```
    #[must_use]
    pub fn with_max_row_bytes(mut self, max_row_bytes: usize) -> Self {
        self.max_row_bytes = max_row_bytes;
        self
    }
}

/// Reads a CSV file whose first row names the columns; every later row becomes one record.
///
/// Rows are decoded into a typed payload with [`typed`](Self::typed) (serde maps columns to
/// fields by header name, straight from the row's bytes: one reused row buffer, no string per
/// row) or into JSON objects of strings with [`new`](Self::new). A row with the wrong number of
/// fields, invalid UTF-8 in a field read as text, or a value of the wrong type becomes an
/// error-lane record (see [`BadRow`]), e.g. ``orders.csv:7: column `amount`: cannot parse
/// "abc": invalid float literal``, and reading goes on. Values listed in
/// [`CsvSourceConfig::null_values`] read as `None`. An empty file yields no records. A missing
/// or unreadable file fails the stage from `initialize`; a file truncated, replaced or rewritten
/// while it is read fails it when the source reaches its end, so the run does not read as
/// completed with part of its input.
///
/// Rows may span lines (quoted fields with newlines); a bad row's line number is the line it
/// starts on, counting `\n`, `\r\n` and a lone `\r` as line breaks. A quote that is never closed
/// runs to the end of the file (or to the row limit): everything after it is one row, which goes
/// to the error lane (its field count is wrong) rather than silently becoming records. A UTF-8
/// byte order mark before the header row is skipped.
///
/// Long rows are ordinary rows: a 10 MB row is read and delivered like a short one. What guards
/// memory against a file that is not CSV at all (a binary file, one with no line breaks) is a
/// row-length limit, [`DEFAULT_MAX_ROW_BYTES`](Self::DEFAULT_MAX_ROW_BYTES) (64 MiB) unless set
/// with [`with_max_row_bytes`](Self::with_max_row_bytes): a longer row becomes one error-lane
/// record, ``orders.csv:7: row is longer than the limit of 67108864 bytes``, and reading goes on
/// after the next line break. (If the long row was a quoted field spanning lines, what follows
/// that line break is read as rows, most of which go to the error lane.) Error records quote at
/// most [`BadRow::RAW_LIMIT`] bytes of a row, so the memory of the source is bounded by the limit
/// (about twice the longest row) whatever the input, and each batch reads about one limit's
/// worth of bytes at most, so the source returns to its supervisor between them.
///
/// A FIFO or other stream is read as it arrives: the source never waits in `initialize` for a
/// writer, and while the stream has no input its `next_batch` awaits the descriptor on tokio's
/// reactor (no timer, no polling), so an idle FIFO costs no CPU and a cancel reaches the source
/// meanwhile. It is an [`AsyncSourceHandler`]: add it to a flow with
/// [`FlowBuilder::async_source`](obzenflow_runtime::pipeline::FlowBuilder::async_source). A
/// regular file is read without awaiting anything.
///
/// ```no_run
/// use obzenflow_core::TypedPayload;
/// use obzenflow_runtime::pipeline::FlowBuilder;
/// use obzenflow_stages::sinks::ConsoleSink;
/// use obzenflow_stages::sources::CsvSource;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, Clone)]
/// struct Order { order_id: String, customer: String, amount: f64 }
/// impl TypedPayload for Order { const EVENT_TYPE: &'static str = "order"; }
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let report = FlowBuilder::new("orders")
///     .async_source("orders", CsvSource::typed::<Order>("orders.csv"))
///     .sink("print", ConsoleSink::new())
///     .edge("orders", "print")
///     .build()?
///     .run()
///     .await?;
/// # Ok(())
/// # }
/// ```
pub struct CsvSource {
    path: PathBuf,
    display: String,
    /// The path as given, shared by the origins of every record.
    file: Arc<str>,
    config: CsvSourceConfig,
    decode: RowDecoder,
    reader: Option<csv::Reader<Recorder<InputFile>>>,
    /// The header row, once read.
    headers: Option<ByteRecord>,
    /// The header names as text, for error messages and JSON objects.
    names: Vec<String>,
    /// The null values, trimmed, as bytes.
    nulls: Vec<Vec<u8>>,
    /// The row being read, reused for every row.
    row: ByteRecord,
    /// The row with its null fields emptied, reused; only filled for a row with a null field.
    nulled: ByteRecord,
    /// Which fields of the current row are null; reused.
    null_fields: Vec<bool>,
    /// Whether the current row went over the limit and the rest of it is being skipped.
    skipping: bool,
    finished: bool,
    /// The record type it emits, when built typed; `FlowBuilder::build` checks edges by it.
    record_type: Option<RecordType>,
}

impl fmt::Debug for CsvSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CsvSource")
            .field("path", &self.path)
            .field("config", &self.config)
            .field("headers", &self.names)
            .finish_non_exhaustive()
    }
}

/// One row as a decoder sees it.
struct Row<'a> {
    /// The fields, null ones emptied.
    fields: &'a ByteRecord,
    /// The fields as read, for quoting a bad value.
    original: &'a ByteRecord,
    headers: &'a ByteRecord,
    names: &'a [String],
    /// Which fields are null; empty if none is.
    null_fields: &'a [bool],
}

impl Row<'_> {
    fn is_null(&self, field: usize) -> bool {
        self.null_fields.get(field).copied().unwrap_or(false)
    }
}

/// What reading on found.
// The record is moved straight into the batch; boxing it would cost an allocation per row.
#[allow(clippy::large_enum_variant)]
enum RowStep {
    /// A record (good or bad) for the batch.
    Record(ChainEvent),
    /// Bytes were read but no record came of them (the rest of an over-long row).
    Skipped,
    /// The batch's byte budget is spent, or a stream has no input yet.
    Pause,
    /// The end of the input.
    End,
}

impl CsvSource {
    /// The default longest row, in bytes without the line terminator: 64 MiB, far above any
    /// real record and far below what a journal frame holds (1 GiB).
    pub const DEFAULT_MAX_ROW_BYTES: usize = 64 * 1024 * 1024;

    /// The smallest byte budget of a batch, so a tiny row limit does not make every batch
    /// one buffer's worth.
    const MIN_BATCH_BYTES: u64 = 64 * 1024;

    /// Reads `path`; every row becomes a record of `event_type` whose payload is a JSON object
    /// mapping each header to the row's field, as a string (or `null`, for a null value).
    ///
    /// ```
    /// use obzenflow_stages::sources::CsvSource;
    ///
    /// let source = CsvSource::new("customers.csv", "customer");
    /// ```
    pub fn new(path: impl Into<PathBuf>, event_type: impl Into<EventType>) -> Self {
        let event_type = event_type.into();
        Self::with_decoder(
            path.into(),
            Box::new(move |row: &Row<'_>| {
                let mut object = serde_json::Map::with_capacity(row.names.len());
                for (index, (name, field)) in row.names.iter().zip(row.original.iter()).enumerate()
                {
                    let value = if row.is_null(index) {
                        serde_json::Value::Null
                    } else {
                        std::str::from_utf8(field)
                            .map_err(|error| invalid_utf8(row.names, index, &error))?
                            .into()
                    };
                    object.insert(name.clone(), value);
                }
                Ok(ChainEvent::data(
                    event_type.clone(),
                    serde_json::Value::Object(object),
                ))
            }),
        )
    }

    /// Reads `path`; every row is deserialized into a `T` (columns map to fields by header
    /// name) and becomes a record of `T`'s event type.
    ///
    /// ```
    /// use obzenflow_core::TypedPayload;
    /// use obzenflow_stages::sources::CsvSource;
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize, Clone)]
    /// struct Customer { id: u64, name: String }
    /// impl TypedPayload for Customer { const EVENT_TYPE: &'static str = "customer"; }
    ///
    /// let source = CsvSource::typed::<Customer>("customers.csv");
    /// ```
    pub fn typed<T: TypedPayload + 'static>(path: impl Into<PathBuf>) -> Self {
        Self::with_decoder(
            path.into(),
            Box::new(|row: &Row<'_>| {
                let value: T = row
                    .fields
                    .deserialize(Some(row.headers))
                    .map_err(|error| describe_deserialize_error(&error, row))?;
                Ok(value.into_event())
            }),
        )
        .with_record_type(RecordType::of::<T>())
    }

    fn with_record_type(mut self, record_type: RecordType) -> Self {
        self.record_type = Some(record_type);
        self
    }

    /// Replaces the parsing configuration.
    ///
    /// ```
    /// use obzenflow_stages::sources::{CsvSource, CsvSourceConfig};
    ///
    /// let source = CsvSource::new("raw.tsv", "row")
    ///     .with_config(CsvSourceConfig::default().with_delimiter(b'\t').with_trim(false));
    /// ```
    #[must_use]
    pub fn with_config(mut self, config: CsvSourceConfig) -> Self {
        self.config = config;
        self
    }

    /// Sets the longest row accepted, in bytes without the line terminator (see the type's
    /// docs); a longer row becomes an error-lane record. `0` is refused: `initialize` fails.
    ///
    /// ```
    /// use obzenflow_stages::sources::CsvSource;
    ///
    /// let source = CsvSource::new("orders.csv", "order").with_max_row_bytes(1 << 20);
    /// ```
    #[must_use]
    pub fn with_max_row_bytes(mut self, max_row_bytes: usize) -> Self {
        self.config.max_row_bytes = max_row_bytes;
        self
    }

    fn with_decoder(path: PathBuf, decode: RowDecoder) -> Self {
        Self {
            record_type: None,
            display: path.display().to_string(),
            file: Arc::from(path.display().to_string()),
            path,
            config: CsvSourceConfig::default(),
            decode,
            reader: None,
            headers: None,
            names: Vec::new(),
            nulls: Vec::new(),
            row: ByteRecord::new(),
            nulled: ByteRecord::new(),
            null_fields: Vec::new(),
            skipping: false,
            finished: false,
        }
    }

    /// Reads the next row: a record (good or bad), or why there is none now.
    fn next_step(&mut self) -> Result<RowStep, HandlerFailure> {
        if self.skipping {
            return self.skip_rest_of_row();
        }
        let reader = self.reader.as_mut().ok_or_else(|| not_opened(&self.path))?;
        let start = reader.position().byte();
        reader.get_mut().start_row(start);
        let outcome = reader.read_byte_record(&mut self.row);
        let end = reader.position().byte();
        let event = match outcome {
            Ok(false) => return Ok(RowStep::End),
            Ok(true) if self.headers.is_none() => {
                self.take_headers();
                self.reader_mut()?.get_mut().finish_row(end);
                return Ok(RowStep::Skipped);
            }
            Ok(true) => self.decode_row(start, end),
            Err(error) => return self.row_error(error, start, end),
        };
        self.reader_mut()?.get_mut().finish_row(end);
        Ok(RowStep::Record(event))
    }

    fn reader_mut(&mut self) -> Result<&mut csv::Reader<Recorder<InputFile>>, HandlerFailure> {
        self.reader.as_mut().ok_or_else(|| not_opened(&self.path))
    }

    /// Takes the row just read as the header row.
    fn take_headers(&mut self) {
        self.names = self
            .row
            .iter()
            .map(|name| String::from_utf8_lossy(name).into_owned())
            .collect();
        self.headers = Some(self.row.clone());
    }

    /// Decodes the row just read, from file bytes `start..end`, good or bad, into a record
    /// placed at the line the row starts on.
    fn decode_row(&mut self, start: u64, end: u64) -> ChainEvent {
        let Self {
            reader,
            headers,
            row,
            nulled,
            null_fields,
            nulls,
            names,
            decode,
            display,
            file,
            config,
            ..
        } = self;
        let (Some(reader), Some(headers)) = (reader.as_mut(), headers.as_ref()) else {
            unreachable!("a row is decoded only once the reader and the headers exist");
        };
        let recorder = reader.get_mut();
        let line = recorder.line_of(start, end);
        let raw = recorder.slice(start, end);
        let length = trim_line_terminator(raw).len();
        if length > config.max_row_bytes {
            let event = BadRow::new(display, line, raw, false)
                .into_event(&too_long_reason(config.max_row_bytes));
            return placed(event, file, line);
        }
        let fields = mark_nulls(row, nulls, null_fields, nulled);
        let view = Row {
            fields,
            original: row,
            headers,
            names,
            null_fields: if fields_have_nulls(null_fields) {
                null_fields
            } else {
                &[]
            },
        };
        let event = match decode(&view) {
            Ok(event) => event,
            Err(reason) => {
                let raw = reader.get_ref().slice(start, end);
                BadRow::new(display, line, raw, false).into_event(&reason)
            }
        };
        placed(event, file, line)
    }

    /// Handles a failed read of the row that starts at file byte `start`.
    fn row_error(
        &mut self,
        error: csv::Error,
        start: u64,
        end: u64,
    ) -> Result<RowStep, HandlerFailure> {
        if let csv::ErrorKind::Io(io_error) = error.kind() {
            if is_would_block(io_error) {
                // The row is kept from its start: read it again once input comes.
                self.rewind_to(start)?;
                return Ok(RowStep::Pause);
            }
            if is_row_too_long(io_error) {
                let reader = self.reader.as_mut().ok_or_else(|| not_opened(&self.path))?;
                let recorder = reader.get_mut();
                let line = recorder.line_of(start, recorder.delivered());
                if self.headers.is_none() {
                    return Err(HandlerFailure::msg(format!(
                        "{}:{line}: the header row is longer than the limit of {} bytes",
                        self.display, self.config.max_row_bytes
                    )));
                }
                let raw = recorder.slice(start, recorder.delivered());
                let event = BadRow::new(&self.display, line, raw, true)
                    .into_event(&too_long_reason(self.config.max_row_bytes));
                let event = placed(event, &self.file, line);
                self.skipping = true;
                return Ok(RowStep::Record(event));
            }
            return Err(csv_failure(&self.path, error));
        }
        let Some(reason) = describe_row_error(&error, &self.names) else {
            return Err(csv_failure(&self.path, error));
        };
        let reader = self.reader.as_mut().ok_or_else(|| not_opened(&self.path))?;
        let recorder = reader.get_mut();
        let line = recorder.line_of(start, end);
        let event =
            BadRow::new(&self.display, line, recorder.slice(start, end), false).into_event(&reason);
        let event = placed(event, &self.file, line);
        recorder.finish_row(end);
        Ok(RowStep::Record(event))
    }

    /// Skips on through an over-long row to the next line break, then starts the parser
    /// afresh there.
    fn skip_rest_of_row(&mut self) -> Result<RowStep, HandlerFailure> {
        let budget = self.batch_budget();
        let recorder = self.reader_mut()?.get_mut();
        match recorder.skip_to_line_break(budget) {
            Ok(true) => {}
            Ok(false) => return Ok(RowStep::Pause),
            Err(error) if is_would_block(&error) => return Ok(RowStep::Pause),
            Err(error) => return Err(read_failure(&self.path, error)),
        }
        self.skipping = false;
        let resume_at = self.reader_mut()?.get_ref().delivered();
        self.rewind_to(resume_at)?;
        Ok(RowStep::Skipped)
    }

    /// Restarts the parser at file byte `offset`, which the recorder still keeps.
    fn rewind_to(&mut self, offset: u64) -> Result<(), HandlerFailure> {
        let path = self.path.clone();
        let reader = self.reader_mut()?;
        let mut position = csv::Position::new();
        position.set_byte(offset);
        reader
            .seek_raw(SeekFrom::Start(offset), position)
            .map_err(|error| csv_failure(&path, error))
    }

    fn batch_budget(&self) -> u64 {
        (self.config.max_row_bytes as u64).max(Self::MIN_BATCH_BYTES)
    }
}

/// Marks which fields of `row` are null and, if any is, returns `row` with them emptied (in
/// `nulled`, reused); `row` itself otherwise.
fn mark_nulls<'a>(
    row: &'a ByteRecord,
    nulls: &[Vec<u8>],
    null_fields: &mut Vec<bool>,
    nulled: &'a mut ByteRecord,
) -> &'a ByteRecord {
    null_fields.clear();
    if nulls.is_empty() {
        return row;
    }
    null_fields.extend(row.iter().map(|field| {
        let field = field.trim_ascii();
        nulls.iter().any(|null| null.as_slice() == field)
    }));
    if !fields_have_nulls(null_fields) {
        return row;
    }
    nulled.clear();
    for (field, is_null) in row.iter().zip(null_fields.iter()) {
        nulled.push_field(if *is_null { b"" } else { field });
    }
    nulled
}

fn fields_have_nulls(null_fields: &[bool]) -> bool {
    null_fields.iter().any(|is_null| *is_null)
}

impl CsvSource {
    fn open(&mut self) -> Result<(), HandlerFailure> {
        if self.config.max_row_bytes == 0 {
            return Err(HandlerFailure::msg(format!(
                "input file `{}`: the row-length limit is 0 bytes; it must be at least 1",
                self.path.display()
            )));
        }
        self.nulls = self
            .config
            .null_values
            .iter()
            .map(|null| null.as_bytes().trim_ascii().to_vec())
            .collect();
        let file = InputFile::open(&self.path)?;
        let recorder = Recorder::new(file, self.config.max_row_bytes);
        let reader = csv::ReaderBuilder::new()
            .delimiter(self.config.delimiter)
            .trim(if self.config.trim {
                csv::Trim::All
            } else {
                csv::Trim::None
            })
            // The header row is read as the first row, so that a stream without input yet can
            // pause in it like in any row.
            .has_headers(false)
            .from_reader(recorder);
        self.reader = Some(reader);
        // Reading the header row now makes a directory or an unreadable file fail the stage
        // before the flow starts.
        self.next_step().map(drop)
    }

    /// Returns up to `max` records, reading at most about `max_row_bytes` bytes and never
    /// waiting: a batch may hold no record (a long row being skipped, a stream without input
    /// yet) without the source being done.
    fn read_batch(&mut self, max: usize) -> Result<SourcePoll, HandlerFailure> {
        if self.finished {
            return Ok(SourcePoll::Done);
        }
        let mut records = Vec::with_capacity(max.min(super::iter::PREALLOCATE_LIMIT));
        let budget = self.batch_budget();
        let started_at = self.reader_mut()?.get_ref().taken();
        while records.len() < max {
            if self.reader_mut()?.get_ref().taken() - started_at >= budget {
                break;
            }
            match self.next_step()? {
                RowStep::Record(event) => records.push(event),
                RowStep::Skipped => {}
                RowStep::Pause => break,
                RowStep::End => {
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

impl AsyncSourceHandler for CsvSource {
    fn output_type(&self) -> Option<RecordType> {
        self.record_type
    }

    /// Opens the file and reads its header row, so a missing file, a directory or an
    /// unreadable file fails the stage before the flow starts. Never waits for a FIFO's writer
    /// (a stream without input yet pauses in its header row like in any row).
    async fn initialize(&mut self) -> Result<(), HandlerFailure> {
        self.open()
    }

    /// Returns up to `max` records, reading at most about `max_row_bytes` bytes: a batch may
    /// hold no record (a long row being skipped) without the source being done. A regular file
    /// is read without awaiting anything; a stream without input is awaited on the reactor
    /// until its writer writes or goes.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it awaits only while it holds no record (a row read in part is kept by the
    /// source and parsed again from its start), so a dropped call loses nothing.
    async fn next_batch(&mut self, max: usize) -> Result<SourcePoll, HandlerFailure> {
        loop {
            let poll = self.read_batch(max)?;
            let input = &mut self.reader_mut()?.get_mut().inner;
            match poll {
                SourcePoll::Records(records) if records.is_empty() && input.would_block() => {}
                poll => return Ok(poll),
            }
            if let Err(error) = input.readable().await {
                return Err(read_failure(&self.path, error));
            }
        }
    }
}

fn too_long_reason(max_row_bytes: usize) -> String {
    format!("row is longer than the limit of {max_row_bytes} bytes")
}

/// The stage failure for an error that is not about one row (I/O). A CSV I/O error displays
/// as the operating system's error, so the message reads like every other file failure.
fn csv_failure(path: &Path, error: csv::Error) -> HandlerFailure {
    if let csv::ErrorKind::Io(_) = error.kind() {
        if let csv::ErrorKind::Io(io_error) = error.into_kind() {
            return read_failure(path, io_error);
        }
        unreachable!("the kind was just matched");
    }
    HandlerFailure::with_source(
        format!("cannot read input file `{}`", path.display()),
        error,
    )
}

/// Why a row could not be parsed, or `None` if the error is not about the row.
fn describe_row_error(error: &csv::Error, names: &[String]) -> Option<String> {
    match error.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => Some(format!("expected {expected_len} fields, found {len}")),
        csv::ErrorKind::Utf8 { err, .. } => Some(format!(
            "column {}: invalid UTF-8 after byte {}",
            column_name(names, err.field()),
            err.valid_up_to()
        )),
        csv::ErrorKind::Io(_) => None,
        _ => Some(error.to_string()),
    }
}

/// Why a row could not be deserialized, naming the column and quoting the value.
fn describe_deserialize_error(error: &csv::Error, row: &Row<'_>) -> String {
    let csv::ErrorKind::Deserialize { err, .. } = error.kind() else {
        return error.to_string();
    };
    let Some(field) = err.field().and_then(|field| usize::try_from(field).ok()) else {
        return err.kind().to_string();
    };
    let value = String::from_utf8_lossy(row.original.get(field).unwrap_or_default());
    match err.kind() {
        csv::DeserializeErrorKind::InvalidUtf8(utf8) => invalid_utf8(row.names, field, utf8),
        _ if row.is_null(field) => format!(
            "column {}: null value {value:?} in a field that is not optional",
            column_name(row.names, field)
        ),
        kind => format!(
            "column {}: cannot parse {value:?}: {kind}",
            column_name(row.names, field)
        ),
    }
}

fn invalid_utf8(names: &[String], field: usize, error: &std::str::Utf8Error) -> String {
    format!(
        "column {}: invalid UTF-8 after byte {}",
        column_name(names, field),
        error.valid_up_to()
    )
}

/// The header of column `field`, quoted, or its 1-based number if there is no such header.
fn column_name(names: &[String], field: usize) -> String {
    match names.get(field) {
        Some(name) => format!("`{name}`"),
        None => format!("{}", field + 1),
    }
}

/// The error a [`Recorder`] gives the CSV parser for a row over the limit.
#[derive(Debug, thiserror::Error)]
#[error("the row is over the length limit")]
struct RowTooLong;

fn is_row_too_long(error: &io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.is::<RowTooLong>())
}

/// The reader under the CSV parser: it keeps what was read since the last decided row, so a
/// bad row can be quoted as it appears in the file, the parser can be restarted inside what is
/// kept, and line numbers can be counted; and it refuses to feed the parser a row past the
/// limit.
///
/// The CSV parser reads ahead in blocks; the recorder keeps those blocks until the rows in them
/// are decided. Memory is bounded by [`Recorder::KEEP_LIMIT`] plus one read-ahead block plus
/// the row limit.
struct Recorder<R> {
    inner: R,
    kept: Vec<u8>,
    /// The file offset of `kept[0]`.
    kept_from: u64,
    /// The file offset of the next byte to give the parser (at most the end of `kept`).
    deliver_at: u64,
    /// Where the row being parsed starts.
    row_start: u64,
    max_row_bytes: u64,
    lines: LineCounter,
    /// The file offset up to which `lines` has counted.
    counted_to: u64,
    /// How many bytes were taken from `inner`, including skipped ones.
    taken: u64,
}

impl<R> Recorder<R> {
    /// How many bytes of decided rows the recorder keeps before it releases them.
    const KEEP_LIMIT: usize = 64 * 1024;

    /// The size of a read while skipping.
    const SKIP_CHUNK: usize = 64 * 1024;

    fn new(inner: R, max_row_bytes: usize) -> Self {
        Self {
            inner,
            kept: Vec::new(),
            kept_from: 0,
            deliver_at: 0,
            row_start: 0,
            max_row_bytes: max_row_bytes as u64,
            lines: LineCounter::default(),
            counted_to: 0,
            taken: 0,
        }
    }

    fn end(&self) -> u64 {
        self.kept_from + self.kept.len() as u64
    }

    fn delivered(&self) -> u64 {
        self.deliver_at
    }

    fn taken(&self) -> u64 {
        self.taken
    }

    /// The bytes at file offsets `start..end`, as far as they are still kept.
    fn slice(&self, start: u64, end: u64) -> &[u8] {
        let offset = |position: u64| {
            usize::try_from(position.saturating_sub(self.kept_from))
                .unwrap_or(usize::MAX)
                .min(self.kept.len())
        };
        &self.kept[offset(start)..offset(end).max(offset(start))]
    }

    /// The parser starts a row at file offset `start`.
    fn start_row(&mut self, start: u64) {
        self.row_start = start;
    }

    /// The 1-based line on which the row at file bytes `start..end` starts: after the line
    /// breaks of blank lines before it.
    fn line_of(&mut self, start: u64, end: u64) -> u64 {
        let raw = self.slice(start, end);
        let leading = raw
            .iter()
            .take_while(|byte| **byte == b'\n' || **byte == b'\r')
            .count();
        self.count_lines_to(start + leading as u64);
        self.lines.line
    }

    fn count_lines_to(&mut self, offset: u64) {
        if offset > self.counted_to {
            let bytes = self.slice(self.counted_to, offset);
            let mut lines = self.lines;
            lines.count(bytes);
            self.lines = lines;
            self.counted_to = offset;
        }
    }

    /// Marks everything before file offset `end` as decided.
    fn finish_row(&mut self, end: u64) {
        self.count_lines_to(end);
        if self.kept.len() < Self::KEEP_LIMIT {
            return;
        }
        let released = usize::try_from(end.saturating_sub(self.kept_from))
            .unwrap_or(usize::MAX)
            .min(self.kept.len());
        self.kept.drain(..released);
        self.kept_from += released as u64;
    }
}

impl<R: Read> Recorder<R> {
    /// Skips the rest of an over-long row up to and including the next line break, reading at
    /// most `budget` bytes; `true` once past a line break (or at the end of the input).
    fn skip_to_line_break(&mut self, budget: u64) -> io::Result<bool> {
        // What the parser was given of the row is dropped: count its line breaks first.
        self.count_lines_to(self.deliver_at);
        self.kept.clear();
        self.kept_from = self.deliver_at;
        let mut chunk = vec![0; Self::SKIP_CHUNK];
        let mut spent = 0;
        while spent < budget {
            let read = match self.inner.read(&mut chunk) {
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            };
            self.taken += read as u64;
            spent += read as u64;
            if read == 0 {
                return Ok(true);
            }
            let bytes = &chunk[..read];
            let Some(line_break) = bytes.iter().position(|b| *b == b'\n' || *b == b'\r') else {
                self.lines.count(bytes);
                self.advance_past(read);
                continue;
            };
            self.lines.count(&bytes[..=line_break]);
            self.advance_past(line_break + 1);
            // What follows the line break is the next row's: keep it for the parser.
            self.kept.extend_from_slice(&bytes[line_break + 1..]);
            return Ok(true);
        }
        Ok(false)
    }

    /// Moves every offset past `skipped` bytes that the parser will never see.
    fn advance_past(&mut self, skipped: usize) {
        self.kept_from += skipped as u64;
        self.deliver_at = self.kept_from;
        self.counted_to = self.kept_from;
        self.row_start = self.kept_from;
    }
}

impl<R: Read> Read for Recorder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Two bytes of slack for the line terminator; the exact length of a row that ends
        // within the slack or the read-ahead is checked when it is decoded.
        if self.deliver_at - self.row_start > self.max_row_bytes + 2 {
            return Err(io::Error::other(RowTooLong));
        }
        let end = self.end();
        if self.deliver_at < end {
            // After a rewind: give the parser again what is kept.
            let from = usize::try_from(self.deliver_at - self.kept_from).unwrap_or(usize::MAX);
            let count = buf.len().min(self.kept.len() - from);
            buf[..count].copy_from_slice(&self.kept[from..from + count]);
            self.deliver_at += count as u64;
            return Ok(count);
        }
        let read = self.inner.read(buf)?;
        self.kept.extend_from_slice(&buf[..read]);
        self.deliver_at += read as u64;
        self.taken += read as u64;
        Ok(read)
    }
}

impl<R> Seek for Recorder<R> {
    /// Moves what the parser is given next to a kept offset; nothing else can be reached.
    fn seek(&mut self, position: SeekFrom) -> io::Result<u64> {
        match position {
            SeekFrom::Start(offset) if (self.kept_from..=self.end()).contains(&offset) => {
                self.deliver_at = offset;
                Ok(offset)
            }
            _ => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "a CSV source only returns to bytes it still keeps",
            )),
        }
    }
}

/// Counts line breaks: `\n`, `\r\n` and a lone `\r` each end one line.
#[derive(Debug, Clone, Copy)]
struct LineCounter {
    /// The 1-based number of the line after the bytes counted so far.
    line: u64,
    /// Whether the last byte counted was a `\r`, so a `\n` right after it ends no new line.
    after_cr: bool,
}

impl Default for LineCounter {
    fn default() -> Self {
        Self {
            line: 1,
            after_cr: false,
        }
    }
}

impl LineCounter {
    fn count(&mut self, bytes: &[u8]) {
        let Some(last) = bytes.last() else {
            return;
        };
        if !bytes.contains(&b'\r') {
            let newlines = bytes.iter().filter(|byte| **byte == b'\n').count() as u64;
            let joined = u64::from(self.after_cr && bytes[0] == b'\n');
            self.line += newlines - joined;
            self.after_cr = false;
            return;
        }
        for byte in bytes {
            match byte {
                b'\n' if self.after_cr => {}
                b'\n' | b'\r' => self.line += 1,
                _ => {}
            }
            self.after_cr = *byte == b'\r';
        }
        self.after_cr = *last == b'\r';
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recorder_quotes_kept_bytes_and_releases_old_ones() {
        let data: Vec<u8> = (0..200_000u32).map(|n| (n % 251) as u8).collect();
        let mut recorder = Recorder::new(&data[..], 1 << 20);
        let mut buffer = vec![0; 100_000];
        let read = recorder.read(&mut buffer).unwrap();
        assert_eq!(recorder.slice(10, 20), &data[10..20]);
        recorder.finish_row(90_000);
        assert_eq!(recorder.kept_from, 90_000);
        assert_eq!(recorder.slice(90_000, 90_010), &data[90_000..90_010]);
        assert_eq!(recorder.slice(10, 20), b"");
        assert_eq!(read, 100_000);
    }

    #[test]
    fn the_recorder_gives_kept_bytes_again_after_a_rewind() {
        let data = b"a,b\nc,d\n";
        let mut recorder = Recorder::new(&data[..], 1 << 20);
        let mut buffer = [0; 16];
        assert_eq!(recorder.read(&mut buffer).unwrap(), data.len());
        assert_eq!(recorder.seek(SeekFrom::Start(4)).unwrap(), 4);
        assert_eq!(recorder.read(&mut buffer).unwrap(), 4);
        assert_eq!(&buffer[..4], b"c,d\n");
        assert!(recorder.seek(SeekFrom::Start(99)).is_err());
    }

    #[test]
    fn the_recorder_refuses_a_row_past_the_limit() {
        let data = [b'x'; 100];
        let mut recorder = Recorder::new(&data[..], 10);
        let mut buffer = [0; 8];
        assert_eq!(recorder.read(&mut buffer).unwrap(), 8);
        assert_eq!(recorder.read(&mut buffer).unwrap(), 8);
        let error = recorder.read(&mut buffer).unwrap_err();
        assert!(is_row_too_long(&error), "{error}");
    }

    #[test]
    fn line_breaks_are_lf_crlf_and_lone_cr() {
        for (bytes, lines) in [
            (&b"a\nb\nc"[..], 3),
            (b"a\r\nb\r\nc", 3),
            (b"a\rb\rc", 3),
            (b"a\r\rb\n\nc", 5),
            (b"", 1),
        ] {
            let mut counter = LineCounter::default();
            counter.count(bytes);
            assert_eq!(counter.line, lines, "{bytes:?}");
            // Byte by byte, a `\r\n` split between two reads is still one line break.
            let mut counter = LineCounter::default();
            for byte in bytes {
                counter.count(std::slice::from_ref(byte));
            }
            assert_eq!(counter.line, lines, "{bytes:?} byte by byte");
        }
    }

    #[test]
    fn column_names_fall_back_to_numbers() {
        let names = ["id".to_owned(), "amount".to_owned()];
        assert_eq!(column_name(&names, 1), "`amount`");
        assert_eq!(column_name(&names, 4), "5");
    }
}
