//! Event-time tumbling windows and the group keys aggregations are indexed by.

use std::fmt;
use std::time::Duration;

use obzenflow_core::Timestamp;
use serde::{Deserialize, Serialize};

/// A half-open event-time interval `[start, end)`.
///
/// ```
/// use std::time::Duration;
/// use obzenflow_core::Timestamp;
/// use obzenflow_stages::stateful::Window;
///
/// let window = Window::containing(Timestamp::from_micros(3_500_000), Duration::from_secs(1));
/// assert_eq!(window.start, Timestamp::from_micros(3_000_000));
/// assert_eq!(window.end, Timestamp::from_micros(4_000_000));
/// assert!(window.contains(Timestamp::from_micros(3_999_999)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Window {
    /// The first instant in the window.
    pub start: Timestamp,
    /// The first instant after the window.
    pub end: Timestamp,
}

impl Window {
    /// The tumbling window of length `size` (at least 1 µs) that contains `time`. Windows are
    /// aligned to the Unix epoch, so a one-day window is a UTC calendar day.
    pub fn containing(time: Timestamp, size: Duration) -> Self {
        let size = size_micros(size);
        let start = time.as_micros() - time.as_micros() % size;
        Self {
            start: Timestamp::from_micros(start),
            end: Timestamp::from_micros(start.saturating_add(size)),
        }
    }

    /// Whether `time` falls in the window.
    pub fn contains(&self, time: Timestamp) -> bool {
        self.start <= time && time < self.end
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {})", self.start, self.end)
    }
}

/// A window size in microseconds, at least one.
pub(crate) fn size_micros(size: Duration) -> u64 {
    u64::try_from(size.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// What an aggregation groups by: the key, and the window for windowed aggregations.
///
/// Groups are ordered by window, then key, which is the order they are emitted in.
///
/// ```
/// use obzenflow_stages::stateful::GroupKey;
///
/// let a = GroupKey { window: None, key: "alice" };
/// let b = GroupKey { window: None, key: "bob" };
/// assert!(a < b);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupKey<K> {
    /// The window, when the aggregation emits per window; `None` otherwise.
    pub window: Option<Window>,
    /// The key the records were grouped by.
    pub key: K,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_aligned_to_the_epoch() {
        let day = Duration::from_secs(86_400);
        let noon = Timestamp::from_micros(1_709_210_096_789_012);
        let window = Window::containing(noon, day);
        assert_eq!(window.start.to_string(), "2024-02-29T00:00:00.000000Z");
        assert_eq!(window.end.to_string(), "2024-03-01T00:00:00.000000Z");
        assert!(window.contains(noon));
        assert!(!window.contains(window.end));
    }

    #[test]
    fn a_zero_size_is_one_microsecond() {
        let window = Window::containing(Timestamp::from_micros(7), Duration::ZERO);
        assert_eq!((window.start.as_micros(), window.end.as_micros()), (7, 8));
    }
}
