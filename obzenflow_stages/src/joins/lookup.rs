//! [`LookupJoin`]: enrich each record of a stream with the reference record of the same key.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::marker::PhantomData;

use obzenflow_core::{ChainEvent, CorrelationId, Record, TypedPayload};
use obzenflow_runtime::stages::{
    InputSpec, MultiInputHandler, ReadPolicy, RecordError, RecordType, RunOutputs, StateSize,
};

/// What a lookup join does with a stream record whose key has no reference record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum JoinStrategy {
    /// Drops it; it is counted in the stage's `records_filtered`.
    #[default]
    Inner,
    /// Passes it on: the combine function is called with no reference record.
    Left,
    /// Puts it on the error lane (kind `validation`), naming the key.
    Strict,
}

/// When a lookup join reads its reference input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LookupMode {
    /// The reference input is read to its end before any stream record is processed, so
    /// every stream record is joined against the whole table and the output does not depend
    /// on timing: a replay reproduces it record for record.
    #[default]
    HydrateFirst,
    /// Both inputs are read as records arrive; a reference record replaces the one of the
    /// same key from then on. Which version a stream record meets depends on how the two
    /// inputs interleave, which can differ from run to run.
    Live,
}

/// A stream-table join: input 0 is the reference (records of type `R`, keyed by
/// `reference_key`), input 1 the stream (records of type `S`, keyed by `stream_key`); each
/// stream record with a reference record of the same key is combined with it into an `O`.
///
/// - Later reference records replace earlier ones of the same key (in both modes).
/// - [`strategy`](Self::strategy) chooses what happens to a stream record with no match:
///   [`JoinStrategy::Inner`] (the default) drops it, counted as filtered; [`JoinStrategy::Left`]
///   passes it on to `combine` with `None`; [`JoinStrategy::Strict`] puts it on the error lane,
///   the message naming the key. With `Inner` and `Strict`, `combine` is always called with
///   `Some`.
/// - [`mode`](Self::mode) chooses when the reference is read: [`LookupMode::HydrateFirst`]
///   (the default) reads it to its end first, [`LookupMode::Live`] keeps it updating while
///   the stream flows.
/// - The output keeps the stream record's event time, and the stream record is its parent.
/// - Records of either input that do not decode go to the error lane with kind `decode`.
/// - The table (keys, records) is the stage's state gauge, shown in the flow report.
///
/// ```no_run
/// use obzenflow_stages::joins::{JoinStrategy, LookupJoin};
/// use obzenflow_stages::prelude::*;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Clone, Serialize, Deserialize)]
/// struct Airline { code: String, name: String }
/// impl TypedPayload for Airline { const EVENT_TYPE: &'static str = "airline"; }
/// #[derive(Clone, Serialize, Deserialize)]
/// struct Flight { number: String, carrier: String }
/// impl TypedPayload for Flight { const EVENT_TYPE: &'static str = "flight"; }
/// #[derive(Clone, Serialize, Deserialize)]
/// struct Enriched { number: String, airline: Option<String> }
/// impl TypedPayload for Enriched { const EVENT_TYPE: &'static str = "flight.enriched"; }
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let enrich = LookupJoin::new(
///     |airline: &Airline| airline.code.clone(),
///     |flight: &Flight| flight.carrier.clone(),
///     |flight: &Flight, airline: Option<&Airline>| Enriched {
///         number: flight.number.clone(),
///         airline: airline.map(|airline| airline.name.clone()),
///     },
/// )
/// .strategy(JoinStrategy::Left);
/// let report = FlowBuilder::new("flights")
///     .async_source("airlines", CsvSource::typed::<Airline>("airlines.csv"))
///     .async_source("flights", CsvSource::typed::<Flight>("flights.csv"))
///     .join("enrich", enrich, "airlines", "flights")
///     .sink("out", JsonLinesSink::new("enriched.jsonl"))
///     .edge("enrich", "out")
///     .build()?
///     .run()
///     .await?;
/// println!("{report}");
/// # Ok(())
/// # }
/// ```
pub struct LookupJoin<R, S, K, O, FR, FS, FC> {
    reference_key: FR,
    stream_key: FS,
    combine: FC,
    strategy: JoinStrategy,
    mode: LookupMode,
    /// `key -> (the latest reference record, the source record it descends from)`.
    table: HashMap<K, (R, CorrelationId)>,
    types: PhantomData<fn(S) -> O>,
}

impl<R, S, K, O, FR, FS, FC> LookupJoin<R, S, K, O, FR, FS, FC>
where
    R: TypedPayload,
    S: TypedPayload,
    O: TypedPayload,
    K: Hash + Eq + Debug + Send + 'static,
    FR: FnMut(&R) -> K + Send + 'static,
    FS: FnMut(&S) -> K + Send + 'static,
    FC: FnMut(&S, Option<&R>) -> O + Send + 'static,
{
    /// An inner, hydrate-first lookup join: reference records keyed by `reference_key`,
    /// stream records by `stream_key`, each match combined by `combine`.
    pub fn new(reference_key: FR, stream_key: FS, combine: FC) -> Self {
        Self {
            reference_key,
            stream_key,
            combine,
            strategy: JoinStrategy::default(),
            mode: LookupMode::default(),
            table: HashMap::new(),
            types: PhantomData,
        }
    }

    /// Chooses what happens to a stream record with no match.
    pub fn strategy(mut self, strategy: JoinStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Chooses when the reference input is read.
    pub fn mode(mut self, mode: LookupMode) -> Self {
        self.mode = mode;
        self
    }

    fn absorb(&mut self, event: &ChainEvent) -> Result<(), RecordError> {
        let record = R::from_event(event)?;
        let key = (self.reference_key)(&record);
        self.table.insert(key, (record, event.correlation_id()));
        Ok(())
    }

    fn enrich(&mut self, event: &ChainEvent, out: &mut Vec<ChainEvent>) -> Result<(), RecordError> {
        let Self {
            stream_key,
            combine,
            table,
            strategy,
            ..
        } = self;
        enrich(stream_key, combine, *strategy, table, event, out)
    }

    /// Enriches a run of stream records: every record of the run is looked up before any is
    /// combined. The lookups do not depend on one another, so when the table is larger than
    /// the cache their misses overlap instead of waiting one after another, as they would
    /// between combine calls. A record that needs decoding (read back from disk) or does not
    /// decode takes the one-at-a-time path, which decodes it or names the error.
    fn enrich_run(&mut self, events: &[Record], out: &mut RunOutputs<'_>) {
        let Self {
            stream_key,
            combine,
            table,
            strategy,
            ..
        } = self;
        let looked_up: Vec<_> = events
            .iter()
            .map(|event| {
                S::shared(event).map(|record| {
                    let key = stream_key(record);
                    let found = table.get(&key);
                    (record, key, found)
                })
            })
            .collect();
        // Then every match is combined before any becomes an event, for the same reason: the
        // combine function's reads of the reference records overlap too.
        let joined: Vec<_> = looked_up
            .into_iter()
            .map(|looked_up| {
                looked_up
                    .map(|(record, key, found)| join_one(combine, *strategy, record, &key, found))
            })
            .collect();
        for (event, joined) in events.iter().zip(joined) {
            let Some(joined) = joined else {
                out.record(|scratch| enrich(stream_key, combine, *strategy, table, event, scratch));
                continue;
            };
            let result = joined.map(|joined| {
                if let Some(joined) = joined {
                    out.push(joined.into_event(event));
                }
            });
            out.finish(result);
        }
    }
}

/// Enriches one stream record, decoding it if it needs to be.
fn enrich<R, S, K, O>(
    stream_key: &mut impl FnMut(&S) -> K,
    combine: &mut impl FnMut(&S, Option<&R>) -> O,
    strategy: JoinStrategy,
    table: &HashMap<K, (R, CorrelationId)>,
    event: &ChainEvent,
    out: &mut Vec<ChainEvent>,
) -> Result<(), RecordError>
where
    S: TypedPayload,
    O: TypedPayload,
    K: Hash + Eq + Debug,
{
    let joined = S::with_event(event, |record| {
        let key = stream_key(record);
        join_one(combine, strategy, record, &key, table.get(&key))
    })??;
    if let Some(joined) = joined {
        out.push(joined.into_event(event));
    }
    Ok(())
}

/// Joins stream record `record`, whose key is `key`, with what the table holds for the key.
fn join_one<R, S, K: Debug, O>(
    combine: &mut impl FnMut(&S, Option<&R>) -> O,
    strategy: JoinStrategy,
    record: &S,
    key: &K,
    found: Option<&(R, CorrelationId)>,
) -> Result<Option<Joined<O>>, RecordError> {
    Ok(match (found, strategy) {
        (Some((reference, from)), _) => Some(Joined {
            record: combine(record, Some(reference)),
            reference: Some(*from),
        }),
        (None, JoinStrategy::Left) => Some(Joined {
            record: combine(record, None),
            reference: None,
        }),
        (None, JoinStrategy::Inner) => None,
        (None, JoinStrategy::Strict) => {
            return Err(RecordError::validation(format!(
                "no reference record for key {key:?}"
            )))
        }
    })
}

/// A joined record before it becomes an event.
struct Joined<O> {
    record: O,
    /// The source record the reference record descends from, if one matched.
    reference: Option<CorrelationId>,
}

impl<O: TypedPayload> Joined<O> {
    /// The output event of stream record `event`: its event time, and lineage to both inputs
    /// (the stream record is the parent; the reference record's source is named too).
    fn into_event(self, event: &ChainEvent) -> ChainEvent {
        let mut output = self.record.into_event();
        output.event_time = event.event_time;
        output.causality.joined_correlation_id = self.reference;
        output
    }
}

impl<R, S, K, O, FR, FS, FC> MultiInputHandler for LookupJoin<R, S, K, O, FR, FS, FC>
where
    R: TypedPayload,
    S: TypedPayload,
    O: TypedPayload,
    K: Hash + Eq + Debug + Send + 'static,
    FR: FnMut(&R) -> K + Send + 'static,
    FS: FnMut(&S) -> K + Send + 'static,
    FC: FnMut(&S, Option<&R>) -> O + Send + 'static,
{
    fn inputs(&self) -> Vec<InputSpec> {
        vec![
            InputSpec::state("reference").typed::<R>(),
            InputSpec::stream("stream").typed::<S>(),
        ]
    }

    fn read_policy(&self) -> ReadPolicy {
        match self.mode {
            LookupMode::HydrateFirst => ReadPolicy::hydrate_first([0]),
            LookupMode::Live => ReadPolicy::interleaved(),
        }
    }

    fn process_into(
        &mut self,
        input: usize,
        event: &ChainEvent,
        out: &mut Vec<ChainEvent>,
    ) -> Result<(), RecordError> {
        if input == 0 {
            self.absorb(event)
        } else {
            self.enrich(event, out)
        }
    }

    fn process_run(&mut self, input: usize, events: &[Record], out: &mut RunOutputs<'_>) {
        if input == 0 {
            for event in events {
                out.finish(self.absorb(event));
            }
        } else {
            self.enrich_run(events, out);
        }
    }

    fn output_type(&self) -> Option<RecordType> {
        Some(RecordType::of::<O>())
    }

    fn state_size(&self) -> Option<StateSize> {
        let held = self.table.len() as u64;
        Some(StateSize::new(held, held))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use obzenflow_core::ErrorKind;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Rate {
        code: String,
        rate: f64,
    }
    impl TypedPayload for Rate {
        const EVENT_TYPE: &'static str = "rate";
    }
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Price {
        code: String,
        amount: f64,
    }
    impl TypedPayload for Price {
        const EVENT_TYPE: &'static str = "price";
    }

    fn join(strategy: JoinStrategy) -> impl MultiInputHandler {
        LookupJoin::new(
            |rate: &Rate| rate.code.clone(),
            |price: &Price| price.code.clone(),
            |price: &Price, rate: Option<&Rate>| Price {
                code: price.code.clone(),
                amount: price.amount * rate.map_or(0.0, |rate| rate.rate),
            },
        )
        .strategy(strategy)
    }

    fn rate(code: &str, rate: f64) -> ChainEvent {
        Rate {
            code: code.into(),
            rate,
        }
        .into_event()
    }

    fn price(code: &str, amount: f64) -> ChainEvent {
        Price {
            code: code.into(),
            amount,
        }
        .into_event()
    }

    fn run(
        join: &mut impl MultiInputHandler,
        input: usize,
        event: ChainEvent,
    ) -> Result<Vec<Price>, RecordError> {
        let mut out = Vec::new();
        join.process_into(input, &event, &mut out)?;
        Ok(out
            .iter()
            .map(|event| Price::from_event(event).unwrap())
            .collect())
    }

    #[test]
    fn a_later_reference_record_replaces_an_earlier_one_of_the_same_key() {
        let mut join = join(JoinStrategy::Inner);
        run(&mut join, 0, rate("eur", 2.0)).unwrap();
        run(&mut join, 0, rate("eur", 3.0)).unwrap();
        assert_eq!(run(&mut join, 1, price("eur", 1.0)).unwrap()[0].amount, 3.0);
        assert_eq!(join.state_size(), Some(StateSize::new(1, 1)));
    }

    #[test]
    fn each_strategy_treats_an_unmatched_record_its_way() {
        let mut inner = join(JoinStrategy::Inner);
        assert!(run(&mut inner, 1, price("usd", 1.0)).unwrap().is_empty());
        let mut left = join(JoinStrategy::Left);
        assert_eq!(run(&mut left, 1, price("usd", 1.0)).unwrap()[0].amount, 0.0);
        let mut strict = join(JoinStrategy::Strict);
        let error = run(&mut strict, 1, price("usd", 1.0)).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Validation);
        assert_eq!(error.message, "no reference record for key \"usd\"");
    }

    #[test]
    fn a_record_of_another_type_is_a_decode_error_on_either_input() {
        let mut join = join(JoinStrategy::Inner);
        assert_eq!(
            run(&mut join, 0, price("eur", 1.0)).unwrap_err().kind,
            ErrorKind::Decode
        );
        assert_eq!(
            run(&mut join, 1, rate("eur", 1.0)).unwrap_err().kind,
            ErrorKind::Decode
        );
    }
}
