//! `Map`: one record in, one record out.

use std::fmt;
use std::marker::PhantomData;

use obzenflow_core::ChainEvent;
use obzenflow_runtime::stages::{RecordError, RecordResult, RecordType, TransformHandler};

use super::codec::{Decoder, Encoder, Events};

/// Applies a function to every record. Built by [`map`] or [`typed::map`](super::typed::map).
///
/// ```no_run
/// use obzenflow_runtime::pipeline::FlowBuilder;
/// use obzenflow_stages::sinks::ConsoleSink;
/// use obzenflow_stages::sources::JsonLinesSource;
/// use obzenflow_stages::transforms::map;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// FlowBuilder::new("stamp")
///     .async_source("in", JsonLinesSource::new("in.jsonl", "row"))
///     .transform("stamp", map(|mut event| {
///         if let Some(payload) = event.payload_mut() {
///             payload["seen"] = true.into();
///         }
///         event
///     }))
///     .sink("out", ConsoleSink::new())
///     .chain(["in", "stamp", "out"])
///     .build()?
///     .run()
///     .await?;
/// # Ok(())
/// # }
/// ```
pub struct Map<In, Out, F> {
    function: F,
    codec: PhantomData<fn() -> (In, Out)>,
}

impl<In, Out, F> fmt::Debug for Map<In, Out, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Map").finish_non_exhaustive()
    }
}

impl<In, Out, F> Map<In, Out, F>
where
    In: Decoder,
    Out: Encoder,
    F: FnMut(In::Item) -> Out::Item + Send + 'static,
{
    /// A map reading records with `In` and writing them with `Out`.
    ///
    /// ```
    /// use obzenflow_core::ChainEvent;
    /// use obzenflow_stages::transforms::{Events, Map};
    ///
    /// let identity = Map::<Events, Events, _>::new(|event: ChainEvent| event);
    /// ```
    pub fn new(function: F) -> Self {
        Self {
            function,
            codec: PhantomData,
        }
    }
}

/// A map over raw events: the function gets an owned copy of each record to change or replace.
///
/// ```
/// use obzenflow_core::ChainEvent;
/// use obzenflow_stages::transforms::map;
///
/// let rename = map(|event: ChainEvent| {
///     event.derive_data("renamed", event.payload().cloned().unwrap_or_else(|| serde_json::Value::Null.into()))
/// });
/// ```
pub fn map<F>(function: F) -> Map<Events, Events, F>
where
    F: FnMut(ChainEvent) -> ChainEvent + Send + 'static,
{
    Map::new(function)
}

impl<In, Out, F> TransformHandler for Map<In, Out, F>
where
    In: Decoder,
    Out: Encoder,
    F: FnMut(In::Item) -> Out::Item + Send + 'static,
{
    fn input_type(&self) -> Option<RecordType> {
        In::record_type()
    }

    fn output_type(&self) -> Option<RecordType> {
        Out::record_type()
    }

    fn process(&mut self, event: &ChainEvent) -> RecordResult {
        super::process_by_appending(self, event)
    }

    fn process_into(
        &mut self,
        event: &ChainEvent,
        out: &mut Vec<ChainEvent>,
    ) -> Result<(), RecordError> {
        let item = In::decode(event)?;
        out.push(Out::encode((self.function)(item), event)?);
        Ok(())
    }
}
