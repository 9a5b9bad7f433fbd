//! Starting the metrics aggregator of a flow, and the handle the pipeline drains it through.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use obzenflow_core::{FlowId, Journal, RunId};
use tokio::sync::watch;

use super::aggregator::MetricsAggregator;
use super::collector::{fold_stages, Collector, EdgeProbe, StageProbe};
use super::config::MetricsConfig;
use super::fsm::{MetricsContext, MetricsState};
use super::snapshot::FlowSnapshot;
use crate::supervised_base::{spawn_supervised, SupervisorConfig, SupervisorHandle};

/// Commands the aggregator accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetricsCommand {
    /// The flow ended: fold the final snapshot, write the completion record and finish.
    Drain,
}

/// What the pipeline hands over to start a flow's aggregator.
pub(crate) struct AggregatorSetup {
    pub(crate) config: MetricsConfig,
    pub(crate) flow_name: Arc<str>,
    pub(crate) flow_id: FlowId,
    pub(crate) run_id: RunId,
    pub(crate) started: Instant,
    pub(crate) stages: Vec<StageProbe>,
    pub(crate) edges: Vec<EdgeProbe>,
    /// The aggregator's own journal (`SystemComponent::MetricsAggregator`).
    pub(crate) system_journal: Arc<dyn Journal>,
}

/// The pipeline's end of a running aggregator.
pub(crate) struct MetricsHandle {
    supervisor: SupervisorHandle<MetricsCommand, MetricsState>,
    drain_deadline: Duration,
}

impl MetricsHandle {
    /// Spawns the aggregator of one flow on the current runtime; returns its handle and the
    /// watch its snapshots are published on (holding a first snapshot from the start).
    pub(crate) fn spawn(setup: AggregatorSetup) -> (Self, watch::Receiver<Arc<FlowSnapshot>>) {
        let first = fold_stages(
            &setup.flow_name,
            setup.run_id,
            setup.started,
            &setup.stages,
            false,
        );
        let (sender, receiver) = watch::channel(Arc::new(first));
        let aggregator = MetricsAggregator {
            flow_id: setup.flow_id,
            run_id: setup.run_id,
            stage_states: setup
                .stages
                .iter()
                .map(|stage| stage.state.clone())
                .collect(),
            system_journal: setup.system_journal,
            outcome: Mutex::new(None),
        };
        let context = MetricsContext {
            collector: Collector::new(
                setup.flow_name,
                setup.run_id,
                setup.started,
                setup.stages,
                setup.edges,
            ),
            snapshots: sender,
            interval: setup.config.effective_interval(),
        };
        let supervisor = spawn_supervised(
            aggregator,
            MetricsState::Created,
            context,
            SupervisorConfig::default(),
        );
        let handle = Self {
            supervisor,
            drain_deadline: setup.config.drain_deadline,
        };
        (handle, receiver)
    }

    /// Tells the aggregator to fold the final snapshot and waits until it wrote its
    /// completion record, at most the configured drain deadline (then it is aborted). Failures
    /// are logged: metrics never fail a flow.
    ///
    /// Cancel safety: not cancel safe; dropping the future drops the handle, and the
    /// aggregator, seeing its command channel closed, drains on its own.
    pub(crate) async fn drain(self) {
        if self.supervisor.send(MetricsCommand::Drain).await.is_err() {
            tracing::debug!("metrics aggregator ended before the drain command");
        }
        if let Err(error) = self
            .supervisor
            .join_with_deadline(self.drain_deadline)
            .await
        {
            tracing::error!(
                error = &error as &(dyn std::error::Error + 'static),
                "metrics aggregator did not drain cleanly"
            );
        }
    }
}
