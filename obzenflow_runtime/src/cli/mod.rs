//! The `obzenflow` command-line tool (feature `cli`): list, inspect, validate and verify run
//! directories.
//!
//! ```text
//! obzenflow [--base DIR] runs
//! obzenflow [--base DIR] inspect <RUN> [STAGE] [--lane data|error] [--status success|filtered|error|retried]
//! obzenflow [--base DIR] validate <RUN>
//! obzenflow [--base DIR] verify <BASELINE> <CANDIDATE> [--json]
//! ```
//!
//! - `runs` lists the run directories under `--base` (default `target/obzenflow/runs`) with
//!   status, start time, duration, and the data and error record counts of every stage.
//! - `inspect` lists a run's journals, or prints one stage journal's records as JSON lines.
//! - `validate` checks every frame of every journal ([`inspect::validate_run`]).
//! - `verify` compares two runs ([`replay::verify`]): `0 differences`, or each stage's first
//!   divergent record from both runs; `--json` prints the [`replay::VerifyReport`] as JSON.
//!
//! A `<RUN>` is a run directory, or a run id looked up under `--base`. Errors are one line on
//! stderr: `obzenflow: error: …`.
//!
//! Exit codes ([`Exit`]):
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success: printed, journals valid, runs agree |
//! | 1 | findings: `validate` found damaged journals, `verify` found differences |
//! | 2 | usage or I/O error: bad arguments, unreadable run or journal, unwritable output |
//!
//! The binary is a thin shell around [`run`], which takes the arguments and the two output
//! streams, so everything but the process itself can be tested in process.
//!
//! [`inspect::validate_run`]: crate::journal::inspect::validate_run
//! [`replay::verify`]: crate::replay::verify
//! [`replay::VerifyReport`]: crate::replay::VerifyReport

mod args;
mod commands;
mod runs;

pub use args::{Cli, Command, LaneArg, StatusArg};
pub use commands::{run, usage_message, CliError, Exit};
pub use runs::{format_runs, list_runs, RunListing, StageCounts};
