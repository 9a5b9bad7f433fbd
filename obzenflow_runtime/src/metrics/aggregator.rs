//! The metrics aggregator: a `SelfSupervised` machine, one per flow, that folds the stages'
//! counters and the edges' positions into [`FlowSnapshot`]s and writes one completion record
//! to its own system journal.

use std::future::pending;
use std::sync::{Arc, Mutex};

use obzenflow_core::{FlowId, Journal, LifecycleEvent, RunId, SystemComponent, WriterId};
use obzenflow_fsm::{BoxError, Machine};

use crate::facts::{seal, system_context};
use tokio::sync::watch;

use super::fsm::{MetricsAction, MetricsContext, MetricsEvent, MetricsMachine, MetricsState};
use super::handle::MetricsCommand;
use super::snapshot::FlowSnapshot;
use crate::stages::{StageKind, StageState};
use crate::supervised_base::{CommandPolicy, EventLoopDirective, SelfSupervised, Supervisor};
use crate::wait_any::{wait_any, BoxFuture};

/// The aggregator's name in logs and errors.
const AGGREGATOR_NAME: &str = "metrics_aggregator";

/// Supervises the metrics of one flow.
pub(crate) struct MetricsAggregator {
    pub(crate) flow_id: FlowId,
    pub(crate) run_id: RunId,
    /// The stages' states, to notice when they change and restart their clocks.
    pub(crate) stage_states: Vec<watch::Receiver<StageState>>,
    /// The aggregator's own journal, where its one completion record goes.
    pub(crate) system_journal: Arc<dyn Journal>,
    pub(crate) outcome: Mutex<Option<LifecycleEvent>>,
}

impl MetricsAggregator {
    /// Notes stage state changes (restarting their clocks) and goes back to waiting.
    fn observe(&mut self, context: &mut MetricsContext) -> EventLoopDirective<MetricsEvent> {
        for state in &mut self.stage_states {
            // Mark the change seen, so the next wait does not wake for it again.
            state.borrow_and_update();
        }
        context.collector.observe_states();
        EventLoopDirective::Continue
    }

    /// Records the outcome for the completion record and terminates.
    fn terminate(&self, outcome: LifecycleEvent) -> EventLoopDirective<MetricsEvent> {
        if let Ok(mut slot) = self.outcome.lock() {
            *slot = Some(outcome);
        }
        EventLoopDirective::Terminate
    }
}

/// The run's totals from the final snapshot: records the sources produced, records the sinks
/// delivered, records errored anywhere.
fn completed(snapshot: &FlowSnapshot) -> LifecycleEvent {
    let of_kind = |kind: StageKind| {
        snapshot
            .stages
            .iter()
            .filter(move |stage| stage.kind == kind)
    };
    LifecycleEvent::Completed {
        records_in: of_kind(StageKind::Source)
            .map(|stage| stage.records_in)
            .sum(),
        records_out: of_kind(StageKind::Sink)
            .map(|stage| stage.records_out)
            .sum(),
        records_errored: snapshot
            .stages
            .iter()
            .map(|stage| stage.records_errored)
            .sum(),
    }
}

impl Supervisor for MetricsAggregator {
    type State = MetricsState;
    type Event = MetricsEvent;
    type Context = MetricsContext;
    type Action = MetricsAction;
    type Machine = MetricsMachine;
    type Command = MetricsCommand;

    fn build_state_machine(&self, initial_state: MetricsState) -> Machine<MetricsMachine> {
        Machine::new(initial_state)
    }

    fn name(&self) -> &str {
        AGGREGATOR_NAME
    }

    fn command_policy(&self, state: &MetricsState) -> CommandPolicy {
        match state {
            MetricsState::Collecting => CommandPolicy::Select,
            MetricsState::Created
            | MetricsState::Draining
            | MetricsState::Drained
            | MetricsState::Failed { .. } => CommandPolicy::Ignore,
        }
    }

    fn event_for_command(&self, command: MetricsCommand) -> MetricsEvent {
        match command {
            MetricsCommand::Drain => MetricsEvent::DrainRequested,
        }
    }

    /// A pipeline that went away without a word (aborted, panicked) still gets its final
    /// snapshot and completion record.
    fn event_for_control_closed(&self) -> Option<MetricsEvent> {
        Some(MetricsEvent::DrainRequested)
    }
}

#[async_trait::async_trait]
impl SelfSupervised for MetricsAggregator {
    async fn dispatch_state(
        &mut self,
        state: &MetricsState,
        context: &mut MetricsContext,
    ) -> Result<EventLoopDirective<MetricsEvent>, BoxError> {
        Ok(match state {
            MetricsState::Created => EventLoopDirective::Transition(MetricsEvent::Start),
            MetricsState::Collecting => self.observe(context),
            MetricsState::Draining => EventLoopDirective::Transition(MetricsEvent::DrainCompleted),
            MetricsState::Drained => self.terminate(completed(&context.latest())),
            MetricsState::Failed { reason } => self.terminate(LifecycleEvent::Failed {
                reason: reason.clone(),
            }),
        })
    }

    /// While collecting, waits until some stage that has not finished changes state; the
    /// interval and the drain command are raced against this by the loop.
    async fn wait_for_input(
        &mut self,
        state: &MetricsState,
        _context: &mut MetricsContext,
    ) -> Result<(), BoxError> {
        if !matches!(state, MetricsState::Collecting) {
            return Ok(());
        }
        let waits: Vec<BoxFuture<'_, ()>> = self
            .stage_states
            .iter_mut()
            // A finished stage will not change again, and the watch of a task that is gone
            // reports "changed" forever: waiting on either would spin.
            .filter(|state| !state.borrow().is_terminal() && state.has_changed().is_ok())
            .map(|state| -> BoxFuture<'_, ()> {
                Box::pin(async move {
                    let _ = state.changed().await;
                })
            })
            .collect();
        if waits.is_empty() {
            // Nothing left to notice: only the interval or the drain command can wake us.
            pending::<()>().await;
        }
        wait_any(waits).await;
        Ok(())
    }

    fn writer_id(&self) -> WriterId {
        WriterId::System(SystemComponent::MetricsAggregator)
    }

    /// Appends the aggregator's one lifecycle fact and closes its journal.
    async fn write_completion_event(&self) -> Result<(), BoxError> {
        let outcome = self
            .outcome
            .lock()
            .ok()
            .and_then(|mut slot| slot.take())
            .unwrap_or(LifecycleEvent::Cancelled {
                reason: "terminated without an outcome".to_owned(),
            });
        let outcome_name = match &outcome {
            LifecycleEvent::Completed { .. } => "completed",
            LifecycleEvent::Failed { .. } => "failed",
            LifecycleEvent::Cancelled { .. } | LifecycleEvent::Started => "cancelled",
        };
        tracing::info!(run_id = %self.run_id, outcome = outcome_name, "metrics aggregator finished");
        let context = system_context(self.flow_id, self.run_id);
        seal(
            self.system_journal.as_ref(),
            self.writer_id(),
            context,
            outcome,
        )
        .await?;
        Ok(())
    }

    fn event_for_action_error(
        &self,
        failure: crate::supervised_base::SupervisorFailure,
    ) -> MetricsEvent {
        // Metrics never fail a flow, so the aggregator's failure is only ever read as text.
        let reason = obzenflow_core::ErrorChain::new(&failure).to_string();
        MetricsEvent::Failure { reason }
    }
}
