//! Errors raised while parsing the textual form of core values, and [`ErrorChain`], the one
//! way an error becomes text for people.
//!
//! Every error of the workspace says what failed in its own words and leaves its cause to
//! [`source`](std::error::Error::source): a message never prints the error it marks as its
//! source. So an error's whole story is its chain, and [`ErrorChain`] prints it, each cause
//! once.

use std::error::Error;
use std::fmt;

/// A string could not be parsed as one of the core id types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} `{input}`: {reason}")]
pub struct IdParseError {
    /// The id kind that was expected, e.g. `event id`.
    pub kind: &'static str,
    /// The offending input, truncated to 64 characters so a huge input cannot flood a log.
    pub input: String,
    /// What was wrong with it.
    pub reason: String,
}

impl IdParseError {
    pub(crate) fn new(kind: &'static str, input: &str, reason: impl Into<String>) -> Self {
        let input: String = input.chars().take(64).collect();
        Self {
            kind,
            input,
            reason: reason.into(),
        }
    }
}

/// Displays an error and each of its causes once, on one line, separated by `": "`:
/// `cannot read segment X at byte offset 0: Permission denied (os error 13)`.
///
/// It walks [`source`](std::error::Error::source) and prints every link as it is, with no
/// deduplication: an error whose message also printed its source would show that source twice,
/// which is why no error here does that. CLI output, logs, lifecycle records and reports use
/// it wherever an error becomes text.
///
/// ```
/// use obzenflow_core::ErrorChain;
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("cannot open the orders file")]
/// struct OpenOrders(#[source] std::io::Error);
///
/// let error = OpenOrders(std::io::Error::other("permission denied"));
/// assert_eq!(error.to_string(), "cannot open the orders file");
/// assert_eq!(
///     ErrorChain::new(&error).to_string(),
///     "cannot open the orders file: permission denied"
/// );
/// ```
#[derive(Clone, Copy)]
pub struct ErrorChain<'a> {
    error: &'a (dyn Error + 'static),
}

impl<'a> ErrorChain<'a> {
    /// The chain starting at `error`.
    pub fn new(error: &'a (dyn Error + 'static)) -> Self {
        Self { error }
    }

    /// The errors of the chain, `error` first, then each source in turn.
    pub fn links(&self) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
        std::iter::successors(Some(self.error), |error: &&'a (dyn Error + 'static)| {
            (*error).source()
        })
    }

    /// The first error of the chain that is an `E`, for reaching a cause's own type (a user's
    /// error behind a stage failure, an `io::Error` behind a journal error).
    ///
    /// ```
    /// use obzenflow_core::ErrorChain;
    ///
    /// #[derive(Debug, thiserror::Error)]
    /// #[error("cannot open the orders file")]
    /// struct OpenOrders(#[source] std::io::Error);
    ///
    /// let error = OpenOrders(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
    /// let cause = ErrorChain::new(&error).find::<std::io::Error>();
    /// assert_eq!(cause.map(std::io::Error::kind), Some(std::io::ErrorKind::PermissionDenied));
    /// ```
    pub fn find<E: Error + 'static>(&self) -> Option<&'a E> {
        self.links().find_map(|link| link.downcast_ref::<E>())
    }
}

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, link) in self.links().enumerate() {
            if index > 0 {
                f.write_str(": ")?;
            }
            write!(f, "{link}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ErrorChain")
            .field(&self.to_string())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("disk full")]
    struct DiskFull;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot append")]
    struct Append(#[source] DiskFull);

    #[test]
    fn a_chain_prints_every_link_once_in_order() {
        let error = Append(DiskFull);
        let chain = ErrorChain::new(&error);
        assert_eq!(chain.to_string(), "cannot append: disk full");
        assert_eq!(chain.links().count(), 2);
        assert_eq!(ErrorChain::new(&DiskFull).to_string(), "disk full");
    }
}
