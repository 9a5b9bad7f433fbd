//! Records carry their source position (file and line) from a file source through every later
//! stage: the file sources place each record, good or bad, at the line it starts on, and an
//! error raised stages later still names it, on memory and on disk journals (read back from
//! the run directory, through forwarded records).

mod support;

use std::path::Path;

use obzenflow_core::{ChainEvent, Lane, SourcePosition};
use obzenflow_runtime::journal::inspect;
use obzenflow_runtime::pipeline::{FlowBuilder, FlowReport, Journals};
use obzenflow_runtime::stages::RecordError;
use obzenflow_stages::sinks::CollectSink;
use obzenflow_stages::sources::{CsvSource, IterSource, JsonLinesSource};
use obzenflow_stages::transforms::{async_map, map, typed, AsyncMapConfig};
use serde_json::json;
use support::{assert_drained, drain_source, error_message, shown, temp_file, Order};

/// The lines the records' origins name, checking each names `path` as it was given.
fn origin_lines(records: &[ChainEvent], path: &Path) -> Vec<u64> {
    records
        .iter()
        .map(|record| {
            let origin = record.origin().expect("every record has an origin");
            assert_eq!(
                &*origin.file,
                shown(path),
                "the path as the source was given it"
            );
            origin.line
        })
        .collect()
}

#[test]
fn csv_records_are_placed_at_the_physical_line_their_row_starts_on() {
    // Line 1 the header; a blank line; a quoted field over three lines; `\r\n` and a lone `\r`;
    // a bad row (too few fields); a last row without a line break.
    let csv = b"id,customer,amount\n1,a,1\n\n2,\"b\nb\nb\",2\r\n3,c,3\r4,d\n5,e,5";
    let (_dir, path) = temp_file("orders.csv", csv);
    let records = drain_source(&mut CsvSource::typed::<Order>(&path), 2);
    assert_eq!(origin_lines(&records, &path), [2, 4, 7, 8, 9]);
    // The source's own error keeps naming file and line in its message.
    assert!(records[3].is_error());
    assert_eq!(
        error_message(&records[3]),
        format!("{}:8: expected 3 fields, found 2", shown(&path))
    );
    assert_eq!(
        records[3].origin().unwrap().to_string(),
        format!("{}:8", shown(&path))
    );
}

#[test]
fn jsonl_records_are_placed_at_their_line_blank_lines_counted() {
    let (_dir, path) = temp_file(
        "in.jsonl",
        b"{\"n\":1}\n\n{\"n\": }\r\n{\"n\":4}\n  \n{\"n\":6}",
    );
    let records = drain_source(&mut JsonLinesSource::new(&path, "n"), 10);
    assert_eq!(origin_lines(&records, &path), [1, 3, 4, 6]);
    assert!(records[1].is_error());
    assert!(error_message(&records[1]).starts_with(&format!("{}:3: ", shown(&path))));
}

/// Orders over five physical lines after the header: the second spans two lines, so later
/// rows are numbered by physical line, not by row.
const ORDERS: &[u8] =
    b"id,customer,amount\n1,c1,10.0\n2,\"c\n2\",-5.0\n3,c3,7.5\n4,c4,-1.0\n5,c5,2.0\n";

/// csv -> keep (a filter: its kept records are forwarded as they are) -> check (rejects a
/// negative amount: the third stage) -> collect.
async fn run_orders(path: &Path, journals: Journals) -> (FlowReport, CollectSink) {
    let sink = CollectSink::new();
    let report = FlowBuilder::new("origins")
        .async_source("orders", CsvSource::typed::<Order>(path))
        .transform(
            "keep",
            typed::filter(|order: &Order| order.customer != "c3"),
        )
        .transform(
            "check",
            typed::try_map(|order: Order| {
                if order.amount < 0.0 {
                    return Err(RecordError::validation(format!(
                        "amount {} is negative",
                        order.amount
                    )));
                }
                Ok(order)
            }),
        )
        .sink("collect", sink.clone())
        .chain(["orders", "keep", "check", "collect"])
        .journals(journals)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_drained(&report);
    (report, sink)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_two_stages_after_a_csv_source_names_its_line_on_memory_journals() {
    let (_dir, path) = temp_file("orders.csv", ORDERS);
    let (report, sink) = run_orders(&path, Journals::memory()).await;
    assert_eq!(origin_lines(&sink.events(), &path), [2, 7]);
    let file = shown(&path);
    assert_eq!(
        report.stage("check").unwrap().first_errors,
        [
            format!("validation: amount -5 is negative (from {file}:3)"),
            format!("validation: amount -1 is negative (from {file}:6)"),
        ]
    );
}

/// The data records of `stage`'s `lane` journal in the run of `report`.
fn journal(report: &FlowReport, stage: &str, lane: Lane) -> Vec<ChainEvent> {
    let run_dir = report.run_dir.as_ref().expect("disk journals");
    inspect::read_journal(run_dir, stage, lane)
        .unwrap()
        .map(Result::unwrap)
        .filter(ChainEvent::is_data)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_two_stages_after_a_csv_source_names_its_line_on_disk_journals() {
    let (_dir, path) = temp_file("orders.csv", ORDERS);
    let base = tempfile::tempdir().unwrap();
    let (report, sink) = run_orders(&path, Journals::disk(base.path())).await;
    assert_eq!(origin_lines(&sink.events(), &path), [2, 7]);
    // Read back from the run directory after the run: the source's records, the filter's
    // (forwarded references to them) and the third stage's error lane.
    let source = journal(&report, "orders", Lane::Data);
    assert_eq!(origin_lines(&source, &path), [2, 3, 5, 6, 7]);
    let kept = journal(&report, "keep", Lane::Data);
    assert_eq!(origin_lines(&kept, &path), [2, 3, 6, 7]);
    let rejected = journal(&report, "check", Lane::Error);
    assert_eq!(origin_lines(&rejected, &path), [3, 6]);
    assert_eq!(error_message(&rejected[0]), "amount -5 is negative");
    assert_eq!(
        rejected[1].origin(),
        Some(&SourcePosition::new(shown(&path), 6))
    );
    // `inspect`'s JSON form shows it.
    let run_dir = report.run_dir.as_ref().unwrap();
    let first = inspect::read_journal(run_dir, "check", Lane::Error)
        .unwrap()
        .json()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(first["origin"]["line"], 3, "{first}");
    assert_eq!(first["origin"]["file"], shown(&path).as_str(), "{first}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_record_inherits_its_inputs_origin_unless_its_handler_set_one() {
    let rows: Vec<ChainEvent> = (1..=3u64)
        .map(|n| ChainEvent::data("n", json!(n)).with_origin(SourcePosition::new("in.csv", n + 1)))
        .collect();
    // A record built afresh (not derived) inherits; one the handler placed keeps its own.
    let relabel = map(|event: ChainEvent| {
        let n = event.json().and_then(|value| value.as_u64()).unwrap_or(0);
        match n {
            2 => ChainEvent::data("m", json!(n)).with_origin(SourcePosition::new("lookup.csv", 9)),
            _ => ChainEvent::data("m", json!(n)),
        }
    });
    let later = async_map(
        AsyncMapConfig::with_concurrency(2),
        |event: ChainEvent| async move {
            let n = event.json().and_then(|value| value.as_u64()).unwrap_or(0);
            Ok::<_, RecordError>(ChainEvent::data("k", json!(n * 10)))
        },
    );
    let sink = CollectSink::new();
    let report = FlowBuilder::new("handler-origins")
        .source("rows", IterSource::new(rows))
        .transform("relabel", relabel)
        .async_transform("later", later)
        .sink("collect", sink.clone())
        .chain(["rows", "relabel", "later", "collect"])
        .journals(Journals::memory())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_drained(&report);
    let origins: Vec<String> = sink
        .events()
        .iter()
        .map(|event| event.origin().expect("an origin").to_string())
        .collect();
    assert_eq!(origins, ["in.csv:2", "lookup.csv:9", "in.csv:4"]);
}
