//! End-to-end flows on both journal kinds: linear, fan-out, fan-in, diamond, error lanes.

mod support;

use std::collections::BTreeSet;

use obzenflow_core::{ChainEvent, ErrorChain};
use obzenflow_runtime::pipeline::{FlowBuilder, FlowReport, FlowState, Journals};
use obzenflow_runtime::stages::{
    ErrorBudget, FailureKind, RecordError, StageConfig, StageError, StageState, TransformHandler,
};
use support::{doubling_flow, Collect, Double, Numbers};

const N: u64 = 2_500;

fn journal_kinds() -> Vec<(&'static str, Journals, tempfile::TempDir)> {
    let memory_dir = tempfile::tempdir().unwrap();
    let disk_dir = tempfile::tempdir().unwrap();
    let disk = Journals::disk(disk_dir.path());
    vec![
        ("memory", Journals::memory(), memory_dir),
        ("disk", disk, disk_dir),
    ]
}

fn assert_drained(report: &FlowReport) {
    assert_eq!(report.state, FlowState::Drained, "{report}");
    for stage in &report.stages {
        assert_eq!(stage.state, StageState::Drained, "{report}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linear_flow_delivers_every_record_once_in_order() {
    for (kind, journals, _dir) in journal_kinds() {
        let sink = Collect::default();
        let report = doubling_flow("linear", N, None, sink.clone())
            .journals(journals)
            .build()
            .unwrap()
            .run()
            .await
            .unwrap();
        assert_drained(&report);
        let expected: Vec<(String, u64)> = (0..N).map(|n| ("numbers".to_owned(), n)).collect();
        assert_eq!(sink.numbers(), expected, "{kind}");
        for stage in ["numbers", "double", "collect"] {
            let stage = report.stage(stage).unwrap();
            assert_eq!(
                (stage.records_in, stage.records_out),
                (N, N),
                "{kind} {stage:?}"
            );
            assert_eq!(stage.records_errored, 0);
        }
        let receipts = &report.stage("collect").unwrap().receipts;
        assert_eq!(receipts.len(), 1, "{kind}");
        assert_eq!(
            (receipts[0].destination.as_str(), receipts[0].records),
            ("collector", N)
        );
        assert!(report
            .to_string()
            .contains("`collect` delivered 2,500 records (0 bytes) to collector"));
        let doubled = sink.records()[7].json().unwrap()["doubled"].as_u64();
        assert_eq!(doubled, Some(14));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_delivers_everything_to_each_sink() {
    for (kind, journals, _dir) in journal_kinds() {
        let (left, right) = (Collect::default(), Collect::default());
        let report = FlowBuilder::new("fan-out")
            .source("numbers", Numbers::new("numbers", N))
            .sink("left", left.clone())
            .sink("right", right.clone())
            .edge("numbers", "left")
            .edge("numbers", "right")
            .journals(journals)
            .build()
            .unwrap()
            .run()
            .await
            .unwrap();
        assert_drained(&report);
        assert_eq!(left.numbers().len() as u64, N, "{kind}");
        assert_eq!(left.numbers(), right.numbers(), "{kind}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_in_and_diamond_deliver_exactly_once() {
    for (kind, journals, _dir) in journal_kinds() {
        let sink = Collect::default();
        let report = FlowBuilder::new("diamond")
            .source("a", Numbers::new("a", N))
            .source("b", Numbers::new("b", N / 2))
            .transform("left", Double { fail_every: None })
            .transform("right", Double { fail_every: None })
            .transform("merge", Double { fail_every: None })
            .sink("collect", sink.clone())
            // a feeds both branches (fan-out), both branches and b meet in merge (fan-in).
            .edge("a", "left")
            .edge("a", "right")
            .edge("b", "merge")
            .edge("left", "merge")
            .edge("right", "merge")
            .edge("merge", "collect")
            .journals(journals)
            .build()
            .unwrap()
            .run()
            .await
            .unwrap();
        assert_drained(&report);
        let numbers = sink.numbers();
        assert_eq!(numbers.len() as u64, 2 * N + N / 2, "{kind}");
        let from_b: BTreeSet<u64> = numbers
            .iter()
            .filter(|(from, _)| from == "b")
            .map(|(_, n)| *n)
            .collect();
        assert_eq!(from_b, (0..N / 2).collect(), "{kind}");
        let merge = report.stage("merge").unwrap();
        assert_eq!(merge.records_in, 2 * N + N / 2, "{kind}");
        // Every source record reaches the sink once per path: twice via a, once via b.
        let mut per_record = std::collections::BTreeMap::new();
        for (from, n) in numbers {
            *per_record.entry((from, n)).or_insert(0) += 1;
        }
        assert!(per_record
            .iter()
            .all(|((from, _), count)| *count == if from == "a" { 2 } else { 1 }));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_go_to_the_error_lane_and_the_flow_completes() {
    for (kind, journals, _dir) in journal_kinds() {
        let sink = Collect::default();
        let report = doubling_flow("errors", 1_000, Some(10), sink.clone())
            .journals(journals)
            .build()
            .unwrap()
            .run()
            .await
            .unwrap();
        assert_drained(&report);
        let double = report.stage("double").unwrap();
        assert_eq!(double.records_in, 1_000, "{kind}");
        assert_eq!(double.records_out, 900, "{kind}");
        assert_eq!(double.records_errored, 100, "{kind}");
        assert_eq!(double.first_errors[0], "validation: record 9 is unlucky");
        assert_eq!(sink.numbers().len(), 900);
        assert!(sink.numbers().iter().all(|(_, n)| n % 10 != 9));
    }
}

/// Emits each record twice through `process_into`, but fails every tenth after appending its
/// first copy: that copy must not reach the data lane. `out` must come empty (the error count
/// would show it otherwise).
struct TwiceUnlessUnlucky;

impl TransformHandler for TwiceUnlessUnlucky {
    fn process(&mut self, _event: &ChainEvent) -> Result<Vec<ChainEvent>, RecordError> {
        unreachable!("the runtime calls process_into")
    }

    fn process_into(
        &mut self,
        event: &ChainEvent,
        out: &mut Vec<ChainEvent>,
    ) -> Result<(), RecordError> {
        let n = event.field("n").and_then(|n| n.as_u64()).ok_or("no n")?;
        if !out.is_empty() {
            return Err(RecordError::validation(
                "`out` holds another record's outputs",
            ));
        }
        out.push(event.clone());
        if n % 10 == 9 {
            return Err(RecordError::validation(format!("record {n} is unlucky")));
        }
        out.push(event.clone());
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_appended_by_process_into_before_an_error_are_discarded() {
    for (kind, journals, _dir) in journal_kinds() {
        let sink = Collect::default();
        let report = FlowBuilder::new("twice")
            .journals(journals)
            .source("numbers", Numbers::new("numbers", 1_000))
            .transform("twice", TwiceUnlessUnlucky)
            .sink("collect", sink.clone())
            .chain(["numbers", "twice", "collect"])
            .build()
            .unwrap()
            .run()
            .await
            .unwrap();
        assert_drained(&report);
        let twice = report.stage("twice").unwrap();
        assert_eq!(twice.records_out, 1_800, "{kind}");
        assert_eq!(twice.records_errored, 100, "{kind}");
        let numbers = sink.numbers();
        assert_eq!(numbers.len(), 1_800, "{kind}");
        assert!(numbers.iter().all(|(_, n)| n % 10 != 9), "{kind}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exceeded_error_budget_fails_the_flow_with_the_budget_in_the_message() {
    let report = doubling_flow("budget", 1_000, Some(10), Collect::default())
        .configure(
            "double",
            StageConfig {
                error_budget: ErrorBudget::MaxErrors(5),
                batch_limit: 20,
                ..StageConfig::default()
            },
        )
        .journals(Journals::memory())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    let failure = report.failure().expect("the budget fails the flow");
    let stage = failure.stage_failure().expect("a stage failed");
    assert_eq!(
        (stage.stage(), stage.kind()),
        ("double", FailureKind::ErrorBudgetExceeded),
        "{report}"
    );
    let Some(StageError::ErrorBudgetExceeded {
        errors, records, ..
    }) = stage.stage_error()
    else {
        panic!("the stage's error is the budget's: {report}");
    };
    assert!(*errors > 5 && records >= errors, "{report}");
    // People read the budget in the message.
    let reason = ErrorChain::new(failure).to_string();
    assert!(
        reason.starts_with("stage `double` failed: error budget exceeded: "),
        "{reason}"
    );
    assert!(reason.contains("at most 5 errors"), "{reason}");
    // The stage is named once, and the supervision loop's internals stay out of it.
    assert_eq!(reason.matches("double").count(), 1, "{reason}");
    assert!(!reason.contains("dispatch_state"), "{reason}");
    for stage in &report.stages {
        assert!(stage.state.is_terminal(), "{report}");
    }
}
