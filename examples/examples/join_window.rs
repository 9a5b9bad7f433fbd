//! An interval join of two streams: each purchase is paired with the clicks of the same user
//! in the ten minutes before it. State is evicted as each side's watermark (the latest event
//! time it has seen, minus the allowed lateness) passes; a click that arrives later than that
//! goes to the error lane saying how late it is.
//!
//! Run it with `cargo run -p obzenflow_examples --example join_window`.

use std::error::Error;
use std::time::Duration;

use obzenflow_core::Timestamp;
use obzenflow_examples::smoke_mode;
use obzenflow_stages::prelude::*;
use serde::{Deserialize, Serialize};

/// 2024-06-01T12:00:00Z, in seconds.
const START_SECONDS: u64 = 1_717_243_200;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Click {
    user: u32,
    page: String,
    at_seconds: u64,
}

impl TypedPayload for Click {
    const EVENT_TYPE: &'static str = "click";
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Purchase {
    user: u32,
    cents: u64,
    at_seconds: u64,
}

impl TypedPayload for Purchase {
    const EVENT_TYPE: &'static str = "purchase";
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Attributed {
    user: u32,
    page: String,
    cents: u64,
    minutes_before: u64,
}

impl TypedPayload for Attributed {
    const EVENT_TYPE: &'static str = "purchase.attributed";
}

/// A click per user every 4 minutes; one click arrives half an hour late.
fn clicks(users: u32, minutes: u64) -> Vec<Click> {
    let mut clicks: Vec<Click> = (0..minutes / 4)
        .flat_map(|tick| {
            (0..users).map(move |user| Click {
                user,
                page: format!("/product/{}", (tick + u64::from(user)) % 5),
                at_seconds: START_SECONDS + tick * 240 + u64::from(user) * 7,
            })
        })
        .collect();
    clicks.push(Click {
        user: 0,
        page: "/late".to_owned(),
        at_seconds: START_SECONDS + 60,
    });
    clicks
}

/// A purchase per user every 15 minutes.
fn purchases(users: u32, minutes: u64) -> Vec<Purchase> {
    (1..=minutes / 15)
        .flat_map(|tick| {
            (0..users).map(move |user| Purchase {
                user,
                cents: 1_000 + u64::from(user) * 250,
                at_seconds: START_SECONDS + tick * 900 + 30,
            })
        })
        .collect()
}

fn at(seconds: u64) -> Timestamp {
    Timestamp::from_micros(seconds * 1_000_000)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    obzenflow_examples::init_tracing();
    let (users, minutes) = if smoke_mode() { (2, 30) } else { (3, 60) };

    // A click (left) pairs with a purchase (right) of the same user made 0 to 10 minutes later.
    let attribute = IntervalJoin::new(
        |click: &Click| click.user,
        |purchase: &Purchase| purchase.user,
        |click: &Click, purchase: &Purchase| Attributed {
            user: click.user,
            page: click.page.clone(),
            cents: purchase.cents,
            minutes_before: (purchase.at_seconds - click.at_seconds) / 60,
        },
    )
    .between(Duration::ZERO, Duration::from_secs(600))
    .allowed_lateness(Duration::from_secs(60))
    .event_time(
        |click: &Click| at(click.at_seconds),
        |purchase: &Purchase| at(purchase.at_seconds),
    );

    let mut flow = FlowBuilder::new("join-window");
    let clicks = flow.add_source("clicks", IterSource::from_payloads(clicks(users, minutes)));
    let purchases = flow.add_source(
        "purchases",
        IterSource::from_payloads(purchases(users, minutes)),
    );
    let attributed = flow.add_join("attribute", attribute, &clicks, &purchases);
    flow.add_sink(
        "print",
        ConsoleSink::typed(|a: &Attributed| {
            format!(
                "user {}  {:>6.2} $  after {:<13} {} min before",
                a.user,
                a.cents as f64 / 100.0,
                a.page,
                a.minutes_before
            )
        })
        .title("Purchases and the clicks before them (order may vary)"),
        &attributed,
    );
    let report = flow.journals(Journals::memory()).build()?.run().await?;
    println!("\n{report}");
    if !report.is_success() {
        return Err("the flow did not complete".into());
    }
    Ok(())
}
