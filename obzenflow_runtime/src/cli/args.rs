//! The command line of `obzenflow`, declared with clap's derive API.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};
use obzenflow_core::{Lane, ProcessingStatus};

use crate::pipeline::Journals;

/// The exit codes, as `--help` shows them.
const EXIT_CODES: &str = "\
Exit codes:
  0  success: the listing or records were printed, the journals are valid, the runs agree
  1  findings: `validate` found damaged journals, `verify` found differences
  2  usage or I/O error: bad arguments, a run directory or journal that cannot be read";

/// List, inspect, validate and verify ObzenFlow run directories.
///
/// ```
/// use clap::Parser;
/// use obzenflow_runtime::cli::{Cli, Command};
///
/// let cli = Cli::try_parse_from(["obzenflow", "verify", "runs/a", "runs/b", "--json"])?;
/// assert!(matches!(cli.command, Command::Verify { json: true, .. }));
/// # Ok::<(), clap::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(
    name = "obzenflow",
    version,
    about = "List, inspect, validate and verify ObzenFlow run directories.",
    long_about = None,
    after_help = EXIT_CODES
)]
pub struct Cli {
    /// The directory holding run directories; a run named by something other than an existing
    /// path is looked up there.
    #[arg(long, global = true, value_name = "DIR", default_value = Journals::DEFAULT_BASE_DIR)]
    pub base: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
///
/// ```
/// use clap::Parser;
/// use obzenflow_runtime::cli::{Cli, Command, LaneArg};
///
/// let cli = Cli::try_parse_from(["obzenflow", "inspect", "run_x", "parse", "--lane", "error"])?;
/// let Command::Inspect { stage, lane, .. } = cli.command else { unreachable!() };
/// assert_eq!((stage.as_deref(), lane), (Some("parse"), Some(LaneArg::Error)));
/// # Ok::<(), clap::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// List the run directories under --base: status, start time, duration, and the data and
    /// error record counts of every stage, read from its journals.
    Runs,
    /// Without STAGE, list a run's journals; with STAGE, print the records of one of its
    /// journals as JSON lines.
    Inspect {
        /// The run directory (or a run id under --base).
        run: PathBuf,
        /// The stage whose records to print.
        stage: Option<String>,
        /// Which of the stage's journals [default: data].
        #[arg(long, value_enum, requires = "stage")]
        lane: Option<LaneArg>,
        /// Print only data records with this processing status.
        #[arg(long, value_enum, requires = "stage")]
        status: Option<StatusArg>,
    },
    /// Check every frame of every journal of a run (checksums and decoding) without changing
    /// anything; exits 1 if a journal is damaged.
    Validate {
        /// The run directory (or a run id under --base).
        run: PathBuf,
    },
    /// Compare two runs stage by stage; print "0 differences" or each stage's first divergent
    /// record from both runs with its lineage; exits 1 if they differ.
    Verify {
        /// The run compared against, usually the original.
        baseline: PathBuf,
        /// The run checked, usually the replay.
        candidate: PathBuf,
        /// Print the report as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// A stage journal, as named on the command line.
///
/// ```
/// use obzenflow_core::Lane;
/// use obzenflow_runtime::cli::LaneArg;
///
/// assert_eq!(Lane::from(LaneArg::Error), Lane::Error);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LaneArg {
    /// What the stage emitted.
    Data,
    /// Records that failed at the stage.
    Error,
}

impl From<LaneArg> for Lane {
    fn from(lane: LaneArg) -> Self {
        match lane {
            LaneArg::Data => Lane::Data,
            LaneArg::Error => Lane::Error,
        }
    }
}

/// A processing status, as named on the command line.
///
/// ```
/// use obzenflow_core::ProcessingStatus;
/// use obzenflow_runtime::cli::StatusArg;
///
/// assert!(StatusArg::Success.matches(&ProcessingStatus::Success));
/// assert!(!StatusArg::Error.matches(&ProcessingStatus::Success));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusArg {
    /// Processed normally.
    Success,
    /// Filtered out.
    Filtered,
    /// Failed.
    Error,
    /// Retried.
    Retried,
}

impl StatusArg {
    /// Whether `status` is of this kind.
    pub fn matches(&self, status: &ProcessingStatus) -> bool {
        let name = match self {
            Self::Success => "success",
            Self::Filtered => "filtered",
            Self::Error => "error",
            Self::Retried => "retried",
        };
        status.name() == name
    }
}

impl Cli {
    /// Parses `args` (the program name first).
    ///
    /// ```
    /// use obzenflow_runtime::cli::Cli;
    ///
    /// assert!(Cli::parse_args(["obzenflow", "frobnicate"]).is_err());
    /// ```
    pub fn parse_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        Self::try_parse_from(args)
    }

    /// Where the run named `run` is: `run` itself if it exists, else `run` under `--base` if
    /// that exists, else `run` as given (so that the error names it).
    ///
    /// ```
    /// use std::path::Path;
    /// use obzenflow_runtime::cli::Cli;
    ///
    /// let cli = Cli::parse_args(["obzenflow", "--base", "/nonexistent", "runs"])?;
    /// assert_eq!(cli.resolve_run(Path::new("run_x")), Path::new("run_x"));
    /// # Ok::<(), clap::Error>(())
    /// ```
    pub fn resolve_run(&self, run: &Path) -> PathBuf {
        if run.exists() {
            return run.to_path_buf();
        }
        let under_base = self.base.join(run);
        if under_base.exists() {
            under_base
        } else {
            run.to_path_buf()
        }
    }
}
