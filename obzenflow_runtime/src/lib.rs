//! The ObzenFlow runtime: supervision loops, journals, stage supervisors and the pipeline.
#![doc = include_str!("../README.md")]

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
