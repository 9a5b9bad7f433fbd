//! The span hierarchy of a run: one `flow` span per run (fields `flow`, `run_id`) and, inside
//! it, one `supervisor` span per task, whose stage spans carry `stage_id`, `stage_kind` and
//! `stage_name`; targets are module paths, so `RUST_LOG` filters by module.

mod support;

use obzenflow_runtime::pipeline::{FlowState, Journals};
use support::{doubling_flow, Collect, Lines};
use tracing_subscriber::EnvFilter;

// Current-thread: every task of the flow runs on this thread, under this subscriber.
#[tokio::test]
async fn stage_spans_nest_under_the_run_span_and_filter_by_module() {
    let lines = Lines::default();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(lines.clone())
        // What `RUST_LOG` would say: the run span and supervision lifecycle at info, nothing
        // from the journals. A span is only recorded where its module's target is enabled.
        .with_env_filter(EnvFilter::new(
            "obzenflow_runtime::pipeline=info,obzenflow_runtime::supervised_base=info,\
             obzenflow_runtime::journal=off",
        ))
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let report = doubling_flow("spans", 10, None, Collect::default())
        .journals(Journals::memory())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.state, FlowState::Drained, "{report}");
    let text = lines.text();
    let run_span = format!("flow{{flow=spans run_id={}}}", report.run_id);
    let started: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("supervisor started"))
        .collect();
    // Three stages, the metrics aggregator and the pipeline.
    assert_eq!(started.len(), 5, "{text}");
    for line in &started {
        assert!(line.contains(&format!("{run_span}:supervisor{{")), "{line}");
        assert!(
            line.contains("obzenflow_runtime::supervised_base::driver"),
            "{line}"
        );
    }
    for (stage, kind) in [
        ("numbers", "source"),
        ("double", "transform"),
        ("collect", "sink"),
    ] {
        let fields = format!("stage_kind={kind} stage_name={stage}}}");
        assert!(
            started
                .iter()
                .any(|line| line.contains(&fields) && line.contains("stage_id=stage_")),
            "no span with {fields} in\n{text}"
        );
    }
    assert!(
        started
            .iter()
            .any(|line| line.contains("supervisor=metrics_aggregator")),
        "{text}"
    );
    assert!(!text.contains("obzenflow_runtime::journal"), "{text}");
}
