//! Event-time tumbling windows: per-sensor statistics for every minute of readings. A window
//! closes when a reading from a later minute arrives; the last ones close when the input ends;
//! a reading for a minute already closed is late and goes to the error lane.
//!
//! Run it with `cargo run -p obzenflow_examples --example stateful_windows`.

use std::error::Error;
use std::time::Duration;

use obzenflow_core::Timestamp;
use obzenflow_examples::smoke_mode;
use obzenflow_stages::prelude::*;
use obzenflow_stages::stateful::Emit;
use serde::{Deserialize, Serialize};

/// 2024-06-01T12:00:00Z, in microseconds.
const START_MICROS: u64 = 1_717_243_200_000_000;

#[derive(Debug, Serialize, Deserialize, Clone)]
struct Reading {
    sensor: String,
    at_micros: u64,
    celsius: f64,
}

impl TypedPayload for Reading {
    const EVENT_TYPE: &'static str = "reading";
}

#[derive(Debug, Serialize, Deserialize, Clone)]
struct MinuteStats {
    sensor: String,
    minute: String,
    readings: u64,
    mean: f64,
    max: f64,
}

impl TypedPayload for MinuteStats {
    const EVENT_TYPE: &'static str = "reading.minute";
}

/// A reading every 5 seconds per sensor, in time order, plus one that arrives far too late.
fn readings(minutes: u64) -> Vec<Reading> {
    let mut readings: Vec<Reading> = (0..minutes * 12)
        .flat_map(|tick| {
            ["boiler", "intake"].into_iter().map(move |sensor| Reading {
                sensor: sensor.to_owned(),
                at_micros: START_MICROS + tick * 5_000_000,
                celsius: 20.0
                    + (tick % 12) as f64 * 0.25
                    + (tick / 12) as f64 * 0.6
                    + if sensor == "boiler" { 40.0 } else { 0.0 },
            })
        })
        .collect();
    readings.push(Reading {
        sensor: "intake".to_owned(),
        at_micros: START_MICROS + 1_000_000,
        celsius: 99.0,
    });
    readings
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    obzenflow_examples::init_tracing();
    let minutes = if smoke_mode() { 3 } else { 10 };

    let per_minute = Aggregate::fold(
        |reading: &Reading| reading.sensor.clone(),
        |group| MinuteStats {
            sensor: group.key.clone(),
            minute: group.window.map_or(String::new(), |window| {
                window.start.to_string()[11..16].to_owned()
            }),
            readings: 0,
            mean: 0.0,
            max: f64::MIN,
        },
        |stats: &mut MinuteStats, reading: &Reading| {
            stats.readings += 1;
            stats.mean += (reading.celsius - stats.mean) / stats.readings as f64;
            stats.max = stats.max.max(reading.celsius);
        },
    )
    // The reading's own timestamp is its event time.
    .event_time(|reading: &Reading| Timestamp::from_micros(reading.at_micros))
    .emit(Emit::TumblingWindow(Duration::from_secs(60)));

    let mut flow = FlowBuilder::new("stateful-windows");
    let readings = flow.add_source("readings", IterSource::from_payloads(readings(minutes)));
    let stats = flow.add_stateful("per_minute", per_minute, &readings);
    flow.add_sink(
        "print",
        ConsoleSink::typed(|s: &MinuteStats| {
            format!(
                "{} UTC  {:<7} {:>2} readings  mean {:>5.2} °C  max {:>5.2} °C",
                s.minute, s.sensor, s.readings, s.mean, s.max
            )
        })
        .title("Per-minute sensor statistics"),
        &stats,
    );
    let report = flow.build()?.run().await?;
    println!("\n{report}");
    if !report.is_success() {
        return Err("the flow did not complete".into());
    }
    Ok(())
}
