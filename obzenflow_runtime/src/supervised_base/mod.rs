//! Supervision: the one run loop every supervisor is driven by.
//!
//! A supervisor owns a state machine (from [`obzenflow_fsm`]) and does each state's work; the
//! loop in this module is the only code that feeds the machine events and executes the
//! actions it returns. There are two kinds of supervisor and one loop for both:
//!
//! - [`SelfSupervised`]: components with their own logic, such as the pipeline supervisor and
//!   the metrics aggregator.
//! - [`HandlerSupervised`]: stage supervisors that run a user handler for one stage; they also
//!   name their stage and get [`run_if_not_error`](HandlerSupervised::run_if_not_error).
//!
//! Both build on [`Supervisor`] (the machine's types and the command plane) and are driven
//! either in the current task by `run` ([`SelfSupervisedExt::run`],
//! [`HandlerSupervisedExt::run`]) or as a task of their own by [`spawn_supervised`], which
//! returns a [`SupervisorHandle`]. All three go through the same private driver.
//!
//! # One iteration
//!
//! 1. If the machine moved since the last iteration, the state's deadline is re-armed from
//!    [`StateMachine::timeout`](obzenflow_fsm::StateMachine::timeout) as a
//!    `tokio::time::Instant`; there are no side tasks.
//! 2. The loop waits for input as [`Supervisor::command_policy`] says for the current state,
//!    with a `biased` `tokio::select!` whose arms are all cancel safe:
//!    - [`CommandPolicy::Await`] (gates such as "waiting for start"): a command, then the
//!      deadline. `dispatch_state` is not called.
//!    - [`CommandPolicy::Select`] (running, draining): a command, then the deadline, then the
//!      supervisor's `wait_for_input`.
//!    - [`CommandPolicy::Ignore`] (terminal, failed): the deadline, then `wait_for_input`;
//!      commands stay queued.
//! 3. A command becomes an event through [`Supervisor::event_for_command`]. An elapsed deadline
//!    feeds the state's timeout event, once per state entry. A closed channel feeds
//!    [`Supervisor::event_for_control_closed`], if it returns one, and is never read again.
//!    Ready input leads to `dispatch_state`, which is never cancelled, and its
//!    [`EventLoopDirective`]: `Continue` goes round again, `Transition(event)` feeds the event,
//!    `Terminate` writes the completion record exactly once and ends the loop.
//! 4. The actions of every fed event run in order. When the machine changes state, the new
//!    state is published on the handle's `watch` and logged.
//!
//! The initial state's entry actions run once, before the first iteration, and the initial
//! state is published before them.
//!
//! An idle supervisor sits inside step 2 and uses no CPU; it wakes as soon as a command, its
//! deadline or its input arrives. So `Continue` means "work was done, go again", never "poll
//! again": waiting belongs in `wait_for_input`.
//!
//! # Failures are inputs
//!
//! - An error from `dispatch_state`, `wait_for_input` or an action, or a panic in any of them
//!   or in the transition function, becomes the supervisor's failure event
//!   (`event_for_action_error(failure)`), fed to the machine; its actions run and the loop
//!   goes on, typically to a failed state whose dispatch terminates. The
//!   [`SupervisorFailure`] says what failed in which state and keeps the error itself (or the
//!   [`PanicError`]) as its typed cause: no failure becomes a string on its way to the state.
//! - After a failed action the remaining actions of that transition are abandoned.
//! - What the failure path cannot absorb ends the loop with a typed [`SupervisionError`]: no
//!   transition for the failure event (`UnhandledFailure`) or for a regular event (`Fsm`), a
//!   failing failure action (`FailureActionFailed`), or a completion record that cannot be
//!   written (`Completion`). The loop itself never panics.
//!
//! # Where commands are declared
//!
//! The command type and its per-state policy are part of [`Supervisor`] (`type Command`,
//! `command_policy`, `event_for_command`, `event_for_control_closed`) rather than a separate
//! trait. The loop then consults one trait, [`spawn_supervised`] accepts a supervisor of either
//! kind with a single bound, and a stage states its whole control surface in one `impl`. A
//! supervisor without commands pays two lines: `type Command = Infallible;` and an
//! `event_for_command` that matches on the empty command; the policy defaults to `Ignore` and
//! a closed channel to no event. `run` has no command channel, so there every state behaves as
//! `Ignore`, exactly like the original loops.
//!
//! # Porting a supervisor from the original loops
//!
//! - Add `type Machine` (the [`StateMachine`](obzenflow_fsm::StateMachine) definition whose
//!   types the supervisor names) and `type Command` as above.
//! - Move waiting out of `dispatch_state` into `wait_for_input`. The loop no longer yields after
//!   `Continue`, so a dispatch that returns `Continue` without having done anything, and no
//!   `wait_for_input` that waits, would keep the task busy.
//! - `run` returns `Result<(), SupervisionError>`; boxed errors remain only at the user
//!   boundary, as [`BoxError`].
//!
//! # Observability
//!
//! Every supervisor runs inside one `supervisor` span with the fields `supervisor`, `writer_id`
//! and, when handler-supervised, `stage_id`, `stage_kind` and `stage_name`. A spawned
//! supervisor's span is a child of the span current where [`spawn_supervised`] was called (a
//! flow's stages and aggregator nest under its `flow` span). Start and termination are logged
//! at `info`, transitions at `debug` (`from`, `event`, `to`), failures at `error` with the
//! error in the `error` field; per-iteration detail is `trace` only. [`SupervisorStats`]
//! counts iterations and transitions.
//!
//! # Cancellation
//!
//! Dropping a `run` future, or aborting a spawned task, stops the supervisor at its current
//! await point without a completion record. For an orderly stop send a command the machine
//! understands.
//!
//! # Example
//!
//! A countdown that waits for a start command, counts down and terminates.
//!
//! ```
//! use obzenflow_core::{SystemComponent, WriterId};
//! use obzenflow_fsm::{
//!     ActionError, EventVariant, FsmAction, Machine, StateMachine, StateVariant, Transition,
//! };
//! use obzenflow_runtime::supervised_base::{
//!     spawn_supervised, BoxError, CommandPolicy, EventLoopDirective, SelfSupervised,
//!     SupervisionError, Supervisor, SupervisorConfig, SupervisorFailure,
//! };
//!
//! /// The lifecycle: wait for `Start`, count down, finish.
//! #[derive(Clone, Debug, PartialEq)]
//! pub enum Phase {
//!     Idle,
//!     Counting,
//!     Done,
//!     Failed,
//! }
//!
//! #[derive(Debug)]
//! pub enum PhaseEvent {
//!     Start,
//!     Tick,
//!     Finished,
//!     Failure(SupervisorFailure),
//! }
//!
//! /// The only side effect: note a milestone in the context.
//! #[derive(Debug)]
//! pub struct Announce(&'static str);
//!
//! impl StateVariant for Phase {
//!     fn variant_name(&self) -> &'static str {
//!         match self {
//!             Phase::Idle => "Idle",
//!             Phase::Counting => "Counting",
//!             Phase::Done => "Done",
//!             Phase::Failed => "Failed",
//!         }
//!     }
//! }
//!
//! impl EventVariant for PhaseEvent {
//!     fn variant_name(&self) -> &'static str {
//!         match self {
//!             PhaseEvent::Start => "Start",
//!             PhaseEvent::Tick => "Tick",
//!             PhaseEvent::Finished => "Finished",
//!             PhaseEvent::Failure(_) => "Failure",
//!         }
//!     }
//! }
//!
//! #[async_trait::async_trait]
//! impl FsmAction for Announce {
//!     type Context = Vec<&'static str>;
//!
//!     async fn execute(&self, context: &mut Vec<&'static str>) -> Result<(), ActionError> {
//!         context.push(self.0);
//!         Ok(())
//!     }
//! }
//!
//! pub struct CountdownMachine;
//!
//! impl StateMachine for CountdownMachine {
//!     type State = Phase;
//!     type Event = PhaseEvent;
//!     type Context = Vec<&'static str>;
//!     type Action = Announce;
//!
//!     fn transition(
//!         state: &Phase,
//!         event: &PhaseEvent,
//!         _context: &mut Vec<&'static str>,
//!     ) -> Transition<Phase, Announce> {
//!         match (state, event) {
//!             (Phase::Idle, PhaseEvent::Start) => {
//!                 Transition::to_with(Phase::Counting, vec![Announce("started")])
//!             }
//!             (Phase::Counting, PhaseEvent::Tick) => Transition::stay(),
//!             (Phase::Counting, PhaseEvent::Finished) => {
//!                 Transition::to_with(Phase::Done, vec![Announce("done")])
//!             }
//!             (Phase::Idle | Phase::Counting, PhaseEvent::Failure(_)) => {
//!                 Transition::to(Phase::Failed)
//!             }
//!             (Phase::Idle, PhaseEvent::Tick | PhaseEvent::Finished)
//!             | (Phase::Counting, PhaseEvent::Start)
//!             | (Phase::Done | Phase::Failed, _) => Transition::Unhandled,
//!         }
//!     }
//!
//!     fn is_terminal(state: &Phase) -> bool {
//!         matches!(state, Phase::Done | Phase::Failed)
//!     }
//! }
//!
//! /// Commands the countdown accepts.
//! #[derive(Debug)]
//! pub enum CountdownCommand {
//!     Start,
//! }
//!
//! /// The supervisor: it owns the loop's per-state work.
//! pub struct Countdown {
//!     pub remaining: u32,
//! }
//!
//! impl Supervisor for Countdown {
//!     type State = Phase;
//!     type Event = PhaseEvent;
//!     type Context = Vec<&'static str>;
//!     type Action = Announce;
//!     type Machine = CountdownMachine;
//!     type Command = CountdownCommand;
//!
//!     fn build_state_machine(&self, initial_state: Phase) -> Machine<CountdownMachine> {
//!         Machine::new(initial_state)
//!     }
//!
//!     fn name(&self) -> &str {
//!         "countdown"
//!     }
//!
//!     fn command_policy(&self, state: &Phase) -> CommandPolicy {
//!         match state {
//!             Phase::Idle => CommandPolicy::Await,
//!             Phase::Counting => CommandPolicy::Select,
//!             Phase::Done | Phase::Failed => CommandPolicy::Ignore,
//!         }
//!     }
//!
//!     fn event_for_command(&self, command: CountdownCommand) -> PhaseEvent {
//!         match command {
//!             CountdownCommand::Start => PhaseEvent::Start,
//!         }
//!     }
//! }
//!
//! #[async_trait::async_trait]
//! impl SelfSupervised for Countdown {
//!     async fn dispatch_state(
//!         &mut self,
//!         state: &Phase,
//!         _context: &mut Vec<&'static str>,
//!     ) -> Result<EventLoopDirective<PhaseEvent>, BoxError> {
//!         Ok(match state {
//!             // Only reached by `run`, which has no command channel to await `Start` on.
//!             Phase::Idle => EventLoopDirective::Transition(PhaseEvent::Start),
//!             Phase::Counting if self.remaining == 0 => {
//!                 EventLoopDirective::Transition(PhaseEvent::Finished)
//!             }
//!             Phase::Counting => {
//!                 self.remaining -= 1;
//!                 EventLoopDirective::Transition(PhaseEvent::Tick)
//!             }
//!             Phase::Done | Phase::Failed => EventLoopDirective::Terminate,
//!         })
//!     }
//!
//!     // Every state's dispatch has work or moves on: nothing to wait for.
//!     async fn wait_for_input(
//!         &mut self,
//!         _state: &Phase,
//!         _context: &mut Vec<&'static str>,
//!     ) -> Result<(), BoxError> {
//!         Ok(())
//!     }
//!
//!     fn writer_id(&self) -> WriterId {
//!         WriterId::System(SystemComponent::Pipeline)
//!     }
//!
//!     async fn write_completion_event(&self) -> Result<(), BoxError> {
//!         Ok(())
//!     }
//!
//!     fn event_for_action_error(&self, failure: SupervisorFailure) -> PhaseEvent {
//!         PhaseEvent::Failure(failure)
//!     }
//! }
//!
//! let runtime = tokio::runtime::Builder::new_current_thread()
//!     .enable_all()
//!     .build()?;
//! runtime.block_on(async {
//!     let handle = spawn_supervised(
//!         Countdown { remaining: 3 },
//!         Phase::Idle,
//!         Vec::new(),
//!         SupervisorConfig::default(),
//!     );
//!     // `Idle` is a gate: nothing happens until the start command arrives.
//!     handle
//!         .send(CountdownCommand::Start)
//!         .await
//!         .expect("the countdown is waiting for it");
//!     let states = handle.state();
//!     let stats = handle.stats();
//!     handle.join().await?;
//!     assert_eq!(*states.borrow(), Phase::Done);
//!     assert_eq!(stats.transitions(), 2);
//!     Ok::<(), SupervisionError>(())
//! })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod base;
mod control;
mod driver;
mod error;
mod handle;
mod handler_supervised;
mod panic;
mod self_supervised;

pub use base::{EventLoopDirective, Supervisor};
pub use control::{CommandPolicy, SupervisorConfig};
pub use driver::Supervised;
pub use error::{FailedStep, SupervisionError, SupervisorFailure};
pub use handle::{spawn_supervised, SupervisorHandle, SupervisorStats};
pub use handler_supervised::{HandlerSupervised, HandlerSupervisedExt};
pub use obzenflow_fsm::BoxError;
pub use panic::PanicError;
pub use self_supervised::{SelfSupervised, SelfSupervisedExt};
