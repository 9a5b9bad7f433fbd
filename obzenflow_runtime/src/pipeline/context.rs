//! The pipeline supervisor's mutable context: the stages' handles and the drain deadline.

use std::sync::Arc;
use std::time::Duration;

use obzenflow_core::{ErrorChain, Journal, LifecycleEvent, SystemComponent, WriterId};
use tokio::sync::mpsc::error::TrySendError;

use crate::facts::seal;

use crate::stages::{StageCommand, StageFailure, StageHandle, StageInfo};
use crate::supervised_base::SupervisionError;

/// One stage as the pipeline commands it.
pub(crate) struct StageControl {
    pub(crate) info: Arc<StageInfo>,
    pub(crate) handle: StageHandle,
    /// The stage's data journal, where the pipeline writes the terminal fact of a stage it
    /// had to abort.
    pub(crate) data: Arc<dyn Journal>,
    /// Its error journal, which the pipeline closes (and so seals) for an aborted stage.
    pub(crate) error: Arc<dyn Journal>,
}

/// The context the pipeline machine's actions run against.
pub(crate) struct PipelineContext {
    /// How long a graceful stop may take, once one was requested.
    pub(crate) drain_deadline: Option<Duration>,
    /// How long cancelled stages may take to stop before their tasks are aborted.
    pub(crate) teardown_deadline: Duration,
    pub(crate) stages: Vec<StageControl>,
}

impl std::fmt::Debug for PipelineContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineContext")
            .field("drain_deadline", &self.drain_deadline)
            .field("stages", &self.stages.len())
            .finish()
    }
}

impl PipelineContext {
    pub(crate) fn new(stages: Vec<StageControl>, teardown_deadline: Duration) -> Self {
        Self {
            drain_deadline: None,
            teardown_deadline,
            stages,
        }
    }

    /// Whether every stage task has ended.
    pub(crate) fn all_finished(&self) -> bool {
        self.stages.iter().all(|stage| stage.handle.is_finished())
    }

    /// Aborts the tasks of stages that are still running: they ignored their cancel command,
    /// which only happens when a handler call never returns.
    pub(crate) fn abort_stuck_stages(&self) {
        for stage in self
            .stages
            .iter()
            .filter(|stage| !stage.handle.is_finished())
        {
            tracing::error!(stage = %stage.info.name, "stage ignored cancellation; aborting its task");
            stage.handle.abort();
        }
    }

    /// Tells every source to start.
    pub(crate) fn start_sources(&self) {
        self.send_to_sources(StageCommand::Start);
    }

    /// Tells every source to stop and drain.
    pub(crate) fn stop_sources(&self) {
        self.send_to_sources(StageCommand::Stop);
    }

    fn send_to_sources(&self, command: StageCommand) {
        for stage in self
            .stages
            .iter()
            .filter(|stage| stage.info.kind.is_source())
        {
            send(&stage.handle, command.clone());
        }
    }

    /// Tells every stage to cancel.
    pub(crate) fn cancel_stages(&self, reason: &str) {
        for stage in &self.stages {
            send(
                &stage.handle,
                StageCommand::Cancel {
                    reason: reason.to_owned(),
                },
            );
        }
    }

    /// Waits for every stage task to finish, so their terminal records are written. A stage
    /// whose task was aborted could not write its own; the pipeline writes it for it.
    ///
    /// Returns why stage tasks ended abnormally after reaching their last state, e.g. a journal
    /// that failed to sync or close after the stage drained: one failure per such stage.
    pub(crate) async fn join_stages(&mut self) -> Vec<StageFailure> {
        let mut failures = Vec::new();
        for stage in self.stages.drain(..) {
            failures.extend(join_stage(stage).await);
        }
        failures
    }

    /// Joins the stages whose supervision loop already ended without reaching a terminal state
    /// (a loop error), and returns why the first of them failed. Such a stage has written its
    /// own terminal record and closed its journals; the flow must fail now rather than wait for
    /// a downstream stage to notice.
    pub(crate) async fn join_stages_that_ended_early(&mut self) -> Option<StageFailure> {
        let mut first = None;
        let mut index = 0;
        while index < self.stages.len() {
            let stage = &self.stages[index];
            if stage.handle.is_finished() && !stage.handle.current_state().is_terminal() {
                let failure = join_stage(self.stages.remove(index)).await;
                first = first.or(failure);
            } else {
                index += 1;
            }
        }
        first
    }
}

/// Waits for `stage`'s task to finish and returns why its loop ended with an error, if it did.
/// Only a task the pipeline aborted left no terminal record; the pipeline writes it for it.
async fn join_stage(stage: StageControl) -> Option<StageFailure> {
    let last_state = stage.handle.current_state();
    let error = stage.handle.join().await.err()?;
    tracing::error!(stage = %stage.info.name, error = %ErrorChain::new(&error), "stage supervisor ended abnormally");
    if matches!(error, SupervisionError::Join { .. }) {
        write_aborted_fact(&stage.info, stage.data.as_ref(), stage.error.as_ref()).await;
    }
    Some(StageFailure::ended_with(
        stage.info.name.clone(),
        &last_state,
        error,
    ))
}

/// Appends the terminal fact of a stage the pipeline aborted, written by the pipeline, and
/// closes (so seals) both of its journals.
async fn write_aborted_fact(info: &StageInfo, data: &dyn Journal, error: &dyn Journal) {
    if let Err(error) = error.close().await {
        tracing::error!(stage = %info.name, error = %ErrorChain::new(&error), "cannot close the aborted stage's error journal");
    }
    let fact = LifecycleEvent::Cancelled {
        reason: "aborted: the stage did not stop within the teardown deadline".to_owned(),
    };
    let writer = WriterId::System(SystemComponent::Pipeline);
    if let Err(error) = seal(data, writer, info.flow_context(), fact).await {
        tracing::error!(stage = %info.name, error = %ErrorChain::new(&error), "cannot record the aborted stage");
    }
}

/// Sends without waiting: a stage whose control channel is full or closed is either already
/// finishing or has a command queued that ends it, and waiting on it could stall the
/// teardown of every other stage.
fn send(handle: &StageHandle, command: StageCommand) {
    match handle.try_send(command) {
        Ok(()) => {}
        Err(TrySendError::Full(command) | TrySendError::Closed(command)) => {
            tracing::debug!(stage = %handle.name(), ?command, "stage did not take command");
        }
    }
}
