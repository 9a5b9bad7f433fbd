//! `ConsoleSink`: one human-readable line per record.

use std::fmt;
use std::io::{self, Write};

use obzenflow_core::{ChainEvent, DeliveryReceipt, ErrorKind, TypedPayload};
use obzenflow_runtime::stages::{HandlerFailure, RecordError, RecordType, SinkHandler};

/// Renders one record as a line of text.
type Format = Box<dyn FnMut(&ChainEvent) -> Result<String, RecordError> + Send>;

/// Prints one line per record, to stdout or any writer.
///
/// By default a line is the event type and the payload as compact JSON
/// (`order {"amount":12.5,"id":7}`); [`typed`](Self::typed) and [`format`](Self::format) choose
/// the text. An optional [`title`](Self::title) is printed before the first record.
///
/// ```no_run
/// use obzenflow_core::TypedPayload;
/// use obzenflow_runtime::pipeline::FlowBuilder;
/// use obzenflow_stages::sinks::ConsoleSink;
/// use obzenflow_stages::sources::CsvSource;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, Clone)]
/// struct Order { id: u64, amount: f64 }
/// impl TypedPayload for Order { const EVENT_TYPE: &'static str = "order"; }
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// FlowBuilder::new("print-orders")
///     .async_source("orders", CsvSource::typed::<Order>("orders.csv"))
///     .sink("print", ConsoleSink::typed(|o: &Order| format!("order {:>6}  {:>10.2}", o.id, o.amount))
///         .title("Orders"))
///     .edge("orders", "print")
///     .build()?
///     .run()
///     .await?;
/// # Ok(())
/// # }
/// ```
pub struct ConsoleSink {
    format: Format,
    out: Box<dyn Write + Send>,
    title: Option<String>,
    records: u64,
    bytes: u64,
    failure: Option<io::Error>,
    /// The record type it decodes, when built typed; `FlowBuilder::build` checks edges by it.
    record_type: Option<RecordType>,
}

impl fmt::Debug for ConsoleSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsoleSink")
            .field("title", &self.title)
            .field("records", &self.records)
            .finish_non_exhaustive()
    }
}

impl Default for ConsoleSink {
    fn default() -> Self {
        Self::new()
    }
}

impl ConsoleSink {
    /// Prints `<event type> <payload as JSON>` per record to stdout.
    ///
    /// ```
    /// use obzenflow_stages::sinks::ConsoleSink;
    ///
    /// let sink = ConsoleSink::new();
    /// ```
    pub fn new() -> Self {
        Self {
            record_type: None,
            format: Box::new(|event: &ChainEvent| {
                let event_type = event.event_type().map_or("-", |t| t.as_str());
                let payload = event.payload().map_or(String::new(), ToString::to_string);
                Ok(format!("{event_type} {payload}"))
            }),
            out: Box::new(io::stdout()),
            title: None,
            records: 0,
            bytes: 0,
            failure: None,
        }
    }

    /// Prints `format(payload)` per record, decoding each payload as a `T`; a record that does
    /// not decode goes to the error lane.
    ///
    /// ```
    /// use obzenflow_core::TypedPayload;
    /// use obzenflow_stages::sinks::ConsoleSink;
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize, Clone)]
    /// struct Spend { customer: String, total: f64 }
    /// impl TypedPayload for Spend { const EVENT_TYPE: &'static str = "spend"; }
    ///
    /// let sink = ConsoleSink::typed(|s: &Spend| format!("{:<12} {:>10.2}", s.customer, s.total));
    /// ```
    pub fn typed<T: TypedPayload + 'static>(
        mut format: impl FnMut(&T) -> String + Send + 'static,
    ) -> Self {
        let mut sink = Self::new().format(move |event| Ok(format(&T::from_event(event)?)));
        sink.record_type = Some(RecordType::of::<T>());
        sink
    }

    /// Prints `format(event)` per record; an `Err` puts the record on the error lane.
    ///
    /// ```
    /// use obzenflow_core::ChainEvent;
    /// use obzenflow_stages::sinks::ConsoleSink;
    ///
    /// let sink = ConsoleSink::new().format(|event: &ChainEvent| Ok(format!("{:?}", event.event_time)));
    /// ```
    pub fn format(
        mut self,
        format: impl FnMut(&ChainEvent) -> Result<String, RecordError> + Send + 'static,
    ) -> Self {
        self.format = Box::new(format);
        self
    }

    /// Prints `title` on its own line before the first record.
    ///
    /// ```
    /// use obzenflow_stages::sinks::ConsoleSink;
    ///
    /// let sink = ConsoleSink::new().title("Top customers");
    /// ```
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// Writes to `out` instead of stdout (a file, a buffer, a progress bar's printer).
    ///
    /// ```
    /// use obzenflow_stages::sinks::ConsoleSink;
    ///
    /// let sink = ConsoleSink::new().writer(std::io::stderr());
    /// ```
    pub fn writer(mut self, out: impl Write + Send + 'static) -> Self {
        self.out = Box::new(out);
        self
    }

    fn write_line(&mut self, line: &str) -> io::Result<()> {
        let mut text = String::with_capacity(line.len() + 1);
        if self.records == 0 {
            if let Some(title) = &self.title {
                text.push_str(title);
                text.push('\n');
            }
        }
        text.push_str(line);
        text.push('\n');
        self.out.write_all(text.as_bytes())?;
        self.bytes += text.len() as u64;
        Ok(())
    }
}

impl SinkHandler for ConsoleSink {
    fn input_type(&self) -> Option<RecordType> {
        self.record_type
    }

    fn consume(&mut self, event: &ChainEvent) -> Result<(), RecordError> {
        if let Some(error) = &self.failure {
            return Err(console_error(error));
        }
        let line = (self.format)(event)?;
        if let Err(error) = self.write_line(&line) {
            let record_error = console_error(&error);
            self.failure = Some(error);
            return Err(record_error);
        }
        self.records += 1;
        Ok(())
    }

    fn flush(&mut self) -> Result<Option<DeliveryReceipt>, HandlerFailure> {
        if let Some(error) = self.failure.take() {
            return Err(HandlerFailure::with_source(
                "cannot write to the console",
                error,
            ));
        }
        self.out
            .flush()
            .map_err(|error| HandlerFailure::with_source("cannot write to the console", error))?;
        Ok(Some(DeliveryReceipt {
            destination: "console".to_owned(),
            records: self.records,
            bytes: self.bytes,
        }))
    }
}

fn console_error(error: &io::Error) -> RecordError {
    RecordError::new(
        ErrorKind::Other,
        format!("cannot write to the console: {error}"),
    )
}
