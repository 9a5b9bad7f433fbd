//! The metrics aggregator's machine: fold on an interval while the flow runs, fold once more
//! when told to drain, then end.
//!
//! ```text
//! Created -> Collecting -(tick)-> Collecting -(drain)-> Draining -> Drained
//!            any non-terminal -(failure)-> Failed
//! ```
//!
//! The interval is the `Collecting` state's timeout: the driver awaits it as a deadline next to
//! the drain command and the stages' state changes, and each tick re-enters `Collecting`, which
//! re-arms it. Folding and publishing is the one action, so only the run loop does it.

use std::sync::Arc;
use std::time::Duration;

use obzenflow_fsm::{
    ActionError, EventVariant, FsmAction, StateMachine, StateTimeout, StateVariant, Transition,
};
use tokio::sync::watch;

use super::collector::Collector;
use super::snapshot::FlowSnapshot;

/// Where the aggregator is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MetricsState {
    /// Spawned, nothing folded yet.
    Created,
    /// Folding a snapshot every interval.
    Collecting,
    /// The final snapshot is published; about to finish.
    Draining,
    /// Done. Terminal.
    Drained,
    /// Something failed. Terminal.
    Failed {
        /// Why.
        reason: String,
    },
}

impl StateVariant for MetricsState {
    fn variant_name(&self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Collecting => "collecting",
            Self::Draining => "draining",
            Self::Drained => "drained",
            Self::Failed { .. } => "failed",
        }
    }
}

/// What happens to the aggregator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MetricsEvent {
    /// Begin collecting.
    Start,
    /// The interval elapsed.
    Tick,
    /// The flow ended (or the pipeline let go of the aggregator): fold the final snapshot.
    DrainRequested,
    /// The final snapshot is out.
    DrainCompleted,
    /// The aggregator itself failed.
    Failure {
        /// Why.
        reason: String,
    },
}

impl EventVariant for MetricsEvent {
    fn variant_name(&self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Tick => "tick",
            Self::DrainRequested => "drain_requested",
            Self::DrainCompleted => "drain_completed",
            Self::Failure { .. } => "failure",
        }
    }
}

/// The aggregator's one side effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MetricsAction {
    /// Fold every probe into a snapshot and publish it.
    Publish {
        /// Whether it is the run's last snapshot.
        is_final: bool,
    },
}

/// What the aggregator's actions work on.
pub(crate) struct MetricsContext {
    pub(crate) collector: Collector,
    pub(crate) snapshots: watch::Sender<Arc<FlowSnapshot>>,
    pub(crate) interval: Duration,
}

impl std::fmt::Debug for MetricsContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsContext")
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl MetricsContext {
    /// The snapshot published last.
    pub(crate) fn latest(&self) -> Arc<FlowSnapshot> {
        self.snapshots.borrow().clone()
    }
}

#[async_trait::async_trait]
impl FsmAction for MetricsAction {
    type Context = MetricsContext;

    async fn execute(&self, context: &mut MetricsContext) -> Result<(), ActionError> {
        match self {
            Self::Publish { is_final } => {
                let snapshot = context.collector.collect(*is_final);
                tracing::trace!(
                    is_final,
                    stages = snapshot.stages.len(),
                    "metrics snapshot published"
                );
                // Sending only fails without receivers, and the sender keeps the value anyway.
                context.snapshots.send_replace(Arc::new(snapshot));
            }
        }
        Ok(())
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Publish { .. } => "publish",
        }
    }
}

/// The aggregator's machine definition.
#[derive(Debug)]
pub(crate) struct MetricsMachine;

impl StateMachine for MetricsMachine {
    type State = MetricsState;
    type Event = MetricsEvent;
    type Context = MetricsContext;
    type Action = MetricsAction;

    fn transition(
        state: &MetricsState,
        event: &MetricsEvent,
        _context: &mut MetricsContext,
    ) -> Transition<MetricsState, MetricsAction> {
        use MetricsEvent as E;
        use MetricsState as S;
        let publish = |is_final| vec![MetricsAction::Publish { is_final }];
        match (state, event) {
            (S::Created, E::Start) | (S::Collecting, E::Tick) => {
                Transition::to_with(S::Collecting, publish(false))
            }
            (S::Created | S::Collecting, E::DrainRequested) => {
                Transition::to_with(S::Draining, publish(true))
            }
            (S::Draining, E::DrainRequested) => Transition::stay(),
            (S::Draining, E::DrainCompleted) => Transition::to(S::Drained),
            // The final snapshot goes out even on failure, so the report has numbers.
            (S::Created | S::Collecting | S::Draining, E::Failure { reason }) => {
                Transition::to_with(
                    S::Failed {
                        reason: reason.clone(),
                    },
                    publish(true),
                )
            }
            (S::Created, E::Tick | E::DrainCompleted)
            | (S::Collecting, E::Start | E::DrainCompleted)
            | (S::Draining, E::Start | E::Tick)
            | (S::Drained | S::Failed { .. }, _) => Transition::Unhandled,
        }
    }

    fn is_terminal(state: &MetricsState) -> bool {
        matches!(state, MetricsState::Drained | MetricsState::Failed { .. })
    }

    fn timeout(
        state: &MetricsState,
        context: &MetricsContext,
    ) -> Option<StateTimeout<MetricsEvent>> {
        match state {
            MetricsState::Collecting => {
                Some(StateTimeout::new(context.interval, MetricsEvent::Tick))
            }
            MetricsState::Created
            | MetricsState::Draining
            | MetricsState::Drained
            | MetricsState::Failed { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use obzenflow_fsm::{render_mermaid, Machine};

    #[test]
    fn the_diagram_shows_the_interval_loop_and_the_drain() {
        let states = [
            MetricsState::Created,
            MetricsState::Collecting,
            MetricsState::Draining,
            MetricsState::Drained,
            MetricsState::Failed {
                reason: String::new(),
            },
        ];
        let events = [
            MetricsEvent::Start,
            MetricsEvent::Tick,
            MetricsEvent::DrainRequested,
            MetricsEvent::DrainCompleted,
            MetricsEvent::Failure {
                reason: String::new(),
            },
        ];
        let diagram = render_mermaid::<MetricsMachine>(&states, &events, test_context);
        for edge in [
            "created --> collecting : start",
            "collecting --> collecting : tick",
            "collecting --> draining : drain_requested",
            "draining --> drained : drain_completed",
            "draining --> failed : failure",
        ] {
            assert!(diagram.contains(edge), "{edge} missing from\n{diagram}");
        }
    }

    #[test]
    fn terminal_states_absorb_everything() {
        let mut machine: Machine<MetricsMachine> = Machine::new(MetricsState::Drained);
        let mut context = test_context();
        let actions = machine.handle(MetricsEvent::Tick, &mut context).unwrap();
        assert!(actions.is_empty());
        assert_eq!(machine.state(), &MetricsState::Drained);
    }

    fn test_context() -> MetricsContext {
        let collector = Collector::new(
            "test".into(),
            obzenflow_core::RunId::new(),
            std::time::Instant::now(),
            Vec::new(),
            Vec::new(),
        );
        let first = collector_snapshot();
        MetricsContext {
            collector,
            snapshots: watch::Sender::new(Arc::new(first)),
            interval: Duration::from_secs(1),
        }
    }

    fn collector_snapshot() -> FlowSnapshot {
        super::super::collector::fold_stages(
            "test",
            obzenflow_core::RunId::new(),
            std::time::Instant::now(),
            &[],
            false,
        )
    }
}
