//! [`SupervisionError`]: why a supervision loop ended without terminating normally.

use std::time::Duration;

use obzenflow_fsm::{ActionError, BoxError, FsmError};

use super::panic::PanicError;

/// Why a supervision loop ended other than by a completed `Terminate`, or why waiting for it
/// failed.
///
/// Failures of user code (`dispatch_state`, `wait_for_input`, actions, panics in any of them)
/// are not errors here: the loop turns them into the supervisor's failure event and carries on.
/// These variants are what is left: the machine could not take an event, the failure path
/// itself failed, the completion record could not be written, or the task could not be joined.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SupervisionError {
    /// The machine has no transition for the supervisor's failure event in the current state,
    /// so the failure could not be recorded by the machine.
    #[error(
        "supervisor `{supervisor}` has no transition for its failure event in state `{state}`"
    )]
    UnhandledFailure {
        /// The supervisor's name.
        supervisor: String,
        /// Variant name of the state the failure happened in.
        state: &'static str,
        /// The machine's report.
        #[source]
        source: FsmError,
    },

    /// Something failed while the machine was in a terminal state: an action of the transition
    /// into it, or `dispatch_state` or `wait_for_input` there. A terminal state cannot take
    /// the failure path, so the failure ends the loop instead of being absorbed; the completion
    /// record is not written.
    #[error("supervisor `{supervisor}` failed in its terminal state `{state}`: {failure}")]
    FailedInTerminalState {
        /// The supervisor's name.
        supervisor: String,
        /// Variant name of the terminal state.
        state: &'static str,
        /// What failed, as the failure event would have carried it.
        failure: String,
    },

    /// The machine has no transition for a regular event (a `Transition` directive, a command,
    /// a closed control channel or a state deadline) in the current state.
    #[error("supervisor `{supervisor}` cannot handle an event in state `{state}`")]
    Fsm {
        /// The supervisor's name.
        supervisor: String,
        /// Variant name of the state that did not handle the event.
        state: &'static str,
        /// The machine's report, naming the event.
        #[source]
        source: FsmError,
    },

    /// An action returned by the failure transition failed (or panicked). The failure path does
    /// not recurse into itself, so this ends the loop.
    #[error("failure action `{action}` of supervisor `{supervisor}` failed in state `{state}`")]
    FailureActionFailed {
        /// The supervisor's name.
        supervisor: String,
        /// Variant name of the state the failure transition led to.
        state: &'static str,
        /// The [`FsmAction::name`](obzenflow_fsm::FsmAction::name) of the failed action.
        action: &'static str,
        /// Why it failed; a panic appears as a [`PanicError`] inside.
        #[source]
        source: ActionError,
    },

    /// `write_completion_event` failed or panicked after a `Terminate` directive.
    #[error("supervisor `{supervisor}` could not write its completion event in state `{state}`")]
    Completion {
        /// The supervisor's name.
        supervisor: String,
        /// Variant name of the state that asked to terminate.
        state: &'static str,
        /// The supervisor's error; a panic appears as a [`PanicError`].
        #[source]
        source: BoxError,
    },

    /// Supervisor code outside the guarded callbacks panicked (for example the transition
    /// function while handling the failure event, or `build_state_machine`).
    #[error("supervisor `{supervisor}` panicked")]
    Panicked {
        /// The supervisor's name.
        supervisor: String,
        /// The panic.
        #[source]
        source: PanicError,
    },

    /// The supervisor did not finish within the deadline given to
    /// [`SupervisorHandle::join_with_deadline`](super::SupervisorHandle::join_with_deadline);
    /// its task was aborted.
    #[error("supervisor `{supervisor}` did not finish within {timeout:?}")]
    JoinTimeout {
        /// The supervisor's name.
        supervisor: String,
        /// How long the caller waited.
        timeout: Duration,
    },

    /// The supervisor's task was aborted (or, against the loop's guarantee, panicked).
    #[error("supervisor `{supervisor}` task did not run to completion")]
    Join {
        /// The supervisor's name.
        supervisor: String,
        /// Tokio's report.
        #[source]
        source: tokio::task::JoinError,
    },
}

impl SupervisionError {
    /// The name of the supervisor this error is about.
    pub fn supervisor(&self) -> &str {
        match self {
            Self::UnhandledFailure { supervisor, .. }
            | Self::Fsm { supervisor, .. }
            | Self::FailedInTerminalState { supervisor, .. }
            | Self::FailureActionFailed { supervisor, .. }
            | Self::Completion { supervisor, .. }
            | Self::Panicked { supervisor, .. }
            | Self::JoinTimeout { supervisor, .. }
            | Self::Join { supervisor, .. } => supervisor,
        }
    }
}

/// Renders an error and its `source` chain on one line, each cause once: the
/// [`ErrorChain`](obzenflow_core::ErrorChain) text. No error prints its own source, so nothing
/// needs skipping.
pub(crate) fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    obzenflow_core::ErrorChain::new(error).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[derive(Debug, thiserror::Error)]
    #[error("disk full")]
    struct DiskFull;

    #[derive(Debug, thiserror::Error)]
    #[error("append failed")]
    struct AppendFailed(#[source] DiskFull);

    #[test]
    fn describe_walks_the_chain_once_through_transparent_wrappers() {
        assert_eq!(
            describe(&AppendFailed(DiskFull)),
            "append failed: disk full"
        );
        let wrapped = ActionError::new(AppendFailed(DiskFull));
        assert_eq!(describe(&wrapped), "append failed: disk full");
    }

    #[test]
    fn errors_name_the_supervisor_and_keep_the_source() {
        let error = SupervisionError::UnhandledFailure {
            supervisor: "orders".to_owned(),
            state: "Created",
            source: FsmError::Unhandled {
                state: "Created",
                event: "Failure",
            },
        };
        assert_eq!(error.supervisor(), "orders");
        assert_eq!(
            error.to_string(),
            "supervisor `orders` has no transition for its failure event in state `Created`"
        );
        let source = error.source().expect("the machine's error is the source");
        assert_eq!(
            source.to_string(),
            "unhandled event `Failure` in state `Created`"
        );
    }
}
