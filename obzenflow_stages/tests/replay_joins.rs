//! Joins and replay: the reference side of a lookup join is journaled like any stage, so a
//! replay reads the archived table and never the file on disk, and `verify` finds no
//! difference after the file changed; a changed combine function is named by `verify` at the
//! join, with the first divergent joined record and its lineage back to both inputs' sources.

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use obzenflow_runtime::replay::verify;
use obzenflow_stages::joins::{JoinStrategy, LookupJoin};
use obzenflow_stages::prelude::*;
use serde::{Deserialize, Serialize};
use support::assert_drained;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Airline {
    code: String,
    name: String,
}
impl TypedPayload for Airline {
    const EVENT_TYPE: &'static str = "airline";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Flight {
    number: String,
    carrier: String,
}
impl TypedPayload for Flight {
    const EVENT_TYPE: &'static str = "flight";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Enriched {
    number: String,
    airline: Option<String>,
}
impl TypedPayload for Enriched {
    const EVENT_TYPE: &'static str = "flight.enriched";
}

struct Setup {
    dir: tempfile::TempDir,
    airlines: PathBuf,
    flights: PathBuf,
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let airlines = dir.path().join("airlines.csv");
        fs::write(&airlines, "code,name\nAA,American\nDL,Delta\nUA,United\n").unwrap();
        let flights = dir.path().join("flights.csv");
        fs::write(
            &flights,
            "number,carrier\nAA1,AA\nDL2,DL\nXX3,XX\nUA4,UA\nDL5,DL\n",
        )
        .unwrap();
        Self {
            dir,
            airlines,
            flights,
        }
    }

    fn runs(&self) -> Journals {
        Journals::disk(self.dir.path().join("runs"))
    }
}

/// The enrichment flow; `shout` changes the combine function's code.
fn flow(setup: &Setup, shout: bool, sink: CollectSink) -> FlowBuilder {
    let enrich = LookupJoin::new(
        |airline: &Airline| airline.code.clone(),
        |flight: &Flight| flight.carrier.clone(),
        move |flight: &Flight, airline: Option<&Airline>| Enriched {
            number: flight.number.clone(),
            airline: airline.map(|airline| {
                if shout {
                    airline.name.to_uppercase()
                } else {
                    airline.name.clone()
                }
            }),
        },
    )
    .strategy(JoinStrategy::Left);
    FlowBuilder::new("flights")
        .async_source("airlines", CsvSource::typed::<Airline>(&setup.airlines))
        .async_source("flights", CsvSource::typed::<Flight>(&setup.flights))
        .join("enrich", enrich, "airlines", "flights")
        .sink("out", sink)
        .edge("enrich", "out")
        .journals(setup.runs())
}

/// Runs the flow (as a replay of `replay_of`, if given); returns its run directory and what
/// the join emitted.
async fn run_flow(
    setup: &Setup,
    shout: bool,
    replay_of: Option<&Path>,
) -> (PathBuf, Vec<Enriched>) {
    let sink = CollectSink::new();
    let mut builder = flow(setup, shout, sink.clone());
    if let Some(original) = replay_of {
        builder = builder.replay_from(original);
    }
    let report = builder.build().unwrap().run().await.unwrap();
    assert_drained(&report);
    (report.run_dir.unwrap(), sink.decode::<Enriched>().unwrap())
}

fn rename_delta(setup: &Setup) {
    fs::write(
        &setup.airlines,
        "code,name\nAA,American\nDL,Delta Air Lines\nUA,United\n",
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_after_the_lookup_file_changed_reads_the_archived_table_and_verifies_identical() {
    let setup = Setup::new();
    let (original, joined) = run_flow(&setup, false, None).await;
    assert_eq!(joined[1].airline.as_deref(), Some("Delta"));
    assert_eq!(
        joined[2].airline, None,
        "XX has no airline: a left join passes it on"
    );
    rename_delta(&setup);

    let (replay, replayed) = run_flow(&setup, false, Some(&original)).await;
    assert_eq!(
        replayed, joined,
        "the replay joined against the archived table"
    );
    let report = verify(&original, &replay).unwrap();
    assert!(report.is_identical(), "{report}");
    assert!(report.to_string().contains("0 differences"), "{report}");

    // The check has teeth: a fresh run reads the changed file and differs at the join.
    let (fresh, _) = run_flow(&setup, false, None).await;
    let report = verify(&original, &fresh).unwrap();
    assert!(!report.is_identical(), "{report}");
    assert_eq!(
        report.first_difference().unwrap().stage,
        "airlines",
        "{report}"
    );
    assert!(
        report.stage("enrich").unwrap().differences() > 0,
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_the_first_joined_record_a_changed_combine_function_changed_with_its_lineage()
{
    let setup = Setup::new();
    let (original, _) = run_flow(&setup, false, None).await;
    let (replay, replayed) = run_flow(&setup, true, Some(&original)).await;
    assert_eq!(replayed[0].airline.as_deref(), Some("AMERICAN"));
    let report = verify(&original, &replay).unwrap();
    assert_eq!(
        report.first_difference().unwrap().stage,
        "enrich",
        "{report}"
    );
    let text = report.to_string();
    // The first joined record, both versions, traced back to both inputs: the flight it
    // enriched and the airline it was joined with.
    assert!(
        text.contains("first divergent data record, index 0"),
        "{text}"
    );
    assert!(text.contains("\"AMERICAN\""), "{text}");
    assert!(text.contains("\"American\""), "{text}");
    assert!(text.contains("-> source `flights` data record 0"), "{text}");
    let joined = text
        .lines()
        .filter(|line| line.contains("joined with correlation"))
        .collect::<Vec<_>>();
    assert_eq!(joined.len(), 2, "both versions name the airline: {text}");
    assert!(
        joined
            .iter()
            .all(|line| line.contains("-> source `airlines` data record 0")),
        "{text}"
    );
    assert!(
        joined.iter().any(|line| line.contains("(replay of ")),
        "the replay's airline is the archived one it re-emitted: {text}"
    );
}
