//! The lifecycle diagram of the example supervisor the supervision tests drive, rendered from
//! its transition function, so the documented lifecycle cannot drift from the code.

mod supervision_support;

use obzenflow_fsm::render_mermaid;
use supervision_support::{ExampleContext, ExampleEvent, ExampleMachine, ExampleState, Log};

#[test]
fn example_supervisor_lifecycle_diagram() {
    let states = [
        ExampleState::Created,
        ExampleState::Running,
        ExampleState::Draining,
        ExampleState::Drained,
        ExampleState::failed("sample"),
    ];
    let diagram = render_mermaid::<ExampleMachine>(&states, &ExampleEvent::samples(), || {
        ExampleContext::new(Log::new())
    });
    let expected = "\
stateDiagram-v2
    [*] --> Created
    Created --> Running : Start
    Created --> Failed : ControlClosed / Abort
    Running --> Running : Work
    Running --> Draining : BeginDrain / ControlClosed
    Running --> Failed : Abort / Failure
    Draining --> Draining : Work / BeginDrain / ControlClosed
    Draining --> Drained : Finish
    Draining --> Failed : DrainTimedOut / Abort / Failure
    Drained --> [*]
    Failed --> [*]
";
    assert_eq!(diagram, expected, "rendered:\n{diagram}");
}
