//! Replays and file sinks: a replay writes its sinks' outputs under
//! `<dir>/replays/<replay run id>/` and leaves the original run's outputs byte-identical, the
//! run report names where it wrote; `overwrite_on_replay` opts in to writing over them.

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use obzenflow_runtime::pipeline::{FlowBuilder, FlowReport, Journals};
use obzenflow_stages::sinks::{FileSinkConfig, JsonLinesSink};
use obzenflow_stages::sources::JsonLinesSource;
use obzenflow_stages::transforms::map;
use support::assert_drained;

/// A flow reading `input`, stamping each record with `version` (a replay runs the current
/// code, so a replay with another version writes other bytes), writing `output`.
fn flow(input: &Path, output: &Path, version: u64, config: FileSinkConfig) -> FlowBuilder {
    FlowBuilder::new("stamped")
        .async_source("in", JsonLinesSource::new(input, "row"))
        .transform(
            "stamp",
            map(move |mut event| {
                if let Some(payload) = event.payload_mut() {
                    payload["version"] = version.into();
                }
                event
            }),
        )
        .sink("out", JsonLinesSink::new(output).with_config(config))
        .chain(["in", "stamp", "out"])
}

async fn run(builder: FlowBuilder) -> FlowReport {
    let report = builder.build().unwrap().run().await.unwrap();
    assert_drained(&report);
    report
}

/// The destination of the one receipt of sink `out`.
fn destination(report: &FlowReport) -> String {
    let receipts = &report.stage("out").unwrap().receipts;
    assert_eq!(receipts.len(), 1, "{receipts:?}");
    receipts[0].destination.clone()
}

struct Setup {
    dir: tempfile::TempDir,
    input: PathBuf,
    output: PathBuf,
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.jsonl");
        fs::write(&input, "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n").unwrap();
        let output = dir.path().join("out/rows.jsonl");
        Self { dir, input, output }
    }

    fn runs(&self) -> Journals {
        Journals::disk(self.dir.path().join("runs"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_writes_its_sink_outputs_under_replays_and_leaves_the_original_byte_identical() {
    let setup = Setup::new();
    let config = FileSinkConfig::default();
    let original = run(flow(&setup.input, &setup.output, 1, config).journals(setup.runs())).await;
    let original_bytes = fs::read(&setup.output).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&original_bytes),
        "{\"n\":1,\"version\":1}\n{\"n\":2,\"version\":1}\n{\"n\":3,\"version\":1}\n"
    );
    assert_eq!(destination(&original), setup.output.display().to_string());

    let replay = run(flow(&setup.input, &setup.output, 2, config)
        .journals(setup.runs())
        .replay_from(original.run_dir.clone().unwrap()))
    .await;

    assert_eq!(fs::read(&setup.output).unwrap(), original_bytes);
    let moved = setup
        .dir
        .path()
        .join("out/replays")
        .join(replay.run_id.to_string())
        .join("rows.jsonl");
    assert_eq!(
        fs::read_to_string(&moved).unwrap(),
        "{\"n\":1,\"version\":2}\n{\"n\":2,\"version\":2}\n{\"n\":3,\"version\":2}\n"
    );
    // The replay's run directory and its outputs' directory have one name: the run id.
    assert_eq!(
        replay.run_dir.as_ref().unwrap().file_name().unwrap(),
        moved.parent().unwrap().file_name().unwrap()
    );
    assert_eq!(destination(&replay), moved.display().to_string());
    let shown = replay.to_string();
    assert!(
        shown.contains(&format!(
            "`out` delivered 3 records (60 bytes) to {}",
            moved.display()
        )),
        "{shown}"
    );
    // No temporary file is left in either place.
    for dir in [setup.output.parent().unwrap(), moved.parent().unwrap()] {
        let names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert!(
            names
                .iter()
                .all(|name| !name.to_string_lossy().ends_with(".tmp")),
            "{names:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_with_overwrite_on_replay_writes_over_the_original_output() {
    let setup = Setup::new();
    let config = FileSinkConfig::default().overwrite_on_replay(true);
    let original = run(flow(&setup.input, &setup.output, 1, config).journals(setup.runs())).await;

    let replay = run(flow(&setup.input, &setup.output, 2, config)
        .journals(setup.runs())
        .replay_from(original.run_dir.clone().unwrap()))
    .await;

    assert_eq!(
        fs::read_to_string(&setup.output).unwrap(),
        "{\"n\":1,\"version\":2}\n{\"n\":2,\"version\":2}\n{\"n\":3,\"version\":2}\n"
    );
    assert_eq!(destination(&replay), setup.output.display().to_string());
    assert!(!setup.dir.path().join("out/replays").exists());
}
