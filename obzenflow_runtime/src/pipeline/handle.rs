//! `FlowHandle`: start, watch, stop, cancel and wait for a flow.

use std::sync::Arc;
use std::time::Duration;

use obzenflow_core::RunId;
use tokio::sync::watch;

use super::builder::Flow;
use super::error::FlowError;
use super::failure::FlowFailure;
use super::fsm::FlowState;
use super::materialize::{materialize, WorkerRun};
use super::outcome;
use super::report::{DeliveryGuarantee, FlowReport, StageReport};
use super::shared::{RunShared, StageProgress};
use crate::metrics::FlowSnapshot;
use crate::supervised_base::{SupervisionError, SupervisorHandle};

/// Commands a flow accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowCommand {
    /// Stop the sources and let everything in flight drain; cancel if that takes longer than
    /// `deadline`.
    Stop {
        /// How long the drain may take.
        deadline: Duration,
    },
    /// Cancel every stage now.
    Cancel {
        /// Why.
        reason: String,
    },
}

/// The control surface of a running flow.
///
/// Dropping the handle does not stop the flow: it runs to completion in the background.
#[must_use = "dropping the handle lets the flow run on unobserved; `wait()` for its report"]
pub struct FlowHandle {
    supervisor: SupervisorHandle<FlowCommand, FlowState>,
    shared: Arc<RunShared>,
}

impl FlowHandle {
    pub(crate) fn start(flow: Flow) -> Result<Self, FlowError> {
        let (supervisor, shared) = materialize(flow, None)?;
        Ok(Self { supervisor, shared })
    }

    /// Starts a worker's part of a flow, in the run it joined.
    pub(crate) fn start_worker(flow: Flow, worker: WorkerRun) -> Result<Self, FlowError> {
        let (supervisor, shared) = materialize(flow, Some(worker))?;
        Ok(Self { supervisor, shared })
    }

    /// The run's id.
    pub fn run_id(&self) -> RunId {
        self.shared.run_id
    }

    /// The run directory, for disk journals.
    pub fn run_dir(&self) -> Option<&std::path::Path> {
        self.shared.run_dir.as_deref()
    }

    /// A watch of the flow's state.
    pub fn state(&self) -> watch::Receiver<FlowState> {
        self.supervisor.state()
    }

    /// Live per-stage counts and states.
    pub fn progress(&self) -> Vec<StageProgress> {
        self.shared.progress()
    }

    /// The latest metrics snapshot: the one the aggregator folded last (at most one
    /// [`MetricsConfig::interval`](crate::metrics::MetricsConfig::interval) old while the flow
    /// runs, final once it ended), or, with metrics disabled, one folded now from the stages'
    /// counts.
    ///
    /// ```no_run
    /// # fn show(handle: &obzenflow_runtime::pipeline::FlowHandle) {
    /// let snapshot = handle.snapshot();
    /// println!("{} stages, final: {}", snapshot.stages.len(), snapshot.is_final);
    /// # }
    /// ```
    pub fn snapshot(&self) -> Arc<FlowSnapshot> {
        self.shared.snapshot()
    }

    /// A watch of the aggregator's snapshots, for dashboards that want each one as it is
    /// published. With metrics disabled it holds one snapshot, folded now, and never changes.
    ///
    /// ```no_run
    /// # async fn follow(handle: &obzenflow_runtime::pipeline::FlowHandle) {
    /// let mut snapshots = handle.snapshots();
    /// while snapshots.changed().await.is_ok() {
    ///     let snapshot = snapshots.borrow_and_update().clone();
    ///     for edge in &snapshot.edges {
    ///         println!("{} -> {}: {} behind", edge.from, edge.to, edge.lag);
    ///     }
    ///     if snapshot.is_final {
    ///         break;
    ///     }
    /// }
    /// # }
    /// ```
    pub fn snapshots(&self) -> watch::Receiver<Arc<FlowSnapshot>> {
        match &self.shared.snapshots {
            Some(snapshots) => snapshots.clone(),
            None => watch::channel(self.shared.snapshot()).1,
        }
    }

    /// Waits until the flow has ended and its final snapshot is out, and returns it; unlike
    /// [`wait`](Self::wait) it keeps the handle, so [`prometheus`](Self::prometheus) serves
    /// the final numbers afterwards.
    ///
    /// Cancel safety: cancel safe; it only reads watches.
    ///
    /// ```no_run
    /// # async fn finish(handle: obzenflow_runtime::pipeline::FlowHandle) {
    /// let last = handle.final_snapshot().await;
    /// assert!(last.is_final);
    /// println!("{}", handle.prometheus());
    /// # }
    /// ```
    pub async fn final_snapshot(&self) -> Arc<FlowSnapshot> {
        self.shared.wait_for_final_snapshot().await
    }

    /// The latest snapshot (see [`snapshot`](Self::snapshot)) in the Prometheus text
    /// exposition format; see [`crate::metrics`] for the metric names. Works during the run
    /// and after it.
    ///
    /// ```no_run
    /// # fn show(handle: &obzenflow_runtime::pipeline::FlowHandle) {
    /// let text = handle.prometheus();
    /// assert!(text.contains("obzenflow_stage_records_in_total"));
    /// # }
    /// ```
    pub fn prometheus(&self) -> String {
        self.shared.snapshot().to_prometheus()
    }

    /// Serves [`prometheus`](Self::prometheus) over HTTP at `/metrics` on `config.addr`
    /// until the returned server is dropped (which may outlive the run and this handle).
    ///
    /// Cancel safety: cancel safe; a cancelled call has bound nothing.
    ///
    /// ```no_run
    /// use obzenflow_runtime::metrics::PrometheusHttpConfig;
    ///
    /// # async fn serve(handle: &obzenflow_runtime::pipeline::FlowHandle) -> std::io::Result<()> {
    /// let server = handle.serve_prometheus(PrometheusHttpConfig::default()).await?;
    /// println!("scrape http://{}/metrics", server.local_addr());
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "prometheus-http")]
    pub async fn serve_prometheus(
        &self,
        config: crate::metrics::PrometheusHttpConfig,
    ) -> std::io::Result<crate::metrics::PrometheusServer> {
        let shared = Arc::clone(&self.shared);
        crate::metrics::PrometheusServer::bind(config, move || shared.snapshot().to_prometheus())
            .await
    }

    /// Stops the sources and lets everything already emitted drain; the flow is cancelled if
    /// the drain takes longer than `deadline`. Returns once the request is queued.
    ///
    /// Cancel safety: cancel safe; a cancelled call has sent nothing.
    pub async fn stop_graceful(&self, deadline: Duration) -> Result<(), FlowError> {
        self.command(FlowCommand::Stop { deadline }).await
    }

    /// Cancels every stage now. Returns once the request is queued.
    ///
    /// Cancel safety: cancel safe; a cancelled call has sent nothing.
    pub async fn cancel(&self) -> Result<(), FlowError> {
        self.command(FlowCommand::Cancel {
            reason: "cancelled by the flow handle".to_owned(),
        })
        .await
    }

    async fn command(&self, command: FlowCommand) -> Result<(), FlowError> {
        // A flow that already finished has nothing left to stop; that is not an error.
        let _ = self.supervisor.send(command).await;
        Ok(())
    }

    /// Waits for the flow to finish and returns its report.
    ///
    /// A flow that ran but whose end could not be recorded (its journal or manifest could not
    /// be written) is [`FlowError::EndNotRecorded`], which names the cause and carries the
    /// report.
    ///
    /// Cancel safety: not cancel safe; dropping it leaves the flow running without a handle.
    pub async fn wait(self) -> Result<FlowReport, FlowError> {
        let state = self.supervisor.state();
        let joined = self.supervisor.join().await;
        let final_state = state.borrow().clone();
        match (joined, self.shared.end_not_recorded()) {
            (Ok(()), _) => Ok(build_report(&self.shared, final_state)),
            (Err(SupervisionError::Completion { .. }), Some(end)) => {
                let failed = FlowState::Failed {
                    failure: FlowFailure::EndNotRecorded(end.clone()),
                };
                let report = Box::new(build_report(&self.shared, failed));
                Err(FlowError::EndNotRecorded { end, report })
            }
            (Err(error), _) => Err(error.into()),
        }
    }
}

fn build_report(shared: &RunShared, state: FlowState) -> FlowReport {
    let metrics = shared.final_snapshot();
    let stages = metrics
        .stages
        .iter()
        .zip(&shared.stages)
        .map(|(snapshot, stage)| {
            StageReport::from_snapshot(
                snapshot,
                stage.counters.first_errors(),
                stage.counters.receipts(),
            )
        })
        .collect::<Vec<_>>();
    let (accepted_findings, findings) = if matches!(state, FlowState::Drained) {
        outcome::find(&stages, &shared.upstreams)
            .into_iter()
            .partition(|finding| {
                shared
                    .accepted
                    .iter()
                    .any(|(name, kind)| name == finding.stage() && *kind == finding.kind())
            })
    } else {
        (Vec::new(), Vec::new())
    };
    FlowReport {
        flow_name: shared.flow_name.to_string(),
        run_id: shared.run_id,
        state,
        duration: shared.started.elapsed(),
        stages,
        run_dir: shared.run_dir.clone(),
        durability: shared.durability.clone(),
        guarantee: DeliveryGuarantee::AtLeastOnceFromSource,
        earlier_incomplete_runs: shared.earlier_incomplete_runs.clone(),
        metrics: FlowSnapshot::clone(&metrics),
        findings,
        accepted_findings,
    }
}
