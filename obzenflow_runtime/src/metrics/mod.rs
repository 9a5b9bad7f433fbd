//! Metrics: the per-flow metrics aggregator over what stages measure, and the Prometheus text
//! exposition of what it folds.
//!
//! The instruments belong to the stages that record into them: a stage's
//! [`StageCounters`](crate::stages::StageCounters) hold its counts, its [`ErrorCounts`] and its
//! processing-time histogram ([`HistogramSnapshot`], re-exported here). This module observes
//! stages (their counters and states) and is above them in the crate's module order; stages
//! never use it.
//!
//! # What is measured, and where
//!
//! - **Counts** (records in, out, errored by [`ErrorKind`](obzenflow_core::ErrorKind),
//!   filtered, batches): a stage adds a batch's counts to its shared counters once per batch.
//! - **Processing time per record**: a stage records each record's handler time into a local
//!   log-linear histogram (no atomics) and merges the touched buckets into its shared one once
//!   per batch; see [`HistogramSnapshot`] for the precision (about 3 %, nanoseconds to
//!   minutes). Sources record none; async transforms and sinks charge each record an equal
//!   share of the batch.
//! - **Backpressure waits**: the journal core times an append only when it has to wait for a
//!   slow reader, and tells the observer the journal was opened with. The pipeline opens a
//!   stage's two journals with the stage's counters, so every wait of an append to them
//!   (batches, end-of-stream, lifecycle facts) is charged to that stage.
//! - **Lag per edge**: each reader publishes its position after each read; the aggregator
//!   subtracts it from the upstream journal's committed count. An edge whose reader has seen
//!   end-of-stream has no lag.
//! - **State and time in state**: the aggregator watches every stage's state and notes when
//!   it changed.
//!
//! # The aggregator
//!
//! Every flow with metrics enabled (the default, see [`MetricsConfig`]) runs one metrics
//! aggregator, a [`SelfSupervised`](crate::supervised_base::SelfSupervised) machine:
//!
//! ```text
//! created -> collecting -(every interval)-> collecting -(drain)-> draining -> drained
//!            any non-terminal -(failure)-> failed
//! ```
//!
//! It folds a [`FlowSnapshot`] every [`MetricsConfig::interval`] (the `collecting` state's
//! timeout, awaited by the supervision loop like any deadline) and publishes it on a `watch`.
//! When the flow ends, the pipeline sends it a drain command after every stage finished and
//! waits for it: it folds the final snapshot (the one
//! [`FlowReport`](crate::pipeline::FlowReport) takes its numbers from), writes exactly one
//! lifecycle fact to its system journal (`system/metrics_aggregator`) and ends.
//!
//! # Prometheus
//!
//! [`FlowSnapshot::to_prometheus`] (and
//! [`FlowHandle::prometheus`](crate::pipeline::FlowHandle::prometheus)) render the text
//! exposition format. Every stage series carries the labels `flow`, `stage` and `stage_kind`:
//!
//! | metric | type | extra labels |
//! |---|---|---|
//! | `obzenflow_flow_info` (always 1) | gauge | `run_id`, no stage labels |
//! | `obzenflow_flow_elapsed_seconds` | gauge | no stage labels |
//! | `obzenflow_flow_final` (1 once the run's numbers are final) | gauge | no stage labels |
//! | `obzenflow_stage_records_in_total` | counter | |
//! | `obzenflow_stage_records_out_total` | counter | |
//! | `obzenflow_stage_records_filtered_total` | counter | |
//! | `obzenflow_stage_batches_total` | counter | |
//! | `obzenflow_stage_backpressure_waits_total` | counter | |
//! | `obzenflow_stage_records_errored_total` | counter | `error_kind` |
//! | `obzenflow_stage_backpressure_wait_seconds_total` | counter | |
//! | `obzenflow_stage_processing_time_seconds` | histogram | `le` |
//! | `obzenflow_stage_state` (1 for the current state) | gauge | `state` |
//! | `obzenflow_stage_time_in_state_seconds` | gauge | |
//! | `obzenflow_edge_lag_records` (`stage` is the reader) | gauge | `upstream`, `lane` (`data` or `error`: which of the upstream's lanes the edge reads) |
//!
//! With the cargo feature `prometheus-http`, `FlowHandle::serve_prometheus` serves it over HTTP
//! (`GET /metrics`) for a scraper, from a tiny responder on tokio's `TcpListener`
//! (`PrometheusServer`, configured by `PrometheusHttpConfig`; loopback by default).
//!
//! ```no_run
//! use std::time::Duration;
//! use obzenflow_runtime::metrics::MetricsConfig;
//! use obzenflow_runtime::pipeline::{FlowBuilder, Journals};
//! # use obzenflow_runtime::stages::{HandlerFailure, RecordError, SinkHandler, SourceHandler, SourcePoll};
//! # struct Empty;
//! # impl SourceHandler for Empty {
//! #     fn next_batch(&mut self, _max: usize) -> Result<SourcePoll, HandlerFailure> {
//! #         Ok(SourcePoll::Done)
//! #     }
//! # }
//! # struct Discard;
//! # impl SinkHandler for Discard {
//! #     fn consume(&mut self, _: &obzenflow_core::ChainEvent) -> Result<(), RecordError> {
//! #         Ok(())
//! #     }
//! # }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let handle = FlowBuilder::new("orders")
//!     .source("orders", Empty)
//!     .sink("print", Discard)
//!     .chain(["orders", "print"])
//!     .journals(Journals::memory())
//!     .metrics(MetricsConfig::default().with_interval(Duration::from_millis(500)))
//!     .build()?
//!     .start()?;
//! println!("{}", handle.prometheus());
//! let report = handle.wait().await?;
//! println!("p99 at print: {:?}", report.metrics.stage("print").unwrap().processing_time.p99());
//! # Ok(())
//! # }
//! ```

mod aggregator;
mod collector;
mod config;
mod fsm;
mod handle;
#[cfg(feature = "prometheus-http")]
mod http;
mod prometheus;
mod snapshot;

pub use crate::stages::error_counts::ErrorCounts;
pub use crate::stages::histogram::HistogramSnapshot;
pub use config::MetricsConfig;
#[cfg(feature = "prometheus-http")]
pub use http::{PrometheusHttpConfig, PrometheusServer};
pub use prometheus::CONTENT_TYPE;
pub use snapshot::{EdgeSnapshot, FlowSnapshot, StageSnapshot};

pub(crate) use collector::{fold_stages, EdgeTracker, StageProbe};
pub(crate) use handle::{AggregatorSetup, MetricsHandle};
