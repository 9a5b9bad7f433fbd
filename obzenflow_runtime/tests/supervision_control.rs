//! The control plane of spawned supervisors, pinned for both supervisor traits under paused
//! time: commands awaited in gates and selected while running, closed channels, the state
//! watch, state deadlines, idling without spinning, and joining with a deadline.

mod supervision_support;

use std::time::Duration;

use obzenflow_runtime::supervised_base::SupervisionError;
use supervision_support::{
    ExampleAction, ExampleCommand, ExampleEvent, ExampleHandle, ExampleState, Flavor, Scenario,
    Step,
};
use tokio::sync::mpsc::error::{SendError, TrySendError};
use tokio::time::{advance, Instant};

/// How long the idle tests leave a supervisor alone.
const IDLE: Duration = Duration::from_secs(10);
/// A bound on join waits, so a broken loop fails a test instead of hanging it.
const JOIN_DEADLINE: Duration = Duration::from_secs(60);
/// The most iterations a supervisor may use to start, reach `Running` and block there.
const STARTUP_ITERATIONS: u64 = 3;

for_both_traits!(
    gate_state_awaits_a_command_without_dispatching,
    commands_are_selected_while_running,
    commands_take_priority_over_ready_input,
    closed_channel_becomes_the_machine_event,
    closed_channel_without_event_stops_listening_without_spinning,
    closed_channel_in_a_gate_state_fails_the_gate,
    state_is_published_on_every_transition,
    failure_transition_is_published,
    state_deadline_feeds_the_timeout_event,
    idle_supervisor_does_not_spin_and_wakes_on_input,
    join_with_deadline_reports_a_typed_timeout,
    send_hands_the_command_back_when_closed,
);

async fn wait_for(handle: &ExampleHandle, wanted: ExampleState) {
    let expected = wanted.clone();
    let reached = handle.wait_for_state(move |state| *state == expected).await;
    assert_eq!(reached, Some(wanted));
}

async fn start<F: Flavor>(scenario: &mut Scenario) -> ExampleHandle {
    let handle = scenario.spawn::<F>();
    handle.send(ExampleCommand::Start).await.unwrap();
    wait_for(&handle, ExampleState::Running).await;
    handle
}

async fn gate_state_awaits_a_command_without_dispatching<F: Flavor>() {
    let mut scenario = Scenario::new();
    let handle = scenario.spawn::<F>();
    advance(IDLE).await;
    // In `Created` a dispatch would emit `Start`; staying there proves none happened.
    assert_eq!(handle.current_state(), ExampleState::Created);
    assert_eq!(handle.iterations(), 1);
    assert_eq!(scenario.log.entries(), vec!["enter Created".to_owned()]);

    handle.send(ExampleCommand::Start).await.unwrap();
    wait_for(&handle, ExampleState::Running).await;
    handle.send(ExampleCommand::Abort).await.unwrap();
    handle.join_with_deadline(JOIN_DEADLINE).await.unwrap();
    assert_eq!(scenario.completions(), 1);
}

async fn commands_are_selected_while_running<F: Flavor>() {
    let mut scenario = Scenario::new();
    let handle = start::<F>(&mut scenario).await;
    scenario.push(Step::Emit(ExampleEvent::Work(vec![ExampleAction::Record(
        "w1",
    )])));
    scenario.log.wait_for("w1").await;

    handle.send(ExampleCommand::BeginDrain).await.unwrap();
    wait_for(&handle, ExampleState::Draining).await;
    scenario.end_input();
    wait_for(&handle, ExampleState::Drained).await;
    handle.join_with_deadline(JOIN_DEADLINE).await.unwrap();
    assert_eq!(scenario.completions(), 1);
}

async fn commands_take_priority_over_ready_input<F: Flavor>() {
    let mut scenario = Scenario::new();
    let handle = start::<F>(&mut scenario).await;
    // Both become ready while the supervisor is parked; the biased select takes the command.
    scenario.push(Step::Emit(ExampleEvent::Work(vec![ExampleAction::Record(
        "input",
    )])));
    handle.send(ExampleCommand::BeginDrain).await.unwrap();
    scenario.log.wait_for("input").await;
    let entries = scenario.log.entries();
    let draining = entries.iter().position(|entry| entry == "enter Draining");
    let input = entries.iter().position(|entry| entry == "input");
    assert!(draining < input, "{entries:?}");

    scenario.end_input();
    handle.join_with_deadline(JOIN_DEADLINE).await.unwrap();
}

async fn closed_channel_becomes_the_machine_event<F: Flavor>() {
    let mut scenario = Scenario::new().with_closed_event(Some(ExampleEvent::ControlClosed));
    let mut handle = start::<F>(&mut scenario).await;
    handle.close_commands();
    wait_for(&handle, ExampleState::Draining).await;
    let iterations = handle.iterations();
    advance(IDLE).await;
    assert_eq!(
        handle.iterations(),
        iterations,
        "a closed channel is never selected again"
    );

    scenario.end_input();
    handle.join_with_deadline(JOIN_DEADLINE).await.unwrap();
    assert_eq!(scenario.completions(), 1);
}

async fn closed_channel_without_event_stops_listening_without_spinning<F: Flavor>() {
    let mut scenario = Scenario::new().with_closed_event(None);
    let mut handle = start::<F>(&mut scenario).await;
    let iterations = handle.iterations();
    handle.close_commands();
    advance(IDLE).await;
    assert_eq!(handle.current_state(), ExampleState::Running);
    assert!(
        handle.iterations() <= iterations + 1,
        "{} iterations after closing",
        handle.iterations() - iterations
    );

    scenario.push(Step::Emit(ExampleEvent::Work(vec![ExampleAction::Record(
        "still working",
    )])));
    scenario.log.wait_for("still working").await;
    scenario.end_input();
    handle.join_with_deadline(JOIN_DEADLINE).await.unwrap();
    assert_eq!(scenario.completions(), 1);
}

async fn closed_channel_in_a_gate_state_fails_the_gate<F: Flavor>() {
    let mut scenario = Scenario::new().with_closed_event(Some(ExampleEvent::ControlClosed));
    let mut handle = scenario.spawn::<F>();
    handle.close_commands();
    wait_for(&handle, ExampleState::failed("control closed before start")).await;
    handle.join_with_deadline(JOIN_DEADLINE).await.unwrap();
    assert_eq!(scenario.completions(), 1);
}

async fn state_is_published_on_every_transition<F: Flavor>() {
    let mut scenario = Scenario::new();
    let handle = scenario.spawn::<F>();
    let mut states = handle.state();
    assert_eq!(*states.borrow_and_update(), ExampleState::Created);
    // Let the supervisor start and park in its gate.
    advance(IDLE).await;
    assert_eq!(handle.iterations(), 1);
    assert!(
        !states.has_changed().unwrap(),
        "the initial state is not announced twice"
    );

    handle.send(ExampleCommand::Start).await.unwrap();
    states.changed().await.unwrap();
    assert_eq!(*states.borrow_and_update(), ExampleState::Running);

    handle.send(ExampleCommand::BeginDrain).await.unwrap();
    states.changed().await.unwrap();
    assert_eq!(*states.borrow_and_update(), ExampleState::Draining);

    scenario.end_input();
    states.changed().await.unwrap();
    assert_eq!(*states.borrow_and_update(), ExampleState::Drained);

    let stats = handle.stats();
    handle.join_with_deadline(JOIN_DEADLINE).await.unwrap();
    assert_eq!(stats.transitions(), 3);
    assert!(
        states.changed().await.is_err(),
        "nothing is published after the end"
    );
    assert_eq!(*states.borrow(), ExampleState::Drained);
}

async fn failure_transition_is_published<F: Flavor>() {
    let mut scenario = Scenario::new();
    let handle = start::<F>(&mut scenario).await;
    let mut states = handle.state();
    states.borrow_and_update();
    scenario.push(Step::Fail("broken record"));
    states.changed().await.unwrap();
    assert_eq!(
        *states.borrow_and_update(),
        ExampleState::failed("dispatch_state failed in state `Running`: broken record")
    );
    handle.join_with_deadline(JOIN_DEADLINE).await.unwrap();
}

async fn state_deadline_feeds_the_timeout_event<F: Flavor>() {
    let drain_timeout = Duration::from_secs(30);
    let mut scenario = Scenario::new().with_drain_timeout(drain_timeout);
    let handle = start::<F>(&mut scenario).await;
    handle.send(ExampleCommand::BeginDrain).await.unwrap();
    wait_for(&handle, ExampleState::Draining).await;
    let draining_since = Instant::now();

    wait_for(&handle, ExampleState::failed("drain timed out")).await;
    assert_eq!(draining_since.elapsed(), drain_timeout);
    handle.join_with_deadline(JOIN_DEADLINE).await.unwrap();
    assert!(scenario.log.contains("failure: drain timed out"));
    assert_eq!(scenario.completions(), 1);
}

async fn idle_supervisor_does_not_spin_and_wakes_on_input<F: Flavor>() {
    let mut scenario = Scenario::new();
    let handle = start::<F>(&mut scenario).await;
    let iterations = handle.iterations();
    advance(IDLE).await;
    assert!(
        handle.iterations() <= STARTUP_ITERATIONS,
        "{} iterations while idle",
        handle.iterations()
    );
    assert_eq!(handle.iterations(), iterations, "no iteration while idle");

    let woken_at = Instant::now();
    scenario.push(Step::Emit(ExampleEvent::Work(vec![ExampleAction::Record(
        "woke",
    )])));
    scenario.log.wait_for("woke").await;
    assert_eq!(woken_at.elapsed(), Duration::ZERO, "woken at once");

    handle.send(ExampleCommand::Abort).await.unwrap();
    handle.join_with_deadline(JOIN_DEADLINE).await.unwrap();
}

async fn join_with_deadline_reports_a_typed_timeout<F: Flavor>() {
    let mut scenario = Scenario::new();
    let handle = scenario.spawn::<F>();
    let timeout = Duration::from_secs(5);
    let started = Instant::now();
    let error = handle.join_with_deadline(timeout).await.unwrap_err();
    assert_eq!(started.elapsed(), timeout);
    match error {
        SupervisionError::JoinTimeout {
            supervisor,
            timeout: waited,
        } => {
            assert_eq!(supervisor, supervision_support::NAME);
            assert_eq!(waited, timeout);
        }
        other => panic!("unexpected error: {other:?}"),
    }
    assert_eq!(scenario.completions(), 0);
}

async fn send_hands_the_command_back_when_closed<F: Flavor>() {
    let mut scenario = Scenario::new();
    let mut handle = scenario.spawn::<F>();
    handle.close_commands();
    assert_eq!(
        handle.send(ExampleCommand::Start).await,
        Err(SendError(ExampleCommand::Start))
    );
    assert!(matches!(
        handle.try_send(ExampleCommand::Abort),
        Err(TrySendError::Closed(ExampleCommand::Abort))
    ));
    wait_for(&handle, ExampleState::failed("control closed before start")).await;
    handle.join_with_deadline(JOIN_DEADLINE).await.unwrap();
}
