//! A CSV source with typed rows: good rows flow on, bad rows (a short row, a value of the
//! wrong type, bytes that are not UTF-8) land on the error lane with file, line and reason.
//!
//! Run it with `cargo run -p obzenflow_examples --example source_csv`.

use std::error::Error;
use std::fmt::Write as _;

use obzenflow_examples::{data_dir, smoke_mode};
use obzenflow_stages::prelude::*;
use serde::{Deserialize, Serialize};

/// One row of the file; serde maps the columns to the fields by header name.
#[derive(Debug, Serialize, Deserialize, Clone)]
struct Reading {
    sensor: String,
    celsius: f64,
    battery: u8,
}

impl TypedPayload for Reading {
    const EVENT_TYPE: &'static str = "reading";
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    obzenflow_examples::init_tracing();
    let rows = if smoke_mode() { 20 } else { 200 };

    // A small file with three broken rows on purpose.
    let mut csv = String::from("sensor,celsius,battery\n");
    for n in 0..rows {
        match n {
            3 => csv.push_str("s3,21.5\n"),       // a field is missing
            7 => csv.push_str("s7,warm,80\n"),    // not a number
            11 => csv.push_str("s11,19.0,300\n"), // out of range for a u8
            _ => writeln!(
                csv,
                "s{n},{:.1},{}",
                18.0 + (n % 7) as f64 * 0.5,
                100 - n % 50
            )?,
        }
    }
    let path = data_dir().join("readings.csv");
    std::fs::create_dir_all(data_dir())?;
    std::fs::write(&path, csv)?;

    let mut flow = FlowBuilder::new("source-csv");
    let readings = flow.add_async_source("readings", CsvSource::typed::<Reading>(&path));
    flow.add_sink(
        "print",
        ConsoleSink::typed(|r: &Reading| {
            format!(
                "{:<5} {:>5.1} °C  battery {:>3}%",
                r.sensor, r.celsius, r.battery
            )
        })
        .title("Readings"),
        &readings,
    );
    let report = flow.build()?.run().await?;
    // The report quotes the first error-lane reasons of every stage.
    println!("\n{report}");
    if !report.is_success() {
        return Err("the flow did not complete".into());
    }
    Ok(())
}
