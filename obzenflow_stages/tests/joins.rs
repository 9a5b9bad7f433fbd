//! The joins against a naive nested-loop join over random inputs: duplicate keys, missing
//! keys, empty sides, out-of-order and late records, every strategy and mode; first on the
//! handlers fed in random interleavings, then through whole flows.

use std::time::Duration;

use obzenflow_core::{ChainEvent, ErrorKind, Timestamp};
use obzenflow_runtime::stages::{MultiInputHandler, RecordError, StateSize};
use obzenflow_stages::joins::{IntervalJoin, JoinStrategy, LookupJoin, LookupMode};
use obzenflow_stages::prelude::*;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Rate {
    key: u8,
    value: u32,
}
impl TypedPayload for Rate {
    const EVENT_TYPE: &'static str = "rate";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Item {
    id: u32,
    key: u8,
}
impl TypedPayload for Item {
    const EVENT_TYPE: &'static str = "item";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Joined {
    id: u32,
    key: u8,
    value: Option<u32>,
}
impl TypedPayload for Joined {
    const EVENT_TYPE: &'static str = "joined";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Timed {
    id: u32,
    key: u8,
    at: u64,
}
impl TypedPayload for Timed {
    const EVENT_TYPE: &'static str = "timed";
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct Pair {
    left: u32,
    right: u32,
}
impl TypedPayload for Pair {
    const EVENT_TYPE: &'static str = "pair";
}

fn lookup(strategy: JoinStrategy, mode: LookupMode) -> impl MultiInputHandler {
    LookupJoin::new(
        |rate: &Rate| rate.key,
        |item: &Item| item.key,
        |item: &Item, rate: Option<&Rate>| Joined {
            id: item.id,
            key: item.key,
            value: rate.map(|rate| rate.value),
        },
    )
    .strategy(strategy)
    .mode(mode)
}

/// What a join did with one stream record: its output, nothing, or an error.
type Outcome = Result<Option<Joined>, RecordError>;

fn feed(
    join: &mut impl MultiInputHandler,
    input: usize,
    event: &ChainEvent,
) -> Result<Vec<ChainEvent>, RecordError> {
    let mut out = Vec::new();
    join.process_into(input, event, &mut out)?;
    Ok(out)
}

fn stream_outcome(join: &mut impl MultiInputHandler, item: &Item) -> Outcome {
    let out = feed(join, 1, &item.clone().into_event())?;
    assert!(
        out.len() <= 1,
        "a lookup join emits at most one record per stream record"
    );
    Ok(out.first().map(|event| Joined::from_event(event).unwrap()))
}

/// The naive lookup join of one stream record against the reference records before it: the
/// last of the same key wins.
fn naive_lookup(reference: &[Rate], item: &Item, strategy: JoinStrategy) -> Outcome {
    let mut found = None;
    for rate in reference {
        if rate.key == item.key {
            found = Some(rate.value);
        }
    }
    match (found, strategy) {
        (Some(value), _) => Ok(Some(Joined {
            id: item.id,
            key: item.key,
            value: Some(value),
        })),
        (None, JoinStrategy::Left) => Ok(Some(Joined {
            id: item.id,
            key: item.key,
            value: None,
        })),
        (None, JoinStrategy::Strict) => Err(RecordError::validation(format!(
            "no reference record for key {}",
            item.key
        ))),
        (None, _) => Ok(None),
    }
}

fn strategies() -> impl Strategy<Value = JoinStrategy> {
    prop_oneof![
        Just(JoinStrategy::Inner),
        Just(JoinStrategy::Left),
        Just(JoinStrategy::Strict)
    ]
}

fn rates(max: usize) -> impl Strategy<Value = Vec<Rate>> {
    prop::collection::vec((0u8..8, any::<u32>()), 0..max).prop_map(|rates| {
        rates
            .into_iter()
            .map(|(key, value)| Rate { key, value })
            .collect()
    })
}

fn items(max: usize) -> impl Strategy<Value = Vec<Item>> {
    prop::collection::vec(0u8..10, 0..max).prop_map(|keys| {
        keys.into_iter()
            .enumerate()
            .map(|(id, key)| Item { id: id as u32, key })
            .collect()
    })
}

/// Merges two sequences by `choices` (true takes from the first), the rest in order after.
fn interleave(first: usize, second: usize, choices: &[bool]) -> Vec<usize> {
    let (mut taken, mut order) = ([0, 0], Vec::with_capacity(first + second));
    let counts = [first, second];
    for &choice in choices
        .iter()
        .chain(std::iter::repeat_n(&true, first + second))
    {
        let mut side = usize::from(!choice);
        if taken[side] == counts[side] {
            side = 1 - side;
        }
        if taken[side] == counts[side] {
            break;
        }
        taken[side] += 1;
        order.push(side);
    }
    order
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Hydrate first: the whole table, then the stream; each stream record meets the last
    /// reference record of its key.
    #[test]
    fn a_hydrated_lookup_join_is_a_nested_loop_join(
        reference in rates(40),
        stream in items(40),
        strategy in strategies(),
    ) {
        let mut join = lookup(strategy, LookupMode::HydrateFirst);
        for rate in &reference {
            prop_assert!(feed(&mut join, 0, &rate.clone().into_event())?.is_empty());
        }
        for item in &stream {
            prop_assert_eq!(stream_outcome(&mut join, item), naive_lookup(&reference, item, strategy));
        }
        let keys = reference.iter().map(|rate| rate.key).collect::<std::collections::BTreeSet<_>>().len() as u64;
        prop_assert_eq!(join.state_size(), Some(StateSize::new(keys, keys)));
    }

    /// Live: the inputs interleave; each stream record meets the last reference record of its
    /// key that came before it.
    #[test]
    fn a_live_lookup_join_meets_the_table_as_it_was(
        reference in rates(40),
        stream in items(40),
        choices in prop::collection::vec(any::<bool>(), 0..80),
        strategy in strategies(),
    ) {
        let mut join = lookup(strategy, LookupMode::Live);
        let (mut next_rate, mut next_item) = (0, 0);
        for side in interleave(reference.len(), stream.len(), &choices) {
            if side == 0 {
                feed(&mut join, 0, &reference[next_rate].clone().into_event())?;
                next_rate += 1;
            } else {
                let item = &stream[next_item];
                prop_assert_eq!(
                    stream_outcome(&mut join, item),
                    naive_lookup(&reference[..next_rate], item, strategy)
                );
                next_item += 1;
            }
        }
    }
}

/// The interval join's settings in one place.
#[derive(Debug, Clone, Copy)]
struct Interval {
    lower: u64,
    upper: u64,
    lateness: u64,
}

fn interval_join(interval: Interval) -> impl MultiInputHandler {
    IntervalJoin::new(
        |left: &Timed| left.key,
        |right: &Timed| right.key,
        |left: &Timed, right: &Timed| Pair {
            left: left.id,
            right: right.id,
        },
    )
    .between(
        Duration::from_micros(interval.lower),
        Duration::from_micros(interval.upper),
    )
    .allowed_lateness(Duration::from_micros(interval.lateness))
    .event_time(
        |left: &Timed| Timestamp::from_micros(left.at),
        |right: &Timed| Timestamp::from_micros(right.at),
    )
}

/// Which records of one side are late: older than the largest time seen before them on that
/// side, minus the lateness.
fn late_flags(side: &[Timed], lateness: u64) -> Vec<bool> {
    let mut max: Option<u64> = None;
    side.iter()
        .map(|record| {
            let late = max.is_some_and(|max| record.at < max.saturating_sub(lateness));
            if !late {
                max = Some(max.map_or(record.at, |max| max.max(record.at)));
            }
            late
        })
        .collect()
}

/// The naive interval join: every pair of records that are not late, of the same key, with
/// the right time within [left - lower, left + upper].
fn naive_interval(left: &[Timed], right: &[Timed], interval: Interval) -> Vec<Pair> {
    let (left_late, right_late) = (
        late_flags(left, interval.lateness),
        late_flags(right, interval.lateness),
    );
    let mut pairs = Vec::new();
    for (a, a_late) in left.iter().zip(&left_late) {
        for (b, b_late) in right.iter().zip(&right_late) {
            let within = b.at + interval.lower >= a.at && b.at <= a.at + interval.upper;
            if !a_late && !b_late && a.key == b.key && within {
                pairs.push(Pair {
                    left: a.id,
                    right: b.id,
                });
            }
        }
    }
    pairs.sort();
    pairs
}

fn timed(max: usize) -> impl Strategy<Value = Vec<Timed>> {
    // Times mostly increase with some jitter, so some records are out of order and some late.
    prop::collection::vec((0u8..4, 0u64..40, any::<bool>()), 0..max).prop_map(|records| {
        let mut clock = 0u64;
        records
            .into_iter()
            .enumerate()
            .map(|(id, (key, jitter, back))| {
                clock += jitter / 4;
                let at = if back {
                    clock.saturating_sub(jitter)
                } else {
                    clock + jitter
                };
                Timed {
                    id: id as u32,
                    key,
                    at,
                }
            })
            .collect()
    })
}

fn intervals() -> impl Strategy<Value = Interval> {
    (0u64..30, 0u64..30, 0u64..40).prop_map(|(lower, upper, lateness)| Interval {
        lower,
        upper,
        lateness,
    })
}

/// What an interval join emitted and how many records it rejected as late.
fn run_interval(
    left: &[Timed],
    right: &[Timed],
    choices: &[bool],
    interval: Interval,
) -> Result<(Vec<Pair>, usize), TestCaseError> {
    let mut join = interval_join(interval);
    let (mut next, mut pairs, mut late) = ([0usize, 0], Vec::new(), 0);
    let sides = [left, right];
    let order = interleave(left.len(), right.len(), choices);
    let mut ended = [false, false];
    for side in order {
        let record = &sides[side][next[side]];
        next[side] += 1;
        match feed(&mut join, side, &record.clone().into_event()) {
            Ok(out) => pairs.extend(out.iter().map(|event| Pair::from_event(event).unwrap())),
            Err(error) => {
                prop_assert_eq!(error.kind, ErrorKind::Validation);
                prop_assert!(error.message.starts_with("late "), "{}", error.message);
                prop_assert!(error.message.contains(" behind the "), "{}", error.message);
                late += 1;
            }
        }
        // Like the runtime, each side's end comes right after its last record.
        for (index, done) in ended.iter_mut().enumerate() {
            if !*done && next[index] == sides[index].len() {
                *done = true;
                join.input_ended(index, &mut Vec::new()).unwrap();
            }
        }
    }
    let held = join.state_size().unwrap();
    prop_assert_eq!(
        held,
        StateSize::new(0, 0),
        "both sides ended: nothing is held"
    );
    pairs.sort();
    Ok((pairs, late))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever the interleaving of the two sides, the pairs are those of a nested-loop join
    /// over the records that are not late, each once; the late ones are rejected naming how
    /// late.
    #[test]
    fn an_interval_join_is_a_nested_loop_join_over_records_not_late(
        left in timed(40),
        right in timed(40),
        choices in prop::collection::vec(any::<bool>(), 0..80),
        interval in intervals(),
    ) {
        let (pairs, late) = run_interval(&left, &right, &choices, interval)?;
        prop_assert_eq!(pairs, naive_interval(&left, &right, interval));
        let expected_late = late_flags(&left, interval.lateness).iter().chain(&late_flags(&right, interval.lateness)).filter(|late| **late).count();
        prop_assert_eq!(late, expected_late);
    }
}

#[test]
fn a_late_record_says_by_how_much() {
    let mut join = interval_join(Interval {
        lower: 0,
        upper: 10,
        lateness: 5,
    });
    let record = |id, at| Timed { id, key: 1, at }.into_event();
    feed(&mut join, 0, &record(0, 100)).unwrap();
    let error = feed(&mut join, 0, &record(1, 90)).unwrap_err();
    assert_eq!(
        error.message,
        "late left record: event time 90 µs is 5µs behind the left watermark 95 µs"
    );
}

#[test]
fn a_record_without_an_event_time_is_refused_naming_the_side() {
    let mut join = IntervalJoin::new(
        |left: &Timed| left.key,
        |right: &Timed| right.key,
        |l: &Timed, r: &Timed| Pair {
            left: l.id,
            right: r.id,
        },
    );
    let error = feed(
        &mut join,
        1,
        &Timed {
            id: 0,
            key: 0,
            at: 0,
        }
        .into_event(),
    )
    .unwrap_err();
    assert_eq!(
        error.message,
        "the right record has no event time: give the join an `event_time` function"
    );
}

/// In-order streams: the state an interval join holds stays within the records the interval
/// covers, however long the streams.
#[test]
fn an_interval_joins_state_is_bounded_by_the_interval() {
    let interval = Interval {
        lower: 5,
        upper: 5,
        lateness: 0,
    };
    let mut join = interval_join(interval);
    let mut peak = 0;
    for at in 0..10_000u64 {
        for side in 0..2 {
            feed(
                &mut join,
                side,
                &Timed {
                    id: at as u32,
                    key: (at % 7) as u8,
                    at,
                }
                .into_event(),
            )
            .unwrap();
        }
        peak = peak.max(join.state_size().unwrap().records);
    }
    // Each side holds at most the records of the last `lower + upper + 1` microseconds.
    assert!(
        peak <= 2 * (interval.lower + interval.upper + 2),
        "peak {peak}"
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Through a whole flow, hydrate first: the output is the nested-loop join in stream order,
    /// unmatched records counted as filtered (inner) or on the error lane (strict).
    #[test]
    fn a_lookup_join_flow_is_a_nested_loop_join(
        reference in rates(60),
        stream in items(120),
        strategy in strategies(),
    ) {
        let sink = CollectSink::new();
        let flow = FlowBuilder::new("lookup")
            .source("rates", IterSource::from_payloads(reference.clone()))
            .source("items", IterSource::from_payloads(stream.clone()))
            .join("join", lookup(strategy, LookupMode::HydrateFirst), "rates", "items")
            .sink("out", sink.clone())
            .edge("join", "out")
            .configure("join", StageConfig { batch_limit: 7, ..StageConfig::default() })
            .journals(Journals::memory())
            .build()
            .unwrap();
        let report = runtime().block_on(flow.run()).unwrap();
        let expected: Vec<Outcome> = stream.iter().map(|item| naive_lookup(&reference, item, strategy)).collect();
        let joined: Vec<Joined> = expected.iter().filter_map(|outcome| outcome.clone().ok().flatten()).collect();
        prop_assert_eq!(sink.decode::<Joined>().unwrap(), joined);
        let join = report.stage("join").unwrap();
        let unmatched = expected.iter().filter(|outcome| !matches!(outcome, Ok(Some(_)))).count() as u64;
        match strategy {
            JoinStrategy::Inner => prop_assert_eq!((join.records_filtered, join.records_errored), (unmatched, 0)),
            JoinStrategy::Strict => prop_assert_eq!((join.records_filtered, join.records_errored), (0, unmatched)),
            _ => prop_assert_eq!((join.records_filtered, join.records_errored, unmatched), (0, 0, 0)),
        }
    }

    /// Through a whole flow, the interval join emits the pairs of the nested-loop join.
    #[test]
    fn an_interval_join_flow_is_a_nested_loop_join(
        left in timed(80),
        right in timed(80),
        interval in intervals(),
    ) {
        let sink = CollectSink::new();
        let flow = FlowBuilder::new("interval")
            .source("left", IterSource::from_payloads(left.clone()))
            .source("right", IterSource::from_payloads(right.clone()))
            .join("join", interval_join(interval), "left", "right")
            .sink("out", sink.clone())
            .edge("join", "out")
            .configure("join", StageConfig { batch_limit: 5, ..StageConfig::default() })
            .journals(Journals::memory())
            .build()
            .unwrap();
        let report = runtime().block_on(flow.run()).unwrap();
        let mut pairs = sink.decode::<Pair>().unwrap();
        pairs.sort();
        prop_assert_eq!(pairs, naive_interval(&left, &right, interval));
        let late = late_flags(&left, interval.lateness).iter().chain(&late_flags(&right, interval.lateness)).filter(|late| **late).count() as u64;
        prop_assert_eq!(report.stage("join").unwrap().records_errored, late);
    }
}

#[test]
fn a_strict_join_names_the_missing_key_on_the_error_lane() {
    let flow = FlowBuilder::new("strict")
        .source(
            "rates",
            IterSource::from_payloads(vec![Rate { key: 1, value: 10 }]),
        )
        .source(
            "items",
            IterSource::from_payloads(vec![Item { id: 0, key: 1 }, Item { id: 1, key: 9 }]),
        )
        .join(
            "join",
            lookup(JoinStrategy::Strict, LookupMode::HydrateFirst),
            "rates",
            "items",
        )
        .sink("out", CollectSink::new())
        .edge("join", "out")
        .journals(Journals::memory())
        .build()
        .unwrap();
    let report = runtime().block_on(flow.run()).unwrap();
    let join = report.stage("join").unwrap();
    assert_eq!(join.records_errored, 1);
    assert_eq!(
        join.first_errors,
        vec!["validation: no reference record for key 9".to_owned()]
    );
    assert!(
        report
            .to_string()
            .contains("state held by `join`: 1 keys, 1 records"),
        "{report}"
    );
}

#[test]
fn a_join_whose_input_type_differs_from_its_upstream_is_refused() {
    let error = FlowBuilder::new("mismatch")
        .source(
            "rates",
            IterSource::from_payloads(vec![Item { id: 0, key: 1 }]),
        )
        .source(
            "items",
            IterSource::from_payloads(vec![Item { id: 0, key: 1 }]),
        )
        .join(
            "join",
            lookup(JoinStrategy::Inner, LookupMode::HydrateFirst),
            "rates",
            "items",
        )
        .sink("out", CollectSink::new())
        .edge("join", "out")
        .journals(Journals::memory())
        .build()
        .unwrap_err();
    let FlowError::Graph(graph) = &error else {
        panic!("{error}")
    };
    assert!(
        matches!(graph, GraphError::TypeMismatch { from, to, .. } if from == "rates" && to == "join"),
        "{graph}"
    );
}

/// The correlation id of every record a source emitted, by the record's own id field.
fn correlations<T: TypedPayload>(
    sink: &CollectSink,
    id: impl Fn(&T) -> u32,
) -> std::collections::HashMap<u32, obzenflow_core::CorrelationId> {
    sink.events()
        .iter()
        .map(|event| (id(&T::from_event(event).unwrap()), event.correlation_id()))
        .collect()
}

#[test]
fn a_joined_record_leads_back_to_both_input_records() {
    let (rates_seen, items_seen, lookup_out) =
        (CollectSink::new(), CollectSink::new(), CollectSink::new());
    let rates = (0..4).map(|key| Rate {
        key,
        value: u32::from(key) * 10,
    });
    let items = (0..12).map(|id| Item {
        id,
        key: (id % 4) as u8,
    });
    let mut flow = FlowBuilder::new("lineage");
    let rate_source = flow.add_source("rates", IterSource::from_payloads(rates));
    let item_source = flow.add_source("items", IterSource::from_payloads(items));
    let join = flow.add_join(
        "join",
        lookup(JoinStrategy::Inner, LookupMode::HydrateFirst),
        &rate_source,
        &item_source,
    );
    flow.add_sink("rates_seen", rates_seen.clone(), &rate_source);
    flow.add_sink("items_seen", items_seen.clone(), &item_source);
    flow.add_sink("out", lookup_out.clone(), &join);
    // A record made from a joined one keeps naming both inputs.
    let after_out = CollectSink::new();
    let after = flow.add_transform("after", typed::map(|joined: Joined| joined), &join);
    flow.add_sink("after_out", after_out.clone(), &after);
    let report = runtime()
        .block_on(flow.journals(Journals::memory()).build().unwrap().run())
        .unwrap();
    assert!(report.is_success(), "{report:?}");
    let rate_of = correlations(&rates_seen, |rate: &Rate| u32::from(rate.key));
    let item_of = correlations(&items_seen, |item: &Item| item.id);
    let out = lookup_out.events();
    assert_eq!(out.len(), 12);
    for event in &out {
        let joined = Joined::from_event(event).unwrap();
        assert_eq!(event.correlation_id(), item_of[&joined.id], "{joined:?}");
        assert_eq!(
            event.causality.joined_correlation_id,
            Some(rate_of[&u32::from(joined.key)]),
            "{joined:?}"
        );
    }
    let after = after_out.events();
    assert_eq!(after.len(), out.len());
    for (derived, joined) in after.iter().zip(&out) {
        assert_ne!(derived.id, joined.id, "a record of its own");
        assert_eq!(derived.correlation_id(), joined.correlation_id());
        assert_eq!(
            derived.causality.joined_correlation_id,
            joined.causality.joined_correlation_id
        );
    }

    // An interval join holds records of both sides: whichever side came second is the parent,
    // the one held is the joined record.
    let (left_seen, right_seen, pairs_out) =
        (CollectSink::new(), CollectSink::new(), CollectSink::new());
    let timed = |id: u32| Timed {
        id,
        key: (id % 3) as u8,
        at: u64::from(id) * 2,
    };
    let mut flow = FlowBuilder::new("lineage");
    let left = flow.add_source("left", IterSource::from_payloads((0..20).map(timed)));
    let right = flow.add_source("right", IterSource::from_payloads((0..20).map(timed)));
    let interval = Interval {
        lower: 10,
        upper: 10,
        lateness: 100,
    };
    let join = flow.add_join("join", interval_join(interval), &left, &right);
    flow.add_sink("left_seen", left_seen.clone(), &left);
    flow.add_sink("right_seen", right_seen.clone(), &right);
    flow.add_sink("out", pairs_out.clone(), &join);
    let report = runtime()
        .block_on(flow.journals(Journals::memory()).build().unwrap().run())
        .unwrap();
    assert!(report.is_success(), "{report:?}");
    let left_of = correlations(&left_seen, |record: &Timed| record.id);
    let right_of = correlations(&right_seen, |record: &Timed| record.id);
    let out = pairs_out.events();
    assert!(!out.is_empty());
    for event in &out {
        let pair = Pair::from_event(event).unwrap();
        let mut got = [
            Some(event.correlation_id()),
            event.causality.joined_correlation_id,
        ];
        let mut want = [Some(left_of[&pair.left]), Some(right_of[&pair.right])];
        got.sort();
        want.sort();
        assert_eq!(got, want, "{pair:?}");
    }
}
