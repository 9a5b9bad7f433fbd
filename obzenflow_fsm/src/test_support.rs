//! A small door machine shared by the unit tests.

use std::time::Duration;

use crate::{
    ActionError, EventVariant, FsmAction, StateMachine, StateTimeout, StateVariant, Transition,
};

/// The marker type of the door machine.
pub(crate) struct DoorMachine;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Door {
    Closed,
    Open,
    Locked,
    /// Terminal: a kicked-in door stays broken.
    Broken,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DoorEvent {
    Open,
    Close,
    /// Fed by the driver when the open door's timeout expires.
    AutoClose,
    Lock,
    Unlock,
    Knock,
    Kick,
}

impl DoorEvent {
    pub(crate) const ALL: [DoorEvent; 7] = [
        DoorEvent::Open,
        DoorEvent::Close,
        DoorEvent::AutoClose,
        DoorEvent::Lock,
        DoorEvent::Unlock,
        DoorEvent::Knock,
        DoorEvent::Kick,
    ];
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DoorAction {
    Enter(&'static str),
    Exit(&'static str),
    Swing,
    TurnKey,
    Answer,
    Alarm,
}

#[derive(Debug, Default)]
pub(crate) struct DoorContext {
    pub(crate) knocks: u32,
    pub(crate) auto_close_after: Duration,
    /// Names of executed actions, in execution order.
    pub(crate) log: Vec<&'static str>,
}

impl StateVariant for Door {
    fn variant_name(&self) -> &'static str {
        match self {
            Door::Closed => "Closed",
            Door::Open => "Open",
            Door::Locked => "Locked",
            Door::Broken => "Broken",
        }
    }
}

impl EventVariant for DoorEvent {
    fn variant_name(&self) -> &'static str {
        match self {
            DoorEvent::Open => "Open",
            DoorEvent::Close => "Close",
            DoorEvent::AutoClose => "AutoClose",
            DoorEvent::Lock => "Lock",
            DoorEvent::Unlock => "Unlock",
            DoorEvent::Knock => "Knock",
            DoorEvent::Kick => "Kick",
        }
    }
}

#[async_trait::async_trait]
impl FsmAction for DoorAction {
    type Context = DoorContext;

    async fn execute(&self, context: &mut DoorContext) -> Result<(), ActionError> {
        context.log.push(self.name());
        Ok(())
    }

    fn name(&self) -> &'static str {
        match self {
            DoorAction::Enter(_) => "Enter",
            DoorAction::Exit(_) => "Exit",
            DoorAction::Swing => "Swing",
            DoorAction::TurnKey => "TurnKey",
            DoorAction::Answer => "Answer",
            DoorAction::Alarm => "Alarm",
        }
    }
}

impl StateMachine for DoorMachine {
    type State = Door;
    type Event = DoorEvent;
    type Context = DoorContext;
    type Action = DoorAction;

    fn transition(
        state: &Door,
        event: &DoorEvent,
        context: &mut DoorContext,
    ) -> Transition<Door, DoorAction> {
        use DoorEvent as E;
        // No catch-all arm: a new state or event must be placed explicitly.
        match (state, event) {
            (Door::Closed, E::Open) => Transition::to_with(Door::Open, vec![DoorAction::Swing]),
            (Door::Closed, E::Lock) => Transition::to_with(Door::Locked, vec![DoorAction::TurnKey]),
            (Door::Open, E::Close | E::AutoClose) => {
                Transition::to_with(Door::Closed, vec![DoorAction::Swing])
            }
            (Door::Locked, E::Unlock) => {
                Transition::to_with(Door::Closed, vec![DoorAction::TurnKey])
            }
            (Door::Closed | Door::Locked, E::Knock) => {
                context.knocks += 1;
                Transition::stay_with(vec![DoorAction::Answer])
            }
            (Door::Closed | Door::Open | Door::Locked, E::Kick) => {
                Transition::to_with(Door::Broken, vec![DoorAction::Alarm])
            }
            (Door::Closed, E::Close | E::AutoClose | E::Unlock)
            | (Door::Open, E::Open | E::Lock | E::Unlock | E::Knock)
            | (Door::Locked, E::Open | E::Close | E::AutoClose | E::Lock)
            | (Door::Broken, _) => Transition::Unhandled,
        }
    }

    fn on_entry(state: &Door, _context: &DoorContext) -> Vec<DoorAction> {
        vec![DoorAction::Enter(state.variant_name())]
    }

    fn on_exit(state: &Door, _context: &DoorContext) -> Vec<DoorAction> {
        vec![DoorAction::Exit(state.variant_name())]
    }

    fn is_terminal(state: &Door) -> bool {
        matches!(state, Door::Broken)
    }

    fn timeout(state: &Door, context: &DoorContext) -> Option<StateTimeout<DoorEvent>> {
        match state {
            Door::Open => Some(StateTimeout::new(
                context.auto_close_after,
                DoorEvent::AutoClose,
            )),
            Door::Closed | Door::Locked | Door::Broken => None,
        }
    }
}
