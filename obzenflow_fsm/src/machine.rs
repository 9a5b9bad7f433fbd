//! The machine definition ([`StateMachine`]) and the running machine ([`Machine`]).
//!
//! Architecture invariant: this module computes transitions and returns actions. It never
//! executes an action, never awaits, and never spawns; the driver that owns a [`Machine`] does.

use std::fmt;
use std::marker::PhantomData;
use std::sync::{Mutex, PoisonError};

use crate::action::FsmAction;
use crate::error::FsmError;
use crate::transition::{StateTimeout, Transition, TransitionRecord};
use crate::variant::{EventVariant, StateVariant};

/// The definition of a Mealy machine: types plus a pure transition function.
///
/// It is implemented by a (usually zero-sized) marker type; all runtime data lives in the state
/// and the context. Only [`transition`](StateMachine::transition) is required.
pub trait StateMachine: Sized + Send + 'static {
    /// The machine's states, usually an enum.
    type State: Clone + fmt::Debug + StateVariant + Send + Sync + 'static;
    /// The inputs the machine reacts to, usually an enum.
    type Event: fmt::Debug + EventVariant + Send + 'static;
    /// Mutable data shared by the transition function and the actions.
    type Context: Send + 'static;
    /// The side effects transitions ask for.
    type Action: FsmAction<Context = Self::Context> + 'static;

    /// Decides what `event` does in `state`.
    ///
    /// Write it as an exhaustive `match (state, event)` without a catch-all arm, so that adding a
    /// variant forces a decision for every pair; return [`Transition::Unhandled`] for pairs that
    /// make no sense. It may update `context` (counters, deadlines) but must not perform I/O.
    fn transition(
        state: &Self::State,
        event: &Self::Event,
        context: &mut Self::Context,
    ) -> Transition<Self::State, Self::Action>;

    /// Actions returned whenever the machine enters `state` (after the transition's own actions).
    fn on_entry(_state: &Self::State, _context: &Self::Context) -> Vec<Self::Action> {
        Vec::new()
    }

    /// Actions returned whenever the machine leaves `state` (before the transition's actions).
    fn on_exit(_state: &Self::State, _context: &Self::Context) -> Vec<Self::Action> {
        Vec::new()
    }

    /// Whether `state` is terminal. A terminal state absorbs every event:
    /// [`Machine::handle`] returns no actions and does not call
    /// [`transition`](StateMachine::transition).
    fn is_terminal(_state: &Self::State) -> bool {
        false
    }

    /// The timeout of `state`, if it has one. See [`StateTimeout`].
    fn timeout(
        _state: &Self::State,
        _context: &Self::Context,
    ) -> Option<StateTimeout<Self::Event>> {
        None
    }
}

/// A hook observes every handled event; it must not fail or block.
type Hook = Box<dyn FnMut(&TransitionRecord) + Send + 'static>;

/// A running machine: the current state, a generation counter and the transition hooks.
///
/// [`handle`](Machine::handle) is plain synchronous computation. The driver executes the returned
/// actions itself, in order, against the same context.
pub struct Machine<M: StateMachine> {
    state: M::State,
    generation: u64,
    // Hooks are only `Send`, yet drivers hold `&Machine` across `.await` points, which needs
    // `Machine: Sync`. A `Mutex` provides that; it is never locked, because hooks only run from
    // `&mut self` methods through `Mutex::get_mut`, which needs no synchronization.
    hooks: Mutex<Vec<Hook>>,
    // `fn() -> M` keeps the marker type from affecting auto traits; it is never stored.
    _machine: PhantomData<fn() -> M>,
}

impl<M: StateMachine> Machine<M> {
    /// Creates a machine in `initial`, at generation 0, with no hooks.
    ///
    /// Call [`enter_initial`](Machine::enter_initial) once to get the initial state's entry actions.
    pub fn new(initial: M::State) -> Self {
        Self {
            state: initial,
            generation: 0,
            hooks: Mutex::new(Vec::new()),
            _machine: PhantomData,
        }
    }

    /// Adds a hook called after every handled event (a move or a stay), in the order hooks were
    /// added. It is not called for unhandled events (those return an error) nor for events
    /// absorbed by a terminal state (nothing happened).
    pub fn with_hook(self, hook: impl FnMut(&TransitionRecord) + Send + 'static) -> Self {
        let mut hooks = self
            .hooks
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        hooks.push(Box::new(hook));
        Self {
            hooks: Mutex::new(hooks),
            ..self
        }
    }

    /// The current state.
    pub fn state(&self) -> &M::State {
        &self.state
    }

    /// How many times the machine has moved ([`Transition::To`]). A driver re-arms the state's
    /// deadline when this changes, which also covers moving to a state of the same variant.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether the current state is terminal.
    pub fn is_terminal(&self) -> bool {
        M::is_terminal(&self.state)
    }

    /// Computes what `event` does and returns the actions to execute, in order: exit actions of
    /// the old state, the transition's actions, entry actions of the new state.
    ///
    /// A terminal state absorbs the event: `Ok` with no actions, state unchanged. An unhandled
    /// pair returns [`FsmError::Unhandled`] and leaves the state and generation unchanged.
    pub fn handle(
        &mut self,
        event: M::Event,
        context: &mut M::Context,
    ) -> Result<Vec<M::Action>, FsmError> {
        if self.is_terminal() {
            return Ok(Vec::new());
        }
        match M::transition(&self.state, &event, context) {
            Transition::To { next, actions } => Ok(self.move_to(next, actions, &event, context)),
            Transition::Stay { actions } => {
                let from = self.state.variant_name();
                self.notify(&TransitionRecord {
                    from,
                    event: event.variant_name(),
                    to: from,
                    action_count: actions.len(),
                    changed_state: false,
                });
                Ok(actions)
            }
            Transition::Unhandled => Err(FsmError::Unhandled {
                state: self.state.variant_name(),
                event: event.variant_name(),
            }),
        }
    }

    /// The entry actions of the initial state. A driver calls this once, before the first event;
    /// the machine does not track whether it was called.
    pub fn enter_initial(&self, context: &M::Context) -> Vec<M::Action> {
        M::on_entry(&self.state, context)
    }

    /// The current state's timeout, if any.
    pub fn timeout(&self, context: &M::Context) -> Option<StateTimeout<M::Event>> {
        M::timeout(&self.state, context)
    }

    /// Moves to `next` and assembles exit, transition and entry actions in that order.
    fn move_to(
        &mut self,
        next: M::State,
        transition_actions: Vec<M::Action>,
        event: &M::Event,
        context: &M::Context,
    ) -> Vec<M::Action> {
        let mut actions = M::on_exit(&self.state, context);
        actions.extend(transition_actions);
        actions.extend(M::on_entry(&next, context));
        let from = self.state.variant_name();
        self.state = next;
        self.generation += 1;
        self.notify(&TransitionRecord {
            from,
            event: event.variant_name(),
            to: self.state.variant_name(),
            action_count: actions.len(),
            changed_state: true,
        });
        actions
    }

    fn notify(&mut self, record: &TransitionRecord) {
        let hooks = self.hooks.get_mut().unwrap_or_else(PoisonError::into_inner);
        for hook in hooks.iter_mut() {
            hook(record);
        }
    }
}

impl<M: StateMachine> fmt::Debug for Machine<M> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Machine")
            .field("state", &self.state)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;
    use crate::test_support::{Door, DoorAction, DoorContext, DoorEvent, DoorMachine};

    fn door(initial: Door) -> Machine<DoorMachine> {
        Machine::new(initial)
    }

    #[test]
    fn move_returns_exit_then_transition_then_entry_actions() {
        let mut machine = door(Door::Closed);
        let mut context = DoorContext::default();
        let actions = machine.handle(DoorEvent::Open, &mut context).unwrap();
        assert_eq!(
            actions,
            vec![
                DoorAction::Exit("Closed"),
                DoorAction::Swing,
                DoorAction::Enter("Open")
            ]
        );
        assert_eq!(machine.state(), &Door::Open);
    }

    #[test]
    fn stay_runs_no_exit_or_entry_actions() {
        let mut machine = door(Door::Locked);
        let mut context = DoorContext::default();
        let actions = machine.handle(DoorEvent::Knock, &mut context).unwrap();
        assert_eq!(actions, vec![DoorAction::Answer]);
        assert_eq!(machine.state(), &Door::Locked);
        assert_eq!(context.knocks, 1, "transition may update the context");
    }

    #[test]
    fn unhandled_is_a_typed_error_and_keeps_the_state() {
        let mut machine = door(Door::Open);
        let mut context = DoorContext::default();
        let error = machine.handle(DoorEvent::Lock, &mut context).unwrap_err();
        assert!(matches!(
            error,
            FsmError::Unhandled {
                state: "Open",
                event: "Lock"
            }
        ));
        assert_eq!(machine.state(), &Door::Open);
        assert_eq!(machine.generation(), 0);
    }

    #[test]
    fn terminal_state_absorbs_every_event() {
        let mut machine = door(Door::Closed);
        let mut context = DoorContext::default();
        let actions = machine.handle(DoorEvent::Kick, &mut context).unwrap();
        assert_eq!(
            actions,
            vec![
                DoorAction::Exit("Closed"),
                DoorAction::Alarm,
                DoorAction::Enter("Broken")
            ]
        );
        assert!(machine.is_terminal());
        for event in DoorEvent::ALL {
            assert_eq!(machine.handle(event, &mut context).unwrap(), vec![]);
            assert_eq!(machine.state(), &Door::Broken);
        }
        assert_eq!(machine.generation(), 1);
    }

    #[test]
    fn generation_counts_moves_only() {
        let mut machine = door(Door::Closed);
        let mut context = DoorContext::default();
        assert_eq!(machine.generation(), 0);
        machine.handle(DoorEvent::Knock, &mut context).unwrap();
        assert_eq!(machine.generation(), 0, "a stay is not a move");
        machine.handle(DoorEvent::Close, &mut context).unwrap_err();
        assert_eq!(machine.generation(), 0, "an unhandled event is not a move");
        machine.handle(DoorEvent::Lock, &mut context).unwrap();
        machine.handle(DoorEvent::Unlock, &mut context).unwrap();
        assert_eq!(machine.generation(), 2);
    }

    #[test]
    fn hooks_see_variant_names_in_order() {
        let records = Arc::new(Mutex::new(Vec::new()));
        let first = Arc::clone(&records);
        let second = Arc::clone(&records);
        let mut machine = door(Door::Closed)
            .with_hook(move |record| first.lock().unwrap().push(("first", *record)))
            .with_hook(move |record| second.lock().unwrap().push(("second", *record)));
        let mut context = DoorContext::default();
        machine.handle(DoorEvent::Open, &mut context).unwrap();
        machine.handle(DoorEvent::Lock, &mut context).unwrap_err();
        machine.handle(DoorEvent::AutoClose, &mut context).unwrap();
        machine.handle(DoorEvent::Knock, &mut context).unwrap();

        let opened = TransitionRecord {
            from: "Closed",
            event: "Open",
            to: "Open",
            action_count: 3,
            changed_state: true,
        };
        let closed = TransitionRecord {
            from: "Open",
            event: "AutoClose",
            to: "Closed",
            action_count: 3,
            changed_state: true,
        };
        let knocked = TransitionRecord {
            from: "Closed",
            event: "Knock",
            to: "Closed",
            action_count: 1,
            changed_state: false,
        };
        assert_eq!(
            *records.lock().unwrap(),
            vec![
                ("first", opened),
                ("second", opened),
                ("first", closed),
                ("second", closed),
                ("first", knocked),
                ("second", knocked),
            ]
        );
    }

    #[test]
    fn timeout_follows_the_current_state() {
        let mut machine = door(Door::Closed);
        let mut context = DoorContext {
            auto_close_after: Duration::from_secs(30),
            ..DoorContext::default()
        };
        assert_eq!(machine.timeout(&context), None);
        machine.handle(DoorEvent::Open, &mut context).unwrap();
        assert_eq!(
            machine.timeout(&context),
            Some(StateTimeout::new(
                Duration::from_secs(30),
                DoorEvent::AutoClose
            ))
        );
    }

    #[test]
    fn enter_initial_returns_entry_actions_without_moving() {
        let machine = door(Door::Closed);
        let context = DoorContext::default();
        assert_eq!(
            machine.enter_initial(&context),
            vec![DoorAction::Enter("Closed")]
        );
        assert_eq!(machine.generation(), 0);
    }

    #[test]
    fn machine_can_be_shared_across_await_points() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Machine<DoorMachine>>();
    }

    #[test]
    fn debug_shows_state_and_generation() {
        let machine = door(Door::Open);
        assert_eq!(
            format!("{machine:?}"),
            "Machine { state: Open, generation: 0, .. }"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn driver_executes_returned_actions_in_order() {
        let mut machine = door(Door::Closed);
        let mut context = DoorContext::default();
        let mut pending = machine.enter_initial(&context);
        pending.extend(machine.handle(DoorEvent::Open, &mut context).unwrap());
        for action in &pending {
            action.execute(&mut context).await.unwrap();
        }
        assert_eq!(context.log, vec!["Enter", "Exit", "Swing", "Enter"]);
    }
}
