//! The soak scenarios (`soak-memory`, `soak-disk`): a depth-3 flow under steady backpressure
//! for a fixed time, for `cargo xtask soak`, which samples the process's resident set size
//! from outside while it runs.
//!
//! The source generates orders without end, as fast as it may; the map adds the tax field;
//! the sink delivers at most [`SINK_RATE`] records per second, so both edges' windows stay
//! full and the source spends most of its time blocked on its window. Once a second the run
//! prints one progress line, `{"elapsed_seconds": .., "records": ..}` (records the sink has
//! delivered so far); when the time is up it stops the flow gracefully, checks that it
//! drained, and returns its figures.

use std::path::Path;
use std::time::Duration;

use obzenflow_core::Record;
use obzenflow_runtime::pipeline::{FlowBuilder, FlowHandle, FlowState};
use obzenflow_runtime::stages::{AsyncSinkHandler, RecordError};
use tokio::time::{Instant, MissedTickBehavior};

use crate::flows::{
    check_drained, journals, take_run_dir_bytes, wait_running, AddTax, Orders, STOP_DEADLINE,
};
use crate::scenario::{Pace, Storage};
use crate::BenchError;

/// The most records per second the sink delivers: well below what the source and the map
/// can do, so the flow runs under backpressure, and low enough that a minute of disk
/// journals stays around a gigabyte.
pub(crate) const SINK_RATE: u32 = 50_000;
/// How often the run prints its progress.
const PROGRESS_PERIOD: Duration = Duration::from_secs(1);
/// The sink's name, for its counters.
const SINK: &str = "sink";
/// The source's name, for its backpressure figures.
const SOURCE: &str = "source";

/// What a soak run measured.
pub(crate) struct SoakOutcome {
    /// Records the sink delivered, drain included.
    pub(crate) records: u64,
    /// From the flow running to the flow having drained after the stop.
    pub(crate) elapsed: Duration,
    /// How long the source waited for room in its window, over the whole run.
    pub(crate) source_blocked: Duration,
    /// Bytes of the run's segment files, for disk journals.
    pub(crate) journal_bytes: Option<u64>,
    /// What survives a crash, in words.
    pub(crate) durability: String,
}

/// A sink that delivers at most [`SINK_RATE`] records per second: it waits until its pace
/// allows a batch, then sums the batch's taxed amounts.
struct PacedSink {
    /// When the next batch may be delivered.
    next_due: Option<Instant>,
    /// Sum of `with_tax`: keeps the per-record work real.
    sum: f64,
}

impl AsyncSinkHandler for PacedSink {
    // Never cancelled once started (the runtime's contract); the only await is a sleep.
    async fn consume_batch<'a>(&'a mut self, events: &'a [Record]) -> Vec<Result<(), RecordError>> {
        let now = Instant::now();
        // A sink that was starved does not get to catch up with a burst afterwards.
        let due = self.next_due.map_or(now, |due| due.max(now));
        tokio::time::sleep_until(due).await;
        let batch = u32::try_from(events.len()).unwrap_or(u32::MAX);
        self.next_due = Some(due + Duration::from_secs(1) * batch / SINK_RATE);
        events
            .iter()
            .map(|event| {
                let payload = event.json().ok_or("not a data record")?;
                self.sum += payload["with_tax"].as_f64().unwrap_or(0.0);
                Ok(())
            })
            .collect()
    }
}

/// Runs the soak flow with `storage` journals (run directories under `dir`) for `duration`,
/// printing a progress line every [`PROGRESS_PERIOD`].
pub(crate) async fn run(
    storage: Storage,
    dir: &Path,
    duration: Duration,
) -> Result<SoakOutcome, BenchError> {
    let sink = PacedSink {
        next_due: None,
        sum: 0.0,
    };
    let handle = FlowBuilder::new("bench-soak")
        .journals(journals(storage, dir))
        .async_source(SOURCE, Orders::new(u64::MAX, Pace::Flat))
        .transform("map", AddTax)
        .async_sink(SINK, sink)
        .chain([SOURCE, "map", SINK])
        .build()?
        .start()?;
    wait_running(&handle, "soak").await?;
    let started = Instant::now();
    report_progress(&handle, started, duration).await?;
    handle.stop_graceful(STOP_DEADLINE).await?;
    let report = handle.wait().await?;
    let elapsed = started.elapsed();
    check_drained(&report)?;
    let stage = |name: &str| {
        report
            .metrics
            .stage(name)
            .ok_or_else(|| format!("the report has no stage `{name}`"))
    };
    let records = stage(SINK)?.records_in;
    let source_blocked = stage(SOURCE)?.backpressure_wait;
    let journal_bytes = match &report.run_dir {
        Some(run_dir) => Some(take_run_dir_bytes(run_dir)?),
        None => None,
    };
    Ok(SoakOutcome {
        records,
        elapsed,
        source_blocked,
        journal_bytes,
        durability: report.durability,
    })
}

/// Prints a progress line every [`PROGRESS_PERIOD`] until `duration` has passed since
/// `started`; fails at once if the flow stops running on its own.
async fn report_progress(
    handle: &FlowHandle,
    started: Instant,
    duration: Duration,
) -> Result<(), BenchError> {
    let mut state = handle.state();
    let mut ticker = tokio::time::interval_at(started + PROGRESS_PERIOD, PROGRESS_PERIOD);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    while started.elapsed() < duration {
        tokio::select! {
            biased;
            changed = state.wait_for(|state| *state != FlowState::Running) => {
                let state = changed?.clone();
                return Err(format!("the soak flow stopped on its own: {state:?}").into());
            }
            _ = ticker.tick() => {}
        }
        let records = handle
            .progress()
            .iter()
            .find(|stage| stage.name == SINK)
            .map_or(0, |stage| stage.counts.records_out);
        let line = serde_json::json!({
            "elapsed_seconds": started.elapsed().as_secs_f64(),
            "records": records,
        });
        println!("{line}");
    }
    Ok(())
}
