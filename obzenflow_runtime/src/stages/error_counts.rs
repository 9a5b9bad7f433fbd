//! Errored records per [`ErrorKind`]: the fixed slots a stage counts its error lane in, and
//! [`ErrorCounts`], the copy reports and metrics snapshots carry.

use std::fmt;

use obzenflow_core::ErrorKind;

/// How many error kinds are counted apart.
pub(crate) const ERROR_KINDS: usize = ErrorKind::ALL.len();

/// The slot of `kind` in an [`ErrorCounts`]; a kind added to the core after this crate was
/// written is counted as [`ErrorKind::Other`].
pub(crate) fn error_kind_index(kind: ErrorKind) -> usize {
    ErrorKind::ALL
        .iter()
        .position(|known| *known == kind)
        .or_else(|| {
            ErrorKind::ALL
                .iter()
                .position(|known| *known == ErrorKind::Other)
        })
        .unwrap_or(ERROR_KINDS - 1)
}

/// Errored records of one stage, per [`ErrorKind`].
///
/// ```
/// use obzenflow_core::ErrorKind;
/// use obzenflow_runtime::metrics::ErrorCounts;
///
/// let counts = ErrorCounts::default();
/// assert_eq!(counts.get(ErrorKind::Validation), 0);
/// assert_eq!(counts.total(), 0);
/// assert_eq!(counts.to_string(), "none");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrorCounts([u64; ERROR_KINDS]);

impl ErrorCounts {
    pub(crate) fn from_array(counts: [u64; ERROR_KINDS]) -> Self {
        Self(counts)
    }

    /// How many records errored with `kind`.
    pub fn get(&self, kind: ErrorKind) -> u64 {
        self.0[error_kind_index(kind)]
    }

    /// Every kind with its count, zeros included, in [`ErrorKind::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (ErrorKind, u64)> + '_ {
        ErrorKind::ALL.iter().copied().zip(self.0.iter().copied())
    }

    /// How many records errored, whatever the kind.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

impl fmt::Display for ErrorCounts {
    /// The non-zero kinds, as `validation 3, decode 1`; `none` if there are none.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kinds = self.iter().filter(|(_, count)| *count > 0).peekable();
        if kinds.peek().is_none() {
            return f.write_str("none");
        }
        for (position, (kind, count)) in kinds.enumerate() {
            if position > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{kind} {count}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_counts_index_every_kind_and_print_the_non_zero_ones() {
        let mut counts = [0; ERROR_KINDS];
        counts[error_kind_index(ErrorKind::Validation)] = 3;
        counts[error_kind_index(ErrorKind::Decode)] = 1;
        let counts = ErrorCounts::from_array(counts);
        assert_eq!(counts.get(ErrorKind::Validation), 3);
        assert_eq!(counts.total(), 4);
        assert_eq!(counts.to_string(), "validation 3, decode 1");
        let indexes: Vec<usize> = ErrorKind::ALL
            .iter()
            .map(|k| error_kind_index(*k))
            .collect();
        assert_eq!(indexes, (0..ERROR_KINDS).collect::<Vec<_>>());
    }
}
