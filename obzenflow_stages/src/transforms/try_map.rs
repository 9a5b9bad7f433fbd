//! `TryMap`: one record in, one record out, or the record on the error lane.

use std::fmt;
use std::marker::PhantomData;

use obzenflow_core::ChainEvent;
use obzenflow_runtime::stages::{RecordError, RecordResult, RecordType, TransformHandler};

use super::codec::{Decoder, Encoder, Events};

/// Applies a fallible function to every record; an `Err` puts the record on the error lane with
/// the error's kind and message, and the stage goes on. Built by [`try_map`] or
/// [`typed::try_map`](super::typed::try_map).
///
/// ```no_run
/// use obzenflow_core::ChainEvent;
/// use obzenflow_runtime::pipeline::FlowBuilder;
/// use obzenflow_runtime::stages::RecordError;
/// use obzenflow_stages::sinks::ConsoleSink;
/// use obzenflow_stages::sources::JsonLinesSource;
/// use obzenflow_stages::transforms::try_map;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let checked = try_map(|event: ChainEvent| {
///     let amount = event.json().and_then(|p| p["amount"].as_f64());
///     match amount {
///         Some(amount) if amount >= 0.0 => Ok(event),
///         Some(amount) => Err(RecordError::validation(format!("negative amount {amount}"))),
///         None => Err(RecordError::validation("amount is missing")),
///     }
/// });
/// FlowBuilder::new("checked")
///     .async_source("in", JsonLinesSource::new("orders.jsonl", "order"))
///     .transform("check", checked)
///     .sink("out", ConsoleSink::new())
///     .chain(["in", "check", "out"])
///     .build()?
///     .run()
///     .await?;
/// # Ok(())
/// # }
/// ```
pub struct TryMap<In, Out, F> {
    function: F,
    codec: PhantomData<fn() -> (In, Out)>,
}

impl<In, Out, F> fmt::Debug for TryMap<In, Out, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryMap").finish_non_exhaustive()
    }
}

impl<In, Out, F, E> TryMap<In, Out, F>
where
    In: Decoder,
    Out: Encoder,
    F: FnMut(In::Item) -> Result<Out::Item, E> + Send + 'static,
    E: Into<RecordError>,
{
    /// A fallible map reading records with `In` and writing them with `Out`.
    ///
    /// ```
    /// use obzenflow_core::ChainEvent;
    /// use obzenflow_runtime::stages::RecordError;
    /// use obzenflow_stages::transforms::{Events, TryMap};
    ///
    /// let reject_all =
    ///     TryMap::<Events, Events, _>::new(|_: ChainEvent| Err::<ChainEvent, _>("no"));
    /// ```
    pub fn new(function: F) -> Self {
        Self {
            function,
            codec: PhantomData,
        }
    }
}

/// A fallible map over raw events. Any error convertible into a [`RecordError`] will do:
/// `&str` and `String` become validation errors.
///
/// ```
/// use obzenflow_core::ChainEvent;
/// use obzenflow_stages::transforms::try_map;
///
/// let needs_payload = try_map(|event: ChainEvent| {
///     if event.json().is_some_and(|p| p.is_object()) { Ok(event) } else { Err("not an object") }
/// });
/// ```
pub fn try_map<F, E>(function: F) -> TryMap<Events, Events, F>
where
    F: FnMut(ChainEvent) -> Result<ChainEvent, E> + Send + 'static,
    E: Into<RecordError>,
{
    TryMap::new(function)
}

impl<In, Out, F, E> TransformHandler for TryMap<In, Out, F>
where
    In: Decoder,
    Out: Encoder,
    F: FnMut(In::Item) -> Result<Out::Item, E> + Send + 'static,
    E: Into<RecordError>,
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
        let output = (self.function)(item).map_err(Into::into)?;
        out.push(Out::encode(output, event)?);
        Ok(())
    }
}
