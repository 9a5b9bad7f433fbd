//! Honest outcomes: a drained flow whose stages did not do their job is not reported as a
//! success, unless the flow declared it acceptable; legitimate empty runs are not flagged.

mod support;

use obzenflow_core::ChainEvent;
use obzenflow_runtime::pipeline::{
    Finding, FindingKind, FlowBuilder, FlowError, FlowReport, FlowState, Journals, Outcome,
};
use obzenflow_runtime::stages::{
    ErrorBudget, RecordError, SinkHandler, StageConfig, TransformHandler,
};
use support::{doubling_flow, Collect, Numbers};

async fn run(builder: FlowBuilder) -> FlowReport {
    builder
        .journals(Journals::memory())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap()
}

/// The user's case: every record fails to decode in `double` (it errors every record), so
/// `collect`, the only sink, receives nothing.
fn rejecting_flow() -> FlowBuilder {
    doubling_flow("rejecting", 1_000, Some(1), Collect::default())
}

fn expected_findings() -> Vec<Finding> {
    vec![
        Finding::RejectedEverything {
            stage: "double".to_owned(),
            records_in: 1_000,
            records_errored: 1_000,
        },
        Finding::SinkReceivedNothing {
            sink: "collect".to_owned(),
            sources: vec![("numbers".to_owned(), 1_000)],
            stopped_at: vec![("double".to_owned(), 1_000)],
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_whose_only_sink_received_nothing_is_not_a_success() {
    let report = run(rejecting_flow()).await;
    // The machine drained; the outcome says the run did not do its job.
    assert_eq!(report.state, FlowState::Drained, "{report}");
    assert!(!report.is_success(), "{report}");
    assert_eq!(report.findings, expected_findings(), "{report}");
    assert_eq!(
        report.outcome(),
        Outcome::Unsuccessful {
            findings: expected_findings()
        }
    );
    assert!(!report.outcome().is_success());
    let text = report.to_string();
    assert!(
        text.contains(": NOT A SUCCESS: every stage drained"),
        "{text}"
    );
    assert!(
        text.contains(
            "NOT A SUCCESS: stage `double` rejected every record it read (1,000 of 1,000 to \
             its error lane)"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "NOT A SUCCESS: sink `collect` received nothing while `numbers` produced 1,000 \
             records; they stopped at `double` with 1,000 on its error lane"
        ),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_acceptable_findings_make_the_same_flow_a_success() {
    let report = run(rejecting_flow()
        .accept("double", FindingKind::RejectedEverything)
        .accept("collect", FindingKind::SinkReceivedNothing))
    .await;
    assert!(report.is_success(), "{report}");
    assert!(report.findings.is_empty(), "{report}");
    assert_eq!(report.accepted_findings, expected_findings(), "{report}");
    assert_eq!(
        report.outcome(),
        Outcome::CompletedWithErrors { errored: 1_000 }
    );
    let text = report.to_string();
    assert!(!text.contains("NOT A SUCCESS"), "{text}");
    assert!(
        text.contains("accepted (declared by the flow): sink `collect` received nothing"),
        "{text}"
    );

    // Accepting one finding leaves the other held against the run.
    let report = run(rejecting_flow().accept("collect", FindingKind::SinkReceivedNothing)).await;
    assert!(!report.is_success(), "{report}");
    assert_eq!(report.findings, expected_findings()[..1], "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn some_records_on_an_error_lane_complete_with_errors_and_succeed() {
    let sink = Collect::default();
    let report = run(doubling_flow("some-errors", 1_000, Some(10), sink.clone())).await;
    assert!(report.is_success(), "{report}");
    assert!(report.findings.is_empty(), "{report}");
    assert_eq!(
        report.outcome(),
        Outcome::CompletedWithErrors { errored: 100 }
    );
    assert_eq!(sink.numbers().len(), 900);
    let text = report.to_string();
    assert!(
        text.contains(": completed with 100 records on error lanes (double: 100)"),
        "{text}"
    );

    let report = run(doubling_flow("no-errors", 1_000, None, Collect::default())).await;
    assert_eq!(report.outcome(), Outcome::Completed, "{report}");
    assert!(report.to_string().contains(": completed\n"), "{report}");
}

/// Drops every record without erroring.
struct DropAll;

impl TransformHandler for DropAll {
    fn process(&mut self, _event: &ChainEvent) -> Result<Vec<ChainEvent>, RecordError> {
        Ok(Vec::new())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_that_drops_everything_or_an_empty_source_is_not_flagged() {
    let report = run(FlowBuilder::new("filter-all")
        .source("numbers", Numbers::new("numbers", 1_000))
        .transform("drop", DropAll)
        .sink("collect", Collect::default())
        .chain(["numbers", "drop", "collect"]))
    .await;
    assert_eq!(report.stage("drop").unwrap().records_filtered, 1_000);
    assert_eq!(report.stage("collect").unwrap().records_in, 0);
    assert_eq!(report.outcome(), Outcome::Completed, "{report}");
    assert!(report.is_success(), "{report}");

    let report = run(doubling_flow("empty", 0, Some(1), Collect::default())).await;
    assert_eq!(report.source_records(), 0);
    assert_eq!(report.outcome(), Outcome::Completed, "{report}");
    assert!(report.is_success(), "{report}");
}

/// Rejects every record it is given.
struct RejectAll;

impl SinkHandler for RejectAll {
    fn consume(&mut self, _event: &ChainEvent) -> Result<(), RecordError> {
        Err(RecordError::validation("the destination refuses it"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_that_rejects_every_record_is_not_a_success() {
    let report = run(FlowBuilder::new("sink-rejects")
        .source("numbers", Numbers::new("numbers", 200))
        .sink("out", RejectAll)
        .edge("numbers", "out"))
    .await;
    assert!(!report.is_success(), "{report}");
    assert_eq!(
        report.findings,
        vec![Finding::RejectedEverything {
            stage: "out".to_owned(),
            records_in: 200,
            records_errored: 200,
        }],
        "{report}"
    );
    assert_eq!(report.findings[0].stage(), "out");
    assert_eq!(report.findings[0].kind(), FindingKind::RejectedEverything);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_flow_has_a_failed_outcome_and_no_findings() {
    let report = run(rejecting_flow().configure(
        "double",
        StageConfig {
            error_budget: ErrorBudget::MaxErrors(5),
            ..StageConfig::default()
        },
    ))
    .await;
    assert!(matches!(report.outcome(), Outcome::Failed(_)), "{report}");
    assert!(!report.is_success(), "{report}");
    assert!(report.findings.is_empty(), "{report}");
}

#[test]
fn accepting_an_unknown_stage_or_a_kind_the_stage_cannot_have_is_refused() {
    let unknown = rejecting_flow()
        .accept("nowhere", FindingKind::RejectedEverything)
        .build()
        .expect_err("an unknown stage is refused");
    assert!(
        matches!(&unknown, FlowError::UnknownStageConfig { name } if name == "nowhere"),
        "{unknown}"
    );
    for (stage, kind) in [
        ("double", FindingKind::SinkReceivedNothing),
        ("numbers", FindingKind::RejectedEverything),
    ] {
        let invalid = rejecting_flow()
            .accept(stage, kind)
            .build()
            .expect_err("a kind the stage cannot have is refused");
        assert!(
            matches!(&invalid, FlowError::InvalidConfig { stage: name, .. } if name == stage),
            "{invalid}"
        );
    }
}
