//! The base of every supervisor: the [`Supervisor`] trait (machine types, command plane) and
//! the [`EventLoopDirective`] a dispatch returns.

use std::fmt;

use obzenflow_fsm::{EventVariant, FsmAction, Machine, StateMachine, StateVariant};

use super::control::CommandPolicy;

/// What the loop does after a successful `dispatch_state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventLoopDirective<E> {
    /// Work was done; go round again. The next iteration waits for input (commands, the state
    /// deadline, `wait_for_input`) before dispatching, so a supervisor spins only if its
    /// `wait_for_input` returns at once while its dispatch has nothing to do: await the input
    /// there, not in `dispatch_state`.
    Continue,
    /// Feed this event to the machine and execute the actions it returns.
    Transition(E),
    /// Write the completion record once and end the loop.
    Terminate,
}

/// A component driven by a state machine inside the one supervision loop.
///
/// It names the machine's types and builds the machine; [`SelfSupervised`](super::SelfSupervised)
/// or [`HandlerSupervised`](super::HandlerSupervised) add the per-state work. Only the loop
/// calls the machine and executes actions.
///
/// The command plane lives here too (`Command`, [`command_policy`](Supervisor::command_policy),
/// [`event_for_command`](Supervisor::event_for_command),
/// [`event_for_control_closed`](Supervisor::event_for_control_closed)), so that one trait
/// describes everything the loop consults. A supervisor that takes no commands uses
/// [`std::convert::Infallible`] and keeps the defaults; the policy is only consulted by
/// [`spawn_supervised`](super::spawn_supervised), never by `run`.
///
/// # Example
///
/// ```
/// use std::convert::Infallible;
///
/// use obzenflow_fsm::{
///     ActionError, EventVariant, FsmAction, Machine, StateMachine, StateVariant, Transition,
/// };
/// use obzenflow_runtime::supervised_base::{CommandPolicy, Supervisor};
///
/// #[derive(Clone, Debug, PartialEq)]
/// enum Light { Off, On }
/// #[derive(Debug)]
/// enum Switch { Flip }
/// #[derive(Debug)]
/// struct NoAction;
///
/// impl StateVariant for Light {
///     fn variant_name(&self) -> &'static str {
///         match self { Light::Off => "Off", Light::On => "On" }
///     }
/// }
/// impl EventVariant for Switch {
///     fn variant_name(&self) -> &'static str { "Flip" }
/// }
/// #[async_trait::async_trait]
/// impl FsmAction for NoAction {
///     type Context = ();
///     async fn execute(&self, _context: &mut ()) -> Result<(), ActionError> { Ok(()) }
/// }
///
/// struct LightMachine;
/// impl StateMachine for LightMachine {
///     type State = Light;
///     type Event = Switch;
///     type Context = ();
///     type Action = NoAction;
///     fn transition(
///         state: &Light,
///         _event: &Switch,
///         _context: &mut (),
///     ) -> Transition<Light, NoAction> {
///         match state {
///             Light::Off => Transition::to(Light::On),
///             Light::On => Transition::to(Light::Off),
///         }
///     }
/// }
///
/// struct LightSupervisor;
/// impl Supervisor for LightSupervisor {
///     type State = Light;
///     type Event = Switch;
///     type Context = ();
///     type Action = NoAction;
///     type Machine = LightMachine;
///     type Command = Infallible;
///
///     fn build_state_machine(&self, initial_state: Light) -> Machine<LightMachine> {
///         Machine::new(initial_state)
///     }
///     fn name(&self) -> &str {
///         "light"
///     }
///     fn event_for_command(&self, command: Infallible) -> Switch {
///         match command {}
///     }
/// }
///
/// let supervisor = LightSupervisor;
/// assert_eq!(supervisor.command_policy(&Light::Off), CommandPolicy::Ignore);
/// let mut machine = supervisor.build_state_machine(Light::Off);
/// machine.handle(Switch::Flip, &mut ()).unwrap();
/// assert_eq!(machine.state(), &Light::On);
/// ```
pub trait Supervisor {
    /// The machine's states.
    type State: Clone + fmt::Debug + StateVariant + Send + Sync + 'static;
    /// The machine's events.
    type Event: fmt::Debug + EventVariant + Send + 'static;
    /// The mutable data the machine and its actions share.
    type Context: Send + 'static;
    /// The machine's actions.
    type Action: FsmAction<Context = Self::Context> + 'static;
    /// The machine definition whose types are the four above.
    type Machine: StateMachine<
        State = Self::State,
        Event = Self::Event,
        Context = Self::Context,
        Action = Self::Action,
    >;
    /// The commands a [`SupervisorHandle`](super::SupervisorHandle) can send; use
    /// [`std::convert::Infallible`] for a supervisor that takes none.
    type Command: Send + 'static;

    /// Builds the machine, starting in `initial_state`. Called once, by the loop.
    fn build_state_machine(&self, initial_state: Self::State) -> Machine<Self::Machine>;

    /// A stable name for logs and errors.
    fn name(&self) -> &str;

    /// How the loop treats commands in `state`. The default ignores them everywhere, which is
    /// the behaviour of a supervisor that takes no commands.
    fn command_policy(&self, _state: &Self::State) -> CommandPolicy {
        CommandPolicy::Ignore
    }

    /// Turns a received command into the machine event it stands for.
    ///
    /// Commands are only read in `Await` and `Select` states, so the machine must handle these
    /// events there; one it does not handle ends the loop with
    /// [`SupervisionError::Fsm`](super::SupervisionError::Fsm), like any unhandled event.
    fn event_for_command(&self, command: Self::Command) -> Self::Event;

    /// The event to feed when every command sender is gone, or `None` to just stop listening.
    ///
    /// Called at most once. Afterwards the loop never reads commands again: `Await` and
    /// `Select` states behave like `Ignore`.
    fn event_for_control_closed(&self) -> Option<Self::Event> {
        None
    }

    /// Called once when the loop ends with an error instead of a `Terminate` directive (an
    /// unhandled event, a failure in a terminal state, a failing failure path, a panic outside
    /// the guarded callbacks), just before `write_completion_event`, which the loop then still
    /// calls once. Record `error` here so that the completion record says the supervisor
    /// failed and why. The default records nothing.
    ///
    /// Not called when `write_completion_event` itself failed: it has already run.
    fn on_loop_error(&self, _error: &super::SupervisionError) {}
}
