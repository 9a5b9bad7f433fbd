//! A failure is logged with each cause once (feature `fault-injection`).
//!
//! The tracing subscriber prints an error field and then each of its sources
//! (`error.sources=[..]`): a message that also printed its source would show that cause twice
//! or more. This binary holds one test, so its thread-local subscriber sees every event of the
//! flow it runs.

mod support;

use obzenflow_core::Lane;
use obzenflow_runtime::journal::{DiskJournalConfig, FaultKind, JournalFault};
use obzenflow_runtime::pipeline::Journals;
use support::{doubling_flow, Collect, Lines};
use tracing_subscriber::EnvFilter;

// Current-thread: every task of the flow runs on this thread, under this subscriber.
#[tokio::test]
async fn a_failed_journal_write_is_logged_with_each_cause_once() {
    let lines = Lines::default();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(lines.clone())
        // The supervisor spans (info) name the stage; the driver logs the failure.
        .with_env_filter(EnvFilter::new("obzenflow_runtime::supervised_base=info"))
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let base = tempfile::tempdir().expect("temp dir");
    // The first write of `double`'s data journal is its `started` fact; the second, its first
    // batch of records, finds the disk full.
    let config = DiskJournalConfig {
        faults: vec![JournalFault::new(
            "double",
            Lane::Data,
            FaultKind::NoSpace,
            2,
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
    assert!(report.failure().is_some(), "{report}");
    let text = lines.text();
    let line = text
        .lines()
        .find(|line| line.contains("dispatch_state failed") && line.contains("stage_name=double"))
        .unwrap_or_else(|| panic!("the stage's failure is logged:\n{text}"));
    assert!(
        line.contains("journal double.data: cannot append to "),
        "{line}"
    );
    assert_eq!(
        line.matches("No space left on device (os error 28)")
            .count(),
        1,
        "{line}"
    );
}
