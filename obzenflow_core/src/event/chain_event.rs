//! `ChainEvent`: a record with its identity, lineage, status and flow context.

use serde::{Deserialize, Serialize};

use std::borrow::Cow;

use super::{ControlEvent, EventContent, EventType, FieldError, Payload, ProcessingStatus};
use crate::id::{CorrelationId, EventId, FlowId, RunId, StageId, WriterId};
use crate::time::Timestamp;

/// The record type of every journal.
///
/// Lineage is bounded: an event knows its parent and the correlation id of the source record it
/// descends from, never an ever-growing list of ancestors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainEvent {
    /// This event's id.
    pub id: EventId,
    /// Who wrote it. The runtime stamps this when the event is appended.
    pub writer_id: WriterId,
    /// What it carries.
    pub content: EventContent,
    /// Where it came from.
    pub causality: Causality,
    /// What happened to it at the writing stage.
    pub processing_info: ProcessingInfo,
    /// When the thing it describes happened, if known.
    pub event_time: Option<Timestamp>,
    /// The flow, run and stage it was written in. The runtime stamps this on append.
    pub flow_context: FlowContext,
}

/// The lineage of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Causality {
    /// The event this one was derived from.
    pub parent_id: Option<EventId>,
    /// The source record this event descends from.
    pub correlation_id: Option<CorrelationId>,
}

/// The processing outcome and cost at the writing stage.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProcessingInfo {
    /// The outcome.
    pub status: ProcessingStatus,
    /// How long the handler took for the input that produced this event, in nanoseconds.
    pub processing_time_ns: u64,
}

/// Where an event was written.
///
/// Events built by user code carry nil ids until the runtime stamps them on append.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowContext {
    /// The flow.
    pub flow_id: FlowId,
    /// The run.
    pub run_id: RunId,
    /// The stage.
    pub stage_id: StageId,
}

impl FlowContext {
    /// A context of nil ids, for events not yet appended anywhere.
    pub const UNSTAMPED: FlowContext = FlowContext {
        flow_id: FlowId::from_uuid(uuid::Uuid::nil()),
        run_id: RunId::from_uuid(uuid::Uuid::nil()),
        stage_id: StageId::from_uuid(uuid::Uuid::nil()),
    };
}

impl Default for FlowContext {
    fn default() -> Self {
        Self::UNSTAMPED
    }
}

impl ChainEvent {
    /// An event with the given content and a fresh id, not yet stamped by any stage.
    pub fn new(content: EventContent) -> Self {
        Self {
            id: EventId::new(),
            writer_id: WriterId::Unassigned,
            content,
            causality: Causality::default(),
            processing_info: ProcessingInfo::default(),
            event_time: None,
            flow_context: FlowContext::UNSTAMPED,
        }
    }

    /// A data record of schema version 1.
    pub fn data(event_type: impl Into<EventType>, payload: impl Into<Payload>) -> Self {
        Self::new(EventContent::Data {
            event_type: event_type.into(),
            schema_version: 1,
            payload: payload.into(),
        })
    }

    /// A control event.
    pub fn control(control: ControlEvent) -> Self {
        Self::new(EventContent::Control(control))
    }

    /// The end-of-stream marker of an author that wrote `records` data records.
    pub fn end_of_stream(records: u64) -> Self {
        Self::control(ControlEvent::EndOfStream { records })
    }

    /// A new data record derived from this one: its parent is `self` and it keeps the
    /// correlation id (or starts one at `self` if `self` has none).
    pub fn derive_data(
        &self,
        event_type: impl Into<EventType>,
        payload: impl Into<Payload>,
    ) -> Self {
        let mut derived = Self::data(event_type, payload);
        derived.causality = self.child_causality();
        derived.event_time = self.event_time;
        derived
    }

    /// The causality a child of this event carries.
    pub fn child_causality(&self) -> Causality {
        Causality {
            parent_id: Some(self.id),
            correlation_id: Some(self.correlation_id()),
        }
    }

    /// The correlation id of this event: its own id if it starts a chain.
    pub fn correlation_id(&self) -> CorrelationId {
        self.causality
            .correlation_id
            .unwrap_or(CorrelationId::from_origin(self.id))
    }

    /// Whether this is a data record.
    pub const fn is_data(&self) -> bool {
        matches!(self.content, EventContent::Data { .. })
    }

    /// Whether this is a data record whose status is an error.
    pub const fn is_error(&self) -> bool {
        self.processing_info.status.is_error()
    }

    /// The record count of an end-of-stream marker, or `None` for any other event.
    pub const fn end_of_stream_count(&self) -> Option<u64> {
        match self.content {
            EventContent::Control(ControlEvent::EndOfStream { records }) => Some(records),
            _ => None,
        }
    }

    /// The event type of a data record.
    pub fn event_type(&self) -> Option<&EventType> {
        match &self.content {
            EventContent::Data { event_type, .. } => Some(event_type),
            _ => None,
        }
    }

    /// The payload of a data record.
    pub fn payload(&self) -> Option<&Payload> {
        match &self.content {
            EventContent::Data { payload, .. } => Some(payload),
            _ => None,
        }
    }

    /// The payload of a data record as JSON: borrowed for a JSON payload, serialized for a
    /// typed one. `None` for other events, and for a typed payload JSON cannot represent.
    pub fn json(&self) -> Option<Cow<'_, serde_json::Value>> {
        self.payload().and_then(|payload| payload.to_json().ok())
    }

    /// The payload of a data record as a JSON value to change in place (see
    /// [`Payload::make_json_mut`]); `None` for other events and unrepresentable payloads.
    pub fn payload_mut(&mut self) -> Option<&mut serde_json::Value> {
        match &mut self.content {
            EventContent::Data { payload, .. } => payload.make_json_mut().ok(),
            _ => None,
        }
    }

    /// One field of a data record's object payload (see [`Payload::field`]): borrowed, never
    /// building the whole JSON value of a JSON payload. `None` for other events, payloads
    /// that are not objects and missing fields.
    pub fn field(&self, name: &str) -> Option<Cow<'_, serde_json::Value>> {
        self.payload().and_then(|payload| payload.field(name))
    }

    /// Sets one field of a data record's object payload without copying the rest (see
    /// [`Payload::set_field`]): the way for a transform to change a clone of its input.
    ///
    /// ```
    /// use obzenflow_core::ChainEvent;
    /// use serde_json::json;
    ///
    /// let input = ChainEvent::data("order", json!({"amount": 10.0, "customer": "c1"}));
    /// let mut taxed = input.clone();
    /// taxed.set_field("with_tax", 12.0)?;
    /// assert_eq!(taxed.json().as_deref(), Some(&json!({"amount": 10.0, "customer": "c1", "with_tax": 12.0})));
    /// assert_eq!(input.field("with_tax"), None);
    /// # Ok::<(), obzenflow_core::event::FieldError>(())
    /// ```
    pub fn set_field(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<serde_json::Value>,
    ) -> Result<(), FieldError> {
        let found = self.content_kind();
        match &mut self.content {
            EventContent::Data { payload, .. } => payload.set_field(name, value),
            _ => Err(FieldError::NotData { found }),
        }
    }

    /// Sets the processing status, returning the event for chaining.
    pub fn with_status(mut self, status: ProcessingStatus) -> Self {
        self.processing_info.status = status;
        self
    }

    /// Sets the event time, returning the event for chaining.
    pub fn with_event_time(mut self, event_time: Timestamp) -> Self {
        self.event_time = Some(event_time);
        self
    }

    /// A short name for the content kind (`data`, `control`, `delivery`, `lifecycle`).
    pub const fn content_kind(&self) -> &'static str {
        match self.content {
            EventContent::Data { .. } => "data",
            EventContent::Control(_) => "control",
            EventContent::Delivery(_) => "delivery",
            EventContent::Lifecycle(_) => "lifecycle",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn derived_events_keep_the_correlation_of_their_origin() {
        let origin = ChainEvent::data("order", json!({"id": 1}));
        let child = origin.derive_data("invoice", json!({"id": 1}));
        let grandchild = child.derive_data("receipt", json!({}));
        assert_eq!(child.causality.parent_id, Some(origin.id));
        assert_eq!(grandchild.causality.parent_id, Some(child.id));
        assert_eq!(
            grandchild.correlation_id(),
            CorrelationId::from_origin(origin.id)
        );
    }

    #[test]
    fn end_of_stream_carries_its_count() {
        assert_eq!(
            ChainEvent::end_of_stream(42).end_of_stream_count(),
            Some(42)
        );
        assert_eq!(ChainEvent::data("x", json!(1)).end_of_stream_count(), None);
    }

    #[test]
    fn json_round_trip() {
        let event = ChainEvent::data("order", json!({"id": 7, "amount": 12.5}))
            .with_event_time(Timestamp::from_micros(5));
        let text = serde_json::to_string(&event).unwrap();
        assert!(text.contains("\"kind\":\"data\""), "{text}");
        assert_eq!(serde_json::from_str::<ChainEvent>(&text).unwrap(), event);
    }
}
