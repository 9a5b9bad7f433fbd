//! Aggregation: keyed and global fold and reduce, finish steps, `having` and top-N, and the
//! three emission policies.

mod support;

use std::num::NonZeroU64;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use obzenflow_core::{ChainEvent, ErrorKind, Timestamp, TypedPayload};
use obzenflow_runtime::pipeline::{FlowBuilder, FlowError, GraphError, Journals};
use obzenflow_runtime::stages::{HandlerFailure, RecordResult, RecordType, StatefulHandler};
use obzenflow_stages::sinks::{CollectSink, ConsoleSink};
use obzenflow_stages::sources::IterSource;
use obzenflow_stages::stateful::{Aggregate, Emit, GroupKey, Window};
use serde::{Deserialize, Serialize};
use support::{assert_drained, Order};

/// Drives a stateful handler the way the runtime does: one record at a time, then the end.
trait Drive: StatefulHandler {
    fn process(&mut self, event: &ChainEvent) -> RecordResult {
        let mut ready = Vec::new();
        self.accumulate(event, &mut ready)?;
        Ok(ready)
    }

    fn drain(&mut self) -> Result<Vec<ChainEvent>, HandlerFailure> {
        self.finish()
    }
}

impl<H: StatefulHandler> Drive for H {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Spend {
    customer: String,
    orders: u64,
    total: f64,
}

impl TypedPayload for Spend {
    const EVENT_TYPE: &'static str = "spend";
}

fn spend() -> Aggregate<Order, String, Spend> {
    Aggregate::fold(
        |order: &Order| order.customer.clone(),
        |group| Spend {
            customer: group.key.clone(),
            orders: 0,
            total: 0.0,
        },
        |spend: &mut Spend, order: &Order| {
            spend.orders += 1;
            spend.total += order.amount;
        },
    )
}

fn order(id: u64, customer: &str, amount: f64) -> ChainEvent {
    Order {
        id,
        customer: customer.to_owned(),
        amount,
    }
    .to_event()
    .unwrap()
}

/// An order whose event time is `second` seconds after the epoch.
fn order_at(second: u64, customer: &str, amount: f64) -> ChainEvent {
    order(second, customer, amount).with_event_time(Timestamp::from_micros(second * 1_000_000))
}

fn decode<T: TypedPayload>(events: &[ChainEvent]) -> Vec<T> {
    events.iter().map(|e| T::from_event(e).unwrap()).collect()
}

fn spends(events: &[ChainEvent]) -> Vec<(String, u64, f64)> {
    decode::<Spend>(events)
        .into_iter()
        .map(|s| (s.customer, s.orders, s.total))
        .collect()
}

fn row(customer: &str, orders: u64, total: f64) -> (String, u64, f64) {
    (customer.to_owned(), orders, total)
}

#[test]
fn fold_emits_every_group_in_key_order_at_drain() {
    let mut stage = spend();
    for event in [
        order(1, "bob", 2.0),
        order(2, "alice", 1.0),
        order(3, "bob", 3.0),
    ] {
        assert!(stage.process(&event).unwrap().is_empty());
    }
    let out = stage.drain().unwrap();
    assert_eq!(spends(&out), [row("alice", 1, 1.0), row("bob", 2, 5.0)]);
}

#[test]
fn reduce_starts_from_the_first_record() {
    let mut stage = Aggregate::reduce(
        |order: &Order| order.customer.clone(),
        |best: &mut Order, order: &Order| {
            if order.amount > best.amount {
                *best = order.clone();
            }
        },
    );
    for event in [
        order(1, "a", 5.0),
        order(2, "a", 9.0),
        order(3, "b", 1.0),
        order(4, "a", 7.0),
    ] {
        stage.process(&event).unwrap();
    }
    let best: Vec<u64> = decode::<Order>(&stage.drain().unwrap())
        .iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(best, [2, 3]);
}

#[test]
fn top_n_keeps_the_first_groups_in_the_given_order() {
    let mut stage = spend().top_n(2, |a, b| b.total.total_cmp(&a.total));
    for (id, customer, amount) in [(1, "a", 1.0), (2, "b", 5.0), (3, "c", 3.0), (4, "d", 5.0)] {
        stage.process(&order(id, customer, amount)).unwrap();
    }
    // b and d tie; key order breaks the tie.
    assert_eq!(
        spends(&stage.drain().unwrap()),
        [row("b", 1, 5.0), row("d", 1, 5.0)]
    );
}

#[test]
fn every_n_records_emits_complete_snapshots() {
    let every_two = Emit::EveryRecords(NonZeroU64::new(2).unwrap());
    let mut stage = spend().emit(every_two);
    assert!(stage.process(&order(1, "a", 1.0)).unwrap().is_empty());
    let first = stage.process(&order(2, "b", 2.0)).unwrap();
    assert_eq!(spends(&first), [row("a", 1, 1.0), row("b", 1, 2.0)]);
    assert!(stage.process(&order(3, "a", 3.0)).unwrap().is_empty());
    let second = stage.process(&order(4, "a", 4.0)).unwrap();
    assert_eq!(spends(&second), [row("a", 3, 8.0), row("b", 1, 2.0)]);
    // Nothing arrived since the last snapshot: the drain adds nothing.
    assert!(stage.drain().unwrap().is_empty());

    let mut stage = spend().emit(every_two);
    stage.process(&order(1, "a", 1.0)).unwrap();
    assert_eq!(spends(&stage.drain().unwrap()), [row("a", 1, 1.0)]);
}

#[test]
fn tumbling_windows_close_when_event_time_passes_their_end() {
    let mut stage = spend().emit(Emit::TumblingWindow(Duration::from_secs(10)));
    assert!(stage.process(&order_at(1, "a", 1.0)).unwrap().is_empty());
    assert!(stage.process(&order_at(9, "b", 2.0)).unwrap().is_empty());
    assert!(stage.process(&order_at(5, "a", 3.0)).unwrap().is_empty());
    // Second 10 starts the next window and closes [0s, 10s).
    let closed = stage.process(&order_at(10, "a", 4.0)).unwrap();
    assert_eq!(spends(&closed), [row("a", 2, 4.0), row("b", 1, 2.0)]);
    assert!(closed
        .iter()
        .all(|event| event.event_time == Some(Timestamp::from_micros(0))));
    // Skipping a window closes every window before the new record's.
    let closed = stage.process(&order_at(35, "c", 5.0)).unwrap();
    assert_eq!(spends(&closed), [row("a", 1, 4.0)]);
    assert_eq!(
        closed[0].event_time,
        Some(Timestamp::from_micros(10_000_000))
    );
    // The last window flushes at drain.
    let rest = stage.drain().unwrap();
    assert_eq!(spends(&rest), [row("c", 1, 5.0)]);
    assert_eq!(rest[0].event_time, Some(Timestamp::from_micros(30_000_000)));
}

#[test]
fn late_records_and_records_without_event_time_are_rejected() {
    let mut stage = spend().emit(Emit::TumblingWindow(Duration::from_secs(10)));
    stage.process(&order_at(25, "a", 1.0)).unwrap();
    let late = stage.process(&order_at(7, "a", 1.0)).unwrap_err();
    assert_eq!(late.kind, ErrorKind::Validation);
    assert_eq!(
        late.message,
        "late record: event time 1970-01-01T00:00:07.000000Z falls in window \
         [1970-01-01T00:00:00.000000Z, 1970-01-01T00:00:10.000000Z), which closed when event \
         time 1970-01-01T00:00:25.000000Z arrived"
    );
    // A record earlier than the latest, but in a window still open, is accepted.
    assert!(stage.process(&order_at(21, "a", 1.0)).is_ok());
    let untimed = stage.process(&order(3, "a", 1.0)).unwrap_err();
    assert_eq!(
        untimed.message,
        "record has no event time, which a tumbling window needs (set it at the source or \
         with `Aggregate::event_time`)"
    );
    assert_eq!(spends(&stage.drain().unwrap()), [row("a", 2, 2.0)]);
}

#[test]
fn event_times_can_come_from_the_payload_and_top_n_applies_per_window() {
    let mut stage = spend()
        .event_time(|order: &Order| Timestamp::from_micros(order.id * 1_000_000))
        .emit(Emit::TumblingWindow(Duration::from_secs(10)))
        .top_n(1, |a, b| b.total.total_cmp(&a.total));
    let mut out = Vec::new();
    for (second, customer, amount) in [(1, "a", 1.0), (2, "b", 2.0), (11, "a", 5.0), (12, "b", 1.0)]
    {
        out.extend(stage.process(&order(second, customer, amount)).unwrap());
    }
    out.extend(stage.drain().unwrap());
    assert_eq!(spends(&out), [row("b", 1, 2.0), row("a", 1, 5.0)]);
    let window = Window::containing(Timestamp::from_micros(11_000_000), Duration::from_secs(10));
    assert_eq!(out[1].event_time, Some(window.start));
}

#[test]
fn records_of_another_type_are_decode_errors_and_zero_windows_fail_initialize() {
    let mut stage = spend();
    let error = stage
        .process(&ChainEvent::data("refund", serde_json::json!({})))
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Decode);
    let mut zero = spend().emit(Emit::TumblingWindow(Duration::ZERO));
    assert_eq!(
        zero.initialize().unwrap_err().to_string(),
        "a tumbling window must be longer than zero"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aggregate_in_a_flow_emits_at_drain() {
    let events: Vec<ChainEvent> = (0..1_000)
        .map(|n| order(n, ["x", "y", "z"][(n % 3) as usize], 1.0))
        .collect();
    let sink = CollectSink::new();
    let report = FlowBuilder::new("aggregate")
        .source("orders", IterSource::new(events))
        .stateful("spend", spend())
        .sink("collect", sink.clone())
        .chain(["orders", "spend", "collect"])
        .journals(Journals::memory())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_drained(&report);
    let totals = decode::<Spend>(&sink.events());
    let counts: Vec<(String, u64)> = totals.into_iter().map(|s| (s.customer, s.orders)).collect();
    assert_eq!(
        counts,
        [("x".into(), 334), ("y".into(), 333), ("z".into(), 333)]
    );
    assert_eq!(report.stage("spend").unwrap().records_out, 3);
}

/// The mean order amount of a customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct MeanOrder {
    customer: String,
    orders: u64,
    mean: f64,
}

impl TypedPayload for MeanOrder {
    const EVENT_TYPE: &'static str = "mean_order";
}

/// An accumulator that is neither serializable nor `Clone`: it only lives in memory.
struct Sum {
    customer: String,
    orders: u64,
    total: f64,
}

/// The mean order amount per customer, counting the calls of the finish step in `finishes`.
fn mean_order(
    finishes: Arc<AtomicUsize>,
) -> obzenflow_stages::stateful::Finished<Order, String, Sum, MeanOrder> {
    Aggregate::fold(
        |order: &Order| order.customer.clone(),
        |group: &GroupKey<String>| Sum {
            customer: group.key.clone(),
            orders: 0,
            total: 0.0,
        },
        |sum: &mut Sum, order: &Order| {
            sum.orders += 1;
            sum.total += order.amount;
        },
    )
    .finish(move |sum: &Sum| {
        finishes.fetch_add(1, Ordering::Relaxed);
        MeanOrder {
            customer: sum.customer.clone(),
            orders: sum.orders,
            mean: sum.total / sum.orders as f64,
        }
    })
}

#[test]
fn finish_emits_a_mean_per_key_once_per_group_at_drain() {
    let finishes = Arc::new(AtomicUsize::new(0));
    let mut stage = mean_order(finishes.clone());
    assert_eq!(stage.input_type(), Some(RecordType::of::<Order>()));
    assert_eq!(stage.output_type(), Some(RecordType::of::<MeanOrder>()));
    for (id, customer, amount) in [(1, "b", 2.0), (2, "a", 1.0), (3, "b", 4.0), (4, "b", 6.0)] {
        assert!(stage
            .process(&order(id, customer, amount))
            .unwrap()
            .is_empty());
    }
    // Folding never ran the finish step.
    assert_eq!(finishes.load(Ordering::Relaxed), 0);
    let means = decode::<MeanOrder>(&stage.drain().unwrap());
    assert_eq!(
        means,
        [
            MeanOrder {
                customer: "a".into(),
                orders: 1,
                mean: 1.0
            },
            MeanOrder {
                customer: "b".into(),
                orders: 3,
                mean: 4.0
            },
        ]
    );
    assert_eq!(finishes.load(Ordering::Relaxed), 2);
}

#[test]
fn finished_aggregates_take_the_builder_methods_after_the_finish_step() {
    let finishes = Arc::new(AtomicUsize::new(0));
    let mut stage = mean_order(finishes.clone())
        .event_time(|order: &Order| Timestamp::from_micros(order.id * 1_000_000))
        .emit(Emit::TumblingWindow(Duration::from_secs(10)))
        .having(|sum: &Sum| sum.orders >= 2)
        .top_n(1, |a, b| b.total.total_cmp(&a.total));
    let mut out = Vec::new();
    for (second, customer, amount) in [
        (1, "a", 1.0),
        (2, "a", 3.0),
        (3, "b", 9.0),
        (4, "c", 2.0),
        (5, "c", 4.0),
        (11, "a", 5.0),
    ] {
        out.extend(stage.process(&order(second, customer, amount)).unwrap());
    }
    out.extend(stage.drain().unwrap());
    // Window [0s, 10s): b has one order only; c's total (6) beats a's (4). Window [10s, 20s):
    // a has one order only, so nothing.
    let means: Vec<(String, f64)> = decode::<MeanOrder>(&out)
        .into_iter()
        .map(|m| (m.customer, m.mean))
        .collect();
    assert_eq!(means, [("c".to_owned(), 3.0)]);
    assert_eq!(out[0].event_time, Some(Timestamp::from_micros(0)));
    assert_eq!(finishes.load(Ordering::Relaxed), 1);
    let mut zero = mean_order(finishes).emit(Emit::TumblingWindow(Duration::ZERO));
    assert!(zero.initialize().is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_aggregate_in_a_flow_emits_its_output_type() {
    let events: Vec<ChainEvent> = (0..300)
        .map(|n| order(n, ["x", "y"][(n % 2) as usize], (n % 2) as f64 + 1.0))
        .collect();
    let finishes = Arc::new(AtomicUsize::new(0));
    let sink = CollectSink::new();
    let report = FlowBuilder::new("mean")
        .source("orders", IterSource::new(events))
        .stateful("mean", mean_order(finishes.clone()))
        .sink("collect", sink.clone())
        .chain(["orders", "mean", "collect"])
        .journals(Journals::memory())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_drained(&report);
    let means: Vec<(String, u64, f64)> = decode::<MeanOrder>(&sink.events())
        .into_iter()
        .map(|m| (m.customer, m.orders, m.mean))
        .collect();
    assert_eq!(means, [row("x", 150, 1.0), row("y", 150, 2.0)]);
    assert_eq!(finishes.load(Ordering::Relaxed), 2);
    assert_eq!(report.stage("mean").unwrap().records_out, 2);
}

#[test]
fn a_finished_aggregate_is_wired_by_its_output_type_not_its_accumulator() {
    let built = FlowBuilder::new("mis-wired-mean")
        .source("orders", IterSource::new(Vec::new()))
        .stateful("mean", mean_order(Arc::default()))
        .sink(
            "print",
            ConsoleSink::typed(|order: &Order| order.customer.clone()),
        )
        .chain(["orders", "mean", "print"])
        .journals(Journals::memory())
        .build();
    let Err(FlowError::Graph(GraphError::TypeMismatch {
        from, emits, to, ..
    })) = &built
    else {
        panic!("expected a type mismatch, got {built:?}");
    };
    assert_eq!((from.as_str(), to.as_str()), ("mean", "print"));
    assert_eq!(emits.event_type(), "mean_order");
}

/// Every order: how many, and their total.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
struct AllOrders {
    orders: u64,
    total: f64,
}

impl TypedPayload for AllOrders {
    const EVENT_TYPE: &'static str = "all_orders";
}

fn all_orders() -> Aggregate<Order, (), AllOrders> {
    Aggregate::global(
        |_| AllOrders::default(),
        |all: &mut AllOrders, order: &Order| {
            all.orders += 1;
            all.total += order.amount;
        },
    )
}

#[test]
fn a_global_aggregate_is_one_group_emitted_at_drain() {
    let mut stage = all_orders();
    for (id, customer, amount) in [(1, "b", 2.0), (2, "a", 1.0), (3, "c", 4.0)] {
        assert!(stage
            .process(&order(id, customer, amount))
            .unwrap()
            .is_empty());
    }
    assert_eq!(
        decode::<AllOrders>(&stage.drain().unwrap()),
        [AllOrders {
            orders: 3,
            total: 7.0
        }]
    );
    // No record, no group: nothing is emitted.
    assert!(all_orders().drain().unwrap().is_empty());
}

#[test]
fn a_global_aggregate_emits_once_per_window() {
    let mut stage = all_orders().emit(Emit::TumblingWindow(Duration::from_secs(10)));
    let mut out = Vec::new();
    for (second, customer, amount) in [(1, "a", 1.0), (8, "b", 2.0), (12, "a", 5.0)] {
        out.extend(stage.process(&order_at(second, customer, amount)).unwrap());
    }
    assert_eq!(out.len(), 1, "the first window closed at second 12");
    out.extend(stage.drain().unwrap());
    let totals: Vec<(u64, f64)> = decode::<AllOrders>(&out)
        .into_iter()
        .map(|all| (all.orders, all.total))
        .collect();
    assert_eq!(totals, [(2, 3.0), (1, 5.0)]);
    let starts: Vec<_> = out.iter().map(|event| event.event_time).collect();
    assert_eq!(
        starts,
        [
            Some(Timestamp::from_micros(0)),
            Some(Timestamp::from_micros(10_000_000))
        ]
    );
}

#[test]
fn having_hides_groups_without_forgetting_them() {
    let every_two = Emit::EveryRecords(NonZeroU64::new(2).unwrap());
    let mut stage = spend()
        .emit(every_two)
        .having(|spend: &Spend| spend.orders >= 2);
    stage.process(&order(1, "a", 1.0)).unwrap();
    assert!(stage.process(&order(2, "b", 2.0)).unwrap().is_empty());
    stage.process(&order(3, "a", 3.0)).unwrap();
    let snapshot = stage.process(&order(4, "c", 4.0)).unwrap();
    assert_eq!(spends(&snapshot), [row("a", 2, 4.0)]);
    stage.process(&order(5, "b", 5.0)).unwrap();
    assert_eq!(
        spends(&stage.drain().unwrap()),
        [row("a", 2, 4.0), row("b", 2, 7.0)]
    );
}

/// A flight on a route, delayed by some minutes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Flight {
    route: String,
    delay_minutes: f64,
}

impl TypedPayload for Flight {
    const EVENT_TYPE: &'static str = "flight";
}

/// A route's flights and mean delay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RouteDelay {
    route: String,
    flights: u64,
    mean_delay: f64,
}

impl TypedPayload for RouteDelay {
    const EVENT_TYPE: &'static str = "route_delay";
}

/// The accumulator of a route's delays.
struct Delays {
    route: String,
    flights: u64,
    minutes: f64,
}

impl Delays {
    fn mean(&self) -> f64 {
        self.minutes / self.flights as f64
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_5_routes_with_at_least_1000_flights_is_one_stage() {
    // (route, flights, delay of each): B and H have the worst delays but too few flights; G
    // qualifies but is sixth.
    let routes = [
        ("A", 1_000, 10.0),
        ("B", 999, 90.0),
        ("C", 2_000, 20.0),
        ("D", 1_500, 30.0),
        ("E", 1_200, 40.0),
        ("F", 3_000, 50.0),
        ("G", 1_000, 5.0),
        ("H", 10, 100.0),
    ];
    let mut flights = Vec::new();
    for round in 0..3_000 {
        for (route, count, delay) in routes {
            if round < count {
                flights.push(Flight {
                    route: route.to_owned(),
                    delay_minutes: delay,
                });
            }
        }
    }
    let worst = Aggregate::fold(
        |flight: &Flight| flight.route.clone(),
        |group| Delays {
            route: group.key.clone(),
            flights: 0,
            minutes: 0.0,
        },
        |delays: &mut Delays, flight: &Flight| {
            delays.flights += 1;
            delays.minutes += flight.delay_minutes;
        },
    )
    .having(|delays: &Delays| delays.flights >= 1_000)
    .top_n(5, |a, b| b.mean().total_cmp(&a.mean()))
    .finish(|delays: &Delays| RouteDelay {
        route: delays.route.clone(),
        flights: delays.flights,
        mean_delay: delays.mean(),
    });
    let sink = CollectSink::new();
    let report = FlowBuilder::new("worst-routes")
        .source("flights", IterSource::from_payloads(flights))
        .stateful("worst", worst)
        .sink("collect", sink.clone())
        .chain(["flights", "worst", "collect"])
        .journals(Journals::memory())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_drained(&report);
    let top: Vec<(String, u64, f64)> = decode::<RouteDelay>(&sink.events())
        .into_iter()
        .map(|r| (r.route, r.flights, r.mean_delay))
        .collect();
    assert_eq!(
        top,
        [
            row("F", 3_000, 50.0),
            row("E", 1_200, 40.0),
            row("D", 1_500, 30.0),
            row("C", 2_000, 20.0),
            row("A", 1_000, 10.0),
        ]
    );
}
