//! Fault injection in the journal layer (feature `fault-injection`).
//!
//! A disk journal whose disk fills up, that writes half a batch, or whose fsync fails returns a
//! typed error naming the journal and the cause from the append that hit it, refuses every
//! later append, and loses (or duplicates) nothing it had accepted: no torn frame is left for
//! the next open to cut. A flow whose stage hits such a fault fails cleanly: it ends, its
//! report names the stage, the journal and the cause, the run manifest says `failed`, and the
//! other stages are torn down.

mod journal_support;
mod support;

use std::io;
use std::path::Path;
use std::time::Duration;

use journal_support::{journal_id, order_number, orders, read_available};
use obzenflow_core::{ErrorChain, Journal, JournalError, JournalId, Lane};
use obzenflow_runtime::journal::{
    inspect, segment_file_name, DiskJournal, DiskJournalConfig, FaultKind, JournalFault,
    RunDirectory, RunStatus, SegmentReader, SyncPolicy, SyncScheduler,
};
use obzenflow_runtime::pipeline::{FlowReport, Journals};
use obzenflow_runtime::stages::{FailureKind, StageState};
use support::{doubling_flow, journal_records, terminal_facts, Collect};

/// Records per append in the journal-level tests.
const BATCH: u64 = 10;

fn faulty_config(sync: SyncPolicy, kind: FaultKind, at: u64) -> DiskJournalConfig {
    DiskJournalConfig {
        sync,
        faults: vec![JournalFault::new("orders", Lane::Data, kind, at)],
        ..DiskJournalConfig::default()
    }
}

fn open(dir: &Path, id: &JournalId, config: &DiskJournalConfig) -> DiskJournal {
    let scheduler = SyncScheduler::start().expect("sync thread");
    DiskJournal::open(dir.join("orders"), id.clone(), config, &scheduler).expect("open")
}

/// Appends `batches` batches of orders, numbered on from `first`, each of which must succeed.
async fn append_ok(journal: &DiskJournal, first: u64, batches: u64) {
    for batch in 0..batches {
        journal
            .append(orders(first + batch * BATCH, BATCH))
            .await
            .expect("an append before the fault");
    }
}

/// The append that hit a fault returned an I/O error naming the journal; returns its cause
/// and the error's chain as people read it (the cause printed once, at its end).
fn io_cause<'a>(
    error: &'a JournalError,
    id: &JournalId,
    operation: &str,
) -> (&'a io::Error, String) {
    support::assert_each_cause_once(error);
    let text = ErrorChain::new(error).to_string();
    let JournalError::Io {
        journal,
        operation: failed,
        source,
        ..
    } = error
    else {
        panic!("expected an I/O error, got {error:?}");
    };
    assert_eq!(journal, id);
    assert_eq!(*failed, operation);
    assert!(
        text.starts_with(&format!("journal orders.data: cannot {operation} ")),
        "{text}"
    );
    (source, text)
}

/// Every later append and the close are refused with `Failed`, naming the journal.
async fn assert_refuses_everything(journal: &DiskJournal, id: &JournalId) {
    let refused = journal
        .append(orders(1_000, 1))
        .await
        .expect_err("a failed journal refuses appends");
    assert!(
        matches!(&refused, JournalError::Failed { journal } if journal == id),
        "{refused:?}"
    );
    assert_eq!(
        refused.to_string(),
        "journal orders.data refuses appends after an earlier I/O failure"
    );
    let closed = journal
        .close()
        .await
        .expect_err("close reports the failure");
    assert!(matches!(closed, JournalError::Failed { .. }), "{closed:?}");
}

/// Reopens the journal without faults: it needs no repair and holds exactly orders
/// `0..expected`, in order, once each.
fn assert_reopens_with(dir: &Path, id: &JournalId, expected: u64) {
    let journal = open(dir, id, &DiskJournalConfig::default());
    assert!(
        journal.recovery().is_none(),
        "a torn frame was left behind: {:?}",
        journal.recovery()
    );
    assert_eq!(journal.committed(), expected);
    let mut reader = journal.reader(0, None).expect("reader");
    let numbers: Vec<u64> = read_available(reader.as_mut(), 7)
        .iter()
        .map(|event| order_number(event))
        .collect();
    assert_eq!(numbers, (0..expected).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_full_disk_fails_the_append_and_loses_nothing_accepted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let id = journal_id("orders");
    let config = faulty_config(SyncPolicy::EveryBatch, FaultKind::NoSpace, 3);
    let journal = open(dir.path(), &id, &config);
    append_ok(&journal, 0, 2).await;

    let error = journal
        .append(orders(2 * BATCH, BATCH))
        .await
        .expect_err("the third write finds the disk full");
    let (cause, text) = io_cause(&error, &id, "append to");
    assert_eq!(cause.kind(), io::ErrorKind::StorageFull);
    assert_eq!(cause.raw_os_error(), Some(28));
    assert!(
        text.ends_with("No space left on device (os error 28)"),
        "{text}"
    );
    // The failed batch was never committed, so no reader saw it.
    assert_eq!(journal.committed(), 2 * BATCH);
    assert_eq!(journal.durable(), 2 * BATCH);
    assert_refuses_everything(&journal, &id).await;
    drop(journal);
    assert_reopens_with(dir.path(), &id, 2 * BATCH);
}

#[tokio::test]
async fn a_short_write_fails_the_append_and_leaves_no_torn_frame() {
    let dir = tempfile::tempdir().expect("temp dir");
    let id = journal_id("orders");
    let config = faulty_config(SyncPolicy::default(), FaultKind::ShortWrite, 3);
    let journal = open(dir.path(), &id, &config);
    append_ok(&journal, 0, 2).await;

    let error = journal
        .append(orders(2 * BATCH, BATCH))
        .await
        .expect_err("the third write stops half way");
    let (cause, text) = io_cause(&error, &id, "append to");
    assert_eq!(cause.kind(), io::ErrorKind::WriteZero);
    assert!(cause.to_string().starts_with("short write: "), "{cause}");
    assert!(text.contains(": short write: "), "{text}");
    assert!(text.ends_with(" bytes written"), "{text}");
    assert_eq!(journal.committed(), 2 * BATCH);
    assert_refuses_everything(&journal, &id).await;
    drop(journal);
    // Half a batch reached the file; the writer cut it back, so opening has nothing to repair.
    assert_reopens_with(dir.path(), &id, 2 * BATCH);
}

#[tokio::test]
async fn a_failing_fsync_fails_the_every_batch_append_and_durable_stays_behind() {
    let dir = tempfile::tempdir().expect("temp dir");
    let id = journal_id("orders");
    let config = faulty_config(SyncPolicy::EveryBatch, FaultKind::FailingSync, 3);
    let journal = open(dir.path(), &id, &config);
    append_ok(&journal, 0, 2).await;
    assert_eq!(journal.durable(), 2 * BATCH);

    let error = journal
        .append(orders(2 * BATCH, BATCH))
        .await
        .expect_err("the third fsync fails");
    let (cause, text) = io_cause(&error, &id, "sync");
    assert_eq!(cause.raw_os_error(), Some(5));
    assert!(text.ends_with("Input/output error (os error 5)"), "{text}");
    // The batch was written and committed before its fsync; it never counts as durable.
    assert_eq!(journal.committed(), 3 * BATCH);
    assert_eq!(journal.durable(), 2 * BATCH);
    let waited = journal.wait_durable(3 * BATCH).await;
    assert!(
        matches!(waited, Err(JournalError::Failed { .. })),
        "{waited:?}"
    );
    assert_refuses_everything(&journal, &id).await;
    assert_eq!(journal.durable(), 2 * BATCH);
    drop(journal);
    assert_reopens_with(dir.path(), &id, 3 * BATCH);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_group_commit_is_returned_by_the_next_append() {
    let dir = tempfile::tempdir().expect("temp dir");
    let id = journal_id("orders");
    let policy = SyncPolicy::Interval(Duration::from_millis(1));
    let config = faulty_config(policy, FaultKind::FailingSync, 1);
    let journal = open(dir.path(), &id, &config);
    // The append returns once the batch is in the page cache; the sync thread fails later.
    append_ok(&journal, 0, 1).await;
    let waited = journal.wait_durable(BATCH).await;
    assert!(
        matches!(waited, Err(JournalError::Failed { .. })),
        "{waited:?}"
    );
    assert_eq!(journal.durable(), 0);

    let error = journal
        .append(orders(BATCH, BATCH))
        .await
        .expect_err("the next append reports the sync thread's failure");
    let (cause, text) = io_cause(&error, &id, "sync");
    // The sync thread's error reaches the append as a copy: its kind and message.
    assert_eq!(cause.kind(), io::Error::from_raw_os_error(5).kind());
    assert!(text.ends_with("Input/output error (os error 5)"), "{text}");
    assert_eq!(journal.committed(), BATCH);
    assert_refuses_everything(&journal, &id).await;
    assert_eq!(journal.durable(), 0);
    drop(journal);
    assert_reopens_with(dir.path(), &id, BATCH);
}

#[tokio::test]
async fn a_failing_final_fsync_is_returned_by_close() {
    let dir = tempfile::tempdir().expect("temp dir");
    let id = journal_id("orders");
    // So long that only `close` syncs in this test.
    let policy = SyncPolicy::Interval(Duration::from_secs(24 * 3600));
    let config = faulty_config(policy, FaultKind::FailingSync, 1);
    let journal = open(dir.path(), &id, &config);
    append_ok(&journal, 0, 2).await;
    let error = journal.close().await.expect_err("the final fsync fails");
    let (cause, _) = io_cause(&error, &id, "sync");
    assert_eq!(cause.raw_os_error(), Some(5));
    assert_eq!(journal.durable(), 0);
    drop(journal);
    assert_reopens_with(dir.path(), &id, 2 * BATCH);
}

/// Runs the doubling flow on disk with `fault` planted in `double`'s data journal, awaiting
/// its end directly: the flow's own deadlines end it.
async fn run_with_fault(base: &Path, sync: SyncPolicy, kind: FaultKind) -> (FlowReport, Collect) {
    let sink = Collect::default();
    // The first write (or fsync) of `double`'s data journal is its `started` fact; the second
    // is its first batch of records.
    let config = DiskJournalConfig {
        sync,
        faults: vec![JournalFault::new("double", Lane::Data, kind, 2)],
        ..DiskJournalConfig::default()
    };
    let handle = doubling_flow("faults", 2_000, None, sink.clone())
        .journals(Journals::disk(base).with_disk_config(config))
        .build()
        .expect("build")
        .start()
        .expect("start");
    let report = handle.wait().await.expect("the flow ran to an end");
    (report, sink)
}

/// The flow failed because of `double`'s data journal, said so, and tore everything down.
fn assert_failed_cleanly(report: &FlowReport, operation: &str, cause: &str) -> String {
    let rendered = report.to_string();
    let failure = report
        .failure()
        .unwrap_or_else(|| panic!("expected a failed flow:\n{rendered}"));
    // Typed: the stage, the kind, the journal's own error and its I/O cause.
    let stage = failure.stage_failure().expect("a stage failed");
    assert_eq!(
        (stage.stage(), stage.kind()),
        ("double", FailureKind::Journal)
    );
    let Some(JournalError::Io {
        journal,
        operation: failed,
        ..
    }) = failure.downcast_ref::<JournalError>()
    else {
        panic!("the journal's I/O error is in the chain:\n{rendered}");
    };
    assert_eq!(
        (journal.to_string().as_str(), *failed),
        ("double.data", operation)
    );
    assert!(failure.downcast_ref::<io::Error>().is_some(), "{rendered}");
    // For people: the chain names the stage, the journal and the cause, each cause once.
    support::assert_each_cause_once(failure);
    let reason = ErrorChain::new(failure).to_string();
    for expected in [
        "stage `double` failed",
        &format!("journal double.data: cannot {operation} "),
        cause,
    ] {
        assert_eq!(
            reason.matches(expected).count(),
            1,
            "{expected:?} in {reason}"
        );
    }
    assert!(
        rendered.contains(&format!("FAILED: {reason}")),
        "{rendered}"
    );
    let StageState::Failed {
        failure: stage_state_failure,
    } = &report.stage("double").unwrap().state
    else {
        panic!("`double` should have failed:\n{rendered}");
    };
    assert_eq!(stage_state_failure, stage, "one failure, end to end");
    let stage_reason = ErrorChain::new(stage_state_failure).to_string();
    assert_eq!(stage_reason, reason);
    assert!(
        rendered.contains(&format!("  {stage_reason}\n")),
        "{rendered}"
    );

    // Every other stage ended and wrote its one terminal fact; those the flow cancelled say
    // why in text, the failure's chain printed once.
    for stage in ["numbers", "collect"] {
        let state = &report.stage(stage).unwrap().state;
        assert!(state.is_terminal(), "{stage}: {state:?}\n{rendered}");
        let facts = terminal_facts(&journal_records(report, stage, Lane::Data));
        assert_eq!(facts.len(), 1, "{stage}: {facts:?}");
        if let obzenflow_core::LifecycleEvent::Cancelled { reason: cancelled } = &facts[0] {
            assert_eq!(*cancelled, format!("flow failed: {reason}"));
        }
    }
    let run_dir = report.run_dir.as_ref().expect("disk journals");
    let manifest = RunDirectory::open(run_dir)
        .unwrap()
        .read_manifest()
        .unwrap();
    assert_eq!(manifest.status, RunStatus::Failed);
    assert_eq!(manifest.reason.as_deref(), Some(reason.as_str()));
    assert!(manifest.ended_at.is_some());
    // No journal, the failed one included, holds a torn or corrupt frame. The failed journal
    // alone lacks its seal: after a failed write it no longer knows what is on disk, so it
    // never seals, and validation says so rather than calling the run whole.
    let validation = inspect::validate_run(run_dir).unwrap();
    for journal in &validation.journals {
        match (&journal.health, journal.name.as_str(), journal.lane) {
            (
                inspect::JournalHealth::Corrupt {
                    kind: obzenflow_core::CorruptionKind::Unsealed { .. },
                    ..
                },
                "double",
                Lane::Data,
            )
            | (inspect::JournalHealth::Clean, _, _) => {}
            _ => panic!("{validation}"),
        }
    }
    assert!(!validation.is_clean(), "{validation}");
    rendered
}

/// The records of the data journal of `stage`, whose write failed: every reader refuses it, as
/// it was never sealed, so its one segment is read frame by frame.
fn failed_journal_records(report: &FlowReport, stage: &str) -> Vec<obzenflow_core::ChainEvent> {
    let run_dir = report.run_dir.as_ref().expect("disk journals");
    let refused = inspect::read_journal(run_dir, stage, Lane::Data).unwrap_err();
    let refused = ErrorChain::new(&refused).to_string();
    assert!(refused.contains("has no seal"), "{refused}");
    let segment = run_dir.join(format!("stages/{stage}/data/{}", segment_file_name(0)));
    let mut reader = SegmentReader::open(segment).unwrap();
    std::iter::from_fn(|| reader.next_event().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_the_stage_and_the_flow_cleanly() {
    let base = tempfile::tempdir().expect("temp dir");
    let (report, sink) =
        run_with_fault(base.path(), SyncPolicy::default(), FaultKind::NoSpace).await;
    assert_failed_cleanly(
        &report,
        "append to",
        "No space left on device (os error 28)",
    );
    // `double`'s first batch was never committed: nothing reached the sink, and its journal
    // holds only the `started` fact.
    assert!(sink.records().is_empty());
    let double = failed_journal_records(&report, "double");
    assert!(double.iter().all(|event| !event.is_data()), "{double:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_write_fails_the_stage_and_the_flow_cleanly() {
    let base = tempfile::tempdir().expect("temp dir");
    let (report, sink) =
        run_with_fault(base.path(), SyncPolicy::default(), FaultKind::ShortWrite).await;
    assert_failed_cleanly(&report, "append to", "short write: ");
    assert!(sink.records().is_empty());
    let double = failed_journal_records(&report, "double");
    assert!(double.iter().all(|event| !event.is_data()), "{double:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_fsync_fails_the_stage_and_the_flow_cleanly() {
    let base = tempfile::tempdir().expect("temp dir");
    let (report, _sink) =
        run_with_fault(base.path(), SyncPolicy::EveryBatch, FaultKind::FailingSync).await;
    assert_failed_cleanly(&report, "sync", "Input/output error (os error 5)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fsync_failing_only_at_the_final_close_fails_the_flow_instead_of_completing_it() {
    let base = tempfile::tempdir().expect("temp dir");
    // Group commit that never fires during the run: the first fsync of `double`'s data journal
    // is the one `close` makes after the stage drained.
    let config = DiskJournalConfig {
        sync: SyncPolicy::Interval(Duration::from_secs(3_600)),
        faults: vec![JournalFault::new(
            "double",
            Lane::Data,
            FaultKind::FailingSync,
            1,
        )],
        ..DiskJournalConfig::default()
    };
    let report = doubling_flow("faults", 2_000, None, Collect::default())
        .journals(Journals::disk(base.path()).with_disk_config(config))
        .build()
        .expect("build")
        .run()
        .await
        .expect("the flow ran to an end");
    let rendered = report.to_string();
    let failure = report.failure().unwrap_or_else(|| {
        panic!("a journal that cannot be synced must not read as completed:\n{rendered}")
    });
    let stage = failure.stage_failure().expect("a stage failed");
    assert_eq!(
        (stage.stage(), stage.kind(), stage.state()),
        ("double", FailureKind::Finishing, "drained")
    );
    assert!(
        matches!(
            failure.downcast_ref::<JournalError>(),
            Some(JournalError::Io {
                operation: "sync",
                ..
            })
        ),
        "{rendered}"
    );
    support::assert_each_cause_once(failure);
    let reason = ErrorChain::new(failure).to_string();
    for expected in [
        "stage `double` failed while finishing",
        "journal double.data: cannot sync ",
        "Input/output error (os error 5)",
    ] {
        assert_eq!(
            reason.matches(expected).count(),
            1,
            "{expected:?} in {reason}"
        );
    }
    let run_dir = report.run_dir.as_ref().expect("disk journals");
    let manifest = RunDirectory::open(run_dir)
        .unwrap()
        .read_manifest()
        .unwrap();
    assert_eq!(manifest.status, RunStatus::Failed);
}
