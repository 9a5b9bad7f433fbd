//! Keyed aggregation: fold and reduce, top-N, and the three emission policies.

mod support;

use std::num::NonZeroU64;
use std::time::Duration;

use obzenflow_core::{ChainEvent, ErrorKind, Timestamp, TypedPayload};
use obzenflow_runtime::pipeline::{FlowBuilder, Journals};
use obzenflow_runtime::stages::TransformHandler;
use obzenflow_stages::sinks::CollectSink;
use obzenflow_stages::sources::IterSource;
use obzenflow_stages::stateful::{Aggregate, Emit, Window};
use serde::{Deserialize, Serialize};
use support::{assert_drained, Order};

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
