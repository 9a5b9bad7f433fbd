//! Stable variant names for states and events, used in logs, metrics, hooks and diagrams.
//!
//! Names come from a method the user writes (usually a `match` returning string literals) rather
//! than from `Debug` output, so they stay stable when a variant gains fields and never allocate.

/// A state type that can name its current variant.
///
/// The name must be stable across releases and should be a plain identifier (for example
/// `"Running"`), because it is written to logs, used as a metric label and rendered as a Mermaid
/// state id.
pub trait StateVariant {
    /// The stable name of this state's variant.
    fn variant_name(&self) -> &'static str;
}

/// An event type that can name its current variant.
///
/// The same stability rules as [`StateVariant`] apply; the name labels edges in Mermaid diagrams
/// and appears in [`FsmError::Unhandled`](crate::FsmError::Unhandled).
pub trait EventVariant {
    /// The stable name of this event's variant.
    fn variant_name(&self) -> &'static str;
}
