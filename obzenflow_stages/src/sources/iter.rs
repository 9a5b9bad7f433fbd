//! `IterSource`: records from an iterator or a `Vec`, of events or of typed payloads.

use std::fmt;

use obzenflow_core::{ChainEvent, TypedPayload};

use obzenflow_runtime::stages::{HandlerFailure, RecordType, SourceHandler, SourcePoll};

/// The most records a source allocates room for up front, whatever batch size it is asked for.
pub(crate) const PREALLOCATE_LIMIT: usize = 4096;

/// A function turning a typed payload into a record.
pub type PayloadToEvent<T> = fn(T) -> ChainEvent;

/// Emits the records of an iterator, then ends.
///
/// ```no_run
/// use obzenflow_core::ChainEvent;
/// use obzenflow_runtime::pipeline::{FlowBuilder, Journals};
/// use obzenflow_stages::sinks::CollectSink;
/// use obzenflow_stages::sources::IterSource;
/// use serde_json::json;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let events = (0..3).map(|n| ChainEvent::data("number", json!({ "n": n })));
/// let sink = CollectSink::new();
/// FlowBuilder::new("numbers")
///     .source("numbers", IterSource::new(events))
///     .sink("collect", sink.clone())
///     .edge("numbers", "collect")
///     .journals(Journals::memory())
///     .build()?
///     .run()
///     .await?;
/// assert_eq!(sink.len(), 3);
/// # Ok(())
/// # }
/// ```
pub struct IterSource<I> {
    records: I,
    /// The record type it emits, when built typed; `FlowBuilder::build` checks edges by it.
    record_type: Option<RecordType>,
}

impl<I> fmt::Debug for IterSource<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IterSource").finish_non_exhaustive()
    }
}

impl<I> IterSource<I>
where
    I: Iterator<Item = ChainEvent> + Send + 'static,
{
    /// A source emitting `records` in order. Records already in error status go to the error
    /// lane.
    ///
    /// ```
    /// use obzenflow_core::ChainEvent;
    /// use obzenflow_stages::sources::IterSource;
    ///
    /// let source = IterSource::new(vec![ChainEvent::data("tick", serde_json::json!(1))]);
    /// ```
    pub fn new(records: impl IntoIterator<IntoIter = I>) -> Self {
        Self {
            records: records.into_iter(),
            record_type: None,
        }
    }
}

impl<P> IterSource<std::iter::Map<P, PayloadToEvent<P::Item>>>
where
    P: Iterator + Send + 'static,
    P::Item: TypedPayload,
{
    /// A source emitting one record per typed payload, of the payload's event type.
    ///
    /// A payload that cannot be serialized becomes an error-lane record (kind `other`) instead
    /// of being dropped.
    ///
    /// ```
    /// use obzenflow_core::TypedPayload;
    /// use obzenflow_stages::sources::IterSource;
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize, Clone)]
    /// struct Order { id: u64, amount: f64 }
    /// impl TypedPayload for Order { const EVENT_TYPE: &'static str = "order"; }
    ///
    /// let source = IterSource::from_payloads(vec![Order { id: 1, amount: 9.5 }]);
    /// ```
    pub fn from_payloads(payloads: impl IntoIterator<IntoIter = P>) -> Self {
        let to_event: PayloadToEvent<P::Item> = TypedPayload::into_event;
        Self {
            records: payloads.into_iter().map(to_event),
            record_type: Some(RecordType::of::<P::Item>()),
        }
    }
}

impl<I> SourceHandler for IterSource<I>
where
    I: Iterator<Item = ChainEvent> + Send + 'static,
{
    fn output_type(&self) -> Option<RecordType> {
        self.record_type
    }

    fn next_batch(&mut self, max: usize) -> Result<SourcePoll, HandlerFailure> {
        let records: Vec<ChainEvent> = self.records.by_ref().take(max).collect();
        Ok(if records.is_empty() {
            SourcePoll::Done
        } else {
            SourcePoll::Records(records)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};
    use std::collections::HashMap;

    #[derive(Serialize, Deserialize, Clone)]
    struct Keyed(HashMap<(u8, u8), u8>);

    impl TypedPayload for Keyed {
        const EVENT_TYPE: &'static str = "keyed";
    }

    #[test]
    fn emits_in_batches_then_done() {
        let events = (0..5).map(|n| ChainEvent::data("n", serde_json::json!(n)));
        let mut source = IterSource::new(events);
        let mut sizes = Vec::new();
        while let SourcePoll::Records(records) = source.next_batch(2).unwrap() {
            sizes.push(records.len());
        }
        assert_eq!(sizes, [2, 2, 1]);
    }

    #[test]
    fn payloads_travel_typed_and_an_unencodable_one_fails_only_when_encoded_for_disk() {
        let payload = Keyed(HashMap::from([((1, 2), 3)]));
        let mut source = IterSource::from_payloads(vec![payload]);
        let SourcePoll::Records(records) = source.next_batch(10).unwrap() else {
            panic!("expected records");
        };
        let typed = records[0].payload().unwrap();
        assert_eq!(
            typed.downcast_ref::<Keyed>().map(|keyed| keyed.0.len()),
            Some(1)
        );
        // A disk journal encodes it at append, and that append fails naming the record.
        let error = obzenflow_runtime::journal::codec::encode_into(&records[0], &mut Vec::new())
            .unwrap_err();
        assert_eq!(error.event_id, records[0].id);
        assert_eq!(error.source.to_string(), "key must be a string");
    }
}
