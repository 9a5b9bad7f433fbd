//! The ObzenFlow runtime: supervision loops, journals, stage supervisors and the pipeline.
#![doc = include_str!("../README.md")]

pub mod journal;
pub mod pipeline;
pub mod stages;
pub mod supervised_base;

mod wait_any;
