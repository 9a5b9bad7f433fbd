//! The example supervisor the supervision tests drive, once as a `SelfSupervised` and once as a
//! `HandlerSupervised` type, with a scripted input stream and a log of everything it did.
//!
//! Lifecycle: `Created` (a gate awaiting `Start`) -> `Running` -> `Draining` -> `Drained`, with
//! `Failed` reachable from every non-terminal state except `Created`, which has nothing that
//! can fail and so does not handle the failure event (the unhandled-failure tests rely on it).
// Each test binary uses a different subset of this module.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use obzenflow_core::{ErrorChain, StageId, SystemComponent, WriterId};
use obzenflow_fsm::{
    ActionError, EventVariant, FsmAction, Machine, StateMachine, StateTimeout, StateVariant,
    Transition,
};
use obzenflow_runtime::supervised_base::{
    spawn_supervised, BoxError, CommandPolicy, EventLoopDirective, FailedStep, HandlerSupervised,
    HandlerSupervisedExt, SelfSupervised, SelfSupervisedExt, SupervisionError, Supervisor,
    SupervisorConfig, SupervisorFailure, SupervisorHandle,
};
use tokio::sync::{mpsc, watch};

/// The example supervisor's name.
pub const NAME: &str = "example";

/// How long `Draining` may last unless a test says otherwise.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExampleState {
    Created,
    Running,
    Draining,
    Drained,
    Failed { reason: String },
}

impl ExampleState {
    pub fn failed(reason: impl Into<String>) -> Self {
        Self::Failed {
            reason: reason.into(),
        }
    }
}

impl StateVariant for ExampleState {
    fn variant_name(&self) -> &'static str {
        match self {
            Self::Created => "Created",
            Self::Running => "Running",
            Self::Draining => "Draining",
            Self::Drained => "Drained",
            Self::Failed { .. } => "Failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExampleEvent {
    Start,
    /// Do some work in place: the machine stays and returns these actions.
    Work(Vec<ExampleAction>),
    BeginDrain,
    Finish,
    ControlClosed,
    DrainTimedOut,
    Abort,
    Failure(SupervisorFailure),
}

impl EventVariant for ExampleEvent {
    fn variant_name(&self) -> &'static str {
        match self {
            Self::Start => "Start",
            Self::Work(_) => "Work",
            Self::BeginDrain => "BeginDrain",
            Self::Finish => "Finish",
            Self::ControlClosed => "ControlClosed",
            Self::DrainTimedOut => "DrainTimedOut",
            Self::Abort => "Abort",
            Self::Failure(_) => "Failure",
        }
    }
}

impl ExampleEvent {
    /// One sample of every event, for diagrams.
    pub fn samples() -> Vec<ExampleEvent> {
        vec![
            Self::Start,
            Self::Work(Vec::new()),
            Self::BeginDrain,
            Self::Finish,
            Self::ControlClosed,
            Self::DrainTimedOut,
            Self::Abort,
            Self::Failure(SupervisorFailure::new(
                FailedStep::Dispatch,
                "Running",
                "sample",
            )),
        ]
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExampleAction {
    /// Logs the text.
    Record(&'static str),
    /// Logs `enter <state>`; every state's entry action.
    Enter(&'static str),
    /// Logs `failure: <message>`; the failure transition's action.
    RecordFailure(String),
    /// Keeps the failure event's typed failure in the log; the failure transition's action.
    KeepFailure(SupervisorFailure),
    /// Fails with the text as the error message.
    Fail(&'static str),
    /// Panics with the text.
    Panic(&'static str),
}

#[async_trait::async_trait]
impl FsmAction for ExampleAction {
    type Context = ExampleContext;

    async fn execute(&self, context: &mut ExampleContext) -> Result<(), ActionError> {
        match self {
            Self::Record(text) => context.log.push(*text),
            Self::Enter(state) => context.log.push(format!("enter {state}")),
            Self::RecordFailure(message) => context.log.push(format!("failure: {message}")),
            Self::KeepFailure(failure) => context.log.keep(failure.clone()),
            Self::Fail(text) => return Err(ActionError::msg(*text)),
            Self::Panic(text) => panic!("{text}"),
        }
        Ok(())
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Record(_) => "Record",
            Self::Enter(_) => "Enter",
            Self::RecordFailure(_) => "RecordFailure",
            Self::KeepFailure(_) => "KeepFailure",
            Self::Fail(_) => "Fail",
            Self::Panic(_) => "Panic",
        }
    }
}

/// Commands the example accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExampleCommand {
    Start,
    BeginDrain,
    Abort,
}

/// A log of what the supervisor did that tests can wait on.
#[derive(Clone)]
pub struct Log {
    entries: Arc<Mutex<Vec<String>>>,
    length: Arc<watch::Sender<usize>>,
    failures: Arc<Mutex<Vec<SupervisorFailure>>>,
}

impl Log {
    pub fn new() -> Self {
        Self {
            entries: Arc::new(Mutex::new(Vec::new())),
            length: Arc::new(watch::Sender::new(0)),
            failures: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Keeps a failure event's failure, as the machine received it.
    pub fn keep(&self, failure: SupervisorFailure) {
        self.failures.lock().unwrap().push(failure);
    }

    /// The failures the machine received, in order.
    pub fn failures(&self) -> Vec<SupervisorFailure> {
        self.failures.lock().unwrap().clone()
    }

    pub fn push(&self, entry: impl Into<String>) {
        let mut entries = self.entries.lock().unwrap();
        entries.push(entry.into());
        self.length.send_replace(entries.len());
    }

    pub fn entries(&self) -> Vec<String> {
        self.entries.lock().unwrap().clone()
    }

    pub fn contains(&self, entry: &str) -> bool {
        self.entries
            .lock()
            .unwrap()
            .iter()
            .any(|logged| logged == entry)
    }

    /// Waits until `entry` has been logged.
    pub async fn wait_for(&self, entry: &str) {
        let mut length = self.length.subscribe();
        length
            .wait_for(|_| self.contains(entry))
            .await
            .expect("the log outlives its waiters");
    }
}

pub struct ExampleContext {
    pub log: Log,
    pub drain_timeout: Duration,
    /// Makes the failure transition return an action that fails.
    pub broken_failure_handling: bool,
    /// Makes the transition function panic on `Work`.
    pub panicking_transition: bool,
    /// Gives `Drained` a second entry action, which fails.
    pub failing_drained_entry: bool,
    /// Makes `timeout` panic in `Draining`.
    pub panicking_timeout: bool,
}

impl ExampleContext {
    pub fn new(log: Log) -> Self {
        Self {
            log,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            broken_failure_handling: false,
            panicking_transition: false,
            failing_drained_entry: false,
            panicking_timeout: false,
        }
    }
}

pub struct ExampleMachine;

impl ExampleMachine {
    fn fail(reason: &str, context: &ExampleContext) -> Transition<ExampleState, ExampleAction> {
        let mut actions = vec![ExampleAction::RecordFailure(reason.to_owned())];
        if context.broken_failure_handling {
            actions.push(ExampleAction::Fail("failure handling broke"));
        }
        Transition::to_with(ExampleState::failed(reason), actions)
    }

    /// The failure path for a failure the loop caught: its text in the state and the log, the
    /// failure itself kept for the test.
    fn fail_with(
        failure: &SupervisorFailure,
        context: &ExampleContext,
    ) -> Transition<ExampleState, ExampleAction> {
        let reason = ErrorChain::new(failure).to_string();
        let mut actions = vec![
            ExampleAction::KeepFailure(failure.clone()),
            ExampleAction::RecordFailure(reason.clone()),
        ];
        if context.broken_failure_handling {
            actions.push(ExampleAction::Fail("failure handling broke"));
        }
        Transition::to_with(ExampleState::failed(reason), actions)
    }
}

impl StateMachine for ExampleMachine {
    type State = ExampleState;
    type Event = ExampleEvent;
    type Context = ExampleContext;
    type Action = ExampleAction;

    fn transition(
        state: &ExampleState,
        event: &ExampleEvent,
        context: &mut ExampleContext,
    ) -> Transition<ExampleState, ExampleAction> {
        use ExampleEvent as E;
        use ExampleState as S;
        match (state, event) {
            (S::Created, E::Start) => Transition::to(S::Running),
            (S::Created, E::ControlClosed) => Self::fail("control closed before start", context),
            (S::Running | S::Draining | S::Created, E::Abort) => Self::fail("aborted", context),
            (S::Running | S::Draining, E::Work(_)) if context.panicking_transition => {
                panic!("transition exploded")
            }
            (S::Running | S::Draining, E::Work(actions)) => Transition::stay_with(actions.clone()),
            (S::Running, E::BeginDrain | E::ControlClosed) => Transition::to(S::Draining),
            (S::Running | S::Draining, E::Failure(failure)) => Self::fail_with(failure, context),
            (S::Draining, E::BeginDrain | E::ControlClosed) => Transition::stay(),
            (S::Draining, E::Finish) => Transition::to(S::Drained),
            (S::Draining, E::DrainTimedOut) => Self::fail("drain timed out", context),
            (
                S::Created,
                E::Work(_) | E::BeginDrain | E::Finish | E::DrainTimedOut | E::Failure(_),
            )
            | (S::Running, E::Start | E::Finish | E::DrainTimedOut)
            | (S::Draining, E::Start)
            | (S::Drained | S::Failed { .. }, _) => Transition::Unhandled,
        }
    }

    fn on_entry(state: &ExampleState, context: &ExampleContext) -> Vec<ExampleAction> {
        let mut actions = vec![ExampleAction::Enter(state.variant_name())];
        if context.failing_drained_entry && *state == ExampleState::Drained {
            actions.push(ExampleAction::Fail("cannot record the drained state"));
        }
        actions
    }

    fn is_terminal(state: &ExampleState) -> bool {
        matches!(state, ExampleState::Drained | ExampleState::Failed { .. })
    }

    fn timeout(
        state: &ExampleState,
        context: &ExampleContext,
    ) -> Option<StateTimeout<ExampleEvent>> {
        match state {
            ExampleState::Draining if context.panicking_timeout => panic!("timeout exploded"),
            ExampleState::Draining => Some(StateTimeout::new(
                context.drain_timeout,
                ExampleEvent::DrainTimedOut,
            )),
            ExampleState::Created
            | ExampleState::Running
            | ExampleState::Drained
            | ExampleState::Failed { .. } => None,
        }
    }
}

/// One scripted input, consumed in `Running` and `Draining`.
#[derive(Debug)]
pub enum Step {
    /// `dispatch_state` returns `Transition(event)`.
    Emit(ExampleEvent),
    /// `dispatch_state` returns `Continue`.
    Continue,
    /// `dispatch_state` fails with this message.
    Fail(&'static str),
    /// `dispatch_state` fails with this error of the supervisor's own type.
    FailTyped(ReadFailed),
    /// `dispatch_state` panics with this message.
    Panic(&'static str),
    /// `wait_for_input` fails with this message.
    FailWaiting(&'static str),
    /// `wait_for_input` panics with this message.
    PanicWaiting(&'static str),
}

/// A supervisor callback the loop does not guard one by one, made to panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PanicSite {
    /// `build_state_machine`, before the loop starts.
    BuildStateMachine,
    /// `command_policy`, asked every iteration.
    CommandPolicy,
    /// `event_for_command`, when a command arrives.
    EventForCommand,
}

/// An error of the example's own type: what a supervisor's code returns, which must reach
/// the failure event with its type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sensor {sensor} is unplugged")]
pub struct Unplugged {
    pub sensor: u32,
}

/// The example's error for a failed read, caused by an [`Unplugged`] sensor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read the sensors")]
pub struct ReadFailed(#[source] pub Unplugged);

/// What `write_completion_event` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    Succeed,
    Fail,
    Panic,
}

/// The logic both flavors share.
pub struct ExampleCore {
    steps: mpsc::UnboundedReceiver<Step>,
    pending: Option<Step>,
    input_ended: bool,
    gate_step: Option<Step>,
    closed_event: Option<ExampleEvent>,
    completion: Completion,
    completions: Arc<AtomicUsize>,
    log: Log,
    stage_id: StageId,
    /// Makes `dispatch_state` fail in terminal states instead of terminating.
    failing_terminal_dispatch: bool,
    /// The callback that panics, if any.
    panic_site: Option<PanicSite>,
}

impl ExampleCore {
    fn panic_at(&self, site: PanicSite) {
        if self.panic_site == Some(site) {
            panic!("{site:?} exploded");
        }
    }

    fn build_state_machine(&self, initial_state: ExampleState) -> Machine<ExampleMachine> {
        self.panic_at(PanicSite::BuildStateMachine);
        Machine::new(initial_state)
    }

    fn command_policy(&self, state: &ExampleState) -> CommandPolicy {
        self.panic_at(PanicSite::CommandPolicy);
        match state {
            ExampleState::Created => CommandPolicy::Await,
            ExampleState::Running | ExampleState::Draining => CommandPolicy::Select,
            ExampleState::Drained | ExampleState::Failed { .. } => CommandPolicy::Ignore,
        }
    }

    fn event_for_command(&self, command: ExampleCommand) -> ExampleEvent {
        self.panic_at(PanicSite::EventForCommand);
        match command {
            ExampleCommand::Start => ExampleEvent::Start,
            ExampleCommand::BeginDrain => ExampleEvent::BeginDrain,
            ExampleCommand::Abort => ExampleEvent::Abort,
        }
    }

    fn event_for_control_closed(&self) -> Option<ExampleEvent> {
        self.closed_event.clone()
    }

    /// Cancel safe: a step is only taken from the channel when `recv` resolves.
    async fn wait_for_input(&mut self, state: &ExampleState) -> Result<(), BoxError> {
        let consumes_steps = matches!(state, ExampleState::Running | ExampleState::Draining);
        if !consumes_steps || self.pending.is_some() || self.input_ended {
            return Ok(());
        }
        match self.steps.recv().await {
            None => self.input_ended = true,
            Some(Step::FailWaiting(message)) => return Err(message.into()),
            Some(Step::PanicWaiting(message)) => panic!("{message}"),
            Some(step) => self.pending = Some(step),
        }
        Ok(())
    }

    fn dispatch_state(
        &mut self,
        state: &ExampleState,
    ) -> Result<EventLoopDirective<ExampleEvent>, BoxError> {
        match state {
            ExampleState::Created => match self.gate_step.take() {
                Some(step) => Self::perform(step),
                None => Ok(EventLoopDirective::Transition(ExampleEvent::Start)),
            },
            ExampleState::Running | ExampleState::Draining => self.dispatch_input(state),
            ExampleState::Drained | ExampleState::Failed { .. }
                if self.failing_terminal_dispatch =>
            {
                self.log.push("terminal dispatch failed");
                Err("the terminal record cannot be written".into())
            }
            ExampleState::Drained | ExampleState::Failed { .. } => {
                Ok(EventLoopDirective::Terminate)
            }
        }
    }

    fn dispatch_input(
        &mut self,
        state: &ExampleState,
    ) -> Result<EventLoopDirective<ExampleEvent>, BoxError> {
        match self.pending.take() {
            Some(step) => Self::perform(step),
            None if self.input_ended && *state == ExampleState::Running => {
                Ok(EventLoopDirective::Transition(ExampleEvent::BeginDrain))
            }
            None if self.input_ended => Ok(EventLoopDirective::Transition(ExampleEvent::Finish)),
            None => Ok(EventLoopDirective::Continue),
        }
    }

    fn perform(step: Step) -> Result<EventLoopDirective<ExampleEvent>, BoxError> {
        match step {
            Step::Emit(event) => Ok(EventLoopDirective::Transition(event)),
            Step::Continue | Step::FailWaiting(_) | Step::PanicWaiting(_) => {
                Ok(EventLoopDirective::Continue)
            }
            Step::Fail(message) => Err(message.into()),
            Step::FailTyped(error) => Err(Box::new(error)),
            Step::Panic(message) => panic!("{message}"),
        }
    }

    fn on_loop_error(&self, error: &SupervisionError) {
        self.log.push(format!("loop error: {error}"));
    }

    fn write_completion_event(&self) -> Result<(), BoxError> {
        self.completions.fetch_add(1, Ordering::SeqCst);
        self.log.push("completion");
        match self.completion {
            Completion::Succeed => Ok(()),
            Completion::Fail => Err("completion journal unavailable".into()),
            Completion::Panic => panic!("completion exploded"),
        }
    }
}

/// Implements `Supervisor` for a wrapper around [`ExampleCore`].
macro_rules! example_supervisor {
    ($wrapper:ident) => {
        impl Supervisor for $wrapper {
            type State = ExampleState;
            type Event = ExampleEvent;
            type Context = ExampleContext;
            type Action = ExampleAction;
            type Machine = ExampleMachine;
            type Command = ExampleCommand;

            fn build_state_machine(&self, initial_state: ExampleState) -> Machine<ExampleMachine> {
                self.0.build_state_machine(initial_state)
            }

            fn name(&self) -> &str {
                NAME
            }

            fn command_policy(&self, state: &ExampleState) -> CommandPolicy {
                self.0.command_policy(state)
            }

            fn event_for_command(&self, command: ExampleCommand) -> ExampleEvent {
                self.0.event_for_command(command)
            }

            fn event_for_control_closed(&self) -> Option<ExampleEvent> {
                self.0.event_for_control_closed()
            }

            fn on_loop_error(&self, error: &SupervisionError) {
                self.0.on_loop_error(error)
            }
        }
    };
}

/// The example as a `SelfSupervised` type.
pub struct SelfExample(pub ExampleCore);

example_supervisor!(SelfExample);

#[async_trait::async_trait]
impl SelfSupervised for SelfExample {
    async fn dispatch_state(
        &mut self,
        state: &ExampleState,
        _context: &mut ExampleContext,
    ) -> Result<EventLoopDirective<ExampleEvent>, BoxError> {
        self.0.dispatch_state(state)
    }

    async fn wait_for_input(
        &mut self,
        state: &ExampleState,
        _context: &mut ExampleContext,
    ) -> Result<(), BoxError> {
        self.0.wait_for_input(state).await
    }

    fn writer_id(&self) -> WriterId {
        WriterId::System(SystemComponent::Pipeline)
    }

    async fn write_completion_event(&self) -> Result<(), BoxError> {
        self.0.write_completion_event()
    }

    fn event_for_action_error(&self, failure: SupervisorFailure) -> ExampleEvent {
        ExampleEvent::Failure(failure)
    }
}

/// The example as a `HandlerSupervised` type.
pub struct HandlerExample(pub ExampleCore);

example_supervisor!(HandlerExample);

/// The handler type of [`HandlerExample`]; the example does its work itself.
pub struct NoHandler;

#[async_trait::async_trait]
impl HandlerSupervised for HandlerExample {
    type Handler = NoHandler;

    async fn dispatch_state(
        &mut self,
        state: &ExampleState,
        _context: &mut ExampleContext,
    ) -> Result<EventLoopDirective<ExampleEvent>, BoxError> {
        self.0.dispatch_state(state)
    }

    async fn wait_for_input(
        &mut self,
        state: &ExampleState,
        _context: &mut ExampleContext,
    ) -> Result<(), BoxError> {
        self.0.wait_for_input(state).await
    }

    fn writer_id(&self) -> WriterId {
        WriterId::Stage(self.0.stage_id)
    }

    fn stage_id(&self) -> StageId {
        self.0.stage_id
    }

    async fn write_completion_event(&self) -> Result<(), BoxError> {
        self.0.write_completion_event()
    }

    fn event_for_action_error(&self, failure: SupervisorFailure) -> ExampleEvent {
        ExampleEvent::Failure(failure)
    }
}

/// The run result future.
pub type RunFuture = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<(), SupervisionError>> + Send + 'static>,
>;

/// The handle of a spawned example.
pub type ExampleHandle = SupervisorHandle<ExampleCommand, ExampleState>;

/// One of the two supervisor traits, so each test runs against both.
pub trait Flavor {
    fn run(core: ExampleCore, context: ExampleContext) -> RunFuture;
    fn spawn(core: ExampleCore, context: ExampleContext) -> ExampleHandle;
}

/// Drives the example as a `SelfSupervised` type.
pub struct AsSelf;

impl Flavor for AsSelf {
    fn run(core: ExampleCore, context: ExampleContext) -> RunFuture {
        SelfExample(core).run(ExampleState::Created, context)
    }

    fn spawn(core: ExampleCore, context: ExampleContext) -> ExampleHandle {
        let config = SupervisorConfig::default().with_command_capacity(4);
        spawn_supervised(SelfExample(core), ExampleState::Created, context, config)
    }
}

/// Drives the example as a `HandlerSupervised` type.
pub struct AsHandler;

impl Flavor for AsHandler {
    fn run(core: ExampleCore, context: ExampleContext) -> RunFuture {
        HandlerExample(core).run(ExampleState::Created, context)
    }

    fn spawn(core: ExampleCore, context: ExampleContext) -> ExampleHandle {
        let config = SupervisorConfig::default().with_command_capacity(4);
        spawn_supervised(HandlerExample(core), ExampleState::Created, context, config)
    }
}

/// A configured example plus the test's ends of its input and log.
pub struct Scenario {
    steps: Option<mpsc::UnboundedSender<Step>>,
    pub log: Log,
    completions: Arc<AtomicUsize>,
    core: Option<ExampleCore>,
    context: Option<ExampleContext>,
}

impl Scenario {
    pub fn new() -> Self {
        let (steps, receiver) = mpsc::unbounded_channel();
        let log = Log::new();
        let completions = Arc::new(AtomicUsize::new(0));
        let core = ExampleCore {
            steps: receiver,
            pending: None,
            input_ended: false,
            gate_step: None,
            closed_event: Some(ExampleEvent::ControlClosed),
            completion: Completion::Succeed,
            completions: Arc::clone(&completions),
            log: log.clone(),
            stage_id: StageId::new(),
            failing_terminal_dispatch: false,
            panic_site: None,
        };
        Self {
            steps: Some(steps),
            context: Some(ExampleContext::new(log.clone())),
            log,
            completions,
            core: Some(core),
        }
    }

    fn core(&mut self) -> &mut ExampleCore {
        self.core.as_mut().expect("not started yet")
    }

    fn context(&mut self) -> &mut ExampleContext {
        self.context.as_mut().expect("not started yet")
    }

    /// What `dispatch_state` does in `Created` (by default it emits `Start`).
    pub fn with_gate_step(mut self, step: Step) -> Self {
        self.core().gate_step = Some(step);
        self
    }

    /// The event fed when the command channel closes (by default `ControlClosed`).
    pub fn with_closed_event(mut self, event: Option<ExampleEvent>) -> Self {
        self.core().closed_event = event;
        self
    }

    pub fn with_completion(mut self, completion: Completion) -> Self {
        self.core().completion = completion;
        self
    }

    pub fn with_drain_timeout(mut self, drain_timeout: Duration) -> Self {
        self.context().drain_timeout = drain_timeout;
        self
    }

    pub fn with_panicking_transition(mut self) -> Self {
        self.context().panicking_transition = true;
        self
    }

    pub fn with_failing_drained_entry(mut self) -> Self {
        self.context().failing_drained_entry = true;
        self
    }

    pub fn with_failing_terminal_dispatch(mut self) -> Self {
        self.core().failing_terminal_dispatch = true;
        self
    }

    /// Makes `site` panic.
    pub fn with_panic_in(mut self, site: PanicSite) -> Self {
        self.core().panic_site = Some(site);
        self
    }

    /// Makes the machine's `timeout` panic when asked in `Draining`.
    pub fn with_panicking_timeout(mut self) -> Self {
        self.context().panicking_timeout = true;
        self
    }

    pub fn with_broken_failure_handling(mut self) -> Self {
        self.context().broken_failure_handling = true;
        self
    }

    /// Queues one input step.
    pub fn push(&self, step: Step) {
        self.steps
            .as_ref()
            .expect("input still open")
            .send(step)
            .expect("the supervisor still reads its input");
    }

    /// Ends the input: `Running` then drains and `Draining` finishes.
    pub fn end_input(&mut self) {
        self.steps = None;
    }

    pub fn run<F: Flavor>(&mut self) -> RunFuture {
        F::run(self.take_core(), self.take_context())
    }

    pub fn spawn<F: Flavor>(&mut self) -> ExampleHandle {
        F::spawn(self.take_core(), self.take_context())
    }

    /// The example as a `HandlerSupervised` value, not driven.
    pub fn handler_example(mut self) -> HandlerExample {
        HandlerExample(self.take_core())
    }

    fn take_core(&mut self) -> ExampleCore {
        self.core.take().expect("started once")
    }

    fn take_context(&mut self) -> ExampleContext {
        self.context.take().expect("started once")
    }

    pub fn completions(&self) -> usize {
        self.completions.load(Ordering::SeqCst)
    }
}

/// Generates, for each listed generic test function, a module with one
/// `#[tokio::test(start_paused = true)]` per supervisor trait.
#[macro_export]
macro_rules! for_both_traits {
    ($($test:ident),* $(,)?) => {
        $(
            mod $test {
                #[tokio::test(start_paused = true)]
                async fn self_supervised() {
                    super::$test::<$crate::supervision_support::AsSelf>().await;
                }

                #[tokio::test(start_paused = true)]
                async fn handler_supervised() {
                    super::$test::<$crate::supervision_support::AsHandler>().await;
                }
            }
        )*
    };
}
