//! `CsvSource`: one record per row of a CSV file with a header row, as typed payloads or as
//! JSON objects.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;

use csv::StringRecord;
use obzenflow_core::{ChainEvent, EventType, TypedPayload};
use obzenflow_runtime::stages::{HandlerFailure, SourceHandler, SourcePoll};

use super::file::{not_opened, open_failure, BadRow};

/// Turns one row (with the header row) into a record, or says why it cannot.
type RowDecoder = Box<dyn FnMut(&StringRecord, &StringRecord) -> Result<ChainEvent, String> + Send>;

/// How a [`CsvSource`] parses its file.
///
/// ```
/// use obzenflow_stages::sources::{CsvSource, CsvSourceConfig};
///
/// let config = CsvSourceConfig { delimiter: b';', ..CsvSourceConfig::default() };
/// let source = CsvSource::new("orders.csv", "order").with_config(config);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvSourceConfig {
    /// The field delimiter; `,` by default.
    pub delimiter: u8,
    /// Whether to trim whitespace around headers and fields; `true` by default.
    pub trim: bool,
}

impl Default for CsvSourceConfig {
    fn default() -> Self {
        Self {
            delimiter: b',',
            trim: true,
        }
    }
}

/// Reads a CSV file whose first row names the columns; every later row becomes one record.
///
/// Rows are decoded into a typed payload with [`typed`](Self::typed) (serde maps columns to
/// fields by header name) or into JSON objects of strings with [`new`](Self::new). A row with
/// the wrong number of fields, invalid UTF-8 or a value of the wrong type becomes an error-lane
/// record (see [`BadRow`]), e.g. ``orders.csv:7: column `amount`: cannot parse "abc": invalid
/// float literal``, and reading goes on. An empty file yields no records. A missing or
/// unreadable file fails the stage from `initialize`.
///
/// Rows may span lines (quoted fields with newlines); a bad row's line number is the line it
/// starts on. A quote that is never closed runs to the end of the file: everything after it is
/// one row, which goes to the error lane (its field count is wrong) with every byte kept in
/// [`BadRow::raw`], rather than silently becoming records. A UTF-8 byte order mark before the
/// header row is skipped.
///
/// Rows have no length limit: a 10 MB row is read and delivered like a short one. The source
/// holds the row being read in memory (twice, parsed and as raw bytes for quoting a bad row),
/// so its memory grows with the longest row; a row's record must still fit a journal frame
/// (1 GiB).
///
/// ```no_run
/// use obzenflow_core::TypedPayload;
/// use obzenflow_runtime::pipeline::FlowBuilder;
/// use obzenflow_stages::sinks::ConsoleSink;
/// use obzenflow_stages::sources::CsvSource;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Order { order_id: String, customer: String, amount: f64 }
/// impl TypedPayload for Order { const EVENT_TYPE: &'static str = "order"; }
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let report = FlowBuilder::new("orders")
///     .source("orders", CsvSource::typed::<Order>("orders.csv"))
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
    config: CsvSourceConfig,
    decode: RowDecoder,
    reader: Option<csv::Reader<Recorder<File>>>,
    headers: StringRecord,
    row: StringRecord,
}

impl fmt::Debug for CsvSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CsvSource")
            .field("path", &self.path)
            .field("config", &self.config)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl CsvSource {
    /// Reads `path`; every row becomes a record of `event_type` whose payload is a JSON object
    /// mapping each header to the row's field, as a string.
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
            Box::new(move |row: &StringRecord, headers: &StringRecord| {
                let object: serde_json::Map<String, serde_json::Value> = headers
                    .iter()
                    .zip(row.iter())
                    .map(|(name, field)| (name.to_owned(), field.into()))
                    .collect();
                Ok(ChainEvent::data(event_type.clone(), object.into()))
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
    /// #[derive(Serialize, Deserialize)]
    /// struct Customer { id: u64, name: String }
    /// impl TypedPayload for Customer { const EVENT_TYPE: &'static str = "customer"; }
    ///
    /// let source = CsvSource::typed::<Customer>("customers.csv");
    /// ```
    pub fn typed<T: TypedPayload + 'static>(path: impl Into<PathBuf>) -> Self {
        Self::with_decoder(
            path.into(),
            Box::new(|row: &StringRecord, headers: &StringRecord| {
                let value: T = row
                    .deserialize(Some(headers))
                    .map_err(|error| describe_csv_error(&error, row, headers))?;
                value.to_event().map_err(|error| error.to_string())
            }),
        )
    }

    /// Replaces the parsing configuration.
    ///
    /// ```
    /// use obzenflow_stages::sources::{CsvSource, CsvSourceConfig};
    ///
    /// let source = CsvSource::new("raw.tsv", "row")
    ///     .with_config(CsvSourceConfig { delimiter: b'\t', trim: false });
    /// ```
    pub fn with_config(mut self, config: CsvSourceConfig) -> Self {
        self.config = config;
        self
    }

    fn with_decoder(path: PathBuf, decode: RowDecoder) -> Self {
        Self {
            display: path.display().to_string(),
            path,
            config: CsvSourceConfig::default(),
            decode,
            reader: None,
            headers: StringRecord::new(),
            row: StringRecord::new(),
        }
    }

    /// Reads the next row: `Ok(None)` at the end of the file, a bad-row record for a row that
    /// cannot be parsed, an error for an I/O failure.
    fn next_record(&mut self) -> Result<Option<ChainEvent>, HandlerFailure> {
        let reader = self.reader.as_mut().ok_or_else(|| not_opened(&self.path))?;
        let outcome = reader.read_record(&mut self.row);
        let end = reader.position().byte();
        let event = match outcome {
            Ok(false) => return Ok(None),
            Ok(true) => {
                let start = self.row.position().map_or(end, csv::Position::byte);
                let line = self.row.position().map_or(0, csv::Position::line);
                match (self.decode)(&self.row, &self.headers) {
                    Ok(event) => event,
                    Err(reason) => bad_row(reader, &self.display, line, start, end, &reason),
                }
            }
            Err(error) => {
                let Some(position) = error.position().cloned() else {
                    return Err(csv_failure(&self.path, error));
                };
                let Some(reason) = describe_row_error(&error, &self.headers) else {
                    return Err(csv_failure(&self.path, error));
                };
                let (line, start) = (position.line(), position.byte());
                bad_row(reader, &self.display, line, start, end, &reason)
            }
        };
        reader.get_mut().release_before(end);
        Ok(Some(event))
    }
}

impl SourceHandler for CsvSource {
    fn initialize(&mut self) -> Result<(), HandlerFailure> {
        let file = File::open(&self.path).map_err(|error| open_failure(&self.path, error))?;
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(self.config.delimiter)
            .trim(if self.config.trim {
                csv::Trim::All
            } else {
                csv::Trim::None
            })
            .from_reader(Recorder::new(file));
        // Reading the header row now makes a directory or an unreadable file fail the stage
        // before the flow starts.
        let headers = reader
            .byte_headers()
            .map_err(|error| csv_failure(&self.path, error))?;
        self.headers = StringRecord::from_byte_record_lossy(headers.clone());
        self.reader = Some(reader);
        Ok(())
    }

    fn next_batch(&mut self, max: usize) -> Result<SourcePoll, HandlerFailure> {
        let mut records = Vec::with_capacity(max.min(super::iter::PREALLOCATE_LIMIT));
        while records.len() < max {
            match self.next_record()? {
                Some(event) => records.push(event),
                None => break,
            }
        }
        Ok(if records.is_empty() {
            SourcePoll::Done
        } else {
            SourcePoll::Records(records)
        })
    }
}

/// The error-lane record for the row read from bytes `start..end`.
fn bad_row(
    reader: &csv::Reader<Recorder<File>>,
    file: &str,
    line: u64,
    start: u64,
    end: u64,
    reason: &str,
) -> ChainEvent {
    BadRow::new(file, line, reader.get_ref().slice(start, end)).into_event(reason)
}

/// The stage failure for an error that is not about one row (I/O). A CSV I/O error displays
/// as the operating system's error, so the message reads like every other file failure.
fn csv_failure(path: &std::path::Path, error: csv::Error) -> HandlerFailure {
    HandlerFailure::with_source(
        format!("cannot read input file `{}`: {error}", path.display()),
        error,
    )
}

/// Why a row could not be parsed, or `None` if the error is not about the row.
fn describe_row_error(error: &csv::Error, headers: &StringRecord) -> Option<String> {
    match error.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => Some(format!("expected {expected_len} fields, found {len}")),
        csv::ErrorKind::Utf8 { err, .. } => Some(format!(
            "column {}: invalid UTF-8 after byte {}",
            column_name(headers, err.field()),
            err.valid_up_to()
        )),
        csv::ErrorKind::Io(_) => None,
        _ => Some(error.to_string()),
    }
}

/// Why a row could not be deserialized, naming the column and quoting the value.
fn describe_csv_error(error: &csv::Error, row: &StringRecord, headers: &StringRecord) -> String {
    let csv::ErrorKind::Deserialize { err, .. } = error.kind() else {
        return error.to_string();
    };
    match err.field().and_then(|field| usize::try_from(field).ok()) {
        Some(field) => format!(
            "column {}: cannot parse {:?}: {}",
            column_name(headers, field),
            row.get(field).unwrap_or_default(),
            err.kind()
        ),
        None => err.kind().to_string(),
    }
}

/// The header of column `field`, quoted, or its 1-based number if there is no such header.
fn column_name(headers: &StringRecord, field: usize) -> String {
    match headers.get(field) {
        Some(name) => format!("`{name}`"),
        None => format!("{}", field + 1),
    }
}

/// A reader that keeps what it has read since the last release, so a bad row can be quoted
/// exactly as it appears in the file.
///
/// The CSV parser reads ahead in blocks; the recorder keeps those blocks until the rows in them
/// are decided. Memory is bounded by [`Recorder::KEEP_LIMIT`] plus one read-ahead block (and
/// the longest row).
struct Recorder<R> {
    inner: R,
    kept: Vec<u8>,
    /// The file offset of `kept[0]`.
    kept_from: u64,
}

impl<R> Recorder<R> {
    /// How many bytes of decided rows the recorder keeps before it releases them.
    const KEEP_LIMIT: usize = 64 * 1024;

    fn new(inner: R) -> Self {
        Self {
            inner,
            kept: Vec::new(),
            kept_from: 0,
        }
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

    /// Marks everything before file offset `end` as decided.
    fn release_before(&mut self, end: u64) {
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

impl<R: Read> Read for Recorder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.kept.extend_from_slice(&buf[..read]);
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recorder_quotes_kept_bytes_and_releases_old_ones() {
        let data: Vec<u8> = (0..200_000u32).map(|n| (n % 251) as u8).collect();
        let mut recorder = Recorder::new(&data[..]);
        let mut buffer = vec![0; 100_000];
        let read = recorder.read(&mut buffer).unwrap();
        assert_eq!(recorder.slice(10, 20), &data[10..20]);
        recorder.release_before(90_000);
        assert_eq!(recorder.kept_from, 90_000);
        assert_eq!(recorder.slice(90_000, 90_010), &data[90_000..90_010]);
        assert_eq!(recorder.slice(10, 20), b"");
        assert_eq!(read, 100_000);
    }

    #[test]
    fn column_names_fall_back_to_numbers() {
        let headers = StringRecord::from(vec!["id", "amount"]);
        assert_eq!(column_name(&headers, 1), "`amount`");
        assert_eq!(column_name(&headers, 4), "5");
    }
}
