//! `CollectSink`: keeps every record in memory, for tests and small flows.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use obzenflow_core::{ChainEvent, DeliveryReceipt, PayloadError, TypedPayload};
use obzenflow_runtime::stages::{HandlerFailure, RecordError, SinkHandler};

/// Collects every record it receives. Clones share the same records, so keep a clone to read
/// them after the flow ran.
///
/// ```no_run
/// use obzenflow_core::ChainEvent;
/// use obzenflow_runtime::pipeline::{FlowBuilder, Journals};
/// use obzenflow_stages::sinks::CollectSink;
/// use obzenflow_stages::sources::IterSource;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let sink = CollectSink::new();
/// FlowBuilder::new("collect")
///     .source("numbers", IterSource::new((0..5).map(|n| ChainEvent::data("n", serde_json::json!(n)))))
///     .sink("collect", sink.clone())
///     .edge("numbers", "collect")
///     .journals(Journals::memory())
///     .build()?
///     .run()
///     .await?;
/// let numbers: Vec<u64> = sink.payloads().iter().filter_map(|p| p.as_u64()).collect();
/// assert_eq!(numbers, [0, 1, 2, 3, 4]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct CollectSink {
    records: Arc<Mutex<Vec<ChainEvent>>>,
}

impl CollectSink {
    /// An empty collector.
    ///
    /// ```
    /// use obzenflow_stages::sinks::CollectSink;
    ///
    /// assert!(CollectSink::new().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<ChainEvent>> {
        // A panic while holding the lock cannot leave the vector half-written: pushes are
        // atomic from the collector's point of view, so a poisoned lock is still usable.
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A copy of every record received so far, in arrival order.
    ///
    /// ```
    /// use obzenflow_stages::sinks::CollectSink;
    ///
    /// assert!(CollectSink::new().events().is_empty());
    /// ```
    pub fn events(&self) -> Vec<ChainEvent> {
        self.lock().clone()
    }

    /// The payloads of every data record received so far.
    ///
    /// ```
    /// use obzenflow_stages::sinks::CollectSink;
    ///
    /// assert!(CollectSink::new().payloads().is_empty());
    /// ```
    pub fn payloads(&self) -> Vec<serde_json::Value> {
        self.lock()
            .iter()
            .filter_map(|event| event.json().map(std::borrow::Cow::into_owned))
            .collect()
    }

    /// Every record decoded as a `T`; the first that does not decode is the error.
    ///
    /// ```
    /// use obzenflow_core::TypedPayload;
    /// use obzenflow_stages::sinks::CollectSink;
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize, Clone)]
    /// struct Order { id: u64 }
    /// impl TypedPayload for Order { const EVENT_TYPE: &'static str = "order"; }
    ///
    /// let orders: Vec<Order> = CollectSink::new().decode()?;
    /// # Ok::<(), obzenflow_core::PayloadError>(())
    /// ```
    pub fn decode<T: TypedPayload>(&self) -> Result<Vec<T>, PayloadError> {
        self.lock().iter().map(T::from_event).collect()
    }

    /// How many records were received.
    ///
    /// ```
    /// use obzenflow_stages::sinks::CollectSink;
    ///
    /// assert_eq!(CollectSink::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no record was received.
    ///
    /// ```
    /// use obzenflow_stages::sinks::CollectSink;
    ///
    /// assert!(CollectSink::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

impl SinkHandler for CollectSink {
    fn consume(&mut self, event: &ChainEvent) -> Result<(), RecordError> {
        self.lock().push(event.clone());
        Ok(())
    }

    fn flush(&mut self) -> Result<Option<DeliveryReceipt>, HandlerFailure> {
        Ok(Some(DeliveryReceipt {
            destination: "collector".to_owned(),
            records: self.len() as u64,
            bytes: 0,
        }))
    }
}
