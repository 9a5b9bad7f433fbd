//! What the flow handle and the pipeline supervisor both see of a running flow.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use obzenflow_core::{FlowId, RunId};
use tokio::sync::watch;

use super::failure::EndNotRecorded;
use super::outcome::FindingKind;
use crate::metrics::{fold_stages, FlowSnapshot, StageProbe};
use crate::stages::{CounterSnapshot, StageKind, StageState};

/// One stage as observers see it: its counters and its state.
pub(crate) type StageObserver = StageProbe;

/// The shared, read-only description of one run.
pub(crate) struct RunShared {
    pub(crate) flow_name: Arc<str>,
    pub(crate) flow_id: FlowId,
    pub(crate) run_id: RunId,
    pub(crate) started: Instant,
    pub(crate) run_dir: Option<PathBuf>,
    pub(crate) durability: String,
    /// Earlier runs of the same flow under the same base directory whose process died.
    pub(crate) earlier_incomplete_runs: Vec<PathBuf>,
    pub(crate) stages: Vec<StageObserver>,
    /// The indices of the stages feeding each stage, indexed like `stages`.
    pub(crate) upstreams: Vec<Vec<usize>>,
    /// The findings the flow declared acceptable, by stage name.
    pub(crate) accepted: Vec<(String, FindingKind)>,
    /// The aggregator's snapshots; `None` when metrics are disabled.
    pub(crate) snapshots: Option<watch::Receiver<Arc<FlowSnapshot>>>,
    /// Why the flow's end could not be recorded (its pipeline journal or its manifest could
    /// not be written), once the pipeline supervisor found so; the handle reports it.
    pub(crate) end_not_recorded: Mutex<Option<EndNotRecorded>>,
}

impl RunShared {
    /// Records why the flow's end could not be recorded.
    pub(crate) fn set_end_not_recorded(&self, end: EndNotRecorded) {
        *self
            .end_not_recorded
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(end);
    }

    /// Why the flow's end could not be recorded, if it could not.
    pub(crate) fn end_not_recorded(&self) -> Option<EndNotRecorded> {
        self.end_not_recorded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
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

    /// The aggregator's latest snapshot, or one folded now from the stages when metrics are
    /// disabled.
    pub(crate) fn snapshot(&self) -> Arc<FlowSnapshot> {
        match &self.snapshots {
            Some(snapshots) => snapshots.borrow().clone(),
            None => Arc::new(self.fold(false)),
        }
    }

    /// The run's final snapshot, once the flow has ended: the aggregator's, or one folded now
    /// if there is no aggregator or it ended without one (then edges keep their last lag).
    pub(crate) fn final_snapshot(&self) -> Arc<FlowSnapshot> {
        let Some(snapshots) = &self.snapshots else {
            return Arc::new(self.fold(true));
        };
        let latest = snapshots.borrow().clone();
        if latest.is_final {
            return latest;
        }
        let mut folded = self.fold(true);
        folded.edges = latest.edges.clone();
        Arc::new(folded)
    }

    /// Waits until the final snapshot is out and returns it: with an aggregator, until it
    /// published it (or ended without); without, until every stage finished.
    ///
    /// Cancel safety: cancel safe; it only reads watches.
    pub(crate) async fn wait_for_final_snapshot(&self) -> Arc<FlowSnapshot> {
        match &self.snapshots {
            Some(snapshots) => {
                let mut snapshots = snapshots.clone();
                // An error means the aggregator is gone; `final_snapshot` folds what is left.
                let _ = snapshots.wait_for(|snapshot| snapshot.is_final).await;
            }
            None => {
                for stage in &self.stages {
                    let mut state = stage.state.clone();
                    let _ = state.wait_for(StageState::is_terminal).await;
                }
            }
        }
        self.final_snapshot()
    }

    fn fold(&self, is_final: bool) -> FlowSnapshot {
        fold_stages(
            &self.flow_name,
            self.run_id,
            self.started,
            &self.stages,
            is_final,
        )
    }
}
