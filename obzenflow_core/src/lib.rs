//! The vocabulary of ObzenFlow: ids, events, processing status, typed payloads and the journal
//! ports every other crate is written against.
#![doc = include_str!("../README.md")]

mod error;
pub mod event;
pub mod id;
pub mod journal;
pub mod payload;
pub mod time;
pub mod value;

pub use error::{ErrorChain, IdParseError};
pub use event::{
    Causality, ChainEvent, ControlEvent, DeliveryReceipt, ErrorKind, EventContent, EventType,
    FlowContext, LifecycleEvent, Payload, ProcessingInfo, ProcessingStatus, Record, SourcePosition,
};
pub use id::{CorrelationId, EventId, FlowId, RunId, StageId, SystemComponent, WriterId};
pub use journal::{
    ContentAt, CorruptionKind, Forwards, Journal, JournalError, JournalId, JournalReader, Lane,
    SeqRange, UnresolvedForward,
};
pub use payload::{PayloadError, TypedPayload};
pub use time::Timestamp;
