//! The pipeline supervisor's machine: start the stages, watch them, drain or fail as a whole.
//!
//! ```text
//! Created -> Running -> Drained
//!            Running -> Draining (graceful stop) -> Drained
//!            Running | Draining -> Failing (a stage failed) -> Failed
//!            Running | Draining -> Cancelling (cancel, or the stop deadline passed) -> Cancelled
//! ```

use std::time::Duration;

use obzenflow_core::ErrorChain;
use obzenflow_fsm::{
    ActionError, EventVariant, FsmAction, StateMachine, StateTimeout, StateVariant, Transition,
};

use super::context::PipelineContext;
use super::failure::FlowFailure;

/// Where a flow is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlowState {
    /// Built, stages not yet started.
    Created,
    /// Stages running.
    Running,
    /// Sources stopped; the rest drains.
    Draining,
    /// A stage failed; the others are being cancelled.
    Failing {
        /// Why the flow fails.
        failure: FlowFailure,
    },
    /// Cancellation requested; waiting for every stage to stop.
    Cancelling {
        /// Why.
        reason: String,
    },
    /// Every stage drained. Terminal.
    Drained,
    /// The flow failed. Terminal.
    Failed {
        /// Why: the typed cause; [`FlowReport::failure`](super::FlowReport::failure) returns
        /// it, and the flow's terminal lifecycle record holds its text.
        failure: FlowFailure,
    },
    /// The flow was cancelled. Terminal.
    Cancelled {
        /// Why.
        reason: String,
    },
}

impl FlowState {
    /// Whether the flow has finished.
    pub const fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Drained | Self::Failed { .. } | Self::Cancelled { .. }
        )
    }
}

impl StateVariant for FlowState {
    fn variant_name(&self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Draining => "draining",
            Self::Failing { .. } => "failing",
            Self::Cancelling { .. } => "cancelling",
            Self::Drained => "drained",
            Self::Failed { .. } => "failed",
            Self::Cancelled { .. } => "cancelled",
        }
    }
}

/// What happens to a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FlowEvent {
    /// Every stage was spawned and the sources were told to start.
    Started,
    /// Stop gracefully within `deadline`.
    StopRequested {
        /// How long the drain may take before the flow is cancelled.
        deadline: Duration,
    },
    /// Cancel now.
    CancelRequested {
        /// Why.
        reason: String,
    },
    /// A stage failed or was cancelled on its own.
    StageFailed {
        /// Which stage and why.
        failure: FlowFailure,
    },
    /// Every stage reached a terminal state.
    AllStagesDone,
    /// The graceful stop deadline passed.
    DrainTimedOut,
    /// Stages did not stop within the teardown deadline after being cancelled.
    TeardownTimedOut,
    /// The supervisor itself failed (materializing, an action).
    Failure {
        /// Why.
        failure: FlowFailure,
    },
    /// Every holder of the flow's handle is gone; the flow runs on to completion.
    ControlClosed,
}

impl EventVariant for FlowEvent {
    fn variant_name(&self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::StopRequested { .. } => "stop_requested",
            Self::CancelRequested { .. } => "cancel_requested",
            Self::StageFailed { .. } => "stage_failed",
            Self::AllStagesDone => "all_stages_done",
            Self::DrainTimedOut => "drain_timed_out",
            Self::TeardownTimedOut => "teardown_timed_out",
            Self::Failure { .. } => "failure",
            Self::ControlClosed => "control_closed",
        }
    }
}

/// Side effects the pipeline machine asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FlowAction {
    /// Tell every source to stop producing and drain.
    StopSources,
    /// Tell every stage to cancel.
    CancelStages {
        /// Why, recorded in each stage's cancellation fact.
        reason: String,
    },
    /// Abort the tasks of stages that ignored cancellation (stuck in a handler call).
    AbortStuckStages,
}

#[async_trait::async_trait]
impl FsmAction for FlowAction {
    type Context = PipelineContext;

    async fn execute(&self, context: &mut PipelineContext) -> Result<(), ActionError> {
        match self {
            Self::StopSources => context.stop_sources(),
            Self::CancelStages { reason } => context.cancel_stages(reason),
            Self::AbortStuckStages => context.abort_stuck_stages(),
        }
        Ok(())
    }

    fn name(&self) -> &'static str {
        match self {
            Self::StopSources => "stop_sources",
            Self::CancelStages { .. } => "cancel_stages",
            Self::AbortStuckStages => "abort_stuck_stages",
        }
    }
}

/// The pipeline machine definition.
#[derive(Debug)]
pub(crate) struct PipelineMachine;

impl StateMachine for PipelineMachine {
    type State = FlowState;
    type Event = FlowEvent;
    type Context = PipelineContext;
    type Action = FlowAction;

    fn transition(
        state: &FlowState,
        event: &FlowEvent,
        context: &mut PipelineContext,
    ) -> Transition<FlowState, FlowAction> {
        use FlowEvent as E;
        use FlowState as S;
        match (state, event) {
            (S::Created, E::Started) => Transition::to(S::Running),
            (S::Running, E::StopRequested { deadline }) => {
                context.drain_deadline = Some(*deadline);
                Transition::to_with(S::Draining, vec![FlowAction::StopSources])
            }
            (S::Running | S::Draining, E::AllStagesDone) => Transition::to(S::Drained),
            (
                S::Created | S::Running | S::Draining,
                E::StageFailed { failure } | E::Failure { failure },
            ) => begin_failing(failure),
            (S::Created | S::Running | S::Draining, E::CancelRequested { reason }) => {
                begin_cancelling(reason)
            }
            (S::Draining, E::DrainTimedOut) => {
                begin_cancelling("the graceful stop deadline passed")
            }
            (S::Failing { .. } | S::Cancelling { .. }, E::TeardownTimedOut) => {
                Transition::stay_with(vec![FlowAction::AbortStuckStages])
            }
            (S::Failing { failure }, E::AllStagesDone) => Transition::to(S::Failed {
                failure: failure.clone(),
            }),
            (S::Cancelling { reason }, E::AllStagesDone) => Transition::to(S::Cancelled {
                reason: reason.clone(),
            }),
            // A flow being torn down ignores further requests and failures: it is already
            // going where they would send it.
            (S::Draining | S::Failing { .. } | S::Cancelling { .. }, E::StopRequested { .. })
            | (
                S::Failing { .. } | S::Cancelling { .. },
                E::CancelRequested { .. }
                | E::StageFailed { .. }
                | E::Failure { .. }
                | E::DrainTimedOut,
            )
            | (_, E::ControlClosed) => Transition::stay(),
            (
                S::Created
                | S::Running
                | S::Draining
                | S::Failing { .. }
                | S::Cancelling { .. }
                | S::Drained
                | S::Failed { .. }
                | S::Cancelled { .. },
                E::Started
                | E::StopRequested { .. }
                | E::AllStagesDone
                | E::DrainTimedOut
                | E::TeardownTimedOut
                | E::StageFailed { .. }
                | E::Failure { .. }
                | E::CancelRequested { .. },
            ) => Transition::Unhandled,
        }
    }

    fn is_terminal(state: &FlowState) -> bool {
        state.is_terminal()
    }

    fn timeout(state: &FlowState, context: &PipelineContext) -> Option<StateTimeout<FlowEvent>> {
        match (state, context.drain_deadline) {
            (FlowState::Draining, Some(after)) => {
                Some(StateTimeout::new(after, FlowEvent::DrainTimedOut))
            }
            (FlowState::Failing { .. } | FlowState::Cancelling { .. }, _) => Some(
                StateTimeout::new(context.teardown_deadline, FlowEvent::TeardownTimedOut),
            ),
            _ => None,
        }
    }
}

fn begin_failing(failure: &FlowFailure) -> Transition<FlowState, FlowAction> {
    // The stages' cancellation records are text: the failure's chain, each cause once.
    let reason = format!("flow failed: {}", ErrorChain::new(failure));
    Transition::to_with(
        FlowState::Failing {
            failure: failure.clone(),
        },
        vec![FlowAction::CancelStages { reason }],
    )
}

fn begin_cancelling(reason: &str) -> Transition<FlowState, FlowAction> {
    Transition::to_with(
        FlowState::Cancelling {
            reason: reason.to_owned(),
        },
        vec![FlowAction::CancelStages {
            reason: reason.to_owned(),
        }],
    )
}
