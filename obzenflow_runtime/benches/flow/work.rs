//! The per-record work every scenario does, on both sides: generate a small JSON order stamped
//! with a monotonic timestamp, add a field to it in each map, and tally it in the sink, where
//! the timestamp gives the record's end-to-end latency.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{json, Value};

/// The payload field holding the record's generation time, in nanoseconds since [`CLOCK_BASE`].
const STAMP_FIELD: &str = "ts_ns";
/// The highest latency the histograms track; longer ones are recorded as this.
const MAX_TRACKED_LATENCY: Duration = Duration::from_secs(3600);
/// Significant decimal digits the histograms keep (0.1% relative error).
const HISTOGRAM_PRECISION: u8 = 3;

/// The process-wide base of record timestamps, so that the source and the sink, running on any
/// thread, read the same monotonic clock.
static CLOCK_BASE: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Nanoseconds elapsed since [`CLOCK_BASE`].
pub(crate) fn now_ns() -> u64 {
    u64::try_from(CLOCK_BASE.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Source record number `index`, stamped with the current time:
/// `{"id": i, "customer": "c<i % 1000>", "amount": <float>, "ts_ns": <stamp>}`.
pub(crate) fn order(index: u64) -> Value {
    json!({
        "id": index,
        "customer": format!("c{}", index % 1000),
        "amount": (index % 10_000) as f64 / 100.0,
        STAMP_FIELD: now_ns(),
    })
}

/// The field the map reads.
pub(crate) const AMOUNT_FIELD: &str = "amount";
/// The field the map adds.
pub(crate) const TAXED_FIELD: &str = "with_tax";

/// The taxed amount of `amount`.
pub(crate) fn tax(amount: f64) -> f64 {
    amount * 1.2
}

/// The map's work: read the amount and add a `with_tax` field.
pub(crate) fn add_tax(payload: &mut Value) {
    let amount = payload[AMOUNT_FIELD].as_f64().unwrap_or(0.0);
    payload[TAXED_FIELD] = json!(tax(amount));
}

/// What one or more sinks saw: how many records, the sum of their amounts (taxed where a map
/// ran), and the distribution of their end-to-end latencies.
pub(crate) struct Tally {
    /// Records consumed.
    pub(crate) records: u64,
    /// Sum of `with_tax`, or of `amount` where no map ran: a checksum that keeps the work real.
    pub(crate) sum: f64,
    latency_ns: Histogram<u64>,
}

impl Tally {
    /// An empty tally.
    pub(crate) fn new() -> Self {
        let max_ns = u64::try_from(MAX_TRACKED_LATENCY.as_nanos()).unwrap_or(u64::MAX);
        let latency_ns = Histogram::new_with_bounds(1, max_ns, HISTOGRAM_PRECISION)
            .expect("the histogram bounds are valid constants");
        Self {
            records: 0,
            sum: 0.0,
            latency_ns,
        }
    }

    /// Counts one record and its latency from its stamp to now.
    pub(crate) fn observe(&mut self, payload: &Value) {
        self.observe_fields(|name| payload.get(name).cloned());
    }

    /// Counts one record whose fields `field` gives by name.
    pub(crate) fn observe_fields(&mut self, field: impl Fn(&str) -> Option<Value>) {
        let amount = field(TAXED_FIELD)
            .or_else(|| field(AMOUNT_FIELD))
            .and_then(|amount| amount.as_f64())
            .unwrap_or(0.0);
        self.sum += amount;
        self.records += 1;
        if let Some(stamp) = field(STAMP_FIELD).and_then(|stamp| stamp.as_u64()) {
            self.latency_ns
                .saturating_record(now_ns().saturating_sub(stamp).max(1));
        }
    }

    /// Adds what another sink saw.
    pub(crate) fn merge(&mut self, other: &Tally) {
        self.records += other.records;
        self.sum += other.sum;
        self.latency_ns
            .add(&other.latency_ns)
            .expect("tallies share the same histogram bounds");
    }

    /// The latency at `quantile` (0.0..=1.0), in microseconds; `None` before any record.
    pub(crate) fn latency_us(&self, quantile: f64) -> Option<f64> {
        if self.latency_ns.is_empty() {
            return None;
        }
        Some(self.latency_ns.value_at_quantile(quantile) as f64 / 1000.0)
    }

    /// The largest latency seen, in microseconds; `None` before any record.
    pub(crate) fn max_latency_us(&self) -> Option<f64> {
        if self.latency_ns.is_empty() {
            return None;
        }
        Some(self.latency_ns.max() as f64 / 1000.0)
    }
}
