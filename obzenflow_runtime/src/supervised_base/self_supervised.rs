//! [`SelfSupervised`]: supervisors whose logic is their own (the pipeline supervisor, the
//! metrics aggregator), and their [`run`](SelfSupervisedExt::run).

use obzenflow_core::WriterId;
use obzenflow_fsm::BoxError;

use super::base::{EventLoopDirective, Supervisor};
use super::driver::{drive, Body, BoxFuture, DriverParts};
use super::error::{SupervisionError, SupervisorFailure};

/// A supervisor that carries its own logic: what to do in each state is
/// [`dispatch_state`](SelfSupervised::dispatch_state).
///
/// Implementing it gives [`SelfSupervisedExt::run`] and
/// [`spawn_supervised`](super::spawn_supervised); there is no other way to drive the machine.
///
/// # Example
///
/// The countdown of the [module example](crate::supervised_base) (its machine and
/// [`Supervisor`] implementation are hidden here), run in the current task:
///
/// ```
#[doc = include_str!("doc_countdown.txt")]
/// use obzenflow_runtime::supervised_base::SelfSupervisedExt;
///
/// #[async_trait::async_trait]
/// impl SelfSupervised for Countdown {
///     async fn dispatch_state(
///         &mut self,
///         state: &Phase,
///         _context: &mut Vec<&'static str>,
///     ) -> Result<EventLoopDirective<PhaseEvent>, BoxError> {
///         Ok(match state {
///             // `run` has no command channel, so the gate is passed by dispatching.
///             Phase::Idle => EventLoopDirective::Transition(PhaseEvent::Start),
///             Phase::Counting if self.remaining == 0 => {
///                 EventLoopDirective::Transition(PhaseEvent::Finished)
///             }
///             Phase::Counting => {
///                 self.remaining -= 1;
///                 EventLoopDirective::Transition(PhaseEvent::Tick)
///             }
///             Phase::Done | Phase::Failed => EventLoopDirective::Terminate,
///         })
///     }
///
///     // Every state's dispatch has work or moves on, so there is nothing to wait for.
///     async fn wait_for_input(
///         &mut self,
///         _state: &Phase,
///         _context: &mut Vec<&'static str>,
///     ) -> Result<(), BoxError> {
///         Ok(())
///     }
///
///     fn writer_id(&self) -> WriterId {
///         WriterId::System(SystemComponent::Pipeline)
///     }
///
///     async fn write_completion_event(&self) -> Result<(), BoxError> {
///         Ok(())
///     }
///
///     fn event_for_action_error(&self, failure: SupervisorFailure) -> PhaseEvent {
///         PhaseEvent::Failure(failure)
///     }
/// }
///
/// let runtime = tokio::runtime::Builder::new_current_thread()
///     .enable_all()
///     .build()?;
/// runtime.block_on(Countdown { remaining: 3 }.run(Phase::Idle, Vec::new()))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A supervisor must say how it waits: one without
/// [`wait_for_input`](SelfSupervised::wait_for_input) does not compile, so the literal port of
/// a component that polls an empty channel in its dispatch cannot silently spin.
///
/// ```compile_fail,E0046
#[doc = include_str!("doc_countdown.txt")]
/// #[async_trait::async_trait]
/// impl SelfSupervised for Countdown {
///     async fn dispatch_state(
///         &mut self,
///         _state: &Phase,
///         _context: &mut Vec<&'static str>,
///     ) -> Result<EventLoopDirective<PhaseEvent>, BoxError> {
///         Ok(EventLoopDirective::Continue)
///     }
///
///     fn writer_id(&self) -> WriterId {
///         WriterId::System(SystemComponent::Pipeline)
///     }
///
///     async fn write_completion_event(&self) -> Result<(), BoxError> {
///         Ok(())
///     }
///
///     fn event_for_action_error(&self, failure: SupervisorFailure) -> PhaseEvent {
///         PhaseEvent::Failure(failure)
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait SelfSupervised: Supervisor {
    /// Does the current state's work and says what happens next.
    ///
    /// An `Err` (or a panic) becomes [`event_for_action_error`](Self::event_for_action_error)
    /// and takes the failure path. Waiting for input belongs in
    /// [`wait_for_input`](Self::wait_for_input); this method should do the work that input
    /// enables.
    ///
    /// Cancel safety: the loop never cancels it, so it may leave work half done across awaits
    /// (a batch half appended is always finished). Dropping the `run` future drops it too.
    async fn dispatch_state(
        &mut self,
        state: &Self::State,
        context: &mut Self::Context,
    ) -> Result<EventLoopDirective<Self::Event>, BoxError>;

    /// Waits until `dispatch_state` has something to do in `state`. An `Err` (or a
    /// panic) takes the failure path like a failed dispatch.
    ///
    /// There is no default: this is how the loop waits, and the only thing that keeps a
    /// supervisor from spinning. Await the source of the work here (`Notify::notified`,
    /// `watch::Receiver::changed`, `mpsc::Receiver::recv`, a journal reader's wake-up); return
    /// at once only in states where `dispatch_state` always has work or returns `Transition`
    /// or `Terminate`. A supervisor whose `dispatch_state` finds nothing to do and returns
    /// [`Continue`](super::EventLoopDirective::Continue) after a `wait_for_input` that did not
    /// wait burns a core while idle (the literal port of a seed component that polls an empty
    /// channel does exactly that): move the wait out of `dispatch_state` into this method.
    ///
    /// Cancel safety: must be cancel safe. The loop races it against commands and the state's
    /// deadline and drops it when one of those wins; it is called again on the next iteration.
    /// Await notifications, not the work itself.
    async fn wait_for_input(
        &mut self,
        state: &Self::State,
        context: &mut Self::Context,
    ) -> Result<(), BoxError>;

    /// Who this supervisor writes as.
    fn writer_id(&self) -> WriterId;

    /// Writes the completion record; called exactly once, whatever ends the loop: after a
    /// `Terminate` directive, or after the loop ended with an error, which
    /// [`on_loop_error`](Supervisor::on_loop_error) received first. After a `Terminate`, an
    /// `Err` (or a panic) ends the loop with [`SupervisionError::Completion`]; after an error,
    /// it is logged and the loop's error stands.
    ///
    /// Cancel safety: the loop never cancels it.
    async fn write_completion_event(&self) -> Result<(), BoxError>;

    /// The failure event for `failure`: a failed or panicking dispatch, input wait, transition
    /// or action, with the error (or the panic) itself as its cause. Keep it in the event (and
    /// the failed state) rather than its text, so whoever watches the state can match on the
    /// cause. The machine must handle it in every non-terminal state.
    fn event_for_action_error(&self, failure: SupervisorFailure) -> Self::Event;
}

/// Marks the [`SelfSupervised`] implementation of the loop's adapter.
pub enum SelfFlavor {}

impl<S> Body<SelfFlavor> for S
where
    S: SelfSupervised + Send,
{
    fn supervisor_span(&self) -> tracing::Span {
        tracing::info_span!(
            "supervisor",
            supervisor = %self.name(),
            writer_id = %self.writer_id(),
        )
    }

    fn await_input<'a>(
        &'a mut self,
        state: &'a Self::State,
        context: &'a mut Self::Context,
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        self.wait_for_input(state, context)
    }

    fn dispatch<'a>(
        &'a mut self,
        state: &'a Self::State,
        context: &'a mut Self::Context,
    ) -> BoxFuture<'a, Result<EventLoopDirective<Self::Event>, BoxError>> {
        self.dispatch_state(state, context)
    }

    fn complete(&self) -> BoxFuture<'_, Result<(), BoxError>> {
        self.write_completion_event()
    }

    fn failure_event(&self, failure: SupervisorFailure) -> Self::Event {
        self.event_for_action_error(failure)
    }
}

/// Gives every [`SelfSupervised`] type its [`run`](SelfSupervisedExt::run).
#[async_trait::async_trait]
pub trait SelfSupervisedExt: SelfSupervised {
    /// Drives the supervisor from `initial_state` until it terminates, in the current task,
    /// without a command channel (every state behaves as
    /// [`CommandPolicy::Ignore`](super::CommandPolicy::Ignore)). Use
    /// [`spawn_supervised`](super::spawn_supervised) for a controllable task.
    ///
    /// Returns `Ok` after `Terminate` wrote the completion record. Failures of the
    /// supervisor's code take the failure path inside the loop; only what that path cannot
    /// absorb is returned. Never panics.
    ///
    /// Cancel safety: not cancel safe. Dropping the future stops the supervisor wherever it
    /// is awaiting, possibly inside an action, and no completion record is written.
    async fn run(
        self,
        initial_state: Self::State,
        context: Self::Context,
    ) -> Result<(), SupervisionError>
    where
        Self: Sized + Send,
    {
        let parts = DriverParts::detached(&initial_state);
        drive::<Self, SelfFlavor>(self, initial_state, context, parts).await
    }
}

impl<T: SelfSupervised> SelfSupervisedExt for T {}
