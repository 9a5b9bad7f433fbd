//! The pipeline: declare a flow with [`FlowBuilder`], validate it, run it under the pipeline
//! supervisor and get a [`FlowReport`]; or run some of its stages in each of several processes
//! ([`Flow::start_worker`]).

mod builder;
mod config;
mod context;
mod error;
mod failure;
mod fsm;
mod graph;
mod handle;
mod materialize;
mod outcome;
mod remote_window;
mod report;
mod shared;
mod supervisor;
mod wiring;
mod worker;

pub use builder::{Flow, FlowBuilder};
pub use config::Journals;
pub use error::FlowError;
pub use failure::{EndNotRecorded, FlowFailure};
pub use fsm::FlowState;
pub use graph::GraphError;
pub use handle::{FlowCommand, FlowHandle};
pub use outcome::{Finding, FindingKind, Outcome};
pub use report::{DeliveryGuarantee, FlowReport, StageReport};
pub use shared::StageProgress;
pub use wiring::{StageRef, Upstream, Upstreams};
pub use worker::WorkerSpec;
