//! Ready-made ObzenFlow stages: sources, transforms, stateful aggregations and sinks, built only
//! on the public API of `obzenflow_runtime`.
#![doc = include_str!("../README.md")]
// On docs.rs (`--cfg docsrs`, nightly), every item behind a feature is labelled with it.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "jetstream")]
pub mod jetstream;

pub mod joins;
pub mod prelude;
pub mod sinks;
pub mod sources;
pub mod stateful;
pub mod transforms;
