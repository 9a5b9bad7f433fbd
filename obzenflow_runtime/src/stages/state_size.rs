//! [`StateSize`]: how much state a handler holds (keys, records), the one gauge pair the
//! runtime publishes for every stateful handler that reports it.

use std::sync::atomic::{AtomicU64, Ordering};

/// How much state a handler holds at one moment: how many keys, and how many records under
/// them. A handler reports it after each batch (`state_size` on [`TransformHandler`] and
/// [`MultiInputHandler`]); the stage keeps the latest and the peak of each, which the metrics
/// snapshots, Prometheus and the flow report show.
///
/// [`TransformHandler`]: super::TransformHandler
/// [`MultiInputHandler`]: super::MultiInputHandler
///
/// ```
/// use obzenflow_runtime::stages::StateSize;
///
/// let size = StateSize::new(3, 10);
/// assert_eq!((size.keys, size.records), (3, 10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StateSize {
    /// Distinct keys held.
    pub keys: u64,
    /// Records held under them.
    pub records: u64,
}

impl StateSize {
    /// A state of `keys` keys holding `records` records.
    pub const fn new(keys: u64, records: u64) -> Self {
        Self { keys, records }
    }
}

/// A stage's state gauge: the latest reported size and the largest seen.
///
/// ```
/// use obzenflow_runtime::stages::{StateGauge, StateSize};
///
/// let gauge = StateGauge { current: StateSize::new(0, 0), peak: StateSize::new(4, 9) };
/// assert_eq!(gauge.to_string(), "0 keys, 0 records (peak 4 keys, 9 records)");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StateGauge {
    /// The size last reported.
    pub current: StateSize,
    /// The largest keys and records reported, each on its own.
    pub peak: StateSize,
}

impl std::fmt::Display for StateGauge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} keys, {} records (peak {} keys, {} records)",
            self.current.keys, self.current.records, self.peak.keys, self.peak.records
        )
    }
}

/// The shared atomics behind a [`StateGauge`]; untouched (and reported as absent) until a
/// handler reports a size.
#[derive(Debug, Default)]
pub(crate) struct AtomicStateGauge {
    reported: std::sync::atomic::AtomicBool,
    keys: AtomicU64,
    records: AtomicU64,
    peak_keys: AtomicU64,
    peak_records: AtomicU64,
}

impl AtomicStateGauge {
    /// Records the latest size; called by the stage task only, once per batch.
    pub(crate) fn set(&self, size: StateSize) {
        self.keys.store(size.keys, Ordering::Relaxed);
        self.records.store(size.records, Ordering::Relaxed);
        self.peak_keys.fetch_max(size.keys, Ordering::Relaxed);
        self.peak_records.fetch_max(size.records, Ordering::Relaxed);
        self.reported.store(true, Ordering::Release);
    }

    /// The gauge, if the handler ever reported a size.
    pub(crate) fn get(&self) -> Option<StateGauge> {
        if !self.reported.load(Ordering::Acquire) {
            return None;
        }
        Some(StateGauge {
            current: StateSize::new(
                self.keys.load(Ordering::Relaxed),
                self.records.load(Ordering::Relaxed),
            ),
            peak: StateSize::new(
                self.peak_keys.load(Ordering::Relaxed),
                self.peak_records.load(Ordering::Relaxed),
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gauge_keeps_the_latest_and_the_peak_and_is_absent_until_reported() {
        let gauge = AtomicStateGauge::default();
        assert_eq!(gauge.get(), None);
        gauge.set(StateSize::new(2, 5));
        gauge.set(StateSize::new(3, 1));
        assert_eq!(
            gauge.get(),
            Some(StateGauge {
                current: StateSize::new(3, 1),
                peak: StateSize::new(3, 5),
            })
        );
    }
}
