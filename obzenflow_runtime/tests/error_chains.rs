//! Every error prints each cause once: a message says what failed in its own words and leaves
//! its cause to `source`, so `ErrorChain` (and any reporter that walks `source`, such as the
//! tracing subscriber's `error.sources`) shows each cause exactly once.
//!
//! One error of every kind that has a source, across the crates, wrapped the way the runtime
//! wraps them, walked link by link.

mod support;

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;

use obzenflow_core::event::FieldError;
use obzenflow_core::value::{encode_serialize, KeyTable, ValueEncodeError};
use obzenflow_core::{
    ChainEvent, ErrorChain, EventId, JournalError, JournalId, Lane, PayloadError, StageId,
    TypedPayload, WriterId,
};
use obzenflow_fsm::{ActionError, FsmError};
use obzenflow_runtime::journal::codec::BatchEncodeError;
use obzenflow_runtime::journal::{FrameError, RunDirError};
use obzenflow_runtime::pipeline::{FlowError, FlowFailure, GraphError};
use obzenflow_runtime::replay::{ReplayError, Side, VerifyError};
use obzenflow_runtime::stages::{HandlerFailure, RecordError, StageError};
use obzenflow_runtime::supervised_base::{FailedStep, SupervisionError, SupervisorFailure};
use support::assert_each_cause_once;

fn denied() -> io::Error {
    io::Error::from(io::ErrorKind::PermissionDenied)
}

fn segment() -> PathBuf {
    PathBuf::from("runs/run_a/stages/parse/data/00000000000000000000.seg")
}

fn journal() -> JournalId {
    JournalId::new(WriterId::Stage(StageId::new()), "parse", Lane::Data)
}

fn journal_io() -> JournalError {
    JournalError::Io {
        journal: journal(),
        operation: "append to",
        path: segment(),
        source: denied(),
    }
}

fn value_encode_error() -> ValueEncodeError {
    let map = BTreeMap::from([(vec![1u8], 1u8)]);
    encode_serialize(&map, &mut KeyTable::new(), &mut Vec::new()).unwrap_err()
}

fn json_error() -> serde_json::Error {
    serde_json::from_str::<serde_json::Value>("{not json").unwrap_err()
}

fn run_dir_journal() -> Box<RunDirError> {
    Box::new(RunDirError::Journal {
        path: PathBuf::from("runs/run_a/stages/parse/data"),
        source: journal_io(),
    })
}

/// An order, for payload errors.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Order {
    id: u64,
}

impl TypedPayload for Order {
    const EVENT_TYPE: &'static str = "order";
}

#[test]
fn core_errors_print_each_cause_once() {
    let payload = ChainEvent::data("order", serde_json::json!({"id": "not a number"}));
    let decode: PayloadError = Order::from_event(&payload).unwrap_err();
    assert!(matches!(decode, PayloadError::Decode { .. }), "{decode:?}");
    let encode = PayloadError::Encode {
        event_type: "order",
        source: json_error(),
    };
    let errors: Vec<Box<dyn std::error::Error>> = vec![
        Box::new(journal_io()),
        Box::new(JournalError::Encode {
            journal: journal(),
            event_id: EventId::new(),
            source: value_encode_error(),
        }),
        Box::new(decode),
        Box::new(encode),
        Box::new(FieldError::Unrepresentable(json_error())),
    ];
    for error in &errors {
        assert_each_cause_once(error.as_ref());
    }
    assert_eq!(
        ErrorChain::new(&journal_io()).to_string(),
        format!(
            "journal parse.data: cannot append to {}: permission denied",
            segment().display()
        )
    );
}

#[test]
fn fsm_and_supervision_errors_print_each_cause_once() {
    let action = FsmError::Action {
        action: "flush",
        source: ActionError::new(journal_io()),
    };
    assert_each_cause_once(&action);
    let failure = SupervisorFailure::new(FailedStep::Action("flush"), "running", journal_io());
    assert_each_cause_once(&failure);
    let terminal = SupervisionError::FailedInTerminalState {
        supervisor: "parse".to_owned(),
        state: "drained",
        failure: failure.clone(),
    };
    assert_each_cause_once(&terminal);
    assert_eq!(
        ErrorChain::new(&terminal).to_string(),
        format!(
            "supervisor `parse` failed in its terminal state `drained`: action `flush` failed \
             in state `running`: journal parse.data: cannot append to {}: permission denied",
            segment().display()
        )
    );
    let completion = SupervisionError::Completion {
        supervisor: "parse".to_owned(),
        state: "drained",
        source: Box::new(journal_io()),
    };
    assert_each_cause_once(&completion);
    let flow = FlowFailure::Supervisor(failure);
    assert_each_cause_once(&flow);
    assert!(flow.downcast_ref::<io::Error>().is_some());
}

#[test]
fn journal_and_run_directory_errors_print_each_cause_once() {
    let errors: Vec<Box<dyn std::error::Error>> = vec![
        Box::new(FrameError::Io {
            path: segment(),
            offset: 64,
            source: denied(),
        }),
        Box::new(RunDirError::Io {
            operation: "create",
            path: PathBuf::from("runs/run_a"),
            source: denied(),
        }),
        Box::new(RunDirError::ManifestInvalid {
            path: PathBuf::from("runs/run_a/manifest.json"),
            source: json_error(),
        }),
        run_dir_journal(),
        Box::new(BatchEncodeError {
            event_id: EventId::new(),
            source: value_encode_error(),
        }),
    ];
    for error in &errors {
        assert_each_cause_once(error.as_ref());
    }
}

#[test]
fn stage_replay_and_flow_errors_print_each_cause_once() {
    let errors: Vec<Box<dyn std::error::Error>> = vec![
        Box::new(StageError::Journal {
            stage: "parse".to_owned(),
            source: journal_io(),
        }),
        Box::new(StageError::Handler {
            stage: "parse".to_owned(),
            message: "cannot open the orders".to_owned(),
            source: Some(Box::new(denied())),
        }),
        Box::new(HandlerFailure::with_source(
            "cannot open the orders",
            denied(),
        )),
        Box::new(ReplayError::Archive {
            run_dir: PathBuf::from("runs/run_a"),
            source: run_dir_journal(),
        }),
        Box::new(ReplayError::ArchiveRead {
            stage: "parse".to_owned(),
            lane: Lane::Data,
            run_dir: PathBuf::from("runs/run_a"),
            source: run_dir_journal(),
        }),
        Box::new(VerifyError::Run {
            side: Side::Baseline,
            run_dir: PathBuf::from("runs/run_a"),
            source: run_dir_journal(),
        }),
        Box::new(VerifyError::Journal {
            side: Side::Candidate,
            stage: "parse".to_owned(),
            lane: Lane::Data,
            source: run_dir_journal(),
        }),
        Box::new(FlowError::Graph(GraphError::DuplicateStage {
            name: "parse".to_owned(),
        })),
        Box::new(FlowError::RunDir(*run_dir_journal())),
        Box::new(FlowError::Replay(ReplayError::Archive {
            run_dir: PathBuf::from("runs/run_a"),
            source: run_dir_journal(),
        })),
        Box::new(FlowError::Journal(journal_io())),
        Box::new(FlowError::Supervision(SupervisionError::Completion {
            supervisor: "orders".to_owned(),
            state: "drained",
            source: Box::new(journal_io()),
        })),
        Box::new(FlowError::WorkerJoin {
            run_id: obzenflow_core::RunId::new(),
            source: Box::new(journal_io()),
        }),
        Box::new(FlowError::WorkerInput {
            stage: "parse".to_owned(),
            journal: journal(),
            source: Box::new(journal_io()),
        }),
        Box::new(FlowError::WorkerOutput {
            stage: "sink".to_owned(),
            journal: journal(),
            source: Box::new(journal_io()),
        }),
    ];
    for error in &errors {
        assert_each_cause_once(error.as_ref());
    }
    // A record error is text on the error lane: it keeps the chain of what it came from.
    let payload = ChainEvent::data("order", serde_json::json!({"id": "not a number"}));
    let record = RecordError::from(Order::from_event(&payload).unwrap_err());
    assert!(
        record
            .message
            .starts_with("cannot decode `order` payload: invalid type"),
        "{record}"
    );
}

#[cfg(feature = "cli")]
#[test]
fn cli_errors_print_each_cause_once() {
    use obzenflow_runtime::cli::CliError;
    assert_each_cause_once(&CliError::Json(json_error()));
    assert_each_cause_once(&CliError::Output(denied()));
    assert_each_cause_once(&CliError::RunDir(*run_dir_journal()));
}

/// The helper itself catches an error that prints its source in its message.
#[test]
fn a_message_that_prints_its_source_is_caught() {
    #[derive(Debug, thiserror::Error)]
    #[error("cannot open the orders: {source}")]
    struct PrintsItsSource {
        source: io::Error,
    }
    let caught = std::panic::catch_unwind(|| {
        assert_each_cause_once(&PrintsItsSource { source: denied() });
    });
    assert!(
        caught.is_err(),
        "the helper must refuse a cause printed twice"
    );
}
