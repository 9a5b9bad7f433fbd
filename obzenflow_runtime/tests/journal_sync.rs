//! Sync policies: what `durable()` promises under each, group commit through the shared
//! scheduler, and `close` as the final fsync.

mod journal_support;

use std::time::Duration;

use journal_support::{journal_id, orders};
use obzenflow_core::{Journal, JournalError};
use obzenflow_runtime::journal::{DiskJournal, DiskJournalConfig, SyncPolicy, SyncScheduler};

/// How long a test waits for the sync thread before calling it broken; a deadline on a
/// signal, never a sleep.
const DEADLINE: Duration = Duration::from_secs(30);

fn config(sync: SyncPolicy) -> DiskJournalConfig {
    DiskJournalConfig {
        sync,
        ..DiskJournalConfig::default()
    }
}

fn open(
    dir: &std::path::Path,
    name: &str,
    sync: SyncPolicy,
    scheduler: &SyncScheduler,
) -> DiskJournal {
    DiskJournal::open(dir.join(name), journal_id(name), &config(sync), scheduler).expect("open")
}

#[test]
fn policies_read_well_in_a_run_summary() {
    assert_eq!(
        SyncPolicy::default().to_string(),
        "group commit every 50 ms"
    );
    assert_eq!(
        SyncPolicy::Interval(Duration::from_micros(1500)).to_string(),
        "group commit every 1500 µs"
    );
    assert_eq!(SyncPolicy::EveryBatch.to_string(), "fsync every batch");
    assert_eq!(SyncPolicy::Never.to_string(), "no fsync (OS decides)");
}

#[tokio::test]
async fn every_batch_appends_return_durable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let scheduler = SyncScheduler::start().expect("sync thread");
    let journal = open(dir.path(), "orders", SyncPolicy::EveryBatch, &scheduler);
    for batch in 0..3 {
        journal
            .append(orders(batch * 10, 10))
            .await
            .expect("append");
        assert_eq!(journal.durable(), journal.committed());
    }
    assert_eq!(journal.durable(), 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_makes_every_dirty_journal_durable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let scheduler = SyncScheduler::start().expect("sync thread");
    let policy = SyncPolicy::Interval(Duration::from_millis(5));
    let journals: Vec<DiskJournal> = ["a", "b", "c"]
        .into_iter()
        .map(|name| open(dir.path(), name, policy, &scheduler))
        .collect();
    for (index, journal) in journals.iter().enumerate() {
        journal
            .append(orders(0, 10 + index as u64))
            .await
            .expect("append");
    }
    for journal in &journals {
        tokio::time::timeout(DEADLINE, journal.wait_durable(journal.committed()))
            .await
            .expect("the sync thread syncs within the deadline")
            .expect("sync");
        assert_eq!(journal.durable(), journal.committed());
    }
}

#[tokio::test]
async fn close_is_the_final_fsync_and_refuses_appends() {
    let dir = tempfile::tempdir().expect("temp dir");
    let scheduler = SyncScheduler::start().expect("sync thread");
    // An interval so long that only `close` can make the records durable in this test.
    let policy = SyncPolicy::Interval(Duration::from_secs(24 * 3600));
    let journal = open(dir.path(), "orders", policy, &scheduler);
    journal.append(orders(0, 7)).await.expect("append");
    assert_eq!(journal.durable(), 0);
    journal.close().await.expect("close");
    assert_eq!(journal.durable(), 7);
    assert!(matches!(
        journal.append(orders(7, 1)).await,
        Err(JournalError::Closed { .. })
    ));
}

#[tokio::test]
async fn never_leaves_syncing_to_the_os() {
    let dir = tempfile::tempdir().expect("temp dir");
    let scheduler = SyncScheduler::start().expect("sync thread");
    let journal = open(dir.path(), "orders", SyncPolicy::Never, &scheduler);
    journal.append(orders(0, 4)).await.expect("append");
    journal.close().await.expect("close");
    assert_eq!((journal.committed(), journal.durable()), (4, 0));
}

#[tokio::test]
async fn shutting_the_scheduler_down_syncs_what_is_waiting() {
    let dir = tempfile::tempdir().expect("temp dir");
    let scheduler = SyncScheduler::start().expect("sync thread");
    let policy = SyncPolicy::Interval(Duration::from_secs(24 * 3600));
    let journal = open(dir.path(), "orders", policy, &scheduler);
    journal.append(orders(0, 3)).await.expect("append");
    assert_eq!(journal.durable(), 0);
    scheduler.shutdown();
    assert_eq!(journal.durable(), 3);
    // After shutdown appends still work; close syncs them.
    journal.append(orders(3, 2)).await.expect("append");
    journal.close().await.expect("close");
    assert_eq!(journal.durable(), 5);
}
