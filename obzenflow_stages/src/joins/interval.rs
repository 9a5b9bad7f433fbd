//! [`IntervalJoin`]: pair the records of two streams that share a key and whose event times
//! are close, keeping only the state the interval needs.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::hash::Hash;
use std::time::Duration;

use obzenflow_core::{ChainEvent, CorrelationId, Timestamp, TypedPayload};
use obzenflow_runtime::stages::{
    HandlerFailure, InputSpec, MultiInputHandler, RecordError, RecordType, StateSize,
};

/// Extracts a record's key.
type KeyFn<T, K> = Box<dyn FnMut(&T) -> K + Send>;
/// Extracts a record's event time from its value.
type TimeFn<T> = Box<dyn FnMut(&T) -> Timestamp + Send>;
/// Builds the output of a matched pair.
type CombineFn<L, R, O> = Box<dyn FnMut(&L, &R) -> O + Send>;

/// A keyed interval join of two streams on event time: input 0 is the left stream (`L`),
/// input 1 the right (`R`); a left record `a` and a right record `b` of the same key are
/// combined when `b`'s time is within `[a - lower, a + upper]` ([`between`](Self::between)).
///
/// **Time.** A record's event time is the function given to
/// [`event_time`](Self::event_time), or else the record's own `event_time`; a record with
/// neither goes to the error lane. The sources of this crate stamp no event time, so flows
/// usually give the functions.
///
/// **Watermarks and eviction.** No source emits watermark records today, so each side keeps
/// its own: the largest event time it has seen minus the allowed lateness
/// ([`allowed_lateness`](Self::allowed_lateness), zero by default). A record older than its
/// own side's watermark is late: it goes to the error lane (kind `validation`) saying by how
/// much. A held left record `a` is evicted once `a + upper` is below the right watermark, a
/// held right record `b` once `b + lower` is below the left watermark, and everything one side
/// holds once the other side has ended: no record that is not late can match them any more.
/// So the state is bounded by what the interval (plus lateness, plus how far one side runs
/// ahead of the other) covers, and the pairs emitted are exactly those of a nested-loop join
/// over the records that are not late (`tests/joins.rs` holds it to that).
///
/// **Output.** Each pair is emitted once, when its second record arrives; its parent is that
/// record, and its event time the later of the two. Which of a pair arrives second depends on
/// how the two inputs interleave, so the *set* of pairs is deterministic but their order can
/// differ between runs. The state (keys, records held) is the stage's state gauge.
///
/// ```no_run
/// use std::time::Duration;
/// use obzenflow_stages::joins::IntervalJoin;
/// use obzenflow_stages::prelude::*;
/// use obzenflow_core::Timestamp;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Clone, Serialize, Deserialize)]
/// struct Click { user: u64, at_ms: u64 }
/// impl TypedPayload for Click { const EVENT_TYPE: &'static str = "click"; }
/// #[derive(Clone, Serialize, Deserialize)]
/// struct Purchase { user: u64, at_ms: u64 }
/// impl TypedPayload for Purchase { const EVENT_TYPE: &'static str = "purchase"; }
/// #[derive(Clone, Serialize, Deserialize)]
/// struct Conversion { user: u64, after_ms: u64 }
/// impl TypedPayload for Conversion { const EVENT_TYPE: &'static str = "conversion"; }
///
/// let conversions = IntervalJoin::new(
///     |click: &Click| click.user,
///     |purchase: &Purchase| purchase.user,
///     |click: &Click, purchase: &Purchase| Conversion {
///         user: click.user,
///         after_ms: purchase.at_ms.saturating_sub(click.at_ms),
///     },
/// )
/// .between(Duration::ZERO, Duration::from_secs(600))
/// .allowed_lateness(Duration::from_secs(5))
/// .event_time(
///     |click: &Click| Timestamp::from_micros(click.at_ms * 1000),
///     |purchase: &Purchase| Timestamp::from_micros(purchase.at_ms * 1000),
/// );
/// ```
pub struct IntervalJoin<L, R, K, O> {
    left_key: KeyFn<L, K>,
    right_key: KeyFn<R, K>,
    combine: CombineFn<L, R, O>,
    left_time: Option<TimeFn<L>>,
    right_time: Option<TimeFn<R>>,
    lower_us: u64,
    upper_us: u64,
    lateness_us: u64,
    left: Side<L, K>,
    right: Side<R, K>,
}

/// One side's held records, by key and by time, and its watermark.
struct Side<T, K> {
    /// `key -> (time, sequence, record, the source record it descends from)`.
    by_key: HashMap<K, Vec<(u64, u64, T, CorrelationId)>>,
    /// `(time, sequence) -> key`, for eviction in time order.
    by_time: BTreeMap<(u64, u64), K>,
    next_sequence: u64,
    /// The largest event time seen, if any.
    max_time: Option<u64>,
    ended: bool,
}

impl<T, K: Hash + Eq + Clone> Side<T, K> {
    fn new() -> Self {
        Self {
            by_key: HashMap::new(),
            by_time: BTreeMap::new(),
            next_sequence: 0,
            max_time: None,
            ended: false,
        }
    }

    /// The side's watermark: no record of it older than this is accepted any more. An ended
    /// side's is the end of time.
    fn watermark(&self, lateness_us: u64) -> Option<u64> {
        if self.ended {
            return Some(u64::MAX);
        }
        self.max_time.map(|max| max.saturating_sub(lateness_us))
    }

    fn observe(&mut self, time: u64) {
        self.max_time = Some(self.max_time.map_or(time, |max| max.max(time)));
    }

    fn hold(&mut self, key: K, time: u64, record: T, correlation: CorrelationId) {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.by_time.insert((time, sequence), key.clone());
        self.by_key
            .entry(key)
            .or_default()
            .push((time, sequence, record, correlation));
    }

    /// Drops every held record whose time is below `threshold`.
    fn evict_below(&mut self, threshold: u64) {
        while let Some(entry) = self.by_time.first_entry() {
            let (time, sequence) = *entry.key();
            if time >= threshold {
                break;
            }
            let key = entry.remove();
            if let Some(held) = self.by_key.get_mut(&key) {
                held.retain(|(_, held_sequence, _, _)| *held_sequence != sequence);
                if held.is_empty() {
                    self.by_key.remove(&key);
                }
            }
        }
    }

    fn records(&self) -> u64 {
        self.by_time.len() as u64
    }
}

impl<L, R, K, O> IntervalJoin<L, R, K, O>
where
    L: TypedPayload,
    R: TypedPayload,
    O: TypedPayload,
    K: Hash + Eq + Clone + Debug + Send + 'static,
{
    /// An interval join of left records keyed by `left_key` and right records keyed by
    /// `right_key`, each pair combined by `combine`; the interval is `[a, a]` (equal times)
    /// until [`between`](Self::between) widens it.
    pub fn new(
        left_key: impl FnMut(&L) -> K + Send + 'static,
        right_key: impl FnMut(&R) -> K + Send + 'static,
        combine: impl FnMut(&L, &R) -> O + Send + 'static,
    ) -> Self {
        Self {
            left_key: Box::new(left_key),
            right_key: Box::new(right_key),
            combine: Box::new(combine),
            left_time: None,
            right_time: None,
            lower_us: 0,
            upper_us: 0,
            lateness_us: 0,
            left: Side::new(),
            right: Side::new(),
        }
    }

    /// A right record `b` matches a left record `a` when `a - lower <= b <= a + upper`.
    pub fn between(mut self, lower: Duration, upper: Duration) -> Self {
        self.lower_us = micros(lower);
        self.upper_us = micros(upper);
        self
    }

    /// How far behind the largest event time seen on its side a record may be and still be
    /// joined; older ones are late and go to the error lane.
    pub fn allowed_lateness(mut self, lateness: Duration) -> Self {
        self.lateness_us = micros(lateness);
        self
    }

    /// Reads each side's event time from its records' values, instead of the records' own
    /// `event_time`.
    pub fn event_time(
        mut self,
        left: impl FnMut(&L) -> Timestamp + Send + 'static,
        right: impl FnMut(&R) -> Timestamp + Send + 'static,
    ) -> Self {
        self.left_time = Some(Box::new(left));
        self.right_time = Some(Box::new(right));
        self
    }

    fn process_left(
        &mut self,
        event: &ChainEvent,
        out: &mut Vec<ChainEvent>,
    ) -> Result<(), RecordError> {
        let record = L::from_event(event)?;
        let time = event_time(&mut self.left_time, &record, event, "left")?;
        check_lateness(time, self.left.watermark(self.lateness_us), "left")?;
        let key = (self.left_key)(&record);
        // Right records within [a - lower, a + upper].
        let (low, high) = (
            time.saturating_sub(self.lower_us),
            time.saturating_add(self.upper_us),
        );
        if let Some(held) = self.right.by_key.get(&key) {
            for (right_time, _, right, joined) in held {
                if (low..=high).contains(right_time) {
                    let output = (self.combine)(&record, right);
                    push(out, output, time.max(*right_time), *joined);
                }
            }
        }
        self.left.observe(time);
        let left_watermark = self.left.watermark(self.lateness_us).unwrap_or(0);
        // A held right record b can match no future left record once b + lower < watermark.
        self.right
            .evict_below(left_watermark.saturating_sub(self.lower_us));
        let right_watermark = self.right.watermark(self.lateness_us);
        if right_watermark.is_none_or(|watermark| time.saturating_add(self.upper_us) >= watermark) {
            self.left.hold(key, time, record, event.correlation_id());
        }
        Ok(())
    }

    fn process_right(
        &mut self,
        event: &ChainEvent,
        out: &mut Vec<ChainEvent>,
    ) -> Result<(), RecordError> {
        let record = R::from_event(event)?;
        let time = event_time(&mut self.right_time, &record, event, "right")?;
        check_lateness(time, self.right.watermark(self.lateness_us), "right")?;
        let key = (self.right_key)(&record);
        // Left records a with a - lower <= b <= a + upper, that is a within [b - upper, b + lower].
        let (low, high) = (
            time.saturating_sub(self.upper_us),
            time.saturating_add(self.lower_us),
        );
        if let Some(held) = self.left.by_key.get(&key) {
            for (left_time, _, left, joined) in held {
                if (low..=high).contains(left_time) {
                    let output = (self.combine)(left, &record);
                    push(out, output, time.max(*left_time), *joined);
                }
            }
        }
        self.right.observe(time);
        let right_watermark = self.right.watermark(self.lateness_us).unwrap_or(0);
        // A held left record a can match no future right record once a + upper < watermark.
        self.left
            .evict_below(right_watermark.saturating_sub(self.upper_us));
        let left_watermark = self.left.watermark(self.lateness_us);
        if left_watermark.is_none_or(|watermark| time.saturating_add(self.lower_us) >= watermark) {
            self.right.hold(key, time, record, event.correlation_id());
        }
        Ok(())
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

fn event_time<T>(
    function: &mut Option<TimeFn<T>>,
    record: &T,
    event: &ChainEvent,
    side: &str,
) -> Result<u64, RecordError> {
    match (function, event.event_time) {
        (Some(function), _) => Ok(function(record).as_micros()),
        (None, Some(time)) => Ok(time.as_micros()),
        (None, None) => Err(RecordError::validation(format!(
            "the {side} record has no event time: give the join an `event_time` function"
        ))),
    }
}

fn check_lateness(time: u64, watermark: Option<u64>, side: &str) -> Result<(), RecordError> {
    match watermark {
        Some(watermark) if time < watermark && watermark != u64::MAX => {
            Err(RecordError::validation(format!(
                "late {side} record: event time {time} µs is {:?} behind the {side} watermark {watermark} µs",
                Duration::from_micros(watermark - time)
            )))
        }
        _ => Ok(()),
    }
}

/// Emits a joined record at `time`, naming the source record of the held record it was
/// joined with (its parent is the record being processed, stamped by the runtime).
fn push<O: TypedPayload>(out: &mut Vec<ChainEvent>, joined: O, time: u64, with: CorrelationId) {
    let mut output = joined.into_event();
    output.event_time = Some(Timestamp::from_micros(time));
    output.causality.joined_correlation_id = Some(with);
    out.push(output);
}

impl<L, R, K, O> MultiInputHandler for IntervalJoin<L, R, K, O>
where
    L: TypedPayload,
    R: TypedPayload,
    O: TypedPayload,
    K: Hash + Eq + Clone + Debug + Send + 'static,
{
    fn inputs(&self) -> Vec<InputSpec> {
        vec![
            InputSpec::state("left").typed::<L>(),
            InputSpec::state("right").typed::<R>(),
        ]
    }

    fn process_into(
        &mut self,
        input: usize,
        event: &ChainEvent,
        out: &mut Vec<ChainEvent>,
    ) -> Result<(), RecordError> {
        if input == 0 {
            self.process_left(event, out)
        } else {
            self.process_right(event, out)
        }
    }

    /// Once one side has ended, nothing the other side holds can match again.
    fn input_ended(
        &mut self,
        input: usize,
        _out: &mut Vec<ChainEvent>,
    ) -> Result<(), HandlerFailure> {
        if input == 0 {
            self.left.ended = true;
            self.right.evict_below(u64::MAX);
        } else {
            self.right.ended = true;
            self.left.evict_below(u64::MAX);
        }
        Ok(())
    }

    fn output_type(&self) -> Option<RecordType> {
        Some(RecordType::of::<O>())
    }

    fn state_size(&self) -> Option<StateSize> {
        Some(StateSize::new(
            (self.left.by_key.len() + self.right.by_key.len()) as u64,
            self.left.records() + self.right.records(),
        ))
    }
}
