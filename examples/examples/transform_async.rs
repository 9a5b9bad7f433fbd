//! An async transform with bounded concurrency: each record needs a slow "remote" lookup, at
//! most 32 run at once, results keep their input order, and lookups that take too long go to
//! the error lane as timeouts.
//!
//! Run it with `cargo run -p obzenflow_examples --example transform_async`.

use std::error::Error;
use std::time::{Duration, Instant};

use obzenflow_examples::smoke_mode;
use obzenflow_stages::prelude::*;
use obzenflow_stages::transforms::AsyncMapConfig;
use serde::{Deserialize, Serialize};

/// How long one lookup takes.
const LOOKUP_TIME: Duration = Duration::from_millis(20);
/// How many lookups run at once.
const CONCURRENCY: usize = 32;

#[derive(Debug, Serialize, Deserialize, Clone)]
struct Signup {
    user: u64,
    email: String,
}

impl TypedPayload for Signup {
    const EVENT_TYPE: &'static str = "signup";
}

#[derive(Debug, Serialize, Deserialize, Clone)]
struct Profile {
    user: u64,
    email: String,
    country: String,
}

impl TypedPayload for Profile {
    const EVENT_TYPE: &'static str = "profile";
}

/// Pretends to ask a geo-IP service; one user in a hundred makes it hang.
async fn lookup_country(signup: Signup) -> Result<Profile, RecordError> {
    let delay = if signup.user % 100 == 99 {
        LOOKUP_TIME * 50
    } else {
        LOOKUP_TIME
    };
    tokio::time::sleep(delay).await;
    let country = ["US", "DE", "JP", "BR"][(signup.user % 4) as usize];
    Ok(Profile {
        user: signup.user,
        email: signup.email,
        country: country.to_owned(),
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    obzenflow_examples::init_tracing();
    let users = if smoke_mode() { 200 } else { 2_000 };
    let signups = (0..users).map(|user| Signup {
        user,
        email: format!("user{user}@example.com"),
    });

    let config = AsyncMapConfig::with_concurrency(CONCURRENCY).timeout(LOOKUP_TIME * 10);
    let profiles = CollectSink::new();
    let started = Instant::now();
    let mut flow = FlowBuilder::new("transform-async");
    let signups = flow.add_source("signups", IterSource::from_payloads(signups));
    let geo = flow.add_async_transform("geo", typed::async_map(config, lookup_country), &signups);
    flow.add_sink("profiles", profiles.clone(), &geo);
    let report = flow.build()?.run().await?;
    let elapsed = started.elapsed();

    let profiles = profiles.decode::<Profile>()?;
    let in_order = profiles.windows(2).all(|pair| pair[0].user < pair[1].user);
    println!("{report}\n");
    println!(
        "{} lookups of {LOOKUP_TIME:?} each took {elapsed:.2?} with {CONCURRENCY} in flight \
         (one at a time would take {:.2?}); results in input order: {in_order}",
        users,
        LOOKUP_TIME * users as u32
    );
    if !report.is_success() || !in_order {
        return Err("the flow did not complete in order".into());
    }
    Ok(())
}
