//! Failure, stop and backpressure behaviour of whole flows.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use obzenflow_core::{ChainEvent, ErrorChain, Record};
use obzenflow_runtime::pipeline::{FlowBuilder, FlowFailure, FlowState, Journals};
use obzenflow_runtime::stages::{
    FailureKind, HandlerFailure, RecordError, SinkHandler, SourceHandler, SourcePoll, StageConfig,
    StageError, StageState,
};
use obzenflow_runtime::supervised_base::PanicError;
use serde_json::json;
use support::{Collect, Double, Numbers, Ticker};

/// A generous bound on how long a flow may take to tear down; only there so a regression hangs
/// the test for a minute instead of forever. It is not a timing assertion.
const HANG_GUARD: Duration = Duration::from_secs(60);

struct PanickingSink;

impl SinkHandler for PanickingSink {
    fn consume(&mut self, event: &ChainEvent) -> Result<(), RecordError> {
        if event.json().and_then(|payload| payload["n"].as_u64()) == Some(42) {
            panic!("the sink cannot take record 42");
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_sink_fails_the_flow_without_hanging() {
    let flow = FlowBuilder::new("panic")
        .source("numbers", Numbers::new("numbers", 10_000))
        .transform("double", Double { fail_every: None })
        .sink("explode", PanickingSink)
        .chain(["numbers", "double", "explode"])
        .journals(Journals::memory())
        .build()
        .unwrap();
    let report = tokio::time::timeout(HANG_GUARD, flow.run())
        .await
        .expect("the flow tore down")
        .unwrap();
    let failure = report.failure().expect("the panic fails the flow");
    let stage = failure.stage_failure().expect("a stage failed");
    assert_eq!(
        (stage.stage(), stage.kind()),
        ("explode", FailureKind::Panic)
    );
    let panic = failure
        .downcast_ref::<PanicError>()
        .expect("the panic is the cause");
    assert_eq!(panic.message(), "the sink cannot take record 42");
    for stage in &report.stages {
        assert!(stage.state.is_terminal(), "{report}");
    }
}

#[tokio::test(start_paused = true)]
async fn graceful_stop_of_an_infinite_source_drains_everything_emitted() {
    let produced = Arc::new(AtomicU64::new(0));
    let sink = Collect::default();
    let handle = FlowBuilder::new("ticker")
        .async_source("ticker", Ticker::new(produced.clone()))
        .transform("double", Double { fail_every: None })
        .sink("collect", sink.clone())
        .chain(["ticker", "double", "collect"])
        .journals(Journals::memory())
        .build()
        .unwrap()
        .start()
        .unwrap();
    let mut state = handle.state();
    state
        .wait_for(|state| *state == FlowState::Running)
        .await
        .unwrap();
    // Let some ticks happen (paused time advances on its own while every task waits).
    tokio::time::sleep(Duration::from_millis(205)).await;
    handle.stop_graceful(Duration::from_secs(30)).await.unwrap();
    let report = handle.wait().await.unwrap();
    assert_eq!(report.state, FlowState::Drained, "{report}");
    let emitted = report.stage("ticker").unwrap().records_out;
    assert!(emitted >= 10, "{report}");
    assert_eq!(sink.numbers().len() as u64, emitted, "{report}");
    assert_eq!(report.stage("collect").unwrap().records_in, emitted);
}

/// A source that checks, every time it is asked for more, how far ahead of the sink it is.
struct Watchful {
    next: u64,
    count: u64,
    consumed: Arc<AtomicU64>,
    worst_lead: Arc<AtomicU64>,
}

impl SourceHandler for Watchful {
    fn next_batch(&mut self, _max: usize) -> Result<SourcePoll, HandlerFailure> {
        if self.next == self.count {
            return Ok(SourcePoll::Done);
        }
        // Everything emitted so far is committed; the sink has consumed `consumed` of it.
        let lead = self.next - self.consumed.load(Ordering::SeqCst);
        self.worst_lead.fetch_max(lead, Ordering::SeqCst);
        let record = ChainEvent::data("n", json!({"n": self.next, "from": "watchful"}));
        self.next += 1;
        Ok(SourcePoll::Records(vec![record]))
    }
}

struct SlowSink {
    consumed: Arc<AtomicU64>,
}

impl SinkHandler for SlowSink {
    fn consume(&mut self, _event: &ChainEvent) -> Result<(), RecordError> {
        // Slow in the only way that matters here: it consumes one record per batch.
        self.consumed.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backpressure_keeps_the_writer_within_its_window() {
    const WINDOW: u64 = 8;
    let consumed = Arc::new(AtomicU64::new(0));
    let worst_lead = Arc::new(AtomicU64::new(0));
    let one_at_a_time = StageConfig {
        batch_limit: 1,
        ..StageConfig::default()
    };
    let report = FlowBuilder::new("backpressure")
        .source(
            "watchful",
            Watchful {
                next: 0,
                count: 2_000,
                consumed: consumed.clone(),
                worst_lead: worst_lead.clone(),
            },
        )
        .sink(
            "slow",
            SlowSink {
                consumed: consumed.clone(),
            },
        )
        .edge_with_window("watchful", "slow", WINDOW)
        .configure("watchful", one_at_a_time.clone())
        .configure("slow", one_at_a_time)
        .journals(Journals::memory())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.state, FlowState::Drained, "{report}");
    assert_eq!(consumed.load(Ordering::SeqCst), 2_000);
    // The reader's position runs at most one record (its batch) ahead of what it consumed.
    let worst = worst_lead.load(Ordering::SeqCst);
    assert!(
        worst <= WINDOW + 1,
        "source ran {worst} records ahead of the sink"
    );
    assert!(
        worst >= WINDOW / 2,
        "the sink never fell behind ({worst}); the test proves nothing"
    );
}

/// An error type of the user's own, behind a handler's stage failure.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
enum SensorError {
    #[error("sensor {port} is unplugged")]
    Unplugged { port: u32 },
}

/// A source whose sensor is unplugged once it has emitted `before` records.
struct Sensor {
    before: u64,
}

impl SourceHandler for Sensor {
    fn next_batch(&mut self, _max: usize) -> Result<SourcePoll, HandlerFailure> {
        if self.before == 0 {
            let unplugged = SensorError::Unplugged { port: 3 };
            return Err(HandlerFailure::with_source(
                "cannot read the sensor",
                unplugged,
            ));
        }
        self.before -= 1;
        let record = ChainEvent::data("n", json!({"n": self.before, "from": "sensor"}));
        Ok(SourcePoll::Records(vec![record]))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handlers_own_error_comes_back_typed_from_the_report() {
    let report = FlowBuilder::new("sensor")
        .source("sensor", Sensor { before: 5 })
        .sink("collect", Collect::default())
        .chain(["sensor", "collect"])
        .journals(Journals::memory())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    let failure = report
        .failure()
        .expect("the unplugged sensor fails the flow");
    // Which stage, and how, by type.
    let FlowFailure::Stage(stage) = failure else {
        panic!("a stage failed: {report}");
    };
    assert_eq!(
        (stage.stage(), stage.kind()),
        ("sensor", FailureKind::Handler)
    );
    assert!(matches!(
        stage.stage_error(),
        Some(StageError::Handler { message, .. }) if message == "cannot read the sensor"
    ));
    // The user's own error, by downcast, from the flow's failure and from the stage's state.
    assert_eq!(
        failure.downcast_ref::<SensorError>(),
        Some(&SensorError::Unplugged { port: 3 })
    );
    let StageState::Failed {
        failure: stage_state_failure,
    } = &report.stage("sensor").unwrap().state
    else {
        panic!("the sensor failed: {report}");
    };
    assert_eq!(stage_state_failure, stage, "one failure, end to end");
    assert!(matches!(
        stage_state_failure.downcast_ref::<SensorError>(),
        Some(SensorError::Unplugged { port: 3 })
    ));
    // For people: the chain, each cause once.
    assert_eq!(
        ErrorChain::new(failure).to_string(),
        "stage `sensor` failed: cannot read the sensor: sensor 3 is unplugged"
    );
    assert!(
        report.to_string().contains(
            "FAILED: stage `sensor` failed: cannot read the sensor: sensor 3 is unplugged"
        ),
        "{report}"
    );
    // The sink was cancelled by the flow, saying why, unless it saw the source's journal
    // close first.
    match &report.stage("collect").unwrap().state {
        StageState::Cancelled { reason } => assert_eq!(
            reason,
            "flow failed: stage `sensor` failed: cannot read the sensor: sensor 3 is unplugged"
        ),
        StageState::Failed { failure } => {
            assert_eq!(failure.kind(), FailureKind::UpstreamClosed, "{report}");
        }
        other => panic!("the sink cannot have drained: {other:?}\n{report}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_source_initialization_fails_the_flow_with_its_reason() {
    struct Missing;
    impl SourceHandler for Missing {
        fn initialize(&mut self) -> Result<(), HandlerFailure> {
            Err(HandlerFailure::msg("cannot open orders.csv: no such file"))
        }
        fn next_batch(&mut self, _max: usize) -> Result<SourcePoll, HandlerFailure> {
            Ok(SourcePoll::Done)
        }
    }
    let report = FlowBuilder::new("missing")
        .source("orders", Missing)
        .sink("collect", Collect::default())
        .chain(["orders", "collect"])
        .journals(Journals::memory())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    let failure = report
        .failure()
        .expect("a failed initialization fails the flow");
    let stage = failure.stage_failure().expect("a stage failed");
    assert_eq!(
        (stage.stage(), stage.kind(), stage.state()),
        ("orders", FailureKind::Handler, "created")
    );
    assert_eq!(
        ErrorChain::new(failure).to_string(),
        "stage `orders` failed: cannot open orders.csv: no such file"
    );
    assert!(matches!(
        report.stage("collect").unwrap().state,
        StageState::Failed { .. } | StageState::Cancelled { .. }
    ));
}

/// A sink whose delivery never returns, like a remote call with no timeout.
struct Stuck;

impl obzenflow_runtime::stages::AsyncSinkHandler for Stuck {
    async fn consume_batch<'a>(
        &'a mut self,
        _events: &'a [Record],
    ) -> Vec<Result<(), RecordError>> {
        std::future::pending().await
    }
}

#[tokio::test(start_paused = true)]
async fn a_stop_that_cannot_drain_escalates_to_cancel_and_aborts_a_stuck_stage() {
    let handle = FlowBuilder::new("stuck")
        .async_source("ticker", Ticker::new(Arc::new(AtomicU64::new(0))))
        .async_sink("stuck", Stuck)
        .chain(["ticker", "stuck"])
        .teardown_deadline(Duration::from_secs(5))
        .journals(Journals::memory())
        .build()
        .unwrap()
        .start()
        .unwrap();
    let mut state = handle.state();
    state
        .wait_for(|state| *state == FlowState::Running)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    handle.stop_graceful(Duration::from_secs(1)).await.unwrap();
    let report = handle.wait().await.unwrap();
    let FlowState::Cancelled { reason } = &report.state else {
        panic!("expected a cancelled flow: {report}");
    };
    assert_eq!(reason, "the graceful stop deadline passed");
    assert_eq!(
        report.stage("ticker").unwrap().state,
        StageState::Drained,
        "{report}"
    );
    // The stuck sink never saw its cancel command; its task was aborted and its state stays
    // where it was stuck.
    assert_eq!(
        report.stage("stuck").unwrap().state,
        StageState::Running,
        "{report}"
    );
}

/// A transform whose `initialize` never returns.
struct NeverReady;

impl obzenflow_runtime::stages::AsyncTransformHandler for NeverReady {
    async fn initialize(&mut self) -> Result<(), HandlerFailure> {
        std::future::pending().await
    }

    async fn process_batch<'a>(
        &'a mut self,
        events: &'a [Record],
    ) -> Vec<obzenflow_runtime::stages::RecordResult> {
        events.iter().map(|_| Ok(Vec::new())).collect()
    }
}

/// Cancel is read while the flow starts: a stage stuck in `initialize` does not keep the
/// pipeline from taking the cancel, and the teardown deadline then aborts that stage.
#[tokio::test(start_paused = true)]
async fn cancel_during_start_up_is_taken_and_the_teardown_deadline_aborts_a_stuck_initialize() {
    let teardown = Duration::from_secs(5);
    let handle = FlowBuilder::new("never-ready")
        .source("numbers", Numbers::new("n", 10))
        .async_transform("never_ready", NeverReady)
        .sink("collect", Collect::default())
        .chain(["numbers", "never_ready", "collect"])
        .teardown_deadline(teardown)
        .journals(Journals::memory())
        .build()
        .unwrap()
        .start()
        .unwrap();
    // The other stages come up; the stuck one stays in `created`, so the flow does too.
    tokio::task::yield_now().await;
    assert_eq!(*handle.state().borrow(), FlowState::Created);
    let cancelled_at = tokio::time::Instant::now();
    handle.cancel().await.unwrap();
    let report = tokio::time::timeout(HANG_GUARD, handle.wait())
        .await
        .expect("the cancel is taken during start-up")
        .unwrap();
    let FlowState::Cancelled { reason } = &report.state else {
        panic!("expected a cancelled flow: {report}");
    };
    assert_eq!(reason, "cancelled by the flow handle");
    assert!(
        tokio::time::Instant::now() - cancelled_at >= teardown,
        "the stuck stage is aborted at the teardown deadline, not before"
    );
    assert_eq!(
        report.stage("never_ready").unwrap().state,
        StageState::Created,
        "{report}"
    );
    for stage in ["numbers", "collect"] {
        assert!(
            matches!(
                report.stage(stage).unwrap().state,
                StageState::Cancelled { .. }
            ),
            "{report}"
        );
    }
}
