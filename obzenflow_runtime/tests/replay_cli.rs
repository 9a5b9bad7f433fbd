//! The `obzenflow` command-line tool: argument handling and output formatting in process, the
//! subcommands against real run directories, and the built binary once.
#![cfg(feature = "cli")]

mod replay_support;

use std::path::{Path, PathBuf};

use obzenflow_core::{FlowId, Lane, RunId, Timestamp};
use obzenflow_runtime::cli::{
    self, format_runs, usage_message, Cli, Command, Exit, LaneArg, RunListing, StageCounts,
    StatusArg,
};
use obzenflow_runtime::journal::{RunManifest, RunState, RunStatus, SyncPolicy};
use replay_support::{flow, run_to_completion, NotCalled, Readings};

/// Runs the tool in process; returns the exit and what it wrote to stdout and stderr.
fn obzenflow(args: &[&str]) -> (Exit, String, String) {
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let args = std::iter::once("obzenflow").chain(args.iter().copied());
    let exit = cli::run(args, &mut stdout, &mut stderr);
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
    (exit, text(stdout), text(stderr))
}

fn path(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn arguments_parse_into_subcommands() {
    let cli = Cli::parse_args(["obzenflow", "runs"]).unwrap();
    assert_eq!(cli.command, Command::Runs);
    assert_eq!(cli.base, PathBuf::from("target/obzenflow/runs"));

    let cli = Cli::parse_args(["obzenflow", "runs", "--base", "/tmp/runs"]).unwrap();
    assert_eq!(cli.base, PathBuf::from("/tmp/runs"));

    let args = [
        "obzenflow",
        "inspect",
        "r",
        "parse",
        "--lane",
        "error",
        "--status",
        "error",
    ];
    let cli = Cli::parse_args(args).unwrap();
    assert_eq!(
        cli.command,
        Command::Inspect {
            run: PathBuf::from("r"),
            stage: Some("parse".to_owned()),
            lane: Some(LaneArg::Error),
            status: Some(StatusArg::Error),
        }
    );

    let cli = Cli::parse_args(["obzenflow", "verify", "a", "b"]).unwrap();
    assert!(matches!(cli.command, Command::Verify { json: false, .. }));
}

#[test]
fn bad_arguments_are_one_line_usage_errors() {
    for args in [
        &["obzenflow"][..],
        &["obzenflow", "frobnicate"],
        &["obzenflow", "inspect"],
        &["obzenflow", "inspect", "r", "--lane", "error"],
        &["obzenflow", "inspect", "r", "s", "--lane", "system"],
        &["obzenflow", "verify", "a"],
    ] {
        let error = Cli::parse_args(args).unwrap_err();
        let message = usage_message(&error);
        assert!(!message.contains('\n'), "{args:?}: {message}");
        assert!(message.ends_with("(see `obzenflow --help`)"), "{message}");
        assert!(!message.starts_with("error:"), "{message}");

        let (exit, stdout, stderr) = obzenflow(&args[1..]);
        assert_eq!(exit, Exit::Error, "{args:?}");
        assert_eq!(exit.code(), 2);
        assert!(stdout.is_empty(), "{stdout}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("obzenflow: error: "), "{stderr}");
    }
    let error = Cli::parse_args(["obzenflow", "inspect"]).unwrap_err();
    assert!(usage_message(&error).contains("<RUN>"));
    let error = Cli::parse_args(["obzenflow"]).unwrap_err();
    assert!(usage_message(&error).starts_with("no subcommand given"));
}

#[test]
fn help_lists_the_exit_codes_and_succeeds() {
    let (exit, stdout, stderr) = obzenflow(&["--help"]);
    assert_eq!(exit, Exit::Success);
    assert!(stderr.is_empty());
    for expected in [
        "Exit codes:",
        "  0  success",
        "  1  findings",
        "  2  usage or I/O",
    ] {
        assert!(stdout.contains(expected), "{stdout}");
    }
    for command in ["runs", "inspect", "validate", "verify"] {
        assert!(stdout.contains(command), "{stdout}");
    }
}

#[test]
fn a_journal_without_a_directory_is_damage_in_a_run_that_ended_and_not_opened_in_one_that_did_not()
{
    let manifest = RunManifest::new("crash", FlowId::new(), RunId::new(), SyncPolicy::default());
    for (finished, state, expected) in [
        (true, RunState::Completed, "damaged: double.data"),
        (false, RunState::Incomplete, "not opened: double.data"),
    ] {
        let listing = RunListing {
            run_dir: PathBuf::from("/runs").join(manifest.run_id.to_string()),
            state: Some(state),
            stages: Vec::new(),
            manifest: Ok(manifest.clone()),
            damage: Ok(Vec::new()),
            missing: vec![("double".to_owned(), Lane::Data)],
            finished,
        };
        let text = format_runs(std::slice::from_ref(&listing));
        assert!(text.contains(expected), "{text}");
        assert_eq!(listing.is_damaged(), finished, "{text}");
    }
}

#[test]
fn the_run_listing_shows_status_duration_and_counts() {
    let started = Timestamp::from_micros(1_700_000_000_000_000);
    let mut manifest =
        RunManifest::new("orders", FlowId::new(), RunId::new(), SyncPolicy::default());
    manifest.started_at = started;
    manifest.ended_at = Some(Timestamp::from_micros(started.as_micros() + 1_500_000));
    manifest.status = RunStatus::Failed;
    manifest.replayed_from = Some(PathBuf::from("/runs/run_original"));
    let listing = RunListing {
        run_dir: PathBuf::from("/runs").join(manifest.run_id.to_string()),
        state: Some(RunState::Failed),
        stages: vec![
            StageCounts {
                name: "orders".to_owned(),
                kind: "source".to_owned(),
                data: Some(10),
                errors: Some(1),
            },
            StageCounts {
                name: "validate".to_owned(),
                kind: "transform".to_owned(),
                data: None,
                errors: Some(0),
            },
        ],
        manifest: Ok(manifest.clone()),
        damage: Ok(Vec::new()),
        missing: Vec::new(),
        finished: true,
    };
    let text = format_runs(&[listing]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with(&manifest.run_id.to_string()), "{text}");
    for expected in [
        "flow `orders`",
        "failed",
        "started 2023-11-14T22:13:20.000000Z",
        "took 1.50s",
        "replay of /runs/run_original",
    ] {
        assert!(lines[0].contains(expected), "{expected}: {text}");
    }
    assert!(
        lines[1].contains("orders") && lines[1].contains("data       10"),
        "{text}"
    );
    assert!(lines[1].contains("errors        1"), "{text}");
    // The run ended, so a count missing from a seal is damage.
    assert!(lines[2].contains("data  damaged"), "{text}");
    assert_eq!(format_runs(&[]), "no runs\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subcommands_read_real_runs() {
    let base = tempfile::tempdir().unwrap();
    let original = run_to_completion(flow(Readings::new(20), 2, base.path())).await;
    let same = run_to_completion(flow(NotCalled, 2, base.path()).replay_from(&original)).await;
    let changed = run_to_completion(flow(NotCalled, 3, base.path()).replay_from(&original)).await;
    let base_dir = path(base.path());

    let (exit, stdout, _) = obzenflow(&["runs", "--base", base_dir]);
    assert_eq!(exit, Exit::Success);
    assert_eq!(
        stdout
            .lines()
            .filter(|line| line.starts_with("run_"))
            .count(),
        3
    );
    assert_eq!(stdout.matches("replay of").count(), 2, "{stdout}");

    let (exit, stdout, _) = obzenflow(&["verify", path(&original), path(&same)]);
    assert_eq!(exit, Exit::Success, "{stdout}");
    assert!(stdout.trim_end().ends_with("0 differences"), "{stdout}");

    // A run id is looked up under --base.
    let changed_id = changed.file_name().unwrap().to_str().unwrap();
    let args = [
        "--base",
        base_dir,
        "verify",
        path(&original),
        changed_id,
        "--json",
    ];
    let (exit, stdout, _) = obzenflow(&args);
    assert_eq!(exit, Exit::Findings);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["differences"], 2);
    assert_eq!(report["stages"][1]["stage"], "scale");

    let (exit, stdout, _) = obzenflow(&["inspect", path(&original), "scale", "--lane", "error"]);
    assert_eq!(exit, Exit::Success);
    let records: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    // The two rejected records, then the error lane's end-of-stream marker.
    assert_eq!(records.len(), 3, "{stdout}");
    assert!(records[..2]
        .iter()
        .all(|record| record["processing_info"]["status"]["status"] == "error"));
    assert_eq!(records[2]["content"]["control"], "end_of_stream");
    assert_eq!(records[2]["content"]["records"], 2);

    let args = [
        "inspect",
        path(&original),
        "readings",
        "--lane",
        "error",
        "--status",
        "success",
    ];
    assert_eq!(
        obzenflow(&args),
        (Exit::Success, String::new(), String::new())
    );

    let (exit, stdout, _) = obzenflow(&["inspect", path(&original)]);
    assert_eq!(exit, Exit::Success);
    assert!(stdout.contains("readings.data  records"), "{stdout}");

    let (exit, stdout, _) = obzenflow(&["validate", path(&original)]);
    assert_eq!(exit, Exit::Success, "{stdout}");

    let missing = base.path().join("run_missing");
    for args in [
        ["validate", path(&missing)].as_slice(),
        &["inspect", path(&missing)],
        &["verify", path(&original), path(&missing)],
    ] {
        let (exit, stdout, stderr) = obzenflow(args);
        assert_eq!(exit, Exit::Error, "{args:?}: {stdout}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("obzenflow: error: "), "{stderr}");
        assert!(stderr.contains("run_missing"), "{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_finds_a_damaged_journal() {
    let base = tempfile::tempdir().unwrap();
    let run = run_to_completion(flow(Readings::new(20), 2, base.path())).await;
    let segment = run.join("stages/scale/data/00000000000000000000.seg");
    let mut bytes = std::fs::read(&segment).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&segment, bytes).unwrap();
    let (exit, stdout, _) = obzenflow(&["validate", path(&run)]);
    assert_eq!(exit, Exit::Findings, "{stdout}");
    assert!(stdout.contains("scale.data"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_reports_differences_with_exit_code_1() {
    let base = tempfile::tempdir().unwrap();
    let original = run_to_completion(flow(Readings::new(10), 2, base.path())).await;
    let changed = run_to_completion(flow(NotCalled, 3, base.path()).replay_from(&original)).await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_obzenflow"))
        .args(["verify", path(&original), path(&changed)])
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("first divergent data record"), "{stdout}");
    assert!(stdout.trim_end().ends_with("2 differences"), "{stdout}");

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_obzenflow"))
        .args(["validate", path(&base.path().join("nothing"))])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.starts_with("obzenflow: error: "), "{stderr}");
}
