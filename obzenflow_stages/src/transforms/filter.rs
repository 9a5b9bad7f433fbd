//! `Filter`: keeps the records a predicate accepts.

use std::fmt;
use std::marker::PhantomData;

use obzenflow_core::ChainEvent;
use obzenflow_runtime::stages::{RecordError, RecordResult, RecordType, TransformHandler};

use super::codec::{Decoder, Events};

/// Keeps the records for which a predicate holds; the others count as filtered in the run
/// report. Kept records pass unchanged. Built by [`filter`] or
/// [`typed::filter`](super::typed::filter).
///
/// ```no_run
/// use obzenflow_runtime::pipeline::FlowBuilder;
/// use obzenflow_stages::sinks::ConsoleSink;
/// use obzenflow_stages::sources::JsonLinesSource;
/// use obzenflow_stages::transforms::filter;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// FlowBuilder::new("big-ones")
///     .async_source("in", JsonLinesSource::new("orders.jsonl", "order"))
///     .transform("big", filter(|event| {
///         event.json().and_then(|p| p["amount"].as_f64()).is_some_and(|amount| amount > 100.0)
///     }))
///     .sink("out", ConsoleSink::new())
///     .chain(["in", "big", "out"])
///     .build()?
///     .run()
///     .await?;
/// # Ok(())
/// # }
/// ```
pub struct Filter<In, F> {
    predicate: F,
    codec: PhantomData<fn() -> In>,
}

impl<In, F> fmt::Debug for Filter<In, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Filter").finish_non_exhaustive()
    }
}

impl<In, F> Filter<In, F>
where
    In: Decoder,
    F: FnMut(&In::Item) -> bool + Send + 'static,
{
    /// A filter reading records with `In`.
    ///
    /// ```
    /// use obzenflow_core::ChainEvent;
    /// use obzenflow_stages::transforms::{Events, Filter};
    ///
    /// let keep_all = Filter::<Events, _>::new(|_: &ChainEvent| true);
    /// ```
    pub fn new(predicate: F) -> Self {
        Self {
            predicate,
            codec: PhantomData,
        }
    }
}

/// A filter over raw events.
///
/// ```
/// use obzenflow_stages::transforms::filter;
///
/// let orders_only = filter(|event| event.event_type().is_some_and(|t| t == "order"));
/// ```
pub fn filter<F>(predicate: F) -> Filter<Events, F>
where
    F: FnMut(&ChainEvent) -> bool + Send + 'static,
{
    Filter::new(predicate)
}

impl<In, F> TransformHandler for Filter<In, F>
where
    In: Decoder,
    F: FnMut(&In::Item) -> bool + Send + 'static,
{
    fn input_type(&self) -> Option<RecordType> {
        In::record_type()
    }

    fn output_type(&self) -> Option<RecordType> {
        In::record_type()
    }

    fn process(&mut self, event: &ChainEvent) -> RecordResult {
        super::process_by_appending(self, event)
    }

    fn process_into(
        &mut self,
        event: &ChainEvent,
        out: &mut Vec<ChainEvent>,
    ) -> Result<(), RecordError> {
        if In::inspect(event, |item| (self.predicate)(item))? {
            out.push(event.clone());
        }
        Ok(())
    }
}
