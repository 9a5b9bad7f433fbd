//! One flow split over two worker processes on NATS JetStream: `numbers` and `square` run in
//! one process, `total` in another, and the edge between them crosses through JetStream.
//!
//! The program starts a local 3-node `nats-server` cluster (or uses `--servers`), picks a run
//! id, runs itself twice as a worker of that run (`--worker --run <id> --stages ...`), waits
//! for both, and prints the run's outcome as any process reads it from JetStream (the
//! manifest, folded from every stage's outcome) and each stage's record count, read back from
//! its journal.
//!
//! `cargo run -p obzenflow_examples --features jetstream --example distributed [-- --servers nats://host:4222]`
//! (needs `nats-server` 2.9 or later on the PATH for the local cluster: `cargo xtask nats`).

use std::process::ExitCode;

use obzenflow_core::{DeliveryReceipt, JournalReader, Lane, RunId};
use obzenflow_examples::smoke_mode;
use obzenflow_runtime::journal::RunStatus;
use obzenflow_stages::jetstream::{
    JetStreamConfig, JetStreamJournals, LocalNats, LocalNatsConfig, WorkerArgs,
};
use obzenflow_stages::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Number {
    n: u64,
    square: u64,
}

impl TypedPayload for Number {
    const EVENT_TYPE: &'static str = "number";
}

/// Which stages each worker runs.
const WORKERS: [&[&str]; 2] = [&["numbers", "square"], &["total"]];

/// How many numbers the source makes: the same in every process, which all build the flow.
fn records() -> u64 {
    if smoke_mode() {
        2_000
    } else {
        100_000
    }
}

/// Sums what it receives and prints the sum when its input ends.
#[derive(Default)]
struct Total {
    count: u64,
    sum: u64,
}

impl SinkHandler for Total {
    fn consume(&mut self, event: &ChainEvent) -> Result<(), RecordError> {
        let square = event.field("square").and_then(|square| square.as_u64());
        self.count += 1;
        self.sum = self.sum.wrapping_add(square.unwrap_or_default());
        Ok(())
    }

    fn flush(&mut self) -> Result<Option<DeliveryReceipt>, HandlerFailure> {
        println!("total: {} numbers, sum of squares {}", self.count, self.sum);
        Ok(None)
    }
}

/// The flow, whole: every process builds it, so the typed wiring is checked in each, and each
/// worker spawns only its stages.
fn flow() -> FlowBuilder {
    let numbers = (0..records()).map(|n| Number { n, square: 0 });
    let mut flow = FlowBuilder::new("distributed-squares");
    let source = flow.add_source("numbers", IterSource::from_payloads(numbers));
    let square = flow.add_transform(
        "square",
        typed::map(|number: Number| Number {
            square: number.n * number.n,
            ..number
        }),
        &source,
    );
    flow.add_sink("total", Total::default(), &square);
    flow
}

/// A worker process: runs its stages of the flow and says how they ended.
async fn worker(arguments: Vec<String>) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let args = WorkerArgs::parse(arguments)?;
    let stages = args.stages.join(",");
    let report = args.run(flow()).await?;
    println!("worker {stages}: {:?}", report.outcome());
    Ok(if report.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs both workers of a new run on `config`'s servers and waits for them; once one fails,
/// the other is killed (it would wait for its input forever), and the run reads incomplete.
async fn run_workers(config: &JetStreamConfig) -> Result<RunId, Box<dyn std::error::Error>> {
    let run_id = RunId::new();
    println!("run {run_id}: {} workers", WORKERS.len());
    let program = std::env::current_exe()?;
    let (failed, failure) = tokio::sync::watch::channel(false);
    let mut workers = tokio::task::JoinSet::new();
    for stages in WORKERS {
        let args = WorkerArgs::new(run_id, stages.iter().copied(), config.clone());
        let mut child = tokio::process::Command::new(&program)
            .arg("--worker")
            .args(args.to_args())
            .kill_on_drop(true)
            .spawn()?;
        let (failed, mut failure) = (failed.clone(), failure.clone());
        let stages = stages.join(",");
        workers.spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status,
                _ = async { failure.wait_for(|failed| *failed).await.map(|_| ()) } => {
                    let _ = child.kill().await;
                    child.wait().await
                }
            };
            if !status.as_ref().is_ok_and(|status| status.success()) {
                failed.send_replace(true);
            }
            (stages, status)
        });
    }
    drop(failure);
    while let Some(ended) = workers.join_next().await {
        let (stages, status) = ended?;
        println!("worker {stages} exited: {}", status?);
    }
    Ok(run_id)
}

/// Prints the run's outcome and each stage's record count as JetStream holds them.
async fn print_run(
    journals: &JetStreamJournals,
    run_id: RunId,
) -> Result<RunStatus, Box<dyn std::error::Error>> {
    let manifest = journals.manifest(run_id).await?;
    println!(
        "run {run_id} of {}: {}",
        manifest.flow_name,
        manifest.status.as_str()
    );
    let outcomes = journals.stage_outcomes(run_id).await?;
    for (stage, outcome) in manifest.stages.iter().zip(outcomes) {
        let status = outcome.status.as_str();
        if stage.kind == "sink" {
            // A sink's journal holds its delivery receipts and its end, not the records.
            println!(
                "  {:<8} {status:<10} (delivered: the total line above)",
                stage.name
            );
            continue;
        }
        // A durable consumer follows one journal: each journal read gets a name of its own.
        let consumer = format!("distributed-example-{}", stage.name);
        let mut reader = journals
            .reader(run_id, &stage.name, Lane::Data, &consumer)
            .await?;
        let mut records = Vec::new();
        let mut data = 0;
        // The seal closes the reader once everything before it is read.
        while reader.wait().await.is_ok() {
            records.clear();
            reader.read(1_024, &mut records)?;
            data += records.iter().filter(|record| record.is_data()).count();
        }
        reader.finish().await;
        println!(
            "  {:<8} {status:<10} {data} data records in its journal",
            stage.name
        );
    }
    Ok(manifest.status)
}

#[tokio::main]
async fn main() -> ExitCode {
    match distributed().await {
        Ok(code) => code,
        Err(error) => {
            eprintln!(
                "distributed: error: {}",
                obzenflow_core::ErrorChain::new(&*error)
            );
            ExitCode::FAILURE
        }
    }
}

async fn distributed() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let mut arguments: Vec<String> = std::env::args().skip(1).collect();
    if arguments.first().map(String::as_str) == Some("--worker") {
        return worker(arguments.split_off(1)).await;
    }
    let (config, _local) = match arguments.as_slice() {
        [flag, servers] if flag == "--servers" => (JetStreamConfig::new(servers.clone()), None),
        [] => {
            let cluster = LocalNats::start(LocalNatsConfig::nodes(3)).await?;
            println!("started a local 3-node cluster: {}", cluster.url_list());
            let config = JetStreamConfig::new(cluster.url_list()).with_replicas(3);
            (config, Some(cluster))
        }
        _ => return Err("usage: distributed [--servers URLS]".into()),
    };
    // Reach the servers before starting workers, which would each wait for them as long.
    let journals = JetStreamJournals::connect(config.clone()).await?;
    let run_id = run_workers(&config).await?;
    let status = print_run(&journals, run_id).await?;
    Ok(if status == RunStatus::Completed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
