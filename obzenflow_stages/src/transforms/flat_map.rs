//! `FlatMap`: one record in, any number of records out.

use std::fmt;
use std::marker::PhantomData;

use obzenflow_core::ChainEvent;
use obzenflow_runtime::stages::{RecordResult, RecordType, TransformHandler};

use super::codec::{Decoder, Encoder, Events};

/// Turns each record into zero or more records; zero counts as filtered. Built by [`flat_map`]
/// or [`typed::flat_map`](super::typed::flat_map).
///
/// ```no_run
/// use obzenflow_core::ChainEvent;
/// use obzenflow_runtime::pipeline::FlowBuilder;
/// use obzenflow_stages::sinks::ConsoleSink;
/// use obzenflow_stages::sources::JsonLinesSource;
/// use obzenflow_stages::transforms::flat_map;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// // One record per word of each line's `text`.
/// let words = flat_map(|event: ChainEvent| {
///     let text = event.json().and_then(|p| p["text"].as_str().map(str::to_owned)).unwrap_or_default();
///     text.split_whitespace()
///         .map(|word| event.derive_data("word", serde_json::json!(word)))
///         .collect::<Vec<_>>()
/// });
/// FlowBuilder::new("words")
///     .async_source("lines", JsonLinesSource::new("lines.jsonl", "line"))
///     .transform("words", words)
///     .sink("print", ConsoleSink::new())
///     .chain(["lines", "words", "print"])
///     .build()?
///     .run()
///     .await?;
/// # Ok(())
/// # }
/// ```
pub struct FlatMap<In, Out, F> {
    function: F,
    codec: PhantomData<fn() -> (In, Out)>,
}

impl<In, Out, F> fmt::Debug for FlatMap<In, Out, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlatMap").finish_non_exhaustive()
    }
}

impl<In, Out, F, I> FlatMap<In, Out, F>
where
    In: Decoder,
    Out: Encoder,
    F: FnMut(In::Item) -> I + Send + 'static,
    I: IntoIterator<Item = Out::Item>,
{
    /// A flat map reading records with `In` and writing its outputs with `Out`.
    ///
    /// ```
    /// use obzenflow_core::ChainEvent;
    /// use obzenflow_stages::transforms::{Events, FlatMap};
    ///
    /// let twice = FlatMap::<Events, Events, _>::new(|event: ChainEvent| [event.clone(), event]);
    /// ```
    pub fn new(function: F) -> Self {
        Self {
            function,
            codec: PhantomData,
        }
    }
}

/// A flat map over raw events.
///
/// ```
/// use obzenflow_core::ChainEvent;
/// use obzenflow_stages::transforms::flat_map;
///
/// let drop_all = flat_map(|_: ChainEvent| Vec::new());
/// ```
pub fn flat_map<F, I>(function: F) -> FlatMap<Events, Events, F>
where
    F: FnMut(ChainEvent) -> I + Send + 'static,
    I: IntoIterator<Item = ChainEvent>,
{
    FlatMap::new(function)
}

impl<In, Out, F, I> TransformHandler for FlatMap<In, Out, F>
where
    In: Decoder,
    Out: Encoder,
    F: FnMut(In::Item) -> I + Send + 'static,
    I: IntoIterator<Item = Out::Item>,
{
    fn input_type(&self) -> Option<RecordType> {
        In::record_type()
    }

    fn output_type(&self) -> Option<RecordType> {
        Out::record_type()
    }

    fn process(&mut self, event: &ChainEvent) -> RecordResult {
        let item = In::decode(event)?;
        (self.function)(item)
            .into_iter()
            .map(|output| Out::encode(output, event))
            .collect()
    }
}
