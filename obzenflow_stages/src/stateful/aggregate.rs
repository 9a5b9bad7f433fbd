//! `Aggregate`: a keyed or global fold or reduce, with an optional group filter, top-N and
//! finish step, emitted at the end of the stream, every N records, or per event-time tumbling
//! window.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use obzenflow_core::{ChainEvent, Timestamp, TypedPayload};
use obzenflow_runtime::stages::{
    HandlerFailure, RecordError, RecordResult, RecordType, StatefulHandler,
};

use super::emit::Emit;
use super::window::{GroupKey, Window};

/// Extracts the grouping key of a record.
type KeyFn<T, K> = Box<dyn FnMut(&T) -> K + Send>;
/// Folds a record into its group's state, or creates the state for a new group.
type AccumulateFn<T, K, S> = Box<dyn FnMut(&GroupKey<K>, Option<&mut S>, &T) -> Option<S> + Send>;
/// Extracts a record's event time.
type EventTimeFn<T> = Box<dyn FnMut(&T, &ChainEvent) -> Option<Timestamp> + Send>;
/// Orders states for top-N selection: the first in order are kept.
type CompareFn<S> = Box<dyn Fn(&S, &S) -> Ordering + Send>;
/// Whether a group's state takes part in an emission.
type HavingFn<S> = Box<dyn Fn(&S) -> bool + Send>;
/// Turns a group's state into the record emitted for it.
type FinishFn<S, O> = Box<dyn FnMut(&S) -> O + Send>;
/// Makes the event emitted for a group's state.
type ToEvent<'a, S> = &'a mut dyn FnMut(&S) -> ChainEvent;

/// Groups typed records by key and folds each group into a state, which it emits as records of
/// the state's type.
///
/// - [`fold`](Self::fold) starts each group from `init` and folds records into it;
///   [`reduce`](Self::reduce) starts from a group's first record and combines the rest into it.
/// - [`emit`](Self::emit) chooses when: at the end of the stream (the default), every N records,
///   or per event-time tumbling window (see [`Emit`] for the exact rules).
/// - [`global`](Self::global) folds every record into one group (the key is `()`): one record
///   per emission (per window, when windowing).
/// - [`having`](Self::having) keeps only the groups whose state passes a predicate, and
///   [`top_n`](Self::top_n) then keeps only the first N of them in a given order.
/// - [`finish`](Self::finish) turns each group's state (the accumulator) into the record
///   emitted for it, so the state need not be the emitted type, nor a [`TypedPayload`] at all;
///   the result is a [`Finished`] aggregate.
///
/// Without a finish step, the state is what is emitted, so it must be a [`TypedPayload`]; the
/// stage's output type (checked when the flow is built) is `S`, or `O` for a [`Finished`] one.
///
/// The state lives in memory only: it is neither journaled nor serialized. What is journaled are
/// the stage's input and the records it emits, so a replay rebuilds the state by folding the
/// same input again.
///
/// Output is deterministic: groups are emitted in window order, then key order (or the top-N
/// order), so a replay produces the same records. Records that do not decode as `T` go to the
/// error lane with kind `decode`. Add the stage with `FlowBuilder::stateful`.
///
/// ```no_run
/// use obzenflow_core::TypedPayload;
/// use obzenflow_runtime::pipeline::FlowBuilder;
/// use obzenflow_stages::sinks::ConsoleSink;
/// use obzenflow_stages::sources::CsvSource;
/// use obzenflow_stages::stateful::Aggregate;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, Clone)]
/// struct Order { customer: String, amount: f64 }
/// impl TypedPayload for Order { const EVENT_TYPE: &'static str = "order"; }
///
/// #[derive(Serialize, Deserialize, Clone)]
/// struct Spend { customer: String, orders: u64, total: f64 }
/// impl TypedPayload for Spend { const EVENT_TYPE: &'static str = "spend"; }
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let top_spenders = Aggregate::fold(
///     |order: &Order| order.customer.clone(),
///     |group| Spend { customer: group.key.clone(), orders: 0, total: 0.0 },
///     |spend: &mut Spend, order: &Order| {
///         spend.orders += 1;
///         spend.total += order.amount;
///     },
/// )
/// .top_n(3, |a, b| b.total.total_cmp(&a.total));
///
/// FlowBuilder::new("top-spenders")
///     .async_source("orders", CsvSource::typed::<Order>("orders.csv"))
///     .stateful("top", top_spenders)
///     .sink("print", ConsoleSink::typed(|s: &Spend| format!("{} {:.2}", s.customer, s.total)))
///     .chain(["orders", "top", "print"])
///     .build()?
///     .run()
///     .await?;
/// # Ok(())
/// # }
/// ```
pub struct Aggregate<T, K, S> {
    key: KeyFn<T, K>,
    accumulate: AccumulateFn<T, K, S>,
    event_time: EventTimeFn<T>,
    emit: Emit,
    having: Option<HavingFn<S>>,
    top: Option<(usize, CompareFn<S>)>,
    groups: BTreeMap<GroupKey<K>, S>,
    since_snapshot: u64,
    /// The latest event time seen; every window ending at or before it is closed.
    watermark: Option<Timestamp>,
}

impl<T, K: fmt::Debug, S> fmt::Debug for Aggregate<T, K, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Aggregate")
            .field("emit", &self.emit)
            .field("groups", &self.groups.len())
            .field("watermark", &self.watermark)
            .finish_non_exhaustive()
    }
}

impl<T, K, S> Aggregate<T, K, S>
where
    T: TypedPayload + 'static,
    K: Ord + Clone + Send + 'static,
    S: Send + 'static,
{
    /// Groups records by `key`; each new group starts from `init(group)` and every record of
    /// the group is folded into it with `fold`.
    ///
    /// ```
    /// use obzenflow_core::TypedPayload;
    /// use obzenflow_stages::stateful::Aggregate;
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize, Clone)]
    /// struct Click { page: String }
    /// impl TypedPayload for Click { const EVENT_TYPE: &'static str = "click"; }
    /// #[derive(Serialize, Deserialize, Clone)]
    /// struct PageViews { page: String, views: u64 }
    /// impl TypedPayload for PageViews { const EVENT_TYPE: &'static str = "page_views"; }
    ///
    /// let views = Aggregate::fold(
    ///     |click: &Click| click.page.clone(),
    ///     |group| PageViews { page: group.key.clone(), views: 0 },
    ///     |views: &mut PageViews, _click: &Click| views.views += 1,
    /// );
    /// ```
    pub fn fold(
        key: impl FnMut(&T) -> K + Send + 'static,
        mut init: impl FnMut(&GroupKey<K>) -> S + Send + 'static,
        mut fold: impl FnMut(&mut S, &T) + Send + 'static,
    ) -> Self {
        Self::with_accumulator(
            Box::new(key),
            Box::new(move |group, state, record| match state {
                Some(state) => {
                    fold(state, record);
                    None
                }
                None => {
                    let mut state = init(group);
                    fold(&mut state, record);
                    Some(state)
                }
            }),
        )
    }

    /// Sets when the groups are emitted; [`Emit::OnDrain`] by default.
    ///
    /// ```
    /// use std::time::Duration;
    /// use obzenflow_core::TypedPayload;
    /// use obzenflow_stages::stateful::{Aggregate, Emit};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize, Clone)]
    /// struct Reading { sensor: u32, celsius: f64 }
    /// impl TypedPayload for Reading { const EVENT_TYPE: &'static str = "reading"; }
    ///
    /// let hottest_per_minute = Aggregate::reduce(
    ///     |reading: &Reading| reading.sensor,
    ///     |hottest: &mut Reading, reading: &Reading| {
    ///         if reading.celsius > hottest.celsius { *hottest = reading.clone(); }
    ///     },
    /// )
    /// .emit(Emit::TumblingWindow(Duration::from_secs(60)));
    /// ```
    pub fn emit(mut self, emit: Emit) -> Self {
        self.emit = emit;
        self
    }

    /// Keeps only the first `n` groups of each emission (each window, for windowed emission)
    /// when sorted by `compare`; ties keep key order.
    ///
    /// ```
    /// use obzenflow_core::TypedPayload;
    /// use obzenflow_stages::stateful::Aggregate;
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize, Clone)]
    /// struct Sale { region: String, amount: f64 }
    /// impl TypedPayload for Sale { const EVENT_TYPE: &'static str = "sale"; }
    ///
    /// // The three regions with the largest single sale.
    /// let top3 = Aggregate::reduce(
    ///     |sale: &Sale| sale.region.clone(),
    ///     |best: &mut Sale, sale: &Sale| if sale.amount > best.amount { *best = sale.clone() },
    /// )
    /// .top_n(3, |a, b| b.amount.total_cmp(&a.amount));
    /// ```
    pub fn top_n(
        mut self,
        n: usize,
        compare: impl Fn(&S, &S) -> Ordering + Send + 'static,
    ) -> Self {
        self.top = Some((n, Box::new(compare)));
        self
    }

    /// Keeps only the groups whose state satisfies `predicate` in each emission; applied
    /// before [`top_n`](Self::top_n) ranks them, so "the top 5 routes with at least 1,000
    /// flights" is one stage. Groups that fail it are kept (they may pass later, for
    /// [`Emit::EveryRecords`]), only not emitted.
    ///
    /// ```
    /// use obzenflow_core::TypedPayload;
    /// use obzenflow_stages::stateful::Aggregate;
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize, Clone)]
    /// struct Flight { route: String }
    /// impl TypedPayload for Flight { const EVENT_TYPE: &'static str = "flight"; }
    /// #[derive(Serialize, Deserialize, Clone)]
    /// struct Route { route: String, flights: u64 }
    /// impl TypedPayload for Route { const EVENT_TYPE: &'static str = "route"; }
    ///
    /// // The five busiest routes among those with at least 1,000 flights.
    /// let busiest = Aggregate::fold(
    ///     |flight: &Flight| flight.route.clone(),
    ///     |group| Route { route: group.key.clone(), flights: 0 },
    ///     |route: &mut Route, _flight: &Flight| route.flights += 1,
    /// )
    /// .having(|route: &Route| route.flights >= 1_000)
    /// .top_n(5, |a, b| b.flights.cmp(&a.flights));
    /// ```
    pub fn having(mut self, predicate: impl Fn(&S) -> bool + Send + 'static) -> Self {
        self.having = Some(Box::new(predicate));
        self
    }

    /// Emits `finish(state)` for each group instead of the state itself: the state is an
    /// accumulator that only lives in memory (it need not be a [`TypedPayload`], nor even
    /// `Clone`), and `finish` runs once per emitted group, not per record. The order of the
    /// builder calls does not matter; [`having`](Self::having) and [`top_n`](Self::top_n) look at
    /// the accumulator.
    ///
    /// ```
    /// use obzenflow_core::TypedPayload;
    /// use obzenflow_stages::stateful::Aggregate;
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize, Clone)]
    /// struct Flight { route: String, delay_minutes: f64 }
    /// impl TypedPayload for Flight { const EVENT_TYPE: &'static str = "flight"; }
    /// #[derive(Serialize, Deserialize, Clone)]
    /// struct MeanDelay { route: String, flights: u64, mean_minutes: f64 }
    /// impl TypedPayload for MeanDelay { const EVENT_TYPE: &'static str = "mean_delay"; }
    ///
    /// // The accumulator: a plain struct, never serialized.
    /// struct Sum { route: String, flights: u64, minutes: f64 }
    ///
    /// let mean_delay = Aggregate::fold(
    ///     |flight: &Flight| flight.route.clone(),
    ///     |group| Sum { route: group.key.clone(), flights: 0, minutes: 0.0 },
    ///     |sum: &mut Sum, flight: &Flight| {
    ///         sum.flights += 1;
    ///         sum.minutes += flight.delay_minutes;
    ///     },
    /// )
    /// .finish(|sum: &Sum| MeanDelay {
    ///     route: sum.route.clone(),
    ///     flights: sum.flights,
    ///     mean_minutes: sum.minutes / sum.flights as f64,
    /// });
    /// ```
    pub fn finish<O: TypedPayload>(
        self,
        finish: impl FnMut(&S) -> O + Send + 'static,
    ) -> Finished<T, K, S, O> {
        Finished {
            aggregate: self,
            finish: Box::new(finish),
        }
    }

    /// Reads each record's event time with `event_time` instead of the record's own
    /// `event_time` field; used by [`Emit::TumblingWindow`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use obzenflow_core::{Timestamp, TypedPayload};
    /// use obzenflow_stages::stateful::{Aggregate, Emit};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize, Clone)]
    /// struct Trade { symbol: String, at_micros: u64, volume: u64 }
    /// impl TypedPayload for Trade { const EVENT_TYPE: &'static str = "trade"; }
    ///
    /// let volume_per_second = Aggregate::reduce(
    ///     |trade: &Trade| trade.symbol.clone(),
    ///     |total: &mut Trade, trade: &Trade| total.volume += trade.volume,
    /// )
    /// .event_time(|trade: &Trade| Timestamp::from_micros(trade.at_micros))
    /// .emit(Emit::TumblingWindow(Duration::from_secs(1)));
    /// ```
    pub fn event_time(
        mut self,
        mut event_time: impl FnMut(&T) -> Timestamp + Send + 'static,
    ) -> Self {
        self.event_time = Box::new(move |record, _| Some(event_time(record)));
        self
    }

    fn with_accumulator(key: KeyFn<T, K>, accumulate: AccumulateFn<T, K, S>) -> Self {
        Self {
            key,
            accumulate,
            event_time: Box::new(|_, event| event.event_time),
            emit: Emit::OnDrain,
            having: None,
            top: None,
            groups: BTreeMap::new(),
            since_snapshot: 0,
            watermark: None,
        }
    }

    /// The window of `record`, closing the windows it moves event time past into `out`; `None`
    /// when not windowing.
    fn advance_windows(
        &mut self,
        record: &T,
        event: &ChainEvent,
        out: &mut Vec<ChainEvent>,
        to_event: ToEvent<'_, S>,
    ) -> Result<Option<Window>, RecordError> {
        let Emit::TumblingWindow(size) = self.emit else {
            return Ok(None);
        };
        let time = (self.event_time)(record, event).ok_or_else(|| {
            RecordError::validation(
                "record has no event time, which a tumbling window needs \
                 (set it at the source or with `Aggregate::event_time`)",
            )
        })?;
        let window = Window::containing(time, size);
        if let Some(watermark) = self.watermark.filter(|watermark| window.end <= *watermark) {
            return Err(RecordError::validation(format!(
                "late record: event time {time} falls in window {window}, which closed when \
                 event time {watermark} arrived"
            )));
        }
        if self.watermark.is_none_or(|watermark| time > watermark) {
            self.watermark = Some(time);
            self.close_windows_until(time, out, to_event);
        }
        Ok(Some(window))
    }

    /// Emits and forgets every group whose window ends at or before `time`.
    fn close_windows_until(
        &mut self,
        time: Timestamp,
        out: &mut Vec<ChainEvent>,
        to_event: ToEvent<'_, S>,
    ) {
        let mut closed = Vec::new();
        while let Some(entry) = self.groups.first_entry() {
            if entry.key().window.is_none_or(|window| window.end > time) {
                break;
            }
            closed.push(entry.remove_entry());
        }
        let groups: Vec<(&GroupKey<K>, &S)> =
            closed.iter().map(|(key, state)| (key, state)).collect();
        self.emit_groups(groups, out, to_event);
    }

    /// Emits every group, keeping the state.
    fn snapshot(&self, out: &mut Vec<ChainEvent>, to_event: ToEvent<'_, S>) {
        self.emit_groups(self.groups.iter().collect(), out, to_event);
    }

    /// Appends one record per group to `out`, window by window, keeping each window's groups
    /// that pass `having`, then its top N when asked. `groups` is in group-key order.
    fn emit_groups(
        &self,
        groups: Vec<(&GroupKey<K>, &S)>,
        out: &mut Vec<ChainEvent>,
        to_event: ToEvent<'_, S>,
    ) {
        for window_groups in groups.chunk_by(|(a, _), (b, _)| a.window == b.window) {
            let mut selected: Vec<&(&GroupKey<K>, &S)> = match &self.having {
                Some(having) => window_groups.iter().filter(|(_, s)| having(s)).collect(),
                None => window_groups.iter().collect(),
            };
            if let Some((n, compare)) = &self.top {
                selected.sort_by(|(_, a), (_, b)| compare(a, b));
                selected.truncate(*n);
            }
            for (group, state) in selected {
                let mut event = to_event(state);
                event.event_time = group.window.map(|window| window.start);
                out.push(event);
            }
        }
    }
}

impl<T, S> Aggregate<T, (), S>
where
    T: TypedPayload + 'static,
    S: Send + 'static,
{
    /// One group for every record (a global, unkeyed aggregate): it starts from `init(group)`
    /// and every record is folded into it with `fold`. It emits one record per emission (per
    /// window, for [`Emit::TumblingWindow`]), and nothing if no record arrived.
    ///
    /// ```
    /// use obzenflow_core::TypedPayload;
    /// use obzenflow_stages::stateful::Aggregate;
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize, Clone)]
    /// struct Sale { amount: f64 }
    /// impl TypedPayload for Sale { const EVENT_TYPE: &'static str = "sale"; }
    /// #[derive(Serialize, Deserialize, Clone, Default)]
    /// struct Revenue { sales: u64, total: f64 }
    /// impl TypedPayload for Revenue { const EVENT_TYPE: &'static str = "revenue"; }
    ///
    /// let revenue = Aggregate::global(
    ///     |_| Revenue::default(),
    ///     |revenue: &mut Revenue, sale: &Sale| {
    ///         revenue.sales += 1;
    ///         revenue.total += sale.amount;
    ///     },
    /// );
    /// ```
    pub fn global(
        init: impl FnMut(&GroupKey<()>) -> S + Send + 'static,
        fold: impl FnMut(&mut S, &T) + Send + 'static,
    ) -> Self {
        Self::fold(|_| (), init, fold)
    }
}

impl<T, K> Aggregate<T, K, T>
where
    T: TypedPayload + Send + 'static,
    K: Ord + Clone + Send + 'static,
{
    /// Groups records by `key`; a group's first record is its state, and each later record is
    /// combined into it with `reduce`. The emitted records are of the input type.
    ///
    /// ```
    /// use obzenflow_core::TypedPayload;
    /// use obzenflow_stages::stateful::Aggregate;
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize, Clone)]
    /// struct Total { account: String, cents: i64 }
    /// impl TypedPayload for Total { const EVENT_TYPE: &'static str = "total"; }
    ///
    /// let balance = Aggregate::reduce(
    ///     |entry: &Total| entry.account.clone(),
    ///     |balance: &mut Total, entry: &Total| balance.cents += entry.cents,
    /// );
    /// ```
    pub fn reduce(
        key: impl FnMut(&T) -> K + Send + 'static,
        mut reduce: impl FnMut(&mut T, &T) + Send + 'static,
    ) -> Self {
        Self::with_accumulator(
            Box::new(key),
            Box::new(move |_, state, record| match state {
                Some(state) => {
                    reduce(state, record);
                    None
                }
                None => Some(record.clone()),
            }),
        )
    }
}

impl<T, K, S> StatefulHandler for Aggregate<T, K, S>
where
    T: TypedPayload + 'static,
    K: Ord + Clone + Send + 'static,
    S: TypedPayload + Send + 'static,
{
    fn input_type(&self) -> Option<RecordType> {
        Some(RecordType::of::<T>())
    }

    fn output_type(&self) -> Option<RecordType> {
        Some(RecordType::of::<S>())
    }

    fn initialize(&mut self) -> Result<(), HandlerFailure> {
        self.check()
    }

    fn accumulate(
        &mut self,
        event: &ChainEvent,
        ready: &mut Vec<ChainEvent>,
    ) -> Result<(), RecordError> {
        // By reference: a typed record from the stage before is folded without a copy.
        let emitted = T::with_event(event, |record| {
            self.process_record(record, event, &mut |state| state.clone().into_event())
        })??;
        ready.extend(emitted);
        Ok(())
    }

    fn finish(&mut self) -> Result<Vec<ChainEvent>, HandlerFailure> {
        self.drain_groups(&mut |state| state.clone().into_event())
    }
}

impl<T, K, S> Aggregate<T, K, S>
where
    T: TypedPayload + 'static,
    K: Ord + Clone + Send + 'static,
    S: Send + 'static,
{
    fn check(&self) -> Result<(), HandlerFailure> {
        match self.emit {
            Emit::TumblingWindow(size) if size.is_zero() => Err(HandlerFailure::msg(
                "a tumbling window must be longer than zero",
            )),
            _ => Ok(()),
        }
    }

    fn process_record(
        &mut self,
        record: &T,
        event: &ChainEvent,
        to_event: ToEvent<'_, S>,
    ) -> RecordResult {
        let mut out = Vec::new();
        let window = self.advance_windows(record, event, &mut out, to_event)?;
        let group = GroupKey {
            window,
            key: (self.key)(record),
        };
        match self.groups.get_mut(&group) {
            Some(state) => {
                (self.accumulate)(&group, Some(state), record);
            }
            None => {
                if let Some(state) = (self.accumulate)(&group, None, record) {
                    self.groups.insert(group, state);
                }
            }
        }
        if let Emit::EveryRecords(every) = self.emit {
            self.since_snapshot += 1;
            if self.since_snapshot >= every.get() {
                self.since_snapshot = 0;
                self.snapshot(&mut out, to_event);
            }
        }
        Ok(out)
    }

    fn drain_groups(
        &mut self,
        to_event: ToEvent<'_, S>,
    ) -> Result<Vec<ChainEvent>, HandlerFailure> {
        let mut out = Vec::new();
        match self.emit {
            Emit::EveryRecords(_) if self.since_snapshot == 0 => {}
            Emit::EveryRecords(_) | Emit::OnDrain => self.snapshot(&mut out, to_event),
            Emit::TumblingWindow(_) => {
                let groups = std::mem::take(&mut self.groups);
                self.emit_groups(groups.iter().collect(), &mut out, to_event);
            }
        }
        self.since_snapshot = 0;
        Ok(out)
    }
}

/// An aggregation with a finish step: folds records into accumulators of type `S` and emits
/// `O` for each group. Made by [`Aggregate::finish`]; its input type is `T` and its output type
/// is `O`.
///
/// Everything else behaves as for [`Aggregate`]; the builder methods here are the same ones, so
/// they can come before or after the finish step.
pub struct Finished<T, K, S, O> {
    aggregate: Aggregate<T, K, S>,
    finish: FinishFn<S, O>,
}

impl<T, K: fmt::Debug, S, O> fmt::Debug for Finished<T, K, S, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Finished")
            .field("aggregate", &self.aggregate)
            .finish_non_exhaustive()
    }
}

impl<T, K, S, O> Finished<T, K, S, O>
where
    T: TypedPayload + 'static,
    K: Ord + Clone + Send + 'static,
    S: Send + 'static,
    O: TypedPayload,
{
    /// As [`Aggregate::emit`].
    pub fn emit(mut self, emit: Emit) -> Self {
        self.aggregate = self.aggregate.emit(emit);
        self
    }

    /// As [`Aggregate::having`]: the predicate looks at the accumulator.
    pub fn having(mut self, predicate: impl Fn(&S) -> bool + Send + 'static) -> Self {
        self.aggregate = self.aggregate.having(predicate);
        self
    }

    /// As [`Aggregate::top_n`]: the order is that of the accumulators.
    pub fn top_n(
        mut self,
        n: usize,
        compare: impl Fn(&S, &S) -> Ordering + Send + 'static,
    ) -> Self {
        self.aggregate = self.aggregate.top_n(n, compare);
        self
    }

    /// As [`Aggregate::event_time`].
    pub fn event_time(mut self, event_time: impl FnMut(&T) -> Timestamp + Send + 'static) -> Self {
        self.aggregate = self.aggregate.event_time(event_time);
        self
    }
}

impl<T, K, S, O> StatefulHandler for Finished<T, K, S, O>
where
    T: TypedPayload + 'static,
    K: Ord + Clone + Send + 'static,
    S: Send + 'static,
    O: TypedPayload,
{
    fn input_type(&self) -> Option<RecordType> {
        Some(RecordType::of::<T>())
    }

    fn output_type(&self) -> Option<RecordType> {
        Some(RecordType::of::<O>())
    }

    fn initialize(&mut self) -> Result<(), HandlerFailure> {
        self.aggregate.check()
    }

    fn accumulate(
        &mut self,
        event: &ChainEvent,
        ready: &mut Vec<ChainEvent>,
    ) -> Result<(), RecordError> {
        let Self { aggregate, finish } = self;
        let emitted = T::with_event(event, |record| {
            aggregate.process_record(record, event, &mut |state| finish(state).into_event())
        })??;
        ready.extend(emitted);
        Ok(())
    }

    fn finish(&mut self) -> Result<Vec<ChainEvent>, HandlerFailure> {
        let Self { aggregate, finish } = self;
        aggregate.drain_groups(&mut |state| finish(state).into_event())
    }
}
