//! Stateful stages: keyed or global aggregations that fold records into per-group state and
//! emit it (as itself, or through a finish step) at the end of the stream, every N records, or
//! when an event-time window closes, optionally only the groups passing a predicate and only
//! the top N of them.
//!
//! Add them with `FlowBuilder::stateful`. The state is held in memory only; it is not journaled.

mod aggregate;
mod emit;
mod window;

pub use aggregate::{Aggregate, Finished};
pub use emit::Emit;
pub use window::{GroupKey, Window};
