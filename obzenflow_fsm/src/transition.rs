//! The values a transition function produces and the records it leaves behind.

use std::time::Duration;

/// The outcome of [`StateMachine::transition`](crate::StateMachine::transition) for one
/// `(state, event)` pair.
///
/// `S` is the state type and `A` the action type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition<S, A> {
    /// Move to `next`. The machine returns the exit actions of the old state, then `actions`,
    /// then the entry actions of `next`. Moving to a state of the same variant is still a move:
    /// exit and entry actions run and the generation advances.
    To {
        /// The state to move to.
        next: S,
        /// Actions of the transition itself, returned between exit and entry actions.
        actions: Vec<A>,
    },
    /// Stay in the current state without running exit or entry actions; return `actions`.
    Stay {
        /// Actions to return.
        actions: Vec<A>,
    },
    /// The pair is not handled. This is an explicit outcome, reported as
    /// [`FsmError::Unhandled`](crate::FsmError::Unhandled), and leaves the state unchanged.
    Unhandled,
}

impl<S, A> Transition<S, A> {
    /// Moves to `next` with no transition actions.
    pub fn to(next: S) -> Self {
        Self::To {
            next,
            actions: Vec::new(),
        }
    }

    /// Moves to `next`, returning `actions` between exit and entry actions.
    pub fn to_with(next: S, actions: Vec<A>) -> Self {
        Self::To { next, actions }
    }

    /// Stays in the current state with no actions.
    pub fn stay() -> Self {
        Self::Stay {
            actions: Vec::new(),
        }
    }

    /// Stays in the current state, returning `actions`.
    pub fn stay_with(actions: Vec<A>) -> Self {
        Self::Stay { actions }
    }
}

/// A per-state timeout: once the machine has spent `after` in a state, the driver feeds `event`.
///
/// The machine only describes the timeout; the driver turns it into a deadline it awaits next to
/// its other inputs, and re-arms it whenever [`Machine::generation`](crate::Machine::generation)
/// changes. No side task ever mutates the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateTimeout<E> {
    /// How long the machine may stay in the state before `event` is fed.
    pub after: Duration,
    /// The event to feed when the time is up.
    pub event: E,
}

impl<E> StateTimeout<E> {
    /// Builds a timeout that feeds `event` after `after`.
    pub fn new(after: Duration, event: E) -> Self {
        Self { after, event }
    }
}

/// What happened in one handled event, given to transition hooks.
///
/// Names are variant names, so a hook can log or count without knowing the machine's types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransitionRecord {
    /// Variant name of the state before the event.
    pub from: &'static str,
    /// Variant name of the event.
    pub event: &'static str,
    /// Variant name of the state after the event (equal to `from` for a stay).
    pub to: &'static str,
    /// How many actions were returned, exit and entry actions included.
    pub action_count: usize,
    /// Whether the event moved the machine ([`Transition::To`]), as opposed to a stay.
    pub changed_state: bool,
}
