//! `cargo xtask`: the project automation. `cargo xtask ci` is the whole CI contract; `.ci/run`
//! calls nothing else.

mod bench;
mod ci;
mod cmd;
mod crash;
mod error;
mod layering;
mod nats;
mod package;
mod smoke;
mod soak;
mod tidy;

use std::error::Error as _;
use std::process::ExitCode;

use error::XtaskError;

/// Subcommands reserved for later work; each fails loudly until it exists.
const NOT_BUILT_YET: &[&str] = &[];

/// Prints the subcommands and the CI steps.
fn print_help() {
    println!("usage: cargo xtask <subcommand>");
    println!();
    println!("subcommands:");
    println!("    ci         run the whole CI contract, failing fast:");
    for (index, step) in ci::STEPS.iter().enumerate() {
        println!("                   {}. {}", index + 1, step.name);
    }
    println!("    layering   check crate layering from cargo metadata and the module order");
    println!("               inside obzenflow_runtime from its sources");
    println!("    package    check the library crates' manifests, then package each and build");
    println!("               the package on its own (cargo package, verified)");
    println!("    tidy       check source rules (module docs, no yield_now, no ignored tests,");
    println!("               no library file naming a file outside its package) and that");
    println!("               documents quote their quoted files verbatim");
    println!("    bench      build the runtime's benchmarks in release mode and run them beside");
    println!("               hand-written baselines; results in target/bench/results.json");
    println!("               [--full] adds 10M-record runs, [--rounds N] (default 3),");
    println!("               [FILTER...] keeps scenarios whose name contains a filter");
    println!("               --jetstream [--rounds N] [--records N] instead runs depth 3 on disk");
    println!(
        "               journals, one JetStream node and a 3-node cluster (needs nats-server)"
    );
    println!("    crash      kill a disk-journal flow with SIGKILL at seeded points and check");
    println!("               recovery after each kill, in release mode (the CI test, longer)");
    println!("               [--runs N] kills across the run (default 200), plus N/4 in its");
    println!("               first milliseconds; [--seed S] (default fixed)");
    println!("    soak       run a flow under backpressure in release mode, sampling its RSS");
    println!("               every second; fails if it keeps growing after warm-up (not in CI)");
    println!("               [--seconds N] per storage (default 60),");
    println!("               [--storage memory|disk|both] (default both)");
    println!("    nats       install nats-server (Debian package, 2.9 or later) where it is");
    println!("               missing, for the JetStream journal tests (part of ci)");
    println!("    help       print this message");
}

/// Runs `step` alone under its header.
fn run_alone(step: &ci::Step) -> Result<(), XtaskError> {
    ci::run_step(step).map(|_elapsed| ())
}

/// Dispatches one subcommand.
fn dispatch(subcommand: Option<&str>) -> Result<(), XtaskError> {
    match subcommand {
        None | Some("help" | "-h" | "--help") => {
            print_help();
            Ok(())
        }
        Some("ci") => ci::run(),
        Some("layering") => run_alone(&ci::LAYERING),
        Some("tidy") => run_alone(&ci::TIDY),
        Some("package") => run_alone(&ci::PACKAGE),
        Some("nats") => run_alone(&ci::NATS),
        Some(other) => match NOT_BUILT_YET.iter().find(|name| **name == other) {
            Some(subcommand) => Err(XtaskError::NotBuiltYet { subcommand }),
            None => Err(XtaskError::UnknownSubcommand {
                subcommand: other.to_owned(),
            }),
        },
    }
}

/// Parses the arguments and runs the subcommand.
fn run(arguments: &[String]) -> Result<(), XtaskError> {
    match arguments {
        [subcommand, options @ ..] if subcommand == "bench" => bench::run(options),
        [subcommand, options @ ..] if subcommand == "soak" => soak::run(options),
        [subcommand, options @ ..] if subcommand == "crash" => crash::run(options),
        [] => dispatch(None),
        [subcommand] => dispatch(Some(subcommand)),
        [subcommand, extra @ ..] => Err(XtaskError::UnexpectedArguments {
            subcommand: subcommand.clone(),
            arguments: extra.to_vec(),
        }),
    }
}

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    match run(&arguments) {
        Ok(()) => ExitCode::SUCCESS,
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
