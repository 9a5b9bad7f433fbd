//! Errors of the state machine boundary: [`FsmError`] for the engine, [`ActionError`] for actions.

/// The one place a boxed error is allowed: what user action code may hand back.
///
/// It is wrapped at once into an [`ActionError`], so no other API carries a bare box.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The error an [`FsmAction`](crate::FsmAction) returns when its effect fails.
///
/// It is transparent: it displays as the inner error and its
/// [`source`](std::error::Error::source) is the inner error's source, so it adds no link of its
/// own to an error chain and a chain printed link by link shows the inner message once.
/// [`inner`](Self::inner) reaches the original error, for example to downcast it.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ActionError {
    source: BoxError,
}

impl ActionError {
    /// Wraps any error (or anything convertible into a [`BoxError`], such as a `String`).
    pub fn new(error: impl Into<BoxError>) -> Self {
        Self {
            source: error.into(),
        }
    }

    /// Builds an error from a plain message, for failures that have no underlying error value.
    pub fn msg(message: impl Into<String>) -> Self {
        Self::new(message.into())
    }

    /// Borrows the wrapped error, for example to downcast it.
    pub fn inner(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.source
    }

    /// Returns the wrapped error.
    pub fn into_inner(self) -> BoxError {
        self.source
    }
}

impl From<BoxError> for ActionError {
    fn from(error: BoxError) -> Self {
        Self::new(error)
    }
}

/// Errors reported by the state machine engine and its drivers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FsmError {
    /// The transition function returned [`Transition::Unhandled`](crate::Transition::Unhandled)
    /// for this pair; the machine's state did not change.
    #[error("unhandled event `{event}` in state `{state}`")]
    Unhandled {
        /// Variant name of the state the machine was in.
        state: &'static str,
        /// Variant name of the event that was not handled.
        event: &'static str,
    },

    /// An action failed while a driver executed it. The machine never builds this variant itself
    /// (it executes nothing); drivers use it so action failures share one typed error.
    #[error("action `{action}` failed")]
    Action {
        /// The [`FsmAction::name`](crate::FsmAction::name) of the action that failed.
        action: &'static str,
        /// Why it failed.
        #[source]
        source: ActionError,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[derive(Debug, thiserror::Error)]
    #[error("disk full")]
    struct DiskFull;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot flush")]
    struct FlushFailed(#[source] DiskFull);

    #[test]
    fn action_error_is_transparent_and_reaches_the_inner_error() {
        let error = ActionError::new(FlushFailed(DiskFull));
        assert_eq!(error.to_string(), "cannot flush");
        let source = error
            .source()
            .expect("the inner error's source is the source");
        assert!(source.downcast_ref::<DiskFull>().is_some());
        assert!(error.inner().downcast_ref::<FlushFailed>().is_some());
    }

    #[test]
    fn action_error_from_message() {
        let error = ActionError::msg("socket closed");
        assert_eq!(error.to_string(), "socket closed");
        assert_eq!(error.into_inner().to_string(), "socket closed");
    }

    #[test]
    fn fsm_action_error_keeps_the_chain() {
        let error = FsmError::Action {
            action: "Flush",
            source: ActionError::new(DiskFull),
        };
        assert_eq!(error.to_string(), "action `Flush` failed");
        let source = error.source().expect("action error is the source");
        assert_eq!(source.to_string(), "disk full");
        assert!(
            source.source().is_none(),
            "the wrapper adds no link of its own"
        );
    }

    #[test]
    fn unhandled_names_state_and_event() {
        let error = FsmError::Unhandled {
            state: "Closed",
            event: "Close",
        };
        assert_eq!(
            error.to_string(),
            "unhandled event `Close` in state `Closed`"
        );
    }
}
