//! Identifiers: every id prints with a kind prefix (`evt_…`, `stage_…`) and parses back.
//!
//! Ids are UUIDs underneath. Event ids are UUID v7 so they sort by creation time; the other
//! kinds use v7 too, which keeps run directories and logs in chronological order.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::error::IdParseError;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Uuid);

        impl $name {
            /// The prefix this id prints with, including the underscore.
            pub const PREFIX: &'static str = $prefix;

            /// A fresh, time-ordered (UUID v7) id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an existing UUID, e.g. one read back from a journal.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The UUID underneath.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(Self::PREFIX)?;
                fmt::Display::fmt(&self.0.simple(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;

            fn from_str(input: &str) -> Result<Self, Self::Err> {
                parse_prefixed(input, Self::PREFIX, $kind).map(Self)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

uuid_id!(
    /// Identifies one event. Time-ordered, so ids minted later sort later.
    EventId,
    "evt_",
    "event id"
);
uuid_id!(
    /// Identifies one stage of a flow.
    StageId,
    "stage_",
    "stage id"
);
uuid_id!(
    /// Identifies a flow definition.
    FlowId,
    "flow_",
    "flow id"
);
uuid_id!(
    /// Identifies one run of a flow; a run directory is named after it.
    RunId,
    "run_",
    "run id"
);

/// Mints event ids for one writer without a clock read or a random draw per id.
///
/// The first id is a fresh UUID v7 with part of its random bits cleared; the next ones count
/// up from it, and every [`REFRESH`](Self::REFRESH) ids the mint starts again from a fresh
/// UUID v7. Ids stay unique (a fresh start draws 44 random bits above the count, so the ranges
/// of two mints that start in the same millisecond overlap with odds of about 2^-27) and
/// time-ordered per writer, and consecutive records get consecutive ids, which journals store
/// in a byte or two.
///
/// ```
/// use obzenflow_core::id::EventIdMint;
///
/// let mut mint = EventIdMint::new();
/// let first = mint.next_id();
/// let second = mint.next_id();
/// assert_eq!(second.as_uuid().as_u128(), first.as_uuid().as_u128() + 1);
/// assert_eq!(second.as_uuid().get_version_num(), 7);
/// ```
#[derive(Debug, Clone, Default)]
pub struct EventIdMint {
    next: u128,
    left: u32,
}

impl EventIdMint {
    /// How many ids a mint hands out before it reads the clock again.
    pub const REFRESH: u32 = 1 << 16;

    /// Bits 32 to 61 (of the 62 random bits of `rand_b`): cleared in a fresh start so that
    /// counting up never carries into the version or variant bits.
    const HEADROOM: u128 = ((1 << 30) - 1) << 32;

    /// A mint that starts from a fresh UUID v7 at its first id.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next id.
    pub fn next_id(&mut self) -> EventId {
        if self.left == 0 {
            // Never below an id already handed out, even if the clock went back: the ids of
            // one mint only ever increase, which journal checks rely on.
            // A start with every random bit drawn: `Uuid::now_v7` would fill the headroom's
            // bits and more with a counter the whole process shares, leaving two mints that
            // start in the same millisecond only 32 random bits apart.
            let fresh = Uuid::new_v7(uuid::Timestamp::now(uuid::NoContext));
            self.next = self.next.max(fresh.as_u128() & !Self::HEADROOM);
            self.left = Self::REFRESH;
        }
        let id = EventId::from_uuid(Uuid::from_u128(self.next));
        self.next += 1;
        self.left -= 1;
        id
    }
}

impl EventId {
    /// A fresh event id from this thread's [`EventIdMint`]: unique and time-ordered per
    /// thread like the mint's, without the clock read and random draw of [`EventId::new`]
    /// per id. Every record constructor takes one (the runtime then stamps the id of the
    /// writing stage's own mint on append), so building a record costs no system call.
    pub fn minted() -> Self {
        thread_local! {
            static MINT: std::cell::RefCell<EventIdMint> =
                std::cell::RefCell::new(EventIdMint::new());
        }
        MINT.with(|mint| mint.borrow_mut().next_id())
    }
}

/// Follows a record from its source to every sink it reaches.
///
/// It is the id of the source event the record descends from, so a correlation id always leads
/// back to a concrete record in a source journal.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CorrelationId(EventId);

impl CorrelationId {
    /// The correlation id of records descending from `origin`.
    pub const fn from_origin(origin: EventId) -> Self {
        Self(origin)
    }

    /// The source event this correlation id leads back to.
    pub const fn origin(&self) -> EventId {
        self.0
    }
}

impl fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CorrelationId({})", self.0)
    }
}

impl FromStr for CorrelationId {
    type Err = IdParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        input.parse().map(Self)
    }
}

/// A runtime component that writes records but is not a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum SystemComponent {
    /// The pipeline supervisor.
    Pipeline,
    /// The metrics aggregator.
    MetricsAggregator,
    /// The replay driver that re-emits archived source records.
    Replay,
}

impl SystemComponent {
    /// Every component, in declaration order.
    pub const ALL: [SystemComponent; 3] = [Self::Pipeline, Self::MetricsAggregator, Self::Replay];

    /// The stable name used in the textual form (`system_pipeline`).
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Pipeline => "pipeline",
            Self::MetricsAggregator => "metrics_aggregator",
            Self::Replay => "replay",
        }
    }
}

/// Who wrote an event: a stage, a system component, or nobody yet.
///
/// Events built by user code are [`WriterId::Unassigned`] until the runtime stamps them with the
/// writing stage as it appends them to a journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum WriterId {
    /// Not yet written by any component.
    #[default]
    Unassigned,
    /// A stage of the flow.
    Stage(StageId),
    /// A runtime component.
    System(SystemComponent),
}

const SYSTEM_PREFIX: &str = "system_";
const UNASSIGNED: &str = "unassigned";

impl fmt::Display for WriterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unassigned => f.write_str(UNASSIGNED),
            Self::Stage(stage_id) => fmt::Display::fmt(stage_id, f),
            Self::System(component) => write!(f, "{SYSTEM_PREFIX}{}", component.as_str()),
        }
    }
}

impl FromStr for WriterId {
    type Err = IdParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        if input == UNASSIGNED {
            return Ok(Self::Unassigned);
        }
        if input.starts_with(StageId::PREFIX) {
            return input.parse().map(Self::Stage);
        }
        if let Some(name) = input.strip_prefix(SYSTEM_PREFIX) {
            return SystemComponent::ALL
                .into_iter()
                .find(|component| component.as_str() == name)
                .map(Self::System)
                .ok_or_else(|| IdParseError::new("writer id", input, "unknown system component"));
        }
        Err(IdParseError::new(
            "writer id",
            input,
            "expected `stage_<uuid>`, `system_<component>` or `unassigned`",
        ))
    }
}

impl Serialize for WriterId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for WriterId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

fn parse_prefixed(input: &str, prefix: &str, kind: &'static str) -> Result<Uuid, IdParseError> {
    let Some(body) = input.strip_prefix(prefix) else {
        return Err(IdParseError::new(
            kind,
            input,
            format!("expected the prefix `{prefix}`"),
        ));
    };
    Uuid::try_parse(body)
        .map_err(|error| IdParseError::new(kind, input, format!("not a UUID ({error})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mint_hands_out_increasing_ids_across_clock_refreshes() {
        let mut mint = EventIdMint::new();
        let mut previous = mint.next_id();
        for _ in 0..(3 * EventIdMint::REFRESH) {
            let id = mint.next_id();
            assert!(id > previous, "{id} after {previous}");
            previous = id;
        }
    }

    #[test]
    fn mints_started_in_the_same_millisecond_draw_their_random_bits_apart() {
        // `rand_a` (bits 64 to 75) is random in a fresh start, not a counter the process
        // shares: 200 mints started at once mostly differ there, not only in the low 32 bits.
        let rand_a = |id: EventId| (id.as_uuid().as_u128() >> 64) & 0xfff;
        let starts: std::collections::HashSet<u128> = (0..200)
            .map(|_| rand_a(EventIdMint::new().next_id()))
            .collect();
        assert!(starts.len() > 150, "{} distinct of 200", starts.len());
    }

    #[test]
    fn minted_ids_increase_per_thread_and_are_unique_across_threads() {
        let minted = |n: usize| {
            std::thread::spawn(move || (0..n).map(|_| EventId::minted()).collect::<Vec<_>>())
        };
        let threads: Vec<_> = (0..4).map(|_| minted(70_000)).collect();
        let mut all = std::collections::HashSet::new();
        for thread in threads {
            let ids = thread.join().unwrap();
            // Past a mint's refresh too: still increasing, still v7.
            assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
            assert!(ids.iter().all(|id| id.as_uuid().get_version_num() == 7));
            all.extend(ids);
        }
        assert_eq!(all.len(), 4 * 70_000, "no id handed out twice");
    }

    #[test]
    fn ids_print_with_prefix_and_parse_back() {
        let event_id = EventId::new();
        let text = event_id.to_string();
        assert!(text.starts_with("evt_"), "{text}");
        assert_eq!(text.parse::<EventId>().unwrap(), event_id);

        let stage_id = StageId::new();
        assert_eq!(stage_id.to_string().parse::<StageId>().unwrap(), stage_id);
        let run_id = RunId::new();
        assert_eq!(run_id.to_string().parse::<RunId>().unwrap(), run_id);
        let flow_id = FlowId::new();
        assert_eq!(flow_id.to_string().parse::<FlowId>().unwrap(), flow_id);
    }

    #[test]
    fn event_ids_are_time_ordered() {
        let first = EventId::new();
        let second = EventId::new();
        assert!(first < second);
    }

    #[test]
    fn wrong_prefix_is_a_typed_error_naming_the_kind() {
        let stage_text = StageId::new().to_string();
        let error = stage_text.parse::<EventId>().unwrap_err();
        assert_eq!(error.kind, "event id");
        assert!(
            error.to_string().contains("expected the prefix `evt_`"),
            "{error}"
        );
    }

    #[test]
    fn bad_uuid_is_a_typed_error() {
        let error = "evt_not-a-uuid".parse::<EventId>().unwrap_err();
        assert!(error
            .to_string()
            .starts_with("invalid event id `evt_not-a-uuid`: not a UUID"));
    }

    #[test]
    fn writer_ids_round_trip() {
        let writers = [
            WriterId::Unassigned,
            WriterId::Stage(StageId::new()),
            WriterId::System(SystemComponent::Pipeline),
            WriterId::System(SystemComponent::MetricsAggregator),
            WriterId::System(SystemComponent::Replay),
        ];
        for writer in writers {
            assert_eq!(writer.to_string().parse::<WriterId>().unwrap(), writer);
        }
        assert_eq!(
            WriterId::System(SystemComponent::Pipeline).to_string(),
            "system_pipeline"
        );
        let error = "system_kettle".parse::<WriterId>().unwrap_err();
        assert!(error.to_string().contains("unknown system component"));
    }

    #[test]
    fn ids_serialize_as_prefixed_strings() {
        let event_id = EventId::new();
        let json = serde_json::to_string(&event_id).unwrap();
        assert_eq!(json, format!("\"{event_id}\""));
        assert_eq!(serde_json::from_str::<EventId>(&json).unwrap(), event_id);
        assert!(serde_json::from_str::<EventId>("\"stage_x\"").is_err());
    }
}
