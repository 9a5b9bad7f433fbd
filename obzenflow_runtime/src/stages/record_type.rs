//! [`RecordType`]: what a typed stage emits or decodes, so that `FlowBuilder::build` can refuse
//! an edge whose two ends cannot agree before any record flows.

use std::fmt;

use obzenflow_core::TypedPayload;

/// The type of the data records a stage emits or decodes: the event type records carry (what
/// decoding checks) and, for people, the Rust type behind it.
///
/// A handler says what it emits with `output_type` and what it decodes with `input_type`
/// (on the handler traits; both `None` by default, for stages that take any record). Where
/// both ends of an edge say, `build()` refuses the flow if the event types differ, naming both
/// stages and both types.
///
/// ```
/// use obzenflow_core::TypedPayload;
/// use obzenflow_runtime::stages::RecordType;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Clone, Serialize, Deserialize)]
/// struct Flight { carrier: String }
/// impl TypedPayload for Flight { const EVENT_TYPE: &'static str = "flight"; }
///
/// let flight = RecordType::of::<Flight>();
/// assert_eq!(flight.event_type(), "flight");
/// assert!(flight.to_string().starts_with("`flight` ("));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordType {
    event_type: &'static str,
    rust_type: &'static str,
}

impl RecordType {
    /// The record type of payload `T`.
    pub fn of<T: TypedPayload>() -> Self {
        Self {
            event_type: T::EVENT_TYPE,
            rust_type: std::any::type_name::<T>(),
        }
    }

    /// The event type the records carry.
    pub fn event_type(&self) -> &'static str {
        self.event_type
    }

    /// The Rust type's name, as `std::any::type_name` gives it.
    pub fn rust_type(&self) -> &'static str {
        self.rust_type
    }

    /// Whether records of this type decode as `other`: the event types agree.
    pub fn matches(&self, other: &Self) -> bool {
        self.event_type == other.event_type
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` ({})", self.event_type, self.rust_type)
    }
}
