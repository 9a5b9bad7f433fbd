//! What a run leaves in its journals: one terminal fact per stage, honest end-of-stream
//! counts, error lanes that match the report, lineage back to the source record.

mod support;

use std::collections::HashMap;

use obzenflow_core::{ChainEvent, Lane, LifecycleEvent};
use obzenflow_runtime::journal::{inspect, RunDirectory, RunStatus};
use obzenflow_runtime::pipeline::{FlowBuilder, FlowReport, FlowState, Journals};
use obzenflow_runtime::stages::{RecordError, SinkHandler};
use support::{doubling_flow, journal_records, terminal_facts, Collect, Double, Numbers};

fn records(report: &FlowReport, name: &str, lane: Lane) -> Vec<ChainEvent> {
    journal_records(report, name, lane)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_run_leaves_consistent_journals() {
    let base = tempfile::tempdir().unwrap();
    let report = doubling_flow("journals", 500, Some(10), Collect::default())
        .journals(Journals::disk(base.path()))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert!(report.is_success(), "{report}");

    for stage in &report.stages {
        let data = records(&report, &stage.name, Lane::Data);
        let facts = terminal_facts(&data);
        assert_eq!(facts.len(), 1, "{}: {facts:?}", stage.name);
        assert!(matches!(facts[0], LifecycleEvent::Completed { .. }));
        let data_records = data.iter().filter(|event| event.is_data()).count() as u64;
        let end_of_stream: Vec<u64> = data
            .iter()
            .filter_map(ChainEvent::end_of_stream_count)
            .collect();
        assert_eq!(end_of_stream, vec![data_records], "{}", stage.name);
        // The error lane ends with its own end-of-stream marker, counting its records.
        let mut errors = records(&report, &stage.name, Lane::Error);
        let end = errors.pop().and_then(|end| end.end_of_stream_count());
        assert_eq!(end, Some(stage.records_errored), "{}", stage.name);
        assert_eq!(errors.len() as u64, stage.records_errored, "{}", stage.name);
        assert!(errors.iter().all(ChainEvent::is_error), "{}", stage.name);
    }

    // Lineage: every transform output points at the source record it came from.
    let sources: HashMap<_, _> = records(&report, "numbers", Lane::Data)
        .into_iter()
        .filter(ChainEvent::is_data)
        .map(|event| (event.id, event))
        .collect();
    let outputs = records(&report, "double", Lane::Data);
    for output in outputs.iter().filter(|event| event.is_data()) {
        let parent = output.causality.parent_id.expect("a parent");
        let origin = &sources[&parent];
        assert_eq!(output.correlation_id(), origin.correlation_id());
        assert_eq!(output.json().unwrap()["n"], origin.json().unwrap()["n"]);
    }
    let rejected: Vec<ChainEvent> = records(&report, "double", Lane::Error)
        .into_iter()
        .filter(ChainEvent::is_data)
        .collect();
    assert!(rejected.iter().all(ChainEvent::is_error));
    assert_eq!(rejected[0].json().unwrap()["n"], 9);

    let manifest = RunDirectory::open(report.run_dir.as_ref().unwrap())
        .unwrap()
        .read_manifest()
        .unwrap();
    assert_eq!(manifest.status, RunStatus::Completed);
    assert!(manifest.ended_at.is_some());
    let pipeline = records(&report, "pipeline", Lane::System);
    assert_eq!(terminal_facts(&pipeline).len(), 1);
    assert!(inspect::validate_run(report.run_dir.as_ref().unwrap())
        .unwrap()
        .is_clean());
}

struct RejectEverything;

impl SinkHandler for RejectEverything {
    fn consume(&mut self, _event: &ChainEvent) -> Result<(), RecordError> {
        panic!("nothing gets past this sink");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_leaves_exactly_one_terminal_fact_per_stage() {
    let base = tempfile::tempdir().unwrap();
    let report = FlowBuilder::new("failing")
        .source("numbers", Numbers::new("numbers", 50_000))
        .transform("double", Double { fail_every: None })
        .sink("explode", RejectEverything)
        .chain(["numbers", "double", "explode"])
        .journals(Journals::disk(base.path()))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert!(matches!(report.state, FlowState::Failed { .. }), "{report}");
    for stage in &report.stages {
        let facts = terminal_facts(&records(&report, &stage.name, Lane::Data));
        assert_eq!(facts.len(), 1, "{}: {facts:?}", stage.name);
    }
    let explode = terminal_facts(&records(&report, "explode", Lane::Data));
    let LifecycleEvent::Failed { reason } = &explode[0] else {
        panic!("expected a failure fact: {explode:?}");
    };
    assert!(reason.contains("nothing gets past this sink"), "{reason}");
    let manifest = RunDirectory::open(report.run_dir.as_ref().unwrap())
        .unwrap()
        .read_manifest()
        .unwrap();
    assert_eq!(manifest.status, RunStatus::Failed);
}
