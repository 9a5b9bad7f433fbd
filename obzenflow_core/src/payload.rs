//! Typed payloads: tie a Rust type to an event type and schema version, so user code handles
//! its own structs and never hand-parses JSON.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::event::{ChainEvent, EventContent, EventType};

/// A Rust type that is the payload of one event type.
///
/// ```
/// use obzenflow_core::{ChainEvent, TypedPayload};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, PartialEq, Serialize, Deserialize)]
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
pub trait TypedPayload: Serialize + DeserializeOwned {
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

    /// A fresh data event carrying this payload.
    fn to_event(&self) -> Result<ChainEvent, PayloadError> {
        Ok(ChainEvent::new(EventContent::Data {
            event_type: EventType::from_static(Self::EVENT_TYPE),
            schema_version: Self::SCHEMA_VERSION,
            payload: self.to_payload()?,
        }))
    }

    /// Decodes the payload of `event`, checking its event type and schema version first.
    fn from_event(event: &ChainEvent) -> Result<Self, PayloadError> {
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
        Self::deserialize(payload).map_err(|source| PayloadError::Decode {
            event_type: Self::EVENT_TYPE,
            source,
        })
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
    #[error("cannot decode `{event_type}` payload: {source}")]
    Decode {
        /// The event type.
        event_type: &'static str,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
    /// The value could not be serialized.
    #[error("cannot encode `{event_type}` payload: {source}")]
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

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
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
        assert!(
            error
                .to_string()
                .starts_with("cannot decode `order` payload: invalid type"),
            "{error}"
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
