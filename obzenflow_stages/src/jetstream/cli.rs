//! `obzenflow-jetstream`: `runs`, `inspect`, `validate` and `export` for runs whose journals are
//! on JetStream.
//!
//! ```text
//! obzenflow-jetstream --servers URLS [--bucket NAME] runs
//! obzenflow-jetstream --servers URLS [--bucket NAME] inspect <RUN ID> [ARGS...]
//! obzenflow-jetstream --servers URLS [--bucket NAME] validate <RUN ID>
//! obzenflow-jetstream --servers URLS [--bucket NAME] export <RUN ID> <BASE DIR>
//! obzenflow-jetstream --servers URLS [--bucket NAME] stages <RUN ID>
//! ```
//!
//! Each command exports what it reads (`JetStreamJournals::export_run`: the very frames the
//! journals stored, and the manifest) into a temporary base directory and runs the `obzenflow`
//! command of the same name (`obzenflow_runtime::cli::run`) on it, so the checks, the output
//! and the exit codes (0 success, 1 findings, 2 usage or I/O errors) are the ones of disk runs.
//! A run whose writer died reads `incomplete`: its manifest in the bucket still says
//! `running`, and nothing holds its export's lock. A run split over workers reads as its
//! stages' outcomes give (`completed` only once every stage completed); `stages` prints each
//! stage's outcome and the worker that recorded it.

use std::ffi::OsString;
use std::io::Write;

use obzenflow_core::RunId;
use obzenflow_runtime::cli::Exit;

use super::journals::{JetStreamConfig, JetStreamJournals};

/// The usage line printed with a usage error.
const USAGE: &str = "usage: obzenflow-jetstream --servers URLS [--bucket NAME] \
                     (runs | inspect <RUN ID> [ARGS...] | validate <RUN ID> | export <RUN ID> <BASE DIR> | stages <RUN ID>)";

/// What the arguments ask for.
struct Request {
    config: JetStreamConfig,
    command: String,
    run_id: Option<RunId>,
    rest: Vec<String>,
}

fn parse(arguments: Vec<String>) -> Result<Request, String> {
    let mut servers = None;
    let mut bucket = None;
    let mut words = Vec::new();
    let mut rest = arguments.into_iter().skip(1);
    while let Some(argument) = rest.next() {
        match argument.as_str() {
            "--servers" => servers = Some(rest.next().ok_or("--servers needs a server list")?),
            "--bucket" => bucket = Some(rest.next().ok_or("--bucket needs a bucket name")?),
            _ => {
                words.push(argument);
                words.extend(rest.by_ref());
            }
        }
    }
    let servers = servers.ok_or("--servers is required")?;
    let mut config = JetStreamConfig::new(servers);
    if let Some(bucket) = bucket {
        config.bucket = bucket;
    }
    let mut words = words.into_iter();
    let command = words.next().ok_or("no command given")?;
    let needs_run = matches!(
        command.as_str(),
        "inspect" | "validate" | "export" | "stages"
    );
    if !needs_run && command != "runs" {
        return Err(format!("unknown command `{command}`"));
    }
    let run_id = match needs_run {
        true => {
            let word = words.next().ok_or(format!("`{command}` needs a run id"))?;
            Some(
                word.parse::<RunId>()
                    .map_err(|error| format!("`{word}` is not a run id: {error}"))?,
            )
        }
        false => None,
    };
    Ok(Request {
        config,
        command,
        run_id,
        rest: words.collect(),
    })
}

/// Runs one command; `arguments` start with the program name. Writes to `stdout` and
/// `stderr` as `obzenflow` does and returns its exit code.
///
/// # Cancel safety
///
/// Not cancel safe: a dropped `export` leaves a partial run directory.
pub async fn run_cli(
    arguments: impl IntoIterator<Item = String>,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Exit {
    let request = match parse(arguments.into_iter().collect()) {
        Ok(request) => request,
        Err(problem) => {
            let _ = writeln!(stderr, "obzenflow-jetstream: error: {problem}\n{USAGE}");
            return Exit::Error;
        }
    };
    match execute(request, stdout, stderr).await {
        Ok(exit) => exit,
        Err(error) => {
            let chain = obzenflow_core::ErrorChain::new(&*error);
            let _ = writeln!(stderr, "obzenflow-jetstream: error: {chain}");
            Exit::Error
        }
    }
}

async fn execute(
    request: Request,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<Exit, Box<dyn std::error::Error + Send + Sync>> {
    let journals = JetStreamJournals::connect(request.config).await?;
    if request.command == "stages" {
        let run_id = request.run_id.ok_or("`stages` needs a run id")?;
        let manifest = journals.manifest(run_id).await?;
        writeln!(stdout, "run {run_id}: {}", manifest.status.as_str())?;
        for outcome in journals.stage_outcomes(run_id).await? {
            let worker = outcome.worker.as_deref().unwrap_or("no worker");
            let stage = obzenflow_runtime::journal::inspect::escape_name(&outcome.stage);
            write!(stdout, "  {stage}: {} ({worker})", outcome.status.as_str())?;
            match &outcome.reason {
                Some(reason) => writeln!(
                    stdout,
                    ": {}",
                    obzenflow_runtime::journal::inspect::escape_name(reason)
                )?,
                None => writeln!(stdout)?,
            }
        }
        return Ok(Exit::Success);
    }
    if request.command == "export" {
        let base = request
            .rest
            .first()
            .ok_or("`export` needs a base directory")?;
        let run_id = request.run_id.ok_or("`export` needs a run id")?;
        let run_dir = journals.export_run(run_id, base).await?;
        writeln!(stdout, "{}", run_dir.display())?;
        return Ok(Exit::Success);
    }
    let base = tempfile::Builder::new()
        .prefix("obzenflow-jetstream-")
        .tempdir()?;
    let run_ids = match request.run_id {
        Some(run_id) => vec![run_id],
        None => journals
            .runs()
            .await?
            .into_iter()
            .map(|manifest| manifest.run_id)
            .collect(),
    };
    for run_id in &run_ids {
        journals.export_run(*run_id, base.path()).await?;
    }
    let mut arguments: Vec<OsString> = vec![
        "obzenflow".into(),
        "--base".into(),
        base.path().into(),
        request.command.into(),
    ];
    arguments.extend(request.run_id.map(|run_id| run_id.to_string().into()));
    arguments.extend(request.rest.into_iter().map(OsString::from));
    Ok(obzenflow_runtime::cli::run(arguments, stdout, stderr))
}
