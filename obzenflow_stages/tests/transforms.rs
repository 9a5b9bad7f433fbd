//! Transforms in flows: outputs, filtering, error lanes and ordering, raw and typed.

mod support;

use obzenflow_core::{ChainEvent, TypedPayload};
use obzenflow_runtime::pipeline::{FlowBuilder, FlowReport, Journals};
use obzenflow_runtime::stages::{RecordError, TransformHandler};
use obzenflow_stages::sinks::CollectSink;
use obzenflow_stages::sources::IterSource;
use obzenflow_stages::transforms::{
    async_map, filter, flat_map, map, try_map, typed, AsyncMapConfig,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use support::{assert_drained, Order};

#[derive(Debug, PartialEq, Serialize, Deserialize, Clone)]
struct Invoice {
    order: u64,
    total: f64,
}

impl TypedPayload for Invoice {
    const EVENT_TYPE: &'static str = "invoice";
}

fn numbers(count: u64) -> IterSource<impl Iterator<Item = ChainEvent> + Send + 'static> {
    IterSource::new((0..count).map(|n| ChainEvent::data("n", json!(n))))
}

fn orders(count: u64) -> Vec<Order> {
    (0..count)
        .map(|id| Order {
            id,
            customer: format!("c{}", id % 3),
            amount: id as f64 - 2.0,
        })
        .collect()
}

/// Runs `source -> stage -> collect` on memory journals.
async fn run_transform(
    source: impl obzenflow_runtime::stages::SourceHandler,
    stage: impl TransformHandler,
) -> (FlowReport, CollectSink) {
    let sink = CollectSink::new();
    let report = FlowBuilder::new("transform")
        .source("source", source)
        .transform("stage", stage)
        .sink("collect", sink.clone())
        .chain(["source", "stage", "collect"])
        .journals(Journals::memory())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_drained(&report);
    (report, sink)
}

fn values(sink: &CollectSink) -> Vec<u64> {
    sink.payloads().iter().filter_map(|p| p.as_u64()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_transforms_every_record() {
    let double = map(|event: ChainEvent| {
        let n = event.json().and_then(|p| p.as_u64()).unwrap_or(0);
        event.derive_data("n", json!(n * 2))
    });
    let (report, sink) = run_transform(numbers(5), double).await;
    assert_eq!(values(&sink), [0, 2, 4, 6, 8]);
    assert_eq!(report.stage("stage").unwrap().records_out, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_drops_and_counts_what_it_rejects() {
    let even = filter(|event: &ChainEvent| {
        event
            .json()
            .and_then(|p| p.as_u64())
            .is_some_and(|n| n % 2 == 0)
    });
    let (report, sink) = run_transform(numbers(7), even).await;
    assert_eq!(values(&sink), [0, 2, 4, 6]);
    assert_eq!(report.stage("stage").unwrap().records_filtered, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flat_map_emits_any_number_of_records() {
    let repeat = flat_map(|event: ChainEvent| {
        let n = event.json().and_then(|p| p.as_u64()).unwrap_or(0);
        (0..n)
            .map(|_| ChainEvent::data("n", json!(n)))
            .collect::<Vec<_>>()
    });
    let (report, sink) = run_transform(numbers(4), repeat).await;
    assert_eq!(values(&sink), [1, 2, 2, 3, 3, 3]);
    let stage = report.stage("stage").unwrap();
    assert_eq!((stage.records_out, stage.records_filtered), (6, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_map_errors_go_to_the_error_lane() {
    let odd_fails = try_map(|event: ChainEvent| {
        let n = event.json().and_then(|p| p.as_u64()).unwrap_or(0);
        if n % 2 == 1 {
            Err(RecordError::validation(format!("{n} is odd")))
        } else {
            Ok(event)
        }
    });
    let (report, sink) = run_transform(numbers(5), odd_fails).await;
    assert_eq!(values(&sink), [0, 2, 4]);
    let stage = report.stage("stage").unwrap();
    assert_eq!(stage.records_errored, 2);
    assert_eq!(
        stage.first_errors,
        ["validation: 1 is odd", "validation: 3 is odd"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_transforms_chain_and_reject_what_does_not_decode() {
    let mut events: Vec<ChainEvent> = orders(6).iter().map(|o| o.to_event().unwrap()).collect();
    events.push(ChainEvent::data("order", json!({"id": "seven"})));
    let sink = CollectSink::new();
    let report = FlowBuilder::new("typed")
        .source("orders", IterSource::new(events))
        .transform("positive", typed::filter(|o: &Order| o.amount >= 0.0))
        .transform(
            "invoice",
            typed::try_map(|o: Order| {
                if o.customer == "c1" {
                    return Err(RecordError::validation(format!(
                        "customer c1 is blocked ({})",
                        o.id
                    )));
                }
                Ok(Invoice {
                    order: o.id,
                    total: o.amount * 2.0,
                })
            }),
        )
        .transform(
            "split",
            typed::flat_map(|i: Invoice| {
                [
                    Invoice {
                        total: i.total / 2.0,
                        ..i
                    },
                    Invoice {
                        total: i.total / 2.0,
                        ..i
                    },
                ]
            }),
        )
        .transform(
            "round",
            typed::map(|i: Invoice| Invoice {
                total: i.total.round(),
                ..i
            }),
        )
        .sink("collect", sink.clone())
        .chain(["orders", "positive", "invoice", "split", "round", "collect"])
        .journals(Journals::memory())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_drained(&report);
    let invoices = sink.decode::<Invoice>().unwrap();
    let orders: Vec<u64> = invoices.iter().map(|i| i.order).collect();
    assert_eq!(orders, [2, 2, 3, 3, 5, 5]);
    let positive = report.stage("positive").unwrap();
    assert_eq!(positive.records_filtered, 2);
    assert_eq!(
        positive.first_errors,
        ["decode: cannot decode `order` payload: invalid type: string \"seven\", expected u64"]
    );
    let invoice = report.stage("invoice").unwrap();
    assert_eq!(
        invoice.first_errors,
        ["validation: customer c1 is blocked (4)"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_map_keeps_order_across_batches() {
    let config = AsyncMapConfig::with_concurrency(4);
    let slow_then_fast = async_map(config, |event: ChainEvent| async move {
        let n = event.json().and_then(|p| p.as_u64()).unwrap_or(0);
        if n == 3 {
            return Err(RecordError::validation("three"));
        }
        Ok::<_, RecordError>(event.derive_data("n", json!(n + 100)))
    });
    let sink = CollectSink::new();
    let report = FlowBuilder::new("async")
        .source("numbers", numbers(3_000))
        .async_transform("plus", slow_then_fast)
        .sink("collect", sink.clone())
        .chain(["numbers", "plus", "collect"])
        .journals(Journals::memory())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_drained(&report);
    let expected: Vec<u64> = (0..3_000).filter(|n| *n != 3).map(|n| n + 100).collect();
    assert_eq!(values(&sink), expected);
    assert_eq!(
        report.stage("plus").unwrap().first_errors,
        ["validation: three"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_async_map_decodes_and_encodes() {
    let invoice = typed::async_map(AsyncMapConfig::with_concurrency(2), |o: Order| async move {
        Ok::<_, RecordError>(Invoice {
            order: o.id,
            total: o.amount,
        })
    });
    let sink = CollectSink::new();
    let report = FlowBuilder::new("typed-async")
        .source("orders", IterSource::from_payloads(orders(3)))
        .async_transform("invoice", invoice)
        .sink("collect", sink.clone())
        .chain(["orders", "invoice", "collect"])
        .journals(Journals::memory())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_drained(&report);
    let totals: Vec<f64> = sink
        .decode::<Invoice>()
        .unwrap()
        .iter()
        .map(|i| i.total)
        .collect();
    assert_eq!(totals, [-2.0, -1.0, 0.0]);
}
