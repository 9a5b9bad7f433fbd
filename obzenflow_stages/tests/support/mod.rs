//! Helpers shared by the stage tests: temp files, flows on memory journals, error-lane
//! reasons.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};

use obzenflow_core::{ChainEvent, ErrorChain, ProcessingStatus, TypedPayload};
use obzenflow_runtime::pipeline::{FlowReport, FlowState};
use obzenflow_runtime::stages::{
    AsyncSourceHandler, HandlerFailure, SourcePoll, StageFailure, StageState,
};
use serde::{Deserialize, Serialize};

/// The order type the file tests decode into.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: u64,
    pub customer: String,
    pub amount: f64,
}

impl TypedPayload for Order {
    const EVENT_TYPE: &'static str = "order";
}

/// Writes `contents` to `name` in a fresh temporary directory.
pub fn temp_file(name: &str, contents: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, contents).unwrap();
    (dir, path)
}

thread_local! {
    /// The runtime on which a synchronous test drives a source's calls.
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
}

/// A source's calls made from a synchronous test: each is driven to its end on a
/// current-thread runtime (a regular file's calls never wait).
pub trait Blocking {
    /// `initialize`, to its end.
    fn initialize_blocking(&mut self) -> Result<(), HandlerFailure>;
    /// `next_batch(max)`, to its end.
    fn next_batch_blocking(&mut self, max: usize) -> Result<SourcePoll, HandlerFailure>;
}

impl<S: AsyncSourceHandler> Blocking for S {
    fn initialize_blocking(&mut self) -> Result<(), HandlerFailure> {
        RUNTIME.with(|runtime| runtime.block_on(self.initialize()))
    }

    fn next_batch_blocking(&mut self, max: usize) -> Result<SourcePoll, HandlerFailure> {
        RUNTIME.with(|runtime| runtime.block_on(self.next_batch(max)))
    }
}

/// Runs a source handler to exhaustion outside a flow. A file source may return an empty
/// batch (its byte budget spent skipping a long line) before it is done.
pub fn drain_source(source: &mut impl AsyncSourceHandler, max: usize) -> Vec<ChainEvent> {
    source.initialize_blocking().unwrap();
    let mut records = Vec::new();
    while let SourcePoll::Records(batch) = source.next_batch_blocking(max).unwrap() {
        assert!(batch.len() <= max);
        records.extend(batch);
    }
    records
}

/// The error message of an error-status record.
pub fn error_message(event: &ChainEvent) -> String {
    match &event.processing_info.status {
        ProcessingStatus::Error { message, .. } => message.clone(),
        other => panic!("expected an error record, got {other:?}"),
    }
}

/// Asserts the flow and every stage drained.
pub fn assert_drained(report: &FlowReport) {
    assert_eq!(report.state, FlowState::Drained, "{report}");
    for stage in &report.stages {
        assert_eq!(stage.state, StageState::Drained, "{report}");
    }
}

/// The failure of the stage named `name`.
pub fn stage_failure<'a>(report: &'a FlowReport, name: &str) -> &'a StageFailure {
    match &report.stage(name).unwrap().state {
        StageState::Failed { failure } => failure,
        other => panic!("stage {name} did not fail: {other:?}\n{report}"),
    }
}

/// The failure reason of the stage named `name`, as people read it: the failure's chain,
/// each cause once, which is also what its terminal lifecycle record holds.
pub fn failure_reason(report: &FlowReport, name: &str) -> String {
    let failure = stage_failure(report, name);
    assert_each_cause_once(failure);
    ErrorChain::new(failure).to_string()
}

/// An error as people read it: its chain, after checking that it prints each cause once.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    assert_each_cause_once(error);
    ErrorChain::new(error).to_string()
}

/// Asserts that `error`'s chain, printed link by link as `ErrorChain` prints it, shows each
/// cause once: no link's message contains the message of a link after it.
pub fn assert_each_cause_once(error: &(dyn std::error::Error + 'static)) {
    let links: Vec<String> = ErrorChain::new(error)
        .links()
        .map(|link| link.to_string())
        .collect();
    for (index, link) in links.iter().enumerate() {
        for later in links[index + 1..].iter().filter(|later| !later.is_empty()) {
            assert!(
                !link.contains(later.as_str()),
                "`{link}` prints its cause `{later}` as well; the chain: {links:#?}"
            );
        }
    }
}

/// The display form of a path, as error messages print it.
pub fn shown(path: &Path) -> String {
    path.display().to_string()
}
