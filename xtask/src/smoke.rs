//! Example smoke runs: every example of `obzenflow_examples` runs to completion on its small
//! smoke input (`OBZENFLOW_SMOKE=1`) within a deadline.
//!
//! The examples are built once with `cargo build` and their executables run directly, so the
//! deadline measures the example alone and killing it on timeout kills the example itself, not
//! a cargo process whose children would outlive it.

use std::collections::HashMap;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cmd;
use crate::error::XtaskError;

/// The package whose examples are smoke-run.
const EXAMPLES_PACKAGE: &str = "obzenflow_examples";
/// How long one example may run.
const SMOKE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long to wait for a killed example's output pipes to close.
const KILL_GRACE: Duration = Duration::from_secs(5);
/// How many trailing lines of each stream a failure shows.
const TAIL_LINES: usize = 40;

/// Output a pipe-draining thread appends to while the main thread may read it, so a killed
/// example still shows what it wrote.
type SharedBuffer = Arc<Mutex<Vec<u8>>>;

/// The names of the example targets of `obzenflow_examples`, from `cargo metadata` JSON.
fn example_names(metadata: &Value) -> Vec<String> {
    let packages = metadata["packages"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let Some(package) = packages
        .iter()
        .find(|package| package["name"] == EXAMPLES_PACKAGE)
    else {
        return Vec::new();
    };
    let targets = package["targets"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let is_example = |target: &&Value| {
        target["kind"]
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|kind| kind == "example"))
    };
    let mut names: Vec<String> = targets
        .iter()
        .filter(is_example)
        .filter_map(|target| target["name"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// Example executables by name, from `cargo build --message-format=json` output.
fn example_executables(stdout: &[u8]) -> Result<HashMap<String, PathBuf>, serde_json::Error> {
    let mut executables = HashMap::new();
    for line in stdout
        .split(|byte| *byte == b'\n')
        .filter(|line| !line.is_empty())
    {
        let message: Value = serde_json::from_slice(line)?;
        let target = &message["target"];
        let is_example = target["kind"]
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|kind| kind == "example"));
        if message["reason"] == "compiler-artifact" && is_example {
            if let (Some(name), Some(executable)) =
                (target["name"].as_str(), message["executable"].as_str())
            {
                executables.insert(name.to_owned(), PathBuf::from(executable));
            }
        }
    }
    Ok(executables)
}

/// Builds every example in the dev profile, with every feature, and returns their executables by name.
fn build_examples() -> Result<HashMap<String, PathBuf>, XtaskError> {
    let mut command = cmd::cargo([
        "build",
        "--locked",
        "--package",
        EXAMPLES_PACKAGE,
        "--examples",
        // Examples behind a feature (`distributed`, feature `jetstream`) are run too.
        "--all-features",
    ]);
    command.arg("--message-format=json-render-diagnostics");
    let stdout = cmd::stdout_of(&mut command)?;
    example_executables(&stdout).map_err(|source| XtaskError::Json {
        command: cmd::describe(&command),
        source,
    })
}

/// Copies `reader` into `buffer` on a thread, chunk by chunk, and reports on `closed` once the
/// pipe closes.
fn drain(reader: Option<impl Read + Send + 'static>, buffer: SharedBuffer, closed: Sender<()>) {
    thread::spawn(move || {
        if let Some(mut reader) = reader {
            let mut chunk = [0_u8; 8192];
            loop {
                match reader.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(read) => lock(&buffer).extend_from_slice(&chunk[..read]),
                    Err(error) if error.kind() == ErrorKind::Interrupted => continue,
                    // Any other read error ends the capture; what was read is still shown.
                    Err(_) => break,
                }
            }
        }
        // The receiver is gone only once the smoke run has given up on this example.
        let _ignored = closed.send(());
    });
}

/// Locks `buffer`, tolerating a poisoned lock: the bytes are still worth showing.
fn lock(buffer: &SharedBuffer) -> MutexGuard<'_, Vec<u8>> {
    buffer.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Waits until all `open` pipes have closed or `deadline` passes; returns whether all closed.
fn wait_for_pipes(closed: &Receiver<()>, open: &mut usize, deadline: Instant) -> bool {
    while *open > 0 {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if closed.recv_timeout(remaining).is_err() {
            return false;
        }
        *open -= 1;
    }
    true
}

/// The last `TAIL_LINES` lines of each stream, labelled.
fn output_tail(stdout: &[u8], stderr: &[u8]) -> String {
    let tail = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
    };
    format!(
        "--- stdout tail ---\n{}\n--- stderr tail ---\n{}",
        tail(stdout),
        tail(stderr)
    )
}

/// Spawns one example executable in smoke mode with piped output.
fn spawn_example(example: &str, executable: &Path) -> Result<Child, XtaskError> {
    let mut command = Command::new(executable);
    command
        .current_dir(cmd::workspace_root())
        .env("OBZENFLOW_SMOKE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command.spawn().map_err(|source| XtaskError::Spawn {
        command: format!("example {example} ({})", executable.display()),
        source,
    })
}

/// Runs one example to completion, killing it if it outlives `timeout`.
///
/// The main thread keeps the `Child` so that it can kill it; pipe-draining threads report on a
/// channel when the example's output closes, and `recv_timeout` bounds that wait without
/// polling. The examples spawn no processes of their own, so closed pipes mean an exited example.
fn smoke_run(example: &str, executable: &Path, timeout: Duration) -> Result<Duration, XtaskError> {
    let started = Instant::now();
    let mut child = spawn_example(example, executable)?;
    let (stdout, stderr) = (SharedBuffer::default(), SharedBuffer::default());
    let (closed_sender, closed) = mpsc::channel();
    drain(
        child.stdout.take(),
        Arc::clone(&stdout),
        closed_sender.clone(),
    );
    drain(child.stderr.take(), Arc::clone(&stderr), closed_sender);
    let mut open = 2;
    let finished = wait_for_pipes(&closed, &mut open, started + timeout);
    if !finished {
        // The example may have exited on its own just now; a failed kill changes nothing then.
        let _already_exited = child.kill();
    }
    let status = child.wait().map_err(|source| XtaskError::Spawn {
        command: format!("example {example}"),
        source,
    })?;
    if !finished {
        wait_for_pipes(&closed, &mut open, Instant::now() + KILL_GRACE);
    }
    let output_tail = output_tail(&lock(&stdout), &lock(&stderr));
    let example = example.to_owned();
    match (finished, status.success()) {
        (false, _) => Err(XtaskError::ExampleTimedOut {
            example,
            timeout,
            output_tail,
        }),
        (true, false) => Err(XtaskError::ExampleFailed {
            example,
            status,
            output_tail,
        }),
        (true, true) => Ok(started.elapsed()),
    }
}

/// The smoke-run step: builds the examples, then runs each one in smoke mode.
pub(crate) fn run() -> Result<(), XtaskError> {
    let metadata = cmd::cargo_metadata(&["--no-deps"])?;
    let examples = example_names(&metadata);
    if examples.is_empty() {
        println!("no examples yet");
        return Ok(());
    }
    let executables = build_examples()?;
    for example in &examples {
        let executable = executables
            .get(example)
            .ok_or_else(|| XtaskError::ExampleNotBuilt {
                example: example.clone(),
            })?;
        let elapsed = smoke_run(example, executable, SMOKE_TIMEOUT)?;
        println!("    example {example}: ok in {:.1}s", elapsed.as_secs_f64());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn example_names_come_from_example_targets_only() {
        let metadata = json!({ "packages": [
            { "name": "obzenflow_stages", "targets": [{ "name": "other", "kind": ["example"] }] },
            { "name": "obzenflow_examples", "targets": [
                { "name": "obzenflow_examples", "kind": ["lib"] },
                { "name": "word_count", "kind": ["example"] },
                { "name": "csv_join", "kind": ["example"] }
            ] }
        ] });
        assert_eq!(example_names(&metadata), ["csv_join", "word_count"]);
        assert_eq!(
            example_names(&json!({ "packages": [] })),
            Vec::<String>::new()
        );
    }

    #[test]
    fn example_executables_are_read_from_build_messages() {
        let stdout = concat!(
            r#"{"reason":"compiler-artifact","target":{"name":"obzenflow_examples","kind":["lib"]},"executable":null}"#,
            "\n",
            r#"{"reason":"compiler-artifact","target":{"name":"word_count","kind":["example"]},"executable":"/t/debug/examples/word_count"}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
            "\n"
        );
        let executables = example_executables(stdout.as_bytes()).expect("valid JSON lines");
        assert_eq!(executables.len(), 1);
        assert_eq!(
            executables["word_count"],
            PathBuf::from("/t/debug/examples/word_count")
        );
    }

    #[test]
    fn output_tail_keeps_the_last_lines_of_each_stream() {
        let stderr: String = (1..=100).map(|line| format!("line {line}\n")).collect();
        let tail = output_tail(b"done\n", stderr.as_bytes());
        assert!(tail.starts_with("--- stdout tail ---\ndone\n--- stderr tail ---\nline 61\n"));
        assert!(tail.ends_with("line 100"));
    }

    #[cfg(unix)]
    #[test]
    fn failing_example_reports_status_and_output_tail() {
        let script = std::env::temp_dir().join(format!("xtask-smoke-{}.sh", std::process::id()));
        std::fs::write(
            &script,
            "#!/bin/sh\necho \"smoke=$OBZENFLOW_SMOKE\"\necho boom >&2\nexit 3\n",
        )
        .expect("write script");
        let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
        std::fs::set_permissions(&script, mode).expect("make script executable");
        let result = smoke_run("failing", &script, SMOKE_TIMEOUT);
        std::fs::remove_file(&script).expect("remove script");
        let Err(XtaskError::ExampleFailed {
            example,
            status,
            output_tail,
        }) = result
        else {
            panic!("expected ExampleFailed, got {result:?}");
        };
        assert_eq!((example.as_str(), status.code()), ("failing", Some(3)));
        assert_eq!(
            output_tail,
            "--- stdout tail ---\nsmoke=1\n--- stderr tail ---\nboom"
        );
    }
}
