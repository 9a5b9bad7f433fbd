//! The strategy a stage kind plugs into the one stage supervisor.

use super::error::{HandlerFailure, StageError};
use super::outputs::Outputs;

/// What one batch of work amounted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Work was done; there may be more.
    Continue,
    /// The input is exhausted: every upstream ended, or the source handler is done.
    Exhausted,
}

/// How a stage kind does its work; the supervisor owns the lifecycle around it.
#[async_trait::async_trait]
pub(crate) trait StageLogic: Send + 'static {
    /// Opens the handler's resources.
    async fn initialize(&mut self) -> Result<(), HandlerFailure>;

    /// Waits until [`run_batch`](StageLogic::run_batch) has something to do.
    ///
    /// Cancel safety: must be cancel safe; the supervisor races it against control commands.
    async fn wait_for_input(&mut self) -> Result<(), StageError>;

    /// Processes one batch and appends what it produced.
    async fn run_batch(
        &mut self,
        outputs: &mut Outputs,
        batch_limit: usize,
    ) -> Result<Progress, StageError>;

    /// Finishes: lets the handler emit what it still holds. The supervisor then appends the
    /// end-of-stream marker.
    async fn drain(&mut self, outputs: &mut Outputs) -> Result<(), StageError>;
}

/// Nanoseconds elapsed since `start`, saturating.
pub(crate) fn elapsed_ns(start: std::time::Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}
