//! Typed payloads: tie a Rust type to an event type and schema version, so user code handles
//! its own structs and never hand-parses JSON.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::event::{ChainEvent, EventContent, EventType, Payload};

/// A Rust type that is the payload of one event type.
///
/// ```
/// use obzenflow_core::{ChainEvent, TypedPayload};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// struct Order {
///     id: u64,
///     amount: f64,
/// }
///
/// impl TypedPayload for Order {
///     const EVENT_TYPE: &'static str = "order";
/// }
///
/// let event = Order { id: 1, amount: 9.5 }.to_event()?;
/// assert_eq!(Order::from_event(&event)?, Order { id: 1, amount: 9.5 });
///
/// let other = ChainEvent::data("refund", serde_json::json!({}));
/// let error = Order::from_event(&other).unwrap_err();
/// assert_eq!(error.to_string(), "expected a `order` record, found `refund`");
/// # Ok::<(), obzenflow_core::PayloadError>(())
/// ```
pub trait TypedPayload: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// The event type records of this payload carry.
    const EVENT_TYPE: &'static str;
    /// The schema version this type writes and accepts.
    const SCHEMA_VERSION: u32 = 1;

    /// The payload as JSON.
    fn to_payload(&self) -> Result<serde_json::Value, PayloadError> {
        serde_json::to_value(self).map_err(|source| PayloadError::Encode {
            event_type: Self::EVENT_TYPE,
            source,
        })
    }

    /// A fresh data event carrying this value as it is: readers in the same process get it
    /// back by reference, and it is serialized only if its journal stores it on disk.
    fn into_event(self) -> ChainEvent {
        ChainEvent::new(EventContent::Data {
            event_type: EventType::from_static(Self::EVENT_TYPE),
            schema_version: Self::SCHEMA_VERSION,
            payload: Payload::typed(self),
        })
    }

    /// A fresh data event carrying a copy of this value; see [`into_event`](Self::into_event),
    /// which needs no copy. It does not fail: the value is not serialized here.
    fn to_event(&self) -> Result<ChainEvent, PayloadError> {
        Ok(self.clone().into_event())
    }

    /// Calls `read` with the payload of `event` by reference, checking its event type and
    /// schema version first. A typed payload of this type is not copied; a JSON payload (a
    /// record read back from disk) is deserialized.
    fn with_event<R>(event: &ChainEvent, read: impl FnOnce(&Self) -> R) -> Result<R, PayloadError> {
        let payload = Self::check_header(event)?;
        if let Some(value) = payload.downcast_ref::<Self>() {
            return Ok(read(value));
        }
        Self::decode_payload(payload).map(|value| read(&value))
    }

    /// The payload of `event` by reference when it carries a value of this type as it is (as
    /// records passed between stages in one process do), with no decoding and no copy; `None`
    /// for anything else: another event type or version, a control event, or a payload that
    /// would need decoding (a record read back from disk), which [`with_event`](Self::with_event)
    /// decodes or names the error of.
    fn shared(event: &ChainEvent) -> Option<&Self> {
        Self::check_header(event).ok()?.downcast_ref::<Self>()
    }

    /// Decodes the payload of `event`, checking its event type and schema version first. A
    /// typed payload of this type is cloned; a JSON payload is deserialized.
    fn from_event(event: &ChainEvent) -> Result<Self, PayloadError> {
        let payload = Self::check_header(event)?;
        if let Some(value) = payload.downcast_ref::<Self>() {
            return Ok(value.clone());
        }
        Self::decode_payload(payload)
    }

    #[doc(hidden)]
    /// The payload of `event` once its event type and schema version are this type's.
    fn check_header(event: &ChainEvent) -> Result<&Payload, PayloadError> {
        let EventContent::Data {
            event_type,
            schema_version,
            payload,
        } = &event.content
        else {
            return Err(PayloadError::NotData {
                expected: Self::EVENT_TYPE,
                found: event.content_kind(),
            });
        };
        if event_type.as_str() != Self::EVENT_TYPE {
            return Err(PayloadError::WrongEventType {
                expected: Self::EVENT_TYPE,
                found: event_type.clone(),
            });
        }
        if *schema_version != Self::SCHEMA_VERSION {
            return Err(PayloadError::UnsupportedVersion {
                event_type: Self::EVENT_TYPE,
                expected: Self::SCHEMA_VERSION,
                found: *schema_version,
            });
        }
        Ok(payload)
    }

    #[doc(hidden)]
    /// Deserializes a payload that does not hold this type as it is.
    fn decode_payload(payload: &Payload) -> Result<Self, PayloadError> {
        let decode = |source| PayloadError::Decode {
            event_type: Self::EVENT_TYPE,
            source,
        };
        let json = payload.to_json().map_err(decode)?;
        Self::deserialize(json.as_ref()).map_err(decode)
    }
}

/// A payload could not be turned into, or read from, an event.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The event is not a data record.
    #[error("expected a `{expected}` record, found a {found} event")]
    NotData {
        /// The expected event type.
        expected: &'static str,
        /// The content kind found instead.
        found: &'static str,
    },
    /// The event is a data record of another type.
    #[error("expected a `{expected}` record, found `{found}`")]
    WrongEventType {
        /// The expected event type.
        expected: &'static str,
        /// The event type found.
        found: EventType,
    },
    /// The record's schema version is not the one this type reads.
    #[error("`{event_type}` schema version {found} is not supported (expected {expected})")]
    UnsupportedVersion {
        /// The event type.
        event_type: &'static str,
        /// The version this type reads.
        expected: u32,
        /// The version found.
        found: u32,
    },
    /// The payload did not match the type.
    #[error("cannot decode `{event_type}` payload")]
    Decode {
        /// The event type.
        event_type: &'static str,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
    /// The value could not be serialized.
    #[error("cannot encode `{event_type}` payload")]
    Encode {
        /// The event type.
        event_type: &'static str,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Order {
        id: u64,
        customer: String,
    }

    impl TypedPayload for Order {
        const EVENT_TYPE: &'static str = "order";
        const SCHEMA_VERSION: u32 = 2;
    }

    #[test]
    fn round_trips_through_an_event() {
        let order = Order {
            id: 3,
            customer: "c1".into(),
        };
        let event = order.to_event().unwrap();
        assert_eq!(event.event_type().unwrap(), "order");
        assert_eq!(Order::from_event(&event).unwrap(), order);
    }

    #[test]
    fn only_a_value_carried_as_it_is_is_shared_by_reference() {
        let order = Order {
            id: 3,
            customer: "c1".into(),
        };
        let event = order.clone().into_event();
        assert_eq!(Order::shared(&event), Some(&order));
        let mut as_json = order.clone().into_event();
        *as_json.payload_mut().unwrap() = json!({"id": 3, "customer": "c1"});
        assert_eq!(Order::shared(&as_json), None);
        assert_eq!(Order::from_event(&as_json).unwrap(), order);
        assert_eq!(Order::shared(&ChainEvent::data("refund", json!({}))), None);
    }

    #[test]
    fn wrong_version_is_rejected() {
        let event = ChainEvent::data("order", json!({"id": 1, "customer": "c"}));
        let error = Order::from_event(&event).unwrap_err();
        assert_eq!(
            error.to_string(),
            "`order` schema version 1 is not supported (expected 2)"
        );
    }

    #[test]
    fn bad_payload_names_the_field() {
        let mut event = Order {
            id: 1,
            customer: "c".into(),
        }
        .to_event()
        .unwrap();
        *event.payload_mut().unwrap() = json!({"id": "one", "customer": "c"});
        let error = Order::from_event(&event).unwrap_err();
        assert!(matches!(error, PayloadError::Decode { .. }));
        assert_eq!(error.to_string(), "cannot decode `order` payload");
        let chain = crate::ErrorChain::new(&error).to_string();
        assert!(
            chain.starts_with("cannot decode `order` payload: invalid type"),
            "{chain}"
        );
    }

    #[test]
    fn control_events_are_not_data() {
        let error = Order::from_event(&ChainEvent::end_of_stream(0)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "expected a `order` record, found a control event"
        );
    }
}
