//! Sources: iterators, JSON Lines and CSV files (good and bad input), and the generator.

mod support;

use std::time::Duration;

use obzenflow_core::{ChainEvent, ErrorKind, ProcessingStatus, TypedPayload};
use obzenflow_runtime::pipeline::{FlowBuilder, Journals};
use obzenflow_runtime::stages::FailureKind;
use obzenflow_stages::sinks::CollectSink;
use obzenflow_stages::sources::{
    BadRow, CsvSource, CsvSourceConfig, GeneratorConfig, GeneratorSource, IterSource,
    JsonLinesSource,
};
use serde_json::json;
use support::{
    assert_drained, chain, drain_source, error_message, failure_reason, shown, stage_failure,
    temp_file, Blocking, Order,
};

const CSV_WITH_BAD_ROWS: &[u8] = b"id,customer,amount\n\
1,alice,10.5\n\
2,bob\n\
3,carol,abc\n\
4,d\xffve,1.0\n\
\"5\",\"multi\nline\",2.0\n\
x,frank,3\n\
6,erin,7\n";

fn order(id: u64, customer: &str, amount: f64) -> Order {
    Order {
        id,
        customer: customer.to_owned(),
        amount,
    }
}

#[test]
fn csv_bad_rows_go_to_the_error_lane_with_file_line_and_reason() {
    let (_dir, path) = temp_file("orders.csv", CSV_WITH_BAD_ROWS);
    let records = drain_source(&mut CsvSource::typed::<Order>(&path), 3);
    let file = shown(&path);
    let errors: Vec<String> = records
        .iter()
        .filter(|r| r.is_error())
        .map(error_message)
        .collect();
    assert_eq!(
        errors,
        [
            format!("{file}:3: expected 3 fields, found 2"),
            format!("{file}:4: column `amount`: cannot parse \"abc\": invalid float literal"),
            format!("{file}:5: column `customer`: invalid UTF-8 after byte 1"),
            format!("{file}:8: column `id`: cannot parse \"x\": invalid digit found in string"),
        ]
    );
    let raw: Vec<String> = records
        .iter()
        .filter(|r| r.is_error())
        .map(|r| BadRow::from_event(r).unwrap().raw)
        .collect();
    assert_eq!(
        raw,
        ["2,bob", "3,carol,abc", "4,d\u{fffd}ve,1.0", "x,frank,3"]
    );
    let good: Vec<Order> = records
        .iter()
        .filter(|r| !r.is_error())
        .map(|r| Order::from_event(r).unwrap())
        .collect();
    assert_eq!(
        good,
        [
            order(1, "alice", 10.5),
            order(5, "multi\nline", 2.0),
            order(6, "erin", 7.0)
        ]
    );
    let kinds: Vec<ErrorKind> = records
        .iter()
        .filter_map(|r| match &r.processing_info.status {
            ProcessingStatus::Error { kind, .. } => Some(*kind),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, [ErrorKind::Decode; 4]);
}

#[test]
fn csv_bad_rows_deep_in_a_large_file_are_quoted_exactly() {
    let mut contents = String::from("id,customer,amount\n");
    for id in 0..20_000 {
        match id {
            9_000 => contents.push_str("9000,\"two\nlines\",oops\n"),
            19_999 => contents.push_str("19999,last\n"),
            _ => contents.push_str(&format!("{id},customer {id},{id}.25\n")),
        }
    }
    let (_dir, path) = temp_file("large.csv", contents.as_bytes());
    let records = drain_source(&mut CsvSource::typed::<Order>(&path), 1_024);
    assert_eq!(records.len(), 20_000);
    let bad: Vec<BadRow> = records
        .iter()
        .filter(|r| r.is_error())
        .map(|r| BadRow::from_event(r).unwrap())
        .collect();
    let places: Vec<(u64, &str)> = bad.iter().map(|row| (row.line, row.raw.as_str())).collect();
    assert_eq!(
        places,
        [(9_002, "9000,\"two\nlines\",oops"), (20_002, "19999,last")]
    );
}

#[test]
fn csv_rows_can_be_json_objects_of_strings() {
    let (_dir, path) = temp_file("people.csv", b"name , age\n ada , 36\ngrace,85\n");
    let records = drain_source(&mut CsvSource::new(&path, "person"), 10);
    let payloads: Vec<_> = records
        .iter()
        .map(|r| r.json().unwrap().into_owned())
        .collect();
    assert_eq!(
        payloads,
        [
            json!({"name": "ada", "age": "36"}),
            json!({"name": "grace", "age": "85"})
        ]
    );
    assert!(records.iter().all(|r| r.event_type().unwrap() == "person"));
}

#[test]
fn csv_delimiter_and_trimming_are_configurable() {
    let (_dir, path) = temp_file("people.tsv", b"name\tage\n ada \t36\n");
    let config = CsvSourceConfig::default()
        .with_delimiter(b'\t')
        .with_trim(false);
    let records = drain_source(&mut CsvSource::new(&path, "person").with_config(config), 10);
    assert_eq!(
        records[0].json().unwrap().into_owned(),
        json!({"name": " ada ", "age": "36"})
    );
}

#[test]
fn empty_files_yield_no_records() {
    for contents in [&b""[..], b"id,customer,amount\n"] {
        let (_dir, path) = temp_file("empty.csv", contents);
        assert!(drain_source(&mut CsvSource::typed::<Order>(&path), 10).is_empty());
    }
    for contents in [&b""[..], b"\n\n  \n"] {
        let (_dir, path) = temp_file("empty.jsonl", contents);
        assert!(drain_source(&mut JsonLinesSource::typed::<Order>(&path), 10).is_empty());
    }
}

#[test]
fn missing_files_fail_initialize_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.csv");
    let expected = format!(
        "cannot open input file `{}`: No such file or directory (os error 2)",
        shown(&path)
    );
    let csv_error = CsvSource::typed::<Order>(&path)
        .initialize_blocking()
        .unwrap_err();
    assert_eq!(chain(&csv_error), expected);
    let jsonl_error = JsonLinesSource::new(&path, "order")
        .initialize_blocking()
        .unwrap_err();
    assert_eq!(chain(&jsonl_error), expected);
}

#[test]
fn directories_fail_initialize_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let expected = format!(
        "cannot read input file `{}`: Is a directory (os error 21)",
        shown(dir.path())
    );
    let csv_error = CsvSource::new(dir.path(), "row")
        .initialize_blocking()
        .unwrap_err();
    assert_eq!(chain(&csv_error), expected);
    let jsonl_error = JsonLinesSource::new(dir.path(), "row")
        .initialize_blocking()
        .unwrap_err();
    assert_eq!(chain(&jsonl_error), expected);
}

#[test]
fn jsonl_bad_lines_go_to_the_error_lane_with_file_line_and_reason() {
    let contents = b"{\"id\":1,\"customer\":\"alice\",\"amount\":1.5}\n\
{\"id\":2,\"customer\":\"bob\"\n\
{\"id\":\"three\",\"customer\":\"carol\",\"amount\":3}\n\
{\"id\":4,\"customer\":\"d\xffve\",\"amount\":4}\n\
\n\
{\"id\":5,\"customer\":\"erin\",\"amount\":5}\n";
    let (_dir, path) = temp_file("orders.jsonl", contents);
    let records = drain_source(&mut JsonLinesSource::typed::<Order>(&path), 2);
    let file = shown(&path);
    let errors: Vec<String> = records
        .iter()
        .filter(|r| r.is_error())
        .map(error_message)
        .collect();
    assert_eq!(
        errors,
        [
            format!("{file}:2: EOF while parsing an object at column 24"),
            format!("{file}:3: invalid type: string \"three\", expected u64 at column 13"),
            format!("{file}:4: invalid UTF-8: invalid utf-8 sequence of 1 bytes from index 21"),
        ]
    );
    let bad_row = BadRow::from_event(&records[1]).unwrap();
    assert_eq!((bad_row.line, bad_row.file.as_str()), (2, file.as_str()));
    assert_eq!(bad_row.raw, "{\"id\":2,\"customer\":\"bob\"");
    let good: Vec<u64> = records
        .iter()
        .filter(|r| !r.is_error())
        .map(|r| Order::from_event(r).unwrap().id)
        .collect();
    assert_eq!(good, [1, 5]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_reports_bad_rows_and_delivers_the_good_ones() {
    let (_dir, path) = temp_file("orders.csv", CSV_WITH_BAD_ROWS);
    let sink = CollectSink::new();
    let report = FlowBuilder::new("csv")
        .async_source("orders", CsvSource::typed::<Order>(&path))
        .sink("collect", sink.clone())
        .edge("orders", "collect")
        .journals(Journals::memory())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_drained(&report);
    let ids: Vec<u64> = sink
        .decode::<Order>()
        .unwrap()
        .iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(ids, [1, 5, 6]);
    let source = report.stage("orders").unwrap();
    assert_eq!((source.records_out, source.records_errored), (3, 4));
    let file = shown(&path);
    assert_eq!(
        source.first_errors,
        [
            format!("decode: {file}:3: expected 3 fields, found 2"),
            format!(
                "decode: {file}:4: column `amount`: cannot parse \"abc\": invalid float literal"
            ),
            format!("decode: {file}:5: column `customer`: invalid UTF-8 after byte 1"),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_file_fails_the_flow_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.jsonl");
    let report = FlowBuilder::new("missing")
        .async_source("orders", JsonLinesSource::new(&path, "order"))
        .sink("collect", CollectSink::new())
        .edge("orders", "collect")
        .journals(Journals::memory())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    let failure = report.failure().expect("the flow failed");
    assert_eq!(failure.stage(), Some("orders"), "{report}");
    let stage = stage_failure(&report, "orders");
    assert_eq!(stage.kind(), FailureKind::Handler, "{report}");
    let io = failure.downcast_ref::<std::io::Error>().expect("the cause");
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    let reason = failure_reason(&report, "orders");
    let expected = format!(
        "cannot open input file `{}`: No such file or directory (os error 2)",
        shown(&path)
    );
    assert!(reason.ends_with(&expected), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_payloads_flow_from_a_vec() {
    let orders = vec![order(1, "a", 1.0), order(2, "b", 2.0)];
    let sink = CollectSink::new();
    let report = FlowBuilder::new("vec")
        .source("orders", IterSource::from_payloads(orders.clone()))
        .sink("collect", sink.clone())
        .edge("orders", "collect")
        .journals(Journals::memory())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_drained(&report);
    assert_eq!(sink.decode::<Order>().unwrap(), orders);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_in_error_status_from_an_iterator_go_to_the_error_lane() {
    let bad = ChainEvent::data("n", json!(2)).with_status(ProcessingStatus::error(
        ErrorKind::Validation,
        "two is bad",
        None,
    ));
    let events = vec![ChainEvent::data("n", json!(1)), bad];
    let sink = CollectSink::new();
    let report = FlowBuilder::new("iter")
        .source("numbers", IterSource::new(events))
        .sink("collect", sink.clone())
        .edge("numbers", "collect")
        .journals(Journals::memory())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_drained(&report);
    assert_eq!(sink.payloads(), [json!(1)]);
    let source = report.stage("numbers").unwrap();
    assert_eq!(source.first_errors, ["validation: two is bad"]);
}

#[tokio::test(start_paused = true)]
async fn an_infinite_generator_stops_gracefully_and_everything_generated_is_delivered() {
    let interval = Duration::from_millis(10);
    let source = GeneratorSource::new(
        GeneratorConfig {
            interval,
            limit: None,
        },
        |n| ChainEvent::data("tick", json!(n)),
    );
    let sink = CollectSink::new();
    let flow = FlowBuilder::new("ticker")
        .async_source("ticks", source)
        .sink("collect", sink.clone())
        .edge("ticks", "collect")
        .journals(Journals::memory())
        .build()
        .unwrap()
        .start()
        .unwrap();
    tokio::time::sleep(interval * 20).await;
    flow.stop_graceful(Duration::from_secs(5)).await.unwrap();
    let report = flow.wait().await.unwrap();
    assert_drained(&report);
    let produced = report.stage("ticks").unwrap().records_out;
    assert!(produced >= 10, "{report}");
    let ticks: Vec<u64> = sink.payloads().iter().filter_map(|p| p.as_u64()).collect();
    assert_eq!(ticks, (0..produced).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn a_limited_typed_generator_ends_by_itself() {
    let source = GeneratorSource::typed(GeneratorConfig::per_second(100).with_limit(5), |n| {
        order(n, "gen", n as f64)
    });
    let sink = CollectSink::new();
    let report = FlowBuilder::new("limited")
        .async_source("orders", source)
        .sink("collect", sink.clone())
        .edge("orders", "collect")
        .journals(Journals::memory())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_drained(&report);
    let ids: Vec<u64> = sink
        .decode::<Order>()
        .unwrap()
        .iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(ids, [0, 1, 2, 3, 4]);
}
