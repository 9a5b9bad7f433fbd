//! Replay and verification: run a flow again from a finished run directory, then compare the
//! new run with the original, record by record.
//!
//! **Replay.** [`FlowBuilder::replay_from`](crate::pipeline::FlowBuilder::replay_from) makes
//! every source of a flow read its archived journals ([`ArchiveSource`]) instead of calling its
//! handler; every other stage runs its current code. Replayed records keep the archived
//! content, status and event time, and point at the archived record through
//! `causality.parent_id`. The replay writes a new run directory whose manifest records the run
//! it replayed (`replayed_from`). A run whose manifest status is not `completed` is refused
//! ([`ReplayError::IncompleteRun`]) unless
//! [`allow_incomplete_replay`](crate::pipeline::FlowBuilder::allow_incomplete_replay) is set.
//!
//! **Verification.** [`verify`] compares two run directories stage by stage over what matters
//! (data records in order, error lanes, end-of-stream counts, outcomes), ignoring what differs
//! by nature (ids, timestamps, durations, run ids), and returns a [`VerifyReport`]: `0
//! differences`, or each divergent lane's first divergent record from both runs with the
//! correlation id that leads back to its source record.
//!
//! A replay followed by its verification, as a quickstart's `--replay-from` would do it:
//!
//! ```no_run
//! use obzenflow_core::ChainEvent;
//! use obzenflow_runtime::pipeline::{FlowBuilder, Journals};
//! use obzenflow_runtime::replay;
//! use obzenflow_runtime::stages::{
//!     HandlerFailure, RecordError, SinkHandler, SourceHandler, SourcePoll, TransformHandler,
//! };
//!
//! struct Live;
//! impl SourceHandler for Live {
//!     fn next_batch(&mut self, _max: usize) -> Result<SourcePoll, HandlerFailure> {
//!         Ok(SourcePoll::Done)
//!     }
//! }
//! struct Double;
//! impl TransformHandler for Double {
//!     fn process(&mut self, event: &ChainEvent) -> Result<Vec<ChainEvent>, RecordError> {
//!         Ok(vec![event.clone()])
//!     }
//! }
//! struct Discard;
//! impl SinkHandler for Discard {
//!     fn consume(&mut self, _event: &ChainEvent) -> Result<(), RecordError> {
//!         Ok(())
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let original = std::path::PathBuf::from("target/obzenflow/runs/run_0190f1c2a3b47c8d9e0f112233445566");
//!     let report = FlowBuilder::new("orders")
//!         .source("orders", Live) // not called: `orders` replays its archived journals
//!         .transform("double", Double)
//!         .sink("discard", Discard)
//!         .chain(["orders", "double", "discard"])
//!         .journals(Journals::disk("target/obzenflow/runs"))
//!         .replay_from(&original)
//!         .build()?
//!         .run()
//!         .await?;
//!     let replay_dir = report.run_dir.clone().expect("disk journals");
//!     let verdict = replay::verify(&original, &replay_dir)?;
//!     println!("{verdict}");
//!     std::process::exit(if verdict.is_identical() { 0 } else { 1 });
//! }
//! ```

mod archive;
mod compare;
mod error;
mod report;
mod request;
mod verify;

pub use archive::ArchiveSource;
pub use compare::{Divergence, LaneComparison, RecordView, SourceRecord};
pub use error::{ReplayError, Side, VerifyError};
pub use report::{Compared, Presence, RunSummary, StageComparison, VerifyReport};
pub use verify::verify;

pub(crate) use request::ReplayRequest;
