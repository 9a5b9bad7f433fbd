//! Stateful stages: keyed aggregations that fold records into per-key state and emit it at the
//! end of the stream, every N records, or when an event-time window closes.
//!
//! Add them with `FlowBuilder::stateful`.

mod aggregate;
mod emit;
mod window;

pub use aggregate::Aggregate;
pub use emit::Emit;
pub use window::{GroupKey, Window};
