//! `JsonLinesSink`: one JSON value per line, written atomically.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use obzenflow_core::{ChainEvent, DeliveryReceipt};
use obzenflow_runtime::stages::{HandlerFailure, RecordError, RunEnvironment, SinkHandler};

use super::file::{Counting, FileSinkConfig, OutputFile};

/// Writes each record's payload (or, with [`whole_events`](Self::whole_events), the whole
/// event with its id, lineage and status) as one line of JSON.
///
/// The file is written as a uniquely named `<path>.<pid>.<random>.tmp` and renamed to `<path>`
/// when the flow drains (see [`FileSinkConfig`]); a replay writes under `replays/<run id>/` next to
/// `<path>` instead (see [`FileSinkConfig::overwrite_on_replay`](field@FileSinkConfig::overwrite_on_replay)); the delivery receipt reports the records and bytes written.
///
/// ```no_run
/// use obzenflow_runtime::pipeline::FlowBuilder;
/// use obzenflow_stages::sinks::JsonLinesSink;
/// use obzenflow_stages::sources::CsvSource;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// FlowBuilder::new("csv-to-jsonl")
///     .async_source("rows", CsvSource::new("in.csv", "row"))
///     .sink("out", JsonLinesSink::new("out/rows.jsonl"))
///     .edge("rows", "out")
///     .build()?
///     .run()
///     .await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct JsonLinesSink {
    file: OutputFile,
    writer: Option<BufWriter<Counting<File>>>,
    whole_events: bool,
    line: Vec<u8>,
    records: u64,
}

impl JsonLinesSink {
    /// A sink writing payloads to `path`.
    ///
    /// ```
    /// use obzenflow_stages::sinks::JsonLinesSink;
    ///
    /// let sink = JsonLinesSink::new("target/out.jsonl");
    /// ```
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            file: OutputFile::new(path.into(), FileSinkConfig::default()),
            writer: None,
            whole_events: false,
            line: Vec::new(),
            records: 0,
        }
    }

    /// Writes whole events (id, writer, lineage, status, event time, payload) instead of
    /// payloads only.
    ///
    /// ```
    /// use obzenflow_stages::sinks::JsonLinesSink;
    ///
    /// let audit = JsonLinesSink::new("audit.jsonl").whole_events();
    /// ```
    pub fn whole_events(mut self) -> Self {
        self.whole_events = true;
        self
    }

    /// Replaces the file configuration.
    ///
    /// ```
    /// use obzenflow_stages::sinks::{FileSinkConfig, JsonLinesSink};
    ///
    /// let sink = JsonLinesSink::new("out.jsonl")
    ///     .with_config(FileSinkConfig { atomic: false, create_dirs: false, overwrite_on_replay: false });
    /// ```
    pub fn with_config(mut self, config: FileSinkConfig) -> Self {
        self.file.set_config(config);
        self
    }

    /// Writes one encoded line (with its newline) as one record.
    pub(crate) fn write_line(&mut self, line: &[u8]) -> Result<(), RecordError> {
        self.file.check()?;
        let Some(writer) = self.writer.as_mut() else {
            return Err(self.file.not_open());
        };
        writer
            .write_all(line)
            .map_err(|error| self.file.write_failed(error))?;
        self.records += 1;
        Ok(())
    }

    /// Serializes `event` into `self.line`, with its newline.
    fn encode(&mut self, event: &ChainEvent) -> Result<(), RecordError> {
        self.line.clear();
        let encoded = if self.whole_events {
            serde_json::to_writer(&mut self.line, event)
        } else {
            let payload = event
                .payload()
                .ok_or_else(|| RecordError::validation("not a data record"))?;
            serde_json::to_writer(&mut self.line, payload)
        };
        encoded.map_err(|error| RecordError::validation(error.to_string()))?;
        self.line.push(b'\n');
        Ok(())
    }
}

impl SinkHandler for JsonLinesSink {
    fn prepare(&mut self, run: &RunEnvironment) {
        self.file.prepare(run);
    }

    fn initialize(&mut self) -> Result<(), HandlerFailure> {
        self.writer = Some(BufWriter::new(self.file.create()?));
        Ok(())
    }

    fn consume(&mut self, event: &ChainEvent) -> Result<(), RecordError> {
        self.encode(event)?;
        let line = std::mem::take(&mut self.line);
        let written = self.write_line(&line);
        self.line = line;
        written
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
        tracing::debug!(path = %self.file.path().display(), records = self.records, bytes, "json lines file written");
        Ok(Some(self.file.receipt(self.records, bytes)))
    }
}
