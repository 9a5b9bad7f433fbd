//! A JSON Lines source read as raw JSON values, and the same file read into a typed payload:
//! a line that is valid JSON but has the wrong shape is fine for the first and a decode error
//! for the second.
//!
//! Run it with `cargo run -p obzenflow_examples --example source_jsonl`.

use std::error::Error;
use std::fmt::Write as _;

use obzenflow_examples::{data_dir, smoke_mode};
use obzenflow_stages::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, Clone)]
struct Click {
    user: u64,
    page: String,
}

impl TypedPayload for Click {
    const EVENT_TYPE: &'static str = "click";
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    obzenflow_examples::init_tracing();
    let lines = if smoke_mode() { 50 } else { 5_000 };
    let mut jsonl = String::new();
    for n in 0..lines {
        match n % 1_000 {
            10 => jsonl.push_str("{\"user\": 10, \"page\": \n"), // cut short: not JSON at all
            20 => jsonl.push_str("{\"user\": \"twenty\", \"page\": \"/\"}\n"), // JSON, wrong type
            _ => writeln!(
                jsonl,
                "{{\"user\": {}, \"page\": \"/p/{}\"}}",
                n % 97,
                n % 13
            )?,
        }
    }
    let path = data_dir().join("clicks.jsonl");
    std::fs::create_dir_all(data_dir())?;
    std::fs::write(&path, jsonl)?;

    // Both sources read the same file; memory journals are enough for a look at the counts.
    let mut flow = FlowBuilder::new("source-jsonl");
    let as_json = flow.add_async_source("as_json", JsonLinesSource::new(&path, "click"));
    let as_clicks = flow.add_async_source("as_clicks", JsonLinesSource::typed::<Click>(&path));
    flow.add_sink("discard", NullSink::new(), [&as_json, &as_clicks]);
    let report = flow.journals(Journals::memory()).build()?.run().await?;
    println!("{report}");
    if !report.is_success() {
        return Err("the flow did not complete".into());
    }
    Ok(())
}
