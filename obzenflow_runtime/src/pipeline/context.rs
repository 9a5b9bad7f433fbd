//! The pipeline supervisor's mutable context: the stages' handles and the drain deadline.

use std::time::Duration;

use tokio::sync::mpsc::error::TrySendError;

use crate::stages::{StageCommand, StageHandle, StageKind};

/// One stage as the pipeline commands it.
pub(crate) struct StageControl {
    pub(crate) kind: StageKind,
    pub(crate) handle: StageHandle,
}

/// The context the pipeline machine's actions run against.
pub struct PipelineContext {
    /// How long a graceful stop may take, once one was requested.
    pub(crate) drain_deadline: Option<Duration>,
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
    pub(crate) fn new(stages: Vec<StageControl>) -> Self {
        Self {
            drain_deadline: None,
            stages,
        }
    }

    /// Tells every source to start.
    pub(crate) fn start_sources(&self) {
        self.send_to_sources(StageCommand::Start);
    }

    /// Tells every source to stop and drain.
    pub(crate) async fn stop_sources(&self) {
        self.send_to_sources(StageCommand::Stop);
    }

    fn send_to_sources(&self, command: StageCommand) {
        for stage in self.stages.iter().filter(|stage| stage.kind.is_source()) {
            send(&stage.handle, command.clone());
        }
    }

    /// Tells every stage to cancel.
    pub(crate) async fn cancel_stages(&self, reason: &str) {
        for stage in &self.stages {
            send(
                &stage.handle,
                StageCommand::Cancel {
                    reason: reason.to_owned(),
                },
            );
        }
    }

    /// Waits for every stage task to finish, so their terminal records are written.
    pub(crate) async fn join_stages(&mut self) {
        for stage in self.stages.drain(..) {
            let name = stage.handle.name().to_owned();
            if let Err(error) = stage.handle.join().await {
                tracing::error!(stage = %name, %error, "stage supervisor ended abnormally");
            }
        }
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
