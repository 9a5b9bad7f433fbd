//! What an event carries: data, a control signal, a delivery receipt or a lifecycle fact.

use serde::{Deserialize, Serialize};

use super::{EventType, Payload};
use crate::time::Timestamp;

/// The body of a [`ChainEvent`](super::ChainEvent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventContent {
    /// A data record.
    Data {
        /// What kind of record this is, e.g. `order.created`.
        event_type: EventType,
        /// The version of the payload's schema; see [`TypedPayload`](crate::TypedPayload).
        schema_version: u32,
        /// The record itself.
        payload: Payload,
    },
    /// A control signal travelling with the data.
    Control(ControlEvent),
    /// A sink's receipt for what it delivered.
    Delivery(DeliveryReceipt),
    /// A fact about a component's lifecycle.
    Lifecycle(LifecycleEvent),
}

/// Control signals that travel in-band with data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "control", rename_all = "snake_case")]
pub enum ControlEvent {
    /// The author will write nothing more; `records` is how many data records it wrote, so
    /// every reader can check it saw them all.
    EndOfStream {
        /// The number of data records the author wrote before this marker.
        records: u64,
    },
    /// The flow is draining: sources stop, everything in flight finishes.
    Drain,
    /// No record with an earlier event time will follow.
    Watermark {
        /// The event-time low watermark.
        event_time: Timestamp,
    },
}

/// A sink's account of what it delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryReceipt {
    /// Where the records went: a file path, a console, a collector.
    pub destination: String,
    /// How many records were delivered.
    pub records: u64,
    /// How many bytes were written, where that means something.
    pub bytes: u64,
}

/// A fact about a component's lifecycle. Every stage writes exactly one terminal fact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "lifecycle", rename_all = "snake_case")]
pub enum LifecycleEvent {
    /// The component started running.
    Started,
    /// The component drained and completed.
    Completed {
        /// Data records read from upstream.
        records_in: u64,
        /// Data records written downstream.
        records_out: u64,
        /// Records written to the error lane.
        records_errored: u64,
    },
    /// The component failed.
    Failed {
        /// Why, in one sentence.
        reason: String,
    },
    /// The component was cancelled before it could drain.
    Cancelled {
        /// Why it was cancelled.
        reason: String,
    },
}

impl LifecycleEvent {
    /// Whether this fact ends the component's life.
    pub const fn is_terminal(&self) -> bool {
        !matches!(self, Self::Started)
    }
}
