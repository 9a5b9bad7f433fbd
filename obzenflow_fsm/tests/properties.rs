//! Property tests: random event sequences against a stage-like lifecycle machine.
//!
//! Every state has one exit and one entry action tagged with its name, and transition actions
//! are tagged with the event, so the order of the returned actions can be checked exactly.

use std::sync::{Arc, Mutex};

use obzenflow_fsm::{
    ActionError, EventVariant, FsmAction, FsmError, Machine, StateMachine, StateVariant,
    Transition, TransitionRecord,
};
use proptest::prelude::*;

struct Lifecycle;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    Created,
    Running { processed: u32 },
    Draining,
    Drained,
    Failed,
}

#[derive(Debug, Clone, Copy)]
enum StageEvent {
    Start,
    Data,
    Restart,
    BeginDrain,
    DrainComplete,
    Fail,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum StageAction {
    Exit(&'static str),
    Do(&'static str),
    Enter(&'static str),
}

#[derive(Debug, Default)]
struct StageContext {
    records_seen: u32,
}

impl StateVariant for Stage {
    fn variant_name(&self) -> &'static str {
        match self {
            Stage::Created => "Created",
            Stage::Running { .. } => "Running",
            Stage::Draining => "Draining",
            Stage::Drained => "Drained",
            Stage::Failed => "Failed",
        }
    }
}

impl EventVariant for StageEvent {
    fn variant_name(&self) -> &'static str {
        match self {
            StageEvent::Start => "Start",
            StageEvent::Data => "Data",
            StageEvent::Restart => "Restart",
            StageEvent::BeginDrain => "BeginDrain",
            StageEvent::DrainComplete => "DrainComplete",
            StageEvent::Fail => "Fail",
        }
    }
}

#[async_trait::async_trait]
impl FsmAction for StageAction {
    type Context = StageContext;

    async fn execute(&self, _context: &mut StageContext) -> Result<(), ActionError> {
        Ok(())
    }
}

impl StateMachine for Lifecycle {
    type State = Stage;
    type Event = StageEvent;
    type Context = StageContext;
    type Action = StageAction;

    fn transition(
        state: &Stage,
        event: &StageEvent,
        context: &mut StageContext,
    ) -> Transition<Stage, StageAction> {
        use StageEvent as E;
        let tag = vec![StageAction::Do(event.variant_name())];
        match (state, event) {
            (Stage::Created, E::Start) => Transition::to_with(Stage::Running { processed: 0 }, tag),
            (Stage::Running { .. }, E::Data) => {
                context.records_seen += 1;
                Transition::stay_with(tag)
            }
            // An external self-transition: same variant, but exit and entry actions run.
            (Stage::Running { processed }, E::Restart) => Transition::to_with(
                Stage::Running {
                    processed: processed + 1,
                },
                tag,
            ),
            (Stage::Running { .. }, E::BeginDrain) => Transition::to_with(Stage::Draining, tag),
            (Stage::Draining, E::Data) => Transition::stay(),
            (Stage::Draining, E::DrainComplete) => Transition::to(Stage::Drained),
            (Stage::Created | Stage::Running { .. } | Stage::Draining, E::Fail) => {
                Transition::to_with(Stage::Failed, tag)
            }
            (Stage::Created, E::Data | E::Restart | E::BeginDrain | E::DrainComplete)
            | (Stage::Running { .. }, E::Start | E::DrainComplete)
            | (Stage::Draining, E::Start | E::Restart | E::BeginDrain)
            | (Stage::Drained | Stage::Failed, _) => Transition::Unhandled,
        }
    }

    fn on_entry(state: &Stage, _context: &StageContext) -> Vec<StageAction> {
        vec![StageAction::Enter(state.variant_name())]
    }

    fn on_exit(state: &Stage, _context: &StageContext) -> Vec<StageAction> {
        vec![StageAction::Exit(state.variant_name())]
    }

    fn is_terminal(state: &Stage) -> bool {
        matches!(state, Stage::Drained | Stage::Failed)
    }
}

fn any_event() -> impl Strategy<Value = StageEvent> {
    prop_oneof![
        Just(StageEvent::Start),
        Just(StageEvent::Data),
        Just(StageEvent::Restart),
        Just(StageEvent::BeginDrain),
        Just(StageEvent::DrainComplete),
        Just(StageEvent::Fail),
    ]
}

/// Any state, so sequences also start in the middle of the lifecycle or in a terminal state.
fn any_state() -> impl Strategy<Value = Stage> {
    prop_oneof![
        Just(Stage::Created),
        (0u32..4).prop_map(|processed| Stage::Running { processed }),
        Just(Stage::Draining),
        Just(Stage::Drained),
        Just(Stage::Failed),
    ]
}

/// The exact actions a handled event must return, derived from the record of what happened.
fn expected_actions(
    record: &TransitionRecord,
    transition_actions: &[StageAction],
) -> Vec<StageAction> {
    if !record.changed_state {
        return transition_actions.to_vec();
    }
    let mut expected = vec![StageAction::Exit(record.from)];
    expected.extend_from_slice(transition_actions);
    expected.push(StageAction::Enter(record.to));
    expected
}

/// The transition's own actions: everything that is not an exit or entry action.
fn transition_part(actions: &[StageAction]) -> Vec<StageAction> {
    actions
        .iter()
        .filter(|action| matches!(action, StageAction::Do(_)))
        .cloned()
        .collect()
}

proptest! {
    #[test]
    fn random_sequences_keep_every_invariant(
        initial in any_state(),
        events in prop::collection::vec(any_event(), 0..64),
    ) {
        let records = Arc::new(Mutex::new(Vec::new()));
        let hook_records = Arc::clone(&records);
        let mut machine = Machine::<Lifecycle>::new(initial)
            .with_hook(move |record| hook_records.lock().unwrap().push(*record));
        let mut context = StageContext::default();

        for event in events {
            let before = machine.state().clone();
            let generation = machine.generation();
            let hooks_before = records.lock().unwrap().len();
            let result = machine.handle(event, &mut context);
            let new_records: Vec<TransitionRecord> =
                records.lock().unwrap()[hooks_before..].to_vec();

            if Lifecycle::is_terminal(&before) {
                // Terminal states absorb: no actions, no change, nothing reported.
                prop_assert_eq!(result.unwrap(), Vec::new());
                prop_assert_eq!(machine.state(), &before);
                prop_assert_eq!(machine.generation(), generation);
                prop_assert!(new_records.is_empty());
                continue;
            }

            match result {
                Ok(actions) => {
                    prop_assert_eq!(new_records.len(), 1);
                    let record = new_records[0];
                    prop_assert_eq!(record.from, before.variant_name());
                    prop_assert_eq!(record.event, event.variant_name());
                    prop_assert_eq!(record.to, machine.state().variant_name());
                    prop_assert_eq!(record.action_count, actions.len());
                    let expected = expected_actions(&record, &transition_part(&actions));
                    prop_assert_eq!(&actions, &expected);
                    let expected_generation = generation + u64::from(record.changed_state);
                    prop_assert_eq!(machine.generation(), expected_generation);
                    if !record.changed_state {
                        prop_assert_eq!(machine.state(), &before);
                    }
                }
                Err(FsmError::Unhandled { state, event: event_name }) => {
                    prop_assert_eq!(state, before.variant_name());
                    prop_assert_eq!(event_name, event.variant_name());
                    prop_assert_eq!(machine.state(), &before);
                    prop_assert_eq!(machine.generation(), generation);
                    prop_assert!(new_records.is_empty());
                }
                Err(other) => prop_assert!(false, "unexpected error: {other}"),
            }
        }
    }

    #[test]
    fn once_terminal_every_event_is_absorbed(
        events in prop::collection::vec(any_event(), 1..32),
        fail_first in any::<bool>(),
    ) {
        let mut machine = Machine::<Lifecycle>::new(Stage::Created);
        let mut context = StageContext::default();
        let path: &[StageEvent] = if fail_first {
            &[StageEvent::Fail]
        } else {
            &[StageEvent::Start, StageEvent::BeginDrain, StageEvent::DrainComplete]
        };
        for event in path {
            machine.handle(*event, &mut context).unwrap();
        }
        prop_assert!(machine.is_terminal());
        let terminal = machine.state().clone();
        let generation = machine.generation();
        for event in events {
            prop_assert_eq!(machine.handle(event, &mut context).unwrap(), Vec::new());
            prop_assert_eq!(machine.state(), &terminal);
            prop_assert_eq!(machine.generation(), generation);
        }
    }
}
