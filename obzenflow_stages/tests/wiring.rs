//! Typed wiring checked at build: an edge whose upstream emits one record type and whose
//! downstream decodes another is refused by `build()`, naming both stages and both types.

use obzenflow_stages::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Flight {
    carrier: String,
    delay: i64,
}

impl TypedPayload for Flight {
    const EVENT_TYPE: &'static str = "flight";
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Airport {
    code: String,
}

impl TypedPayload for Airport {
    const EVENT_TYPE: &'static str = "airport";
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Delays {
    carrier: String,
    flights: u64,
}

impl TypedPayload for Delays {
    const EVENT_TYPE: &'static str = "delays";
}

fn flights() -> Vec<Flight> {
    vec![Flight {
        carrier: "AA".into(),
        delay: 5,
    }]
}

fn per_airport() -> Aggregate<Airport, String, Delays> {
    Aggregate::fold(
        |airport: &Airport| airport.code.clone(),
        |group| Delays {
            carrier: group.key.clone(),
            flights: 0,
        },
        |delays: &mut Delays, _: &Airport| delays.flights += 1,
    )
}

#[test]
fn a_mis_wired_typed_flow_is_refused_at_build_naming_both_stages_and_types() {
    let built = FlowBuilder::new("mis-wired")
        .source("flights", IterSource::from_payloads(flights()))
        .stateful("per_airport", per_airport())
        .sink("out", CollectSink::new())
        .chain(["flights", "per_airport", "out"])
        .journals(Journals::memory())
        .build();
    let Err(FlowError::Graph(GraphError::TypeMismatch {
        from,
        emits,
        to,
        decodes,
    })) = &built
    else {
        panic!("expected a type mismatch, got {built:?}");
    };
    assert_eq!((from.as_str(), to.as_str()), ("flights", "per_airport"));
    assert_eq!(
        (emits.event_type(), decodes.event_type()),
        ("flight", "airport")
    );
    let message = ErrorChain::new(built.as_ref().unwrap_err()).to_string();
    for part in [
        "flights",
        "per_airport",
        "`flight`",
        "`airport`",
        "wiring::Flight",
        "wiring::Airport",
    ] {
        assert!(message.contains(part), "{part} missing from: {message}");
    }
}

#[test]
fn a_typed_stage_after_a_typed_filter_checks_through_it() {
    let built = FlowBuilder::new("through-a-filter")
        .source("flights", IterSource::from_payloads(flights()))
        .transform("late", typed::filter(|flight: &Flight| flight.delay > 0))
        .sink(
            "print",
            ConsoleSink::typed(|airport: &Airport| airport.code.clone()),
        )
        .chain(["flights", "late", "print"])
        .journals(Journals::memory())
        .build();
    assert!(
        matches!(
            &built,
            Err(FlowError::Graph(GraphError::TypeMismatch { from, to, .. }))
                if from == "late" && to == "print"
        ),
        "{built:?}"
    );
}

#[tokio::test]
async fn a_well_wired_typed_flow_builds_and_untyped_ends_take_any_record() {
    let per_carrier = Aggregate::fold(
        |flight: &Flight| flight.carrier.clone(),
        |group| Delays {
            carrier: group.key.clone(),
            flights: 0,
        },
        |delays: &mut Delays, _: &Flight| delays.flights += 1,
    );
    let report = FlowBuilder::new("well-wired")
        .source("flights", IterSource::from_payloads(flights()))
        .stateful("per_carrier", per_carrier)
        .transform("any", map(|event: ChainEvent| event))
        .sink("out", CollectSink::new())
        .chain(["flights", "per_carrier", "any", "out"])
        .journals(Journals::memory())
        .build()
        .expect("the types agree; untyped stages take anything")
        .run()
        .await
        .unwrap();
    assert!(report.is_success(), "{report}");
}

#[test]
fn a_mis_wired_flow_of_stage_handles_is_refused_at_build_too() {
    let mut flow = FlowBuilder::new("mis-wired-handles");
    let flights = flow.add_source("flights", IterSource::from_payloads(flights()));
    let per_airport = flow.add_stateful("per_airport", per_airport(), &flights);
    flow.add_sink("out", CollectSink::new(), &per_airport);
    let built = flow.journals(Journals::memory()).build();
    let message = match &built {
        Err(error @ FlowError::Graph(GraphError::TypeMismatch { .. })) => {
            ErrorChain::new(error).to_string()
        }
        other => panic!("expected a type mismatch, got {other:?}"),
    };
    assert!(
        message.contains("edge flights -> per_airport cannot carry records"),
        "{message}"
    );
}
