//! `CsvSink`: one CSV row per record, with a header row, written atomically.

use std::fmt;
use std::fs::File;
use std::path::PathBuf;

use obzenflow_core::{ChainEvent, DeliveryReceipt, TypedPayload};
use obzenflow_runtime::stages::{
    HandlerFailure, RecordError, RecordType, RunEnvironment, SinkHandler,
};

use super::file::{Counting, FileSinkConfig, OutputFile};

/// The CSV writer of a sink.
type Writer = csv::Writer<Counting<File>>;
/// Writes one record as a row.
type RowWriter = Box<dyn FnMut(&ChainEvent, &mut Writer) -> Result<(), RowError> + Send>;

/// Why a row was not written: the record does not fit, or the file could not be written.
enum RowError {
    Invalid(RecordError),
    Write(csv::Error),
}

impl From<RecordError> for RowError {
    fn from(error: RecordError) -> Self {
        Self::Invalid(error)
    }
}

impl From<csv::Error> for RowError {
    fn from(error: csv::Error) -> Self {
        if error.is_io_error() {
            Self::Write(error)
        } else {
            Self::Invalid(RecordError::validation(error.to_string()))
        }
    }
}

/// Writes each record as a row of a CSV file with a header row.
///
/// With [`typed`](Self::typed) the columns are the payload type's fields (serde names them);
/// with [`new`](Self::new) the payloads must be flat JSON objects and the columns are the keys
/// of the first record, in key order. A later record with a key that is not a column goes to
/// the error lane; a missing key leaves its cell empty. Strings are written as they are,
/// numbers and booleans as JSON writes them, `null` as an empty cell, arrays and objects as
/// JSON text.
///
/// The file is written as a uniquely named `<path>.<pid>.<random>.tmp` and renamed to `<path>`
/// when the flow drains (see [`FileSinkConfig`]); a replay writes under `replays/<run id>/` next to
/// `<path>` instead (see [`FileSinkConfig::overwrite_on_replay`](field@FileSinkConfig::overwrite_on_replay)); the delivery receipt reports the records and
/// bytes written.
///
/// ```no_run
/// use obzenflow_core::TypedPayload;
/// use obzenflow_runtime::pipeline::FlowBuilder;
/// use obzenflow_stages::sinks::CsvSink;
/// use obzenflow_stages::sources::JsonLinesSource;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, Clone)]
/// struct Order { id: u64, amount: f64 }
/// impl TypedPayload for Order { const EVENT_TYPE: &'static str = "order"; }
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// FlowBuilder::new("jsonl-to-csv")
///     .async_source("orders", JsonLinesSource::typed::<Order>("orders.jsonl"))
///     .sink("csv", CsvSink::typed::<Order>("out/orders.csv"))
///     .edge("orders", "csv")
///     .build()?
///     .run()
///     .await?;
/// # Ok(())
/// # }
/// ```
pub struct CsvSink {
    file: OutputFile,
    writer: Option<Writer>,
    write_row: RowWriter,
    records: u64,
    /// The record type it decodes, when built typed; `FlowBuilder::build` checks edges by it.
    record_type: Option<RecordType>,
}

impl fmt::Debug for CsvSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CsvSink")
            .field("file", &self.file)
            .field("records", &self.records)
            .finish_non_exhaustive()
    }
}

impl CsvSink {
    /// A sink writing flat JSON object payloads to `path`.
    ///
    /// ```
    /// use obzenflow_stages::sinks::CsvSink;
    ///
    /// let sink = CsvSink::new("target/out.csv");
    /// ```
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let mut columns: Option<Vec<String>> = None;
        Self::with_row_writer(
            path.into(),
            Box::new(move |event: &ChainEvent, writer: &mut Writer| {
                let json = event.json();
                let object = json
                    .as_deref()
                    .and_then(serde_json::Value::as_object)
                    .ok_or_else(|| RecordError::validation("payload is not a JSON object"))?;
                let columns = match &mut columns {
                    Some(columns) => columns,
                    None => {
                        let names: Vec<String> = object.keys().cloned().collect();
                        writer.write_record(&names)?;
                        columns.insert(names)
                    }
                };
                if let Some(extra) = object.keys().find(|key| !columns.contains(*key)) {
                    return Err(RecordError::validation(format!(
                        "field `{extra}` is not a column (columns: {})",
                        columns.join(", ")
                    ))
                    .into());
                }
                let row = columns.iter().map(|name| cell(object.get(name)));
                writer.write_record(row)?;
                Ok(())
            }),
        )
    }

    /// A sink writing payloads of type `T` to `path`, one column per field.
    ///
    /// ```
    /// use obzenflow_core::TypedPayload;
    /// use obzenflow_stages::sinks::CsvSink;
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize, Clone)]
    /// struct Revenue { day: String, total: f64 }
    /// impl TypedPayload for Revenue { const EVENT_TYPE: &'static str = "revenue"; }
    ///
    /// let sink = CsvSink::typed::<Revenue>("target/revenue.csv");
    /// ```
    pub fn typed<T: TypedPayload + 'static>(path: impl Into<PathBuf>) -> Self {
        let mut sink = Self::with_row_writer(
            path.into(),
            Box::new(|event: &ChainEvent, writer: &mut Writer| {
                let value = T::from_event(event).map_err(RecordError::from)?;
                writer.serialize(&value)?;
                Ok(())
            }),
        );
        sink.record_type = Some(RecordType::of::<T>());
        sink
    }

    /// Replaces the file configuration.
    ///
    /// ```
    /// use obzenflow_stages::sinks::{CsvSink, FileSinkConfig};
    ///
    /// let sink = CsvSink::new("out.csv").with_config(FileSinkConfig { atomic: false, ..FileSinkConfig::default() });
    /// ```
    pub fn with_config(mut self, config: FileSinkConfig) -> Self {
        self.file.set_config(config);
        self
    }

    fn with_row_writer(path: PathBuf, write_row: RowWriter) -> Self {
        Self {
            record_type: None,
            file: OutputFile::new(path, FileSinkConfig::default()),
            writer: None,
            write_row,
            records: 0,
        }
    }
}

/// The text of one cell.
fn cell(value: Option<&serde_json::Value>) -> String {
    match value {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

impl SinkHandler for CsvSink {
    fn input_type(&self) -> Option<RecordType> {
        self.record_type
    }

    fn prepare(&mut self, run: &RunEnvironment) {
        self.file.prepare(run);
    }

    fn initialize(&mut self) -> Result<(), HandlerFailure> {
        self.writer = Some(csv::Writer::from_writer(self.file.create()?));
        Ok(())
    }

    fn consume(&mut self, event: &ChainEvent) -> Result<(), RecordError> {
        self.file.check()?;
        let Some(writer) = self.writer.as_mut() else {
            return Err(self.file.not_open());
        };
        match (self.write_row)(event, writer) {
            Ok(()) => {
                self.records += 1;
                Ok(())
            }
            Err(RowError::Invalid(error)) => Err(error),
            Err(RowError::Write(error)) => Err(self.file.write_failed(error.into())),
        }
    }

    fn flush(&mut self) -> Result<Option<DeliveryReceipt>, HandlerFailure> {
        let Some(writer) = self.writer.take() else {
            return Ok(None);
        };
        let file = match writer.into_inner() {
            Ok(file) => file,
            Err(error) => {
                self.file.write_failed(error.into_error());
                return self.file.fail_if_broken().map(|()| None);
            }
        };
        let bytes = self.file.commit(file)?;
        tracing::debug!(path = %self.file.path().display(), records = self.records, bytes, "csv file written");
        Ok(Some(self.file.receipt(self.records, bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cells_render_json_values() {
        assert_eq!(cell(None), "");
        assert_eq!(cell(Some(&json!(null))), "");
        assert_eq!(cell(Some(&json!("a,b"))), "a,b");
        assert_eq!(cell(Some(&json!(1.5))), "1.5");
        assert_eq!(cell(Some(&json!(true))), "true");
        assert_eq!(cell(Some(&json!([1, 2]))), "[1,2]");
    }
}
