//! How a transform reads its input records and writes its outputs: as raw events, or as typed
//! payloads.

use std::marker::PhantomData;

use obzenflow_core::{ChainEvent, TypedPayload};
use obzenflow_runtime::stages::{RecordError, RecordType};

/// How a transform reads a record into the value its function takes.
///
/// ```
/// use obzenflow_core::ChainEvent;
/// use obzenflow_stages::transforms::{Decoder, Events};
///
/// let event = ChainEvent::data("n", serde_json::json!(1));
/// let decoded = Events::decode(&event)?;
/// assert_eq!(decoded.payload(), event.payload());
/// # Ok::<(), obzenflow_runtime::stages::RecordError>(())
/// ```
pub trait Decoder: 'static {
    /// The value the transform's function receives.
    type Item;

    /// Decodes an owned value from `event`.
    fn decode(event: &ChainEvent) -> Result<Self::Item, RecordError>;

    /// The record type it decodes, if one; `None` (the default) for any record.
    fn record_type() -> Option<RecordType> {
        None
    }

    /// Calls `inspect` with the decoded value, without copying where the value is the event
    /// itself.
    fn inspect<R>(
        event: &ChainEvent,
        inspect: impl FnOnce(&Self::Item) -> R,
    ) -> Result<R, RecordError>;
}

/// How a transform writes the value its function returned as an output record.
///
/// ```
/// use obzenflow_core::{ChainEvent, Timestamp};
/// use obzenflow_stages::transforms::{Encoder, Events};
///
/// let input = ChainEvent::data("n", serde_json::json!(1)).with_event_time(Timestamp::from_micros(5));
/// let output = Events::encode(ChainEvent::data("m", serde_json::json!(2)), &input)?;
/// assert_eq!(output.event_time, input.event_time);
/// # Ok::<(), obzenflow_runtime::stages::RecordError>(())
/// ```
pub trait Encoder: 'static {
    /// The value the transform's function returns.
    type Item;

    /// The output record for `item`, produced from `input`. Outputs without an event time of
    /// their own inherit the input's.
    fn encode(item: Self::Item, input: &ChainEvent) -> Result<ChainEvent, RecordError>;

    /// The record type it encodes to, if one; `None` (the default) for any record.
    fn record_type() -> Option<RecordType> {
        None
    }
}

/// Records as they are: the function receives and returns [`ChainEvent`]s.
///
/// ```
/// use obzenflow_stages::transforms::{map, Events, Map};
///
/// let upper: Map<Events, Events, _> = map(|event| event);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Events;

impl Decoder for Events {
    type Item = ChainEvent;

    fn decode(event: &ChainEvent) -> Result<ChainEvent, RecordError> {
        Ok(event.clone())
    }

    fn inspect<R>(
        event: &ChainEvent,
        inspect: impl FnOnce(&ChainEvent) -> R,
    ) -> Result<R, RecordError> {
        Ok(inspect(event))
    }
}

impl Encoder for Events {
    type Item = ChainEvent;

    fn encode(mut item: ChainEvent, input: &ChainEvent) -> Result<ChainEvent, RecordError> {
        if item.event_time.is_none() {
            item.event_time = input.event_time;
        }
        Ok(item)
    }
}

/// Typed payloads: the function receives and returns a [`TypedPayload`] type. A record of
/// another event type or with a payload that does not fit is a decode error.
///
/// ```
/// use obzenflow_core::TypedPayload;
/// use obzenflow_stages::transforms::{Decoder, Typed};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, PartialEq, Serialize, Deserialize, Clone)]
/// struct Order { id: u64 }
/// impl TypedPayload for Order { const EVENT_TYPE: &'static str = "order"; }
///
/// let event = Order { id: 4 }.to_event()?;
/// assert_eq!(Typed::<Order>::decode(&event)?, Order { id: 4 });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Typed<T>(PhantomData<fn() -> T>);

impl<T: TypedPayload + 'static> Decoder for Typed<T> {
    type Item = T;

    fn decode(event: &ChainEvent) -> Result<T, RecordError> {
        Ok(T::from_event(event)?)
    }

    fn record_type() -> Option<RecordType> {
        Some(RecordType::of::<T>())
    }

    fn inspect<R>(event: &ChainEvent, inspect: impl FnOnce(&T) -> R) -> Result<R, RecordError> {
        Ok(T::with_event(event, inspect)?)
    }
}

impl<T: TypedPayload + 'static> Encoder for Typed<T> {
    type Item = T;

    fn encode(item: T, input: &ChainEvent) -> Result<ChainEvent, RecordError> {
        let mut output = item.into_event();
        output.event_time = input.event_time;
        Ok(output)
    }

    fn record_type() -> Option<RecordType> {
        Some(RecordType::of::<T>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use obzenflow_core::{ErrorKind, Timestamp};
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize, Clone)]
    struct Order {
        id: u64,
    }

    impl TypedPayload for Order {
        const EVENT_TYPE: &'static str = "order";
    }

    #[test]
    fn typed_decoding_failures_are_decode_errors() {
        let event = ChainEvent::data("order", serde_json::json!({"id": "seven"}));
        let error = Typed::<Order>::decode(&event).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Decode);
        assert_eq!(
            error.message,
            "cannot decode `order` payload: invalid type: string \"seven\", expected u64"
        );
    }

    #[test]
    fn typed_outputs_keep_the_input_event_time() {
        let input = ChainEvent::data("x", serde_json::json!({}))
            .with_event_time(Timestamp::from_micros(42));
        let output = Typed::<Order>::encode(Order { id: 1 }, &input).unwrap();
        assert_eq!(output.event_time, Some(Timestamp::from_micros(42)));
        assert_eq!(output.event_type().unwrap(), "order");
    }

    #[test]
    fn events_keep_their_own_event_time() {
        let input = ChainEvent::data("x", serde_json::json!({}))
            .with_event_time(Timestamp::from_micros(42));
        let own =
            ChainEvent::data("y", serde_json::json!({})).with_event_time(Timestamp::from_micros(7));
        let output = Events::encode(own, &input).unwrap();
        assert_eq!(output.event_time, Some(Timestamp::from_micros(7)));
    }
}
