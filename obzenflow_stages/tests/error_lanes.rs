//! Error lanes as edges: a stage's error lane feeds a dead-letter file or a repairing
//! transform in the same run, with its own end-of-stream marker and edge contract.

mod support;

use obzenflow_runtime::journal::inspect;
use obzenflow_runtime::pipeline::{Finding, Outcome};
use obzenflow_stages::prelude::*;
use serde::{Deserialize, Serialize};
use support::temp_file;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Order {
    id: u64,
    cents: i64,
}

impl TypedPayload for Order {
    const EVENT_TYPE: &'static str = "order";
}

/// Three good orders, one row the CSV decoder refuses (line 4) and one the validator does
/// (a negative amount, line 6).
const ORDERS: &str = "id,cents\n1,100\n2,250\nthree,300\n4,400\n5,-50\n";

fn validate() -> impl TransformHandler {
    typed::try_map(|order: Order| {
        if order.cents < 0 {
            return Err(RecordError::validation(format!(
                "order {} has a negative amount",
                order.id
            )));
        }
        Ok(order)
    })
}

fn dead_letters(path: &std::path::Path) -> Vec<DeadLetter> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[tokio::test]
async fn error_lanes_feed_a_dead_letter_file_naming_stage_kind_message_and_payload() {
    let (dir, input) = temp_file("orders.csv", ORDERS.as_bytes());
    let out = CollectSink::new();
    let rejected = dir.path().join("rejected.jsonl");

    let mut flow = FlowBuilder::new("orders");
    let rows = flow.add_async_source("rows", CsvSource::typed::<Order>(&input));
    let valid = flow.add_transform("validate", validate(), &rows);
    flow.add_sink("out", out.clone(), &valid);
    let dead = flow.add_sink(
        "dead_letters",
        DeadLetterSink::new(&rejected),
        [rows.errors(), valid.errors()],
    );
    let report = flow
        .journals(Journals::disk(dir.path().join("runs")))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();

    assert_eq!(
        report.outcome(),
        Outcome::CompletedWithErrors { errored: 2 },
        "{report}"
    );
    assert!(report.is_success(), "{report}");
    assert_eq!(out.len(), 3);
    assert_eq!(report.stage(&dead).unwrap().records_in, 2);
    let letters = dead_letters(&rejected);
    assert_eq!(letters.len(), 2, "{letters:?}");
    let by_stage = |stage: &str| letters.iter().find(|letter| letter.stage == stage).unwrap();
    let decode = by_stage("rows");
    assert_eq!(decode.kind, "decode");
    assert!(decode.message.contains("orders.csv:4"), "{decode:?}");
    assert!(
        decode
            .origin
            .as_deref()
            .is_some_and(|origin| origin.ends_with("orders.csv:4")),
        "{decode:?}"
    );
    let invalid = by_stage("validate");
    // Rejected a stage after the source, it still names the line it was read from.
    assert!(
        invalid
            .origin
            .as_deref()
            .is_some_and(|origin| origin.ends_with("orders.csv:6")),
        "{invalid:?}"
    );
    assert_eq!(invalid.kind, "validation");
    assert_eq!(invalid.message, "order 5 has a negative amount");
    assert_eq!(invalid.event_type, "order");
    assert_eq!(invalid.payload, serde_json::json!({"id": 5, "cents": -50}));
    assert!(invalid.correlation_id.is_some());

    // The error lanes end with their own end-of-stream markers, and the run reads clean.
    let run = report.run_dir.as_ref().unwrap();
    let lane = inspect::read_journal(run, "validate", obzenflow_core::Lane::Error).unwrap();
    let lane: Vec<ChainEvent> = lane.map(Result::unwrap).collect();
    assert_eq!(lane.last().unwrap().end_of_stream_count(), Some(1));
    assert!(inspect::validate_run(run).unwrap().is_clean());
}

#[tokio::test]
async fn a_repairing_transform_on_an_error_lane_redrives_records_into_the_main_sink() {
    let (dir, input) = temp_file("orders.csv", ORDERS.as_bytes());
    let out = CollectSink::new();

    let mut flow = FlowBuilder::new("redrive");
    let rows = flow.add_async_source("rows", CsvSource::typed::<Order>(&input));
    let valid = flow.add_transform("validate", validate(), &rows);
    // Repair: a negative amount is a refund sign error; the repaired order goes on.
    let repaired = flow.add_transform(
        "repair",
        typed::map(|order: Order| Order {
            cents: order.cents.abs(),
            ..order
        }),
        valid.errors(),
    );
    flow.add_sink("out", out.clone(), [&valid, &repaired]);
    let report = flow
        .journals(Journals::disk(dir.path().join("runs")))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();

    assert!(report.is_success(), "{report}");
    let mut orders: Vec<Order> = out.decode().unwrap();
    orders.sort_by_key(|order| order.id);
    assert_eq!(
        orders.iter().map(|order| order.id).collect::<Vec<_>>(),
        [1, 2, 4, 5]
    );
    assert_eq!(orders[3].cents, 50);
    assert_eq!(report.stage("repair").unwrap().records_out, 1);
    assert!(inspect::validate_run(report.run_dir.as_ref().unwrap())
        .unwrap()
        .is_clean());
}

#[tokio::test]
async fn a_dead_letter_sink_that_receives_nothing_is_a_clean_run_not_a_finding() {
    let out = CollectSink::new();
    let orders = (1..=3).map(|id| Order { id, cents: 10 });
    let mut flow = FlowBuilder::new("clean");
    let rows = flow.add_source("rows", IterSource::from_payloads(orders));
    let valid = flow.add_transform("validate", validate(), &rows);
    flow.add_sink("out", out.clone(), &valid);
    flow.add_sink(
        "dead_letters",
        CollectSink::new(),
        [rows.errors(), valid.errors()],
    );
    let report = flow
        .journals(Journals::memory())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome(), Outcome::Completed, "{report}");
    assert!(report.findings.is_empty(), "{report}");
    assert_eq!(out.len(), 3);
}

#[tokio::test]
async fn a_dead_letter_sink_wired_to_a_data_edge_refuses_every_record_and_the_run_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let orders = (1..=3).map(|id| Order { id, cents: 10 });
    let mut flow = FlowBuilder::new("mis-wired");
    let rows = flow.add_source("rows", IterSource::from_payloads(orders));
    flow.add_sink(
        "dead_letters",
        DeadLetterSink::new(dir.path().join("dead.jsonl")),
        &rows,
    );
    let report = flow
        .journals(Journals::memory())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert!(!report.is_success(), "{report}");
    assert!(
        matches!(
            report.findings.first(),
            Some(Finding::RejectedEverything { stage, records_errored: 3, .. })
                if stage == "dead_letters"
        ),
        "{report}"
    );
    let text = report.to_string();
    assert!(text.contains("dead_letters"), "{text}");
}

/// A sink that cannot deliver orders with an odd id.
struct EvenOnly;

impl SinkHandler for EvenOnly {
    fn consume(&mut self, event: &ChainEvent) -> Result<(), RecordError> {
        let order =
            Order::from_event(event).map_err(|error| RecordError::decode(error.to_string()))?;
        if order.id % 2 == 1 {
            return Err(RecordError::new(
                ErrorKind::Remote,
                format!("order {} refused by the warehouse", order.id),
            ));
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_sinks_error_lane_can_feed_a_dead_letter_sink() {
    let orders = (1..=4).map(|id| Order { id, cents: 10 });
    let dead = CollectSink::new();
    let mut flow = FlowBuilder::new("sink-errors");
    let rows = flow.add_source("rows", IterSource::from_payloads(orders));
    let warehouse = flow.add_sink("warehouse", EvenOnly, &rows);
    flow.add_sink("dead_letters", dead.clone(), warehouse.errors());
    let report = flow
        .journals(Journals::memory())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert!(report.is_success(), "{report}");
    let refused: Vec<Order> = dead.decode().unwrap();
    assert_eq!(
        refused.iter().map(|order| order.id).collect::<Vec<_>>(),
        [1, 3]
    );
    assert!(dead.events().iter().all(ChainEvent::is_error));
}

#[test]
fn error_lane_wiring_mistakes_are_refused_at_build_naming_the_edge() {
    let mut flow = FlowBuilder::new("cycle");
    let rows = flow.add_source("rows", IterSource::from_payloads(Vec::<Order>::new()));
    let valid = flow.add_transform("validate", validate(), [rows.errors()]);
    flow.add_sink("out", CollectSink::new(), &valid);
    // `rows` has no data output: its error lane alone does not carry its records on.
    let error = flow.journals(Journals::memory()).build().unwrap_err();
    assert_eq!(
        ErrorChain::new(&error).to_string(),
        "invalid flow graph: source `rows` has no output: connect it to a downstream stage"
    );

    let mut flow = FlowBuilder::new("zero");
    let rows = flow.add_source("rows", IterSource::from_payloads(Vec::<Order>::new()));
    flow.add_sink("out", CollectSink::new(), &rows);
    flow.add_sink("dead", CollectSink::new(), rows.errors().with_window(0));
    let error =
        ErrorChain::new(&flow.journals(Journals::memory()).build().unwrap_err()).to_string();
    assert!(error.contains("edge rows.errors -> dead"), "{error}");
}

/// The dead-letter flow over `input`, writing rejected records to `rejected`.
fn dead_letter_flow(input: &std::path::Path, rejected: &std::path::Path) -> FlowBuilder {
    let mut flow = FlowBuilder::new("orders");
    let rows = flow.add_async_source("rows", CsvSource::typed::<Order>(input));
    let valid = flow.add_transform("validate", validate(), &rows);
    flow.add_sink("out", CollectSink::new(), &valid);
    flow.add_sink(
        "dead_letters",
        DeadLetterSink::new(rejected),
        [rows.errors(), valid.errors()],
    );
    flow
}

#[tokio::test]
async fn a_replay_re_feeds_the_archived_error_lanes_and_verifies_with_no_differences() {
    let (dir, input) = temp_file("orders.csv", ORDERS.as_bytes());
    let rejected = dir.path().join("rejected.jsonl");
    let runs = dir.path().join("runs");
    let original = dead_letter_flow(&input, &rejected)
        .journals(Journals::disk(&runs))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert!(original.is_success(), "{original}");
    let original_dir = original.run_dir.clone().unwrap();

    // The input is gone: the replay reads the archived source journals, error lane included.
    std::fs::remove_file(&input).unwrap();
    let replay = dead_letter_flow(&input, &rejected)
        .journals(Journals::disk(&runs))
        .replay_from(&original_dir)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert!(replay.is_success(), "{replay}");
    assert_eq!(replay.stage("dead_letters").unwrap().records_in, 2);
    let verdict =
        obzenflow_runtime::replay::verify(&original_dir, replay.run_dir.as_ref().unwrap()).unwrap();
    assert!(verdict.is_identical(), "{verdict}");
    let moved = dir
        .path()
        .join("replays")
        .join(replay.run_id.to_string())
        .join("rejected.jsonl");
    assert_eq!(dead_letters(&moved).len(), 2);
}

#[tokio::test]
async fn on_memory_journals_an_error_lane_record_keeps_the_source_line_it_was_read_from() {
    let (_dir, input) = temp_file("orders.csv", ORDERS.as_bytes());
    let dead = CollectSink::new();
    let mut flow = FlowBuilder::new("orders");
    let rows = flow.add_async_source("rows", CsvSource::typed::<Order>(&input));
    let valid = flow.add_transform("validate", validate(), &rows);
    flow.add_sink("out", CollectSink::new(), &valid);
    flow.add_sink("dead_letters", dead.clone(), valid.errors());
    let report = flow
        .journals(Journals::memory())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert!(report.is_success(), "{report}");
    let rejected = dead.events();
    assert_eq!(rejected.len(), 1);
    let origin = rejected[0].origin().expect("a source position");
    assert_eq!(
        (origin.file.as_ref(), origin.line),
        (input.to_str().unwrap(), 6)
    );
}
