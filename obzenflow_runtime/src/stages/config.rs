//! Stage configuration: batch sizes, error budgets and per-edge backpressure windows.

use std::fmt;
use std::num::NonZeroU64;

/// How a stage batches its work and when it gives up on bad records.
#[derive(Debug, Clone, PartialEq)]
pub struct StageConfig {
    /// The most records a stage reads, processes and appends as one batch.
    pub batch_limit: usize,
    /// When errored records fail the whole stage.
    pub error_budget: ErrorBudget,
    /// Capacity of the stage's control channel.
    pub control_capacity: usize,
}

impl StageConfig {
    /// The default batch limit: large enough to amortize appends and wake-ups, small enough to
    /// keep latency low.
    pub const DEFAULT_BATCH_LIMIT: usize = 1024;
    /// The default control channel capacity; commands are rare.
    pub const DEFAULT_CONTROL_CAPACITY: usize = 16;
}

impl Default for StageConfig {
    fn default() -> Self {
        Self {
            batch_limit: Self::DEFAULT_BATCH_LIMIT,
            error_budget: ErrorBudget::Unlimited,
            control_capacity: Self::DEFAULT_CONTROL_CAPACITY,
        }
    }
}

/// When errored records turn into a stage failure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ErrorBudget {
    /// Never fail because of errored records.
    Unlimited,
    /// Fail once more than this many records errored.
    MaxErrors(u64),
    /// Fail once the share of errored records exceeds `ratio`, after at least `min_records`.
    MaxRatio {
        /// The largest tolerated share of errored records, in `0.0..=1.0`.
        ratio: f64,
        /// How many records must be seen before the ratio is judged.
        min_records: u64,
    },
}

impl ErrorBudget {
    /// Whether `errors` out of `records` exceeds the budget.
    pub fn is_exceeded(&self, errors: u64, records: u64) -> bool {
        match *self {
            Self::Unlimited => false,
            Self::MaxErrors(max) => errors > max,
            Self::MaxRatio { ratio, min_records } => {
                records >= min_records.max(1) && (errors as f64) > ratio * records as f64
            }
        }
    }
}

impl fmt::Display for ErrorBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unlimited => f.write_str("unlimited"),
            Self::MaxErrors(max) => write!(f, "budget: at most {max} errors"),
            Self::MaxRatio { ratio, min_records } => write!(
                f,
                "budget: at most {:.1}% errors after {min_records} records",
                ratio * 100.0
            ),
        }
    }
}

/// Configuration of one edge (one reader of an upstream journal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdgeConfig {
    /// The most records the upstream may run ahead of this reader.
    pub window: NonZeroU64,
}

impl EdgeConfig {
    /// The default backpressure window per edge.
    pub const DEFAULT_WINDOW: NonZeroU64 = match NonZeroU64::new(4 * 1024) {
        Some(window) => window,
        None => unreachable!(),
    };
}

impl Default for EdgeConfig {
    fn default() -> Self {
        Self {
            window: Self::DEFAULT_WINDOW,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets() {
        assert!(!ErrorBudget::Unlimited.is_exceeded(1_000, 1_000));
        assert!(!ErrorBudget::MaxErrors(3).is_exceeded(3, 10));
        assert!(ErrorBudget::MaxErrors(3).is_exceeded(4, 10));
        let ratio = ErrorBudget::MaxRatio {
            ratio: 0.5,
            min_records: 10,
        };
        assert!(!ratio.is_exceeded(5, 9));
        assert!(!ratio.is_exceeded(5, 10));
        assert!(ratio.is_exceeded(6, 10));
        assert_eq!(
            ErrorBudget::MaxErrors(3).to_string(),
            "budget: at most 3 errors"
        );
    }
}
