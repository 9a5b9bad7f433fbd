//! Multi-input stages: which input each record came from, per-input order, each input's end
//! after its records, "hydrate first" read policies, wiring checks naming the stage and input,
//! the filtered count per input role, the state gauge in the report, and handlers that work a
//! run of records at a time.

mod support;

use std::sync::{Arc, Mutex};

use obzenflow_core::{ChainEvent, Record};
use obzenflow_runtime::pipeline::{FlowBuilder, FlowError, GraphError, Journals};
use obzenflow_runtime::stages::{
    HandlerFailure, InputSpec, MultiInputHandler, ReadPolicy, RecordError, RunOutputs, StageConfig,
    StateSize,
};
use support::{Collect, Numbers};

/// What the handler saw, in the order it saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Record { input: usize, n: u64 },
    Ended { input: usize },
}

/// Records what it sees; input 0 is state (kept, nothing emitted), input 1 a stream whose even
/// records pass.
struct Recorder {
    seen: Arc<Mutex<Vec<Seen>>>,
    policy: ReadPolicy,
    held: u64,
}

impl Recorder {
    fn new(policy: ReadPolicy) -> (Self, Arc<Mutex<Vec<Seen>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorder = Self {
            seen: seen.clone(),
            policy,
            held: 0,
        };
        (recorder, seen)
    }
}

impl MultiInputHandler for Recorder {
    fn inputs(&self) -> Vec<InputSpec> {
        vec![InputSpec::state("table"), InputSpec::stream("stream")]
    }

    fn read_policy(&self) -> ReadPolicy {
        self.policy.clone()
    }

    fn process_into(
        &mut self,
        input: usize,
        event: &ChainEvent,
        out: &mut Vec<ChainEvent>,
    ) -> Result<(), RecordError> {
        let n = event.field("n").and_then(|n| n.as_u64()).ok_or("no n")?;
        self.seen.lock().unwrap().push(Seen::Record { input, n });
        if input == 0 {
            self.held += 1;
        } else if n % 2 == 0 {
            out.push(event.clone());
        }
        Ok(())
    }

    fn input_ended(
        &mut self,
        input: usize,
        _out: &mut Vec<ChainEvent>,
    ) -> Result<(), HandlerFailure> {
        self.seen.lock().unwrap().push(Seen::Ended { input });
        Ok(())
    }

    fn state_size(&self) -> Option<StateSize> {
        Some(StateSize::new(self.held, self.held))
    }
}

/// A flow `table` (n records) and `stream` (m records) into the recorder, then a collector;
/// small batches so that the inputs interleave over many batches.
fn flow(recorder: Recorder, table: u64, stream: u64, sink: Collect) -> FlowBuilder {
    FlowBuilder::new("multi")
        .source("table", Numbers::new("table", table))
        .source("stream", Numbers::new("stream", stream))
        .join("join", recorder, "table", "stream")
        .sink("out", sink)
        .edge("join", "out")
        .configure(
            "join",
            StageConfig {
                batch_limit: 7,
                ..StageConfig::default()
            },
        )
        .journals(Journals::memory())
}

/// Per input: its records in order `0..count`, then exactly one end, nothing after it.
fn assert_per_input_order(seen: &[Seen], input: usize, count: u64) {
    let mut next = 0;
    let mut ended = false;
    for event in seen {
        match *event {
            Seen::Record { input: from, n } if from == input => {
                assert!(!ended, "input {input}: record {n} after its end");
                assert_eq!(n, next, "input {input}: records out of journal order");
                next += 1;
            }
            Seen::Ended { input: from } if from == input => {
                assert!(!ended, "input {input} ended twice");
                ended = true;
            }
            _ => {}
        }
    }
    assert_eq!(next, count, "input {input}: every record seen");
    assert!(ended, "input {input}: its end was delivered");
}

#[tokio::test]
async fn each_record_comes_with_its_input_in_journal_order_and_each_end_after_its_records() {
    let (recorder, seen) = Recorder::new(ReadPolicy::interleaved());
    let sink = Collect::default();
    let report = flow(recorder, 300, 500, sink.clone())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert!(report.is_success(), "{report}");
    let seen = seen.lock().unwrap().clone();
    assert_per_input_order(&seen, 0, 300);
    assert_per_input_order(&seen, 1, 500);
    // The stream's even records pass; its odd ones are filtered; the table's are held, which
    // is not filtering.
    let join = report.stage("join").unwrap();
    assert_eq!(join.kind.as_str(), "join");
    assert_eq!(join.records_in, 800);
    assert_eq!(join.records_out, 250);
    assert_eq!(join.records_filtered, 250);
    assert_eq!(sink.records().len(), 250);
    let gauge = join.state_size.expect("the join reports its state");
    assert_eq!(gauge.current, StateSize::new(300, 300));
    assert_eq!(gauge.peak, StateSize::new(300, 300));
    assert!(
        report
            .to_string()
            .contains("state held by `join`: 300 keys"),
        "{report}"
    );
    let prometheus = report.prometheus();
    assert!(
        prometheus.contains("# TYPE obzenflow_stage_state_keys gauge"),
        "{prometheus}"
    );
    assert!(
        prometheus.contains(
            "obzenflow_stage_state_records{flow=\"multi\",stage=\"join\",stage_kind=\"join\"} 300"
        ),
        "{prometheus}"
    );
}

#[tokio::test]
async fn hydrate_first_hands_over_the_whole_table_and_its_end_before_any_stream_record() {
    let (recorder, seen) = Recorder::new(ReadPolicy::hydrate_first([0]));
    let report = flow(recorder, 400, 400, Collect::default())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert!(report.is_success(), "{report}");
    let seen = seen.lock().unwrap().clone();
    assert_per_input_order(&seen, 0, 400);
    assert_per_input_order(&seen, 1, 400);
    let table_end = seen
        .iter()
        .position(|event| *event == Seen::Ended { input: 0 })
        .unwrap();
    let first_stream = seen
        .iter()
        .position(|event| matches!(event, Seen::Record { input: 1, .. }))
        .unwrap();
    assert_eq!(table_end, 400, "the table's 400 records, then its end");
    assert!(table_end < first_stream);
}

#[tokio::test]
async fn hydrate_first_with_an_empty_table_still_reads_the_stream() {
    let (recorder, seen) = Recorder::new(ReadPolicy::hydrate_first([0]));
    let report = flow(recorder, 0, 10, Collect::default())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert!(report.is_success(), "{report}");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[0], Seen::Ended { input: 0 });
    assert_per_input_order(&seen, 1, 10);
}

#[test]
fn a_join_missing_an_input_is_refused_naming_the_stage_and_the_input() {
    let (recorder, _) = Recorder::new(ReadPolicy::interleaved());
    let error = FlowBuilder::new("multi")
        .source("table", Numbers::new("table", 1))
        .multi_input("join", recorder)
        .sink("out", Collect::default())
        .edge("table", "join")
        .edge("join", "out")
        .journals(Journals::memory())
        .build()
        .unwrap_err();
    let FlowError::Graph(graph) = &error else {
        panic!("expected a graph error, got {error}");
    };
    assert!(matches!(
        graph,
        GraphError::MissingInput { stage, input, index: 1, .. } if stage == "join" && input == "stream"
    ));
    assert_eq!(
        graph.to_string(),
        "join `join` has no edge for its input `stream` (input 1 of table, stream); declare one \
         edge per input, in order"
    );
}

#[test]
fn a_join_with_an_edge_too_many_is_refused_naming_the_edge() {
    let (recorder, _) = Recorder::new(ReadPolicy::interleaved());
    let error = FlowBuilder::new("multi")
        .source("table", Numbers::new("table", 1))
        .source("stream", Numbers::new("stream", 1))
        .source("third", Numbers::new("third", 1))
        .join("join", recorder, "table", "stream")
        .edge("third", "join")
        .sink("out", Collect::default())
        .edge("join", "out")
        .journals(Journals::memory())
        .build()
        .unwrap_err();
    assert!(
        matches!(&error, FlowError::Graph(GraphError::ExtraInput { stage, from, .. }) if stage == "join" && from == "third"),
        "{error}"
    );
}

/// A table and a stream that both come from one source would hang under hydrate first: the
/// held-back stream's branch stops reading the source once its window fills, so the table never
/// ends. `build()` refuses it, naming the stage, both inputs and the shared upstream.
#[test]
fn hydrating_an_input_that_shares_an_upstream_with_a_held_back_one_is_refused() {
    let (recorder, _) = Recorder::new(ReadPolicy::hydrate_first([0]));
    let error = FlowBuilder::new("multi")
        .source("numbers", Numbers::new("numbers", 1))
        .transform("evens", support::Double { fail_every: None })
        .transform("odds", support::Double { fail_every: None })
        .edge("numbers", "evens")
        .edge("numbers", "odds")
        .join("join", recorder, "evens", "odds")
        .sink("out", Collect::default())
        .edge("join", "out")
        .journals(Journals::memory())
        .build()
        .unwrap_err();
    let FlowError::Graph(graph) = &error else {
        panic!("expected a graph error, got {error}");
    };
    assert!(
        matches!(
            graph,
            GraphError::HydrationDeadlock { stage, first, held_back, shared }
                if stage == "join" && first == "table" && held_back == "stream" && shared == "numbers"
        ),
        "{graph}"
    );
    // Read live, the same graph is fine.
    let (recorder, _) = Recorder::new(ReadPolicy::interleaved());
    let built = FlowBuilder::new("multi")
        .source("numbers", Numbers::new("numbers", 1))
        .transform("evens", support::Double { fail_every: None })
        .transform("odds", support::Double { fail_every: None })
        .edge("numbers", "evens")
        .edge("numbers", "odds")
        .join("join", recorder, "evens", "odds")
        .sink("out", Collect::default())
        .edge("join", "out")
        .journals(Journals::memory())
        .build();
    assert!(built.is_ok());
}

/// Works a run at a time: each stream record pushed twice, records whose `n` is a multiple of
/// three ended with an error, a stray output after each run's last record; `ends_too_few`
/// leaves the last record of each run without an end.
struct Runs {
    ends_too_few: bool,
}

impl MultiInputHandler for Runs {
    fn inputs(&self) -> Vec<InputSpec> {
        vec![InputSpec::state("table"), InputSpec::stream("stream")]
    }

    fn process_into(
        &mut self,
        _input: usize,
        _event: &ChainEvent,
        _out: &mut Vec<ChainEvent>,
    ) -> Result<(), RecordError> {
        unreachable!("every record goes through process_run")
    }

    fn process_run(&mut self, input: usize, events: &[Record], out: &mut RunOutputs<'_>) {
        let ended = events.len() - usize::from(self.ends_too_few);
        for event in &events[..ended] {
            if input == 0 {
                out.finish(Ok(()));
                continue;
            }
            out.push(event.event().clone());
            out.push(event.event().clone());
            let n = event.field("n").and_then(|n| n.as_u64()).unwrap();
            out.finish(if n % 3 == 0 {
                Err(RecordError::validation(format!(
                    "{n} is a multiple of three"
                )))
            } else {
                Ok(())
            });
        }
        out.push(events[0].event().clone());
    }
}

#[tokio::test]
async fn a_handler_working_a_run_at_a_time_emits_each_records_outputs_and_drops_the_rest() {
    let sink = Collect::default();
    let report = FlowBuilder::new("runs")
        .source("table", Numbers::new("table", 20))
        .source("stream", Numbers::new("stream", 30))
        .join(
            "join",
            Runs {
                ends_too_few: false,
            },
            "table",
            "stream",
        )
        .sink("out", sink.clone())
        .edge("join", "out")
        .configure(
            "join",
            StageConfig {
                batch_limit: 7,
                ..StageConfig::default()
            },
        )
        .journals(Journals::memory())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    let join = report.stage("join").unwrap();
    // 0, 3, ..., 27: ten records on the error lane, their outputs dropped; the other twenty
    // twice each; nothing pushed after a run's last record.
    assert_eq!(join.records_errored, 10, "{report}");
    assert_eq!(join.records_out, 40, "{report}");
    let mut numbers: Vec<u64> = sink.numbers().into_iter().map(|(_, n)| n).collect();
    numbers.sort_unstable();
    let expected: Vec<u64> = (0..30)
        .filter(|n| n % 3 != 0)
        .flat_map(|n| [n, n])
        .collect();
    assert_eq!(numbers, expected);
}

#[tokio::test]
async fn a_run_whose_records_are_not_each_ended_fails_the_stage_naming_the_count() {
    let report = FlowBuilder::new("runs")
        .source("table", Numbers::new("table", 0))
        .source("stream", Numbers::new("stream", 5))
        .join("join", Runs { ends_too_few: true }, "table", "stream")
        .sink("out", Collect::default())
        .edge("join", "out")
        .journals(Journals::memory())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    let failure = report.failure().expect("the miscount fails the flow");
    let stage = failure.stage_failure().expect("a stage failed");
    assert_eq!(stage.stage(), "join");
    let message = stage.cause().to_string();
    assert!(
        message.contains("handler ended 4 records of a run of 5 records of input 1"),
        "{message}"
    );
}
