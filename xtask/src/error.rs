//! The one error type of `cargo xtask`: every way a subcommand or a CI step can fail.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// Why a subcommand or a CI step failed.
#[derive(Debug)]
pub(crate) enum XtaskError {
    /// The subcommand is not known.
    UnknownSubcommand {
        /// What the user typed.
        subcommand: String,
    },
    /// The subcommand got arguments it does not take.
    UnexpectedArguments {
        /// The subcommand.
        subcommand: String,
        /// The extra arguments.
        arguments: Vec<String>,
    },
    /// The subcommand is reserved but has not been written yet.
    NotBuiltYet {
        /// The reserved subcommand.
        subcommand: &'static str,
    },
    /// A command could not be started.
    Spawn {
        /// The command line, for the reader.
        command: String,
        /// Why it could not be started.
        source: io::Error,
    },
    /// A command ran and exited unsuccessfully.
    CommandFailed {
        /// The command line, for the reader.
        command: String,
        /// How it exited.
        status: ExitStatus,
    },
    /// A file or directory of the tree could not be read.
    Io {
        /// The path that could not be read.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// `cargo metadata` or `cargo build` printed JSON that does not parse.
    Json {
        /// Which command printed it.
        command: String,
        /// The parse error.
        source: serde_json::Error,
    },
    /// `cargo metadata` printed JSON without a field xtask needs.
    MetadataShape {
        /// The missing or mistyped field.
        field: &'static str,
    },
    /// A check found violations; they have been printed already.
    Violations {
        /// The check (`layering`, `tidy`).
        check: &'static str,
        /// How many were printed.
        count: usize,
    },
    /// An example exited unsuccessfully in its smoke run.
    ExampleFailed {
        /// The example's name.
        example: String,
        /// How it exited.
        status: ExitStatus,
        /// The last lines it wrote to stdout and stderr.
        output_tail: String,
    },
    /// An example did not finish its smoke run in time and was killed.
    ExampleTimedOut {
        /// The example's name.
        example: String,
        /// The deadline it missed.
        timeout: Duration,
        /// The last lines it wrote to stdout and stderr.
        output_tail: String,
    },
    /// `cargo build` produced no executable for an example `cargo metadata` lists.
    ExampleNotBuilt {
        /// The example's name.
        example: String,
    },
    /// A subcommand argument is not one it accepts.
    InvalidArgument {
        /// The subcommand.
        subcommand: &'static str,
        /// The argument as typed.
        argument: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `cargo bench --no-run` produced no executable for a benchmark.
    BenchNotBuilt {
        /// The benchmark target's name.
        bench: &'static str,
    },
    /// A benchmark run printed no usable figures.
    BenchOutput {
        /// The scenario it ran.
        scenario: String,
        /// What was wrong with its output.
        reason: String,
    },
    /// The resident set size of a soak run kept growing after warm-up; the curves and the
    /// verdicts have been printed already.
    SoakGrowing {
        /// The soak scenarios whose memory grew.
        scenarios: Vec<String>,
    },
    /// No usable `nats-server` could be found or installed.
    NatsServer {
        /// What is wrong.
        reason: String,
    },
    /// A file could not be written.
    Write {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

impl fmt::Display for XtaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownSubcommand { subcommand } => {
                write!(
                    f,
                    "unknown subcommand `{subcommand}` (try `cargo xtask help`)"
                )
            }
            Self::UnexpectedArguments {
                subcommand,
                arguments,
            } => write!(
                f,
                "`cargo xtask {subcommand}` takes no arguments, got `{}`",
                arguments.join(" ")
            ),
            Self::NotBuiltYet { subcommand } => {
                write!(f, "`cargo xtask {subcommand}` is not built yet")
            }
            Self::Spawn { command, .. } => write!(f, "could not start `{command}`"),
            Self::CommandFailed { command, status } => write!(f, "`{command}` failed: {status}"),
            Self::Io { path, .. } => write!(f, "could not read {}", path.display()),
            Self::Json { command, .. } => write!(f, "`{command}` printed JSON that does not parse"),
            Self::MetadataShape { field } => {
                write!(f, "`cargo metadata` output has no usable `{field}`")
            }
            Self::Violations { check, count } => write!(f, "{check}: {count} violation(s)"),
            Self::ExampleFailed {
                example,
                status,
                output_tail,
            } => {
                write!(f, "example `{example}` failed: {status}\n{output_tail}")
            }
            Self::ExampleTimedOut {
                example,
                timeout,
                output_tail,
            } => write!(
                f,
                "example `{example}` did not finish within {:.1}s and was killed\n{output_tail}",
                timeout.as_secs_f64()
            ),
            Self::ExampleNotBuilt { example } => {
                write!(
                    f,
                    "`cargo build` produced no executable for example `{example}`"
                )
            }
            Self::InvalidArgument {
                subcommand,
                argument,
                reason,
            } => write!(f, "`cargo xtask {subcommand}`: `{argument}` {reason}"),
            Self::BenchNotBuilt { bench } => {
                write!(
                    f,
                    "`cargo bench --no-run` produced no executable for bench `{bench}`"
                )
            }
            Self::BenchOutput { scenario, reason } => {
                write!(
                    f,
                    "benchmark scenario `{scenario}` gave no figures: {reason}"
                )
            }
            Self::SoakGrowing { scenarios } => write!(
                f,
                "memory kept growing under load in {}",
                scenarios.join(", ")
            ),
            Self::NatsServer { reason } => write!(f, "nats-server: {reason}"),
            Self::Write { path, .. } => write!(f, "could not write {}", path.display()),
        }
    }
}

impl std::error::Error for XtaskError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Spawn { source, .. } | Self::Io { source, .. } | Self::Write { source, .. } => {
                Some(source)
            }
            Self::Json { source, .. } => Some(source),
            _ => None,
        }
    }
}
