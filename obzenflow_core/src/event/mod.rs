//! `ChainEvent`: the one record type that flows through journals, and its parts.

mod chain_event;
mod content;
mod event_type;
mod origin;
mod patch;
mod payload;
mod record;
mod status;

pub use chain_event::{Causality, ChainEvent, FlowContext, ProcessingInfo};
pub use content::{ControlEvent, DeliveryReceipt, EventContent, LifecycleEvent};
pub use event_type::EventType;
pub use origin::SourcePosition;
pub use payload::{FieldError, Payload};
pub use record::Record;
pub use status::{ErrorKind, ProcessingStatus};
