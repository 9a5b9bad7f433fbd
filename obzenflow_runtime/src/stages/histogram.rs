//! Processing-time histograms: a log-linear bucket layout over nanoseconds, recorded per record
//! into a stage-local array and merged into shared atomic buckets once per batch.
//!
//! The layout is the one HDR histograms use, fixed at compile time: every value below 64 ns has
//! its own bucket, and each power of two above is split into 32 equal buckets, so a recorded
//! value is known to within 1/32 (about 3 %) of itself, from nanoseconds to minutes. Values of
//! 2^40 ns (about 18 minutes) and more share the last bucket. That is 1,152 buckets, 9 KiB per
//! stage.
//!
//! Why not the `hdrhistogram` crate: merging one of its histograms into another walks every
//! count (about 3,000 at this precision), which would cost more than a small batch itself,
//! and sharing one between a stage and an observer needs a lock or its `sync` feature. Here a
//! stage records into its [`LocalHistogram`] (a plain array plus the list of buckets it
//! touched) and [`AtomicHistogram::merge`] adds only the touched buckets, with relaxed atomic
//! adds nobody else contends for; observers read the atomics whenever they like.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Values below `1 << LINEAR_BITS` nanoseconds have a bucket each.
const LINEAR_BITS: u32 = 6;
/// Buckets per power of two above the linear range: `1 << (LINEAR_BITS - 1)`.
const SUB_BUCKET_BITS: u32 = LINEAR_BITS - 1;
/// Values are clamped below `1 << MAX_BITS` nanoseconds.
const MAX_BITS: u32 = 40;
/// The largest value with a bucket of its own range.
const MAX_VALUE_NS: u64 = (1 << MAX_BITS) - 1;
/// How many buckets the layout has.
pub(crate) const BUCKETS: usize = ((MAX_BITS - LINEAR_BITS + 2) as usize) << SUB_BUCKET_BITS;

/// The bucket a value of `value_ns` nanoseconds falls in.
pub(crate) fn bucket_index(value_ns: u64) -> usize {
    let value = value_ns.min(MAX_VALUE_NS);
    if value < (1 << LINEAR_BITS) {
        return value as usize;
    }
    let highest_bit = 63 - value.leading_zeros();
    let shift = highest_bit - SUB_BUCKET_BITS;
    // `value >> shift` is in [32, 64): the top six bits of the value.
    ((shift as usize) << SUB_BUCKET_BITS) + (value >> shift) as usize
}

/// The smallest and largest value (in nanoseconds) that fall in bucket `index`.
pub(crate) fn bucket_bounds(index: usize) -> (u64, u64) {
    if index < (1 << LINEAR_BITS) {
        return (index as u64, index as u64);
    }
    let shift = (index >> SUB_BUCKET_BITS) - 1;
    let mantissa = ((index & ((1 << SUB_BUCKET_BITS) - 1)) + (1 << SUB_BUCKET_BITS)) as u64;
    (mantissa << shift, ((mantissa + 1) << shift) - 1)
}

/// A stage's own histogram for the batch in progress; only the stage task touches it.
#[derive(Debug)]
pub(crate) struct LocalHistogram {
    /// Empty when recording is disabled.
    counts: Box<[u64]>,
    /// The buckets with a non-zero count, so a merge visits only those.
    touched: Vec<u16>,
    sum_ns: u64,
}

impl LocalHistogram {
    /// A local histogram that records, or ignores everything when `enabled` is false.
    pub(crate) fn new(enabled: bool) -> Self {
        let buckets = if enabled { BUCKETS } else { 0 };
        Self {
            counts: vec![0; buckets].into_boxed_slice(),
            touched: Vec::new(),
            sum_ns: 0,
        }
    }

    /// Records one value; a few instructions and no atomics.
    pub(crate) fn record(&mut self, value_ns: u64) {
        if self.counts.is_empty() {
            return;
        }
        let index = bucket_index(value_ns);
        let count = &mut self.counts[index];
        if *count == 0 {
            // `BUCKETS` is well below `u16::MAX`.
            self.touched.push(index as u16);
        }
        *count += 1;
        self.sum_ns = self.sum_ns.saturating_add(value_ns);
    }
}

/// The shared histogram of one stage: written by the stage once per batch, read by observers.
#[derive(Debug)]
pub(crate) struct AtomicHistogram {
    /// Empty when recording is disabled.
    buckets: Box<[AtomicU64]>,
    sum_ns: AtomicU64,
}

impl Default for AtomicHistogram {
    fn default() -> Self {
        Self::new(true)
    }
}

impl AtomicHistogram {
    /// A histogram with every bucket, or none when `enabled` is false.
    pub(crate) fn new(enabled: bool) -> Self {
        let buckets = if enabled { BUCKETS } else { 0 };
        Self {
            buckets: (0..buckets).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
        }
    }

    /// Whether values are recorded at all.
    pub(crate) fn is_enabled(&self) -> bool {
        !self.buckets.is_empty()
    }

    /// Adds what `local` recorded and empties it; touches only the buckets it used.
    pub(crate) fn merge(&self, local: &mut LocalHistogram) {
        if local.touched.is_empty() {
            return;
        }
        for index in local.touched.drain(..) {
            let index = usize::from(index);
            let count = std::mem::take(&mut local.counts[index]);
            if let Some(bucket) = self.buckets.get(index) {
                bucket.fetch_add(count, Ordering::Relaxed);
            }
        }
        self.sum_ns
            .fetch_add(std::mem::take(&mut local.sum_ns), Ordering::Relaxed);
    }

    /// The counts now. Taken bucket by bucket while the stage may be adding, so a snapshot
    /// taken mid-merge can miss part of that batch; the next one has it.
    pub(crate) fn snapshot(&self) -> HistogramSnapshot {
        let buckets: Vec<(u16, u64)> = self
            .buckets
            .iter()
            .enumerate()
            .filter_map(|(index, bucket)| {
                let count = bucket.load(Ordering::Relaxed);
                (count > 0).then_some((index as u16, count))
            })
            .collect();
        HistogramSnapshot {
            count: buckets.iter().map(|(_, count)| count).sum(),
            sum_ns: self.sum_ns.load(Ordering::Relaxed),
            buckets,
        }
    }
}

/// Recorded processing times of one stage: how many, their sum, and their distribution to
/// within about 3 %.
///
/// ```
/// use std::time::Duration;
/// use obzenflow_runtime::metrics::HistogramSnapshot;
///
/// let empty = HistogramSnapshot::default();
/// assert_eq!(empty.count(), 0);
/// assert_eq!(empty.quantile(0.99), Duration::ZERO);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// Non-empty buckets in ascending order: (bucket index, count).
    buckets: Vec<(u16, u64)>,
    count: u64,
    sum_ns: u64,
}

impl HistogramSnapshot {
    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The sum of every recorded value.
    pub fn sum(&self) -> Duration {
        Duration::from_nanos(self.sum_ns)
    }

    /// The mean of the recorded values, zero when there are none.
    pub fn mean(&self) -> Duration {
        match self.count {
            0 => Duration::ZERO,
            count => Duration::from_nanos(self.sum_ns / count),
        }
    }

    /// The value below which a share `quantile` (in `0.0..=1.0`) of the recorded values fall,
    /// reported as the largest value of its bucket (so at most 3 % above the true one); zero
    /// when nothing was recorded.
    pub fn quantile(&self, quantile: f64) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        let quantile = quantile.clamp(0.0, 1.0);
        // The rank of the value asked for, counted from 1; float rounding must not push it
        // past the last value.
        let rank = ((quantile * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (index, count) in &self.buckets {
            seen += count;
            if seen >= rank {
                return Duration::from_nanos(bucket_bounds(usize::from(*index)).1);
            }
        }
        self.max()
    }

    /// The median: [`quantile(0.5)`](Self::quantile).
    pub fn p50(&self) -> Duration {
        self.quantile(0.5)
    }

    /// The 99th percentile: [`quantile(0.99)`](Self::quantile).
    pub fn p99(&self) -> Duration {
        self.quantile(0.99)
    }

    /// The largest recorded value, to within its bucket; zero when nothing was recorded.
    pub fn max(&self) -> Duration {
        self.buckets.last().map_or(Duration::ZERO, |(index, _)| {
            Duration::from_nanos(bucket_bounds(usize::from(*index)).1)
        })
    }

    /// How many recorded values are certainly at most `bound_ns` nanoseconds: those whose
    /// whole bucket lies at or below it. This is what a Prometheus `le` bucket counts.
    pub(crate) fn count_at_most(&self, bound_ns: u64) -> u64 {
        self.buckets
            .iter()
            .take_while(|(index, _)| bucket_bounds(usize::from(*index)).1 <= bound_ns)
            .map(|(_, count)| count)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_layout_is_contiguous_and_covers_every_value() {
        assert_eq!(BUCKETS, 1_152);
        let mut expected_lower = 0;
        for index in 0..BUCKETS {
            let (lower, upper) = bucket_bounds(index);
            assert_eq!(lower, expected_lower, "bucket {index}");
            assert!(upper >= lower);
            assert_eq!(bucket_index(lower), index);
            assert_eq!(bucket_index(upper), index);
            expected_lower = upper + 1;
        }
        assert_eq!(expected_lower, MAX_VALUE_NS + 1);
        assert_eq!(bucket_index(u64::MAX), BUCKETS - 1);
    }

    proptest! {
        #[test]
        fn every_value_is_within_a_thirty_second_of_its_bucket(value in 0..MAX_VALUE_NS) {
            let (lower, upper) = bucket_bounds(bucket_index(value));
            prop_assert!(lower <= value && value <= upper);
            if lower < 64 {
                prop_assert_eq!(lower, upper);
            } else {
                prop_assert!((upper - lower + 1) * 32 <= lower);
            }
        }
    }

    #[test]
    fn local_records_merge_into_the_shared_histogram() {
        let shared = AtomicHistogram::new(true);
        let mut local = LocalHistogram::new(true);
        for micros in [10_u64, 20, 30, 40, 50, 60, 70, 80, 90, 100] {
            local.record(micros * 1_000);
        }
        shared.merge(&mut local);
        assert!(local.touched.is_empty());
        assert!(local.counts.iter().all(|count| *count == 0));
        let snapshot = shared.snapshot();
        assert_eq!(snapshot.count(), 10);
        assert_eq!(snapshot.sum(), Duration::from_micros(550));
        let p50 = snapshot.p50();
        assert!(p50 >= Duration::from_micros(50), "{p50:?}");
        assert!(p50 <= Duration::from_micros(52), "{p50:?}");
        let p99 = snapshot.p99();
        assert!(p99 >= Duration::from_micros(100) && p99 <= Duration::from_micros(104));
        assert_eq!(snapshot.count_at_most(25_000), 2);
        assert_eq!(snapshot.count_at_most(u64::MAX), 10);
    }

    #[test]
    fn a_disabled_histogram_records_nothing() {
        let shared = AtomicHistogram::new(false);
        let mut local = LocalHistogram::new(false);
        local.record(1_000);
        shared.merge(&mut local);
        assert!(!shared.is_enabled());
        assert!(shared.snapshot().is_empty());
    }
}
