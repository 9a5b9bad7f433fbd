//! `NullSink`: counts records and discards them.

use obzenflow_core::{ChainEvent, DeliveryReceipt};
use obzenflow_runtime::stages::{HandlerFailure, RecordError, SinkHandler};

/// Discards every record, counting them for its delivery receipt. Useful to end a flow whose
/// journals are the point, and in benchmarks.
///
/// ```no_run
/// use obzenflow_runtime::pipeline::FlowBuilder;
/// use obzenflow_stages::sinks::NullSink;
/// use obzenflow_stages::sources::JsonLinesSource;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let report = FlowBuilder::new("validate")
///     .async_source("in", JsonLinesSource::new("in.jsonl", "row"))
///     .sink("discard", NullSink::new())
///     .edge("in", "discard")
///     .build()?
///     .run()
///     .await?;
/// println!("{} bad lines", report.stage("in").map_or(0, |s| s.records_errored));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct NullSink {
    records: u64,
}

impl NullSink {
    /// A sink that discards everything.
    ///
    /// ```
    /// use obzenflow_stages::sinks::NullSink;
    ///
    /// let sink = NullSink::new();
    /// ```
    pub fn new() -> Self {
        Self::default()
    }
}

impl SinkHandler for NullSink {
    fn consume(&mut self, _event: &ChainEvent) -> Result<(), RecordError> {
        self.records += 1;
        Ok(())
    }

    fn flush(&mut self) -> Result<Option<DeliveryReceipt>, HandlerFailure> {
        Ok(Some(DeliveryReceipt {
            destination: "null".to_owned(),
            records: self.records,
            bytes: 0,
        }))
    }
}
