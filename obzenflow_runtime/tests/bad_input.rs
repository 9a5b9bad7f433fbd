//! Bad input given to the runtime: flow graphs, stage and edge configuration, and run
//! directories handed to a replay or to the `obzenflow` tool. Each is refused with an error
//! naming what was wrong and where, before anything starts; none panics or hangs.
//!
//! This file and `obzenflow_stages/tests/bad_input.rs` (items 1 to 4: malformed lines,
//! invalid UTF-8, 10 MB lines, empty files and directories given to the file sources) are
//! together the index of bad-input coverage; what is tested elsewhere is named here.
//!
//! 5. Flow graphs.
//!    - Every graph error's message, on `Graph::validate` directly:
//!      `pipeline/graph.rs::tests::errors_name_the_stages` (no stages, a duplicate name, an
//!      unknown stage, a duplicate edge, an edge into a source or out of a sink, a stage with
//!      no input or output) and `pipeline/graph.rs::tests::cycles_are_reported_with_their_path`.
//!    - Here: a cycle (and a self-loop), an unknown stage in an edge and in `chain`, and a
//!      duplicate stage name, through `FlowBuilder::build`, which must leave no run directory
//!      behind; a stage name that cannot name a directory (refused at build on any journals,
//!      not at start on disk only); configuration for an unknown stage and configuration that
//!      cannot work (a zero batch limit or control capacity, an error-budget ratio outside
//!      `0.0..=1.0`).
//! 6. A zero backpressure window: `EdgeConfig::window` is a `NonZeroU64`, so the only way to
//!    ask for one is `FlowBuilder::edge_with_window(.., 0)`, refused here at build; the
//!    smallest and the largest windows run to completion here.
//! 7. Run directories.
//!    - `RunDirectory::read_manifest`: a missing manifest
//!      (`journal_run_dir.rs::a_missing_manifest_is_a_typed_error_naming_the_path`), a manifest
//!      from a newer format and one that is not valid JSON
//!      (`journal_run_dir.rs::a_manifest_from_a_newer_format_is_refused_with_both_versions`).
//!    - A run directory that does not exist, through the CLI:
//!      `replay_cli.rs::subcommands_read_real_runs` and
//!      `replay_cli.rs::the_binary_reports_differences_with_exit_code_1`; an incomplete run and
//!      a source missing from the archive, through `replay_from`:
//!      `replay_refusals.rs::an_incomplete_run_is_refused_unless_allowed` and
//!      `replay_refusals.rs::a_source_missing_from_the_archive_is_named`.
//!    - Here: a missing manifest, a manifest from a future format version, one from before
//!      journal format 2 (manifest version 1) and a path that is not a directory, through
//!      `FlowBuilder::replay_from`; and the first two through
//!      `obzenflow validate`, `inspect` and `runs` (feature `cli`).

mod support;

use std::path::{Path, PathBuf};

use obzenflow_core::ErrorChain;
use obzenflow_runtime::journal::{RunDirError, RunManifest};
use obzenflow_runtime::pipeline::{FlowBuilder, FlowError, GraphError, Journals};
use obzenflow_runtime::replay::ReplayError;
use obzenflow_runtime::stages::{ErrorBudget, StageConfig};
use support::{doubling_flow, Collect, Double, Numbers};

/// The error as people read it: its chain, after checking that it prints each cause once.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    support::assert_each_cause_once(error);
    ErrorChain::new(error).to_string()
}

/// Builds `builder` on disk journals under a fresh directory and returns the error, after
/// checking that nothing was written there.
fn build_error(builder: FlowBuilder) -> FlowError {
    let base = tempfile::tempdir().unwrap();
    let Err(error) = builder.journals(Journals::disk(base.path())).build() else {
        panic!("the flow must be refused at build");
    };
    let written: Vec<_> = std::fs::read_dir(base.path()).unwrap().collect();
    assert!(written.is_empty(), "a refused flow wrote {written:?}");
    error
}

/// numbers -> double -> collect, plus whatever the test adds.
fn numbers_double_collect() -> FlowBuilder {
    FlowBuilder::new("bad")
        .source("numbers", Numbers::new("numbers", 3))
        .transform("double", Double { fail_every: None })
        .sink("collect", Collect::default())
}

#[test]
fn a_flow_graph_with_a_cycle_is_refused_at_build_naming_the_cycle() {
    let error = build_error(
        numbers_double_collect()
            .transform("again", Double { fail_every: None })
            .chain(["numbers", "double", "again", "double"])
            .edge("again", "collect"),
    );
    assert!(
        matches!(&error, FlowError::Graph(GraphError::Cycle { stages })
            if stages == &["double", "again", "double"]),
        "{error:?}"
    );
    assert_eq!(
        chain(&error),
        "invalid flow graph: the flow has a cycle through double -> again -> double"
    );

    let error = build_error(
        numbers_double_collect()
            .chain(["numbers", "double", "collect"])
            .edge("double", "double"),
    );
    assert_eq!(
        chain(&error),
        "invalid flow graph: the flow has a cycle through double -> double"
    );
}

#[test]
fn an_unknown_stage_in_a_connection_is_refused_at_build_naming_the_edge_and_the_name() {
    let error = build_error(numbers_double_collect().chain(["numbers", "doubel", "collect"]));
    assert!(
        matches!(&error, FlowError::Graph(GraphError::UnknownStage { from, to, unknown })
            if (from.as_str(), to.as_str(), unknown.as_str()) == ("numbers", "doubel", "doubel")),
        "{error:?}"
    );
    assert_eq!(
        chain(&error),
        "invalid flow graph: edge numbers -> doubel names unknown stage `doubel`"
    );

    let error = build_error(
        numbers_double_collect()
            .edge("nmbers", "double")
            .edge("double", "collect"),
    );
    assert_eq!(
        chain(&error),
        "invalid flow graph: edge nmbers -> double names unknown stage `nmbers`"
    );
}

#[test]
fn a_duplicate_stage_name_is_refused_at_build_naming_it() {
    let error = build_error(
        numbers_double_collect()
            .source("double", Numbers::new("other", 3))
            .chain(["numbers", "double", "collect"]),
    );
    assert!(
        matches!(&error, FlowError::Graph(GraphError::DuplicateStage { name }) if name == "double"),
        "{error:?}"
    );
    assert_eq!(
        chain(&error),
        "invalid flow graph: stage name `double` is used twice"
    );
}

#[test]
fn a_stage_name_that_cannot_name_a_directory_is_refused_at_build_on_any_journals() {
    let flow = || {
        FlowBuilder::new("names")
            .source("orders/2024", Numbers::new("numbers", 3))
            .sink("collect", Collect::default())
            .edge("orders/2024", "collect")
    };
    let expected = "invalid flow graph: stage name `orders/2024` cannot be used: it contains a \
                    path separator, a colon or a control character";
    // On disk journals (`build_error` checks that no run directory was made) ...
    let error = build_error(flow());
    assert!(
        matches!(&error, FlowError::Graph(GraphError::InvalidStageName { name, .. })
            if name == "orders/2024"),
        "{error:?}"
    );
    assert_eq!(chain(&error), expected);
    // ... and on memory journals, where the name would have worked, so that a flow tested in
    // memory does not fail on disk.
    let Err(error) = flow().journals(Journals::memory()).build() else {
        panic!("a name refused on disk is refused in memory too");
    };
    assert_eq!(chain(&error), expected);
}

#[test]
fn configuration_for_an_unknown_stage_is_refused_at_build_naming_it() {
    let error = build_error(
        numbers_double_collect()
            .chain(["numbers", "double", "collect"])
            .configure("dubble", StageConfig::default()),
    );
    assert_eq!(
        chain(&error),
        "configuration given for unknown stage `dubble`"
    );
}

#[test]
fn stage_configuration_that_cannot_work_is_refused_at_build_naming_the_stage() {
    let ratio = |ratio| ErrorBudget::MaxRatio {
        ratio,
        min_records: 10,
    };
    let cases = [
        (
            StageConfig {
                batch_limit: 0,
                ..StageConfig::default()
            },
            "batch_limit must be at least 1",
        ),
        (
            StageConfig {
                control_capacity: 0,
                ..StageConfig::default()
            },
            "control_capacity must be at least 1",
        ),
        (
            StageConfig {
                error_budget: ratio(1.5),
                ..StageConfig::default()
            },
            "the error budget's ratio must be between 0.0 and 1.0",
        ),
        (
            StageConfig {
                error_budget: ratio(-0.1),
                ..StageConfig::default()
            },
            "the error budget's ratio must be between 0.0 and 1.0",
        ),
        (
            StageConfig {
                error_budget: ratio(f64::NAN),
                ..StageConfig::default()
            },
            "the error budget's ratio must be between 0.0 and 1.0",
        ),
    ];
    for (config, reason) in cases {
        let error = build_error(
            numbers_double_collect()
                .chain(["numbers", "double", "collect"])
                .configure("double", config),
        );
        assert!(
            matches!(&error, FlowError::InvalidConfig { stage, .. } if stage == "double"),
            "{error:?}"
        );
        assert_eq!(
            chain(&error),
            format!("stage `double`: invalid configuration: {reason}")
        );
    }
}

#[test]
fn a_zero_backpressure_window_is_refused_at_build_naming_the_edge() {
    let error = build_error(
        numbers_double_collect()
            .edge("numbers", "double")
            .edge_with_window("double", "collect", 0),
    );
    assert!(
        matches!(&error, FlowError::Graph(GraphError::ZeroWindow { from, to })
            if (from.as_str(), to.as_str()) == ("double", "collect")),
        "{error:?}"
    );
    assert_eq!(
        chain(&error),
        "invalid flow graph: edge double -> collect has a backpressure window of 0; it must be \
         at least 1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smallest_and_largest_windows_deliver_every_record() {
    for window in [1, u64::MAX] {
        let sink = Collect::default();
        let report = FlowBuilder::new("windows")
            .source("numbers", Numbers::new("numbers", 500))
            .transform("double", Double { fail_every: None })
            .sink("collect", sink.clone())
            .edge_with_window("numbers", "double", window)
            .edge_with_window("double", "collect", window)
            .journals(Journals::memory())
            .build()
            .unwrap()
            .run()
            .await
            .unwrap();
        assert!(report.is_success(), "window {window}: {report}");
        let numbers: Vec<u64> = sink.numbers().into_iter().map(|(_, n)| n).collect();
        assert_eq!(numbers, (0..500).collect::<Vec<_>>(), "window {window}");
    }
}

/// Runs the doubling flow to completion on disk journals under `base`; returns its run
/// directory.
async fn completed_run(base: &Path) -> PathBuf {
    let report = doubling_flow("archived", 5, None, Collect::default())
        .journals(Journals::disk(base))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert!(report.is_success(), "{report}");
    report.run_dir.unwrap()
}

/// The manifest format after this build's, as a future build might write it.
const FUTURE_VERSION: u32 = RunManifest::FORMAT_VERSION + 1;

/// Rewrites the manifest of `run_dir` with format version [`FUTURE_VERSION`].
fn make_manifest_from_the_future(run_dir: &Path) {
    rewrite_manifest_version(run_dir, FUTURE_VERSION, "a future build");
}

/// Rewrites the manifest of `run_dir` with format version `version`, marked as `written_by`.
fn rewrite_manifest_version(run_dir: &Path, version: u32, written_by: &str) {
    let path = run_dir.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    manifest["format_version"] = version.into();
    manifest["written_by"] = written_by.into();
    std::fs::write(&path, manifest.to_string()).unwrap();
}

/// The run-directory error behind a refused replay of `run_dir`, and the refusal's message.
fn replay_refusal(run_dir: &Path, base: &Path) -> (RunDirError, String) {
    let refused = doubling_flow("replay", 5, None, Collect::default())
        .journals(Journals::disk(base))
        .replay_from(run_dir)
        .build();
    let Err(error) = refused else {
        panic!("the replay of {} must be refused", run_dir.display());
    };
    let message = chain(&error);
    let FlowError::Replay(ReplayError::Archive {
        run_dir: named,
        source,
    }) = error
    else {
        panic!("the replay must be refused as unreadable: {error:?}");
    };
    assert_eq!(named, run_dir);
    (*source, message)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_of_a_run_without_a_manifest_is_refused_at_build_naming_the_manifest() {
    let base = tempfile::tempdir().unwrap();
    let run_dir = completed_run(base.path()).await;
    std::fs::remove_file(run_dir.join("manifest.json")).unwrap();

    let replays = tempfile::tempdir().unwrap();
    let (error, message) = replay_refusal(&run_dir, replays.path());
    let manifest = run_dir.join("manifest.json");
    assert!(
        matches!(&error, RunDirError::ManifestMissing { path } if *path == manifest),
        "{error:?}"
    );
    assert_eq!(
        message,
        format!(
            "cannot replay: cannot read the archived run {}: no run manifest at {}",
            run_dir.display(),
            manifest.display()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_of_a_run_from_a_future_format_is_refused_at_build_naming_both_versions() {
    let base = tempfile::tempdir().unwrap();
    let run_dir = completed_run(base.path()).await;
    make_manifest_from_the_future(&run_dir);

    let replays = tempfile::tempdir().unwrap();
    let (error, message) = replay_refusal(&run_dir, replays.path());
    assert!(
        matches!(
            error,
            RunDirError::UnsupportedVersion {
                found: FUTURE_VERSION,
                supported: RunManifest::FORMAT_VERSION,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        message,
        format!(
            "cannot replay: cannot read the archived run {0}: run manifest {0}/manifest.json has \
             format version {FUTURE_VERSION}; this build reads version {1}",
            run_dir.display(),
            RunManifest::FORMAT_VERSION,
        )
    );
}

/// A run written before journal format 2 has a version-1 manifest: it is refused at the
/// manifest, naming both versions, before any of its segments is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_of_a_run_from_journal_format_1_is_refused_at_its_manifest() {
    let base = tempfile::tempdir().unwrap();
    let run_dir = completed_run(base.path()).await;
    rewrite_manifest_version(&run_dir, 1, "a build of journal format 1");

    let replays = tempfile::tempdir().unwrap();
    let (error, message) = replay_refusal(&run_dir, replays.path());
    assert!(
        matches!(
            error,
            RunDirError::UnsupportedVersion {
                found: 1,
                supported: 2,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        message,
        format!(
            "cannot replay: cannot read the archived run {0}: run manifest {0}/manifest.json has \
             format version 1; this build reads version 2",
            run_dir.display()
        )
    );
}

#[test]
fn a_replay_of_a_path_that_is_not_a_run_directory_is_refused_at_build_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("manifest.json");
    std::fs::write(&file, "{}").unwrap();
    let replays = tempfile::tempdir().unwrap();
    for (path, reason) in [
        (dir.path().join("run_missing"), "No such file or directory"),
        (file, "not a directory"),
    ] {
        let (error, message) = replay_refusal(&path, replays.path());
        assert!(
            matches!(&error, RunDirError::Io { operation: "open", path: named, .. }
                if *named == path),
            "{error:?}"
        );
        assert!(
            message.starts_with(&format!(
                "cannot replay: cannot read the archived run {0}: cannot open {0}: ",
                path.display()
            )),
            "{message}"
        );
        assert!(message.contains(reason), "{message}");
    }
}

#[cfg(feature = "cli")]
mod cli {
    //! The same run directories given to the `obzenflow` tool.

    use super::*;
    use obzenflow_runtime::cli::{self, Exit};

    /// Runs the tool in process; returns the exit and what it wrote to stdout and stderr.
    fn obzenflow(args: &[&str]) -> (Exit, String, String) {
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let args = std::iter::once("obzenflow").chain(args.iter().copied());
        let exit = cli::run(args, &mut stdout, &mut stderr);
        let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
        (exit, text(stdout), text(stderr))
    }

    fn text(path: &Path) -> &str {
        path.to_str().unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_lists_a_run_whose_manifest_is_missing_saying_so() {
        let base = tempfile::tempdir().unwrap();
        let run_dir = completed_run(base.path()).await;
        let manifest = run_dir.join("manifest.json");
        std::fs::remove_file(&manifest).unwrap();

        let (exit, stdout, stderr) = obzenflow(&["--base", text(base.path()), "runs"]);
        assert_eq!(exit, Exit::Success, "{stdout}{stderr}");
        let name = run_dir.file_name().unwrap().to_str().unwrap();
        assert!(
            stdout.contains(&format!(
                "{name}  manifest unreadable: no run manifest at {}",
                manifest.display()
            )),
            "{stdout}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn validate_reports_a_missing_manifest_as_a_finding_naming_its_path() {
        let base = tempfile::tempdir().unwrap();
        let run_dir = completed_run(base.path()).await;
        let manifest = run_dir.join("manifest.json");
        std::fs::remove_file(&manifest).unwrap();

        let (exit, stdout, stderr) = obzenflow(&["validate", text(&run_dir)]);
        assert_eq!(exit, Exit::Findings, "{stdout}{stderr}");
        assert!(
            stdout.contains(&format!(
                "  manifest: no run manifest at {}\n",
                manifest.display()
            )),
            "{stdout}"
        );
        // The journals are still checked and reported.
        let numbers = stdout
            .lines()
            .find(|line| line.starts_with("  numbers.data: "))
            .unwrap_or_else(|| panic!("no numbers.data line: {stdout}"));
        assert!(numbers.ends_with(" records, ok"), "{stdout}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn validate_and_runs_report_a_future_manifest_naming_both_versions() {
        let base = tempfile::tempdir().unwrap();
        let run_dir = completed_run(base.path()).await;
        make_manifest_from_the_future(&run_dir);
        let refusal = format!(
            "run manifest {}/manifest.json has format version {FUTURE_VERSION}; this build reads \
             version {}",
            run_dir.display(),
            RunManifest::FORMAT_VERSION,
        );

        let (exit, stdout, stderr) = obzenflow(&["validate", text(&run_dir)]);
        assert_eq!(exit, Exit::Findings, "{stdout}{stderr}");
        assert!(
            stdout.contains(&format!("  manifest: {refusal}\n")),
            "{stdout}"
        );

        let (exit, stdout, stderr) = obzenflow(&["--base", text(base.path()), "runs"]);
        assert_eq!(exit, Exit::Success, "{stderr}");
        let run_name = run_dir.file_name().unwrap().to_str().unwrap();
        assert_eq!(
            stdout,
            format!("{run_name}  manifest unreadable: {refusal}\n")
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn inspect_lists_the_journals_of_a_run_whose_manifest_is_missing() {
        let base = tempfile::tempdir().unwrap();
        let run_dir = completed_run(base.path()).await;
        std::fs::remove_file(run_dir.join("manifest.json")).unwrap();

        // The journals are what is left to look at; listing them needs no manifest.
        let (exit, stdout, stderr) = obzenflow(&["inspect", text(&run_dir)]);
        assert_eq!(exit, Exit::Success, "{stderr}");
        assert!(stdout.contains("numbers.data  records "), "{stdout}");
        let (exit, stdout, stderr) = obzenflow(&["inspect", text(&run_dir), "collect"]);
        assert_eq!(exit, Exit::Success, "{stderr}");
        assert!(!stdout.is_empty());
    }
}
