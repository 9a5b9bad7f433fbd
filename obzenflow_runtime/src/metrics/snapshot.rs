//! What the metrics aggregator publishes: a [`FlowSnapshot`] of every stage and edge at one
//! moment, and its parts.

use std::time::Duration;

use obzenflow_core::RunId;

use crate::stages::error_counts::ErrorCounts;
use crate::stages::histogram::HistogramSnapshot;
use crate::stages::{StageKind, StageState};

/// Every stage and edge of one run at one moment, as folded by the metrics aggregator.
///
/// Get the latest from [`FlowHandle::snapshot`](crate::pipeline::FlowHandle::snapshot); the
/// final one is in [`FlowReport::metrics`](crate::pipeline::FlowReport::metrics).
///
/// ```no_run
/// # use obzenflow_runtime::pipeline::FlowHandle;
/// # fn show(handle: &FlowHandle) {
/// let snapshot = handle.snapshot();
/// for stage in &snapshot.stages {
///     println!(
///         "{}: {} in, p99 {:?}",
///         stage.name,
///         stage.records_in,
///         stage.processing_time.p99()
///     );
/// }
/// for edge in &snapshot.edges {
///     println!("{} -> {}: {} records behind", edge.from, edge.to, edge.lag);
/// }
/// println!("{}", snapshot.to_prometheus());
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct FlowSnapshot {
    /// The flow's name.
    pub flow_name: String,
    /// The run's id.
    pub run_id: RunId,
    /// Time since the run started when the snapshot was taken.
    pub elapsed: Duration,
    /// Whether this is the last snapshot of the run, taken after every stage finished.
    pub is_final: bool,
    /// One entry per stage, in declaration order.
    pub stages: Vec<StageSnapshot>,
    /// One entry per edge, in declaration order; empty when metrics are disabled.
    pub edges: Vec<EdgeSnapshot>,
}

impl FlowSnapshot {
    /// The snapshot of the stage named `name`.
    pub fn stage(&self, name: &str) -> Option<&StageSnapshot> {
        self.stages.iter().find(|stage| stage.name == name)
    }

    /// The snapshot of the edge from `from` to `to`.
    pub fn edge(&self, from: &str, to: &str) -> Option<&EdgeSnapshot> {
        self.edges
            .iter()
            .find(|edge| edge.from == from && edge.to == to)
    }

    /// The snapshot in the Prometheus text exposition format (version 0.0.4); see the
    /// [module docs](crate::metrics) for the metric names.
    pub fn to_prometheus(&self) -> String {
        super::prometheus::render(self)
    }
}

/// One stage at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct StageSnapshot {
    /// The stage's name.
    pub name: String,
    /// The stage's kind.
    pub kind: StageKind,
    /// Its lifecycle state.
    pub state: StageState,
    /// How long it has been in that state; zero when metrics are disabled.
    pub time_in_state: Duration,
    /// Data records read (produced, for a source).
    pub records_in: u64,
    /// Data records written downstream (delivered, for a sink).
    pub records_out: u64,
    /// Records put on the error lane.
    pub records_errored: u64,
    /// Input records that produced no output.
    pub records_filtered: u64,
    /// Batches processed.
    pub batches: u64,
    /// Errored records per kind; they add up to `records_errored`.
    pub errors_by_kind: ErrorCounts,
    /// Handler time per input record (sources record none; async handlers and sinks charge
    /// each record an equal share of its batch); empty when metrics are disabled.
    pub processing_time: HistogramSnapshot,
    /// How many appends had to wait for a slow reader.
    pub backpressure_waits: u64,
    /// How long appends waited for slow readers, in total.
    pub backpressure_wait: Duration,
    /// Records committed to the stage's data journal (what it emitted, lifecycle facts
    /// included), visible to readers.
    pub journal_committed: u64,
    /// Records of the stage's data journal known to be on stable storage, per the run's sync
    /// policy; equal to `journal_committed` for in-memory journals. A record counted here
    /// survives a crash of the process (and, unless the policy is `Never`, of the machine).
    pub journal_durable: u64,
    /// How long the stage has run: from initialization to its terminal state (or until now).
    pub duration: Duration,
    /// The state its handler holds (keys, records; latest and peak), for a handler that
    /// reports it (`state_size` on the handler traits): joins, for instance.
    pub state_size: Option<crate::stages::StateGauge>,
}

impl StageSnapshot {
    /// Input records per second of the stage's running time; zero before it ran.
    pub fn throughput(&self) -> f64 {
        let seconds = self.duration.as_secs_f64();
        if seconds > 0.0 {
            self.records_in as f64 / seconds
        } else {
            0.0
        }
    }
}

/// One edge at one moment: how far its reader is behind its writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeSnapshot {
    /// The upstream (writing) stage.
    pub from: String,
    /// The downstream (reading) stage.
    pub to: String,
    /// The lane of `from` the edge reads: [`Lane::Data`](obzenflow_core::Lane::Data), or
    /// [`Lane::Error`](obzenflow_core::Lane::Error) for an error-lane edge.
    pub lane: obzenflow_core::Lane,
    /// Records committed to the upstream journal that the reader has not read yet; zero once
    /// the reader has seen the upstream's end-of-stream marker.
    pub lag: u64,
}
