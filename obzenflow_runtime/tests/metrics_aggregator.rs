//! The metrics aggregator's life: it folds on its interval, drains when the flow ends, and
//! leaves exactly one completion record in its own system journal.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use obzenflow_core::{ChainEvent, Lane, LifecycleEvent, SystemComponent, WriterId};
use obzenflow_runtime::journal::{inspect, RunDirectory};
use obzenflow_runtime::metrics::MetricsConfig;
use obzenflow_runtime::pipeline::{FlowBuilder, FlowReport, FlowState, Journals};
use obzenflow_runtime::stages::{RecordError, SinkHandler, StageState};
use support::{doubling_flow, journal_records, terminal_facts, Collect, Numbers, Ticker};

fn aggregator_records(report: &FlowReport) -> Vec<ChainEvent> {
    journal_records(report, "metrics_aggregator", Lane::System)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_run_leaves_exactly_one_aggregator_completion_record() {
    let base = tempfile::tempdir().unwrap();
    let report = doubling_flow("journaled", 400, Some(10), Collect::default())
        .journals(Journals::disk(base.path()))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert!(report.is_success(), "{report}");
    let records = aggregator_records(&report);
    assert_eq!(records.len(), 1, "{records:?}");
    let facts = terminal_facts(&records);
    assert_eq!(
        facts,
        vec![LifecycleEvent::Completed {
            records_in: 400,
            records_out: 360,
            records_errored: 40,
        }]
    );
    assert_eq!(
        records[0].writer_id,
        WriterId::System(SystemComponent::MetricsAggregator)
    );
    assert_eq!(records[0].flow_context.run_id, report.run_id);

    let run_dir = report.run_dir.as_ref().unwrap();
    let manifest = RunDirectory::open(run_dir)
        .unwrap()
        .read_manifest()
        .unwrap();
    let listed = serde_json::to_value(&manifest).unwrap().to_string();
    assert!(listed.contains("metrics_aggregator"), "{listed}");
    assert!(inspect::validate_run(run_dir).unwrap().is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_without_metrics_has_no_aggregator_journal() {
    let base = tempfile::tempdir().unwrap();
    let report = FlowBuilder::new("bare")
        .source("numbers", Numbers::new("numbers", 10))
        .sink("collect", Collect::default())
        .chain(["numbers", "collect"])
        .journals(Journals::disk(base.path()))
        .metrics(MetricsConfig::disabled())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert!(report.is_success(), "{report}");
    let journals = inspect::list_journals(report.run_dir.as_ref().unwrap()).unwrap();
    assert!(journals
        .iter()
        .all(|journal| journal.name != "metrics_aggregator"));
}

struct Explode;

impl SinkHandler for Explode {
    fn consume(&mut self, event: &ChainEvent) -> Result<(), RecordError> {
        if event.json().and_then(|payload| payload["n"].as_u64()) == Some(7) {
            panic!("the sink cannot take record 7");
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_flow_still_gets_its_final_snapshot_and_one_completion_record() {
    let base = tempfile::tempdir().unwrap();
    let report = FlowBuilder::new("failing")
        .source("numbers", Numbers::new("numbers", 5_000))
        .sink("explode", Explode)
        .chain(["numbers", "explode"])
        .journals(Journals::disk(base.path()))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert!(matches!(report.state, FlowState::Failed { .. }), "{report}");
    assert!(report.metrics.is_final);
    let explode = report.metrics.stage("explode").unwrap();
    assert!(
        matches!(explode.state, StageState::Failed { .. }),
        "{report}"
    );
    // The sink died holding its first batch: the rest of the edge was never read.
    let edge = report.metrics.edge("numbers", "explode").unwrap();
    assert!(edge.lag > 0, "{report}");
    let facts = terminal_facts(&aggregator_records(&report));
    assert_eq!(facts.len(), 1, "{facts:?}");
    assert!(matches!(facts[0], LifecycleEvent::Completed { .. }));
}

#[tokio::test(start_paused = true)]
async fn snapshots_are_folded_on_the_interval_and_once_more_at_the_end() {
    let produced = Arc::new(AtomicU64::new(0));
    let handle = FlowBuilder::new("ticking")
        .async_source("ticker", Ticker::new(produced.clone()))
        .sink("collect", Collect::default())
        .chain(["ticker", "collect"])
        .journals(Journals::memory())
        .metrics(MetricsConfig::default().with_interval(Duration::from_millis(100)))
        .build()
        .unwrap()
        .start()
        .unwrap();
    let mut state = handle.state();
    state
        .wait_for(|state| *state == FlowState::Running)
        .await
        .unwrap();
    // Before the first interval the snapshot is the one folded at start.
    assert_eq!(handle.snapshot().stage("ticker").unwrap().records_in, 0);

    let mut snapshots = handle.snapshots();
    snapshots.mark_unchanged();
    snapshots.changed().await.unwrap();
    let first = snapshots.borrow_and_update().clone();
    snapshots.changed().await.unwrap();
    let second = snapshots.borrow_and_update().clone();
    let first_count = first.stage("ticker").unwrap().records_in;
    let second_count = second.stage("ticker").unwrap().records_in;
    // Ten ticks of the source per interval, give or take the one in flight.
    assert!(
        (9..=11).contains(&(second_count - first_count)),
        "{first_count} {second_count}"
    );
    assert!(!second.is_final);

    handle.stop_graceful(Duration::from_secs(30)).await.unwrap();
    let final_snapshot = handle.final_snapshot().await;
    assert!(final_snapshot.is_final);
    let emitted = produced.load(Ordering::SeqCst);
    assert_eq!(final_snapshot.stage("ticker").unwrap().records_in, emitted);
    assert_eq!(
        final_snapshot.stage("collect").unwrap().records_out,
        emitted
    );
    let report = handle.wait().await.unwrap();
    assert_eq!(report.state, FlowState::Drained, "{report}");
    assert_eq!(report.metrics, *final_snapshot);
}

#[tokio::test(start_paused = true)]
async fn an_idle_flow_is_still_folded_on_the_default_interval() {
    let handle = FlowBuilder::new("idle")
        .async_source("ticker", Ticker::new(Arc::new(AtomicU64::new(0))))
        .sink("collect", Collect::default())
        .chain(["ticker", "collect"])
        .journals(Journals::memory())
        .build()
        .unwrap()
        .start()
        .unwrap();
    tokio::time::sleep(MetricsConfig::DEFAULT_INTERVAL * 3 / 2).await;
    let snapshot = handle.snapshot();
    let ticker = snapshot.stage("ticker").unwrap();
    // The fold at one interval saw about a hundred ticks.
    assert!((90..=101).contains(&ticker.records_in), "{ticker:?}");
    handle.cancel().await.unwrap();
    let report = handle.wait().await.unwrap();
    assert!(
        matches!(report.state, FlowState::Cancelled { .. }),
        "{report}"
    );
    assert!(report.metrics.is_final);
}
