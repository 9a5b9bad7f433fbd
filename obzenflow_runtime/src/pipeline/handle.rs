//! `FlowHandle`: start, watch, stop, cancel and wait for a flow.

use std::sync::Arc;
use std::time::Duration;

use obzenflow_core::RunId;
use tokio::sync::watch;

use super::builder::Flow;
use super::error::FlowError;
use super::fsm::FlowState;
use super::materialize::materialize;
use super::report::{FlowReport, StageReport};
use super::shared::{RunShared, StageProgress};
use crate::supervised_base::SupervisorHandle;

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
pub struct FlowHandle {
    supervisor: SupervisorHandle<FlowCommand, FlowState>,
    shared: Arc<RunShared>,
}

impl FlowHandle {
    pub(crate) fn start(flow: Flow) -> Result<Self, FlowError> {
        let (supervisor, shared) = materialize(flow)?;
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
    /// Cancel safety: not cancel safe; dropping it leaves the flow running without a handle.
    pub async fn wait(self) -> Result<FlowReport, FlowError> {
        let state = self.supervisor.state();
        self.supervisor.join().await?;
        let final_state = state.borrow().clone();
        Ok(build_report(&self.shared, final_state))
    }
}

fn build_report(shared: &RunShared, state: FlowState) -> FlowReport {
    let stages = shared
        .stages
        .iter()
        .map(|stage| {
            let counts = stage.counters.snapshot();
            StageReport {
                name: stage.name.to_string(),
                kind: stage.kind,
                state: stage.state.borrow().clone(),
                records_in: counts.records_in,
                records_out: counts.records_out,
                records_errored: counts.records_errored,
                records_filtered: counts.records_filtered,
                duration: stage.counters.duration(),
                first_errors: stage.counters.first_errors(),
            }
        })
        .collect();
    FlowReport {
        flow_name: shared.flow_name.to_string(),
        run_id: shared.run_id,
        state,
        duration: shared.started.elapsed(),
        stages,
        run_dir: shared.run_dir.clone(),
        durability: shared.durability.clone(),
    }
}
