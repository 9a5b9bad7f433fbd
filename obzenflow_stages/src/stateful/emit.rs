//! When an aggregation emits what it has folded.

use std::num::NonZeroU64;
use std::time::Duration;

/// When an [`Aggregate`](super::Aggregate) emits its groups.
///
/// ```
/// use std::num::NonZeroU64;
/// use std::time::Duration;
/// use obzenflow_stages::stateful::Emit;
///
/// let at_end = Emit::OnDrain;
/// let running = Emit::EveryRecords(NonZeroU64::new(1_000).unwrap());
/// let hourly = Emit::TumblingWindow(Duration::from_secs(3_600));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Emit {
    /// Once, when every upstream has ended: one record per group, in key order.
    #[default]
    OnDrain,
    /// A snapshot of every group after each `n` input records, and a last one at the end if
    /// records arrived since the previous snapshot. State is kept between snapshots, so each
    /// snapshot is complete and supersedes the ones before it.
    EveryRecords(NonZeroU64),
    /// One record per group per event-time tumbling window of this size (aligned to the Unix
    /// epoch).
    ///
    /// A window closes, and its groups are emitted, when a record arrives whose event time is
    /// at or past the window's end; windows still open when the input ends are emitted at
    /// drain. A record that belongs to a window already closed is late: it goes to the error
    /// lane (kind `validation`) rather than being dropped or reopening the window. Emitted
    /// records carry the window's start as their event time.
    TumblingWindow(Duration),
}
