//! [`HandlerSupervised`]: supervisors that delegate the work to a user handler (the stage
//! supervisors), and their [`run`](HandlerSupervisedExt::run).

use obzenflow_core::{ChainEvent, StageId, WriterId};
use obzenflow_fsm::BoxError;

use super::base::{EventLoopDirective, Supervisor};
use super::driver::{drive, Body, BoxFuture, DriverParts};
use super::error::{SupervisionError, SupervisorFailure};

/// A supervisor that runs a user handler for one stage: what to do in each state is
/// [`dispatch_state`](HandlerSupervised::dispatch_state), which calls into the handler.
///
/// Implementing it gives [`HandlerSupervisedExt::run`] and
/// [`spawn_supervised`](super::spawn_supervised); there is no other way to drive the machine.
///
/// # Example
///
/// The countdown of the [module example](crate::supervised_base) as a stage whose handler
/// decides when the count is over (the machine and [`Supervisor`] implementation are hidden):
///
/// ```
#[doc = include_str!("doc_countdown.txt")]
/// use obzenflow_core::StageId;
/// use obzenflow_runtime::supervised_base::{HandlerSupervised, HandlerSupervisedExt};
///
/// /// The user handler: says whether `remaining` ticks mean the count is over.
/// pub struct FinishAtZero;
///
/// impl FinishAtZero {
///     fn is_over(&self, remaining: u32) -> bool {
///         remaining == 0
///     }
/// }
///
/// pub struct CountdownStage {
///     countdown: Countdown,
///     handler: FinishAtZero,
///     stage_id: StageId,
/// }
///
/// # impl Supervisor for CountdownStage {
/// #     type State = Phase;
/// #     type Event = PhaseEvent;
/// #     type Context = Vec<&'static str>;
/// #     type Action = Announce;
/// #     type Machine = CountdownMachine;
/// #     type Command = CountdownCommand;
/// #     fn build_state_machine(&self, initial_state: Phase) -> Machine<CountdownMachine> {
/// #         self.countdown.build_state_machine(initial_state)
/// #     }
/// #     fn name(&self) -> &str {
/// #         "countdown-stage"
/// #     }
/// #     fn event_for_command(&self, command: CountdownCommand) -> PhaseEvent {
/// #         self.countdown.event_for_command(command)
/// #     }
/// # }
/// #[async_trait::async_trait]
/// impl HandlerSupervised for CountdownStage {
///     type Handler = FinishAtZero;
///
///     async fn dispatch_state(
///         &mut self,
///         state: &Phase,
///         _context: &mut Vec<&'static str>,
///     ) -> Result<EventLoopDirective<PhaseEvent>, BoxError> {
///         Ok(match state {
///             Phase::Idle => EventLoopDirective::Transition(PhaseEvent::Start),
///             Phase::Counting if self.handler.is_over(self.countdown.remaining) => {
///                 EventLoopDirective::Transition(PhaseEvent::Finished)
///             }
///             Phase::Counting => {
///                 self.countdown.remaining -= 1;
///                 EventLoopDirective::Transition(PhaseEvent::Tick)
///             }
///             Phase::Done | Phase::Failed => EventLoopDirective::Terminate,
///         })
///     }
///
///     // Every state's dispatch has work or moves on: nothing to wait for.
///     async fn wait_for_input(
///         &mut self,
///         _state: &Phase,
///         _context: &mut Vec<&'static str>,
///     ) -> Result<(), BoxError> {
///         Ok(())
///     }
///
///     fn writer_id(&self) -> WriterId {
///         WriterId::Stage(self.stage_id)
///     }
///
///     fn stage_id(&self) -> StageId {
///         self.stage_id
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
/// let stage = CountdownStage {
///     countdown: Countdown { remaining: 2 },
///     handler: FinishAtZero,
///     stage_id: StageId::new(),
/// };
/// let runtime = tokio::runtime::Builder::new_current_thread()
///     .enable_all()
///     .build()?;
/// runtime.block_on(stage.run(Phase::Idle, Vec::new()))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[async_trait::async_trait]
pub trait HandlerSupervised: Supervisor {
    /// The user handler this supervisor runs.
    type Handler: Send + Sync;

    /// Does the current state's work and says what happens next.
    ///
    /// An `Err` (or a panic, for example in the handler) becomes
    /// [`event_for_action_error`](Self::event_for_action_error) and takes the failure path.
    /// Waiting for input belongs in [`wait_for_input`](Self::wait_for_input).
    ///
    /// Cancel safety: the loop never cancels it, so it may leave work half done across awaits
    /// (a batch half appended is always finished). Dropping the `run` future drops it too.
    async fn dispatch_state(
        &mut self,
        state: &Self::State,
        context: &mut Self::Context,
    ) -> Result<EventLoopDirective<Self::Event>, BoxError>;

    /// Waits until `dispatch_state` has something to do in `state` (typically: the upstream
    /// journal has new records). An `Err` (or a panic) takes the failure path like a failed
    /// dispatch.
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

    /// Who this stage writes as.
    fn writer_id(&self) -> WriterId;

    /// The stage this supervisor runs.
    fn stage_id(&self) -> StageId;

    /// The kind of stage it runs (`source`, `transform`, ...), a field of its tracing span.
    /// The default says only that it runs a handler.
    fn stage_kind(&self) -> &str {
        "handler"
    }

    /// Writes the stage's completion record; called exactly once, whatever ends the loop: after a
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

    /// Runs `next` on `event` unless the event already carries an error status, in which case
    /// it is passed through untouched so that it reaches the error lane as it is.
    fn run_if_not_error<F>(&self, event: ChainEvent, next: F) -> Vec<ChainEvent>
    where
        F: FnOnce(ChainEvent) -> Vec<ChainEvent>,
    {
        if event.processing_info.status.is_error() {
            vec![event]
        } else {
            next(event)
        }
    }
}

/// Marks the [`HandlerSupervised`] implementation of the loop's adapter.
pub enum HandlerFlavor {}

impl<S> Body<HandlerFlavor> for S
where
    S: HandlerSupervised + Send,
{
    fn supervisor_span(&self) -> tracing::Span {
        tracing::info_span!(
            "supervisor",
            supervisor = %self.name(),
            writer_id = %self.writer_id(),
            stage_id = %self.stage_id(),
            stage_kind = %self.stage_kind(),
            stage_name = %self.name(),
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

/// Gives every [`HandlerSupervised`] type its [`run`](HandlerSupervisedExt::run).
#[async_trait::async_trait]
pub trait HandlerSupervisedExt: HandlerSupervised {
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
        drive::<Self, HandlerFlavor>(self, initial_state, context, parts).await
    }
}

impl<T: HandlerSupervised> HandlerSupervisedExt for T {}
