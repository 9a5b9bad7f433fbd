//! What an adversarial review did to run directories, and what must come of it: a FIFO, a
//! device link or an over-long file in place of a manifest, a lock or a segment is refused
//! naming it, never waited on, and never stops a new run of any flow in the base; a run
//! directory is never seen half made, whatever step of its creation a kill or a full disk
//! interrupts; symlinked journal directories are refused by every reader alike; names read
//! from disk reach the terminal escaped; a directory that is not a run is said to be one; and
//! a flow whose end cannot be recorded says why in its error, its report and its manifest.
//!
//! Checks that could hang run on a thread joined with a deadline: a hang fails the test
//! instead of stalling it.

mod journal_support;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use journal_support::{append_one_by_one, stage_end, system_end};
use obzenflow_core::{
    ChainEvent, ErrorChain, EventContent, FlowId, Lane, LifecycleEvent, Record, RunId, StageId,
    SystemComponent,
};
use obzenflow_runtime::cli::{self, Exit};
use obzenflow_runtime::journal::{
    inspect, CreateStep, DiskJournalConfig, FaultKind, Interruption, JournalFactory, JournalFault,
    JournalStorage, RunDirError, RunDirectory, RunManifest, RunState, RunStatus, SegmentReader,
    SyncPolicy,
};
use obzenflow_runtime::pipeline::{FlowError, FlowFailure, Journals};
use obzenflow_runtime::stages::{AsyncSinkHandler, HandlerFailure, RecordError, StageConfig};
use support::{doubling_flow, Collect};
use tokio::sync::{oneshot, Notify};

/// How long a check may take before it counts as hung.
const HANG_DEADLINE: Duration = Duration::from_secs(60);

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

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A completed run of the doubling flow `flow` under `base`.
fn completed_run(base: &Path, flow: &str) -> PathBuf {
    let report = runtime()
        .block_on(
            doubling_flow(flow, 20, None, Collect::default())
                .journals(Journals::disk(base))
                .build()
                .unwrap()
                .run(),
        )
        .unwrap();
    assert!(report.is_success(), "{report}");
    report.run_dir.unwrap()
}

/// Runs `check` on its own thread and waits for it with a deadline: a check that blocks (on a
/// FIFO, say) fails the test instead of hanging it.
fn within_deadline<T: Send + 'static>(what: &str, check: impl FnOnce() -> T + Send + 'static) -> T {
    let (sender, receiver) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let _ = sender.send(check());
    });
    match receiver.recv_timeout(HANG_DEADLINE) {
        Ok(value) => value,
        // The check panicked: pass its panic on.
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => match thread.join() {
            Ok(()) => unreachable!("the check sent nothing and did not panic"),
            Err(panic) => std::panic::resume_unwind(panic),
        },
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what} hung instead of refusing the damaged file")
        }
    }
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Replaces `path` by a FIFO.
fn plant_fifo(path: &Path) {
    std::fs::remove_file(path).unwrap();
    mkfifo(path);
}

/// A new run of another flow in `base` starts and completes next to the damaged run.
fn a_new_run_completes(base: &Path) {
    let base = base.to_path_buf();
    let report = within_deadline("a new run next to a damaged one", move || {
        runtime().block_on(
            doubling_flow("neighbour", 5, None, Collect::default())
                .journals(Journals::disk(base))
                .build()
                .unwrap()
                .run(),
        )
    })
    .expect("a damaged neighbour must not stop a new run");
    assert!(report.is_success(), "{report}");
}

/// Every CLI command over the damaged run ends (exit 2, or a listing) and names `damaged`.
fn every_reader_refuses(base: &Path, run_dir: &Path, damaged: &Path) {
    let (base, run_dir, damaged) = (base.to_owned(), run_dir.to_owned(), damaged.to_owned());
    within_deadline("the CLI over a damaged run", move || {
        let name = damaged.display().to_string();
        let (_, stdout, stderr) = obzenflow(&["--base", text(&base), "runs"]);
        assert!(
            stdout.contains(&name) || !damaged.ends_with("manifest.json"),
            "runs must name the damaged manifest: {stdout}{stderr}"
        );
        // Each command ends; whichever needs the damaged file fails naming it, and `validate`,
        // which needs them all, never passes.
        for args in [
            vec!["validate", text(&run_dir)],
            vec!["inspect", text(&run_dir)],
            vec!["inspect", text(&run_dir), "double"],
            vec!["verify", text(&run_dir), text(&run_dir)],
        ] {
            let (exit, stdout, stderr) = obzenflow(&args);
            if exit != Exit::Success {
                let output = format!("{stdout}{stderr}");
                assert!(
                    output.contains(&format!("{name} is a FIFO")),
                    "{args:?}: {output}"
                );
            } else {
                assert_ne!(args[0], "validate", "{stdout}");
            }
        }
    });
}

#[test]
fn a_fifo_as_manifest_lock_or_segment_is_refused_naming_it_and_never_blocks_a_new_run() {
    for damaged in [
        "manifest.json",
        "run.lock",
        "stages/double/data/00000000000000000000.seg",
    ] {
        let base = tempfile::tempdir().unwrap();
        let run_dir = completed_run(base.path(), "damaged");
        if damaged == "run.lock" {
            // The lock is only asked about for a run whose manifest records no end.
            let run = RunDirectory::open(&run_dir).unwrap();
            let mut manifest = run.read_manifest().unwrap();
            (manifest.status, manifest.ended_at) = (RunStatus::Running, None);
            run.write_manifest(&manifest).unwrap();
        }
        let path = run_dir.join(damaged);
        plant_fifo(&path);

        let read = {
            let (run_dir, path) = (run_dir.clone(), path.clone());
            within_deadline("reading the run", move || {
                let run = RunDirectory::open(&run_dir).unwrap();
                let manifest = run.read_manifest();
                let state = manifest
                    .as_ref()
                    .ok()
                    .map(|manifest| run.state_of(manifest));
                let validation = inspect::validate_run(&run_dir);
                (path, manifest.err(), state, validation.err())
            })
        };
        let error = match damaged {
            "manifest.json" => read.1.expect("a FIFO manifest is refused"),
            "run.lock" => read
                .2
                .expect("manifest reads")
                .expect_err("a FIFO lock is refused"),
            _ => read.3.expect("a FIFO segment is refused"),
        };
        assert!(
            matches!(&error, RunDirError::NotARegularFile { path, found: "a FIFO" } if *path == read.0),
            "{damaged}: {error:?}"
        );
        assert!(error.to_string().contains(text(&path)), "{error}");
        every_reader_refuses(base.path(), &run_dir, &path);
        a_new_run_completes(base.path());
    }
}

#[test]
fn a_manifest_linked_to_a_device_or_too_long_is_refused_without_reading_it_all() {
    let base = tempfile::tempdir().unwrap();
    let run_dir = completed_run(base.path(), "damaged");
    let manifest = run_dir.join("manifest.json");
    let original = std::fs::read(&manifest).unwrap();
    std::fs::remove_file(&manifest).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &manifest).unwrap();
    let run = RunDirectory::open(&run_dir).unwrap();
    let error = within_deadline("reading a manifest linked to /dev/zero", move || {
        run.read_manifest().unwrap_err()
    });
    assert!(
        matches!(&error, RunDirError::NotARegularFile { path, .. } if *path == manifest),
        "{error:?}"
    );
    a_new_run_completes(base.path());

    // A regular manifest padded past the limit (JSON allows trailing spaces).
    std::fs::remove_file(&manifest).unwrap();
    let mut padded = original;
    padded.resize(2 << 20, b' ');
    std::fs::write(&manifest, &padded).unwrap();
    let error = RunDirectory::open(&run_dir)
        .unwrap()
        .read_manifest()
        .unwrap_err();
    assert!(
        matches!(&error, RunDirError::TooLarge { path, limit: 1_048_576 } if *path == manifest),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "{} is larger than 1048576 bytes; refusing to read it",
            manifest.display()
        )
    );
    a_new_run_completes(base.path());
}

fn fresh_manifest(flow: &str) -> RunManifest {
    RunManifest::new(flow, FlowId::new(), RunId::new(), SyncPolicy::default())
}

#[test]
fn run_creation_interrupted_at_any_step_leaves_no_run_or_an_incomplete_one() {
    for step in CreateStep::ALL {
        for how in [Interruption::Killed, Interruption::Failed] {
            let base = tempfile::tempdir().unwrap();
            let manifest = fresh_manifest("interrupted");
            let outcome = RunDirectory::create_interrupted(base.path(), &manifest, step, how);
            assert_eq!(
                outcome.is_err(),
                how == Interruption::Failed,
                "{step:?} {how:?}"
            );
            let run_dir = base.path().join(manifest.run_id.to_string());
            let there = run_dir.exists();
            // The run is in place only once it was renamed there, whole.
            assert_eq!(
                there,
                step == CreateStep::RenamedIntoPlace,
                "{step:?} {how:?}"
            );
            if there {
                let state = RunDirectory::open(&run_dir).unwrap().state().unwrap();
                assert_eq!(state, RunState::Incomplete, "{step:?} {how:?}");
            }
            if how == Interruption::Failed && step != CreateStep::RenamedIntoPlace {
                let left: Vec<_> = std::fs::read_dir(base.path()).unwrap().collect();
                assert!(left.is_empty(), "a failed creation cleans up: {left:?}");
            }

            // Every listing agrees: the run is incomplete, or there is no run at all.
            let (exit, stdout, stderr) = obzenflow(&["--base", text(base.path()), "runs"]);
            assert_eq!(exit, Exit::Success, "{stderr}");
            if there {
                assert!(stdout.contains("incomplete"), "{step:?} {how:?}: {stdout}");
            } else {
                assert_eq!(stdout, "no runs\n", "{step:?} {how:?}");
            }
            assert!(!stdout.contains("unreadable"), "{stdout}");
            let incomplete = inspect::incomplete_runs(base.path(), "interrupted");
            assert_eq!(
                incomplete,
                if there { vec![run_dir.clone()] } else { vec![] }
            );

            // The next run of the flow starts and names the interrupted run, if there is one.
            let report = runtime()
                .block_on(
                    doubling_flow("interrupted", 5, None, Collect::default())
                        .journals(Journals::disk(base.path()))
                        .build()
                        .unwrap()
                        .run(),
                )
                .unwrap();
            assert!(report.is_success(), "{report}");
            assert_eq!(report.earlier_incomplete_runs, incomplete);
        }
    }
}

#[test]
fn symlinked_journal_directories_are_refused_alike_by_every_reader() {
    let base = tempfile::tempdir().unwrap();
    let run_dir = completed_run(base.path(), "linked");
    let elsewhere = tempfile::tempdir().unwrap();
    // The source's journals: the ones a replay reads too.
    let stage = run_dir.join("stages/numbers");
    let moved = elsewhere.path().join("numbers");
    std::fs::rename(&stage, &moved).unwrap();
    std::os::unix::fs::symlink(&moved, &stage).unwrap();

    let name = stage.display().to_string();
    for args in [
        vec!["validate", text(&run_dir)],
        vec!["inspect", text(&run_dir)],
        vec!["inspect", text(&run_dir), "numbers"],
        vec!["verify", text(&run_dir), text(&run_dir)],
    ] {
        let (exit, stdout, stderr) = obzenflow(&args);
        assert_eq!(exit, Exit::Error, "{args:?}: {stdout}{stderr}");
        assert!(
            stderr.contains(&format!("{name} is a symbolic link")),
            "{args:?}: {stderr}"
        );
    }
    let error = inspect::read_journal(&run_dir, "numbers", Lane::Data).unwrap_err();
    assert!(
        matches!(error, RunDirError::SymlinkedJournal { ref path } if *path == stage),
        "{error:?}"
    );

    // A replay reads the archived journals the same way: refused, naming the link.
    let replays = tempfile::tempdir().unwrap();
    let replayed = runtime().block_on(
        doubling_flow("linked", 20, None, Collect::default())
            .journals(Journals::disk(replays.path()))
            .replay_from(&run_dir)
            .build()
            .unwrap()
            .run(),
    );
    let refusal = match replayed {
        Ok(report) => report.to_string(),
        Err(error) => ErrorChain::new(&error).to_string(),
    };
    assert!(
        refusal.contains(&format!("{name} is a symbolic link")),
        "{refusal}"
    );
}

#[test]
fn a_stage_of_the_manifest_without_journal_directories_is_a_finding() {
    let base = tempfile::tempdir().unwrap();
    let run_dir = completed_run(base.path(), "lost");
    std::fs::remove_dir_all(run_dir.join("stages/double")).unwrap();
    let report = inspect::validate_run(&run_dir).unwrap();
    assert!(!report.is_clean(), "{report}");
    assert_eq!(
        report.missing_journals,
        [
            ("double".to_owned(), Lane::Data),
            ("double".to_owned(), Lane::Error)
        ]
    );
    let (exit, stdout, _) = obzenflow(&["validate", text(&run_dir)]);
    assert_eq!(exit, Exit::Findings, "{stdout}");
    assert!(
        stdout.contains("double.data: named by the manifest, but there is no journal directory"),
        "{stdout}"
    );
}

#[test]
fn control_characters_in_names_read_from_disk_are_escaped_in_every_listing() {
    let base = tempfile::tempdir().unwrap();
    let run_dir = completed_run(base.path(), "plain");
    let path = run_dir.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let evil = "evil\u{1b}[2J\nfake line\u{7}";
    manifest["flow_name"] = evil.into();
    manifest["stages"][0]["kind"] = evil.into();
    manifest["stages"][1]["name"] = evil.into();
    std::fs::write(&path, manifest.to_string()).unwrap();

    let (_, runs, _) = obzenflow(&["--base", text(base.path()), "runs"]);
    let (_, verify_out, verify_err) = obzenflow(&["verify", text(&run_dir), text(&run_dir)]);
    let (_, validate, _) = obzenflow(&["validate", text(&run_dir)]);
    for output in [&runs, &verify_out, &verify_err, &validate] {
        assert!(
            !output.chars().any(|c| c.is_control() && c != '\n'),
            "a raw control character reached the output: {output:?}"
        );
        assert!(!output.contains("\nfake line"), "{output:?}");
    }
    assert!(runs.contains("evil\\u{1b}[2J\\nfake line\\u{7}"), "{runs}");
}

#[test]
fn inspect_of_a_directory_that_is_not_a_run_says_so() {
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("notes.txt"), "not a run").unwrap();
    for dir in [empty.path(), Path::new("/")] {
        for args in [vec!["inspect", text(dir)], vec!["validate", text(dir)]] {
            let (exit, stdout, stderr) = obzenflow(&args);
            assert_eq!(exit, Exit::Error, "{args:?}: {stdout}{stderr}");
            assert!(
                stderr.contains(&format!("{} is not a run directory", dir.display())),
                "{stderr}"
            );
        }
    }
}

/// A sink that reports its first batch on `started` and holds it until `release` fires.
struct HeldSink {
    started: Option<oneshot::Sender<()>>,
    release: Arc<Notify>,
}

impl AsyncSinkHandler for HeldSink {
    async fn consume_batch(&mut self, events: &[Record]) -> Vec<Result<(), RecordError>> {
        if let Some(started) = self.started.take() {
            let _ = started.send(());
            self.release.notified().await;
        }
        events.iter().map(|_| Ok(())).collect()
    }

    async fn flush(&mut self) -> Result<Option<obzenflow_core::DeliveryReceipt>, HandlerFailure> {
        Ok(None)
    }
}

/// The error of a flow whose end could not be recorded, with its report.
fn end_not_recorded(
    result: Result<obzenflow_runtime::pipeline::FlowReport, FlowError>,
) -> (String, String) {
    let error = match result {
        Ok(report) => panic!("the end could not be recorded, yet the flow reads:\n{report}"),
        Err(error) => error,
    };
    support::assert_each_cause_once(&error);
    let message = ErrorChain::new(&error).to_string();
    let FlowError::EndNotRecorded { end, report } = error else {
        panic!("expected EndNotRecorded: {error:?}");
    };
    let Some(FlowFailure::EndNotRecorded(failure)) = report.failure() else {
        panic!("the report must read failed, its end not recorded:\n{report}");
    };
    assert_eq!(*failure, end, "the error and the report hold one failure");
    let reason = ErrorChain::new(&end).to_string();
    assert!(report.to_string().contains(&reason), "{report}");
    (reason, message)
}

#[test]
fn a_full_disk_at_the_pipeline_journal_reaches_the_error_the_report_and_the_manifest() {
    let base = tempfile::tempdir().unwrap();
    let config = DiskJournalConfig {
        faults: vec![JournalFault::new(
            "pipeline",
            Lane::System,
            FaultKind::NoSpace,
            1,
        )],
        ..DiskJournalConfig::default()
    };
    let result = runtime().block_on(
        doubling_flow("full", 20, None, Collect::default())
            .journals(Journals::disk(base.path()).with_disk_config(config))
            .build()
            .unwrap()
            .run(),
    );
    let (reason, message) = end_not_recorded(result);
    for expected in [
        "journal pipeline.system",
        "No space left on device (os error 28)",
    ] {
        assert!(reason.contains(expected), "{expected:?} in {reason}");
        assert!(message.contains(expected), "{expected:?} in {message}");
    }
    let run_dir = inspect::incomplete_runs(base.path(), "full");
    assert!(
        run_dir.is_empty(),
        "an ended run never reads as crashed: {run_dir:?}"
    );
    let run = std::fs::read_dir(base.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let run = RunDirectory::open(run).unwrap();
    let manifest = run.read_manifest().unwrap();
    assert_eq!(manifest.status, RunStatus::Failed);
    assert_eq!(manifest.reason.as_deref(), Some(reason.as_str()));
    assert_eq!(run.state_of(&manifest).unwrap(), RunState::Failed);
}

#[test]
fn a_run_directory_deleted_mid_run_is_named_in_the_returned_error() {
    let base = tempfile::tempdir().unwrap();
    let (started, on_start) = oneshot::channel();
    let release = Arc::new(Notify::new());
    let sink = HeldSink {
        started: Some(started),
        release: release.clone(),
    };
    let runtime = runtime();
    let result = runtime.block_on(async {
        let handle = obzenflow_runtime::pipeline::FlowBuilder::new("deleted")
            .source("numbers", support::Numbers::new("numbers", 20))
            .async_sink("held", sink)
            .chain(["numbers", "held"])
            .journals(Journals::disk(base.path()))
            .build()
            .unwrap()
            .start()
            .unwrap();
        on_start.await.unwrap();
        std::fs::remove_dir_all(handle.run_dir().unwrap()).unwrap();
        release.notify_one();
        handle.wait().await
    });
    let (reason, message) = end_not_recorded(result);
    assert!(
        reason.contains("No such file or directory (os error 2)"),
        "{reason}"
    );
    assert!(message.contains(&reason), "{message}");
}

/// A completed run of the doubling flow whose `double` stage has several segments in each
/// lane (small segments, small batches, every other record an error) and whose every frame
/// holds a few records.
fn completed_run_with_segments(base: &Path) -> PathBuf {
    let config = DiskJournalConfig {
        segment_bytes: 2048,
        ..DiskJournalConfig::default()
    };
    let small_batches = StageConfig {
        batch_limit: 5,
        ..StageConfig::default()
    };
    let report = runtime()
        .block_on(
            doubling_flow("sealed", 200, Some(2), Collect::default())
                .configure("numbers", small_batches.clone())
                .configure("double", small_batches)
                .journals(Journals::disk(base).with_disk_config(config))
                .build()
                .unwrap()
                .run(),
        )
        .unwrap();
    assert!(report.is_success(), "{report}");
    report.run_dir.unwrap()
}

/// The segment files of a journal directory, in order.
fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "seg"))
        .collect();
    segments.sort();
    segments
}

/// The byte ranges of the frames of a segment, and whether each is the seal.
fn frame_ranges(segment: &Path) -> Vec<(std::ops::Range<usize>, bool)> {
    let mut reader = SegmentReader::open(segment).unwrap();
    let mut frames = Vec::new();
    loop {
        let start = reader.offset() as usize;
        match reader.skip_batch().unwrap() {
            Some(batch) => frames.push((start..reader.offset() as usize, batch.is_seal())),
            None => return frames,
        }
    }
}

/// Rewrites `segment` as `frames` (byte ranges of its current content) in that order.
fn rewrite_frames(segment: &Path, frames: &[std::ops::Range<usize>]) {
    let bytes = std::fs::read(segment).unwrap();
    let rewritten: Vec<u8> = frames
        .iter()
        .flat_map(|range| bytes[range.clone()].iter().copied())
        .collect();
    std::fs::write(segment, rewritten).unwrap();
}

/// Ways to damage a journal that leave every frame whole: only sequences, counts, seals and
/// hashes can tell.
#[derive(Debug, Clone, Copy)]
enum Damage {
    LoseMiddleFrame,
    LoseLastRecordFrame,
    LoseSeal,
    DuplicateMiddleFrame,
    SwapTwoFrames,
    /// The last frame of a segment repeated as the first of the next.
    DuplicateAcrossSegments,
    DeleteFirstSegment,
    DeleteMiddleSegment,
    DeleteLastSegment,
    EmptyLastSegment,
    EmptyEverySegment,
    DeleteLaneDirectory,
    /// The lane's files replaced by the same lane of another stage, sealed and whole.
    SwapInAnotherStagesLane,
}

const DAMAGES: [Damage; 13] = [
    Damage::LoseMiddleFrame,
    Damage::LoseLastRecordFrame,
    Damage::LoseSeal,
    Damage::DuplicateMiddleFrame,
    Damage::SwapTwoFrames,
    Damage::DuplicateAcrossSegments,
    Damage::DeleteFirstSegment,
    Damage::DeleteMiddleSegment,
    Damage::DeleteLastSegment,
    Damage::EmptyLastSegment,
    Damage::EmptyEverySegment,
    Damage::DeleteLaneDirectory,
    Damage::SwapInAnotherStagesLane,
];

impl Damage {
    /// Damages the `lane` journal of `stage` in the run at `run_dir`.
    fn apply(self, run_dir: &Path, stage: &str, lane: Lane) {
        let dir = run_dir.join("stages").join(stage).join(lane.as_str());
        let segments = segment_files(&dir);
        assert!(segments.len() >= 3, "{lane}: {segments:?}");
        let first = &segments[0];
        let last = segments.last().unwrap();
        let records_of = |segment: &Path| -> Vec<std::ops::Range<usize>> {
            frame_ranges(segment)
                .into_iter()
                .filter(|(_, seal)| !seal)
                .map(|(range, _)| range)
                .collect()
        };
        match self {
            Self::LoseMiddleFrame => {
                let mut frames = records_of(first);
                assert!(frames.len() >= 3);
                frames.remove(frames.len() / 2);
                rewrite_frames(first, &frames);
            }
            Self::LoseLastRecordFrame => {
                let mut frames: Vec<_> = frame_ranges(last).into_iter().map(|f| f.0).collect();
                let seal = frames.pop().unwrap();
                frames.pop();
                frames.push(seal);
                rewrite_frames(last, &frames);
            }
            Self::LoseSeal => {
                let frames = records_of(last);
                rewrite_frames(last, &frames);
            }
            Self::DuplicateMiddleFrame => {
                let mut frames = records_of(first);
                let middle = frames[frames.len() / 2].clone();
                frames.insert(frames.len() / 2, middle);
                rewrite_frames(first, &frames);
            }
            Self::SwapTwoFrames => {
                let mut frames = records_of(first);
                assert!(frames.len() >= 2);
                frames.swap(0, 1);
                rewrite_frames(first, &frames);
            }
            Self::DuplicateAcrossSegments => {
                let repeated = records_of(first).pop().unwrap();
                let bytes = std::fs::read(first).unwrap()[repeated].to_vec();
                let mut next = bytes;
                next.extend(std::fs::read(&segments[1]).unwrap());
                std::fs::write(&segments[1], next).unwrap();
            }
            Self::DeleteFirstSegment => std::fs::remove_file(first).unwrap(),
            Self::DeleteMiddleSegment => std::fs::remove_file(&segments[1]).unwrap(),
            Self::DeleteLastSegment => std::fs::remove_file(last).unwrap(),
            Self::EmptyLastSegment => std::fs::write(last, b"").unwrap(),
            Self::EmptyEverySegment => {
                for segment in &segments {
                    std::fs::write(segment, b"").unwrap();
                }
            }
            Self::DeleteLaneDirectory => std::fs::remove_dir_all(&dir).unwrap(),
            Self::SwapInAnotherStagesLane => {
                let other_stage = if stage == "numbers" {
                    "double"
                } else {
                    "numbers"
                };
                let other = run_dir.join("stages").join(other_stage).join(lane.as_str());
                std::fs::remove_dir_all(&dir).unwrap();
                std::fs::create_dir(&dir).unwrap();
                for segment in segment_files(&other) {
                    std::fs::copy(&segment, dir.join(segment.file_name().unwrap())).unwrap();
                }
            }
        }
    }
}

#[test]
fn every_journal_damage_that_leaves_frames_whole_is_found_by_every_reader_naming_the_journal() {
    let base = tempfile::tempdir().unwrap();
    // The same run, undamaged, passes every reader.
    let pristine = completed_run_with_segments(&base.path().join("pristine"));
    let (exit, stdout, _) = obzenflow(&["validate", text(&pristine)]);
    assert_eq!(exit, Exit::Success, "{stdout}");
    for lane in [Lane::Data, Lane::Error] {
        let dir = pristine.join("stages/double").join(lane.as_str());
        assert!(segment_files(&dir).len() >= 3, "{lane}: too few segments");
    }

    for lane in [Lane::Data, Lane::Error] {
        for damage in DAMAGES {
            let case = format!("{damage:?} of double.{lane}");
            let case_base = base.path().join(format!("{damage:?}-{lane}"));
            let run_dir = completed_run_with_segments(&case_base);
            damage.apply(&run_dir, "double", lane);

            // `validate` finds it and names the stage's journal that holds the contradiction.
            let (exit, stdout, stderr) = obzenflow(&["validate", text(&run_dir)]);
            assert_eq!(exit, Exit::Findings, "{case}: {stdout}{stderr}");
            let finding = stdout
                .lines()
                .find(|line| line.starts_with("  double.") && !line.ends_with(", ok"))
                .unwrap_or_else(|| panic!("{case}: no finding names double: {stdout}"));
            let report = inspect::validate_run(&run_dir).unwrap();
            assert!(!report.is_clean(), "{case}: {report}");

            // Every other reader refuses the run too, naming the same journal.
            let lane_arg = lane.as_str();
            for args in [
                vec!["inspect", text(&run_dir)],
                vec!["inspect", text(&run_dir), "double", "--lane", lane_arg],
                vec!["verify", text(&pristine), text(&run_dir)],
                vec!["--base", text(&case_base), "runs"],
            ] {
                let (exit, stdout, stderr) = obzenflow(&args);
                assert_ne!(exit, Exit::Success, "{case}: {args:?}: {stdout}{stderr}");
                let output = format!("{stdout}{stderr}");
                assert!(
                    output.contains("stages/double/") || output.contains("double."),
                    "{case}: {args:?} does not name the journal ({finding}): {output}"
                );
            }
        }
    }
}

/// Records of `double`'s data journal that contradict each other or its (empty) error
/// journal, each as a run written by hand: the run completed, every journal sealed.
fn contradictions() -> Vec<(&'static str, Vec<ChainEvent>)> {
    let data = |n| ChainEvent::data("number", serde_json::json!({ "n": n }));
    let started = || ChainEvent::new(EventContent::Lifecycle(LifecycleEvent::Started));
    let mut out_of_order = vec![data(0), data(1)];
    out_of_order.reverse();
    vec![
        (
            "errored records in the `completed` record against its error journal: recorded 15, found 0",
            [vec![started(), data(0)], stage_end(1, 15)].concat(),
        ),
        (
            "a second end-of-stream marker",
            [vec![started(), data(0), ChainEvent::end_of_stream(1)], stage_end(1, 0)].concat(),
        ),
        (
            "a data record after end-of-stream",
            [vec![started(), ChainEvent::end_of_stream(0), data(0)], stage_end(1, 0)].concat(),
        ),
        (
            "data records before the end-of-stream marker: recorded 3, found 1",
            [vec![started(), data(0)], stage_end(3, 0)].concat(),
        ),
        (
            "the journal has no terminal lifecycle record",
            vec![started(), data(0), ChainEvent::end_of_stream(1)],
        ),
        (
            "a record after the terminal lifecycle record",
            [vec![started()], stage_end(0, 0), vec![data(0)]].concat(),
        ),
        (
            "an event id not after the one before it",
            [vec![started()], out_of_order, stage_end(2, 0)].concat(),
        ),
    ]
}

/// Writes a completed run of one stage, `double`, whose data journal holds `records` (one
/// frame each) and whose error journal is empty; every journal is closed, so sealed.
fn hand_written_run(base: &Path, records: &[ChainEvent], finish: bool) -> PathBuf {
    let mut manifest = RunManifest::new("by-hand", FlowId::new(), RunId::new(), SyncPolicy::Never);
    manifest.add_stage("double", StageId::new(), "transform");
    manifest.add_system_journal("pipeline");
    let (run_dir, lock) = RunDirectory::create(base, &manifest).unwrap();
    let storage = JournalStorage::Disk {
        run_dir: run_dir.clone(),
        config: DiskJournalConfig::default(),
    };
    let factory = JournalFactory::new(storage).unwrap();
    let double = factory.stage_journals("double", StageId::new()).unwrap();
    let (pipeline, _) = factory.system_journal(SystemComponent::Pipeline).unwrap();
    runtime().block_on(async {
        append_one_by_one(double.data.as_ref(), records).await;
        pipeline.append(vec![system_end()]).await.unwrap();
        if finish {
            for journal in [&double.error, &double.data, &pipeline] {
                journal.close().await.unwrap();
            }
        }
    });
    if finish {
        manifest.finish(RunStatus::Completed);
        run_dir.write_manifest(&manifest).unwrap();
    }
    drop(lock);
    run_dir.path().to_path_buf()
}

#[test]
fn a_sealed_journal_whose_records_contradict_each_other_or_its_error_lane_is_a_finding() {
    let base = tempfile::tempdir().unwrap();
    // The shape every finished stage journal has passes.
    let whole = [
        vec![ChainEvent::new(EventContent::Lifecycle(
            LifecycleEvent::Started,
        ))],
        stage_end(0, 0),
    ]
    .concat();
    let run_dir = hand_written_run(base.path(), &whole, true);
    let (exit, stdout, stderr) = obzenflow(&["validate", text(&run_dir)]);
    assert_eq!(exit, Exit::Success, "{stdout}{stderr}");

    for (finding, records) in contradictions() {
        let run_dir = hand_written_run(base.path(), &records, true);
        let (exit, stdout, _) = obzenflow(&["validate", text(&run_dir)]);
        assert_eq!(exit, Exit::Findings, "{finding}: {stdout}");
        let line = stdout
            .lines()
            .find(|line| line.starts_with("  double.data: corrupt record in "))
            .unwrap_or_else(|| panic!("{finding}: {stdout}"));
        assert!(line.contains(finding), "{finding}: {line}");
        assert!(line.contains("stages/double/data/"), "{line}");
        // The readers that decode find the same while reading, and fail naming it.
        for args in [
            vec!["inspect", text(&run_dir), "double"],
            vec!["verify", text(&run_dir), text(&run_dir)],
        ] {
            let (exit, stdout, stderr) = obzenflow(&args);
            assert_eq!(exit, Exit::Error, "{finding}: {args:?}: {stdout}");
            assert!(stderr.contains(finding), "{finding}: {args:?}: {stderr}");
        }
    }
}

#[test]
fn journals_of_a_run_that_did_not_finish_are_unsealed_not_damaged() {
    let base = tempfile::tempdir().unwrap();
    let records = [
        ChainEvent::new(EventContent::Lifecycle(LifecycleEvent::Started)),
        ChainEvent::data("number", serde_json::json!({ "n": 0 })),
    ];
    let run_dir = hand_written_run(base.path(), &records, false);
    let report = inspect::validate_run(&run_dir).unwrap();
    assert_eq!(report.state, Some(RunState::Incomplete), "{report}");
    for journal in &report.journals {
        assert_eq!(
            journal.health,
            inspect::JournalHealth::Unsealed,
            "{journal}"
        );
    }
    let text_report = report.to_string();
    assert!(
        text_report.contains("double.data: 2 records, unsealed (the run did not finish)"),
        "{text_report}"
    );
    // Readers read it; the listing shows it without calling it damaged.
    let (exit, stdout, stderr) = obzenflow(&["inspect", text(&run_dir), "double"]);
    assert_eq!(exit, Exit::Success, "{stderr}");
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    let (exit, stdout, _) = obzenflow(&["--base", text(base.path()), "runs"]);
    assert_eq!(exit, Exit::Success, "{stdout}");
    assert!(stdout.contains("data unsealed"), "{stdout}");
    assert!(!stdout.contains("damaged"), "{stdout}");
}

#[test]
fn a_replay_of_a_source_journal_damaged_in_any_of_those_ways_is_refused_naming_it() {
    let base = tempfile::tempdir().unwrap();
    for damage in DAMAGES {
        let case_base = base.path().join(format!("{damage:?}"));
        let run_dir = completed_run_with_segments(&case_base);
        damage.apply(&run_dir, "numbers", Lane::Data);
        let replayed = runtime().block_on(
            doubling_flow("sealed", 200, Some(2), Collect::default())
                .journals(Journals::disk(case_base.join("replays")))
                .replay_from(&run_dir)
                .build()
                .unwrap()
                .run(),
        );
        let refusal = match replayed {
            Ok(report) => {
                assert!(!report.is_success(), "{damage:?}: {report}");
                report.to_string()
            }
            Err(error) => ErrorChain::new(&error).to_string(),
        };
        assert!(
            refusal.contains("stages/numbers/"),
            "{damage:?}: the refusal does not name the journal: {refusal}"
        );
    }
}
