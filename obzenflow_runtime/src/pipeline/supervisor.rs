//! The pipeline supervisor: a `SelfSupervised` machine that starts the stages, learns their
//! outcomes from their handles, and ends the flow drained, failed or cancelled.

use std::sync::{Arc, Mutex};

use obzenflow_core::{ErrorChain, Journal, LifecycleEvent, SystemComponent, WriterId};
use obzenflow_fsm::{BoxError, Machine, StateVariant};

use crate::facts::{seal, system_context};
use tokio::sync::watch;

use super::context::PipelineContext;
use super::failure::{EndNotRecorded, FlowFailure};
use super::fsm::{FlowAction, FlowEvent, FlowState, PipelineMachine};
use super::handle::FlowCommand;
use super::shared::RunShared;
use crate::journal::{
    external_run_error, JournalFactory, JournalStorage, RunDirError, RunLock, RunManifest,
    RunStatus,
};
use crate::metrics::MetricsHandle;
use crate::stages::StageState;
use crate::supervised_base::{
    CommandPolicy, EventLoopDirective, FailedStep, SelfSupervised, SupervisionError, Supervisor,
    SupervisorFailure,
};
use crate::wait_any::{wait_any, BoxFuture};

/// Supervises a whole flow.
pub(crate) struct PipelineSupervisor {
    pub(crate) shared: Arc<RunShared>,
    pub(crate) stage_states: Vec<watch::Receiver<StageState>>,
    /// The pipeline's own journal, where its one terminal lifecycle fact goes.
    pub(crate) system_journal: Arc<dyn Journal>,
    /// Kept alive for the run: it owns the journals' shared sync thread.
    pub(crate) factory: JournalFactory,
    pub(crate) manifest: Mutex<Option<RunManifest>>,
    /// The run directory's lock, for disk journals: taken before the first manifest is written
    /// and released when the supervisor is dropped, after the final one. While it is held the
    /// run reads as running; a process that dies releases it, and the run reads as incomplete.
    pub(crate) _run_lock: Option<RunLock>,
    pub(crate) outcome: Mutex<Option<FlowState>>,
    /// The flow's metrics aggregator, drained once every stage finished; `None` when metrics
    /// are disabled.
    pub(crate) metrics: Option<MetricsHandle>,
}

impl PipelineSupervisor {
    /// Starts the sources once every other stage is running (or finished). Until then it
    /// returns `Continue` and `wait_for_input` waits for a stage to change state, so the
    /// loop keeps reading commands while the stages initialize: a cancel during start-up is
    /// taken at once, and the teardown deadline runs from it.
    async fn start_stages(
        &mut self,
        context: &mut PipelineContext,
    ) -> Result<EventLoopDirective<FlowEvent>, BoxError> {
        if let Some(failure) = self.failure_so_far(context).await {
            return Ok(EventLoopDirective::Transition(FlowEvent::StageFailed {
                failure,
            }));
        }
        let others_ready = self
            .stage_states
            .iter()
            .zip(&self.shared.stages)
            .filter(|(_, stage)| !stage.kind.is_source())
            .all(|(state, _)| {
                // A stage whose task is gone will not change again; its end is found above.
                let state = state.borrow();
                matches!(*state, StageState::Running) || state.is_terminal()
            });
        if !others_ready {
            return Ok(EventLoopDirective::Continue);
        }
        context.start_sources();
        tracing::info!(flow = %self.shared.flow_name, run_id = %self.shared.run_id, "flow started");
        Ok(EventLoopDirective::Transition(FlowEvent::Started))
    }

    /// The flow's failure so far: a stage whose supervision loop ended with an error (joined
    /// here), or the first stage that failed or was cancelled on its own.
    async fn failure_so_far(&self, context: &mut PipelineContext) -> Option<FlowFailure> {
        if let Some(failure) = context.join_stages_that_ended_early().await {
            return Some(FlowFailure::Stage(failure));
        }
        self.first_failure()
    }

    /// The first stage that failed or was cancelled on its own, as the flow's failure.
    fn first_failure(&self) -> Option<FlowFailure> {
        self.stage_states
            .iter()
            .zip(&self.shared.stages)
            .find_map(|(state, stage)| match &*state.borrow() {
                StageState::Failed { failure } => Some(FlowFailure::Stage(failure.clone())),
                StageState::Cancelled { reason } => Some(FlowFailure::StageCancelled {
                    stage: stage.name.to_string(),
                    reason: reason.clone(),
                }),
                _ => None,
            })
    }

    /// Whether every stage is finished: in a terminal state, or its task gone (aborted).
    fn all_stages_done(&self, context: &PipelineContext) -> bool {
        self.stage_states
            .iter()
            .all(|state| state.borrow().is_terminal())
            || context.all_finished()
    }

    async fn watch_running(&self, context: &mut PipelineContext) -> EventLoopDirective<FlowEvent> {
        if let Some(failure) = self.failure_so_far(context).await {
            return EventLoopDirective::Transition(FlowEvent::StageFailed { failure });
        }
        if !self.all_stages_done(context) {
            return EventLoopDirective::Continue;
        }
        // Every stage drained. Joining them now surfaces what failed after a stage's last
        // state change (its journals' final sync or close), which must not read as success.
        match context.join_stages().await.into_iter().next() {
            Some(failure) => EventLoopDirective::Transition(FlowEvent::StageFailed {
                failure: FlowFailure::Stage(failure),
            }),
            None => EventLoopDirective::Transition(FlowEvent::AllStagesDone),
        }
    }

    fn watch_teardown(&self, context: &PipelineContext) -> EventLoopDirective<FlowEvent> {
        if self.all_stages_done(context) {
            EventLoopDirective::Transition(FlowEvent::AllStagesDone)
        } else {
            EventLoopDirective::Continue
        }
    }

    /// Joins every stage task (so their terminal records are written), drains the metrics
    /// aggregator (so the final snapshot is out before the flow is), then terminates.
    async fn terminate(
        &mut self,
        state: &FlowState,
        context: &mut PipelineContext,
    ) -> EventLoopDirective<FlowEvent> {
        // Stages not joined yet (a failing or cancelled flow) are joined here; their failures
        // cannot change an outcome that is already a failure or a cancellation.
        context.join_stages().await;
        if let Some(metrics) = self.metrics.take() {
            metrics.drain().await;
        }
        if let Ok(mut slot) = self.outcome.lock() {
            *slot = Some(state.clone());
        }
        EventLoopDirective::Terminate
    }

    /// The pipeline's terminal lifecycle fact for `outcome`.
    fn lifecycle(&self, outcome: &FlowState) -> LifecycleEvent {
        match outcome {
            FlowState::Failed { failure } => LifecycleEvent::Failed {
                reason: ErrorChain::new(failure).to_string(),
            },
            FlowState::Cancelled { reason } => LifecycleEvent::Cancelled {
                reason: reason.clone(),
            },
            _ => {
                let totals = self.shared.stages.iter().fold((0, 0, 0), |totals, stage| {
                    let counts = stage.counters.snapshot();
                    let source_in = if stage.kind.is_source() {
                        counts.records_in
                    } else {
                        0
                    };
                    let sink_out = if stage.kind == crate::stages::StageKind::Sink {
                        counts.records_out
                    } else {
                        0
                    };
                    (
                        totals.0 + source_in,
                        totals.1 + sink_out,
                        totals.2 + counts.records_errored,
                    )
                });
                LifecycleEvent::Completed {
                    records_in: totals.0,
                    records_out: totals.1,
                    records_errored: totals.2,
                }
            }
        }
    }

    /// Records the outcome in the manifest, for disk journals and journal services, with the
    /// reason of a failure or cancellation.
    async fn finish_manifest(&self, outcome: &FlowState) -> Result<(), RunDirError> {
        let Some(mut manifest) = self.manifest.lock().ok().and_then(|slot| slot.clone()) else {
            return Ok(());
        };
        match outcome {
            FlowState::Failed { failure } => {
                manifest.finish_because(RunStatus::Failed, ErrorChain::new(failure).to_string());
            }
            FlowState::Cancelled { reason } => {
                manifest.finish_because(RunStatus::Cancelled, reason);
            }
            _ => manifest.finish(RunStatus::Completed),
        }
        if let Some(run_dir) = self.factory.run_dir() {
            return run_dir.write_manifest(&manifest);
        }
        match self.factory.storage() {
            JournalStorage::External { run, .. } => run
                .write_manifest(&manifest)
                .await
                .map_err(|source| external_run_error("record the manifest of", &manifest, source)),
            _ => Ok(()),
        }
    }

    /// Records that the flow's end could not be recorded: as the run's failure in the manifest
    /// (when it can still be written) and for the handle, whose error and report name it.
    /// `retry_manifest` is false when the manifest itself is what failed.
    async fn end_not_recorded(&self, end: EndNotRecorded, retry_manifest: bool) -> BoxError {
        let failed = FlowState::Failed {
            failure: FlowFailure::EndNotRecorded(end.clone()),
        };
        let recorded = match retry_manifest {
            true => self.finish_manifest(&failed).await,
            false => Ok(()),
        };
        let end = match recorded {
            Ok(()) => end,
            Err(error) => end.with_manifest_failure(error),
        };
        tracing::error!(flow = %self.shared.flow_name, run_id = %self.shared.run_id, error = %ErrorChain::new(&end), "flow end not recorded");
        self.shared.set_end_not_recorded(end.clone());
        Box::new(end)
    }
}

impl Supervisor for PipelineSupervisor {
    type State = FlowState;
    type Event = FlowEvent;
    type Context = PipelineContext;
    type Action = FlowAction;
    type Machine = PipelineMachine;
    type Command = FlowCommand;

    fn build_state_machine(&self, initial_state: FlowState) -> Machine<PipelineMachine> {
        Machine::new(initial_state)
    }

    fn name(&self) -> &str {
        &self.shared.flow_name
    }

    fn command_policy(&self, state: &FlowState) -> CommandPolicy {
        match state {
            FlowState::Created
            | FlowState::Running
            | FlowState::Draining
            | FlowState::Failing { .. }
            | FlowState::Cancelling { .. } => CommandPolicy::Select,
            FlowState::Drained | FlowState::Failed { .. } | FlowState::Cancelled { .. } => {
                CommandPolicy::Ignore
            }
        }
    }

    fn event_for_command(&self, command: FlowCommand) -> FlowEvent {
        match command {
            FlowCommand::Stop { deadline } => FlowEvent::StopRequested { deadline },
            FlowCommand::Cancel { reason } => FlowEvent::CancelRequested { reason },
        }
    }

    fn event_for_control_closed(&self) -> Option<FlowEvent> {
        Some(FlowEvent::ControlClosed)
    }

    /// The loop ended with an error before the flow reached a terminal state: the pipeline's
    /// terminal record and the manifest say the flow failed, with the error's text; `run`
    /// returns the error itself.
    fn on_loop_error(&self, error: &SupervisionError) {
        let failure = SupervisorFailure::new(
            FailedStep::Loop,
            error.state().unwrap_or("unknown"),
            ErrorChain::new(error).to_string(),
        );
        if let Ok(mut slot) = self.outcome.lock() {
            slot.get_or_insert(FlowState::Failed {
                failure: FlowFailure::Supervisor(failure),
            });
        }
    }
}

#[async_trait::async_trait]
impl SelfSupervised for PipelineSupervisor {
    async fn dispatch_state(
        &mut self,
        state: &FlowState,
        context: &mut PipelineContext,
    ) -> Result<EventLoopDirective<FlowEvent>, BoxError> {
        match state {
            FlowState::Created => self.start_stages(context).await,
            FlowState::Running | FlowState::Draining => Ok(self.watch_running(context).await),
            FlowState::Failing { .. } | FlowState::Cancelling { .. } => {
                Ok(self.watch_teardown(context))
            }
            FlowState::Drained | FlowState::Failed { .. } | FlowState::Cancelled { .. } => {
                Ok(self.terminate(state, context).await)
            }
        }
    }

    /// Waits until some stage that has not finished changes state.
    async fn wait_for_input(
        &mut self,
        _state: &FlowState,
        _context: &mut PipelineContext,
    ) -> Result<(), BoxError> {
        let waits: Vec<BoxFuture<'_, ()>> = self
            .stage_states
            .iter_mut()
            // A stage in a terminal state will not change again, and the watch of a task that
            // is gone reports "changed" forever: waiting on either would spin.
            .filter(|state| !state.borrow().is_terminal() && state.has_changed().is_ok())
            .map(|state| -> BoxFuture<'_, ()> {
                Box::pin(async move {
                    // A closed channel means the stage task ended; its final state is visible.
                    let _ = state.changed().await;
                })
            })
            .collect();
        if !waits.is_empty() {
            wait_any(waits).await;
        }
        Ok(())
    }

    fn writer_id(&self) -> WriterId {
        WriterId::System(SystemComponent::Pipeline)
    }

    /// Seals the run: appends the pipeline's terminal fact and records the outcome in the
    /// manifest.
    async fn write_completion_event(&self) -> Result<(), BoxError> {
        let outcome = self
            .outcome
            .lock()
            .ok()
            .and_then(|slot| slot.clone())
            .unwrap_or(FlowState::Cancelled {
                reason: "terminated without an outcome".to_owned(),
            });
        tracing::info!(
            flow = %self.shared.flow_name,
            run_id = %self.shared.run_id,
            outcome = outcome.variant_name(),
            "flow finished"
        );
        let writer = WriterId::System(SystemComponent::Pipeline);
        let context = system_context(self.shared.flow_id, self.shared.run_id);
        let fact = self.lifecycle(&outcome);
        // A journal or manifest that cannot be written ends the run as failed, with the cause
        // (journal or file, and the error) in the manifest where it can be written, and in the
        // handle's error and report.
        let ended = outcome.variant_name();
        if let Err(error) = seal(self.system_journal.as_ref(), writer, context, fact).await {
            let end = EndNotRecorded::journal(ended, error);
            return Err(self.end_not_recorded(end, true).await);
        }
        match self.finish_manifest(&outcome).await {
            Ok(()) => Ok(()),
            Err(error) => {
                let end = EndNotRecorded::manifest(ended, error);
                Err(self.end_not_recorded(end, false).await)
            }
        }
    }

    fn event_for_action_error(&self, failure: SupervisorFailure) -> FlowEvent {
        FlowEvent::Failure {
            failure: FlowFailure::Supervisor(failure),
        }
    }
}
