//! Flow throughput: source -> map -> sink against a hand-written tokio pipeline doing the same
//! work. Run with `cargo bench -p obzenflow_runtime --bench flow -- <scenario>`.

use std::time::Instant;

use obzenflow_core::ChainEvent;
use obzenflow_runtime::journal::SyncPolicy;
use obzenflow_runtime::pipeline::{FlowBuilder, Journals};
use obzenflow_runtime::stages::{
    HandlerFailure, RecordError, SinkHandler, SourceHandler, SourcePoll, TransformHandler,
};
use serde_json::{json, Value};

fn record(i: u64) -> Value {
    json!({"id": i, "customer": format!("c{}", i % 1000), "amount": (i % 10_000) as f64 / 100.0})
}

struct Generate {
    next: u64,
    total: u64,
}

impl SourceHandler for Generate {
    fn next_batch(&mut self, max: usize) -> Result<SourcePoll, HandlerFailure> {
        if self.next == self.total {
            return Ok(SourcePoll::Done);
        }
        let end = (self.next + max as u64).min(self.total);
        let records = (self.next..end).map(|i| ChainEvent::data("order", record(i))).collect();
        self.next = end;
        Ok(SourcePoll::Records(records))
    }
}

struct AddTax;

impl TransformHandler for AddTax {
    fn process(&mut self, event: &ChainEvent) -> Result<Vec<ChainEvent>, RecordError> {
        let mut out = event.clone();
        let payload = out.payload_mut().ok_or("not data")?;
        let amount = payload["amount"].as_f64().unwrap_or(0.0);
        payload["with_tax"] = json!(amount * 1.2);
        Ok(vec![out])
    }
}

#[derive(Default)]
struct Sum(f64, u64);

impl SinkHandler for Sum {
    fn consume(&mut self, event: &ChainEvent) -> Result<(), RecordError> {
        self.0 += event.payload().and_then(|p| p["with_tax"].as_f64()).unwrap_or(0.0);
        self.1 += 1;
        Ok(())
    }
}

async fn baseline(total: u64) -> f64 {
    let (tx1, mut rx1) = tokio::sync::mpsc::channel::<Value>(1024);
    let (tx2, mut rx2) = tokio::sync::mpsc::channel::<Value>(1024);
    let start = Instant::now();
    let source = tokio::spawn(async move {
        for i in 0..total {
            tx1.send(record(i)).await.unwrap();
        }
    });
    let map = tokio::spawn(async move {
        while let Some(mut value) = rx1.recv().await {
            let amount = value["amount"].as_f64().unwrap_or(0.0);
            value["with_tax"] = json!(amount * 1.2);
            tx2.send(value).await.unwrap();
        }
    });
    let sink = tokio::spawn(async move {
        let mut sum = 0.0;
        while let Some(value) = rx2.recv().await {
            sum += value["with_tax"].as_f64().unwrap_or(0.0);
        }
        sum
    });
    source.await.unwrap();
    map.await.unwrap();
    sink.await.unwrap();
    total as f64 / start.elapsed().as_secs_f64()
}

async fn flow(total: u64, journals: Journals) -> f64 {
    let start = Instant::now();
    let report = FlowBuilder::new("bench")
        .source("source", Generate { next: 0, total })
        .transform("map", AddTax)
        .sink("sink", Sum::default())
        .chain(["source", "map", "sink"])
        .journals(journals)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert!(report.is_success(), "{report}");
    total as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let total: u64 = std::env::var("OBZENFLOW_BENCH_RECORDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let dir = std::env::temp_dir().join("obzenflow-bench-flow");
    let base = runtime.block_on(baseline(total));
    println!("baseline mpsc        {base:>12.0} records/s");
    let memory = runtime.block_on(flow(total, Journals::memory()));
    println!("flow memory          {memory:>12.0} records/s  ({:.0}%)", 100.0 * memory / base);
    let disk = runtime.block_on(flow(total, Journals::disk(&dir)));
    println!("flow disk (group)    {disk:>12.0} records/s  ({:.0}%)", 100.0 * disk / base);
    let every = runtime.block_on(flow(total, Journals::disk(&dir).with_sync_policy(SyncPolicy::EveryBatch)));
    println!("flow disk (every)    {every:>12.0} records/s  ({:.0}%)", 100.0 * every / base);
    let _ = std::fs::remove_dir_all(&dir);
}
