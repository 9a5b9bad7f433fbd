//! Typed transforms: filter, try_map (rule breakers to the error lane), flat_map and map over
//! your own structs, with no JSON handled by hand.
//!
//! Run it with `cargo run -p obzenflow_examples --example transform_typed`.

use std::error::Error;

use obzenflow_examples::{dollars, smoke_mode};
use obzenflow_stages::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, Clone)]
struct Basket {
    id: u64,
    items: Vec<(String, u32, f64)>,
    coupon: Option<String>,
}

impl TypedPayload for Basket {
    const EVENT_TYPE: &'static str = "basket";
}

#[derive(Debug, Serialize, Deserialize, Clone)]
struct Line {
    basket: u64,
    product: String,
    total: f64,
}

impl TypedPayload for Line {
    const EVENT_TYPE: &'static str = "basket.line";
}

fn baskets(count: u64) -> Vec<Basket> {
    (0..count)
        .map(|id| Basket {
            id,
            items: (0..id % 4)
                .map(|n| {
                    (
                        format!("item-{n}"),
                        (n + 1) as u32,
                        2.5 * (n + 1 + id % 3) as f64,
                    )
                })
                .collect(),
            coupon: (id % 5 == 0).then(|| {
                if id % 10 == 0 {
                    "EXPIRED".into()
                } else {
                    "TEN".into()
                }
            }),
        })
        .collect()
}

/// Rejects baskets with an expired coupon.
fn check_coupon(basket: Basket) -> Result<Basket, RecordError> {
    match basket.coupon.as_deref() {
        Some("EXPIRED") => Err(RecordError::validation(format!(
            "basket {}: coupon expired",
            basket.id
        ))),
        _ => Ok(basket),
    }
}

/// One line per item, with the coupon's discount applied.
fn lines(basket: Basket) -> Vec<Line> {
    let discount = if basket.coupon.is_some() { 0.9 } else { 1.0 };
    basket
        .items
        .into_iter()
        .map(|(product, quantity, price)| Line {
            basket: basket.id,
            product,
            total: f64::from(quantity) * price * discount,
        })
        .collect()
}

fn round_to_cents(line: Line) -> Line {
    Line {
        total: (line.total * 100.0).round() / 100.0,
        ..line
    }
}

fn print_line(line: &Line) -> String {
    format!(
        "basket {:>3}  {:<7} {:>8}",
        line.basket,
        line.product,
        dollars(line.total)
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    obzenflow_examples::init_tracing();
    let count = if smoke_mode() { 12 } else { 40 };

    let mut flow = FlowBuilder::new("transform-typed");
    let baskets = flow.add_source("baskets", IterSource::from_payloads(baskets(count)));
    // Empty baskets are filtered out (counted as filtered in the report).
    let non_empty = flow.add_transform(
        "non_empty",
        typed::filter(|b: &Basket| !b.items.is_empty()),
        &baskets,
    );
    // A broken business rule sends the basket to the error lane with the reason.
    let coupons = flow.add_transform("coupons", typed::try_map(check_coupon), &non_empty);
    // One basket in, one line per item out.
    let lines = flow.add_transform("lines", typed::flat_map(lines), &coupons);
    let rounded = flow.add_transform("round", typed::map(round_to_cents), &lines);
    flow.add_sink("print", ConsoleSink::typed(print_line), &rounded);
    let report = flow.build()?.run().await?;
    println!("\n{report}");
    if !report.is_success() {
        return Err("the flow did not complete".into());
    }
    Ok(())
}
