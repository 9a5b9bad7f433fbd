//! [`MetricsConfig`]: whether a flow is instrumented, and how often its metrics are folded.

use std::time::Duration;

/// How a flow collects metrics; given to
/// [`FlowBuilder::metrics`](crate::pipeline::FlowBuilder::metrics).
///
/// Enabled (the default), every stage records its per-record processing times, every edge
/// publishes its reader's position, and a metrics aggregator folds them into a
/// [`FlowSnapshot`](super::FlowSnapshot) every `interval` and once more at the end of the run.
/// Disabled, stages keep only their counts (reports and error budgets need them), no aggregator
/// runs, and snapshots are folded on demand without timings, lag or time in state; use it to
/// measure what instrumentation costs.
///
/// ```
/// use std::time::Duration;
/// use obzenflow_runtime::metrics::MetricsConfig;
///
/// let config = MetricsConfig::default().with_interval(Duration::from_millis(250));
/// assert!(config.enabled);
/// assert_eq!(config.interval, Duration::from_millis(250));
/// assert!(!MetricsConfig::disabled().enabled);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetricsConfig {
    /// Whether stages record timings and lag and an aggregator runs.
    pub enabled: bool,
    /// How often the aggregator folds a snapshot while the flow runs. Raised to
    /// [`MetricsConfig::MIN_INTERVAL`] if smaller.
    pub interval: Duration,
    /// How long the pipeline waits for the aggregator to fold its final snapshot and write its
    /// completion record before aborting it.
    pub drain_deadline: Duration,
}

impl MetricsConfig {
    /// The default folding interval: fresh enough for a dashboard, rare enough to cost nothing.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
    /// The shortest folding interval; anything shorter would keep the aggregator busy.
    pub const MIN_INTERVAL: Duration = Duration::from_millis(1);
    /// The default drain deadline. The final fold reads a few atomics per stage; only a
    /// stalled runtime takes this long.
    pub const DEFAULT_DRAIN_DEADLINE: Duration = Duration::from_secs(5);

    /// No timings, no lag, no aggregator: counts only.
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }

    /// Sets [`interval`](MetricsConfig::interval).
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets [`drain_deadline`](MetricsConfig::drain_deadline).
    pub fn with_drain_deadline(mut self, drain_deadline: Duration) -> Self {
        self.drain_deadline = drain_deadline;
        self
    }

    /// The interval actually used.
    pub(crate) fn effective_interval(&self) -> Duration {
        self.interval.max(Self::MIN_INTERVAL)
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: Self::DEFAULT_INTERVAL,
            drain_deadline: Self::DEFAULT_DRAIN_DEADLINE,
        }
    }
}
