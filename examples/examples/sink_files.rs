//! File sinks: the same records written as JSON Lines (payloads, and whole events with their
//! lineage) and as CSV. Each file is written to a uniquely named `<path>.<pid>.<random>.tmp`
//! and renamed when the flow drains, so a file that exists is complete.
//!
//! Run it with `cargo run -p obzenflow_examples --example sink_files`.

use std::error::Error;

use obzenflow_examples::{out_dir, smoke_mode, thousands};
use obzenflow_stages::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, Clone)]
struct Invoice {
    number: String,
    customer: String,
    total: f64,
    paid: bool,
}

impl TypedPayload for Invoice {
    const EVENT_TYPE: &'static str = "invoice";
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    obzenflow_examples::init_tracing();
    let count = if smoke_mode() { 100 } else { 10_000 };
    let invoices = (0..count).map(|n| Invoice {
        number: format!("INV-{n:05}"),
        customer: format!("Customer {}, Ltd.", n % 37),
        total: (n % 500) as f64 * 1.25,
        paid: n % 3 != 0,
    });

    let dir = out_dir().join("sink_files");
    let files = [
        ("payloads", dir.join("invoices.jsonl")),
        ("events", dir.join("invoice_events.jsonl")),
        ("csv", dir.join("invoices.csv")),
    ];
    // One source fans out to three sinks; each reads the source's journal with its own cursor.
    let mut flow = FlowBuilder::new("sink-files");
    let invoices = flow.add_source("invoices", IterSource::from_payloads(invoices));
    flow.add_sink("payloads", JsonLinesSink::new(&files[0].1), &invoices);
    flow.add_sink(
        "events",
        JsonLinesSink::new(&files[1].1).whole_events(),
        &invoices,
    );
    flow.add_sink("csv", CsvSink::typed::<Invoice>(&files[2].1), &invoices);
    let report = flow.build()?.run().await?;
    println!("{report}\n");
    for (stage, path) in &files {
        let bytes = std::fs::metadata(path)?.len();
        let records = report.stage(stage).map_or(0, |stage| stage.records_out);
        println!(
            "  {:<54} {:>7} records {:>10} bytes",
            path.display(),
            thousands(records),
            thousands(bytes)
        );
    }
    if !report.is_success() {
        return Err("the flow did not complete".into());
    }
    Ok(())
}
