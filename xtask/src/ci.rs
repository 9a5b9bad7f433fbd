//! `cargo xtask ci`: the whole CI contract as an ordered list of steps, run fail-fast.
//!
//! Every step announces itself with a `==> ` header and reports its elapsed time. No step sets
//! `RUSTFLAGS`, so all cargo steps share one build cache; warnings are denied by clippy and, for
//! docs, by `RUSTDOCFLAGS`.

use std::time::{Duration, Instant};

use crate::error::XtaskError;
use crate::{cmd, layering, nats, package, smoke, tidy};

/// One CI step.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Step {
    /// The header, printed as `==> {name}`; for command steps, the command line.
    pub(crate) name: &'static str,
    /// What the step does.
    pub(crate) run: fn() -> Result<(), XtaskError>,
}

/// The layering step, also run alone by `cargo xtask layering`.
pub(crate) const LAYERING: Step = Step {
    name: "layering (crates from cargo metadata, runtime modules from sources)",
    run: layering::run,
};

/// The tidy step, also run alone by `cargo xtask tidy`.
pub(crate) const TIDY: Step = Step {
    name: "tidy",
    run: tidy::run,
};

/// The packaging step, also run alone by `cargo xtask package`.
pub(crate) const PACKAGE: Step = Step {
    name: "library packages (cargo package --locked --all-features -p <each library>, verified)",
    run: package::run,
};

/// The nats-server step, also run alone by `cargo xtask nats`.
pub(crate) const NATS: Step = Step {
    name: "nats-server 2.9 or later (apt-get install -y nats-server where missing)",
    run: nats::run,
};

/// The CI contract, in order.
pub(crate) const STEPS: &[Step] = &[
    Step {
        name: "cargo fmt --all -- --check",
        run: fmt,
    },
    Step {
        name: "cargo clippy --workspace --all-targets --all-features --locked -- -D warnings",
        run: clippy,
    },
    Step {
        name: "cargo test --workspace --locked",
        run: test,
    },
    Step {
        name: "cargo test -p obzenflow_runtime --all-features --locked",
        run: test_features,
    },
    NATS,
    Step {
        name: "cargo test -p obzenflow_stages --features jetstream --test jetstream --locked",
        run: test_jetstream,
    },
    Step {
        name: "cargo doc --workspace --no-deps --all-features --locked (RUSTDOCFLAGS=-D warnings)",
        run: doc,
    },
    LAYERING,
    TIDY,
    PACKAGE,
    Step {
        name: "example smoke runs (OBZENFLOW_SMOKE=1)",
        run: smoke::run,
    },
];

/// Checks formatting.
fn fmt() -> Result<(), XtaskError> {
    cmd::run(&mut cmd::cargo(["fmt", "--all", "--", "--check"]))
}

/// Lints every target with every feature (the CLI, the Prometheus endpoint), denying warnings.
fn clippy() -> Result<(), XtaskError> {
    let args = [
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--locked",
        "--",
        "-D",
        "warnings",
    ];
    cmd::run(&mut cmd::cargo(args))
}

/// Runs unit, integration and doc tests.
fn test() -> Result<(), XtaskError> {
    cmd::run(&mut cmd::cargo(["test", "--workspace", "--locked"]))
}

/// Runs the runtime's tests once more with every feature: the `obzenflow` command-line tool
/// (including the test that runs the binary) and the Prometheus endpoint scraped over a real
/// socket. One build covers both features.
fn test_features() -> Result<(), XtaskError> {
    let args = [
        "test",
        "-p",
        "obzenflow_runtime",
        "--all-features",
        "--locked",
    ];
    cmd::run(&mut cmd::cargo(args))
}

/// Runs the JetStream journal tests against real nats-server processes (a single node and a
/// 3-node cluster, which the tests start and stop themselves).
fn test_jetstream() -> Result<(), XtaskError> {
    let args = [
        "test",
        "-p",
        "obzenflow_stages",
        "--features",
        "jetstream",
        "--test",
        "jetstream",
        "--locked",
    ];
    cmd::run(&mut cmd::cargo(args))
}

/// Builds the workspace docs with every feature, denying rustdoc warnings such as broken
/// intra-doc links.
fn doc() -> Result<(), XtaskError> {
    let args = [
        "doc",
        "--workspace",
        "--no-deps",
        "--all-features",
        "--locked",
    ];
    let mut command = cmd::cargo(args);
    command.env("RUSTDOCFLAGS", "-D warnings");
    cmd::run(&mut command)
}

/// Seconds with one decimal, as printed in step reports.
fn seconds(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

/// Runs one step under its header and prints how long it took.
pub(crate) fn run_step(step: &Step) -> Result<Duration, XtaskError> {
    println!("==> {}", step.name);
    let started = Instant::now();
    let result = (step.run)();
    let elapsed = started.elapsed();
    match &result {
        Ok(()) => println!("    ok: {} ({})", step.name, seconds(elapsed)),
        Err(_) => eprintln!("    FAILED: {} ({})", step.name, seconds(elapsed)),
    }
    result.map(|()| elapsed)
}

/// `cargo xtask ci`: runs every step in order, stopping at the first failure.
pub(crate) fn run() -> Result<(), XtaskError> {
    let started = Instant::now();
    let mut timings = Vec::with_capacity(STEPS.len());
    for (index, step) in STEPS.iter().enumerate() {
        match run_step(step) {
            Ok(elapsed) => timings.push((step.name, elapsed)),
            Err(error) => {
                eprintln!(
                    "ci: step {}/{} `{}` failed",
                    index + 1,
                    STEPS.len(),
                    step.name
                );
                return Err(error);
            }
        }
    }
    println!("ci: step times");
    for (name, elapsed) in &timings {
        println!("    {:>8}  {name}", seconds(*elapsed));
    }
    println!(
        "ci: all {} steps passed in {}",
        STEPS.len(),
        seconds(started.elapsed())
    );
    Ok(())
}
