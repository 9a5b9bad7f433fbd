//! The shortest real flow, written with the prelude: the code the root README's "Using
//! ObzenFlow in your crate" shows (`cargo xtask tidy` checks that the two are the same).
//!
//! `cargo run -p obzenflow_examples --example minimal`

// README: begin
use obzenflow_stages::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Order {
    id: u64,
    cents: u64,
}

impl TypedPayload for Order {
    const EVENT_TYPE: &'static str = "order";
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let orders = (1..=5).map(|id| Order {
        id,
        cents: id * 250,
    });
    let mut flow = FlowBuilder::new("large-orders");
    let orders = flow.add_source("orders", IterSource::from_payloads(orders));
    let large = flow.add_transform(
        "large",
        typed::filter(|order: &Order| order.cents >= 500),
        &orders,
    );
    flow.add_sink(
        "print",
        ConsoleSink::typed(|o: &Order| format!("order {} {}", o.id, o.cents)),
        &large,
    );
    let report = flow.journals(Journals::memory()).build()?.run().await?;
    println!("{report}");
    if !report.is_success() {
        return Err("the flow did not succeed; the report above says why".into());
    }
    Ok(())
}
// README: end
