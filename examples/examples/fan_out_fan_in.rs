//! Fan-out and fan-in: payments split into domestic and international branches, each priced
//! with its own fee, then merged again into one per-currency total.
//!
//! ```text
//!            ┌─▶ domestic ──────▶ domestic_fee ──────┐
//! payments ──┤                                       ├─▶ fees_per_currency ─▶ print
//!            └─▶ international ─▶ international_fee ─┘
//! ```
//!
//! Run it with `cargo run -p obzenflow_examples --example fan_out_fan_in`.

use std::error::Error;

use obzenflow_examples::{dollars, smoke_mode, thousands};
use obzenflow_stages::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Payment {
    id: u64,
    currency: String,
    amount: f64,
    cross_border: bool,
}

impl TypedPayload for Payment {
    const EVENT_TYPE: &'static str = "payment";
}

#[derive(Debug, Serialize, Deserialize, Clone)]
struct Fee {
    currency: String,
    amount: f64,
}

impl TypedPayload for Fee {
    const EVENT_TYPE: &'static str = "fee";
}

#[derive(Debug, Serialize, Deserialize, Clone)]
struct FeeTotal {
    currency: String,
    payments: u64,
    fees: f64,
}

impl TypedPayload for FeeTotal {
    const EVENT_TYPE: &'static str = "fee.total";
}

/// `count` payments in three currencies; one in four crosses a border.
fn payments(count: u64) -> impl Iterator<Item = Payment> + Send + 'static {
    (0..count).map(|id| Payment {
        id,
        currency: ["USD", "EUR", "JPY"][(id % 3) as usize].to_owned(),
        amount: 10.0 + (id % 200) as f64,
        cross_border: id % 4 == 0,
    })
}

/// A fee of `fixed` plus `rate` of the amount.
fn fee(fixed: f64, rate: f64) -> impl FnMut(Payment) -> Fee + Send + 'static {
    move |payment| Fee {
        currency: payment.currency,
        amount: fixed + payment.amount * rate,
    }
}

/// Payments and fees per currency, emitted when both branches have ended.
fn fee_totals() -> Aggregate<Fee, String, FeeTotal> {
    Aggregate::fold(
        |fee: &Fee| fee.currency.clone(),
        |group| FeeTotal {
            currency: group.key.clone(),
            payments: 0,
            fees: 0.0,
        },
        |total: &mut FeeTotal, fee: &Fee| {
            total.payments += 1;
            total.fees += fee.amount;
        },
    )
}

fn print_totals(total: &FeeTotal) -> String {
    format!(
        "  {}  {:>8} payments  {:>12} in fees",
        total.currency,
        thousands(total.payments),
        dollars(total.fees)
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    obzenflow_examples::init_tracing();
    let count = if smoke_mode() { 500 } else { 50_000 };
    let mut flow = FlowBuilder::new("fan-out-fan-in");
    let payments = flow.add_source("payments", IterSource::from_payloads(payments(count)));
    // Fan-out: both branches read every payment and keep their half.
    let domestic = flow.add_transform(
        "domestic",
        typed::filter(|p: &Payment| !p.cross_border),
        &payments,
    );
    let international = flow.add_transform(
        "international",
        typed::filter(|p: &Payment| p.cross_border),
        &payments,
    );
    let domestic_fee = flow.add_transform("domestic_fee", typed::map(fee(0.30, 0.010)), &domestic);
    let international_fee = flow.add_transform(
        "international_fee",
        typed::map(fee(1.00, 0.025)),
        &international,
    );
    // Fan-in: the aggregation reads both branches and ends when both have ended.
    let totals = flow.add_stateful(
        "fees_per_currency",
        fee_totals(),
        [&domestic_fee, &international_fee],
    );
    flow.add_sink(
        "print",
        ConsoleSink::typed(print_totals).title("Fees per currency"),
        &totals,
    );
    let report = flow.build()?.run().await?;
    println!("\n{report}");
    if !report.is_success() {
        return Err("the flow did not complete".into());
    }
    Ok(())
}
