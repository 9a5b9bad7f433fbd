//! Joins: enrich a stream from a reference table ([`LookupJoin`]) or pair the records of two
//! streams by key within an event-time interval ([`IntervalJoin`]).
//!
//! Both are [`MultiInputHandler`](obzenflow_runtime::stages::MultiInputHandler)s: add them
//! with `FlowBuilder::join(name, join, first, second)`, which wires `first` to input 0 (the
//! reference of a lookup join, the left side of an interval join) and `second` to input 1.
//! Both sides are ordinary upstream stages, so both are journaled: a replay of a flow whose
//! reference is a source reads the archived table, never the file on disk again.
//!
//! Both are typed over the user's own structs: key functions, and a combine function that
//! builds the output record. The output keeps the lineage of the stream record (lookup) or of
//! the record that completed the pair (interval): that record is its parent, and its
//! correlation id leads to that record's source. It also names the source record of the
//! record it was joined with (the reference row, the held record of the other side) in
//! `Causality::joined_correlation_id`, so `verify` traces a joined record back to both inputs.

mod interval;
mod lookup;

pub use interval::IntervalJoin;
pub use lookup::{JoinStrategy, LookupJoin, LookupMode};
