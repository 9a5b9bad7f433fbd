//! The quickstart: 100,000 orders from a CSV file, parsed, checked, aggregated per customer
//! and per day, written to JSON Lines files, with the top ten customers on the console and a
//! run report at the end.
//!
//! ```text
//!                                        ┌─▶ by_customer ─┬─▶ customers_file
//! orders ─▶ paid ─▶ priced ──────────────┤                └─▶ top_10 ─▶ console
//!   ┆                 ┆                  └─▶ by_day ──────────▶ days_file
//!   └┄┄┄┄┄┄┄┄┄┄┄┄┄┄┄┄┄┴┄┄ error lanes ┄┄┄┄┄┄┄┄┄┄┄┄┄┄┄┄┄┄┄┄┄┄┄▶ rejected_file
//! ```
//!
//! Run it with `cargo run --release -p obzenflow_examples --example quickstart`
//! (`OBZENFLOW_SMOKE=1` for 2,000 orders). Every stage journals what it emits under
//! `target/obzenflow/runs/<run-id>`.
//!
//! Replay a finished run from its journals, and prove the replay produced the same output:
//!
//! ```text
//! cargo run --release -p obzenflow_examples --example quickstart -- \
//!     --replay-from target/obzenflow/runs/<run-id> --verify
//! ```
//!
//! The source then reads its archived journal instead of the CSV file; every other stage runs
//! the current code; `--verify` compares the two runs stage by stage and exits 1 on any
//! difference. The replay writes its outputs under `target/obzenflow/out/replays/<replay run
//! id>/`, leaving the original run's files as they were; the report and `Outputs` say where.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use obzenflow_examples::orders::{
    add_money, sale_from, write_orders, CustomerRevenue, DailyRevenue, Order, OrdersConfig, Sale,
};
use obzenflow_examples::progress::FlowProgress;
use obzenflow_examples::{data_dir, dollars, out_dir, smoke_mode, thousands};
use obzenflow_runtime::replay::verify;
use obzenflow_stages::prelude::*;

/// How many customers the leaderboard shows.
const TOP_CUSTOMERS: usize = 10;

#[tokio::main]
async fn main() -> ExitCode {
    obzenflow_examples::init_tracing();
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            let error: &(dyn std::error::Error + 'static) = &*error;
            eprintln!(
                "quickstart: error: {}",
                obzenflow_core::ErrorChain::new(error)
            );
            ExitCode::FAILURE
        }
    }
}

/// What the command line asked for.
#[derive(Debug, Default)]
struct Options {
    /// Replay this run directory instead of reading the CSV file.
    replay_from: Option<PathBuf>,
    /// After a replay, compare it with the run it replayed.
    verify: bool,
}

const USAGE: &str = "usage: quickstart [--replay-from <run-dir> [--verify]]";

fn parse_options() -> Result<Options, String> {
    let mut options = Options::default();
    let mut arguments = std::env::args().skip(1);
    while let Some(argument) = arguments.next() {
        match argument.as_str() {
            "--replay-from" => {
                let dir = arguments
                    .next()
                    .ok_or_else(|| format!("--replay-from needs a run directory; {USAGE}"))?;
                options.replay_from = Some(PathBuf::from(dir));
            }
            "--verify" => options.verify = true,
            other => return Err(format!("unknown argument `{other}`; {USAGE}")),
        }
    }
    if options.verify && options.replay_from.is_none() {
        return Err(format!(
            "--verify compares a replay with its original; {USAGE}"
        ));
    }
    Ok(options)
}

/// Runs the flow; `Ok(false)` when it ran but did not complete (the report says why), or a
/// verified replay differs from its original.
async fn run() -> Result<bool, Box<dyn Error>> {
    let options = parse_options()?;
    let smoke = smoke_mode();
    let config = if smoke {
        OrdersConfig::SMOKE
    } else {
        OrdersConfig::FULL
    };

    // The input: a realistic orders export, the same bytes on every run, with a few rows
    // broken on purpose so the error lane has something to show.
    let orders_path = data_dir().join("orders.csv");
    let rows = write_orders(&orders_path, config)?;
    println!("ObzenFlow quickstart");
    println!(
        "  input: {} ({} orders, {} of them broken on purpose)\n",
        orders_path.display(),
        thousands(rows),
        config.broken_rows
    );

    let progress = FlowProgress::new("orders", rows, smoke);
    let paths = OutputPaths {
        customers: out_dir().join("revenue_by_customer.jsonl"),
        days: out_dir().join("revenue_by_day.jsonl"),
        rejected: out_dir().join("rejected.jsonl"),
    };
    let mut builder = FlowBuilder::new("quickstart");
    // Rows that do not parse (short rows, a quantity of "two", bytes that are not UTF-8)
    // go to the error lane with file, line and reason; the flow goes on.
    let orders = builder.add_async_source("orders", CsvSource::typed::<Order>(&orders_path));
    let paid = builder.add_transform(
        "paid",
        typed::filter(|order: &Order| order.status == "paid"),
        &orders,
    );
    // Orders that break a business rule go to the error lane too, as validation errors.
    let priced = builder.add_transform("priced", typed::try_map(sale_from), &paid);
    let by_customer = builder.add_stateful("by_customer", revenue_by_customer(), &priced);
    let by_day = builder.add_stateful("by_day", revenue_by_day(), &priced);
    let top_10 = builder.add_stateful("top_10", top_customers(), &by_customer);
    builder.add_sink(
        "customers_file",
        JsonLinesSink::new(&paths.customers),
        &by_customer,
    );
    builder.add_sink("days_file", JsonLinesSink::new(&paths.days), &by_day);
    builder.add_sink("console", leaderboard(&progress), &top_10);
    // Both error lanes feed one dead-letter file: every rejected row with its stage, reason
    // and payload.
    builder.add_sink(
        "rejected_file",
        DeadLetterSink::new(&paths.rejected),
        [orders.errors(), priced.errors()],
    );
    if let Some(original) = &options.replay_from {
        println!("  replaying {}\n", original.display());
        builder = builder.replay_from(original);
    }
    let flow = builder.build()?.start()?;

    progress.follow(&flow).await;
    let report = flow.wait().await?;
    println!("\n{report}\n");
    print_outputs(&report, &paths);
    if !report.is_success() {
        return Ok(false);
    }
    match (&options.replay_from, options.verify, &report.run_dir) {
        (Some(original), true, Some(replay)) => {
            let verification = verify(original, replay)?;
            println!("Verification\n{verification}");
            Ok(verification.is_identical())
        }
        _ => Ok(true),
    }
}

/// Revenue and paid orders per customer, emitted when the input ends.
fn revenue_by_customer() -> Aggregate<Sale, String, CustomerRevenue> {
    Aggregate::fold(
        |sale: &Sale| sale.customer_id.clone(),
        |group| CustomerRevenue {
            customer_id: group.key.clone(),
            customer_name: String::new(),
            orders: 0,
            revenue: 0.0,
        },
        |total: &mut CustomerRevenue, sale: &Sale| {
            total.customer_name.clone_from(&sale.customer_name);
            total.orders += 1;
            total.revenue = add_money(total.revenue, sale.revenue);
        },
    )
}

/// Revenue and paid orders per UTC day, emitted when the input ends.
fn revenue_by_day() -> Aggregate<Sale, String, DailyRevenue> {
    Aggregate::fold(
        |sale: &Sale| sale.day.clone(),
        |group| DailyRevenue {
            day: group.key.clone(),
            orders: 0,
            revenue: 0.0,
        },
        |total: &mut DailyRevenue, sale: &Sale| {
            total.orders += 1;
            total.revenue = add_money(total.revenue, sale.revenue);
        },
    )
}

/// The customers with the most revenue, best first.
fn top_customers() -> Aggregate<CustomerRevenue, String, CustomerRevenue> {
    Aggregate::reduce(
        |customer: &CustomerRevenue| customer.customer_id.clone(),
        |latest: &mut CustomerRevenue, update: &CustomerRevenue| *latest = update.clone(),
    )
    .top_n(TOP_CUSTOMERS, |a, b| b.revenue.total_cmp(&a.revenue))
}

/// Prints the leaderboard, one line per customer, around the progress bar.
fn leaderboard(progress: &FlowProgress) -> ConsoleSink {
    let mut rank = 0;
    ConsoleSink::typed(move |customer: &CustomerRevenue| {
        rank += 1;
        format!(
            "  {rank:>2}. {:<6} {:<20} {:>12}  {:>4} orders",
            customer.customer_id,
            customer.customer_name,
            dollars(customer.revenue),
            customer.orders
        )
    })
    .title(format!("Top {TOP_CUSTOMERS} customers by revenue"))
    .writer(progress.stdout())
}

/// Where the flow writes its results.
struct OutputPaths {
    customers: PathBuf,
    days: PathBuf,
    rejected: PathBuf,
}

/// Where the results went: the destinations the sinks' receipts name, which for a replay are
/// under `replays/<replay run id>/` next to the original outputs (left as they were).
fn print_outputs(report: &FlowReport, paths: &OutputPaths) {
    let delivered = |stage: &str, path: &Path| {
        let stage = report.stage(stage);
        let written = stage.and_then(|stage| stage.receipts.first()).map_or_else(
            || path.display().to_string(),
            |receipt| receipt.destination.clone(),
        );
        (written, stage.map_or(0, |stage| stage.records_out))
    };
    println!("Outputs");
    let (customers, count) = delivered("customers_file", &paths.customers);
    println!("  {customers:<48} {} customers", thousands(count));
    let (days, count) = delivered("days_file", &paths.days);
    println!("  {days:<48} {} days", thousands(count));
    let (rejected, count) = delivered("rejected_file", &paths.rejected);
    println!("  {rejected:<48} {} rejected rows", thousands(count));
    if customers != paths.customers.display().to_string() {
        println!(
            "  (a replay: the original run's outputs, {}, {} and {}, are unchanged)",
            paths.customers.display(),
            paths.days.display(),
            paths.rejected.display()
        );
    }
}
