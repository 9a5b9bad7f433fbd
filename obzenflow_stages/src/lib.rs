//! Ready-made ObzenFlow stages: sources, transforms, stateful aggregations and sinks, built only
//! on the public API of `obzenflow_runtime`.
#![doc = include_str!("../README.md")]

pub mod joins;
pub mod prelude;
pub mod sinks;
pub mod sources;
pub mod stateful;
pub mod transforms;
