//! Per-stage counters, updated once per batch and read by the report and metrics.
//!
//! The stage task adds a batch's counts, error kinds and processing times in one go
//! ([`StageCounters::add`]); backpressure waits are added by the stage's journals as they end,
//! the counters being the `BackpressureObserver` the journals are opened with. Observers (the
//! metrics aggregator, progress bars, the report) read the atomics at any time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use obzenflow_core::ErrorKind;

use super::error_counts::{error_kind_index, ErrorCounts, ERROR_KINDS};
use super::histogram::{AtomicHistogram, HistogramSnapshot, LocalHistogram};
use super::state_size::{AtomicStateGauge, StateGauge, StateSize};
use crate::journal::BackpressureObserver;

/// How many error reasons a stage keeps for its report.
pub(crate) const KEPT_ERROR_REASONS: usize = 3;

/// Live counts of one stage. Shared between the stage task and observers.
#[derive(Debug, Default)]
pub struct StageCounters {
    records_in: AtomicU64,
    records_out: AtomicU64,
    records_errored: AtomicU64,
    records_filtered: AtomicU64,
    batches: AtomicU64,
    started_at_us: AtomicU64,
    finished_at_us: AtomicU64,
    first_errors: Mutex<Vec<String>>,
    receipts: Mutex<Vec<obzenflow_core::DeliveryReceipt>>,
    errors_by_kind: [AtomicU64; ERROR_KINDS],
    processing_time: AtomicHistogram,
    backpressure_waits: AtomicU64,
    backpressure_wait_ns: AtomicU64,
    state: AtomicStateGauge,
}

/// A consistent-enough copy of [`StageCounters`] at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CounterSnapshot {
    /// Data records read from upstream (or produced, for a source).
    pub records_in: u64,
    /// Data records appended to the stage's data journal; for a sink, records delivered.
    pub records_out: u64,
    /// Records appended to the stage's error lane.
    pub records_errored: u64,
    /// Input records that produced no output.
    pub records_filtered: u64,
    /// Batches processed.
    pub batches: u64,
}

/// The counts of one batch, added to the shared counters in one go.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BatchCounts {
    pub(crate) records_in: u64,
    pub(crate) records_out: u64,
    pub(crate) records_errored: u64,
    pub(crate) records_filtered: u64,
    pub(crate) records_delivered: u64,
    pub(crate) errors_by_kind: [u64; ERROR_KINDS],
}

impl BatchCounts {
    /// Counts one errored record of `kind` (the caller counts it in `records_errored`).
    pub(crate) fn count_error_kind(&mut self, kind: ErrorKind) {
        self.errors_by_kind[error_kind_index(kind)] += 1;
    }
}

impl StageCounters {
    /// Counters that also record processing times, or skip them when `record_timings` is
    /// false (metrics disabled). Counts are always kept: reports and error budgets need them.
    pub(crate) fn new(record_timings: bool) -> Self {
        Self {
            processing_time: AtomicHistogram::new(record_timings),
            ..Self::default()
        }
    }

    /// A stage-local histogram to record a batch's processing times into, recording only if
    /// these counters do.
    pub(crate) fn local_histogram(&self) -> LocalHistogram {
        LocalHistogram::new(self.processing_time.is_enabled())
    }

    /// Adds a batch's processing times and empties `local`.
    pub(crate) fn add_timings(&self, local: &mut LocalHistogram) {
        self.processing_time.merge(local);
    }

    /// Errored records per kind.
    pub fn errors_by_kind(&self) -> ErrorCounts {
        ErrorCounts::from_array(std::array::from_fn(|index| {
            self.errors_by_kind[index].load(Ordering::Relaxed)
        }))
    }

    /// The processing times recorded so far; empty when metrics are disabled.
    pub fn processing_time(&self) -> HistogramSnapshot {
        self.processing_time.snapshot()
    }

    /// The state its handler reported holding (latest and peak), if it reports one.
    pub fn state(&self) -> Option<StateGauge> {
        self.state.get()
    }

    /// Records the size of the state the handler holds; once per batch.
    pub(crate) fn set_state(&self, size: StateSize) {
        self.state.set(size);
    }

    /// How many appends waited for a slow reader, and for how long in total.
    pub fn backpressure(&self) -> (u64, Duration) {
        (
            self.backpressure_waits.load(Ordering::Relaxed),
            Duration::from_nanos(self.backpressure_wait_ns.load(Ordering::Relaxed)),
        )
    }

    pub(crate) fn add(&self, batch: BatchCounts) {
        self.records_in
            .fetch_add(batch.records_in, Ordering::Relaxed);
        self.records_out.fetch_add(
            batch.records_out + batch.records_delivered,
            Ordering::Relaxed,
        );
        self.records_errored
            .fetch_add(batch.records_errored, Ordering::Relaxed);
        self.records_filtered
            .fetch_add(batch.records_filtered, Ordering::Relaxed);
        if batch.records_errored > 0 {
            for (counter, count) in self.errors_by_kind.iter().zip(batch.errors_by_kind) {
                if count > 0 {
                    counter.fetch_add(count, Ordering::Relaxed);
                }
            }
        }
        self.batches.fetch_add(1, Ordering::Relaxed);
    }

    /// Keeps `reason` if fewer than [`KEPT_ERROR_REASONS`] were kept; called on the error
    /// path only.
    pub(crate) fn note_error(&self, reason: impl FnOnce() -> String) {
        if let Ok(mut kept) = self.first_errors.lock() {
            if kept.len() < KEPT_ERROR_REASONS {
                kept.push(reason());
            }
        }
    }

    /// The first few error reasons, in the order they happened.
    pub fn first_errors(&self) -> Vec<String> {
        self.first_errors
            .lock()
            .map(|kept| kept.clone())
            .unwrap_or_default()
    }

    /// Keeps a sink's delivery receipt for the report.
    pub(crate) fn note_receipt(&self, receipt: &obzenflow_core::DeliveryReceipt) {
        if let Ok(mut receipts) = self.receipts.lock() {
            receipts.push(receipt.clone());
        }
    }

    /// The delivery receipts the stage (a sink) reported, in order.
    pub fn receipts(&self) -> Vec<obzenflow_core::DeliveryReceipt> {
        self.receipts
            .lock()
            .map(|receipts| receipts.clone())
            .unwrap_or_default()
    }

    pub(crate) fn mark_started(&self, now: obzenflow_core::Timestamp) {
        self.started_at_us.store(now.as_micros(), Ordering::Relaxed);
    }

    pub(crate) fn mark_finished(&self, now: obzenflow_core::Timestamp) {
        self.finished_at_us
            .store(now.as_micros(), Ordering::Relaxed);
    }

    /// How long the stage ran: from initialization to its terminal state (or until now).
    pub fn duration(&self) -> std::time::Duration {
        let started = self.started_at_us.load(Ordering::Relaxed);
        if started == 0 {
            return std::time::Duration::ZERO;
        }
        let finished = match self.finished_at_us.load(Ordering::Relaxed) {
            0 => obzenflow_core::Timestamp::now().as_micros(),
            finished => finished,
        };
        std::time::Duration::from_micros(finished.saturating_sub(started))
    }

    /// The current counts.
    pub fn snapshot(&self) -> CounterSnapshot {
        CounterSnapshot {
            records_in: self.records_in.load(Ordering::Relaxed),
            records_out: self.records_out.load(Ordering::Relaxed),
            records_errored: self.records_errored.load(Ordering::Relaxed),
            records_filtered: self.records_filtered.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
        }
    }
}

impl BackpressureObserver for StageCounters {
    /// Counts one append to the stage's journals that waited `waited` for a slow reader.
    fn waited(&self, waited: Duration) {
        let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        self.backpressure_waits.fetch_add(1, Ordering::Relaxed);
        self.backpressure_wait_ns
            .fetch_add(nanos, Ordering::Relaxed);
    }
}
