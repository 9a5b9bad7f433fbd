//! Shared helpers of the journal tests: event strategies, sample records, and journal
//! constructors so one suite runs against every journal kind.
// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use obzenflow_core::{
    Causality, ChainEvent, ControlEvent, CorrelationId, DeliveryReceipt, ErrorKind, EventContent,
    EventId, EventType, FlowContext, FlowId, Journal, JournalId, JournalReader, Lane,
    LifecycleEvent, ProcessingInfo, ProcessingStatus, RunId, StageId, SystemComponent, Timestamp,
    WriterId,
};
use obzenflow_runtime::journal::{
    DiskJournal, DiskJournalConfig, MemoryJournal, SyncPolicy, SyncScheduler,
};
use proptest::prelude::*;
use serde_json::{json, Value};
use uuid::Uuid;

pub(crate) fn uuid() -> impl Strategy<Value = Uuid> {
    any::<u128>().prop_map(Uuid::from_u128)
}

pub(crate) fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |x| x.is_finite())
            .prop_map(Value::from),
        ".*".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".*", inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

pub(crate) fn writer_id() -> impl Strategy<Value = WriterId> {
    prop_oneof![
        Just(WriterId::Unassigned),
        uuid().prop_map(|id| WriterId::Stage(StageId::from_uuid(id))),
        prop::sample::select(SystemComponent::ALL.to_vec()).prop_map(WriterId::System),
    ]
}

pub(crate) fn status() -> impl Strategy<Value = ProcessingStatus> {
    prop_oneof![
        Just(ProcessingStatus::Success),
        proptest::option::of(".*").prop_map(|reason| ProcessingStatus::Filtered { reason }),
        (
            prop::sample::select(ErrorKind::ALL.to_vec()),
            ".*",
            proptest::option::of(uuid())
        )
            .prop_map(|(kind, message, stage)| ProcessingStatus::Error {
                kind,
                message,
                stage_id: stage.map(StageId::from_uuid),
            }),
        any::<u32>().prop_map(|attempt| ProcessingStatus::Retried { attempt }),
    ]
}

pub(crate) fn content() -> impl Strategy<Value = EventContent> {
    prop_oneof![
        (".{0,20}", any::<u32>(), json_value()).prop_map(
            |(event_type, schema_version, payload)| EventContent::Data {
                event_type: EventType::from(event_type),
                schema_version,
                payload,
            }
        ),
        any::<u64>()
            .prop_map(|records| EventContent::Control(ControlEvent::EndOfStream { records })),
        Just(EventContent::Control(ControlEvent::Drain)),
        any::<u64>().prop_map(|micros| EventContent::Control(ControlEvent::Watermark {
            event_time: Timestamp::from_micros(micros)
        })),
        (".*", any::<u64>(), any::<u64>()).prop_map(|(destination, records, bytes)| {
            EventContent::Delivery(DeliveryReceipt {
                destination,
                records,
                bytes,
            })
        }),
        Just(EventContent::Lifecycle(LifecycleEvent::Started)),
        ".*".prop_map(|reason| EventContent::Lifecycle(LifecycleEvent::Failed { reason })),
        ".*".prop_map(|reason| EventContent::Lifecycle(LifecycleEvent::Cancelled { reason })),
        (any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(a, b, c)| {
            EventContent::Lifecycle(LifecycleEvent::Completed {
                records_in: a,
                records_out: b,
                records_errored: c,
            })
        }),
    ]
}

prop_compose! {
    pub(crate) fn chain_event()(
        id in uuid(),
        writer_id in writer_id(),
        content in content(),
        parent in proptest::option::of(uuid()),
        correlation in proptest::option::of(uuid()),
        status in status(),
        processing_time_ns in any::<u64>(),
        event_time in proptest::option::of(any::<u64>()),
        ids in (uuid(), uuid(), uuid()),
    ) -> ChainEvent {
        ChainEvent {
            id: EventId::from_uuid(id),
            writer_id,
            content,
            causality: Causality {
                parent_id: parent.map(EventId::from_uuid),
                correlation_id: correlation
                    .map(|id| CorrelationId::from_origin(EventId::from_uuid(id))),
            },
            processing_info: ProcessingInfo { status, processing_time_ns },
            event_time: event_time.map(Timestamp::from_micros),
            flow_context: FlowContext {
                flow_id: FlowId::from_uuid(ids.0),
                run_id: RunId::from_uuid(ids.1),
                stage_id: StageId::from_uuid(ids.2),
            },
        }
    }
}

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
        .payload()
        .and_then(|payload| payload["id"].as_u64())
        .expect("an order record")
}

pub(crate) fn journal_id(name: &str) -> JournalId {
    JournalId::new(WriterId::Stage(StageId::new()), name, Lane::Data)
}

/// Reads everything committed from `reader`, `max` records per call.
pub(crate) fn read_available(reader: &mut dyn JournalReader, max: usize) -> Vec<Arc<ChainEvent>> {
    let mut records = Vec::new();
    while reader.read(max, &mut records).expect("read") > 0 {}
    records
}

/// A disk configuration for tests: no fsyncs unless asked, small segments and cache.
pub(crate) fn small_disk_config(segment_bytes: u64, cache_records: usize) -> DiskJournalConfig {
    DiskJournalConfig {
        segment_bytes,
        cache_records,
        sync: SyncPolicy::Never,
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
