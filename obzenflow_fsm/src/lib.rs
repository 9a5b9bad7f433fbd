//! A generic Mealy state machine that computes transitions and returns actions.
#![doc = include_str!("../README.md")]

mod action;
mod error;
mod machine;
mod mermaid;
mod transition;
mod variant;

#[cfg(test)]
mod test_support;

pub use action::FsmAction;
pub use error::{ActionError, BoxError, FsmError};
pub use machine::{Machine, StateMachine};
pub use mermaid::render_mermaid;
pub use transition::{StateTimeout, Transition, TransitionRecord};
pub use variant::{EventVariant, StateVariant};
