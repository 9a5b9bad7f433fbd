//! The stage supervisor: one `HandlerSupervised` implementation for every stage kind.
//!
//! The kind's work is a [`StageLogic`] strategy; this file maps lifecycle states to that work
//! and writes the one terminal lifecycle record when the loop terminates.

use std::sync::{Arc, Mutex};

use obzenflow_core::{
    ErrorChain, Journal, JournalId, LifecycleEvent, StageId, Timestamp, WriterId,
};
use obzenflow_fsm::{BoxError, Machine};

use super::config::StageConfig;
use super::context::{StageContext, StageInfo};
use super::counters::StageCounters;
use super::error::{StageError, StageFailure};
use super::handle::{StageCommand, StageHandle};
use super::inputs::Inputs;
use super::lifecycle::{StageEvent, StageMachine, StageState};
use super::logic::{Progress, StageLogic};
use super::outputs::Outputs;
use crate::facts::seal;
use crate::supervised_base::{
    spawn_supervised, CommandPolicy, EventLoopDirective, HandlerSupervised, SupervisionError,
    Supervisor, SupervisorConfig, SupervisorFailure,
};

/// Everything a stage needs, assembled by the pipeline before the stage is spawned.
pub(crate) struct StageWiring {
    pub(crate) info: Arc<StageInfo>,
    pub(crate) config: StageConfig,
    pub(crate) inputs: Option<Inputs>,
    /// The journals `inputs` read, in order: where a record the stage forwards comes from.
    pub(crate) upstreams: Arc<[JournalId]>,
    pub(crate) data: Arc<dyn Journal>,
    pub(crate) error: Arc<dyn Journal>,
    pub(crate) counters: Arc<StageCounters>,
}

impl StageWiring {
    /// Takes the stage's inputs; a reading stage always has them.
    pub(crate) fn take_inputs(&mut self) -> Inputs {
        self.inputs
            .take()
            .unwrap_or_else(|| Inputs::new(self.info.name.clone(), Vec::new()))
    }
}

/// Spawns the supervisor of a stage whose work is `logic`.
pub(crate) fn spawn_stage<L: StageLogic>(logic: L, wiring: StageWiring) -> StageHandle {
    let StageWiring {
        info,
        config,
        inputs: _,
        upstreams,
        data,
        error,
        counters,
    } = wiring;
    let mut outputs = Outputs::new(info.clone(), data.clone(), error.clone(), counters.clone());
    outputs.set_upstreams(upstreams);
    let context = StageContext {
        info: info.clone(),
        outputs,
    };
    let supervisor_config = SupervisorConfig {
        command_capacity: config.control_capacity,
        ..SupervisorConfig::default()
    };
    let supervisor = StageSupervisor {
        info,
        logic: Mutex::new(logic),
        config,
        data,
        error,
        counters,
        outcome: Mutex::new(None),
    };
    spawn_supervised(supervisor, StageState::Created, context, supervisor_config)
}

/// Supervises one stage through its lifecycle.
pub(crate) struct StageSupervisor<L> {
    info: Arc<StageInfo>,
    // The seed contract's `&self` async methods need the supervisor to be `Sync`, but handlers
    // need not be. The logic is only ever reached through `&mut self` and `Mutex::get_mut`,
    // so the mutex is never locked.
    logic: Mutex<L>,
    config: StageConfig,
    data: Arc<dyn Journal>,
    error: Arc<dyn Journal>,
    counters: Arc<StageCounters>,
    outcome: Mutex<Option<LifecycleEvent>>,
}

impl<L: StageLogic> StageSupervisor<L> {
    fn logic(&mut self) -> &mut L {
        self.logic
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn initialize(&mut self) -> Result<EventLoopDirective<StageEvent>, BoxError> {
        let stage = self.info.name.clone();
        self.logic()
            .initialize()
            .await
            .map_err(|failure| failure.into_stage_error(&stage))?;
        Ok(EventLoopDirective::Transition(StageEvent::Initialized))
    }

    fn start(&self) -> EventLoopDirective<StageEvent> {
        self.counters.mark_started(Timestamp::now());
        EventLoopDirective::Transition(if self.info.kind.is_source() {
            StageEvent::AwaitStart
        } else {
            StageEvent::Start
        })
    }

    async fn run_batch(
        &mut self,
        context: &mut StageContext,
    ) -> Result<EventLoopDirective<StageEvent>, BoxError> {
        let batch_limit = self.config.batch_limit;
        let progress = self
            .logic()
            .run_batch(&mut context.outputs, batch_limit)
            .await?;
        self.check_error_budget()?;
        Ok(match progress {
            Progress::Continue => EventLoopDirective::Continue,
            Progress::Exhausted => EventLoopDirective::Transition(StageEvent::InputExhausted),
        })
    }

    async fn drain(
        &mut self,
        context: &mut StageContext,
    ) -> Result<EventLoopDirective<StageEvent>, BoxError> {
        self.logic().drain(&mut context.outputs).await?;
        context.outputs.end_of_stream().await?;
        Ok(EventLoopDirective::Transition(StageEvent::DrainCompleted))
    }

    fn check_error_budget(&self) -> Result<(), StageError> {
        let counts = self.counters.snapshot();
        let budget = &self.config.error_budget;
        if budget.is_exceeded(counts.records_errored, counts.records_in) {
            return Err(StageError::ErrorBudgetExceeded {
                stage: self.info.name.to_string(),
                errors: counts.records_errored,
                records: counts.records_in,
                budget: budget.to_string(),
            });
        }
        Ok(())
    }

    fn terminate(&self, outcome: LifecycleEvent) -> EventLoopDirective<StageEvent> {
        self.counters.mark_finished(Timestamp::now());
        if let Ok(mut slot) = self.outcome.lock() {
            *slot = Some(outcome);
        }
        EventLoopDirective::Terminate
    }

    fn completed(&self) -> LifecycleEvent {
        let counts = self.counters.snapshot();
        LifecycleEvent::Completed {
            records_in: counts.records_in,
            records_out: counts.records_out,
            records_errored: counts.records_errored,
        }
    }
}

impl<L: StageLogic> Supervisor for StageSupervisor<L> {
    type State = StageState;
    type Event = StageEvent;
    type Context = StageContext;
    type Action = super::lifecycle::StageAction;
    type Machine = StageMachine;
    type Command = StageCommand;

    fn build_state_machine(&self, initial_state: StageState) -> Machine<StageMachine> {
        Machine::new(initial_state)
    }

    fn name(&self) -> &str {
        &self.info.name
    }

    fn command_policy(&self, state: &StageState) -> CommandPolicy {
        match state {
            StageState::WaitingForStart => CommandPolicy::Await,
            StageState::Running | StageState::Draining => CommandPolicy::Select,
            StageState::Created
            | StageState::Initialized
            | StageState::Drained
            | StageState::Failed { .. }
            | StageState::Cancelled { .. } => CommandPolicy::Ignore,
        }
    }

    fn event_for_command(&self, command: StageCommand) -> StageEvent {
        match command {
            StageCommand::Start => StageEvent::Start,
            StageCommand::Stop => StageEvent::StopRequested,
            StageCommand::Cancel { reason } => StageEvent::Cancel { reason },
        }
    }

    fn event_for_control_closed(&self) -> Option<StageEvent> {
        Some(StageEvent::ControlClosed)
    }

    /// The loop ended with an error before the stage reached a terminal state: the terminal
    /// record `write_completion_event` writes next says the stage failed, and why.
    fn on_loop_error(&self, error: &SupervisionError) {
        if let Ok(mut slot) = self.outcome.lock() {
            slot.get_or_insert_with(|| LifecycleEvent::Failed {
                reason: format!(
                    "the stage's supervision loop ended with an error: {}",
                    ErrorChain::new(error)
                ),
            });
        }
    }
}

#[async_trait::async_trait]
impl<L: StageLogic> HandlerSupervised for StageSupervisor<L> {
    type Handler = Mutex<L>;

    async fn dispatch_state(
        &mut self,
        state: &StageState,
        context: &mut StageContext,
    ) -> Result<EventLoopDirective<StageEvent>, BoxError> {
        match state {
            StageState::Created => self.initialize().await,
            StageState::Initialized => Ok(self.start()),
            // Gated on the start command by the command policy; never dispatched.
            StageState::WaitingForStart => Ok(EventLoopDirective::Continue),
            StageState::Running => self.run_batch(context).await,
            StageState::Draining => self.drain(context).await,
            StageState::Drained => Ok(self.terminate(self.completed())),
            StageState::Failed { failure } => Ok(self.terminate(LifecycleEvent::Failed {
                reason: ErrorChain::new(failure).to_string(),
            })),
            StageState::Cancelled { reason } => Ok(self.terminate(LifecycleEvent::Cancelled {
                reason: reason.clone(),
            })),
        }
    }

    async fn wait_for_input(
        &mut self,
        state: &StageState,
        _context: &mut StageContext,
    ) -> Result<(), BoxError> {
        if matches!(state, StageState::Running) {
            self.logic().wait_for_input().await?;
        }
        Ok(())
    }

    fn writer_id(&self) -> WriterId {
        self.info.writer_id()
    }

    fn stage_id(&self) -> StageId {
        self.info.stage_id
    }

    fn stage_kind(&self) -> &str {
        self.info.kind.as_str()
    }

    /// Appends the stage's one terminal lifecycle fact and closes its journals, which wakes
    /// readers of a stage that ended without end-of-stream so they fail instead of hanging.
    async fn write_completion_event(&self) -> Result<(), BoxError> {
        let outcome = self
            .outcome
            .lock()
            .ok()
            .and_then(|mut slot| slot.take())
            .unwrap_or(LifecycleEvent::Cancelled {
                reason: "terminated without an outcome".to_owned(),
            });
        let (writer, flow_context) = (self.info.writer_id(), self.info.flow_context());
        // The error journal closes first, so the data journal's seal carries all it holds.
        let closed_error = self.error.close().await;
        let sealed_data = seal(self.data.as_ref(), writer, flow_context, outcome).await;
        sealed_data?;
        closed_error?;
        Ok(())
    }

    fn event_for_action_error(&self, failure: SupervisorFailure) -> StageEvent {
        StageEvent::Failure {
            failure: StageFailure::caught(self.info.name.clone(), &failure),
        }
    }
}

#[cfg(test)]
mod tests {
    use obzenflow_core::{EventContent, FlowId, JournalId, Lane, Record, RunId};
    use obzenflow_fsm::FsmError;

    use super::*;
    use crate::journal::MemoryJournal;
    use crate::stages::context::StageKind;
    use crate::stages::error::HandlerFailure;

    /// Logic the test never runs: only the supervisor's end is under test.
    struct Idle;

    #[async_trait::async_trait]
    impl StageLogic for Idle {
        async fn initialize(&mut self) -> Result<(), HandlerFailure> {
            Ok(())
        }
        async fn wait_for_input(&mut self) -> Result<(), StageError> {
            Ok(())
        }
        async fn run_batch(&mut self, _: &mut Outputs, _: usize) -> Result<Progress, StageError> {
            Ok(Progress::Exhausted)
        }
        async fn drain(&mut self, _: &mut Outputs) -> Result<(), StageError> {
            Ok(())
        }
    }

    fn supervisor() -> StageSupervisor<Idle> {
        let info = Arc::new(StageInfo {
            name: "stage".into(),
            stage_id: StageId::new(),
            kind: StageKind::Transform,
            flow_id: FlowId::new(),
            run_id: RunId::new(),
            replay_of: None,
            stage_names: Arc::from([]),
        });
        let journal = |lane| -> Arc<dyn Journal> {
            Arc::new(MemoryJournal::new(JournalId::new(
                WriterId::Stage(info.stage_id),
                "stage",
                lane,
            )))
        };
        StageSupervisor {
            logic: Mutex::new(Idle),
            config: StageConfig::default(),
            data: journal(Lane::Data),
            error: journal(Lane::Error),
            counters: Arc::new(StageCounters::default()),
            outcome: Mutex::new(None),
            info,
        }
    }

    fn records(journal: &dyn Journal) -> Vec<Record> {
        let mut records = Vec::new();
        journal
            .reader(0, None)
            .unwrap()
            .read(usize::MAX, &mut records)
            .unwrap();
        records
    }

    /// A loop that ends with an error in `running` leaves the stage's one terminal record,
    /// saying it failed and why, and closes both journals, so readers do not wait forever.
    #[tokio::test]
    async fn a_loop_error_leaves_one_failed_terminal_record_and_closed_journals() {
        let supervisor = supervisor();
        let error = SupervisionError::Fsm {
            supervisor: "stage".to_owned(),
            state: "running",
            source: FsmError::Unhandled {
                state: "running",
                event: "initialized",
            },
        };
        supervisor.on_loop_error(&error);
        supervisor.write_completion_event().await.unwrap();

        let records = records(supervisor.data.as_ref());
        assert_eq!(records.len(), 1, "exactly one terminal record");
        let EventContent::Lifecycle(LifecycleEvent::Failed { reason }) =
            &records[0].event().content
        else {
            panic!("expected a failed record, got {:?}", records[0].event());
        };
        assert_eq!(
            reason,
            "the stage's supervision loop ended with an error: supervisor `stage` cannot handle \
             an event in state `running`: unhandled event `initialized` in state `running`"
        );
        // Both journals are closed: nothing more can be appended.
        let late =
            obzenflow_core::ChainEvent::new(EventContent::Lifecycle(LifecycleEvent::Started));
        assert!(supervisor.data.append(vec![late.clone()]).await.is_err());
        assert!(supervisor.error.append(vec![late]).await.is_err());
    }

    /// An outcome the stage already recorded (its terminal state's) is what its terminal record
    /// says, even if the loop then ends with an error before writing it.
    #[test]
    fn a_loop_error_never_replaces_an_outcome_already_recorded() {
        let supervisor = supervisor();
        let _ = supervisor.terminate(LifecycleEvent::Cancelled {
            reason: "asked".to_owned(),
        });
        supervisor.on_loop_error(&SupervisionError::Fsm {
            supervisor: "stage".to_owned(),
            state: "cancelled",
            source: FsmError::Unhandled {
                state: "cancelled",
                event: "start",
            },
        });
        assert_eq!(
            *supervisor.outcome.lock().unwrap(),
            Some(LifecycleEvent::Cancelled {
                reason: "asked".to_owned()
            })
        );
    }
}
