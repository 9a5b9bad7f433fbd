//! The csv-typed benchmark: a typed CSV of flights through validation, enrichment and three
//! keyed aggregations, as an ObzenFlow flow with memory or disk journals and as a hand-written
//! single-thread loop doing the same work, one scenario per process.
//!
//! `cargo xtask bench` builds this binary and runs it once per scenario and round, next to the
//! flow benchmark of `obzenflow_runtime`; by hand:
//!
//! ```text
//! cargo bench -p obzenflow_examples --bench csv_typed -- <scenario> [--records N] [--seed S] [--dir DIR]
//! cargo bench -p obzenflow_examples --bench csv_typed -- generate [--records N] [--seed S]
//! ```
//!
//! Scenarios: `csv-typed-single` (one thread, csv + serde + `HashMap`s), `csv-typed-memory`
//! (`Journals::memory()`) and `csv-typed-disk` (`Journals::disk(DIR)`, group commit). The input
//! is `target/bench/csv-typed/flights-<N>-seed<S>.csv` (N rows, 1,000,000 by default), written
//! first if missing; `generate` only writes it. Every engine writes its aggregates under
//! `target/bench/csv-typed/out-<engine>/` and reports a checksum of them, which `cargo xtask
//! bench` compares across engines. The run prints one JSON object on one line of stdout.

mod flow;
mod measure;
mod outputs;
mod records;
mod single;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use obzenflow_examples::flights;
use obzenflow_runtime::pipeline::Journals;
use serde_json::{json, Value};

use outputs::Outputs;

/// The error type of the benchmark: every failure ends the process with a message.
type BenchError = Box<dyn std::error::Error + Send + Sync>;

/// An error that says what was being done, keeping its cause as its source.
#[derive(Debug)]
struct Context {
    doing: String,
    source: BenchError,
}

impl std::fmt::Display for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.doing)
    }
}

impl std::error::Error for Context {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.source.as_ref())
    }
}

/// Wraps an error with what was being done: `.map_err(context("cannot create the dir"))`.
fn context<E: Into<BenchError>>(doing: impl Into<String>) -> impl FnOnce(E) -> BenchError {
    let doing = doing.into();
    move |source| {
        Box::new(Context {
            doing,
            source: source.into(),
        })
    }
}

/// Rows of the input unless `--records` says otherwise.
const DEFAULT_ROWS: u64 = 1_000_000;
/// The generator's seed unless `--seed` says otherwise.
const DEFAULT_SEED: u64 = 2008;
/// Where the input, the outputs and (by default) the disk journals go: the workspace's
/// `target/bench/csv-typed`, wherever the benchmark is started from.
const BENCH_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/bench/csv-typed");
/// The name every result carries, so `cargo xtask bench` reports these runs apart.
const BENCHMARK: &str = "csv-typed";

/// What processes the flights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engine {
    /// One loop on one thread.
    Single,
    /// The flow with `Journals::memory()`.
    Memory,
    /// The flow with `Journals::disk(dir)`, group commit.
    Disk,
}

impl Engine {
    const ALL: [Self; 3] = [Self::Single, Self::Memory, Self::Disk];

    fn name(self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::Memory => "memory",
            Self::Disk => "disk",
        }
    }

    fn scenario(self) -> String {
        format!("{BENCHMARK}-{}", self.name())
    }
}

/// What the command line asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Task {
    /// Write the input file if it is missing.
    Generate,
    /// Run one engine over it.
    Run(Engine),
}

/// The command line.
struct Arguments {
    task: Task,
    rows: u64,
    seed: u64,
    journal_dir: PathBuf,
}

fn usage() -> String {
    let scenarios: Vec<String> = Engine::ALL.iter().map(|engine| engine.scenario()).collect();
    format!(
        "usage: csv_typed <scenario>|generate [--records N] [--seed S] [--dir DIR]\nscenarios: {}",
        scenarios.join(", ")
    )
}

/// Parses the arguments; `Ok(None)` when no task was named (as under a plain `cargo bench`).
fn parse_arguments(arguments: &[String]) -> Result<Option<Arguments>, BenchError> {
    let mut task = None;
    let mut rows = DEFAULT_ROWS;
    let mut seed = DEFAULT_SEED;
    let mut journal_dir = Path::new(BENCH_DIR).join("journals");
    let mut rest = arguments.iter();
    let number = |flag: &str, value: Option<&String>| -> Result<u64, BenchError> {
        let value = value.ok_or_else(|| format!("{flag} needs a number"))?;
        value.parse().map_err(context(format!("{flag} {value}")))
    };
    while let Some(argument) = rest.next() {
        match argument.as_str() {
            // `cargo bench` passes `--bench` to every benchmark binary.
            "--bench" => {}
            "--records" => rows = number("--records", rest.next())?,
            "--seed" => seed = number("--seed", rest.next())?,
            "--dir" => journal_dir = PathBuf::from(rest.next().ok_or("--dir needs a path")?),
            "generate" => task = Some(Task::Generate),
            name => {
                let engine = Engine::ALL
                    .into_iter()
                    .find(|engine| engine.scenario() == name)
                    .ok_or_else(|| format!("unknown scenario `{name}`"))?;
                task = Some(Task::Run(engine));
            }
        }
    }
    Ok(task.map(|task| Arguments {
        task,
        rows,
        seed,
        journal_dir,
    }))
}

/// What one engine's run measured, whichever engine it was.
struct RunOutcome {
    elapsed: Duration,
    rows: u64,
    rejected: u64,
    journal_bytes: Option<u64>,
    durability: String,
}

/// Runs `engine` over `input`, writing `outputs`; disk journals go under `journal_dir` and are
/// removed once measured.
fn run_engine(
    engine: Engine,
    input: &Path,
    outputs: &Outputs,
    journal_dir: &Path,
) -> Result<RunOutcome, BenchError> {
    // The lookup table is built before the flow starts, as a real job would load it.
    let carrier_names = records::carrier_names();
    let journals = match engine {
        Engine::Single => {
            let outcome = single::run(input, outputs, &carrier_names)?;
            return Ok(RunOutcome {
                elapsed: outcome.elapsed,
                rows: outcome.rows,
                rejected: outcome.rejected,
                journal_bytes: None,
                durability: "none".to_owned(),
            });
        }
        Engine::Memory => Journals::memory(),
        Engine::Disk => Journals::disk(journal_dir),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(flow::run(input, journals, outputs, carrier_names))?;
    drop(runtime);
    let journal_bytes = match &outcome.run_dir {
        Some(run_dir) => {
            let bytes = measure::segment_bytes(run_dir)?;
            std::fs::remove_dir_all(run_dir)
                .map_err(context(format!("cannot remove {}", run_dir.display())))?;
            Some(bytes)
        }
        None => None,
    };
    Ok(RunOutcome {
        elapsed: outcome.elapsed,
        rows: outcome.rows,
        rejected: outcome.rejected,
        journal_bytes,
        durability: outcome.durability,
    })
}

/// Runs the task and returns its figures as one JSON object.
fn run(arguments: &Arguments) -> Result<Value, BenchError> {
    let bench_dir = Path::new(BENCH_DIR);
    let input = flights::ensure_input(bench_dir, arguments.rows, arguments.seed)
        .map_err(context(format!("cannot write the input under {BENCH_DIR}")))?;
    let input_bytes = std::fs::metadata(&input)?.len();
    let Task::Run(engine) = arguments.task else {
        return Ok(json!({
            "benchmark": BENCHMARK,
            "input": input.display().to_string(),
            "input_bytes": input_bytes,
            "rows": arguments.rows,
            "seed": arguments.seed,
        }));
    };
    let outputs = Outputs::under(&bench_dir.join(format!("out-{}", engine.name())))?;
    std::fs::create_dir_all(&arguments.journal_dir).map_err(context(format!(
        "cannot create {}",
        arguments.journal_dir.display()
    )))?;
    let cpu_before = measure::cpu_seconds()?;
    let outcome = run_engine(engine, &input, &outputs, &arguments.journal_dir)?;
    let cpu_seconds = measure::cpu_seconds()? - cpu_before;
    if outcome.rows != arguments.rows {
        return Err(format!("read {} rows, expected {}", outcome.rows, arguments.rows).into());
    }
    let seconds = outcome.elapsed.as_secs_f64();
    Ok(json!({
        "scenario": engine.scenario(),
        "benchmark": BENCHMARK,
        "engine": engine.name(),
        "records": outcome.rows,
        "rejected_rows": outcome.rejected,
        "input_bytes": input_bytes,
        "seed": arguments.seed,
        "seconds": seconds,
        "records_per_sec": outcome.rows as f64 / seconds,
        "cpu_seconds": cpu_seconds,
        "journal_bytes": outcome.journal_bytes,
        "journal_bytes_per_input_byte":
            outcome.journal_bytes.map(|bytes| bytes as f64 / input_bytes as f64),
        "durability": outcome.durability,
        "aggregates_checksum": outputs.checksum()?,
    }))
}

fn main() -> ExitCode {
    let started = Instant::now();
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let arguments = match parse_arguments(&arguments) {
        Ok(Some(arguments)) => arguments,
        Ok(None) => {
            println!("{}", usage());
            println!("`cargo xtask bench` runs every scenario, each in its own process.");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("error: {error}\n{}", usage());
            return ExitCode::from(2);
        }
    };
    let figures = run(&arguments).and_then(|mut figures| {
        // Measured last, so that they cover the whole process.
        figures["peak_rss_kib"] = json!(measure::peak_rss_kib()?);
        figures["process_cpu_seconds"] = json!(measure::cpu_seconds()?);
        figures["process_seconds"] = json!(started.elapsed().as_secs_f64());
        Ok(figures)
    });
    match figures {
        Ok(figures) => {
            println!("{figures}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            let mut source = error.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}
