//! Failure semantics of the supervision loop, each pinned for both supervisor traits through
//! `run`: failed or panicking dispatches, input waits and actions take the failure path and
//! the loop carries on to a terminal state; what the failure path cannot absorb is a typed
//! error; `Terminate` writes exactly one completion record.

mod supervision_support;

use std::error::Error as _;

use obzenflow_core::{ChainEvent, ErrorChain, ErrorKind, ProcessingStatus};
use obzenflow_fsm::FsmError;
use obzenflow_runtime::supervised_base::{
    FailedStep, HandlerSupervised, PanicError, SupervisionError,
};
use supervision_support::{
    Completion, ExampleAction, ExampleCommand, ExampleEvent, Flavor, HandlerExample, PanicSite,
    ReadFailed, Scenario, Step, Unplugged, NAME,
};

for_both_traits!(
    runs_entry_actions_and_terminates_with_one_completion,
    dispatch_error_takes_the_failure_path,
    a_dispatch_error_reaches_the_failure_event_with_its_own_type,
    action_error_abandons_the_remaining_actions,
    panic_in_dispatch_takes_the_failure_path,
    panic_in_action_takes_the_failure_path,
    panic_in_transition_takes_the_failure_path,
    wait_for_input_error_takes_the_failure_path,
    panic_in_wait_for_input_takes_the_failure_path,
    continue_goes_round_again,
    unhandled_failure_event_is_a_typed_error,
    unhandled_regular_event_is_a_typed_error,
    failing_failure_action_is_a_typed_error,
    failed_completion_is_a_typed_error,
    panicking_completion_is_a_typed_error,
    failing_entry_into_a_terminal_state_is_a_typed_error,
    failing_dispatch_in_a_terminal_state_ends_the_loop_at_once,
    panic_in_build_state_machine_still_writes_one_completion,
    panic_in_command_policy_still_writes_one_completion,
    panic_in_event_for_command_still_writes_one_completion,
    panic_in_timeout_still_writes_one_completion,
);

/// The loop ended with `error` and still wrote one completion record, after telling the
/// supervisor why.
fn assert_one_completion_after(scenario: &Scenario, error: &SupervisionError) {
    assert_eq!(
        scenario.completions(),
        1,
        "one completion record after {error}"
    );
    let entries = scenario.log.entries();
    let told = format!("loop error: {error}");
    assert_eq!(
        entries[entries.len().saturating_sub(2)..],
        [told, "completion".to_owned()],
        "the supervisor learns why, then writes its completion record"
    );
}

fn strings(entries: &[&str]) -> Vec<String> {
    entries.iter().map(|entry| (*entry).to_owned()).collect()
}

async fn runs_entry_actions_and_terminates_with_one_completion<F: Flavor>() {
    let mut scenario = Scenario::new();
    scenario.push(Step::Emit(ExampleEvent::Work(vec![ExampleAction::Record(
        "worked",
    )])));
    scenario.end_input();
    scenario.run::<F>().await.expect("a clean run");
    assert_eq!(
        scenario.log.entries(),
        strings(&[
            "enter Created",
            "enter Running",
            "worked",
            "enter Draining",
            "enter Drained",
            "completion",
        ])
    );
    assert_eq!(scenario.completions(), 1);
}

async fn dispatch_error_takes_the_failure_path<F: Flavor>() {
    let mut scenario = Scenario::new();
    scenario.push(Step::Emit(ExampleEvent::Work(vec![ExampleAction::Record(
        "before",
    )])));
    scenario.push(Step::Fail("disk on fire"));
    scenario
        .run::<F>()
        .await
        .expect("the failure path absorbs it");
    assert_eq!(
        scenario.log.entries(),
        strings(&[
            "enter Created",
            "enter Running",
            "before",
            "failure: dispatch_state failed in state `Running`: disk on fire",
            "enter Failed",
            "completion",
        ])
    );
    assert_eq!(scenario.completions(), 1);
}

/// The failure event carries the supervisor's own error as it was returned: typed, with its
/// chain, never as a string. The machine (and a test, or a caller watching the state) matches
/// on it and downcasts it.
async fn a_dispatch_error_reaches_the_failure_event_with_its_own_type<F: Flavor>() {
    let mut scenario = Scenario::new();
    scenario.push(Step::FailTyped(ReadFailed(Unplugged { sensor: 7 })));
    scenario
        .run::<F>()
        .await
        .expect("the failure path absorbs it");
    let failures = scenario.log.failures();
    let [failure] = failures.as_slice() else {
        panic!("one failure event: {failures:?}");
    };
    assert_eq!(
        (failure.step(), failure.state()),
        (FailedStep::Dispatch, "Running")
    );
    assert!(failure.panic().is_none());
    assert_eq!(
        failure.cause().downcast_ref::<ReadFailed>(),
        Some(&ReadFailed(Unplugged { sensor: 7 }))
    );
    assert_eq!(
        failure.downcast_ref::<Unplugged>(),
        Some(&Unplugged { sensor: 7 })
    );
    // Its text, for people, prints each cause once.
    assert_eq!(
        ErrorChain::new(failure).to_string(),
        "dispatch_state failed in state `Running`: cannot read the sensors: sensor 7 is unplugged"
    );
    assert!(scenario.log.contains(
        "failure: dispatch_state failed in state `Running`: cannot read the sensors: \
         sensor 7 is unplugged"
    ));
}

async fn action_error_abandons_the_remaining_actions<F: Flavor>() {
    let mut scenario = Scenario::new();
    scenario.push(Step::Emit(ExampleEvent::Work(vec![
        ExampleAction::Record("first"),
        ExampleAction::Fail("second broke"),
        ExampleAction::Record("third"),
    ])));
    scenario
        .run::<F>()
        .await
        .expect("the failure path absorbs it");
    assert_eq!(
        scenario.log.entries(),
        strings(&[
            "enter Created",
            "enter Running",
            "first",
            "failure: action `Fail` failed in state `Running`: second broke",
            "enter Failed",
            "completion",
        ])
    );
    assert!(!scenario.log.contains("third"));
}

async fn panic_in_dispatch_takes_the_failure_path<F: Flavor>() {
    let mut scenario = Scenario::new();
    scenario.push(Step::Panic("kaboom"));
    scenario.run::<F>().await.expect("the panic is caught");
    let failures = scenario.log.failures();
    let [failure] = failures.as_slice() else {
        panic!("one failure event: {failures:?}");
    };
    assert_eq!(failure.step(), FailedStep::Dispatch);
    assert_eq!(failure.panic().map(PanicError::message), Some("kaboom"));
    assert!(
        scenario
            .log
            .contains("failure: dispatch_state failed in state `Running`: panicked: kaboom"),
        "{:?}",
        scenario.log.entries()
    );
    assert!(scenario.log.contains("enter Failed"));
    assert_eq!(scenario.completions(), 1);
}

async fn panic_in_action_takes_the_failure_path<F: Flavor>() {
    let mut scenario = Scenario::new();
    scenario.push(Step::Emit(ExampleEvent::Work(vec![
        ExampleAction::Panic("exploded"),
        ExampleAction::Record("after"),
    ])));
    scenario.run::<F>().await.expect("the panic is caught");
    assert!(
        scenario
            .log
            .contains("failure: action `Panic` failed in state `Running`: panicked: exploded"),
        "{:?}",
        scenario.log.entries()
    );
    assert!(!scenario.log.contains("after"));
    assert_eq!(scenario.completions(), 1);
}

async fn panic_in_transition_takes_the_failure_path<F: Flavor>() {
    let mut scenario = Scenario::new().with_panicking_transition();
    scenario.push(Step::Emit(ExampleEvent::Work(vec![ExampleAction::Record(
        "never",
    )])));
    scenario.run::<F>().await.expect("the panic is caught");
    let failures = scenario.log.failures();
    let [failure] = failures.as_slice() else {
        panic!("one failure event: {failures:?}");
    };
    assert_eq!(
        (failure.step(), failure.state()),
        (FailedStep::Transition("Work"), "Running")
    );
    assert!(failure.panic().is_some());
    assert!(
        scenario.log.contains(
            "failure: the transition on `Work` failed in state `Running`: panicked: \
                 transition exploded",
        ),
        "{:?}",
        scenario.log.entries()
    );
    assert!(!scenario.log.contains("never"));
    assert_eq!(scenario.completions(), 1);
}

async fn wait_for_input_error_takes_the_failure_path<F: Flavor>() {
    let mut scenario = Scenario::new();
    scenario.push(Step::FailWaiting("upstream vanished"));
    scenario
        .run::<F>()
        .await
        .expect("the failure path absorbs it");
    assert!(
        scenario
            .log
            .contains("failure: wait_for_input failed in state `Running`: upstream vanished"),
        "{:?}",
        scenario.log.entries()
    );
    assert_eq!(scenario.completions(), 1);
}

async fn panic_in_wait_for_input_takes_the_failure_path<F: Flavor>() {
    let mut scenario = Scenario::new();
    scenario.push(Step::PanicWaiting("poisoned wait"));
    scenario.run::<F>().await.expect("the panic is caught");
    assert!(
        scenario
            .log
            .contains("failure: wait_for_input failed in state `Running`: panicked: poisoned wait"),
        "{:?}",
        scenario.log.entries()
    );
    assert_eq!(scenario.completions(), 1);
}

async fn continue_goes_round_again<F: Flavor>() {
    let mut scenario = Scenario::new();
    scenario.push(Step::Continue);
    scenario.push(Step::Continue);
    scenario.push(Step::Emit(ExampleEvent::Work(vec![ExampleAction::Record(
        "after continues",
    )])));
    scenario.end_input();
    scenario.run::<F>().await.expect("a clean run");
    assert!(scenario.log.contains("after continues"));
    assert_eq!(scenario.completions(), 1);
}

async fn unhandled_failure_event_is_a_typed_error<F: Flavor>() {
    let mut scenario = Scenario::new().with_gate_step(Step::Fail("not ready"));
    let error = scenario.run::<F>().await.unwrap_err();
    match &error {
        SupervisionError::UnhandledFailure {
            supervisor,
            state,
            source:
                FsmError::Unhandled {
                    state: fsm_state,
                    event,
                },
        } => {
            assert_eq!(supervisor, NAME);
            assert_eq!(*state, "Created");
            assert_eq!(*fsm_state, "Created");
            assert_eq!(*event, "Failure");
        }
        other => panic!("unexpected error: {other:?}"),
    }
    assert!(error.source().is_some(), "the machine's error is chained");
    assert_one_completion_after(&scenario, &error);
}

async fn unhandled_regular_event_is_a_typed_error<F: Flavor>() {
    let mut scenario = Scenario::new();
    scenario.push(Step::Emit(ExampleEvent::Finish));
    let error = scenario.run::<F>().await.unwrap_err();
    match error {
        SupervisionError::Fsm {
            state: "Running",
            source:
                FsmError::Unhandled {
                    state: "Running",
                    event: "Finish",
                },
            ..
        } => {}
        other => panic!("unexpected error: {other:?}"),
    }
    assert_one_completion_after(&scenario, &error);
}

async fn failing_failure_action_is_a_typed_error<F: Flavor>() {
    let mut scenario = Scenario::new().with_broken_failure_handling();
    scenario.push(Step::Fail("first failure"));
    let error = scenario.run::<F>().await.unwrap_err();
    match &error {
        SupervisionError::FailureActionFailed {
            state: "Failed",
            action: "Fail",
            source,
            ..
        } => assert_eq!(source.to_string(), "failure handling broke"),
        other => panic!("unexpected error: {other:?}"),
    }
    assert!(scenario
        .log
        .contains("failure: dispatch_state failed in state `Running`: first failure"));
    assert_one_completion_after(&scenario, &error);
}

async fn failed_completion_is_a_typed_error<F: Flavor>() {
    let mut scenario = Scenario::new().with_completion(Completion::Fail);
    scenario.end_input();
    let error = scenario.run::<F>().await.unwrap_err();
    match &error {
        SupervisionError::Completion {
            state: "Drained",
            source,
            ..
        } => assert_eq!(source.to_string(), "completion journal unavailable"),
        other => panic!("unexpected error: {other:?}"),
    }
    assert_eq!(scenario.completions(), 1, "attempted exactly once");
}

async fn panicking_completion_is_a_typed_error<F: Flavor>() {
    let mut scenario = Scenario::new().with_completion(Completion::Panic);
    scenario.end_input();
    let error = scenario.run::<F>().await.unwrap_err();
    match &error {
        SupervisionError::Completion { source, .. } => {
            let panic = source
                .downcast_ref::<PanicError>()
                .expect("a panic is reported as a PanicError");
            assert_eq!(panic.message(), "completion exploded");
        }
        other => panic!("unexpected error: {other:?}"),
    }
    assert_eq!(scenario.completions(), 1);
}

#[test]
fn run_if_not_error_passes_error_events_through_untouched() {
    let supervisor: HandlerExample = Scenario::new().handler_example();
    let mut failed = ChainEvent::data("order", serde_json::json!({"id": 1}));
    failed.processing_info.status = ProcessingStatus::error(ErrorKind::Validation, "bad", None);
    let passed = supervisor.run_if_not_error(failed.clone(), |_| panic!("must not run"));
    assert_eq!(passed, vec![failed]);

    let fine = ChainEvent::data("order", serde_json::json!({"id": 2}));
    let processed = supervisor.run_if_not_error(fine.clone(), |event| vec![event.clone(), event]);
    assert_eq!(processed, vec![fine.clone(), fine]);
}

/// A failure on the transition into a terminal state is not absorbed by that state: the loop
/// ends with a typed error and writes no (clean) completion.
async fn failing_entry_into_a_terminal_state_is_a_typed_error<F: Flavor>() {
    let mut scenario = Scenario::new().with_failing_drained_entry();
    scenario.end_input();
    let error = scenario.run::<F>().await.unwrap_err();
    match &error {
        SupervisionError::FailedInTerminalState {
            supervisor,
            state,
            failure,
        } => {
            assert_eq!((supervisor.as_str(), *state), (NAME, "Drained"));
            assert_eq!(
                (failure.step(), failure.state()),
                (FailedStep::Action("Fail"), "Drained")
            );
            assert_eq!(
                failure.cause().to_string(),
                "cannot record the drained state"
            );
        }
        other => panic!("expected FailedInTerminalState, got {other:?}"),
    }
    assert_eq!(
        error.to_string(),
        "supervisor `example` failed in its terminal state `Drained`"
    );
    assert_eq!(
        ErrorChain::new(&error).to_string(),
        "supervisor `example` failed in its terminal state `Drained`: \
         action `Fail` failed in state `Drained`: cannot record the drained state"
    );
    assert_one_completion_after(&scenario, &error);
}

/// A `dispatch_state` that fails in a terminal state fails once, not forever.
async fn failing_dispatch_in_a_terminal_state_ends_the_loop_at_once<F: Flavor>() {
    let mut scenario = Scenario::new().with_failing_terminal_dispatch();
    scenario.end_input();
    let error = scenario.run::<F>().await.unwrap_err();
    assert!(
        matches!(
            &error,
            SupervisionError::FailedInTerminalState { state: "Drained", failure, .. }
                if failure.step() == FailedStep::Dispatch
                    && failure.cause().to_string() == "the terminal record cannot be written"
        ),
        "{error:?}"
    );
    let failures = scenario
        .log
        .entries()
        .iter()
        .filter(|entry| *entry == "terminal dispatch failed")
        .count();
    assert_eq!(failures, 1);
    assert_one_completion_after(&scenario, &error);
}

/// The panic's message, from a loop that ended with [`SupervisionError::Panicked`].
fn panic_message(error: &SupervisionError) -> &str {
    match error {
        SupervisionError::Panicked { supervisor, source } => {
            assert_eq!(supervisor, NAME);
            source.message()
        }
        other => panic!("expected Panicked, got {other:?}"),
    }
}

async fn panic_in_build_state_machine_still_writes_one_completion<F: Flavor>() {
    let mut scenario = Scenario::new().with_panic_in(PanicSite::BuildStateMachine);
    let error = scenario.run::<F>().await.unwrap_err();
    assert_eq!(panic_message(&error), "BuildStateMachine exploded");
    assert_one_completion_after(&scenario, &error);
}

async fn panic_in_command_policy_still_writes_one_completion<F: Flavor>() {
    // Only a loop with a command channel asks for the policy.
    let mut scenario = Scenario::new().with_panic_in(PanicSite::CommandPolicy);
    let error = scenario.spawn::<F>().join().await.unwrap_err();
    assert_eq!(panic_message(&error), "CommandPolicy exploded");
    assert_one_completion_after(&scenario, &error);
}

async fn panic_in_event_for_command_still_writes_one_completion<F: Flavor>() {
    let mut scenario = Scenario::new().with_panic_in(PanicSite::EventForCommand);
    let handle = scenario.spawn::<F>();
    handle.send(ExampleCommand::Start).await.unwrap();
    let error = handle.join().await.unwrap_err();
    assert_eq!(panic_message(&error), "EventForCommand exploded");
    assert_one_completion_after(&scenario, &error);
}

async fn panic_in_timeout_still_writes_one_completion<F: Flavor>() {
    let mut scenario = Scenario::new().with_panicking_timeout();
    scenario.end_input();
    let error = scenario.run::<F>().await.unwrap_err();
    assert_eq!(panic_message(&error), "timeout exploded");
    assert!(scenario.log.contains("enter Draining"));
    assert_one_completion_after(&scenario, &error);
}
