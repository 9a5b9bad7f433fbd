//! [`SupervisionError`]: why a supervision loop ended without terminating normally; and
//! [`SupervisorFailure`]: a failure of a supervisor's code that the loop turned into the
//! supervisor's failure event.

use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use obzenflow_core::ErrorChain;
use obzenflow_fsm::{ActionError, BoxError, FsmError};

use super::panic::PanicError;

/// Why a supervision loop ended other than by a completed `Terminate`, or why waiting for it
/// failed. Whatever the error, the loop has written its completion record once (unless
/// writing it is what failed), after passing the error to
/// [`Supervisor::on_loop_error`](super::Supervisor::on_loop_error).
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
    /// the failure path, so the failure ends the loop instead of being absorbed. The completion
    /// record is still written once, after [`Supervisor::on_loop_error`](super::Supervisor::on_loop_error)
    /// received this error, so it can say the supervisor failed.
    #[error("supervisor `{supervisor}` failed in its terminal state `{state}`")]
    FailedInTerminalState {
        /// The supervisor's name.
        supervisor: String,
        /// Variant name of the terminal state.
        state: &'static str,
        /// What failed, as the failure event would have carried it.
        #[source]
        failure: SupervisorFailure,
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

    /// Variant name of the state the loop was in, where the error says.
    pub fn state(&self) -> Option<&'static str> {
        match self {
            Self::UnhandledFailure { state, .. }
            | Self::Fsm { state, .. }
            | Self::FailedInTerminalState { state, .. }
            | Self::FailureActionFailed { state, .. }
            | Self::Completion { state, .. } => Some(state),
            Self::Panicked { .. } | Self::JoinTimeout { .. } | Self::Join { .. } => None,
        }
    }
}

/// Where in a supervisor's code a [`SupervisorFailure`] happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailedStep {
    /// `dispatch_state` returned an error or panicked.
    Dispatch,
    /// `wait_for_input` returned an error or panicked.
    WaitForInput,
    /// The action of this [`name`](obzenflow_fsm::FsmAction::name) failed or panicked.
    Action(&'static str),
    /// The transition function panicked on the event of this
    /// [`name`](obzenflow_fsm::EventVariant::variant_name).
    Transition(&'static str),
    /// The supervision loop itself ended with a [`SupervisionError`] (given to
    /// [`Supervisor::on_loop_error`](super::Supervisor::on_loop_error)), whose text the cause
    /// holds.
    Loop,
}

impl fmt::Display for FailedStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dispatch => f.write_str("dispatch_state"),
            Self::WaitForInput => f.write_str("wait_for_input"),
            Self::Action(action) => write!(f, "action `{action}`"),
            Self::Transition(event) => write!(f, "the transition on `{event}`"),
            Self::Loop => f.write_str("the supervision loop"),
        }
    }
}

/// A failure the supervision loop caught in a supervisor's code: an error returned by
/// `dispatch_state`, `wait_for_input` or an action, or a panic in any of them or in the
/// transition function. The loop hands it to the supervisor's failure event
/// (`event_for_action_error`), which keeps it as it is or wraps it; nothing turns it into a
/// string on the way.
///
/// It says where the failure happened ([`step`](Self::step), [`state`](Self::state)) and keeps
/// the error itself as its [`source`](Error::source) ([`cause`](Self::cause)): the error the
/// supervisor returned (unwrapped from its [`ActionError`] for an action) or the
/// [`PanicError`]. [`downcast_ref`](Self::downcast_ref) reaches any error of the chain by its
/// type. Its `Display` says only where it failed; [`ErrorChain`] prints the whole story.
/// Clones share the cause, and two failures are equal when one is a clone of the other.
///
/// ```
/// use obzenflow_core::ErrorChain;
/// use obzenflow_runtime::supervised_base::{FailedStep, SupervisorFailure};
///
/// fn explain(failure: &SupervisorFailure) -> String {
///     if failure.step() == FailedStep::Dispatch && failure.panic().is_some() {
///         return format!("a bug: {}", ErrorChain::new(failure));
///     }
///     match failure.downcast_ref::<std::io::Error>() {
///         Some(io) => format!("I/O ({:?}) in state {}", io.kind(), failure.state()),
///         None => ErrorChain::new(failure).to_string(),
///     }
/// }
/// ```
#[derive(Debug, Clone)]
pub struct SupervisorFailure {
    step: FailedStep,
    state: &'static str,
    cause: Arc<dyn Error + Send + Sync + 'static>,
}

impl SupervisorFailure {
    /// A failure of `step` in `state` whose cause is `cause`. The loop builds these; a
    /// supervisor's own tests build one to drive their machine's failure transition.
    ///
    /// ```
    /// use obzenflow_runtime::supervised_base::{FailedStep, SupervisorFailure};
    ///
    /// let failure = SupervisorFailure::new(FailedStep::Dispatch, "running", "disk full");
    /// assert_eq!(failure.to_string(), "dispatch_state failed in state `running`");
    /// assert_eq!(failure.cause().to_string(), "disk full");
    /// ```
    pub fn new(step: FailedStep, state: &'static str, cause: impl Into<BoxError>) -> Self {
        Self {
            step,
            state,
            cause: Arc::from(cause.into()),
        }
    }

    /// A failed action: its [`ActionError`] is unwrapped, so the cause is the action's own
    /// error.
    pub(crate) fn action(action: &'static str, state: &'static str, error: ActionError) -> Self {
        Self::new(FailedStep::Action(action), state, error.into_inner())
    }

    /// A panic in `step`.
    pub(crate) fn panicked(step: FailedStep, state: &'static str, panic: PanicError) -> Self {
        Self::new(step, state, panic)
    }

    /// Where the failure happened.
    pub fn step(&self) -> FailedStep {
        self.step
    }

    /// Variant name of the state the machine was in when it failed.
    pub fn state(&self) -> &'static str {
        self.state
    }

    /// The error that failed, or the [`PanicError`].
    pub fn cause(&self) -> &(dyn Error + Send + Sync + 'static) {
        &*self.cause
    }

    /// The cause, shared: what a wrapping failure keeps as its own source.
    pub(crate) fn shared_cause(&self) -> Arc<dyn Error + Send + Sync + 'static> {
        Arc::clone(&self.cause)
    }

    /// The panic, if the code panicked.
    pub fn panic(&self) -> Option<&PanicError> {
        self.cause.downcast_ref::<PanicError>()
    }

    /// The first error of type `E` in the cause's chain, such as the supervisor's own error
    /// type.
    pub fn downcast_ref<E: Error + 'static>(&self) -> Option<&E> {
        ErrorChain::new(self.cause()).find::<E>()
    }
}

impl fmt::Display for SupervisorFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed in state `{}`", self.step, self.state)
    }
}

impl Error for SupervisorFailure {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(self.cause())
    }
}

impl PartialEq for SupervisorFailure {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.cause, &other.cause)
            && self.step == other.step
            && self.state == other.state
    }
}

impl Eq for SupervisorFailure {}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("disk full")]
    struct DiskFull;

    #[derive(Debug, thiserror::Error)]
    #[error("append failed")]
    struct AppendFailed(#[source] DiskFull);

    #[test]
    fn a_failure_keeps_its_cause_typed_and_prints_it_once() {
        let failure =
            SupervisorFailure::action("flush", "running", ActionError::new(AppendFailed(DiskFull)));
        assert_eq!(failure.step(), FailedStep::Action("flush"));
        assert!(failure.downcast_ref::<AppendFailed>().is_some());
        assert!(failure.downcast_ref::<DiskFull>().is_some());
        assert!(failure.panic().is_none());
        assert_eq!(
            ErrorChain::new(&failure).to_string(),
            "action `flush` failed in state `running`: append failed: disk full"
        );
        assert_eq!(failure.clone(), failure);
        let again = SupervisorFailure::new(FailedStep::Dispatch, "running", DiskFull);
        assert_ne!(again, failure);
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
