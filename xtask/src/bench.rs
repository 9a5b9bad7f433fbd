//! `cargo xtask bench`: the runtime's benchmarks, side by side with hand-written baselines.
//!
//! Builds `obzenflow_runtime`'s benchmarks (and `obzenflow_examples`' csv-typed benchmark) in
//! release mode, runs the flow benchmark once per scenario and round, each run in its own
//! process (so its peak memory is its own), reads the one JSON line each run prints, and keeps
//! per scenario the round with the median throughput. Every run is compared with the tokio
//! baseline and the single-thread loop of the same shape measured in the same invocation; the
//! csv-typed flows with the csv-typed single thread, whose aggregates every csv-typed round must
//! reproduce exactly; the join flows with the hand-written join of the same kind and size, whose
//! output every join engine must reproduce. Prints the tables and the design targets met or missed, writes everything
//! to `target/bench/results.json`, then runs the journal micro-benchmark.
//!
//! ```text
//! cargo xtask bench [--full] [--rounds N] [FILTER...]
//! ```
//!
//! `--full` adds the 10,000,000-record runs of the memory-flatness target. Filters keep the
//! scenarios whose name contains one of them (and skip the journal micro-benchmark unless one
//! of them is `journal`).

mod csv_typed;
mod joins;
mod plan;
mod report;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::{json, Value};

use crate::cmd;
use crate::error::XtaskError;
use plan::{Options, Planned};

/// The package whose benchmarks run.
const PACKAGE: &str = "obzenflow_runtime";
/// The package of the csv-typed benchmark, which needs the stages and so cannot live in the
/// runtime.
const EXAMPLES_PACKAGE: &str = "obzenflow_examples";
/// The csv-typed benchmark: typed CSV, enrichment and aggregations against one thread.
const CSV_TYPED_BENCH: &str = "csv_typed";
/// The joins benchmark: a lookup and an interval join against hand-written HashMap code.
const JOINS_BENCH: &str = "joins";
/// The per-scenario benchmark, which `cargo xtask soak` runs too.
pub(crate) const FLOW_BENCH: &str = "flow";
/// The journal micro-benchmark, owned by the journal and run as it is.
const JOURNAL_BENCH: &str = "journal";
/// Where results, disk journals and the baseline's file go, relative to the workspace root.
const OUTPUT_DIR: &str = "target/bench";

/// `cargo xtask bench [--full] [--rounds N] [FILTER...]`, or `cargo xtask bench --jetstream
/// [--rounds N] [--records N]`.
pub(crate) fn run(arguments: &[String]) -> Result<(), XtaskError> {
    if arguments.iter().any(|argument| argument == "--jetstream") {
        return jetstream(arguments);
    }
    let options = Options::parse(arguments)?;
    let scenarios = plan::scenarios(&options);
    let output_dir = cmd::workspace_root().join(OUTPUT_DIR);
    let journal_dir = output_dir.join("journals");
    let machine = report::machine();
    let mut executables = build(&[FLOW_BENCH, JOURNAL_BENCH])?;
    let mut example_benches = Vec::new();
    if scenarios.iter().any(Planned::is_csv_typed) {
        example_benches.push(CSV_TYPED_BENCH);
    }
    if scenarios.iter().any(Planned::is_joins) {
        example_benches.push(JOINS_BENCH);
    }
    if !example_benches.is_empty() {
        executables.extend(build_in(EXAMPLES_PACKAGE, &example_benches)?);
    }
    println!("{}", report::describe_machine(&machine));
    let mut results = Vec::new();
    let mut agreement = Ok(());
    if !scenarios.is_empty() {
        let programs = Programs {
            flow: executable(&executables, FLOW_BENCH)?,
            csv_typed: executables.get(CSV_TYPED_BENCH).map(PathBuf::as_path),
            joins: executables.get(JOINS_BENCH).map(PathBuf::as_path),
        };
        if let Some(csv_typed) = programs.csv_typed {
            generate_csv_input(csv_typed)?;
        }
        let runs = run_rounds(&programs, &scenarios, options.rounds, &journal_dir)?;
        agreement = csv_typed::check_agreement(&runs);
        let joins_agreement = joins::check_agreement(&runs);
        results = report::summarize(&scenarios, &runs);
        joins::attach_ratios(&mut results);
        let mut targets = report::targets(&results);
        targets.extend(csv_typed::targets(&results));
        targets.extend(joins::targets(&results));
        for table in [
            report::table(&results),
            csv_typed::table(&results),
            joins::table(&results),
        ] {
            if !table.is_empty() {
                println!();
                print!("{table}");
            }
        }
        println!();
        print!("{}", report::target_lines(&targets));
        let document = json!({
            "command": options.command_line(),
            "machine": machine,
            "rounds": options.rounds,
            "scenarios": results,
            "targets": targets,
            "csv_typed_aggregates_agree": agreement.is_ok(),
            "join_engines_agree": joins_agreement.is_ok(),
        });
        write_results(&output_dir.join("results.json"), &document)?;
        if let Err(reason) = joins_agreement {
            return Err(XtaskError::BenchOutput {
                scenario: joins::BENCHMARK.to_owned(),
                reason,
            });
        }
    }
    if options.runs_journal_bench() {
        println!();
        println!("==> {JOURNAL_BENCH} micro-benchmark");
        let journal = executable(&executables, JOURNAL_BENCH)?;
        cmd::run(Command::new(journal).current_dir(cmd::workspace_root()))?;
    }
    if results.is_empty() && !options.runs_journal_bench() {
        println!("no scenario matches the filters");
    }
    agreement.map_err(|reason| XtaskError::BenchOutput {
        scenario: csv_typed::BENCHMARK.to_owned(),
        reason,
    })
}

/// The benchmark executables the scenarios run in.
struct Programs<'a> {
    /// The flow benchmark of `obzenflow_runtime`.
    flow: &'a Path,
    /// The csv-typed benchmark of `obzenflow_examples`, when a csv-typed scenario is planned.
    csv_typed: Option<&'a Path>,
    /// The joins benchmark of `obzenflow_examples`, when a joins scenario is planned.
    joins: Option<&'a Path>,
}

impl Programs<'_> {
    /// The executable that runs `planned`.
    fn of(&self, planned: &Planned) -> Result<&Path, XtaskError> {
        if planned.is_csv_typed() {
            self.csv_typed.ok_or(XtaskError::BenchNotBuilt {
                bench: CSV_TYPED_BENCH,
            })
        } else if planned.is_joins() {
            self.joins
                .ok_or(XtaskError::BenchNotBuilt { bench: JOINS_BENCH })
        } else {
            Ok(self.flow)
        }
    }
}

/// Writes the csv-typed input once, before the rounds, so that no timed run writes it (the
/// benchmark reuses a file of the same rows and seed).
fn generate_csv_input(csv_typed: &Path) -> Result<(), XtaskError> {
    let mut command = Command::new(csv_typed);
    command.current_dir(cmd::workspace_root()).arg("generate");
    let stdout = cmd::stdout_of(&mut command)?;
    let figures: Value = serde_json::from_slice(&stdout).map_err(|source| XtaskError::Json {
        command: cmd::describe(&command),
        source,
    })?;
    println!(
        "==> csv-typed input: {} ({} bytes)",
        figures["input"].as_str().unwrap_or("?"),
        figures["input_bytes"]
    );
    Ok(())
}

/// Builds the runtime's benchmarks named in `benches` with the bench profile (release) and
/// returns their executables by name.
pub(crate) fn build(benches: &[&str]) -> Result<HashMap<String, PathBuf>, XtaskError> {
    build_in(PACKAGE, benches)
}

/// `cargo xtask bench --jetstream`: the JetStream journal benchmark of `obzenflow_stages`
/// (depth 3 on disk journals, one node and a 3-node cluster, in one invocation), which needs
/// `nats-server` and so is not part of the default run.
fn jetstream(arguments: &[String]) -> Result<(), XtaskError> {
    if crate::nats::find().is_none() {
        return Err(XtaskError::NatsServer {
            reason: "not installed; `cargo xtask nats` installs it".to_owned(),
        });
    }
    let mut passed = Vec::new();
    let mut rest = arguments
        .iter()
        .filter(|argument| *argument != "--jetstream");
    while let Some(argument) = rest.next() {
        match argument.as_str() {
            "--rounds" | "--records" => {
                let value = rest.next().ok_or_else(|| XtaskError::InvalidArgument {
                    subcommand: "bench",
                    argument: argument.clone(),
                    reason: "needs a number",
                })?;
                passed.extend([argument.clone(), value.clone()]);
            }
            other => {
                return Err(XtaskError::InvalidArgument {
                    subcommand: "bench",
                    argument: other.to_owned(),
                    reason: "is not an option of --jetstream (--rounds N, --records N)",
                })
            }
        }
    }
    let mut command = cmd::cargo([
        "bench",
        "--locked",
        "--package",
        "obzenflow_stages",
        "--features",
        "jetstream",
        "--bench",
        "jetstream",
        "--",
    ]);
    command.args(passed);
    cmd::run(&mut command)
}

/// Builds `package`'s benchmarks named in `benches` with the bench profile (release) and
/// returns their executables by name.
fn build_in(package: &str, benches: &[&str]) -> Result<HashMap<String, PathBuf>, XtaskError> {
    println!("==> cargo bench --no-run -p {package} (release)");
    let mut command = cmd::cargo(["bench", "--no-run", "--locked", "--package", package]);
    for bench in benches {
        command.args(["--bench", bench]);
    }
    command.arg("--message-format=json-render-diagnostics");
    let stdout = cmd::stdout_of(&mut command)?;
    bench_executables(&stdout).map_err(|source| XtaskError::Json {
        command: cmd::describe(&command),
        source,
    })
}

/// Benchmark executables by target name, from `cargo --message-format=json` output.
fn bench_executables(stdout: &[u8]) -> Result<HashMap<String, PathBuf>, serde_json::Error> {
    let mut executables = HashMap::new();
    for line in stdout.split(|byte| *byte == b'\n') {
        if line.is_empty() {
            continue;
        }
        let message: Value = serde_json::from_slice(line)?;
        let target = &message["target"];
        let is_bench = target["kind"]
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|kind| kind == "bench"));
        if message["reason"] == "compiler-artifact" && is_bench {
            if let (Some(name), Some(path)) =
                (target["name"].as_str(), message["executable"].as_str())
            {
                executables.insert(name.to_owned(), PathBuf::from(path));
            }
        }
    }
    Ok(executables)
}

/// The executable of `bench` among those [`build`] returned.
pub(crate) fn executable<'a>(
    executables: &'a HashMap<String, PathBuf>,
    bench: &'static str,
) -> Result<&'a Path, XtaskError> {
    executables
        .get(bench)
        .map(PathBuf::as_path)
        .ok_or(XtaskError::BenchNotBuilt { bench })
}

/// Runs every scenario `rounds` times, round-robin, so that a noisy minute on a shared machine
/// spreads over many scenarios instead of spoiling every round of one. Returns each
/// scenario's runs, in plan order.
fn run_rounds(
    programs: &Programs<'_>,
    scenarios: &[Planned],
    rounds: usize,
    journal_dir: &Path,
) -> Result<Vec<Vec<Value>>, XtaskError> {
    let mut runs = vec![Vec::with_capacity(rounds); scenarios.len()];
    for round in 1..=rounds {
        println!("==> round {round}/{rounds}: {} scenarios", scenarios.len());
        for (planned, scenario_runs) in scenarios.iter().zip(&mut runs) {
            let figures = run_scenario(programs.of(planned)?, planned, journal_dir)?;
            println!("    {}", report::progress_line(planned, &figures));
            scenario_runs.push(figures);
        }
    }
    Ok(runs)
}

/// Runs one scenario in its own process and reads the JSON line it prints last.
fn run_scenario(
    program: &Path,
    planned: &Planned,
    journal_dir: &Path,
) -> Result<Value, XtaskError> {
    let mut command = Command::new(program);
    command
        .current_dir(cmd::workspace_root())
        .arg(&planned.scenario)
        .arg("--dir")
        .arg(journal_dir);
    if let Some(records) = planned.records {
        command.args(["--records", &records.to_string()]);
    }
    let busy_before = machine_busy_seconds();
    let started = Instant::now();
    let stdout = cmd::stdout_of(&mut command)?;
    let wall_seconds = started.elapsed().as_secs_f64();
    let machine_busy = machine_busy_seconds() - busy_before;
    let text = String::from_utf8_lossy(&stdout);
    let line = text
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .ok_or_else(|| XtaskError::BenchOutput {
            scenario: planned.label(),
            reason: "it printed nothing".to_owned(),
        })?;
    let mut figures: Value = serde_json::from_str(line).map_err(|source| XtaskError::Json {
        command: cmd::describe(&command),
        source,
    })?;
    report::attach_other_load(&mut figures, machine_busy, wall_seconds);
    Ok(figures)
}

/// Busy CPU seconds of the whole machine so far; 0 where `/proc/stat` cannot be read, which
/// makes every run look quiet.
fn machine_busy_seconds() -> f64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|stat| report::machine_busy_seconds(&stat))
        .unwrap_or(0.0)
}

/// Writes `document` as pretty JSON to `path`, creating its directory.
fn write_results(path: &Path, document: &Value) -> Result<(), XtaskError> {
    let write_error = |source| XtaskError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(write_error)?;
    }
    let mut text = serde_json::to_string_pretty(document).map_err(|source| XtaskError::Json {
        command: "serializing the results".to_owned(),
        source,
    })?;
    text.push('\n');
    std::fs::write(path, text).map_err(write_error)?;
    println!("results written to {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_executables_are_read_from_build_messages() {
        let stdout = concat!(
            r#"{"reason":"compiler-artifact","target":{"name":"obzenflow_runtime","kind":["lib"]},"executable":null}"#,
            "\n",
            r#"{"reason":"compiler-artifact","target":{"name":"flow","kind":["bench"]},"executable":"/t/release/deps/flow-1"}"#,
            "\n",
            r#"{"reason":"compiler-artifact","target":{"name":"journal","kind":["bench"]},"executable":"/t/release/deps/journal-2"}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
            "\n"
        );
        let executables = bench_executables(stdout.as_bytes()).expect("valid JSON lines");
        assert_eq!(executables.len(), 2);
        assert_eq!(executables["flow"], PathBuf::from("/t/release/deps/flow-1"));
        assert!(matches!(
            executable(&executables, "missing"),
            Err(XtaskError::BenchNotBuilt { bench: "missing" })
        ));
    }
}
