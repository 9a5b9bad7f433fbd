//! Folding: what the metrics aggregator reads (stage probes, edge probes) and how it turns
//! them into a [`FlowSnapshot`].
//!
//! Nothing here is on a stage's hot path except [`TrackedReader::read`], which stores the
//! reader's position in an atomic after each read: per batch, not per record.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use obzenflow_core::{Journal, JournalError, JournalId, JournalReader, Record, RunId};
use obzenflow_fsm::StateVariant;
use tokio::sync::watch;

use super::snapshot::{EdgeSnapshot, FlowSnapshot, StageSnapshot};
use crate::stages::{StageCounters, StageKind, StageState};

/// One stage as observers see it: its counters and its state.
#[derive(Clone)]
pub(crate) struct StageProbe {
    pub(crate) name: Arc<str>,
    pub(crate) kind: StageKind,
    pub(crate) counters: Arc<StageCounters>,
    pub(crate) state: watch::Receiver<StageState>,
    /// The stage's data journal, for its committed and durable counts.
    pub(crate) data: Arc<dyn Journal>,
}

impl StageProbe {
    /// The stage now, given how long it has been in its current state.
    pub(crate) fn snapshot(&self, time_in_state: Duration) -> StageSnapshot {
        let counts = self.counters.snapshot();
        let (backpressure_waits, backpressure_wait) = self.counters.backpressure();
        StageSnapshot {
            name: self.name.to_string(),
            kind: self.kind,
            state: self.state.borrow().clone(),
            time_in_state,
            records_in: counts.records_in,
            records_out: counts.records_out,
            records_errored: counts.records_errored,
            records_filtered: counts.records_filtered,
            batches: counts.batches,
            errors_by_kind: self.counters.errors_by_kind(),
            processing_time: self.counters.processing_time(),
            backpressure_waits,
            backpressure_wait,
            journal_committed: self.data.committed(),
            journal_durable: self.data.durable(),
            duration: self.counters.duration(),
            state_size: self.counters.state(),
        }
    }
}

/// Where a reader is on its edge, published by the reader after each read.
#[derive(Debug, Default)]
pub(crate) struct EdgeCursor {
    position: AtomicU64,
    ended: AtomicBool,
}

/// A reader that publishes its position for the metrics aggregator.
pub(crate) struct TrackedReader {
    inner: Box<dyn JournalReader>,
    cursor: Arc<EdgeCursor>,
}

#[async_trait::async_trait]
impl JournalReader for TrackedReader {
    fn journal_id(&self) -> &JournalId {
        self.inner.journal_id()
    }

    fn position(&self) -> u64 {
        self.inner.position()
    }

    fn read(&mut self, max: usize, out: &mut Vec<Record>) -> Result<usize, JournalError> {
        let first = out.len();
        let read = self.inner.read(max, out)?;
        if read > 0 {
            if out[first..]
                .iter()
                .any(|event| event.end_of_stream_count().is_some())
            {
                self.cursor.ended.store(true, Ordering::Relaxed);
            }
            self.cursor
                .position
                .store(self.inner.position(), Ordering::Relaxed);
        }
        Ok(read)
    }

    /// Cancel safety: cancel safe, like the reader it wraps.
    async fn wait(&self) -> Result<(), JournalError> {
        self.inner.wait().await
    }
}

/// One edge as the aggregator sees it: the upstream journal's commits and the reader's
/// position.
pub(crate) struct EdgeProbe {
    from: usize,
    to: usize,
    upstream: Arc<dyn Journal>,
    cursor: Arc<EdgeCursor>,
}

impl EdgeProbe {
    /// Records committed upstream and not read yet; zero once the reader saw end-of-stream
    /// (what follows it, the upstream's terminal fact, is not for readers).
    fn lag(&self) -> u64 {
        if self.cursor.ended.load(Ordering::Relaxed) {
            return 0;
        }
        let position = self.cursor.position.load(Ordering::Relaxed);
        self.upstream.committed().saturating_sub(position)
    }
}

/// Collects the edge probes of a flow while its readers are opened.
pub(crate) struct EdgeTracker {
    enabled: bool,
    probes: Vec<EdgeProbe>,
}

impl EdgeTracker {
    /// A tracker that wraps readers, or passes them through when `enabled` is false.
    pub(crate) fn new(enabled: bool) -> Self {
        Self {
            enabled,
            probes: Vec::new(),
        }
    }

    /// Tracks `reader`, the reader of the edge `from -> to` (stage indexes) on `upstream`;
    /// returns it as it is when metrics are disabled.
    pub(crate) fn track(
        &mut self,
        reader: Box<dyn JournalReader>,
        upstream: &Arc<dyn Journal>,
        (from, to): (usize, usize),
    ) -> Box<dyn JournalReader> {
        if !self.enabled {
            return reader;
        }
        let cursor = Arc::new(EdgeCursor::default());
        cursor.position.store(reader.position(), Ordering::Relaxed);
        self.probes.push(EdgeProbe {
            from,
            to,
            upstream: Arc::clone(upstream),
            cursor: Arc::clone(&cursor),
        });
        Box::new(TrackedReader {
            inner: reader,
            cursor,
        })
    }

    pub(crate) fn into_probes(self) -> Vec<EdgeProbe> {
        self.probes
    }
}

/// When a stage entered the state it is in, as far as the aggregator noticed.
struct StateClock {
    state: &'static str,
    since: Instant,
}

/// Everything the aggregator folds, and the clocks of the stages' states.
pub(crate) struct Collector {
    flow_name: Arc<str>,
    run_id: RunId,
    started: Instant,
    stages: Vec<StageProbe>,
    edges: Vec<EdgeProbe>,
    clocks: Vec<StateClock>,
}

impl Collector {
    pub(crate) fn new(
        flow_name: Arc<str>,
        run_id: RunId,
        started: Instant,
        stages: Vec<StageProbe>,
        edges: Vec<EdgeProbe>,
    ) -> Self {
        let clocks = stages
            .iter()
            .map(|stage| StateClock {
                state: stage.state.borrow().variant_name(),
                since: started,
            })
            .collect();
        Self {
            flow_name,
            run_id,
            started,
            stages,
            edges,
            clocks,
        }
    }

    /// Restarts the clock of every stage whose state differs from the one last noticed.
    pub(crate) fn observe_states(&mut self) {
        let now = Instant::now();
        for (stage, clock) in self.stages.iter().zip(&mut self.clocks) {
            let state = stage.state.borrow().variant_name();
            if state != clock.state {
                *clock = StateClock { state, since: now };
            }
        }
    }

    /// Folds every probe into a snapshot.
    pub(crate) fn collect(&mut self, is_final: bool) -> FlowSnapshot {
        self.observe_states();
        let now = Instant::now();
        let stages = self
            .stages
            .iter()
            .zip(&self.clocks)
            .map(|(stage, clock)| stage.snapshot(now.duration_since(clock.since)))
            .collect();
        let edges = self
            .edges
            .iter()
            .map(|edge| EdgeSnapshot {
                from: self.stages[edge.from].name.to_string(),
                to: self.stages[edge.to].name.to_string(),
                lane: edge.upstream.id().lane,
                lag: edge.lag(),
            })
            .collect();
        FlowSnapshot {
            flow_name: self.flow_name.to_string(),
            run_id: self.run_id,
            elapsed: now.duration_since(self.started),
            is_final,
            stages,
            edges,
        }
    }
}

/// A snapshot folded on the spot from the stages alone, for flows without an aggregator:
/// counts, kinds and states, no edges, no time in state.
pub(crate) fn fold_stages(
    flow_name: &str,
    run_id: RunId,
    started: Instant,
    stages: &[StageProbe],
    is_final: bool,
) -> FlowSnapshot {
    FlowSnapshot {
        flow_name: flow_name.to_owned(),
        run_id,
        elapsed: started.elapsed(),
        is_final,
        stages: stages
            .iter()
            .map(|stage| stage.snapshot(Duration::ZERO))
            .collect(),
        edges: Vec::new(),
    }
}
