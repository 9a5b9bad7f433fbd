//! File sources on awkward input: null values, line breaks other than `\n`, rows past the
//! length limit, endless input, FIFOs, and files changed while they are read.

mod support;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use obzenflow_core::{ChainEvent, TypedPayload};
use obzenflow_runtime::pipeline::{FlowBuilder, FlowHandle, FlowReport, FlowState, Journals};
use obzenflow_runtime::stages::{AsyncSourceHandler, HandlerFailure, SourcePoll, StageState};
use obzenflow_stages::sinks::CollectSink;
use obzenflow_stages::sources::{BadRow, CsvSource, CsvSourceConfig, JsonLinesSource};
use serde::{Deserialize, Serialize};
use serde_json::json;
use support::{assert_drained, drain_source, error_message, shown, temp_file, Blocking, Order};

/// How long a test waits for a flow to end after it was told to; far above what it takes.
const FLOW_DEADLINE: Duration = Duration::from_secs(30);

/// A reading whose temperature and note may be missing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Reading {
    sensor: String,
    celsius: Option<f64>,
    note: Option<String>,
}

impl TypedPayload for Reading {
    const EVENT_TYPE: &'static str = "reading";
}

/// The error messages of the error records among `records`, in order.
fn errors(records: &[ChainEvent]) -> Vec<String> {
    records
        .iter()
        .filter(|record| record.is_error())
        .map(error_message)
        .collect()
}

/// The bad rows of the error records among `records`, in order.
fn bad_rows(records: &[ChainEvent]) -> Vec<BadRow> {
    records
        .iter()
        .filter(|record| record.is_error())
        .map(|record| BadRow::from_event(record).unwrap())
        .collect()
}

/// Reads batches until the source is done or fails; the failure, if it does.
fn read_until_failure(source: &mut impl AsyncSourceHandler) -> Option<HandlerFailure> {
    loop {
        match source.next_batch_blocking(1) {
            Ok(SourcePoll::Records(_)) => {}
            Ok(SourcePoll::Done) => return None,
            Err(failure) => return Some(failure),
        }
    }
}

#[test]
fn csv_null_values_read_as_none_in_option_fields_and_fail_other_fields_naming_the_column() {
    let contents = b"sensor,celsius,note\n\
a,21.5,fine\n\
b,NA,\n\
c, NA ,NA\n\
d,,n/a\n";
    let (_dir, path) = temp_file("readings.csv", contents);
    let config = CsvSourceConfig::default().with_null_values(["NA", ""]);
    let records = drain_source(
        &mut CsvSource::typed::<Reading>(&path).with_config(config.clone()),
        10,
    );
    let readings: Vec<Reading> = records
        .iter()
        .map(|record| Reading::from_event(record).unwrap())
        .collect();
    let reading = |sensor: &str, celsius: Option<f64>, note: Option<&str>| Reading {
        sensor: sensor.to_owned(),
        celsius,
        note: note.map(str::to_owned),
    };
    assert_eq!(
        readings,
        [
            reading("a", Some(21.5), Some("fine")),
            reading("b", None, None),
            reading("c", None, None),
            reading("d", None, Some("n/a")),
        ]
    );

    // Without the option, "NA" is a value: a bad number, and a note.
    let records = drain_source(&mut CsvSource::typed::<Reading>(&path), 10);
    let file = shown(&path);
    assert_eq!(
        errors(&records),
        [
            format!("{file}:3: column `celsius`: cannot parse \"NA\": invalid float literal"),
            format!("{file}:4: column `celsius`: cannot parse \"NA\": invalid float literal"),
        ]
    );

    // A field that is not optional receiving a null value goes to the error lane.
    let records = drain_source(
        &mut CsvSource::typed::<Order>(path_with(
            &path,
            b"id,customer,amount\n1,ada,NA\n2,bob,2.5\n",
        ))
        .with_config(config.clone()),
        10,
    );
    assert_eq!(
        errors(&records),
        [format!(
            "{file}:2: column `amount`: null value \"NA\" in a field that is not optional"
        )]
    );
    assert_eq!(bad_rows(&records)[0].raw, "1,ada,NA");
    assert_eq!(Order::from_event(&records[1]).unwrap().id, 2);

    // JSON objects get `null`.
    let records = drain_source(
        &mut CsvSource::new(path_with(&path, b"a,b\nNA,x\n"), "row").with_config(config),
        10,
    );
    assert_eq!(
        records[0].json().unwrap().into_owned(),
        json!({"a": null, "b": "x"})
    );
}

/// Rewrites `path` with `contents` and gives it back.
fn path_with(path: &Path, contents: &[u8]) -> std::path::PathBuf {
    std::fs::write(path, contents).unwrap();
    path.to_owned()
}

#[test]
fn csv_line_numbers_count_crlf_and_lone_cr_line_breaks() {
    for (name, line_break) in [("lf.csv", "\n"), ("crlf.csv", "\r\n"), ("cr.csv", "\r")] {
        let contents = [
            "id,customer,amount",
            "1,ada,1.5",
            "2,bob",
            "",
            "3,\"multi",
            "line\",oops",
            "4,dan,4.5",
            "x,eve,5",
            "",
        ]
        .join(line_break);
        let (_dir, path) = temp_file(name, contents.as_bytes());
        let records = drain_source(&mut CsvSource::typed::<Order>(&path), 2);
        let lines: Vec<u64> = bad_rows(&records).iter().map(|row| row.line).collect();
        assert_eq!(lines, [3, 5, 8], "{name}");
        let good: Vec<u64> = records
            .iter()
            .filter(|record| !record.is_error())
            .map(|record| Order::from_event(record).unwrap().id)
            .collect();
        assert_eq!(good, [1, 4], "{name}");
    }
}

#[test]
fn jsonl_line_numbers_count_crlf_line_breaks() {
    let contents = b"{\"n\":1}\r\n\r\nnot json\r\n{\"n\":4}\r\n{\"n\": }\r\n";
    let (_dir, path) = temp_file("crlf.jsonl", contents);
    let records = drain_source(&mut JsonLinesSource::new(&path, "n"), 10);
    let lines: Vec<u64> = bad_rows(&records).iter().map(|row| row.line).collect();
    assert_eq!(lines, [3, 5]);
    assert_eq!(bad_rows(&records)[0].raw, "not json");
}

#[test]
fn a_csv_row_over_the_limit_goes_to_the_error_lane_and_reading_goes_on_after_its_line() {
    const LIMIT: usize = 64 * 1024;
    let long = "x".repeat(3 * LIMIT);
    let at_limit = format!("3,{},3", "y".repeat(LIMIT - 4));
    let contents = format!("id,customer,amount\n1,ada,1\n2,{long},2\n{at_limit}\n4,dan,4\n");
    let (_dir, path) = temp_file("long.csv", contents.as_bytes());
    let mut source = CsvSource::typed::<Order>(&path).with_max_row_bytes(LIMIT);
    let records = drain_source(&mut source, 10);
    let file = shown(&path);
    assert_eq!(
        errors(&records),
        [format!(
            "{file}:3: row is longer than the limit of {LIMIT} bytes"
        )]
    );
    let bad = &bad_rows(&records)[0];
    assert_eq!((bad.raw.len(), bad.truncated), (BadRow::RAW_LIMIT, true));
    assert!(bad.raw.starts_with("2,xxx"));
    let good: Vec<u64> = records
        .iter()
        .filter(|record| !record.is_error())
        .map(|record| Order::from_event(record).unwrap().id)
        .collect();
    assert_eq!(good, [1, 3, 4]);
}

#[test]
fn a_csv_row_just_over_the_limit_is_refused_by_its_exact_length() {
    const LIMIT: usize = 1024 * 1024;
    let over = format!("2,{},2", "y".repeat(LIMIT - 3));
    assert_eq!(over.len(), LIMIT + 1);
    let contents = format!("id,customer,amount\n1,ada,1\n{over}\n3,cy,3\n");
    let (_dir, path) = temp_file("over.csv", contents.as_bytes());
    let mut source = CsvSource::typed::<Order>(&path).with_max_row_bytes(LIMIT);
    let records = drain_source(&mut source, 10);
    assert_eq!(
        errors(&records),
        [format!(
            "{}:3: row is longer than the limit of {LIMIT} bytes",
            shown(&path)
        )]
    );
    assert_eq!(records.len(), 3);
}

#[test]
fn a_csv_file_without_line_breaks_becomes_one_error_record_not_an_abort() {
    const LIMIT: usize = 64 * 1024;
    let mut contents = b"id,customer,amount\n".to_vec();
    contents.extend(std::iter::repeat_n(b'z', 20 * LIMIT));
    let (_dir, path) = temp_file("binary.csv", &contents);
    let mut source = CsvSource::typed::<Order>(&path).with_max_row_bytes(LIMIT);
    source.initialize_blocking().unwrap();
    let mut records = Vec::new();
    let mut batches = 0;
    while let SourcePoll::Records(batch) = source.next_batch_blocking(100).unwrap() {
        records.extend(batch);
        batches += 1;
    }
    assert_eq!(
        errors(&records),
        [format!(
            "{}:2: row is longer than the limit of {LIMIT} bytes",
            shown(&path)
        )]
    );
    assert!(
        batches >= 10,
        "each batch reads about one limit's worth: {batches} batches"
    );
}

#[test]
fn jsonl_on_an_endless_line_returns_after_each_limit_of_bytes() {
    const LIMIT: usize = 1024 * 1024;
    let mut source = JsonLinesSource::new("/dev/zero", "zero").with_max_line_bytes(LIMIT);
    source.initialize_blocking().unwrap();
    let SourcePoll::Records(first) = source.next_batch_blocking(10).unwrap() else {
        panic!("/dev/zero never ends");
    };
    assert_eq!(
        errors(&first),
        ["/dev/zero:1: line is longer than the limit of 1048576 bytes"]
    );
    assert_eq!(bad_rows(&first)[0].raw.len(), BadRow::RAW_LIMIT);
    for _ in 0..3 {
        let SourcePoll::Records(skipping) = source.next_batch_blocking(10).unwrap() else {
            panic!("/dev/zero never ends");
        };
        assert!(skipping.is_empty(), "the rest of the line is skipped");
    }
}

#[test]
fn a_csv_header_row_over_the_limit_fails_initialize_naming_file_and_line() {
    let error = CsvSource::new("/dev/zero", "zero")
        .with_max_row_bytes(1024 * 1024)
        .initialize_blocking()
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "/dev/zero:1: the header row is longer than the limit of 1048576 bytes"
    );
}

/// A flow from `source` into `sink` on memory journals, started; returns once it runs.
async fn started_flow(source: impl AsyncSourceHandler, sink: &CollectSink) -> FlowHandle {
    let flow = FlowBuilder::new("file-input")
        .async_source("input", source)
        .sink("collect", sink.clone())
        .edge("input", "collect")
        .journals(Journals::memory())
        .build()
        .unwrap()
        .start()
        .unwrap();
    flow.state()
        .wait_for(|state| !matches!(state, FlowState::Created))
        .await
        .unwrap();
    flow
}

/// Cancels `flow` and waits for its report, failing the test past [`FLOW_DEADLINE`].
async fn cancel_and_wait(flow: FlowHandle) -> FlowReport {
    flow.cancel().await.unwrap();
    tokio::time::timeout(FLOW_DEADLINE, flow.wait())
        .await
        .expect("the cancel reaches the source and the flow ends")
        .unwrap()
}

/// Asserts the flow was cancelled and its source stopped by itself, not by an abort.
fn assert_cancelled_by_the_source(report: &FlowReport) {
    assert!(
        matches!(report.state, FlowState::Cancelled { .. }),
        "{report}"
    );
    match &report.stage("input").unwrap().state {
        StageState::Cancelled { reason } => assert!(!reason.contains("aborted"), "{reason}"),
        other => panic!("the source was not cancelled: {other:?}\n{report}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_reaches_a_jsonl_source_reading_an_endless_line() {
    let source = JsonLinesSource::new("/dev/zero", "zero").with_max_line_bytes(1024 * 1024);
    assert_a_cancel_reaches(source).await;
}

/// Makes a FIFO named `name` in a fresh directory.
fn fifo(name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    let status = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success(), "mkfifo failed: {status}");
    (dir, path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_reaches_a_source_on_a_fifo_without_a_writer() {
    let (_dir, path) = fifo("input");
    assert_a_cancel_reaches(JsonLinesSource::new(&path, "line")).await;
    assert_a_cancel_reaches(CsvSource::new(&path, "row")).await;
}

/// Runs `source` in a flow, cancels it, and asserts the source stopped by itself.
async fn assert_a_cancel_reaches(source: impl AsyncSourceHandler) {
    let sink = CollectSink::new();
    let flow = started_flow(source, &sink).await;
    let report = cancel_and_wait(flow).await;
    assert_cancelled_by_the_source(&report);
    assert!(sink.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_source_waits_for_its_writer_and_reads_to_its_end() {
    let (_dir, path) = fifo("lines.jsonl");
    let sink = CollectSink::new();
    let flow = started_flow(JsonLinesSource::new(&path, "line"), &sink).await;
    // The flow runs before any writer comes; the source must not take that for an empty file.
    let writer_path = path.clone();
    tokio::task::spawn_blocking(move || {
        let mut writer = std::fs::OpenOptions::new()
            .write(true)
            .open(writer_path)
            .unwrap();
        writer.write_all(b"{\"n\":1}\n{\"n\":2}\n").unwrap();
    })
    .await
    .unwrap();
    let report = tokio::time::timeout(FLOW_DEADLINE, flow.wait())
        .await
        .expect("the source ends when its writer closes")
        .unwrap();
    assert_drained(&report);
    assert_eq!(sink.payloads(), [json!({"n": 1}), json!({"n": 2})]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_reaches_a_source_on_an_idle_fifo() {
    let (_dir, path) = fifo("input");
    assert_a_graceful_stop_reaches(JsonLinesSource::new(&path, "line")).await;
    assert_a_graceful_stop_reaches(CsvSource::new(&path, "row")).await;
}

/// Runs `source` in a flow, stops it gracefully, and asserts the flow drained.
async fn assert_a_graceful_stop_reaches(source: impl AsyncSourceHandler) {
    let sink = CollectSink::new();
    let flow = started_flow(source, &sink).await;
    flow.stop_graceful(FLOW_DEADLINE).await.unwrap();
    let report = tokio::time::timeout(FLOW_DEADLINE, flow.wait())
        .await
        .expect("the stop reaches the source and the flow drains")
        .unwrap();
    assert_drained(&report);
    assert!(sink.is_empty());
}

/// Longer than any timer a waiting source could hide: an hour of paused time.
const IDLE: Duration = Duration::from_secs(3600);

/// Polls `batch` until [`IDLE`] of paused time has passed, and returns how often it was woken
/// meanwhile (the timeout polls it once at the start and once as it expires; every other poll
/// is a wake-up); fails if the batch ends meanwhile.
async fn wakeups_while_idle<F: std::future::Future + Unpin>(batch: &mut F) -> u32 {
    let polls = std::cell::Cell::new(0);
    let counted = std::future::poll_fn(|context| {
        polls.set(polls.get() + 1);
        std::pin::Pin::new(&mut *batch).poll(context)
    });
    assert!(
        tokio::time::timeout(IDLE, counted).await.is_err(),
        "the batch ended while its FIFO was idle"
    );
    polls.get() - 2
}

/// A source on a FIFO sleeps until input comes: an hour of idle time without a writer wakes its
/// pending batch never, an hour with a silent writer at most once (the writer's arrival), where
/// a timer-driven wait would wake it thousands of times or end it empty; a line written then
/// ends the same batch with that line.
#[tokio::test(start_paused = true)]
async fn a_source_on_an_idle_fifo_is_not_woken_until_input_comes() {
    let (_dir, path) = fifo("idle");
    let mut jsonl = JsonLinesSource::new(&path, "line");
    let lines = idle_then_written(&path, &mut jsonl, b"{\"n\":1}\n").await;
    assert_eq!(lines, [json!({"n": 1})]);
    let mut csv = CsvSource::new(&path, "row");
    let rows = idle_then_written(&path, &mut csv, b"a,b\n1,2\n").await;
    assert_eq!(rows, [json!({"a": "1", "b": "2"})]);
}

/// Opens `source` on the FIFO at `path`, leaves it idle (no writer, then a silent writer)
/// while one batch is pending, writes `input`, and returns the payloads of that batch.
async fn idle_then_written(
    path: &Path,
    source: &mut impl AsyncSourceHandler,
    input: &[u8],
) -> Vec<serde_json::Value> {
    source.initialize().await.unwrap();
    let mut batch = Box::pin(source.next_batch(10));
    let without_writer = wakeups_while_idle(&mut batch).await;
    assert_eq!(without_writer, 0, "woken while no writer came");
    // The source has the FIFO open for reading, so opening it for writing does not block.
    let mut writer = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    // The writer's arrival may wake the batch once (the kernel wakes a FIFO's readers when a
    // writer opens it); the batch finds no input and sleeps again.
    let with_silent_writer = wakeups_while_idle(&mut batch).await;
    assert!(
        with_silent_writer <= 1,
        "woken {with_silent_writer} times by a silent writer"
    );
    writer.write_all(input).unwrap();
    match batch.await.unwrap() {
        SourcePoll::Records(records) => records
            .iter()
            .map(|r| r.json().unwrap().into_owned())
            .collect(),
        SourcePoll::Done => panic!("the source ended instead of reading its input"),
    }
}

/// A JSON Lines file of `lines` short lines, about 20 bytes each.
fn jsonl_lines(lines: u64) -> Vec<u8> {
    (0..lines)
        .flat_map(|n| format!("{{\"n\":{n:012}}}\n").into_bytes())
        .collect()
}

#[test]
fn a_file_truncated_while_it_is_read_fails_the_source_naming_the_file() {
    let contents = jsonl_lines(10_000);
    let (_dir, path) = temp_file("shrinking.jsonl", &contents);
    let mut source = JsonLinesSource::new(&path, "n");
    source.initialize_blocking().unwrap();
    source.next_batch_blocking(1).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(100)
        .unwrap();
    let failure = read_until_failure(&mut source).expect("the truncation is noticed");
    let message = failure.to_string();
    assert!(
        message.starts_with(&format!(
            "input file `{}` was truncated while being read: {} bytes when opened, 100 bytes",
            shown(&path),
            contents.len()
        )),
        "{message}"
    );

    let csv: Vec<u8> = std::iter::once(b"id,customer,amount\n".to_vec())
        .chain((0..10_000).map(|n| format!("{n},c{n},1.5\n").into_bytes()))
        .flatten()
        .collect();
    let (_dir, path) = temp_file("shrinking.csv", &csv);
    let mut source = CsvSource::typed::<Order>(&path);
    source.initialize_blocking().unwrap();
    source.next_batch_blocking(1).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(50)
        .unwrap();
    let failure = read_until_failure(&mut source).expect("the truncation is noticed");
    assert!(
        failure.to_string().starts_with(&format!(
            "input file `{}` was truncated while being read",
            shown(&path)
        )),
        "{failure}"
    );
}

#[test]
fn a_file_replaced_or_rewritten_while_it_is_read_fails_the_source_naming_the_file() {
    let contents = jsonl_lines(1_000);
    let (dir, path) = temp_file("replaced.jsonl", &contents);
    let mut source = JsonLinesSource::new(&path, "n");
    source.initialize_blocking().unwrap();
    source.next_batch_blocking(1).unwrap();
    let replacement = dir.path().join("new.jsonl");
    std::fs::write(&replacement, b"{\"n\":1}\n").unwrap();
    std::fs::rename(&replacement, &path).unwrap();
    let failure = read_until_failure(&mut source).expect("the replacement is noticed");
    assert_eq!(
        failure.to_string(),
        format!(
            "input file `{}` was replaced while being read: the path no longer names the file \
             that was opened",
            shown(&path)
        )
    );

    let (_dir, path) = temp_file("rewritten.jsonl", &contents);
    let mut source = JsonLinesSource::new(&path, "n");
    source.initialize_blocking().unwrap();
    source.next_batch_blocking(1).unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    let modified = file.metadata().unwrap().modified().unwrap();
    file.set_modified(modified + Duration::from_secs(1))
        .unwrap();
    let failure = read_until_failure(&mut source).expect("the rewrite is noticed");
    assert_eq!(
        failure.to_string(),
        format!(
            "input file `{}` was modified while being read: same length, new modification time",
            shown(&path)
        )
    );
}

#[test]
fn a_file_appended_to_while_it_is_read_is_read_to_its_end() {
    let (_dir, path) = temp_file("growing.jsonl", &jsonl_lines(10));
    let mut source = JsonLinesSource::new(&path, "n");
    source.initialize_blocking().unwrap();
    source.next_batch_blocking(1).unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"{\"n\":10}\n")
        .unwrap();
    assert!(read_until_failure(&mut source).is_none());
}
