//! `ChainEvent`: a record with its identity, lineage, status and flow context.

use serde::{Deserialize, Serialize};

use std::borrow::Cow;
use std::sync::Arc;

use super::{
    ControlEvent, EventContent, EventType, FieldError, Payload, ProcessingStatus, SourcePosition,
};
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
    /// Where in its input the source record this event descends from was, if its source
    /// knows (a file source does). The runtime hands it on from a record to those derived
    /// from it, unless a handler set one of its own; see [`ChainEvent::origin()`].
    ///
    /// It is a field of its own rather than part of [`Causality`], which stays `Copy` and
    /// unpadded: shared behind an `Arc`, it costs a record one pointer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Arc<SourcePosition>>,
}

/// The lineage of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Causality {
    /// The event this one was derived from.
    pub parent_id: Option<EventId>,
    /// The source record this event descends from.
    pub correlation_id: Option<CorrelationId>,
    /// For a record a join made from two input records, the source record of the one it
    /// held (a lookup join's reference row, an interval join's record of the side that came
    /// first) descends from; the record it was processing is the parent. So the record's
    /// lineage leads back to both inputs. Records derived from it keep it; `None` for every
    /// other record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joined_correlation_id: Option<CorrelationId>,
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
            id: EventId::minted(),
            writer_id: WriterId::Unassigned,
            content,
            causality: Causality::default(),
            processing_info: ProcessingInfo::default(),
            event_time: None,
            flow_context: FlowContext::UNSTAMPED,
            origin: None,
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
    /// correlation id (or starts one at `self` if `self` has none), the event time and the
    /// origin.
    pub fn derive_data(
        &self,
        event_type: impl Into<EventType>,
        payload: impl Into<Payload>,
    ) -> Self {
        let mut derived = Self::data(event_type, payload);
        derived.causality = self.child_causality();
        derived.event_time = self.event_time;
        derived.origin = self.origin.clone();
        derived
    }

    /// The causality a child of this event carries.
    pub fn child_causality(&self) -> Causality {
        Causality {
            parent_id: Some(self.id),
            correlation_id: Some(self.correlation_id()),
            joined_correlation_id: None,
        }
    }

    /// The correlation id of this event: its own id if it starts a chain.
    pub fn correlation_id(&self) -> CorrelationId {
        self.causality
            .correlation_id
            .unwrap_or(CorrelationId::from_origin(self.id))
    }

    /// Where in its input this record's source record was (file and line), if its source
    /// knows: set by the file sources, handed on by the runtime to every record derived from
    /// it (outputs, forwarded records, records moved to an error lane), so an error raised
    /// stages later names the input line. Records with no input behind them (made in a
    /// handler's `drain`, lifecycle facts, end-of-stream markers) have none.
    ///
    /// ```
    /// use obzenflow_core::{ChainEvent, SourcePosition};
    /// use serde_json::json;
    ///
    /// let row = ChainEvent::data("order", json!({"id": 7}))
    ///     .with_origin(SourcePosition::new("orders.csv", 8));
    /// let invoice = row.derive_data("invoice", json!({"order": 7}));
    /// assert_eq!(invoice.origin().map(ToString::to_string).as_deref(), Some("orders.csv:8"));
    /// assert_eq!(ChainEvent::data("order", json!({})).origin(), None);
    /// ```
    pub fn origin(&self) -> Option<&SourcePosition> {
        self.origin.as_deref()
    }

    /// Sets where in its input this record was, returning the event for chaining; what a
    /// source that reads a file does for each record (see [`ChainEvent::origin()`]).
    pub fn with_origin(mut self, origin: SourcePosition) -> Self {
        self.origin = Some(Arc::new(origin));
        self
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
    fn derived_events_keep_their_origin_and_share_it() {
        let row = ChainEvent::data("order", json!({"id": 1}))
            .with_origin(SourcePosition::new("orders.csv", 3));
        let child = row.derive_data("invoice", json!({"id": 1}));
        let grandchild = child.derive_data("receipt", json!({}));
        assert_eq!(
            grandchild.origin(),
            Some(&SourcePosition::new("orders.csv", 3))
        );
        let shared = |event: &ChainEvent| event.origin.clone().expect("an origin");
        assert!(Arc::ptr_eq(&shared(&row), &shared(&grandchild)));
        assert_eq!(grandchild.origin().unwrap().to_string(), "orders.csv:3");
    }

    #[test]
    fn a_record_grows_by_a_pointer_for_its_origin_and_an_id_for_its_joined_input() {
        // 248 bytes before records carried an origin (one pointer), 256 before a join's
        // output named its second input (an optional id: 16 bytes more a record, 272 on
        // x86-64). Memory per record matters: nothing else may grow it unnoticed.
        assert!(std::mem::size_of::<ChainEvent>() <= 248 + 8 + 16);
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
        assert!(!text.contains("origin"), "no origin, no field: {text}");
        assert_eq!(serde_json::from_str::<ChainEvent>(&text).unwrap(), event);
        let placed = event.with_origin(SourcePosition::new("in.jsonl", 2));
        let text = serde_json::to_string(&placed).unwrap();
        assert!(
            text.contains("\"origin\":{\"file\":\"in.jsonl\",\"line\":2}"),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<ChainEvent>(&text).unwrap(), placed);
    }
}
