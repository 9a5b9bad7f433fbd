//! The ObzenFlow runtime: supervision loops, journals, stage supervisors and the pipeline.
#![doc = include_str!("../README.md")]
// On docs.rs (`--cfg docsrs`, nightly), every item behind a feature is labelled with it.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "cli")]
pub mod cli;
pub mod journal;
pub mod metrics;
pub mod pipeline;
pub mod replay;
pub mod stages;
pub mod supervised_base;

mod facts;
mod wait_any;
