//! Renders a machine's transition table as a Mermaid state diagram, by probing the transition
//! function, so lifecycle documentation is generated from the code instead of drawn by hand.

use crate::machine::StateMachine;
use crate::transition::Transition;
use crate::variant::{EventVariant, StateVariant};

/// Renders the transitions of `M` between the given sample states and events as a Mermaid
/// `stateDiagram-v2`.
///
/// Every non-terminal sample state is probed with every sample event, each probe with a fresh
/// context from `make_context`, so probes cannot influence each other:
/// - [`Transition::To`] draws `From --> To : Event`;
/// - [`Transition::Stay`] draws a self edge `From --> From : Event` (the event is handled);
/// - [`Transition::Unhandled`] draws nothing.
///
/// The first sample state is marked initial (`[*] --> State`) and terminal states get
/// `State --> [*]`; terminal states are not probed because they absorb every event. Events
/// leading along the same edge are merged into one label, `A / B`. Output order follows the
/// sample order (states, then events), so it is deterministic and reads in lifecycle order if the
/// samples do. Sample states that appear on no edge are still declared.
///
/// The diagram only shows what the samples reach: a transition that depends on a state's data or
/// on the context shows the outcome for the sampled values.
pub fn render_mermaid<M: StateMachine>(
    states: &[M::State],
    events: &[M::Event],
    mut make_context: impl FnMut() -> M::Context,
) -> String {
    let mut edges: Vec<Edge> = Vec::new();
    let mut terminals: Vec<&'static str> = Vec::new();
    for state in states {
        let from = state.variant_name();
        if M::is_terminal(state) {
            push_unique(&mut terminals, from);
            continue;
        }
        for event in events {
            let mut context = make_context();
            let to = match M::transition(state, event, &mut context) {
                Transition::To { next, .. } => next.variant_name(),
                Transition::Stay { .. } => from,
                Transition::Unhandled => continue,
            };
            add_edge(&mut edges, from, to, event.variant_name());
        }
    }
    render(states, &edges, &terminals)
}

/// One arrow of the diagram with the events that follow it, in first-seen order.
struct Edge {
    from: &'static str,
    to: &'static str,
    events: Vec<&'static str>,
}

fn add_edge(edges: &mut Vec<Edge>, from: &'static str, to: &'static str, event: &'static str) {
    // Linear search keeps first-seen order; diagrams have tens of edges at most.
    match edges
        .iter_mut()
        .find(|edge| edge.from == from && edge.to == to)
    {
        Some(edge) => push_unique(&mut edge.events, event),
        None => edges.push(Edge {
            from,
            to,
            events: vec![event],
        }),
    }
}

fn push_unique(names: &mut Vec<&'static str>, name: &'static str) {
    if !names.contains(&name) {
        names.push(name);
    }
}

fn render<S: StateVariant>(states: &[S], edges: &[Edge], terminals: &[&'static str]) -> String {
    let mut lines = vec!["stateDiagram-v2".to_owned()];
    let mut mentioned: Vec<&'static str> = Vec::new();
    if let Some(initial) = states.first() {
        lines.push(format!("    [*] --> {}", initial.variant_name()));
        mentioned.push(initial.variant_name());
    }
    for edge in edges {
        lines.push(format!(
            "    {} --> {} : {}",
            edge.from,
            edge.to,
            edge.events.join(" / ")
        ));
        push_unique(&mut mentioned, edge.from);
        push_unique(&mut mentioned, edge.to);
    }
    for terminal in terminals {
        lines.push(format!("    {terminal} --> [*]"));
        push_unique(&mut mentioned, terminal);
    }
    // A state with no edges would otherwise be missing from the diagram altogether.
    for state in states {
        let name = state.variant_name();
        if !mentioned.contains(&name) {
            lines.push(format!("    {name}"));
            mentioned.push(name);
        }
    }
    let mut diagram = lines.join("\n");
    diagram.push('\n');
    diagram
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{Door, DoorContext, DoorEvent, DoorMachine};

    const DOOR_STATES: [Door; 4] = [Door::Closed, Door::Open, Door::Locked, Door::Broken];

    #[test]
    fn door_diagram_is_exact() {
        let diagram =
            render_mermaid::<DoorMachine>(&DOOR_STATES, &DoorEvent::ALL, DoorContext::default);
        let expected = "\
stateDiagram-v2
    [*] --> Closed
    Closed --> Open : Open
    Closed --> Locked : Lock
    Closed --> Closed : Knock
    Closed --> Broken : Kick
    Open --> Closed : Close / AutoClose
    Open --> Broken : Kick
    Locked --> Closed : Unlock
    Locked --> Locked : Knock
    Locked --> Broken : Kick
    Broken --> [*]
";
        assert_eq!(diagram, expected);
    }

    #[test]
    fn each_probe_gets_a_fresh_context() {
        let mut contexts_made = 0;
        render_mermaid::<DoorMachine>(&DOOR_STATES, &DoorEvent::ALL, || {
            contexts_made += 1;
            DoorContext::default()
        });
        // Three non-terminal states times seven events; the terminal state is not probed.
        assert_eq!(contexts_made, 21);
    }

    #[test]
    fn duplicate_samples_are_deduplicated_and_isolated_states_declared() {
        // Only `Kick` is sampled, so `Locked` is reached by no edge yet must still appear.
        let states = [
            Door::Open,
            Door::Open,
            Door::Locked,
            Door::Broken,
            Door::Broken,
        ];
        let diagram =
            render_mermaid::<DoorMachine>(&states, &[DoorEvent::Kick], DoorContext::default);
        let expected = "\
stateDiagram-v2
    [*] --> Open
    Open --> Broken : Kick
    Locked --> Broken : Kick
    Broken --> [*]
";
        assert_eq!(diagram, expected);

        let diagram =
            render_mermaid::<DoorMachine>(&[Door::Open, Door::Locked], &[], DoorContext::default);
        assert_eq!(diagram, "stateDiagram-v2\n    [*] --> Open\n    Locked\n");
    }

    #[test]
    fn no_samples_render_an_empty_diagram() {
        let diagram = render_mermaid::<DoorMachine>(&[], &DoorEvent::ALL, DoorContext::default);
        assert_eq!(diagram, "stateDiagram-v2\n");
    }
}
