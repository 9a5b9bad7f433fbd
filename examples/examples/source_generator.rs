//! An infinite, rate-limited generator source, stopped gracefully: the source stops, and
//! everything it already produced drains through the flow.
//!
//! Run it with `cargo run -p obzenflow_examples --example source_generator`.

use std::error::Error;
use std::time::Duration;

use obzenflow_core::Timestamp;
use obzenflow_examples::smoke_mode;
use obzenflow_stages::prelude::*;
use obzenflow_stages::sources::{GeneratorConfig, GeneratorSource};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, Clone)]
struct Heartbeat {
    seq: u64,
    host: String,
    at: String,
}

impl TypedPayload for Heartbeat {
    const EVENT_TYPE: &'static str = "heartbeat";
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    obzenflow_examples::init_tracing();
    let run_for = if smoke_mode() {
        Duration::from_millis(300)
    } else {
        Duration::from_secs(2)
    };

    // Ten heartbeats a second, forever: only a stop ends this source.
    let heartbeats = GeneratorSource::typed(GeneratorConfig::per_second(10), |seq| Heartbeat {
        seq,
        host: format!("web-{}", seq % 3),
        at: Timestamp::now().to_string(),
    });
    let mut flow = FlowBuilder::new("heartbeats");
    let beats = flow.add_async_source("heartbeats", heartbeats);
    flow.add_sink(
        "print",
        ConsoleSink::typed(|h: &Heartbeat| format!("#{:<3} {} {}", h.seq, h.host, h.at)),
        &beats,
    );
    let flow = flow.build()?.start()?;

    tokio::time::sleep(run_for).await;
    // Stop the source; give the rest of the flow five seconds to drain what is in flight.
    flow.stop_graceful(Duration::from_secs(5)).await?;
    let report = flow.wait().await?;
    println!("\n{report}");
    if !report.is_success() {
        return Err("the flow did not drain".into());
    }
    Ok(())
}
