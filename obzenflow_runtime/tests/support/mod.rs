//! Small handlers shared by the pipeline tests.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use obzenflow_core::{ChainEvent, DeliveryReceipt, EventContent, Lane, LifecycleEvent};
use obzenflow_runtime::journal::inspect;
use obzenflow_runtime::pipeline::{FlowBuilder, FlowReport};
use obzenflow_runtime::stages::{
    AsyncSourceHandler, HandlerFailure, RecordError, SinkHandler, SourceHandler, SourcePoll,
    TransformHandler,
};
use serde_json::json;

/// Emits `count` records `{"n": i, "from": name}`, `batch` at a time.
pub struct Numbers {
    pub name: &'static str,
    pub next: u64,
    pub count: u64,
}

impl Numbers {
    pub fn new(name: &'static str, count: u64) -> Self {
        Self {
            name,
            next: 0,
            count,
        }
    }
}

impl SourceHandler for Numbers {
    fn next_batch(&mut self, max: usize) -> Result<SourcePoll, HandlerFailure> {
        if self.next == self.count {
            return Ok(SourcePoll::Done);
        }
        let end = (self.next + max as u64).min(self.count);
        let records = (self.next..end)
            .map(|n| ChainEvent::data("number", json!({"n": n, "from": self.name})))
            .collect();
        self.next = end;
        Ok(SourcePoll::Records(records))
    }
}

/// Adds `"doubled": 2n`; fails every record whose `n % fail_every == fail_every - 1`.
pub struct Double {
    pub fail_every: Option<u64>,
}

impl TransformHandler for Double {
    fn process(&mut self, event: &ChainEvent) -> Result<Vec<ChainEvent>, RecordError> {
        let n = event
            .json()
            .and_then(|payload| payload["n"].as_u64())
            .ok_or("no n")?;
        if let Some(every) = self.fail_every {
            if n % every == every - 1 {
                return Err(RecordError::validation(format!("record {n} is unlucky")));
            }
        }
        let mut out = event.clone();
        if let Some(payload) = out.payload_mut() {
            payload["doubled"] = json!(n * 2);
        }
        Ok(vec![out])
    }
}

/// Collects every record it is given.
#[derive(Clone, Default)]
pub struct Collect(pub Arc<Mutex<Vec<ChainEvent>>>);

impl Collect {
    pub fn records(&self) -> Vec<ChainEvent> {
        self.0.lock().unwrap().clone()
    }

    /// The `n` of every collected record, tagged with its source.
    pub fn numbers(&self) -> Vec<(String, u64)> {
        self.records()
            .iter()
            .map(|event| {
                let payload = event.json().unwrap();
                (
                    payload["from"].as_str().unwrap().to_owned(),
                    payload["n"].as_u64().unwrap(),
                )
            })
            .collect()
    }
}

impl SinkHandler for Collect {
    fn consume(&mut self, event: &ChainEvent) -> Result<(), RecordError> {
        self.0.lock().unwrap().push(event.clone());
        Ok(())
    }

    fn flush(&mut self) -> Result<Option<DeliveryReceipt>, HandlerFailure> {
        Ok(Some(DeliveryReceipt {
            destination: "collector".to_owned(),
            records: self.0.lock().unwrap().len() as u64,
            bytes: 0,
        }))
    }
}

/// Every record of one journal of a disk run, read back through the inspection API.
pub fn journal_records(report: &FlowReport, name: &str, lane: Lane) -> Vec<ChainEvent> {
    let run_dir = report.run_dir.as_ref().expect("disk journals");
    inspect::read_journal(run_dir, name, lane)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// The terminal lifecycle facts among `events`.
pub fn terminal_facts(events: &[ChainEvent]) -> Vec<LifecycleEvent> {
    events
        .iter()
        .filter_map(|event| match &event.content {
            EventContent::Lifecycle(fact) if fact.is_terminal() => Some(fact.clone()),
            _ => None,
        })
        .collect()
}

/// The flow most tests run: `count` numbers -> `double` (failing every `fail_every`th record)
/// -> `sink`. Journals and configuration are left to the test.
pub fn doubling_flow(
    name: &str,
    count: u64,
    fail_every: Option<u64>,
    sink: Collect,
) -> FlowBuilder {
    FlowBuilder::new(name)
        .source("numbers", Numbers::new("numbers", count))
        .transform("double", Double { fail_every })
        .sink("collect", sink)
        .chain(["numbers", "double", "collect"])
}

/// An infinite source: one record `{"n", "from": "ticker"}` per 10 ms of (paused) time,
/// counting what it produced in `produced`.
pub struct Ticker {
    pub next: u64,
    pub produced: Arc<AtomicU64>,
}

impl Ticker {
    pub fn new(produced: Arc<AtomicU64>) -> Self {
        Self { next: 0, produced }
    }
}

impl AsyncSourceHandler for Ticker {
    async fn next_batch(&mut self, _max: usize) -> Result<SourcePoll, HandlerFailure> {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let record = ChainEvent::data("tick", json!({"n": self.next, "from": "ticker"}));
        self.next += 1;
        self.produced.store(self.next, Ordering::SeqCst);
        Ok(SourcePoll::Records(vec![record]))
    }
}

/// Asserts that `error`'s chain, printed link by link as `ErrorChain` prints it, shows each
/// cause once: no link's message contains the message of a link after it (an error whose
/// message interpolates the error it also marks as its source fails this).
pub fn assert_each_cause_once(error: &(dyn std::error::Error + 'static)) {
    let links: Vec<String> = obzenflow_core::ErrorChain::new(error)
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

/// Collects formatted log lines: the writer of a test's tracing subscriber.
#[derive(Clone, Default)]
pub struct Lines(pub Arc<Mutex<Vec<u8>>>);

impl Lines {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl std::io::Write for Lines {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Lines {
    type Writer = Lines;

    fn make_writer(&'a self) -> Lines {
        self.clone()
    }
}
