//! The stage lifecycle machine, shared by every stage kind.
//!
//! ```text
//! Created -> Initialized -> (sources: WaitingForStart) -> Running -> Draining -> Drained
//!                                                   any non-terminal -> Failed | Cancelled
//! ```
//!
//! Every kind has the same lifecycle, so there is one machine; what differs between a source, a
//! transform and a sink is how they do their work in `Running` and `Draining`, which lives in
//! the kind's strategy (see [`StageKind`](super::StageKind)). Sharing the machine keeps the
//! invariant "every stage ends in exactly one terminal state" in one place.

use obzenflow_fsm::{ActionError, EventVariant, FsmAction, StateMachine, StateVariant, Transition};

use super::context::StageContext;
use super::error::StageFailure;

/// Where a stage is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StageState {
    /// Built, nothing opened yet.
    Created,
    /// Resources opened (files, readers); ready to start.
    Initialized,
    /// A source waiting for the pipeline's start command.
    WaitingForStart,
    /// Processing records.
    Running,
    /// Input is exhausted or a stop was requested: finishing what is in flight.
    Draining,
    /// Drained and completed. Terminal.
    Drained,
    /// Failed. Terminal.
    Failed {
        /// Why: the typed cause, which the stage's terminal lifecycle record holds as text.
        failure: StageFailure,
    },
    /// Cancelled before it could drain. Terminal.
    Cancelled {
        /// Why.
        reason: String,
    },
}

impl StageState {
    /// Whether the stage has finished, one way or another.
    pub const fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Drained | Self::Failed { .. } | Self::Cancelled { .. }
        )
    }
}

impl StateVariant for StageState {
    fn variant_name(&self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Initialized => "initialized",
            Self::WaitingForStart => "waiting_for_start",
            Self::Running => "running",
            Self::Draining => "draining",
            Self::Drained => "drained",
            Self::Failed { .. } => "failed",
            Self::Cancelled { .. } => "cancelled",
        }
    }
}

/// What happens to a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StageEvent {
    /// Resources are open.
    Initialized,
    /// A source must wait for the start command.
    AwaitStart,
    /// Start processing.
    Start,
    /// Every upstream ended (or the source handler is done).
    InputExhausted,
    /// A graceful stop was requested; only sources act on it.
    StopRequested,
    /// Everything in flight was processed and the end-of-stream appended.
    DrainCompleted,
    /// Cancel now.
    Cancel {
        /// Why.
        reason: String,
    },
    /// Something failed: a journal, a handler, the error budget, a panic.
    Failure {
        /// Why.
        failure: StageFailure,
    },
    /// Every holder of the stage's handle is gone.
    ControlClosed,
}

impl EventVariant for StageEvent {
    fn variant_name(&self) -> &'static str {
        match self {
            Self::Initialized => "initialized",
            Self::AwaitStart => "await_start",
            Self::Start => "start",
            Self::InputExhausted => "input_exhausted",
            Self::StopRequested => "stop_requested",
            Self::DrainCompleted => "drain_completed",
            Self::Cancel { .. } => "cancel",
            Self::Failure { .. } => "failure",
            Self::ControlClosed => "control_closed",
        }
    }
}

/// Side effects the lifecycle asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StageAction {
    /// Append the `started` lifecycle fact to the stage's data journal.
    AnnounceStarted,
}

#[async_trait::async_trait]
impl FsmAction for StageAction {
    type Context = StageContext;

    async fn execute(&self, context: &mut StageContext) -> Result<(), ActionError> {
        match self {
            Self::AnnounceStarted => context
                .outputs
                .announce_started()
                .await
                .map_err(ActionError::new),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Self::AnnounceStarted => "announce_started",
        }
    }
}

/// The lifecycle machine definition.
///
/// For a source, as [`obzenflow_fsm::render_mermaid`] draws it from [`StateMachine::transition`]
/// (a unit test keeps this diagram equal to the rendering):
///
/// ```text
#[doc = include_str!("source_lifecycle.mmd")]
/// ```
///
/// Readers (transforms, stateful stages, sinks) skip `waiting_for_start` and stay where they are
/// on a stop request.
#[derive(Debug)]
pub(crate) struct StageMachine;

impl StateMachine for StageMachine {
    type State = StageState;
    type Event = StageEvent;
    type Context = StageContext;
    type Action = StageAction;

    fn transition(
        state: &StageState,
        event: &StageEvent,
        context: &mut StageContext,
    ) -> Transition<StageState, StageAction> {
        use StageEvent as E;
        use StageState as S;
        match (state, event) {
            (_, E::Failure { failure }) => Transition::to(S::Failed {
                failure: failure.clone(),
            }),
            (_, E::Cancel { reason }) => Transition::to(S::Cancelled {
                reason: reason.clone(),
            }),
            (_, E::ControlClosed) => Transition::to(S::Cancelled {
                reason: "control channel closed".to_owned(),
            }),
            (S::Created, E::Initialized) => Transition::to(S::Initialized),
            (S::Initialized, E::AwaitStart) => Transition::to(S::WaitingForStart),
            (S::Initialized | S::WaitingForStart, E::Start) => {
                Transition::to_with(S::Running, vec![StageAction::AnnounceStarted])
            }
            (S::Running, E::InputExhausted) => Transition::to(S::Draining),
            (S::WaitingForStart | S::Running, E::StopRequested) => stop(context),
            (S::Created | S::Initialized | S::Draining, E::StopRequested) => Transition::stay(),
            (S::Draining, E::DrainCompleted) => Transition::to(S::Drained),
            (
                S::Created
                | S::Initialized
                | S::WaitingForStart
                | S::Running
                | S::Draining
                | S::Drained
                | S::Failed { .. }
                | S::Cancelled { .. },
                E::Initialized
                | E::AwaitStart
                | E::Start
                | E::InputExhausted
                | E::StopRequested
                | E::DrainCompleted,
            ) => Transition::Unhandled,
        }
    }

    fn is_terminal(state: &StageState) -> bool {
        state.is_terminal()
    }
}

/// Only sources act on a graceful stop: they stop producing and drain. Every other stage
/// drains when its upstreams end, so the stop reaches it as end-of-stream markers.
fn stop(context: &StageContext) -> Transition<StageState, StageAction> {
    if context.info.kind.is_source() {
        Transition::to(StageState::Draining)
    } else {
        Transition::stay()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use obzenflow_core::{FlowId, JournalId, Lane, RunId, StageId, WriterId};

    use super::*;
    use crate::journal::MemoryJournal;
    use crate::stages::context::{StageInfo, StageKind};
    use crate::stages::counters::StageCounters;
    use crate::stages::outputs::Outputs;

    fn context(kind: StageKind) -> StageContext {
        let info = Arc::new(StageInfo {
            name: "stage".into(),
            stage_id: StageId::new(),
            kind,
            flow_id: FlowId::new(),
            run_id: RunId::new(),
            replay_of: None,
            stage_names: Arc::from([]),
        });
        let journal = |lane| -> Arc<dyn obzenflow_core::Journal> {
            Arc::new(MemoryJournal::new(JournalId::new(
                WriterId::Stage(info.stage_id),
                "stage",
                lane,
            )))
        };
        let outputs = Outputs::new(
            info.clone(),
            journal(Lane::Data),
            journal(Lane::Error),
            Arc::new(StageCounters::default()),
        );
        StageContext { info, outputs }
    }

    fn all_states() -> Vec<StageState> {
        let reason = String::from("why");
        vec![
            StageState::Created,
            StageState::Initialized,
            StageState::WaitingForStart,
            StageState::Running,
            StageState::Draining,
            StageState::Drained,
            StageState::Failed {
                failure: StageFailure::for_tests("stage", &reason),
            },
            StageState::Cancelled { reason },
        ]
    }

    fn all_events() -> Vec<StageEvent> {
        let reason = String::from("why");
        vec![
            StageEvent::Initialized,
            StageEvent::AwaitStart,
            StageEvent::Start,
            StageEvent::InputExhausted,
            StageEvent::StopRequested,
            StageEvent::DrainCompleted,
            StageEvent::Cancel {
                reason: reason.clone(),
            },
            StageEvent::Failure {
                failure: StageFailure::for_tests("stage", &reason),
            },
            StageEvent::ControlClosed,
        ]
    }

    /// `source_lifecycle.mmd` is the source lifecycle as rendered from this machine; this keeps
    /// it true. The file is part of the crate (the `StageMachine` docs show it), and
    /// `cargo xtask tidy` checks that ARCHITECTURE.md quotes it verbatim, so the document cannot
    /// drift from the code either.
    #[test]
    fn the_documented_source_lifecycle_is_the_one_in_the_code() {
        let diagram =
            obzenflow_fsm::render_mermaid::<StageMachine>(&all_states(), &all_events(), || {
                context(StageKind::Source)
            });
        assert_eq!(
            include_str!("source_lifecycle.mmd"),
            diagram,
            "src/stages/source_lifecycle.mmd is out of date (copy it into ARCHITECTURE.md too); \
             the source lifecycle renders as:\n{diagram}"
        );
    }

    #[test]
    fn only_sources_drain_on_a_stop_request() {
        let mut source = context(StageKind::Source);
        let mut transform = context(StageKind::Transform);
        let stop = StageEvent::StopRequested;
        assert!(matches!(
            StageMachine::transition(&StageState::Running, &stop, &mut source),
            Transition::To {
                next: StageState::Draining,
                ..
            }
        ));
        assert!(matches!(
            StageMachine::transition(&StageState::Running, &stop, &mut transform),
            Transition::Stay { .. }
        ));
    }

    #[test]
    fn failure_and_cancel_end_every_live_state() {
        for state in all_states()
            .into_iter()
            .filter(|state| !state.is_terminal())
        {
            let failure = StageEvent::Failure {
                failure: StageFailure::for_tests("stage", "disk full"),
            };
            let next = StageMachine::transition(&state, &failure, &mut context(StageKind::Sink));
            assert!(
                matches!(
                    next,
                    Transition::To {
                        next: StageState::Failed { .. },
                        ..
                    }
                ),
                "{state:?}"
            );
            let cancel = StageEvent::ControlClosed;
            let next = StageMachine::transition(&state, &cancel, &mut context(StageKind::Sink));
            assert!(
                matches!(
                    next,
                    Transition::To {
                        next: StageState::Cancelled { .. },
                        ..
                    }
                ),
                "{state:?}"
            );
        }
    }
}
