//! Bad input given to the file sources: each gets an error naming what was wrong and where
//! (file and line), none panics, and no good record around it is lost.
//!
//! This file and `obzenflow_runtime/tests/bad_input.rs` are together the index of bad-input
//! coverage; what is tested elsewhere is named here.
//!
//! 1. Malformed lines.
//!    - CSV rows with a missing field, a wrong type, a bad number:
//!      `sources.rs::csv_bad_rows_go_to_the_error_lane_with_file_line_and_reason`, and deep in
//!      a large file `sources.rs::csv_bad_rows_deep_in_a_large_file_are_quoted_exactly`;
//!      through a flow `sources.rs::a_flow_reports_bad_rows_and_delivers_the_good_ones`.
//!    - JSON lines that are truncated or of the wrong type:
//!      `sources.rs::jsonl_bad_lines_go_to_the_error_lane_with_file_line_and_reason` and the
//!      unit test `jsonl.rs::tests::bad_lines_become_error_records_and_reading_goes_on`.
//!    - Here: JSON lines that are not one JSON value (trailing values, bare words, numbers out
//!      of range, nesting past the recursion limit, an unterminated string), an unclosed CSV
//!      quote, and untyped CSV rows with the wrong field count.
//! 2. Invalid UTF-8 among good lines, outside a flow: the CSV and JSONL tests named under 1.
//!    Here: through a flow on disk journals, read back from each source's error journal.
//! 3. A 10 MB single line: here, for JSONL (accepted through a flow on disk journals, and
//!    refused past a configured line-length limit) and for CSV (accepted, and its first KiB
//!    quoted when bad). See the `JsonLinesSource` and `CsvSource` docs for the limits.
//! 4. An empty file and a directory.
//!    - Outside a flow: `sources.rs::empty_files_yield_no_records` (0 bytes, a header only,
//!      blank lines) and `sources.rs::directories_fail_initialize_naming_the_path`; a missing
//!      file: `sources.rs::missing_files_fail_initialize_naming_the_path` and
//!      `sources.rs::a_missing_file_fails_the_flow_before_it_starts`.
//!    - Here: both through a flow.
//!
//! Also here: a UTF-8 byte order mark before the first line, and a zero line-length limit.
//! In `file_input.rs`: CSV null values, `\r\n` and `\r` line breaks, CSV rows over the limit
//! and files without line breaks, endless input (`/dev/zero`), FIFOs, and files truncated,
//! replaced or rewritten while they are read.
//! Items 5 to 7 (flow graphs, backpressure windows, run directories and manifests) are in
//! `obzenflow_runtime/tests/bad_input.rs`.

mod support;

use obzenflow_core::{ChainEvent, ErrorChain, ErrorKind, Lane, ProcessingStatus, TypedPayload};
use obzenflow_runtime::journal::inspect;
use obzenflow_runtime::pipeline::{FlowBuilder, FlowReport, Journals};
use obzenflow_runtime::stages::AsyncSourceHandler;
use obzenflow_stages::sinks::CollectSink;
use obzenflow_stages::sources::{BadRow, CsvSource, JsonLinesSource};
use serde_json::json;
use support::{
    assert_drained, drain_source, error_message, failure_reason, shown, temp_file, Blocking, Order,
};

/// Ten megabytes: the size of the long lines below.
const TEN_MB: usize = 10 * 1024 * 1024;

/// The error messages of the error-status records among `records`, in order.
fn error_messages(records: &[ChainEvent]) -> Vec<String> {
    records
        .iter()
        .filter(|record| record.is_error())
        .map(error_message)
        .collect()
}

/// The payloads of the records that are not errors, in order.
fn good_payloads(records: &[ChainEvent]) -> Vec<serde_json::Value> {
    records
        .iter()
        .filter(|record| !record.is_error())
        .map(|record| record.json().unwrap().into_owned())
        .collect()
}

/// The data records of the error journal of `stage` in the run of `report`.
fn error_lane(report: &FlowReport, stage: &str) -> Vec<ChainEvent> {
    let run_dir = report.run_dir.as_ref().expect("disk journals");
    inspect::read_journal(run_dir, stage, Lane::Error)
        .unwrap()
        .map(Result::unwrap)
        .filter(ChainEvent::is_data)
        .collect()
}

/// A JSON line `{"n": n, "text": "<length x's>"}`, without its line break.
fn long_json_line(n: u64, length: usize) -> String {
    json!({"n": n, "text": "x".repeat(length)}).to_string()
}

/// Builds and runs `builder` to its end; the flow itself may fail, building may not.
async fn run(builder: FlowBuilder) -> FlowReport {
    builder.build().unwrap().run().await.unwrap()
}

#[test]
fn jsonl_lines_that_are_not_one_json_value_go_to_the_error_lane_naming_file_line_and_reason() {
    let nested = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let contents = format!(
        "{{\"n\":1}}\n\
         {{\"n\":2}} {{\"n\":3}}\n\
         not json\n\
         {{\"n\":1e999}}\n\
         {nested}\n\
         \"unterminated\n\
         {{\"n\":7}}\n"
    );
    let (_dir, path) = temp_file("values.jsonl", contents.as_bytes());
    let records = drain_source(&mut JsonLinesSource::new(&path, "value"), 4);
    let file = shown(&path);
    assert_eq!(
        error_messages(&records),
        [
            format!("{file}:2: trailing characters at column 9"),
            format!("{file}:3: expected ident at column 2"),
            format!("{file}:4: number out of range at column 10"),
            format!("{file}:5: recursion limit exceeded at column 128"),
            format!("{file}:6: EOF while parsing a string at column 13"),
        ]
    );
    assert_eq!(good_payloads(&records), [json!({"n": 1}), json!({"n": 7})]);
    let nested_row = BadRow::from_event(&records[4]).unwrap();
    assert_eq!((nested_row.line, nested_row.raw.len()), (5, 400));
    assert!(records
        .iter()
        .filter(|record| record.is_error())
        .all(|record| matches!(
            record.processing_info.status,
            ProcessingStatus::Error {
                kind: ErrorKind::Decode,
                ..
            }
        )));
}

#[test]
fn csv_unclosed_quote_becomes_one_bad_row_keeping_the_rest_of_the_file() {
    let contents = b"id,customer,amount\n1,alice,1.5\n2,\"bob,2.5\n3,carol,3.5\n4,dave,4.5\n";
    let (_dir, path) = temp_file("orders.csv", contents);
    let records = drain_source(&mut CsvSource::typed::<Order>(&path), 10);
    assert_eq!(
        error_messages(&records),
        [format!("{}:3: expected 3 fields, found 2", shown(&path))]
    );
    let bad = BadRow::from_event(&records[1]).unwrap();
    assert_eq!(bad.line, 3);
    assert_eq!(bad.raw, "2,\"bob,2.5\n3,carol,3.5\n4,dave,4.5");
    let good: Vec<u64> = records
        .iter()
        .filter(|record| !record.is_error())
        .map(|record| Order::from_event(record).unwrap().id)
        .collect();
    assert_eq!(good, [1]);
}

#[test]
fn csv_rows_as_json_objects_with_the_wrong_field_count_go_to_the_error_lane() {
    let contents = b"name,age\nada,36\ngrace,85,extra\nalan\nedsger,72\n";
    let (_dir, path) = temp_file("people.csv", contents);
    let records = drain_source(&mut CsvSource::new(&path, "person"), 10);
    let file = shown(&path);
    assert_eq!(
        error_messages(&records),
        [
            format!("{file}:3: expected 2 fields, found 3"),
            format!("{file}:4: expected 2 fields, found 1"),
        ]
    );
    assert_eq!(
        good_payloads(&records),
        [
            json!({"name": "ada", "age": "36"}),
            json!({"name": "edsger", "age": "72"})
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_lines_go_to_the_error_lane_naming_file_and_line_and_good_lines_flow_on() {
    let (_csv_dir, csv_path) = temp_file(
        "orders.csv",
        b"id,customer,amount\n1,alice,1.5\n2,b\xffb,2.5\n3,carol,3.5\n",
    );
    let (_jsonl_dir, jsonl_path) = temp_file(
        "orders.jsonl",
        b"{\"id\":4,\"customer\":\"dave\",\"amount\":4.5}\n\
{\"id\":5,\"customer\":\"e\xc3\x28in\",\"amount\":5.5}\n\
{\"id\":6,\"customer\":\"frank\",\"amount\":6.5}\n",
    );
    let base = tempfile::tempdir().unwrap();
    let sink = CollectSink::new();
    let report = run(FlowBuilder::new("utf8")
        .async_source("csv", CsvSource::typed::<Order>(&csv_path))
        .async_source("jsonl", JsonLinesSource::typed::<Order>(&jsonl_path))
        .sink("collect", sink.clone())
        .edge("csv", "collect")
        .edge("jsonl", "collect")
        .journals(Journals::disk(base.path())))
    .await;
    assert_drained(&report);
    let mut ids: Vec<u64> = sink
        .decode::<Order>()
        .unwrap()
        .iter()
        .map(|o| o.id)
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, [1, 3, 4, 6]);

    let expected = [
        (
            "csv",
            &csv_path,
            3,
            "column `customer`: invalid UTF-8 after byte 1",
            "2,b\u{fffd}b,2.5",
        ),
        (
            "jsonl",
            &jsonl_path,
            2,
            "invalid UTF-8: invalid utf-8 sequence of 1 bytes from index 21",
            "{\"id\":5,\"customer\":\"e\u{fffd}(in\",\"amount\":5.5}",
        ),
    ];
    for (stage, path, line, reason, raw) in expected {
        let errors = error_lane(&report, stage);
        assert_eq!(errors.len(), 1, "{stage}: {errors:?}");
        assert_eq!(
            error_message(&errors[0]),
            format!("{}:{line}: {reason}", shown(path))
        );
        let bad = BadRow::from_event(&errors[0]).unwrap();
        assert_eq!(
            (bad.file, bad.line, bad.raw.as_str()),
            (shown(path), line, raw)
        );
        let counts = report.stage(stage).unwrap();
        assert_eq!((counts.records_out, counts.records_errored), (2, 1));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10_mb_json_line_is_delivered_whole_between_short_lines() {
    let contents = format!("{{\"n\":1}}\n{}\n{{\"n\":3}}\n", long_json_line(2, TEN_MB));
    let (_dir, path) = temp_file("long.jsonl", contents.as_bytes());
    let base = tempfile::tempdir().unwrap();
    let sink = CollectSink::new();
    let report = run(FlowBuilder::new("long-json")
        .async_source("lines", JsonLinesSource::new(&path, "line"))
        .sink("collect", sink.clone())
        .edge("lines", "collect")
        .journals(Journals::disk(base.path())))
    .await;
    assert_drained(&report);
    let payloads = sink.payloads();
    let numbers: Vec<u64> = payloads.iter().map(|p| p["n"].as_u64().unwrap()).collect();
    assert_eq!(numbers, [1, 2, 3]);
    assert_eq!(payloads[1]["text"].as_str().unwrap().len(), TEN_MB);
    assert_eq!(report.stage("lines").unwrap().records_errored, 0);
}

#[test]
fn a_jsonl_line_over_the_length_limit_goes_to_the_error_lane_naming_file_line_and_limit() {
    const LIMIT: usize = 1024 * 1024;
    // `{"n":3,"text":"` and `"}` are 17 bytes around the text.
    let at_limit = long_json_line(3, LIMIT - 17);
    let over_limit = long_json_line(4, LIMIT - 16);
    assert_eq!((at_limit.len(), over_limit.len()), (LIMIT, LIMIT + 1));
    let ten_mb = long_json_line(2, TEN_MB);
    let contents =
        format!("{{\"n\":1}}\n{ten_mb}\n{at_limit}\r\n{over_limit}\r\n{{\"n\":5}}\n{ten_mb}");
    let (_dir, path) = temp_file("long.jsonl", contents.as_bytes());
    let mut source = JsonLinesSource::new(&path, "line").with_max_line_bytes(LIMIT);
    let records = drain_source(&mut source, 2);
    let file = shown(&path);
    let limit_message =
        |line: u64| format!("{file}:{line}: line is longer than the limit of {LIMIT} bytes");
    assert_eq!(
        error_messages(&records),
        [limit_message(2), limit_message(4), limit_message(6)]
    );
    let numbers: Vec<u64> = good_payloads(&records)
        .iter()
        .map(|payload| payload["n"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 3, 5]);
    for (index, line) in [(1, 2), (3, 4), (5, 6)] {
        let bad = BadRow::from_event(&records[index]).unwrap();
        assert_eq!(bad.line, line);
        assert_eq!(
            (bad.raw.len(), bad.truncated),
            (BadRow::RAW_LIMIT, true),
            "only the first {} bytes are quoted",
            BadRow::RAW_LIMIT
        );
        assert!(contents.contains(&bad.raw));
    }
}

#[test]
fn a_zero_line_length_limit_fails_initialize_naming_the_file() {
    let (_dir, path) = temp_file("any.jsonl", b"{}\n");
    let error = JsonLinesSource::new(&path, "line")
        .with_max_line_bytes(0)
        .initialize_blocking()
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "input file `{}`: the line-length limit is 0 bytes; it must be at least 1",
            shown(&path)
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10_mb_csv_row_is_delivered_whole_between_short_rows() {
    let contents = format!("name,text\nfirst,a\nlong,{}\nlast,c\n", "x".repeat(TEN_MB));
    let (_dir, path) = temp_file("long.csv", contents.as_bytes());
    let sink = CollectSink::new();
    let report = run(FlowBuilder::new("long-csv")
        .async_source("rows", CsvSource::new(&path, "row"))
        .sink("collect", sink.clone())
        .edge("rows", "collect")
        .journals(Journals::memory()))
    .await;
    assert_drained(&report);
    let payloads = sink.payloads();
    let names: Vec<&str> = payloads
        .iter()
        .map(|payload| payload["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["first", "long", "last"]);
    assert_eq!(payloads[1]["text"].as_str().unwrap().len(), TEN_MB);
}

#[test]
fn a_bad_10_mb_csv_row_is_quoted_by_its_first_kib_in_the_error_lane_naming_its_line() {
    let long_row = format!("2,{}", "x".repeat(TEN_MB));
    let contents = format!("id,customer,amount\n1,alice,1.5\n{long_row}\n3,carol,3.5\n");
    let (_dir, path) = temp_file("long.csv", contents.as_bytes());
    let records = drain_source(&mut CsvSource::typed::<Order>(&path), 10);
    assert_eq!(
        error_messages(&records),
        [format!("{}:3: expected 3 fields, found 2", shown(&path))]
    );
    let bad = BadRow::from_event(&records[1]).unwrap();
    assert_eq!(bad.line, 3);
    assert!(bad.truncated);
    assert!(
        bad.raw == long_row[..BadRow::RAW_LIMIT],
        "the first KiB is quoted"
    );
    let good: Vec<u64> = records
        .iter()
        .filter(|record| !record.is_error())
        .map(|record| Order::from_event(record).unwrap().id)
        .collect();
    assert_eq!(good, [1, 3]);
}

#[test]
fn a_utf8_byte_order_mark_before_the_first_line_is_skipped() {
    let (_dir, path) = temp_file(
        "bom.jsonl",
        b"\xef\xbb\xbf{\"id\":1,\"customer\":\"ada\",\"amount\":1}\n\
{\"id\":2,\"customer\":\"bo\xef\xbb\xbfb\",\"amount\":2}\n",
    );
    let records = drain_source(&mut JsonLinesSource::typed::<Order>(&path), 10);
    assert_eq!(error_messages(&records), Vec::<String>::new());
    let customers: Vec<String> = records
        .iter()
        .map(|record| Order::from_event(record).unwrap().customer)
        .collect();
    assert_eq!(
        customers,
        ["ada", "bo\u{feff}b"],
        "only a leading mark goes"
    );

    let (_dir, path) = temp_file("bom.csv", b"\xef\xbb\xbfid,customer,amount\n1,ada,1\n");
    let records = drain_source(&mut CsvSource::typed::<Order>(&path), 10);
    assert_eq!(error_messages(&records), Vec::<String>::new());
    assert_eq!(Order::from_event(&records[0]).unwrap().id, 1);
}

/// A flow reading `source` into a collecting sink on memory journals.
fn one_source_flow(source: impl AsyncSourceHandler, sink: &CollectSink) -> FlowBuilder {
    FlowBuilder::new("one-source")
        .async_source("input", source)
        .sink("collect", sink.clone())
        .edge("input", "collect")
        .journals(Journals::memory())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_file_drains_a_flow_with_no_records() {
    let (_csv_dir, csv_path) = temp_file("empty.csv", b"");
    let (_jsonl_dir, jsonl_path) = temp_file("empty.jsonl", b"");
    let sink = CollectSink::new();
    for report in [
        run(one_source_flow(CsvSource::typed::<Order>(&csv_path), &sink)).await,
        run(one_source_flow(
            JsonLinesSource::new(&jsonl_path, "row"),
            &sink,
        ))
        .await,
    ] {
        assert_drained(&report);
        let input = report.stage("input").unwrap();
        assert_eq!((input.records_out, input.records_errored), (0, 0));
        assert_eq!(report.stage("collect").unwrap().records_in, 0);
    }
    assert!(sink.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_as_the_input_file_fails_the_flow_before_it_starts_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let sink = CollectSink::new();
    for report in [
        run(one_source_flow(CsvSource::new(dir.path(), "row"), &sink)).await,
        run(one_source_flow(
            JsonLinesSource::new(dir.path(), "row"),
            &sink,
        ))
        .await,
    ] {
        let expected = format!(
            "cannot read input file `{}`: Is a directory (os error 21)",
            shown(dir.path())
        );
        let failure = report.failure().expect("the flow must fail");
        assert_eq!(failure.stage(), Some("input"), "{report}");
        let io = failure.downcast_ref::<std::io::Error>().expect("the cause");
        assert_eq!(io.raw_os_error(), Some(21), "{report}");
        let reason = ErrorChain::new(failure).to_string();
        assert!(reason.starts_with("stage `input` failed: "), "{reason}");
        assert!(reason.ends_with(&expected), "{reason}");
        assert!(failure_reason(&report, "input").ends_with(&expected));
        assert_eq!(report.stage("collect").unwrap().records_in, 0);
    }
    assert!(sink.is_empty());
}
