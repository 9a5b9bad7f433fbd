//! Running cargo and other commands from the workspace root, with readable failures.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::error::XtaskError;

/// The workspace root: the directory above `xtask/`.
pub(crate) fn workspace_root() -> &'static Path {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir)
}

/// A `cargo` command run from the workspace root, using the cargo that launched xtask.
pub(crate) fn cargo<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(program);
    command.args(args).current_dir(workspace_root());
    command
}

/// The command line as a reader would type it: `cargo fmt --all`, not `/root/.cargo/bin/cargo`.
pub(crate) fn describe(command: &Command) -> String {
    let program = Path::new(command.get_program());
    let program = program.file_stem().unwrap_or(program.as_os_str());
    let mut words = vec![program.to_string_lossy().into_owned()];
    words.extend(
        command
            .get_args()
            .map(|arg| arg.to_string_lossy().into_owned()),
    );
    words.join(" ")
}

/// Runs `command` with inherited stdio and fails unless it exits successfully.
pub(crate) fn run(command: &mut Command) -> Result<(), XtaskError> {
    let status = command.status().map_err(|source| XtaskError::Spawn {
        command: describe(command),
        source,
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(XtaskError::CommandFailed {
            command: describe(command),
            status,
        })
    }
}

/// Runs `command` with stderr inherited, returning its stdout; fails unless it exits successfully.
pub(crate) fn stdout_of(command: &mut Command) -> Result<Vec<u8>, XtaskError> {
    command.stdout(Stdio::piped()).stderr(Stdio::inherit());
    let output = command.output().map_err(|source| XtaskError::Spawn {
        command: describe(command),
        source,
    })?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(XtaskError::CommandFailed {
            command: describe(command),
            status: output.status,
        })
    }
}

/// Runs `cargo metadata --format-version 1` plus `extra_args` and parses its JSON.
pub(crate) fn cargo_metadata(extra_args: &[&str]) -> Result<serde_json::Value, XtaskError> {
    let mut command = cargo(["metadata", "--format-version", "1", "--locked"]);
    command.args(extra_args);
    let stdout = stdout_of(&mut command)?;
    serde_json::from_slice(&stdout).map_err(|source| XtaskError::Json {
        command: describe(&command),
        source,
    })
}
