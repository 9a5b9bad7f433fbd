//! Shared helpers of the journal tests: event strategies, sample records, and journal
//! constructors so one suite runs against every journal kind.
// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use obzenflow_core::{
    ChainEvent, EventContent, Journal, JournalId, JournalReader, Lane, LifecycleEvent, Record,
    StageId, WriterId,
};
use obzenflow_runtime::journal::{
    DiskJournal, DiskJournalConfig, MemoryJournal, SyncPolicy, SyncScheduler,
};
use serde_json::json;

#[path = "../../../obzenflow_core/tests/strategies/mod.rs"]
mod strategies;

#[allow(unused_imports)] // Only the property-test binaries use it.
pub(crate) use strategies::chain_event;

/// A small order record numbered `i`.
pub(crate) fn order(i: u64) -> ChainEvent {
    ChainEvent::data(
        "order",
        json!({"id": i, "customer": format!("c{}", i % 1000), "amount": i as f64 * 0.25}),
    )
}

/// `count` orders numbered from `first`.
pub(crate) fn orders(first: u64, count: u64) -> Vec<ChainEvent> {
    (first..first + count).map(order).collect()
}

/// The number of an order record.
pub(crate) fn order_number(event: &ChainEvent) -> u64 {
    event
        .json()
        .and_then(|payload| payload["id"].as_u64())
        .expect("an order record")
}

pub(crate) fn journal_id(name: &str) -> JournalId {
    JournalId::new(WriterId::Stage(StageId::new()), name, Lane::Data)
}

/// Reads everything committed from `reader`, `max` records per call.
pub(crate) fn read_available(reader: &mut dyn JournalReader, max: usize) -> Vec<Record> {
    let mut records = Vec::new();
    while reader.read(max, &mut records).expect("read") > 0 {}
    records
}

/// A disk configuration for tests: no fsyncs unless asked, small segments and cache.
// The `..` fills the fields the `fault-injection` feature adds, and is needless without it.
#[allow(clippy::needless_update)]
pub(crate) fn small_disk_config(segment_bytes: u64, cache_records: usize) -> DiskJournalConfig {
    DiskJournalConfig {
        segment_bytes,
        cache_records,
        sync: SyncPolicy::Never,
        ..DiskJournalConfig::default()
    }
}

/// Which journal implementation a generic test runs against.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Memory,
    Disk(DiskJournalConfig),
}

/// Every kind a generic test must pass for: memory, disk with a roomy cache, and disk with a
/// cache so small that readers fall back to the segment files.
pub(crate) fn kinds() -> Vec<Kind> {
    vec![
        Kind::Memory,
        Kind::Disk(small_disk_config(4096, 65_536)),
        Kind::Disk(small_disk_config(1024, 4)),
    ]
}

/// A journal and whatever must outlive it.
pub(crate) struct Fixture {
    pub(crate) journal: Arc<dyn Journal>,
    pub(crate) dir: Option<tempfile::TempDir>,
    pub(crate) scheduler: Option<SyncScheduler>,
}

impl Kind {
    pub(crate) fn make(&self) -> Fixture {
        match self {
            Kind::Memory => Fixture {
                journal: Arc::new(MemoryJournal::new(journal_id("memory"))),
                dir: None,
                scheduler: None,
            },
            Kind::Disk(config) => {
                let dir = tempfile::tempdir().expect("temp dir");
                let scheduler = SyncScheduler::start().expect("sync thread");
                let journal = open_disk(dir.path(), config, &scheduler);
                Fixture {
                    journal: Arc::new(journal),
                    dir: Some(dir),
                    scheduler: Some(scheduler),
                }
            }
        }
    }
}

pub(crate) fn open_disk(
    dir: &Path,
    config: &DiskJournalConfig,
    scheduler: &SyncScheduler,
) -> DiskJournal {
    DiskJournal::open(dir.join("journal"), journal_id("disk"), config, scheduler)
        .expect("open disk journal")
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime")
}

/// How a completed stage's data journal ends: its end-of-stream marker after `records` data
/// records, then its `completed` record counting `errored` records in its error journal.
pub(crate) fn stage_end(records: u64, errored: u64) -> Vec<ChainEvent> {
    vec![
        ChainEvent::end_of_stream(records),
        ChainEvent::new(EventContent::Lifecycle(LifecycleEvent::Completed {
            records_in: records,
            records_out: records,
            records_errored: errored,
        })),
    ]
}

/// How a system journal ends: its `completed` record.
pub(crate) fn system_end() -> ChainEvent {
    ChainEvent::new(EventContent::Lifecycle(LifecycleEvent::Completed {
        records_in: 0,
        records_out: 0,
        records_errored: 0,
    }))
}

/// Appends `events` one append (so one frame) each: for tests that damage a chosen record.
pub(crate) async fn append_one_by_one(
    journal: &dyn obzenflow_core::Journal,
    events: &[ChainEvent],
) {
    for event in events {
        journal.append(vec![event.clone()]).await.expect("append");
    }
}
