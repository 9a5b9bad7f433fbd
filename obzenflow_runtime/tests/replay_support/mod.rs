//! Handlers and helpers shared by the replay tests: a flow of readings, a scaling transform,
//! a stateful per-key aggregation whose `drain` emits totals, and journal helpers.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use obzenflow_core::{ChainEvent, ErrorKind, Lane, ProcessingStatus};
use obzenflow_runtime::journal::inspect;
use obzenflow_runtime::pipeline::{FlowBuilder, FlowReport, Journals};
use obzenflow_runtime::stages::{
    HandlerFailure, RecordError, SinkHandler, SourceHandler, SourcePoll, StatefulHandler,
    TransformHandler,
};
use serde_json::json;

const KEYS: [&str; 3] = ["a", "b", "c"];

/// Emits `count` readings `{"key": a|b|c, "value": i}`; every reading with `i % 7 == 6` is
/// malformed (error status), so it lands on the source's error lane.
pub struct Readings {
    pub next: u64,
    pub count: u64,
    /// The most records one batch holds (each batch is one journal frame).
    pub per_batch: usize,
}

impl Readings {
    pub fn new(count: u64) -> Self {
        Self {
            next: 0,
            count,
            per_batch: usize::MAX,
        }
    }

    /// Readings in batches of one record, so that each is a journal frame of its own.
    pub fn one_at_a_time(count: u64) -> Self {
        Self {
            per_batch: 1,
            ..Self::new(count)
        }
    }
}

impl SourceHandler for Readings {
    fn next_batch(&mut self, max: usize) -> Result<SourcePoll, HandlerFailure> {
        if self.next == self.count {
            return Ok(SourcePoll::Done);
        }
        let end = (self.next + max.min(self.per_batch) as u64).min(self.count);
        let records = (self.next..end).map(reading).collect();
        self.next = end;
        Ok(SourcePoll::Records(records))
    }
}

fn reading(i: u64) -> ChainEvent {
    let key = KEYS[(i % 3) as usize];
    let record = ChainEvent::data("reading", json!({"key": key, "value": i}));
    if i % 7 == 6 {
        record.with_status(ProcessingStatus::error(
            ErrorKind::Decode,
            "malformed reading",
            None,
        ))
    } else {
        record
    }
}

/// A source that must not be called: a replay reads the archive instead.
pub struct NotCalled;

impl SourceHandler for NotCalled {
    fn next_batch(&mut self, _max: usize) -> Result<SourcePoll, HandlerFailure> {
        Err(HandlerFailure::msg(
            "the live source was called during a replay",
        ))
    }
}

/// Multiplies `value` by 2, or by `factor_for_b` for key `b`; rejects values ending in 9.
pub struct Scale {
    pub factor_for_b: i64,
}

impl TransformHandler for Scale {
    fn process(&mut self, event: &ChainEvent) -> Result<Vec<ChainEvent>, RecordError> {
        let payload = event.json().ok_or("not a data record")?;
        let value = payload["value"].as_i64().ok_or("no value")?;
        if value % 10 == 9 {
            return Err(RecordError::validation(format!("value {value} ends in 9")));
        }
        let key = payload["key"].as_str().ok_or("no key")?.to_owned();
        let factor = if key == "b" { self.factor_for_b } else { 2 };
        Ok(vec![event.derive_data(
            "scaled",
            json!({"key": key, "value": value * factor}),
        )])
    }
}

/// Sums values per key; `drain` emits one total per key, in key order.
#[derive(Default)]
pub struct Totals(BTreeMap<String, i64>);

impl StatefulHandler for Totals {
    fn accumulate(
        &mut self,
        event: &ChainEvent,
        _ready: &mut Vec<ChainEvent>,
    ) -> Result<(), RecordError> {
        let payload = event.json().ok_or("not a data record")?;
        let key = payload["key"].as_str().ok_or("no key")?.to_owned();
        *self.0.entry(key).or_default() += payload["value"].as_i64().ok_or("no value")?;
        Ok(())
    }

    fn finish(&mut self) -> Result<Vec<ChainEvent>, HandlerFailure> {
        Ok(std::mem::take(&mut self.0)
            .into_iter()
            .map(|(key, total)| ChainEvent::data("total", json!({"key": key, "total": total})))
            .collect())
    }
}

/// Accepts everything.
pub struct Discard;

impl SinkHandler for Discard {
    fn consume(&mut self, _event: &ChainEvent) -> Result<(), RecordError> {
        Ok(())
    }
}

/// readings -> scale -> totals -> discard, on disk journals under `base`.
pub fn flow(source: impl SourceHandler, factor_for_b: i64, base: &Path) -> FlowBuilder {
    FlowBuilder::new("readings")
        .source("readings", source)
        .transform("scale", Scale { factor_for_b })
        .stateful("totals", Totals::default())
        .sink("discard", Discard)
        .chain(["readings", "scale", "totals", "discard"])
        .journals(Journals::disk(base))
}

/// Runs `flow` to completion and returns its run directory.
pub async fn run_to_completion(flow: FlowBuilder) -> PathBuf {
    let report: FlowReport = flow.build().unwrap().run().await.unwrap();
    assert!(report.is_success(), "{report}");
    report.run_dir.expect("disk journals")
}

/// The data records of one journal of a run.
pub fn data_records(run_dir: &Path, stage: &str, lane: Lane) -> Vec<ChainEvent> {
    inspect::read_journal(run_dir, stage, lane)
        .unwrap()
        .map(Result::unwrap)
        .filter(ChainEvent::is_data)
        .collect()
}
