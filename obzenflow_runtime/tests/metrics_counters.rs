//! Per-stage instrumentation seen through the final snapshot and the report: exact counts
//! (errors by kind included), real processing-time percentiles, backpressure waits, per-edge
//! lag, and what switching metrics off leaves.

mod support;

use std::time::{Duration, Instant};

use obzenflow_core::{ChainEvent, ErrorKind, Record};
use obzenflow_runtime::metrics::MetricsConfig;
use obzenflow_runtime::pipeline::{FlowBuilder, FlowState, Journals};
use obzenflow_runtime::stages::{
    AsyncSinkHandler, RecordError, SinkHandler, StageConfig, StageState, TransformHandler,
};
use support::{Collect, Double, Numbers};
use tokio::sync::watch;

const N: u64 = 1_000;

fn n_of(event: &ChainEvent) -> u64 {
    event
        .json()
        .and_then(|payload| payload["n"].as_u64())
        .unwrap()
}

/// By `n % 10`: 3 is invalid, 7 cannot be decoded, 5 is filtered out, 9 becomes two records,
/// everything else passes as it is.
struct Classify;

impl TransformHandler for Classify {
    fn process(&mut self, event: &ChainEvent) -> Result<Vec<ChainEvent>, RecordError> {
        match n_of(event) % 10 {
            3 => Err(RecordError::validation("three is not allowed")),
            7 => Err(RecordError::decode("seven is garbled")),
            5 => Ok(Vec::new()),
            9 => Ok(vec![event.clone(), event.clone()]),
            _ => Ok(vec![event.clone()]),
        }
    }
}

/// Refuses records with `n % 10 == 1`, as a remote system would.
struct Flaky;

impl SinkHandler for Flaky {
    fn consume(&mut self, event: &ChainEvent) -> Result<(), RecordError> {
        if n_of(event) % 10 == 1 {
            return Err(RecordError::new(ErrorKind::Remote, "the remote refused"));
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_and_error_kinds_are_exact() {
    let report = FlowBuilder::new("classify")
        .source("numbers", Numbers::new("numbers", N))
        .transform("classify", Classify)
        .sink("flaky", Flaky)
        .chain(["numbers", "classify", "flaky"])
        .journals(Journals::memory())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.state, FlowState::Drained, "{report}");

    let numbers = report.metrics.stage("numbers").unwrap();
    assert_eq!((numbers.records_in, numbers.records_out), (N, N));
    assert_eq!(numbers.records_errored, 0);

    let classify = report.metrics.stage("classify").unwrap();
    assert_eq!(classify.records_in, N);
    // 600 records pass as they are, 100 become two.
    assert_eq!(classify.records_out, 800);
    assert_eq!(classify.records_filtered, 100);
    assert_eq!(classify.records_errored, 200);
    assert_eq!(classify.errors_by_kind.get(ErrorKind::Validation), 100);
    assert_eq!(classify.errors_by_kind.get(ErrorKind::Decode), 100);
    assert_eq!(classify.errors_by_kind.total(), 200);
    // Every input record is timed once, whatever became of it.
    assert_eq!(classify.processing_time.count(), N);

    let flaky = report.metrics.stage("flaky").unwrap();
    assert_eq!(flaky.records_in, 800);
    assert_eq!(flaky.records_out, 700);
    assert_eq!(flaky.records_errored, 100);
    assert_eq!(flaky.errors_by_kind.get(ErrorKind::Remote), 100);
    assert_eq!(flaky.errors_by_kind.get(ErrorKind::Validation), 0);
    assert_eq!(flaky.processing_time.count(), 800);

    // The report takes its numbers from the final snapshot.
    assert!(report.metrics.is_final);
    let classify_report = report.stage("classify").unwrap();
    assert_eq!(classify_report.records_errored, 200);
    assert_eq!(classify_report.errors_by_kind, classify.errors_by_kind);
    assert_eq!(classify_report.records_filtered, 100);
    assert!(classify_report.throughput > 0.0);
    let summary = report.to_string();
    println!("{summary}");
    assert!(
        summary.contains("errors at `classify`: 200 (validation 100, decode 100)"),
        "{summary}"
    );
    assert!(
        summary.contains("errors at `flaky`: 100 (remote 100)"),
        "{summary}"
    );
    for column in [
        "in", "out", "errors", "filtered", "state", "time", "p50 µs", "p99 µs",
    ] {
        assert!(summary.contains(column), "{column} missing from\n{summary}");
    }
}

/// Burns `PER_RECORD` of CPU on every record: a deliberately slow, sub-millisecond stage.
struct Spin;

const PER_RECORD: Duration = Duration::from_micros(50);

impl TransformHandler for Spin {
    fn process(&mut self, event: &ChainEvent) -> Result<Vec<ChainEvent>, RecordError> {
        let started = Instant::now();
        while started.elapsed() < PER_RECORD {
            std::hint::spin_loop();
        }
        Ok(vec![event.clone()])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifty_microsecond_stage_shows_real_percentiles() {
    let report = FlowBuilder::new("spin")
        .source("numbers", Numbers::new("numbers", 200))
        .transform("spin", Spin)
        .transform("double", Double { fail_every: None })
        .sink("collect", Collect::default())
        .chain(["numbers", "spin", "double", "collect"])
        .journals(Journals::memory())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.state, FlowState::Drained, "{report}");
    let spin = report.stage("spin").unwrap();
    assert!(
        spin.processing_p50 >= Duration::from_micros(40),
        "p50 {:?}\n{report}",
        spin.processing_p50
    );
    assert!(spin.processing_p99 >= spin.processing_p50);
    let histogram = &report.metrics.stage("spin").unwrap().processing_time;
    assert_eq!(histogram.count(), 200);
    assert!(histogram.sum() >= PER_RECORD * 200);
    // The fast stage is timed too, and a source has nothing to time.
    assert_eq!(
        report
            .metrics
            .stage("double")
            .unwrap()
            .processing_time
            .count(),
        200
    );
    assert!(report
        .metrics
        .stage("numbers")
        .unwrap()
        .processing_time
        .is_empty());
    assert_eq!(
        report.stage("numbers").unwrap().processing_p99,
        Duration::ZERO
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_held_back_by_its_window_counts_its_waits() {
    const WINDOW: u64 = 8;
    let one_at_a_time = StageConfig {
        batch_limit: 1,
        ..StageConfig::default()
    };
    let report = FlowBuilder::new("backpressure")
        .source("numbers", Numbers::new("numbers", 500))
        .sink("collect", Collect::default())
        .edge_with_window("numbers", "collect", WINDOW)
        .configure("collect", one_at_a_time)
        .journals(Journals::memory())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.state, FlowState::Drained, "{report}");
    // The source appends its 500 records as one batch, 8 at a time: it must wait.
    let numbers = report.stage("numbers").unwrap();
    assert!(numbers.backpressure_waits > 0, "{report}");
    assert!(numbers.backpressure_wait > Duration::ZERO, "{report}");
    // The sink appends nothing that anyone reads with a window.
    assert_eq!(report.stage("collect").unwrap().backpressure_waits, 0);
    assert!(report.to_string().contains("wait"), "{report}");
}

/// A sink that delivers nothing until its gate opens.
struct Gated {
    gate: watch::Receiver<bool>,
}

impl AsyncSinkHandler for Gated {
    async fn consume_batch<'a>(&'a mut self, events: &'a [Record]) -> Vec<Result<(), RecordError>> {
        let _ = self.gate.wait_for(|open| *open).await;
        events.iter().map(|_| Ok(())).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_lag_builds_up_behind_a_stalled_reader_and_returns_to_zero() {
    let (open, gate) = watch::channel(false);
    let handle = FlowBuilder::new("lag")
        .source("numbers", Numbers::new("numbers", 100))
        .transform("double", Double { fail_every: None })
        .async_sink("gated", Gated { gate })
        .chain(["numbers", "double", "gated"])
        .configure(
            "gated",
            StageConfig {
                batch_limit: 10,
                ..StageConfig::default()
            },
        )
        .journals(Journals::memory())
        .metrics(MetricsConfig::default().with_interval(Duration::from_millis(5)))
        .build()
        .unwrap()
        .start()
        .unwrap();
    let mut snapshots = handle.snapshots();
    // The sink took its first batch (10) and sits on it; the rest of the edge (90 records
    // and the journal's control records, once `double` wrote them all) waits. A snapshot may come while `double` is still
    // writing (the lag then grows from 1), so the test waits for the lag to build up, with a
    // deadline so that a lag that never builds up fails rather than hangs.
    let stalled = tokio::time::timeout(
        Duration::from_secs(60),
        snapshots.wait_for(|snapshot| {
            snapshot
                .edge("double", "gated")
                .is_some_and(|edge| edge.lag >= 80)
        }),
    )
    .await
    .expect("the lag behind the stalled sink builds up to 80 records")
    .unwrap()
    .clone();
    // The sink is still stalled: it has delivered nothing.
    assert_eq!(
        stalled.stage("gated").unwrap().records_out,
        0,
        "{stalled:?}"
    );
    open.send_replace(true);
    let report = handle.wait().await.unwrap();
    assert_eq!(report.state, FlowState::Drained, "{report}");
    assert_eq!(report.metrics.edges.len(), 2);
    for edge in &report.metrics.edges {
        assert_eq!(edge.lag, 0, "{edge:?}");
    }
    assert_eq!(report.stage("gated").unwrap().records_out, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_metrics_keep_exact_counts_and_drop_the_rest() {
    let report = FlowBuilder::new("bare")
        .source("numbers", Numbers::new("numbers", N))
        .transform("classify", Classify)
        .sink("collect", Collect::default())
        .chain(["numbers", "classify", "collect"])
        .journals(Journals::memory())
        .metrics(MetricsConfig::disabled())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.state, FlowState::Drained, "{report}");
    let classify = report.stage("classify").unwrap();
    assert_eq!(
        (
            classify.records_in,
            classify.records_out,
            classify.records_errored
        ),
        (N, 800, 200)
    );
    assert_eq!(classify.errors_by_kind.get(ErrorKind::Decode), 100);
    assert_eq!(classify.processing_p50, Duration::ZERO);
    assert!(report.metrics.is_final);
    assert!(report.metrics.edges.is_empty());
    assert!(report
        .metrics
        .stages
        .iter()
        .all(|stage| stage.processing_time.is_empty() && stage.state == StageState::Drained));
    assert!(report
        .prometheus()
        .contains("obzenflow_stage_records_in_total"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_and_snapshots_agree_once_the_flow_ended() {
    let handle = FlowBuilder::new("agree")
        .source("numbers", Numbers::new("numbers", 300))
        .sink("collect", Collect::default())
        .chain(["numbers", "collect"])
        .journals(Journals::memory())
        .build()
        .unwrap()
        .start()
        .unwrap();
    let snapshot = handle.final_snapshot().await;
    assert!(snapshot.is_final);
    let text = handle.prometheus();
    assert!(
        text.contains("obzenflow_flow_final{flow=\"agree\"} 1"),
        "{text}"
    );
    for progress in handle.progress() {
        let stage = snapshot.stage(&progress.name).unwrap();
        assert_eq!(stage.records_in, progress.counts.records_in);
        assert_eq!(stage.records_out, progress.counts.records_out);
    }
    let report = handle.wait().await.unwrap();
    assert_eq!(report.metrics, *snapshot);
    assert_eq!(report.stage("collect").unwrap().records_out, 300);
}
