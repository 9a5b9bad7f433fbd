//! What the flow handle and the pipeline supervisor both see of a running flow.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use obzenflow_core::{FlowId, RunId};
use tokio::sync::watch;

use crate::stages::{CounterSnapshot, StageCounters, StageKind, StageState};

/// One stage as observers see it.
pub(crate) struct StageObserver {
    pub(crate) name: Arc<str>,
    pub(crate) kind: StageKind,
    pub(crate) counters: Arc<StageCounters>,
    pub(crate) state: watch::Receiver<StageState>,
}

/// The shared, read-only description of one run.
pub(crate) struct RunShared {
    pub(crate) flow_name: Arc<str>,
    pub(crate) flow_id: FlowId,
    pub(crate) run_id: RunId,
    pub(crate) started: Instant,
    pub(crate) run_dir: Option<PathBuf>,
    pub(crate) durability: String,
    pub(crate) stages: Vec<StageObserver>,
}

/// Live progress of one stage, for progress bars and dashboards.
#[derive(Debug, Clone)]
pub struct StageProgress {
    /// The stage's name.
    pub name: String,
    /// The stage's kind.
    pub kind: StageKind,
    /// Its counts so far.
    pub counts: CounterSnapshot,
    /// Its state now.
    pub state: StageState,
}

impl RunShared {
    pub(crate) fn progress(&self) -> Vec<StageProgress> {
        self.stages
            .iter()
            .map(|stage| StageProgress {
                name: stage.name.to_string(),
                kind: stage.kind,
                counts: stage.counters.snapshot(),
                state: stage.state.borrow().clone(),
            })
            .collect()
    }
}
