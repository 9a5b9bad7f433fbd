//! The one supervision loop. `SelfSupervisedExt::run`, `HandlerSupervisedExt::run` and
//! `spawn_supervised` all end up in [`drive`]; the two supervisor traits only differ in the
//! small [`Body`] adapter each implements.
//!
//! Architecture invariant: only this loop calls the machine and executes actions.

use std::error::Error;
use std::future::{pending, Future};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use obzenflow_fsm::{
    ActionError, BoxError, EventVariant, FsmAction, Machine, StateTimeout, StateVariant,
};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::Instrument;

use super::base::{EventLoopDirective, Supervisor};
use super::control::{CommandPolicy, Control};
use super::error::{FailedStep, SupervisionError, SupervisorFailure};
use super::handle::SupervisorStats;
use super::panic::{catch_sync, CatchUnwind, PanicError};

/// A boxed, sendable future borrowing for `'a`: what `async_trait` methods return.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The name used when even `Supervisor::name` panicked.
const UNNAMED_SUPERVISOR: &str = "unnamed";

/// The view of a supervisor the loop needs; implemented once for every `SelfSupervised` type
/// and once for every `HandlerSupervised` type. `Flavor` is a marker that keeps the two
/// blanket implementations apart. Sealed: it lives in a private module.
pub trait Body<Flavor>: Supervisor + Send + Sized {
    /// The supervisor task's span.
    fn supervisor_span(&self) -> tracing::Span;

    /// Forwards to `wait_for_input`.
    fn await_input<'a>(
        &'a mut self,
        state: &'a Self::State,
        context: &'a mut Self::Context,
    ) -> BoxFuture<'a, Result<(), BoxError>>;

    /// Forwards to `dispatch_state`.
    fn dispatch<'a>(
        &'a mut self,
        state: &'a Self::State,
        context: &'a mut Self::Context,
    ) -> BoxFuture<'a, Result<EventLoopDirective<Self::Event>, BoxError>>;

    /// Forwards to `write_completion_event`.
    fn complete(&self) -> BoxFuture<'_, Result<(), BoxError>>;

    /// Forwards to `event_for_action_error`.
    fn failure_event(&self, failure: SupervisorFailure) -> Self::Event;
}

/// Every supervisor [`spawn_supervised`](super::spawn_supervised) accepts: each
/// [`SelfSupervised`](super::SelfSupervised) and each
/// [`HandlerSupervised`](super::HandlerSupervised) type.
///
/// `Flavor` is inferred; it only keeps the two blanket implementations apart. The trait is
/// sealed: implement one of the two supervisor traits instead.
pub trait Supervised<Flavor>: Body<Flavor> {}

impl<S: Body<Flavor>, Flavor> Supervised<Flavor> for S {}

/// What a loop reports through: the command channel, the state watch and the counters.
pub(crate) struct DriverParts<S: Supervisor> {
    pub(crate) control: Control<S::Command>,
    pub(crate) state_sender: watch::Sender<S::State>,
    pub(crate) stats: Arc<SupervisorStats>,
}

impl<S: Supervisor> DriverParts<S> {
    /// Parts for `run`: no command channel, a state watch nobody observes.
    pub(crate) fn detached(initial_state: &S::State) -> Self {
        Self {
            control: Control::detached(),
            state_sender: watch::Sender::new(initial_state.clone()),
            stats: Arc::new(SupervisorStats::default()),
        }
    }
}

/// The name of `supervisor`, or a placeholder if asking panicked.
pub(crate) fn supervisor_name<S: Supervisor>(supervisor: &S) -> String {
    catch_sync(|| supervisor.name().to_owned()).unwrap_or_else(|_| UNNAMED_SUPERVISOR.to_owned())
}

/// Runs `supervisor` from `initial_state` until it terminates or fails, inside its span.
///
/// Never panics: a panic that escapes the guarded callbacks ends the loop with
/// [`SupervisionError::Panicked`]. Whatever ends the loop, `write_completion_event` runs
/// exactly once (see [`Driver::end_with_error`]).
pub(crate) async fn drive<S, Flavor>(
    supervisor: S,
    initial_state: S::State,
    context: S::Context,
    parts: DriverParts<S>,
) -> Result<(), SupervisionError>
where
    S: Body<Flavor>,
{
    let name = supervisor_name(&supervisor);
    let span = match catch_sync(|| supervisor.supervisor_span()) {
        Ok(span) => span,
        Err(source) => {
            let error = SupervisionError::Panicked {
                supervisor: name.clone(),
                source,
            };
            let span = tracing::error_span!("supervisor", supervisor = %name);
            let completion = completion_after_error(&supervisor, &error);
            return finish_after_error(completion, error).instrument(span).await;
        }
    };
    Driver::<S, Flavor>::run(supervisor, name, initial_state, context, parts)
        .instrument(span)
        .await
}

/// Starts ending a loop that failed with `error`: tells the supervisor why and returns its
/// completion, to be awaited by [`finish_after_error`]. A plain function, so that only the
/// boxed (sendable) completion future is held across the await, not `supervisor`.
fn completion_after_error<'a, S, Flavor>(
    supervisor: &'a S,
    error: &SupervisionError,
) -> Option<BoxFuture<'a, Result<(), BoxError>>>
where
    S: Body<Flavor>,
{
    if let Err(panic) = catch_sync(|| supervisor.on_loop_error(error)) {
        tracing::error!(error = %panic, "on_loop_error panicked");
    }
    match catch_sync(|| supervisor.complete()) {
        Ok(completion) => Some(completion),
        Err(panic) => {
            tracing::error!(error = %panic, "write_completion_event panicked after a loop error");
            None
        }
    }
}

/// Writes the completion record of a loop that failed with `error`, logging a failure to,
/// and returns `error`.
async fn finish_after_error(
    completion: Option<BoxFuture<'_, Result<(), BoxError>>>,
    error: SupervisionError,
) -> Result<(), SupervisionError> {
    let Some(completion) = completion else {
        return Err(error);
    };
    match CatchUnwind::new(completion).await {
        Ok(Ok(())) => {}
        Ok(Err(completion)) => tracing::error!(
            error = as_error(&completion),
            "completion record after a loop error could not be written"
        ),
        Err(panic) => tracing::error!(
            error = %panic,
            "write_completion_event panicked after a loop error"
        ),
    }
    Err(error)
}

/// What one iteration waited for.
enum Input<C> {
    /// A command arrived.
    Command(C),
    /// Every command sender is gone.
    ControlClosed,
    /// The state's deadline passed.
    DeadlineElapsed,
    /// `wait_for_input` returned: dispatch.
    Ready,
    /// `wait_for_input` failed or panicked.
    WaitFailed(SupervisorFailure),
}

/// Whether the loop goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

/// The current state's deadline, armed whenever the machine's generation changes.
struct Deadline<E> {
    generation: Option<u64>,
    armed: Option<(Instant, E)>,
}

impl<E> Deadline<E> {
    fn new() -> Self {
        Self {
            generation: None,
            armed: None,
        }
    }

    fn is_armed_for(&self, generation: u64) -> bool {
        self.generation == Some(generation)
    }

    /// Arms `timeout` from now; a timeout too far away to represent never fires.
    fn arm(&mut self, generation: u64, timeout: Option<StateTimeout<E>>) {
        self.generation = Some(generation);
        self.armed = timeout.and_then(|timeout| {
            let at = Instant::now().checked_add(timeout.after)?;
            Some((at, timeout.event))
        });
    }

    fn at(&self) -> Option<Instant> {
        self.armed.as_ref().map(|(at, _)| *at)
    }

    /// The event to feed; the deadline fires once per state entry.
    fn take_event(&mut self) -> Option<E> {
        self.armed.take().map(|(_, event)| event)
    }
}

/// Resolves at `deadline`, or never without one.
///
/// Cancel safety: cancel safe; it holds nothing but a timer.
async fn deadline_elapsed(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => pending().await,
    }
}

/// Views a boxed error as a plain error for logging and describing.
fn as_error(error: &BoxError) -> &(dyn Error + 'static) {
    &**error
}

/// The loop's state: the supervisor, its machine and context, and the reporting parts.
struct Driver<S: Supervisor, Flavor> {
    supervisor: S,
    name: String,
    machine: Machine<S::Machine>,
    context: S::Context,
    control: Control<S::Command>,
    deadline: Deadline<S::Event>,
    published_generation: u64,
    state_sender: watch::Sender<S::State>,
    stats: Arc<SupervisorStats>,
    flavor: PhantomData<fn() -> Flavor>,
}

impl<S: Body<Flavor>, Flavor> Driver<S, Flavor> {
    /// Builds the machine and runs the loop, logging how it ended. A panic anywhere in the
    /// loop (beyond the guarded callbacks: `command_policy`, `event_for_command`, a state's
    /// timeout, the failure transition, ...) ends it like any other loop error, with the
    /// supervisor still at hand to write its completion record.
    async fn run(
        supervisor: S,
        name: String,
        initial_state: S::State,
        context: S::Context,
        parts: DriverParts<S>,
    ) -> Result<(), SupervisionError> {
        let machine = match catch_sync(|| supervisor.build_state_machine(initial_state)) {
            Ok(machine) => machine,
            Err(source) => {
                let error = SupervisionError::Panicked {
                    supervisor: name,
                    source,
                };
                tracing::error!(
                    error = &error as &(dyn Error + 'static),
                    "supervisor failed"
                );
                let completion = completion_after_error(&supervisor, &error);
                return finish_after_error(completion, error).await;
            }
        };
        let mut driver = Self {
            published_generation: machine.generation(),
            supervisor,
            name,
            machine,
            context,
            control: parts.control,
            deadline: Deadline::new(),
            state_sender: parts.state_sender,
            stats: parts.stats,
            flavor: PhantomData,
        };
        let looped = CatchUnwind::new(Box::pin(driver.run_until_terminated())).await;
        let outcome = looped.unwrap_or_else(|source| {
            Err(SupervisionError::Panicked {
                supervisor: driver.name.clone(),
                source,
            })
        });
        match outcome {
            Ok(()) => {
                tracing::info!(state = driver.state_name(), "supervisor terminated");
                Ok(())
            }
            Err(error) => {
                tracing::error!(
                    state = driver.state_name(),
                    error = &error as &(dyn Error + 'static),
                    "supervisor failed"
                );
                driver.end_with_error(error).await
            }
        }
    }

    /// Ends the loop with `error`: unless `write_completion_event` already ran (after a
    /// `Terminate`), the supervisor learns why and writes its completion record now, so a loop
    /// never ends without one.
    async fn end_with_error(&mut self, error: SupervisionError) -> Result<(), SupervisionError> {
        // Only a failed `write_completion_event` after `Terminate` ends the loop with
        // `Completion`: it already ran, and runs once.
        if matches!(error, SupervisionError::Completion { .. }) {
            return Err(error);
        }
        let completion = completion_after_error(&self.supervisor, &error);
        finish_after_error(completion, error).await
    }

    async fn run_until_terminated(&mut self) -> Result<(), SupervisionError> {
        tracing::info!(state = self.state_name(), "supervisor started");
        // The watch was created holding the initial state; refresh it from the machine without
        // a change notification, so observers never see the same state announced twice.
        let initial_state = self.machine.state().clone();
        self.state_sender.send_if_modified(|published| {
            *published = initial_state;
            false
        });
        let entry_actions = self.machine.enter_initial(&self.context);
        self.execute(entry_actions).await?;
        loop {
            self.stats.record_iteration();
            self.rearm_deadline();
            let input = self.next_input().await;
            if self.handle_input(input).await? == Flow::Stop {
                return Ok(());
            }
            // Fairness, not waiting: this only yields once the task has used up its
            // cooperative budget, so a supervisor that always has work cannot starve others.
            tokio::task::coop::consume_budget().await;
        }
    }

    fn state_name(&self) -> &'static str {
        self.machine.state().variant_name()
    }

    fn rearm_deadline(&mut self) {
        let generation = self.machine.generation();
        if self.deadline.is_armed_for(generation) {
            return;
        }
        let timeout = self.machine.timeout(&self.context);
        if let Some(timeout) = &timeout {
            tracing::debug!(
                state = self.state_name(),
                after = ?timeout.after,
                event = timeout.event.variant_name(),
                "state deadline armed"
            );
        }
        self.deadline.arm(generation, timeout);
    }

    /// Waits for the next input as the current state's command policy says.
    async fn next_input(&mut self) -> Input<S::Command> {
        let policy = self.control.policy(&self.supervisor, self.machine.state());
        tracing::trace!(state = self.state_name(), policy = ?policy, "waiting for input");
        match policy {
            CommandPolicy::Await => self.await_command().await,
            CommandPolicy::Select => self.select_input(true).await,
            CommandPolicy::Ignore => self.select_input(false).await,
        }
    }

    async fn await_command(&mut self) -> Input<S::Command> {
        let deadline = self.deadline.at();
        tokio::select! {
            biased;
            command = self.control.recv() => command.map_or(Input::ControlClosed, Input::Command),
            () = deadline_elapsed(deadline) => Input::DeadlineElapsed,
        }
    }

    /// Races commands (when `with_commands`), the deadline and `wait_for_input`, in that order
    /// of priority. Every arm is cancel safe; `dispatch_state` runs after, outside the race.
    async fn select_input(&mut self, with_commands: bool) -> Input<S::Command> {
        let deadline = self.deadline.at();
        let state = self.machine.state();
        let waited = CatchUnwind::new(self.supervisor.await_input(state, &mut self.context));
        tokio::select! {
            biased;
            command = self.control.recv(), if with_commands => {
                command.map_or(Input::ControlClosed, Input::Command)
            }
            () = deadline_elapsed(deadline) => Input::DeadlineElapsed,
            waited = waited => input_outcome(waited, state.variant_name()),
        }
    }

    async fn handle_input(&mut self, input: Input<S::Command>) -> Result<Flow, SupervisionError> {
        match input {
            Input::Command(command) => self.on_command(command).await,
            Input::ControlClosed => self.on_control_closed().await,
            Input::DeadlineElapsed => self.on_deadline().await,
            Input::Ready => self.dispatch().await,
            Input::WaitFailed(failure) => self.fail(failure).await.map(|()| Flow::Continue),
        }
    }

    async fn on_command(&mut self, command: S::Command) -> Result<Flow, SupervisionError> {
        let event = self.supervisor.event_for_command(command);
        tracing::debug!(
            state = self.state_name(),
            event = event.variant_name(),
            "command received"
        );
        self.feed(event).await?;
        Ok(Flow::Continue)
    }

    async fn on_control_closed(&mut self) -> Result<Flow, SupervisionError> {
        self.control.close();
        let event = self.supervisor.event_for_control_closed();
        tracing::debug!(
            state = self.state_name(),
            event = event.as_ref().map(EventVariant::variant_name),
            "control channel closed"
        );
        if let Some(event) = event {
            self.feed(event).await?;
        }
        Ok(Flow::Continue)
    }

    async fn on_deadline(&mut self) -> Result<Flow, SupervisionError> {
        if let Some(event) = self.deadline.take_event() {
            tracing::debug!(
                state = self.state_name(),
                event = event.variant_name(),
                "state deadline elapsed"
            );
            self.feed(event).await?;
        }
        Ok(Flow::Continue)
    }

    /// Calls `dispatch_state` (never cancelled) and follows its directive.
    async fn dispatch(&mut self) -> Result<Flow, SupervisionError> {
        let state = self.machine.state();
        let state_name = state.variant_name();
        let dispatched = CatchUnwind::new(self.supervisor.dispatch(state, &mut self.context)).await;
        let failure = match dispatched {
            Ok(Ok(directive)) => return self.follow(directive).await,
            Ok(Err(error)) => {
                tracing::error!(
                    state = state_name,
                    error = as_error(&error),
                    "dispatch_state failed"
                );
                SupervisorFailure::new(FailedStep::Dispatch, state_name, error)
            }
            Err(panic) => {
                tracing::error!(state = state_name, error = %panic, "dispatch_state panicked");
                SupervisorFailure::panicked(FailedStep::Dispatch, state_name, panic)
            }
        };
        self.fail(failure).await?;
        Ok(Flow::Continue)
    }

    async fn follow(
        &mut self,
        directive: EventLoopDirective<S::Event>,
    ) -> Result<Flow, SupervisionError> {
        match directive {
            EventLoopDirective::Continue => {
                tracing::trace!(state = self.state_name(), "dispatch continues");
                Ok(Flow::Continue)
            }
            EventLoopDirective::Transition(event) => {
                self.feed(event).await?;
                Ok(Flow::Continue)
            }
            EventLoopDirective::Terminate => {
                self.terminate().await?;
                Ok(Flow::Stop)
            }
        }
    }

    /// Feeds a regular event; an unhandled one ends the loop, a panicking transition takes the
    /// failure path.
    async fn feed(&mut self, event: S::Event) -> Result<(), SupervisionError> {
        let from = self.state_name();
        let event_name = event.variant_name();
        let handled = catch_sync(|| self.machine.handle(event, &mut self.context));
        match handled {
            Ok(Ok(actions)) => {
                self.after_handled(from, event_name);
                self.execute(actions).await
            }
            Ok(Err(source)) => Err(SupervisionError::Fsm {
                supervisor: self.name.clone(),
                state: from,
                source,
            }),
            Err(panic) => {
                tracing::error!(
                    state = from,
                    event = event_name,
                    error = %panic,
                    "transition panicked"
                );
                let step = FailedStep::Transition(event_name);
                self.fail(SupervisorFailure::panicked(step, from, panic))
                    .await
            }
        }
    }

    /// Publishes the state and logs the transition if the machine moved.
    fn after_handled(&mut self, from: &'static str, event: &'static str) {
        let generation = self.machine.generation();
        if generation == self.published_generation {
            tracing::trace!(state = from, event, "event handled in place");
            return;
        }
        self.published_generation = generation;
        self.stats.record_transition();
        self.state_sender.send_replace(self.machine.state().clone());
        tracing::debug!(from, event, to = self.state_name(), "transition");
    }

    /// Executes `actions` in order. The first one that fails or panics takes the failure path
    /// and the rest are abandoned: they were planned on the assumption that it succeeded.
    async fn execute(&mut self, actions: Vec<S::Action>) -> Result<(), SupervisionError> {
        let mut pending_actions = actions.into_iter();
        while let Some(action) = pending_actions.next() {
            let name = action.name();
            let executed = CatchUnwind::new(action.execute(&mut self.context)).await;
            let state = self.state_name();
            let failure = match executed {
                Ok(Ok(())) => {
                    tracing::trace!(state, action = name, "action executed");
                    continue;
                }
                Ok(Err(error)) => {
                    let error_ref: &(dyn Error + 'static) = &error;
                    tracing::error!(
                        state,
                        action = name,
                        abandoned = pending_actions.len(),
                        error = error_ref,
                        "action failed"
                    );
                    SupervisorFailure::action(name, state, error)
                }
                Err(panic) => {
                    tracing::error!(
                        state,
                        action = name,
                        abandoned = pending_actions.len(),
                        error = %panic,
                        "action panicked"
                    );
                    SupervisorFailure::panicked(FailedStep::Action(name), state, panic)
                }
            };
            return self.fail(failure).await;
        }
        Ok(())
    }

    /// The failure path: feeds the supervisor's failure event and runs its actions. Nothing
    /// here recurses into the failure path again.
    ///
    /// A failure in a terminal state (an entry action of the transition into it, or a
    /// `dispatch_state` or `wait_for_input` there) ends the loop with
    /// [`SupervisionError::FailedInTerminalState`]: a terminal state has nowhere to go, so
    /// feeding it the failure event would swallow the failure (and a dispatch that keeps
    /// failing would fail forever).
    async fn fail(&mut self, failure: SupervisorFailure) -> Result<(), SupervisionError> {
        let from = self.state_name();
        if self.machine.is_terminal() {
            return Err(SupervisionError::FailedInTerminalState {
                supervisor: self.name.clone(),
                state: from,
                failure,
            });
        }
        let event = self.supervisor.failure_event(failure);
        let event_name = event.variant_name();
        let actions = match catch_sync(|| self.machine.handle(event, &mut self.context)) {
            Ok(Ok(actions)) => actions,
            Ok(Err(source)) => {
                return Err(SupervisionError::UnhandledFailure {
                    supervisor: self.name.clone(),
                    state: from,
                    source,
                })
            }
            Err(source) => {
                return Err(SupervisionError::Panicked {
                    supervisor: self.name.clone(),
                    source,
                })
            }
        };
        self.after_handled(from, event_name);
        self.execute_failure_actions(actions).await
    }

    async fn execute_failure_actions(
        &mut self,
        actions: Vec<S::Action>,
    ) -> Result<(), SupervisionError> {
        for action in actions {
            let name = action.name();
            let source = match CatchUnwind::new(action.execute(&mut self.context)).await {
                Ok(Ok(())) => continue,
                Ok(Err(error)) => error,
                Err(panic) => ActionError::new(panic),
            };
            return Err(SupervisionError::FailureActionFailed {
                supervisor: self.name.clone(),
                state: self.state_name(),
                action: name,
                source,
            });
        }
        Ok(())
    }

    /// Writes the completion record, exactly once, after a `Terminate` directive.
    async fn terminate(&mut self) -> Result<(), SupervisionError> {
        let state = self.state_name();
        tracing::info!(state, "supervisor terminating");
        let source: BoxError = match CatchUnwind::new(self.supervisor.complete()).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(error)) => error,
            Err(panic) => Box::new(panic),
        };
        Err(SupervisionError::Completion {
            supervisor: self.name.clone(),
            state,
            source,
        })
    }
}

/// Turns the outcome of `wait_for_input` into an input, logging a failure.
fn input_outcome<C>(
    waited: Result<Result<(), BoxError>, PanicError>,
    state: &'static str,
) -> Input<C> {
    match waited {
        Ok(Ok(())) => Input::Ready,
        Ok(Err(error)) => {
            tracing::error!(state, error = as_error(&error), "wait_for_input failed");
            Input::WaitFailed(SupervisorFailure::new(
                FailedStep::WaitForInput,
                state,
                error,
            ))
        }
        Err(panic) => {
            tracing::error!(state, error = %panic, "wait_for_input panicked");
            Input::WaitFailed(SupervisorFailure::panicked(
                FailedStep::WaitForInput,
                state,
                panic,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn deadline_arms_once_per_generation_and_fires_once() {
        let mut deadline = Deadline::new();
        assert!(!deadline.is_armed_for(0));
        let start = Instant::now();
        deadline.arm(
            0,
            Some(StateTimeout::new(Duration::from_secs(5), "expired")),
        );
        assert!(deadline.is_armed_for(0));
        assert_eq!(deadline.at(), Some(start + Duration::from_secs(5)));
        deadline_elapsed(deadline.at()).await;
        assert_eq!(Instant::now() - start, Duration::from_secs(5));
        assert_eq!(deadline.take_event(), Some("expired"));
        assert_eq!(deadline.take_event(), None);
        assert_eq!(deadline.at(), None);
    }

    #[test]
    fn unrepresentable_deadline_never_fires() {
        let mut deadline = Deadline::new();
        deadline.arm(3, Some(StateTimeout::new(Duration::MAX, ())));
        assert!(deadline.is_armed_for(3));
        assert_eq!(deadline.at(), None);
    }
}
