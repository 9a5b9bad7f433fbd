//! Per-stage counters, updated once per batch and read by the report and metrics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

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
}

impl StageCounters {
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
