//! A lookup join: enrich a stream of flights with airline names from a CSV table, then show
//! that a replay is hermetic: the table is journaled like any stage, so after the CSV is
//! changed a replay still joins against the archived table and `verify` finds 0 differences.
//!
//! Run it with `cargo run -p obzenflow_examples --example join_lookup`.

use std::error::Error;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use obzenflow_examples::flights::CARRIERS;
use obzenflow_examples::random::XorShift;
use obzenflow_examples::{data_dir, smoke_mode};
use obzenflow_runtime::replay::verify;
use obzenflow_stages::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Airline {
    code: String,
    name: String,
}

impl TypedPayload for Airline {
    const EVENT_TYPE: &'static str = "airline";
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Flight {
    number: String,
    carrier: String,
    origin: String,
}

impl TypedPayload for Flight {
    const EVENT_TYPE: &'static str = "flight";
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct EnrichedFlight {
    number: String,
    origin: String,
    airline: Option<String>,
}

impl TypedPayload for EnrichedFlight {
    const EVENT_TYPE: &'static str = "flight.enriched";
}

/// Writes the airline table and `count` flights, a few of them on a carrier the table lacks.
fn write_inputs(dir: &Path, count: u64) -> Result<(PathBuf, PathBuf), Box<dyn Error>> {
    fs::create_dir_all(dir)?;
    let mut airlines = String::from("code,name\n");
    for (code, name) in CARRIERS {
        writeln!(airlines, "{code},{name}")?;
    }
    let mut flights = String::from("number,carrier,origin\n");
    let mut random = XorShift::new(7);
    for number in 0..count {
        let carrier = if number % 9 == 8 {
            "ZZ"
        } else {
            random.pick(CARRIERS).map_or("WN", |(code, _)| code)
        };
        let origin = ["SFO", "ORD", "JFK", "ATL", "DEN"][random.below(5) as usize];
        writeln!(flights, "{carrier}{},{carrier},{origin}", 100 + number)?;
    }
    let (airlines_path, flights_path) = (dir.join("airlines.csv"), dir.join("flights.csv"));
    fs::write(&airlines_path, airlines)?;
    fs::write(&flights_path, flights)?;
    Ok((airlines_path, flights_path))
}

/// The flow: the airline table is read to its end first, then each flight meets it; a flight
/// of an unknown carrier passes on with no airline (a left join).
fn flow(airlines: &Path, flights: &Path, title: &str) -> FlowBuilder {
    let enrich = LookupJoin::new(
        |airline: &Airline| airline.code.clone(),
        |flight: &Flight| flight.carrier.clone(),
        |flight: &Flight, airline: Option<&Airline>| EnrichedFlight {
            number: flight.number.clone(),
            origin: flight.origin.clone(),
            airline: airline.map(|airline| airline.name.clone()),
        },
    )
    .strategy(JoinStrategy::Left)
    .mode(LookupMode::HydrateFirst);
    let sink = ConsoleSink::typed(|flight: &EnrichedFlight| {
        format!(
            "{:<7} from {}  {}",
            flight.number,
            flight.origin,
            flight.airline.as_deref().unwrap_or("(unknown airline)")
        )
    })
    .title(title);
    let mut flow = FlowBuilder::new("join-lookup");
    let airlines = flow.add_async_source("airlines", CsvSource::typed::<Airline>(airlines));
    let flights = flow.add_async_source("flights", CsvSource::typed::<Flight>(flights));
    let enriched = flow.add_join("enrich", enrich, &airlines, &flights);
    flow.add_sink("print", sink, &enriched);
    flow
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    obzenflow_examples::init_tracing();
    let count = if smoke_mode() { 18 } else { 40 };
    let (airlines, flights) = write_inputs(&data_dir().join("join_lookup"), count)?;

    let report = flow(&airlines, &flights, "Flights with their airline")
        .build()?
        .run()
        .await?;
    println!("\n{report}");
    if !report.is_success() {
        return Err("the flow did not complete".into());
    }
    let original = report.run_dir.clone().ok_or("the run has no directory")?;

    // Rename an airline on disk, then replay: the replay reads the archived table.
    let table = fs::read_to_string(&airlines)?;
    fs::write(
        &airlines,
        table.replace("Delta Air Lines", "Delta (renamed)"),
    )?;
    let replay = flow(
        &airlines,
        &flights,
        "\nReplayed, after renaming Delta in the CSV",
    )
    .replay_from(&original)
    .build()?
    .run()
    .await?;
    let verdict = verify(
        &original,
        replay.run_dir.as_ref().ok_or("no run directory")?,
    )?;
    println!("after renaming an airline in {}:", airlines.display());
    print!("{verdict}");
    if !verdict.is_identical() {
        return Err("the replay was not hermetic".into());
    }
    Ok(())
}
