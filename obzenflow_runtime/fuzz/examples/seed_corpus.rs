//! Writes a few valid segments, one file each, to `corpus/segment_decoder/` (or the directory
//! given as the first argument): starting points from which the fuzzer mutates real frames.
//!
//! ```text
//! cargo run --manifest-path obzenflow_runtime/fuzz/Cargo.toml --example seed_corpus
//! ```

use std::path::PathBuf;

use obzenflow_core::{
    ChainEvent, ControlEvent, DeliveryReceipt, ErrorKind, EventContent, LifecycleEvent,
    ProcessingStatus, SourcePosition,
};
use obzenflow_runtime::journal::frame;
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus/segment_decoder")
        });
    std::fs::create_dir_all(&dir)?;
    for (name, events) in seeds() {
        let mut bytes = Vec::new();
        for event in &events {
            frame::encode_frame(event, &mut bytes)?;
        }
        std::fs::write(dir.join(name), bytes)?;
    }
    println!("seed corpus written to {}", dir.display());
    Ok(())
}

/// Named segments covering every content kind and the optional fields of a record.
fn seeds() -> Vec<(&'static str, Vec<ChainEvent>)> {
    let order = ChainEvent::data(
        "order",
        json!({"id": 1, "amount": 9.5, "tags": ["a", null]}),
    );
    let mut failed = ChainEvent::data("order", json!("not an object"));
    failed.processing_info.status = ProcessingStatus::Error {
        kind: ErrorKind::Validation,
        message: "amount missing".into(),
        stage_id: None,
    };
    let mut child = ChainEvent::data("order.taxed", json!({"id": 1, "with_tax": 11.4}));
    child.causality.parent_id = Some(order.id);
    let control = |content| ChainEvent::new(EventContent::Control(content));
    let placed = |line| {
        ChainEvent::data("order", json!({"id": line}))
            .with_origin(SourcePosition::new("orders.csv", line))
    };
    vec![
        ("data", vec![order.clone()]),
        ("data-origin", vec![placed(2), placed(9), placed(3)]),
        ("data-error-child", vec![order, failed, child]),
        (
            "control",
            vec![
                control(ControlEvent::Drain),
                control(ControlEvent::EndOfStream { records: 3 }),
            ],
        ),
        (
            "lifecycle-delivery",
            vec![
                ChainEvent::new(EventContent::Lifecycle(LifecycleEvent::Started)),
                ChainEvent::new(EventContent::Delivery(DeliveryReceipt {
                    destination: "stdout".into(),
                    records: 3,
                    bytes: 42,
                })),
                ChainEvent::new(EventContent::Lifecycle(LifecycleEvent::Completed {
                    records_in: 3,
                    records_out: 3,
                    records_errored: 0,
                })),
            ],
        ),
    ]
}
