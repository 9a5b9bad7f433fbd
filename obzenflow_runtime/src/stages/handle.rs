//! The control surface of a running stage.

use crate::supervised_base::SupervisorHandle;

use super::lifecycle::StageState;

/// Commands a stage accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageCommand {
    /// Start producing (sources wait for this).
    Start,
    /// Stop gracefully: a source stops producing and drains; other stages ignore it and drain
    /// when their upstreams end.
    Stop,
    /// Cancel now.
    Cancel {
        /// Why.
        reason: String,
    },
}

/// The handle of one running stage: commands in, state out, the task's join handle.
pub type StageHandle = SupervisorHandle<StageCommand, StageState>;
