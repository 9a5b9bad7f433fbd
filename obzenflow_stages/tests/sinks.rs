//! Sinks: file contents, atomic finish, receipts, rejected records, console output.

mod support;

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use obzenflow_core::{ChainEvent, DeliveryReceipt, ErrorKind, TypedPayload};
use obzenflow_runtime::pipeline::{FlowBuilder, Journals};
use obzenflow_runtime::stages::{RecordError, SinkHandler};
use obzenflow_stages::sinks::{
    CollectSink, ConsoleSink, CsvSink, FileSinkConfig, JsonLinesSink, NullSink,
};
use obzenflow_stages::sources::IterSource;
use serde_json::json;
use support::{assert_drained, chain, failure_reason, shown, Order};

fn orders() -> Vec<Order> {
    vec![
        Order {
            id: 1,
            customer: "ada, countess".into(),
            amount: 10.5,
        },
        Order {
            id: 2,
            customer: "grace".into(),
            amount: 3.0,
        },
    ]
}

/// Feeds `events` to `sink` outside a flow and returns its receipt and per-record results.
fn feed(
    sink: &mut impl SinkHandler,
    events: &[ChainEvent],
) -> (Vec<Result<(), RecordError>>, Option<DeliveryReceipt>) {
    sink.initialize().unwrap();
    let results = events.iter().map(|event| sink.consume(event)).collect();
    (results, sink.flush().unwrap())
}

fn order_events() -> Vec<ChainEvent> {
    orders().iter().map(|o| o.to_event().unwrap()).collect()
}

#[test]
fn jsonl_sink_writes_payloads_atomically_and_reports_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out/orders.jsonl");
    let mut sink = JsonLinesSink::new(&path);
    sink.initialize().unwrap();
    for event in order_events() {
        sink.consume(&event).unwrap();
    }
    assert!(!path.exists(), "the final file appears only at flush");
    let receipt = sink.flush().unwrap().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        text,
        "{\"amount\":10.5,\"customer\":\"ada, countess\",\"id\":1}\n\
         {\"amount\":3.0,\"customer\":\"grace\",\"id\":2}\n"
    );
    assert_eq!(
        receipt,
        DeliveryReceipt {
            destination: shown(&path),
            records: 2,
            bytes: text.len() as u64
        }
    );
    let left: Vec<_> = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .filter(|name| name.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn jsonl_sink_can_write_whole_events_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let config = FileSinkConfig {
        atomic: false,
        create_dirs: false,
        overwrite_on_replay: false,
    };
    let mut sink = JsonLinesSink::new(&path).whole_events().with_config(config);
    sink.initialize().unwrap();
    sink.consume(&order_events()[0]).unwrap();
    assert!(
        path.exists(),
        "a non-atomic sink writes the final path directly"
    );
    sink.flush().unwrap();
    let line = std::fs::read_to_string(&path).unwrap();
    let event: ChainEvent = serde_json::from_str(line.trim_end()).unwrap();
    assert_eq!(Order::from_event(&event).unwrap(), orders()[0]);
}

#[test]
fn typed_csv_sink_writes_a_header_and_quotes_fields() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders.csv");
    let mut events = order_events();
    events.push(ChainEvent::data("refund", json!({})));
    let (results, receipt) = feed(&mut CsvSink::typed::<Order>(&path), &events);
    assert_eq!(
        results[2].as_ref().unwrap_err(),
        &RecordError::decode("expected a `order` record, found `refund`")
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        text,
        "id,customer,amount\n1,\"ada, countess\",10.5\n2,grace,3.0\n"
    );
    let receipt = receipt.unwrap();
    assert_eq!((receipt.records, receipt.bytes), (2, text.len() as u64));
}

#[test]
fn csv_sink_writes_flat_objects_by_the_first_records_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rows.csv");
    let events = vec![
        ChainEvent::data("row", json!({"b": 2, "a": "x", "c": null})),
        ChainEvent::data("row", json!({"a": "y", "b": [1, 2]})),
        ChainEvent::data("row", json!({"a": "z", "d": true})),
        ChainEvent::data("row", json!("not an object")),
    ];
    let (results, receipt) = feed(&mut CsvSink::new(&path), &events);
    assert_eq!(
        results[2].as_ref().unwrap_err().message,
        "field `d` is not a column (columns: a, b, c)"
    );
    assert_eq!(
        results[3].as_ref().unwrap_err().message,
        "payload is not a JSON object"
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text, "a,b,c\nx,2,\ny,\"[1,2]\",\n");
    assert_eq!(receipt.unwrap().records, 2);
}

#[test]
fn a_file_sink_that_cannot_create_its_file_fails_initialize() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"").unwrap();
    let error = JsonLinesSink::new(blocker.join("out.jsonl"))
        .initialize()
        .unwrap_err();
    assert_eq!(
        chain(&error),
        format!(
            "cannot create directory `{}`: File exists (os error 17)",
            shown(&blocker)
        )
    );
    let config = FileSinkConfig {
        atomic: true,
        create_dirs: false,
        overwrite_on_replay: false,
    };
    let error = CsvSink::new(dir.path().join("missing/out.csv"))
        .with_config(config)
        .initialize()
        .unwrap_err();
    let message = chain(&error);
    let prefix = format!(
        "cannot create output file `{}.",
        shown(&dir.path().join("missing/out.csv"))
    );
    assert!(
        message.starts_with(&prefix)
            && message.ends_with(".tmp`: No such file or directory (os error 2)"),
        "{message}"
    );
}

/// A writer whose bytes the test can read, or that fails every write.
#[derive(Clone, Default)]
struct Shared {
    bytes: Arc<Mutex<Vec<u8>>>,
    broken: bool,
}

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.broken {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "pipe closed"));
        }
        self.bytes.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn console_sink_prints_a_title_and_one_line_per_record() {
    let out = Shared::default();
    let mut sink =
        ConsoleSink::typed(|o: &Order| format!("{:>3} {:<14} {:>6.2}", o.id, o.customer, o.amount))
            .title("Orders")
            .writer(out.clone());
    let (results, receipt) = feed(&mut sink, &order_events());
    assert!(results.iter().all(Result::is_ok));
    let text = String::from_utf8(out.bytes.lock().unwrap().clone()).unwrap();
    assert_eq!(
        text,
        "Orders\n  1 ada, countess   10.50\n  2 grace            3.00\n"
    );
    let receipt = receipt.unwrap();
    assert_eq!(
        (receipt.destination.as_str(), receipt.bytes),
        ("console", text.len() as u64)
    );

    let out = Shared::default();
    let mut sink = ConsoleSink::new().writer(out.clone());
    feed(&mut sink, &[ChainEvent::data("n", json!({"x": 1}))]);
    assert_eq!(out.bytes.lock().unwrap().as_slice(), b"n {\"x\":1}\n");
}

#[test]
fn a_console_that_cannot_be_written_rejects_records_and_fails_at_flush() {
    let broken = Shared {
        broken: true,
        ..Shared::default()
    };
    let mut sink = ConsoleSink::new().writer(broken);
    let error = sink.consume(&order_events()[0]).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Other);
    assert_eq!(error.message, "cannot write to the console: pipe closed");
    assert_eq!(sink.consume(&order_events()[1]).unwrap_err(), error);
    assert_eq!(
        chain(&sink.flush().unwrap_err()),
        "cannot write to the console: pipe closed"
    );
}

#[test]
fn null_and_collect_sinks_count_what_they_get() {
    let (_, receipt) = feed(&mut NullSink::new(), &order_events());
    assert_eq!(receipt.unwrap().records, 2);
    let collect = CollectSink::new();
    let (_, receipt) = feed(&mut collect.clone(), &order_events());
    assert_eq!(receipt.unwrap().records, 2);
    assert_eq!(collect.decode::<Order>().unwrap(), orders());
    assert_eq!(collect.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_sinks_in_a_flow_fan_out_and_finish_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let (jsonl, csv) = (dir.path().join("o.jsonl"), dir.path().join("o.csv"));
    let report = FlowBuilder::new("files")
        .source("orders", IterSource::from_payloads(orders()))
        .sink("jsonl", JsonLinesSink::new(&jsonl))
        .sink("csv", CsvSink::typed::<Order>(&csv))
        .sink("null", NullSink::new())
        .edge("orders", "jsonl")
        .edge("orders", "csv")
        .edge("orders", "null")
        .journals(Journals::memory())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_drained(&report);
    assert_eq!(std::fs::read_to_string(&jsonl).unwrap().lines().count(), 2);
    assert_eq!(std::fs::read_to_string(&csv).unwrap().lines().count(), 3);
    assert_eq!(report.stage("csv").unwrap().records_out, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_that_cannot_open_its_file_fails_the_flow() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"").unwrap();
    let report = FlowBuilder::new("blocked")
        .source("orders", IterSource::from_payloads(orders()))
        .sink("jsonl", JsonLinesSink::new(blocker.join("o.jsonl")))
        .edge("orders", "jsonl")
        .journals(Journals::memory())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    let reason = failure_reason(&report, "jsonl");
    let expected = format!(
        "cannot create directory `{}`: File exists (os error 17)",
        shown(&blocker)
    );
    assert!(reason.ends_with(&expected), "{reason}");
}
