//! Encoding typed payloads into records without ever dropping one.

use obzenflow_core::{ChainEvent, ErrorKind, ProcessingStatus, TypedPayload};

/// The record carrying `payload`, or, if it cannot be serialized, an error-lane record of the
/// same event type (kind `other`) saying why.
pub(crate) fn payload_event<T: TypedPayload>(payload: &T) -> ChainEvent {
    match payload.to_event() {
        Ok(event) => event,
        Err(error) => ChainEvent::data(T::EVENT_TYPE, serde_json::Value::Null).with_status(
            ProcessingStatus::error(ErrorKind::Other, error.to_string(), None),
        ),
    }
}
