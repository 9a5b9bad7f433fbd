//! The same scenarios as ObzenFlow flows, built from the runtime's public API only: a source
//! handler that generates the records, one transform per map, and a sink handler per sink that
//! hands its tally back when the flow drains it.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use obzenflow_core::ChainEvent;
use obzenflow_runtime::journal::SyncPolicy;
use obzenflow_runtime::pipeline::{Flow, FlowBuilder, FlowHandle, FlowReport, FlowState, Journals};
use obzenflow_runtime::stages::{
    AsyncSourceHandler, HandlerFailure, RecordError, SinkHandler, SourcePoll, TransformHandler,
};
use tokio::time::{Interval, MissedTickBehavior};

use crate::measure::{cpu_seconds, segment_bytes};
use crate::scenario::{Pace, Shape, Storage};
use crate::work::{order, tax, Tally, AMOUNT_FIELD, TAXED_FIELD};
use crate::{context, BenchError, RunOutcome};

/// The longest a graceful stop of the idle flow may take before it is cancelled.
pub(crate) const STOP_DEADLINE: Duration = Duration::from_secs(10);
/// How long the idle flow runs before the idle window opens, so start-up work is not counted.
const IDLE_SETTLE: Duration = Duration::from_millis(200);

/// Generates the orders, as fast as asked or one per tick.
pub(crate) struct Orders {
    next: u64,
    total: u64,
    ticker: Option<Interval>,
}

impl Orders {
    /// A source of `total` orders arriving at `pace`. Must be called within a tokio runtime.
    pub(crate) fn new(total: u64, pace: Pace) -> Self {
        let ticker = match pace {
            Pace::Flat => None,
            Pace::Every(period) => {
                let mut ticker = tokio::time::interval(period);
                ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
                Some(ticker)
            }
        };
        Self {
            next: 0,
            total,
            ticker,
        }
    }
}

impl AsyncSourceHandler for Orders {
    // Cancel safe: the only await is a tick, and no record is taken before it completes.
    async fn next_batch(&mut self, max: usize) -> Result<SourcePoll, HandlerFailure> {
        if self.next == self.total {
            return Ok(SourcePoll::Done);
        }
        let wanted = match &mut self.ticker {
            Some(ticker) => {
                ticker.tick().await;
                1
            }
            None => max as u64,
        };
        let end = (self.next + wanted).min(self.total);
        let records = (self.next..end)
            .map(|index| ChainEvent::data("order", order(index)))
            .collect();
        self.next = end;
        Ok(SourcePoll::Records(records))
    }
}

/// A source that waits forever for records that never come.
struct Silent;

impl AsyncSourceHandler for Silent {
    async fn next_batch(&mut self, _max: usize) -> Result<SourcePoll, HandlerFailure> {
        std::future::pending().await
    }
}

/// The map: the record with the tax field set, sharing its other fields with the input.
pub(crate) struct AddTax;

impl TransformHandler for AddTax {
    fn process(&mut self, event: &ChainEvent) -> Result<Vec<ChainEvent>, RecordError> {
        let amount = event.field(AMOUNT_FIELD).and_then(|amount| amount.as_f64());
        let mut taxed = event.clone();
        taxed.set_field(TAXED_FIELD, tax(amount.unwrap_or(0.0)))?;
        Ok(vec![taxed])
    }
}

/// Tallies every record and hands the tally back when the flow drains the sink.
struct TallySink {
    tally: Tally,
    done: mpsc::Sender<Tally>,
}

impl SinkHandler for TallySink {
    fn consume(&mut self, event: &ChainEvent) -> Result<(), RecordError> {
        if !event.is_data() {
            return Err("not a data record".into());
        }
        self.tally
            .observe_fields(|name| event.field(name).map(Cow::into_owned));
        Ok(())
    }

    fn flush(&mut self) -> Result<Option<obzenflow_core::DeliveryReceipt>, HandlerFailure> {
        let tally = std::mem::replace(&mut self.tally, Tally::new());
        self.done
            .send(tally)
            .map_err(|_| HandlerFailure::msg("the benchmark stopped listening for tallies"))?;
        Ok(None)
    }
}

/// The journals of `storage`, with run directories under `dir` for disk storage.
pub(crate) fn journals(storage: Storage, dir: &Path) -> Journals {
    match storage {
        Storage::Memory => Journals::memory(),
        Storage::Disk => Journals::disk(dir),
        Storage::DiskEveryBatch => Journals::disk(dir).with_sync_policy(SyncPolicy::EveryBatch),
    }
}

/// A flow of `shape`: `source`, then `map1..mapN` in a line, then every sink reading the last
/// map (or the source, with no map).
fn build(
    shape: Shape,
    source: impl AsyncSourceHandler,
    journals: Journals,
    done: &mpsc::Sender<Tally>,
) -> Result<Flow, BenchError> {
    let mut builder = FlowBuilder::new(format!("bench-{shape}"))
        .journals(journals)
        .async_source("source", source);
    let mut previous = "source".to_owned();
    for index in 1..=shape.maps() {
        let name = format!("map{index}");
        builder = builder.transform(&name, AddTax).edge(&previous, &name);
        previous = name;
    }
    for index in 1..=shape.sinks() {
        let name = format!("sink{index}");
        let sink = TallySink {
            tally: Tally::new(),
            done: done.clone(),
        };
        builder = builder.sink(&name, sink).edge(&previous, &name);
    }
    Ok(builder.build()?)
}

/// Runs `records` records through a flow of `shape` with `storage` journals.
pub(crate) async fn run(
    shape: Shape,
    pace: Pace,
    records: u64,
    storage: Storage,
    dir: &Path,
) -> Result<RunOutcome, BenchError> {
    let (done, tallies) = mpsc::channel();
    let started = Instant::now();
    let flow = build(
        shape,
        Orders::new(records, pace),
        journals(storage, dir),
        &done,
    )?;
    let report = flow.run().await?;
    let elapsed = started.elapsed();
    check_drained(&report)?;
    drop(done);
    let mut tally = Tally::new();
    for sink_tally in tallies.iter() {
        tally.merge(&sink_tally);
    }
    let journal_bytes = match &report.run_dir {
        Some(run_dir) => Some(take_run_dir_bytes(run_dir)?),
        None => None,
    };
    Ok(RunOutcome {
        records,
        elapsed,
        tally,
        journal_bytes,
        durability: report.durability,
    })
}

/// CPU seconds the process uses while a depth-3 flow whose source never emits sits idle for
/// `window`, after it has started and settled; the flow is then stopped gracefully.
pub(crate) async fn idle(
    storage: Storage,
    dir: &Path,
    window: Duration,
) -> Result<f64, BenchError> {
    let (done, _tallies) = mpsc::channel();
    let shape = Shape::Chain { stages: 3 };
    let handle = build(shape, Silent, journals(storage, dir), &done)?.start()?;
    wait_running(&handle, "idle").await?;
    tokio::time::sleep(IDLE_SETTLE).await;
    let before = cpu_seconds()?;
    tokio::time::sleep(window).await;
    let used = cpu_seconds()? - before;
    handle.stop_graceful(STOP_DEADLINE).await?;
    let report = handle.wait().await?;
    check_drained(&report)?;
    if let Some(run_dir) = &report.run_dir {
        take_run_dir_bytes(run_dir)?;
    }
    Ok(used)
}

/// Waits until the flow left `Created`; an error unless it is then running.
pub(crate) async fn wait_running(handle: &FlowHandle, flow: &str) -> Result<(), BenchError> {
    let mut state = handle.state();
    let reached = state
        .wait_for(|state| !matches!(state, FlowState::Created))
        .await?
        .clone();
    if reached != FlowState::Running {
        return Err(format!("the {flow} flow did not start: {reached:?}").into());
    }
    Ok(())
}

pub(crate) fn check_drained(report: &FlowReport) -> Result<(), BenchError> {
    if report.is_success() {
        Ok(())
    } else {
        Err(format!("the flow was not a success:\n{report}").into())
    }
}

/// The bytes of the run's segment files, then removes the run directory.
pub(crate) fn take_run_dir_bytes(run_dir: &PathBuf) -> Result<u64, BenchError> {
    let bytes = segment_bytes(run_dir)?;
    std::fs::remove_dir_all(run_dir)
        .map_err(context(format!("cannot remove {}", run_dir.display())))?;
    Ok(bytes)
}
