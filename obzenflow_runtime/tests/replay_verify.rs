//! Replay a finished run from its run directory and verify it against the original: a replay
//! with unchanged code shows 0 differences; a changed transform shows its first divergent
//! record at the right stage, traced back to the source record through its correlation id.

mod replay_support;

use std::path::PathBuf;

use obzenflow_core::{CorrelationId, Lane};
use obzenflow_runtime::journal::{RunDirectory, RunStatus};
use obzenflow_runtime::replay::{self, Presence};
use replay_support::{data_records, flow, run_to_completion, NotCalled, Readings};

const READINGS: u64 = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_replay_has_no_differences() {
    let base = tempfile::tempdir().unwrap();
    let original = run_to_completion(flow(Readings::new(READINGS), 2, base.path())).await;
    let replayed = run_to_completion(flow(NotCalled, 2, base.path()).replay_from(&original)).await;
    assert_ne!(original, replayed);

    let manifest = RunDirectory::open(&replayed)
        .unwrap()
        .read_manifest()
        .unwrap();
    assert_eq!(manifest.status, RunStatus::Completed);
    assert_eq!(
        manifest.replayed_from,
        Some(std::path::absolute(&original).unwrap())
    );

    // Every source record, data and error lane alike, is replayed in order with the same
    // content and status, and points at its original.
    for lane in [Lane::Data, Lane::Error] {
        let archived = data_records(&original, "readings", lane);
        let again = data_records(&replayed, "readings", lane);
        assert_eq!(archived.len(), again.len(), "{lane}");
        assert!(!archived.is_empty(), "{lane}");
        for (archived, again) in archived.iter().zip(&again) {
            assert_eq!(again.content, archived.content);
            assert_eq!(again.causality.parent_id, Some(archived.id));
            assert_ne!(again.id, archived.id);
            assert_eq!(
                again.processing_info.status.name(),
                archived.processing_info.status.name()
            );
        }
    }

    let report = replay::verify(&original, &replayed).unwrap();
    assert!(report.is_identical(), "{report}");
    assert_eq!(report.differences, 0);
    assert!(report.to_string().ends_with("0 differences"), "{report}");
    assert_eq!(report.stages.len(), 4);
    let scale = report.stage("scale").unwrap();
    assert_eq!(scale.error.as_ref().unwrap().baseline_records, 3);
    let json: serde_json::Value = serde_json::from_str(&report.to_json().unwrap()).unwrap();
    assert_eq!(json["differences"], 0);
    let replayed_from = json["candidate"]["replayed_from"]
        .as_str()
        .map(PathBuf::from);
    assert_eq!(replayed_from, Some(std::path::absolute(&original).unwrap()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_transform_diverges_at_its_first_affected_record() {
    let base = tempfile::tempdir().unwrap();
    let original = run_to_completion(flow(Readings::new(READINGS), 2, base.path())).await;
    // The new code triples the values of key `b` instead of doubling them.
    let replayed = run_to_completion(flow(NotCalled, 3, base.path()).replay_from(&original)).await;

    let report = replay::verify(&original, &replayed).unwrap();
    assert!(!report.is_identical());
    let text = report.to_string();
    assert!(text.ends_with("2 differences"), "{text}");

    // The source is untouched; the first stage to differ is the transform.
    assert_eq!(report.stage("readings").unwrap().differences(), 0);
    let first = report.first_difference().unwrap();
    assert_eq!(first.stage, "scale");
    assert_eq!(first.presence, Presence::Both);
    assert!(first.error.as_ref().unwrap().is_identical());
    let divergence = first
        .data
        .as_ref()
        .unwrap()
        .first_divergence
        .clone()
        .unwrap();
    // Reading 0 (key a) comes first; reading 1 is the first of key b.
    assert_eq!(divergence.index, 1);
    assert_eq!(divergence.differs_in, vec!["payload".to_owned()]);
    let (baseline, candidate) = (divergence.baseline.unwrap(), divergence.candidate.unwrap());
    assert_eq!(
        baseline.payload,
        serde_json::json!({"key": "b", "value": 2})
    );
    assert_eq!(
        candidate.payload,
        serde_json::json!({"key": "b", "value": 3})
    );

    // Both correlation ids lead back to reading 1 in their own run's source journal, and the
    // replayed source record points at the original one.
    let original_reading = &data_records(&original, "readings", Lane::Data)[1];
    let replayed_reading = &data_records(&replayed, "readings", Lane::Data)[1];
    assert_eq!(original_reading.json().unwrap()["value"], 1);
    assert_eq!(
        baseline.correlation_id,
        CorrelationId::from_origin(original_reading.id)
    );
    assert_eq!(
        candidate.correlation_id,
        CorrelationId::from_origin(replayed_reading.id)
    );
    let baseline_source = baseline.source.unwrap();
    assert_eq!(
        (baseline_source.stage.as_str(), baseline_source.index),
        ("readings", 1)
    );
    assert_eq!(baseline_source.replayed_from, None);
    let candidate_source = candidate.source.unwrap();
    assert_eq!(candidate_source.event_id, replayed_reading.id);
    assert_eq!(candidate_source.replayed_from, Some(original_reading.id));
    assert!(text.contains(&original_reading.id.to_string()), "{text}");

    // The aggregation downstream differs in the total of key b only.
    let totals = report.stage("totals").unwrap();
    let divergence = totals
        .data
        .as_ref()
        .unwrap()
        .first_divergence
        .as_ref()
        .unwrap();
    assert_eq!(divergence.index, 1);
    assert_eq!(divergence.baseline.as_ref().unwrap().payload["key"], "b");
    assert!(totals.end_of_stream.is_same());
}
