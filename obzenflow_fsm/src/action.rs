//! Actions: the side effects a transition asks for, executed by the driver, never by the machine.

use crate::error::ActionError;

/// A side effect produced by a transition and executed later against the machine's context.
///
/// The machine only returns actions from [`Machine::handle`](crate::Machine::handle); the driver
/// (the supervision loop) awaits [`execute`](FsmAction::execute) on each one in order. Keeping
/// execution outside the machine is what lets transitions stay pure and testable without a runtime.
///
/// Implementations are usually an enum whose variants carry the data each effect needs.
#[async_trait::async_trait]
pub trait FsmAction: std::fmt::Debug + Send + Sync {
    /// The mutable state the action works on; the same type as the machine's context.
    type Context: Send;

    /// Performs the effect. An error here is an input for the driver (typically turned into a
    /// failure event and fed back to the machine), not something to propagate with `?`.
    async fn execute(&self, context: &mut Self::Context) -> Result<(), ActionError>;

    /// A stable name for logs and for [`FsmError::Action`](crate::FsmError::Action).
    ///
    /// Implementors usually return the variant name; the default is `"action"`.
    fn name(&self) -> &'static str {
        "action"
    }
}
