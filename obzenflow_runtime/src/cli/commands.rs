//! Running `obzenflow`: parse the arguments, execute the subcommand, write its output, and
//! turn the outcome into an exit code.

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::error::ErrorKind;
use obzenflow_core::{ErrorChain, Lane};

use super::args::{Cli, Command, LaneArg, StatusArg};
use super::runs::{format_runs, list_runs};
use crate::journal::inspect::{escape_name, JournalHealth};
use crate::journal::{inspect, RunDirError};
use crate::replay::{verify, VerifyError};

/// How `obzenflow` ends, as its exit code.
///
/// ```
/// use obzenflow_runtime::cli::Exit;
///
/// assert_eq!(Exit::Findings.code(), 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: done, and nothing was found wrong.
    Success,
    /// 1: `validate` found damaged journals, or `verify` found differences.
    Findings,
    /// 2: bad arguments, or a run or journal that cannot be read, or output that cannot be
    /// written.
    Error,
}

impl Exit {
    /// The process exit code.
    pub const fn code(&self) -> u8 {
        match self {
            Self::Success => 0,
            Self::Findings => 1,
            Self::Error => 2,
        }
    }
}

/// Why a subcommand could not do its work; printed as one line, exit code 2.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// A run directory or journal could not be read.
    #[error(transparent)]
    RunDir(#[from] RunDirError),
    /// Two runs could not be compared.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// A record or report could not be rendered as JSON.
    #[error("cannot render JSON")]
    Json(#[from] serde_json::Error),
    /// The output could not be written.
    #[error("cannot write the output")]
    Output(#[source] io::Error),
}

/// Runs `obzenflow` with `args` (the program name first), writing its output to `stdout` and
/// its one-line errors (`obzenflow: error: …`) to `stderr`.
///
/// ```no_run
/// use obzenflow_runtime::cli;
///
/// let exit = cli::run(["obzenflow", "validate", "target/obzenflow/runs/run_0190f1c2a3b47c8d9e0f112233445566"],
///     &mut std::io::stdout(), &mut std::io::stderr());
/// std::process::exit(i32::from(exit.code()));
/// ```
pub fn run<I, T>(args: I, stdout: &mut dyn Write, stderr: &mut dyn Write) -> Exit
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::parse_args(args) {
        Ok(cli) => cli,
        Err(error) => return usage(&error, stdout, stderr),
    };
    let outcome = execute(&cli, stdout).and_then(|exit| {
        stdout.flush().map_err(CliError::Output)?;
        Ok(exit)
    });
    match outcome {
        Ok(exit) => exit,
        // A closed pipe (`obzenflow inspect … | head`) means the reader has what it wanted.
        Err(CliError::Output(error)) if error.kind() == io::ErrorKind::BrokenPipe => Exit::Success,
        Err(error) => {
            let message = one_line(&ErrorChain::new(&error).to_string());
            let _ = writeln!(stderr, "obzenflow: error: {}", escape_name(&message));
            Exit::Error
        }
    }
}

/// Help and version go to stdout with exit code 0; a usage error is one line on stderr.
fn usage(error: &clap::Error, stdout: &mut dyn Write, stderr: &mut dyn Write) -> Exit {
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        let _ = write!(stdout, "{error}");
        return Exit::Success;
    }
    let _ = writeln!(stderr, "obzenflow: error: {}", usage_message(error));
    Exit::Error
}

/// A clap error as one line: its first paragraph without clap's `error: ` prefix, and a
/// pointer to `--help`.
///
/// ```
/// use obzenflow_runtime::cli::{usage_message, Cli};
///
/// let error = Cli::parse_args(["obzenflow", "inspect"]).unwrap_err();
/// let message = usage_message(&error);
/// assert!(message.contains("<RUN>") && !message.contains('\n'), "{message}");
/// ```
pub fn usage_message(error: &clap::Error) -> String {
    if error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        // Clap's text for this case is the whole help.
        return "no subcommand given: runs, inspect, validate or verify (see `obzenflow --help`)"
            .to_owned();
    }
    let text = error.to_string();
    let paragraph: Vec<&str> = text
        .lines()
        .map(str::trim)
        .skip_while(|line| line.is_empty())
        .take_while(|line| !line.is_empty())
        .collect();
    let message = paragraph.join(" ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    if message.is_empty() {
        return "invalid arguments (see `obzenflow --help`)".to_owned();
    }
    format!("{message} (see `obzenflow --help`)")
}

fn one_line(text: &str) -> String {
    text.lines().map(str::trim).collect::<Vec<_>>().join(" ")
}

fn execute(cli: &Cli, stdout: &mut dyn Write) -> Result<Exit, CliError> {
    match &cli.command {
        Command::Runs => {
            let runs = list_runs(&cli.base)?;
            write_text(stdout, &format_runs(&runs))?;
            Ok(if runs.iter().any(|run| run.is_damaged()) {
                Exit::Findings
            } else {
                Exit::Success
            })
        }
        Command::Inspect {
            run, stage: None, ..
        } => list_journals(&cli.resolve_run(run), stdout),
        Command::Inspect {
            run,
            stage: Some(stage),
            lane,
            status,
        } => {
            let lane = lane.unwrap_or(LaneArg::Data).into();
            print_records(&cli.resolve_run(run), stage, lane, *status, stdout)
        }
        Command::Validate { run } => {
            let report = inspect::validate_run(cli.resolve_run(run))?;
            write_text(stdout, &report.to_string())?;
            Ok(if report.is_clean() {
                Exit::Success
            } else {
                Exit::Findings
            })
        }
        Command::Verify {
            baseline,
            candidate,
            json,
        } => verify_runs(cli, baseline, candidate, *json, stdout),
    }
}

fn list_journals(run: &Path, stdout: &mut dyn Write) -> Result<Exit, CliError> {
    // A directory that is not a run is an error (`RunDirError::NotARun`), not an empty list.
    let mut exit = Exit::Success;
    for journal in inspect::list_journals(run)? {
        let health = match &journal.health {
            JournalHealth::Clean => "sealed".to_owned(),
            JournalHealth::Unsealed => "unsealed".to_owned(),
            JournalHealth::TornTail(tail) => {
                exit = Exit::Findings;
                format!(
                    "torn tail at byte offset {} of {}: {}",
                    tail.offset,
                    tail.segment.display(),
                    tail.reason
                )
            }
            JournalHealth::Corrupt {
                segment,
                offset,
                kind,
            } => {
                exit = Exit::Findings;
                format!(
                    "corrupt record in {} at byte offset {offset}: {kind}",
                    segment.display()
                )
            }
        };
        let line = format!(
            "{}.{}  records {}  bytes {}  segments {}  {}\n",
            escape_name(&journal.name),
            journal.lane,
            journal.records,
            journal.bytes,
            journal.segments,
            escape_name(&health)
        );
        write_text(stdout, &line)?;
    }
    for (name, lane) in inspect::missing_journals(run)? {
        exit = Exit::Findings;
        let line = format!(
            "{}.{lane}  named by the manifest, but there is no journal directory\n",
            escape_name(&name)
        );
        write_text(stdout, &line)?;
    }
    Ok(exit)
}

/// Prints the records of one journal as JSON lines; with a status, only data records of it.
fn print_records(
    run: &Path,
    stage: &str,
    lane: Lane,
    status: Option<StatusArg>,
    stdout: &mut dyn Write,
) -> Result<Exit, CliError> {
    let mut records = inspect::read_journal(run, stage, lane)?;
    for event in records.by_ref() {
        let event = event?;
        let wanted = status
            .is_none_or(|status| event.is_data() && status.matches(&event.processing_info.status));
        if wanted {
            let mut line = serde_json::to_string(&event)?;
            line.push('\n');
            write_text(stdout, &line)?;
        }
    }
    // What was printed ends at a torn tail: say so, as `validate` would, and fail.
    if let Some(tail) = records.torn_tail() {
        return Err(CliError::RunDir(RunDirError::Journal {
            path: run.to_path_buf(),
            source: obzenflow_core::JournalError::Corrupt {
                segment: tail.segment.clone(),
                offset: tail.offset,
                kind: tail.reason.clone(),
            },
        }));
    }
    Ok(Exit::Success)
}

fn verify_runs(
    cli: &Cli,
    baseline: &Path,
    candidate: &Path,
    json: bool,
    stdout: &mut dyn Write,
) -> Result<Exit, CliError> {
    let baseline: PathBuf = cli.resolve_run(baseline);
    let report = verify(&baseline, cli.resolve_run(candidate))?;
    let mut text = if json {
        report.to_json()?
    } else {
        report.to_string()
    };
    text.push('\n');
    write_text(stdout, &text)?;
    Ok(if report.is_identical() {
        Exit::Success
    } else {
        Exit::Findings
    })
}

/// Writes `text`, escaping every control character but the line and tab breaks the formats
/// use: the last guard against a name or a message read from disk reaching the terminal raw
/// (names are escaped where they are formatted, line breaks included).
fn write_text(stdout: &mut dyn Write, text: &str) -> Result<(), CliError> {
    let escaped;
    let text = if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        escaped = text
            .split('\n')
            .map(|line| {
                line.split('\t')
                    .map(escape_name)
                    .collect::<Vec<_>>()
                    .join("\t")
            })
            .collect::<Vec<_>>()
            .join("\n");
        escaped.as_str()
    } else {
        text
    };
    stdout.write_all(text.as_bytes()).map_err(CliError::Output)
}
