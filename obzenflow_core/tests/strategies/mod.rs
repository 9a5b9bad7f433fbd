//! Proptest strategies for `ChainEvent` and its parts, shared by the property tests of
//! `obzenflow_core` and the journal tests of `obzenflow_runtime` (which include this file by
//! path), so both crates test against the same generated events.
// Each including test binary uses a different part of this module.
#![allow(dead_code, unreachable_pub)]

use obzenflow_core::{
    Causality, ChainEvent, ControlEvent, CorrelationId, DeliveryReceipt, ErrorKind, EventContent,
    EventId, EventType, FlowContext, FlowId, LifecycleEvent, ProcessingInfo, ProcessingStatus,
    RunId, SourcePosition, StageId, SystemComponent, Timestamp, WriterId,
};
use proptest::prelude::*;
use serde_json::Value;
use std::sync::Arc;
use uuid::Uuid;

pub fn uuid() -> impl Strategy<Value = Uuid> {
    any::<u128>().prop_map(Uuid::from_u128)
}

pub fn json_value() -> impl Strategy<Value = Value> {
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

pub fn writer_id() -> impl Strategy<Value = WriterId> {
    prop_oneof![
        Just(WriterId::Unassigned),
        uuid().prop_map(|id| WriterId::Stage(StageId::from_uuid(id))),
        prop::sample::select(SystemComponent::ALL.to_vec()).prop_map(WriterId::System),
    ]
}

pub fn status() -> impl Strategy<Value = ProcessingStatus> {
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

pub fn content() -> impl Strategy<Value = EventContent> {
    prop_oneof![
        (".{0,20}", any::<u32>(), json_value()).prop_map(
            |(event_type, schema_version, payload)| EventContent::Data {
                event_type: EventType::from(event_type),
                schema_version,
                payload: payload.into(),
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

/// Where a record came from: one of a few files (so batches repeat names, as a file source's
/// records do), any line, or nowhere.
pub fn origin() -> impl Strategy<Value = Option<Arc<SourcePosition>>> {
    let file = prop_oneof![
        Just(String::from("orders.csv")),
        Just(String::from("in/clicks.jsonl")),
        ".{0,12}",
    ];
    proptest::option::of(
        (file, any::<u64>()).prop_map(|(file, line)| Arc::new(SourcePosition::new(file, line))),
    )
}

prop_compose! {
    pub fn chain_event()(
        id in uuid(),
        writer_id in writer_id(),
        content in content(),
        parent in proptest::option::of(uuid()),
        correlation in proptest::option::of(uuid()),
        status in status(),
        processing_time_ns in any::<u64>(),
        event_time in proptest::option::of(any::<u64>()),
        ids in (uuid(), uuid(), uuid()),
        origin in origin(),
    ) -> ChainEvent {
        ChainEvent {
            id: EventId::from_uuid(id),
            writer_id,
            content,
            causality: Causality {
                parent_id: parent.map(EventId::from_uuid),
                correlation_id: correlation
                    .map(|id| CorrelationId::from_origin(EventId::from_uuid(id))),
                joined_correlation_id: parent
                    .map(|id| CorrelationId::from_origin(EventId::from_uuid(id))),
            },
            processing_info: ProcessingInfo { status, processing_time_ns },
            event_time: event_time.map(Timestamp::from_micros),
            flow_context: FlowContext {
                flow_id: FlowId::from_uuid(ids.0),
                run_id: RunId::from_uuid(ids.1),
                stage_id: StageId::from_uuid(ids.2),
            },
            origin,
        }
    }
}
