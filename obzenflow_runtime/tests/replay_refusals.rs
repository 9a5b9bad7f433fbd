//! What a replay refuses or reports: a run that did not complete (unless allowed), a source
//! missing from the archive, and a corrupt record in an archived journal, named by segment and
//! byte offset.

mod replay_support;

use std::path::{Path, PathBuf};

use obzenflow_core::{ErrorChain, JournalError, Lane};
use obzenflow_runtime::journal::{RunDirError, RunDirectory, RunState, RunStatus};
use obzenflow_runtime::pipeline::FlowError;
use obzenflow_runtime::replay::{ArchiveSource, ReplayError};
use obzenflow_runtime::stages::{HandlerFailure, SourceHandler, SourcePoll};
use replay_support::{flow, run_to_completion, NotCalled, Readings};

fn set_status(run_dir: &Path, status: RunStatus) {
    let run = RunDirectory::open(run_dir).unwrap();
    let mut manifest = run.read_manifest().unwrap();
    manifest.status = status;
    run.write_manifest(&manifest).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incomplete_run_is_refused_unless_allowed() {
    let base = tempfile::tempdir().unwrap();
    let original = run_to_completion(flow(Readings::new(12), 2, base.path())).await;
    set_status(&original, RunStatus::Running);

    let refused = flow(NotCalled, 2, base.path())
        .replay_from(&original)
        .build();
    let Err(FlowError::Replay(error)) = refused else {
        panic!("an incomplete run must be refused");
    };
    let message = error.to_string();
    assert!(
        matches!(
            error,
            ReplayError::IncompleteRun {
                state: RunState::Incomplete,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        message.contains(&original.display().to_string()),
        "{message}"
    );
    assert!(message.contains("`incomplete`"), "{message}");

    let replayed = run_to_completion(
        flow(NotCalled, 2, base.path())
            .replay_from(&original)
            .allow_incomplete_replay(),
    )
    .await;
    let report = obzenflow_runtime::replay::verify(&original, &replayed).unwrap();
    assert!(report.is_identical(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_missing_from_the_archive_is_named() {
    let base = tempfile::tempdir().unwrap();
    let original = run_to_completion(flow(Readings::new(3), 2, base.path())).await;
    let renamed = obzenflow_runtime::pipeline::FlowBuilder::new("other")
        .source("sensors", NotCalled)
        .sink("discard", replay_support::Discard)
        .edge("sensors", "discard")
        .replay_from(&original)
        .build();
    let Err(FlowError::Replay(error)) = renamed else {
        panic!("a source missing from the archive must be refused");
    };
    let ReplayError::SourceNotArchived {
        stage,
        archived_sources,
        ..
    } = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!(stage, "sensors");
    assert_eq!(archived_sources, &["readings".to_owned()]);
    assert!(error.to_string().contains("`readings`"), "{error}");
}

/// Flips one byte in the body of the middle frame of the segment; returns the frame's offset
/// and its position among the segment's frames.
fn corrupt_middle_frame(segment: &Path) -> (u64, usize) {
    let mut bytes = std::fs::read(segment).unwrap();
    let mut frames = Vec::new();
    let mut offset = 0;
    while offset + 8 <= bytes.len() {
        let length = u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap()) as usize;
        frames.push((offset, length));
        offset += 8 + length;
    }
    assert!(frames.len() > 4, "{} frames", frames.len());
    let position = frames.len() / 2;
    let (start, length) = frames[position];
    bytes[start + 8 + length / 2] ^= 0xff;
    std::fs::write(segment, bytes).unwrap();
    (start as u64, position)
}

fn only_segment(run_dir: &Path, stage: &str) -> PathBuf {
    let dir = run_dir.join("stages").join(stage).join(Lane::Data.as_str());
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(segments.len(), 1, "{segments:?}");
    segments.pop().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_archive_fails_the_source_naming_segment_and_offset() {
    let base = tempfile::tempdir().unwrap();
    let original = run_to_completion(flow(Readings::one_at_a_time(40), 2, base.path())).await;
    let segment = only_segment(&original, "readings");
    let (offset, position) = corrupt_middle_frame(&segment);

    let report = flow(NotCalled, 2, base.path())
        .replay_from(&original)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    let failure = report.failure().expect("the replay must fail");
    assert_eq!(failure.stage(), Some("readings"), "{report}");
    let Some(JournalError::Corrupt {
        segment: corrupt_segment,
        offset: corrupt_offset,
        ..
    }) = failure.downcast_ref::<JournalError>()
    else {
        panic!("the corruption is in the chain: {report}");
    };
    assert_eq!((corrupt_segment, *corrupt_offset), (&segment, offset));
    let reason = ErrorChain::new(failure).to_string();
    assert!(reason.contains("`readings`"), "{reason}");
    assert!(reason.contains(&segment.display().to_string()), "{reason}");
    assert!(
        reason.contains(&format!("byte offset {offset}")),
        "{reason}"
    );
    // The archive is checked before any of it is replayed: nothing was re-emitted, not even
    // the records before the damaged frame (`position` of them, the `started` fact aside).
    assert!(position > 1);
    let replay_dir = report.run_dir.as_deref().unwrap();
    let replayed = replay_support::data_records(replay_dir, "readings", Lane::Data);
    assert_eq!(replayed.len(), 0);

    // The same failure, typed, from the archive source on its own.
    let mut source = ArchiveSource::new(&original, "readings");
    let failure: HandlerFailure = loop {
        match source.next_batch(8) {
            Ok(SourcePoll::Records(_)) => continue,
            Ok(SourcePoll::Done) => panic!("the corrupt record went unnoticed"),
            Err(failure) => break failure,
        }
    };
    let cause = failure.source.expect("a typed cause");
    let Some(ReplayError::ArchiveRead {
        stage,
        lane,
        source,
        ..
    }) = cause.downcast_ref::<ReplayError>()
    else {
        panic!("{cause:?}");
    };
    assert_eq!((stage.as_str(), *lane), ("readings", Lane::Data));
    let RunDirError::Journal {
        source:
            JournalError::Corrupt {
                segment: corrupt_segment,
                offset: corrupt_offset,
                ..
            },
        ..
    } = &**source
    else {
        panic!("{source:?}");
    };
    assert_eq!((corrupt_segment, *corrupt_offset), (&segment, offset));
}
