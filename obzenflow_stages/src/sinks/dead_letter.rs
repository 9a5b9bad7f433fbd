//! `DeadLetterSink`: an error lane written as JSON Lines, one [`DeadLetter`] per line.

use std::path::PathBuf;

use obzenflow_core::{ChainEvent, DeliveryReceipt, EventContent, Payload, ProcessingStatus};
use obzenflow_runtime::stages::{HandlerFailure, RecordError, RunEnvironment, SinkHandler};
use serde::{Deserialize, Serialize};

use super::file::FileSinkConfig;
use super::jsonl::JsonLinesSink;

/// One rejected record as a dead-letter file holds it: why it was rejected, by which stage,
/// where it came from, and the record itself.
///
/// Read a dead-letter file back line by line with `serde_json::from_str::<DeadLetter>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The stage that raised the error (the stage whose error lane holds the record, when
    /// the record does not say).
    pub stage: String,
    /// The error's kind (`validation`, `decode`, ...).
    pub kind: String,
    /// The error's message.
    pub message: String,
    /// Where in its source's input the record began (`file:line`), when the source knew it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// The record's event type.
    pub event_type: String,
    /// The record's id on the error lane.
    pub event_id: String,
    /// The id of the source record it descends from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// The record's payload, as it was when the stage rejected it.
    pub payload: serde_json::Value,
}

/// What one line is written from: a [`DeadLetter`] borrowing the record.
#[derive(Serialize)]
struct Line<'a> {
    stage: &'a str,
    kind: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    origin: Option<String>,
    event_type: &'a str,
    event_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation_id: Option<String>,
    payload: &'a Payload,
}

/// Writes the records of one or more error lanes to a JSON Lines file, one [`DeadLetter`]
/// per line: the stage that rejected the record, the error's kind and message, the source
/// position (`file:line`) where the source knew it, also for records rejected stages after
/// the source, and the payload.
///
/// Wire it to error lanes with [`StageRef::errors`](obzenflow_runtime::pipeline::StageRef::errors).
/// The file is written like [`JsonLinesSink`]'s (atomically, under `replays/<run id>/` during a
/// replay). A record that is not in error status (a repaired record wired here by mistake) is
/// refused onto this sink's own error lane, naming it.
///
/// ```no_run
/// use obzenflow_stages::prelude::*;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let mut flow = FlowBuilder::new("orders");
/// let rows = flow.add_async_source("rows", CsvSource::new("orders.csv", "order"));
/// let valid = flow.add_transform("valid", filter(|event: &ChainEvent| event.field("id").is_some()), &rows);
/// flow.add_sink("out", JsonLinesSink::new("out/orders.jsonl"), &valid);
/// flow.add_sink("dead_letters", DeadLetterSink::new("out/rejected.jsonl"), [rows.errors(), valid.errors()]);
/// flow.build()?.run().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct DeadLetterSink {
    lines: JsonLinesSink,
    run: Option<RunEnvironment>,
    line: Vec<u8>,
}

impl DeadLetterSink {
    /// A sink writing dead letters to `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            lines: JsonLinesSink::new(path),
            run: None,
            line: Vec::new(),
        }
    }

    /// Replaces the file configuration.
    pub fn with_config(mut self, config: FileSinkConfig) -> Self {
        self.lines = self.lines.with_config(config);
        self
    }

    fn encode(&mut self, event: &ChainEvent) -> Result<(), RecordError> {
        let ProcessingStatus::Error {
            kind,
            message,
            stage_id,
        } = &event.processing_info.status
        else {
            return Err(RecordError::validation(format!(
                "record {} is not in error status: a dead-letter sink reads error lanes",
                event.id
            )));
        };
        let EventContent::Data {
            event_type,
            payload,
            ..
        } = &event.content
        else {
            return Err(RecordError::validation("not a data record"));
        };
        let raised_by = stage_id.or(match event.writer_id {
            obzenflow_core::WriterId::Stage(id) => Some(id),
            _ => None,
        });
        let stage = raised_by
            .and_then(|id| self.run.as_ref()?.stage_name(id))
            .unwrap_or("unknown");
        let line = Line {
            stage,
            kind: kind.as_str(),
            message,
            origin: event.origin().map(ToString::to_string),
            event_type: event_type.as_str(),
            event_id: event.id.to_string(),
            correlation_id: event
                .causality
                .correlation_id
                .map(|correlation| correlation.to_string()),
            payload,
        };
        self.line.clear();
        serde_json::to_writer(&mut self.line, &line)
            .map_err(|error| RecordError::validation(error.to_string()))?;
        self.line.push(b'\n');
        Ok(())
    }
}

impl SinkHandler for DeadLetterSink {
    fn prepare(&mut self, run: &RunEnvironment) {
        self.lines.prepare(run);
        self.run = Some(run.clone());
    }

    fn initialize(&mut self) -> Result<(), HandlerFailure> {
        self.lines.initialize()
    }

    fn consume(&mut self, event: &ChainEvent) -> Result<(), RecordError> {
        self.encode(event)?;
        self.lines.write_line(&self.line)
    }

    fn flush(&mut self) -> Result<Option<DeliveryReceipt>, HandlerFailure> {
        self.lines.flush()
    }
}
