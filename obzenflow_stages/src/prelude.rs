//! One `use` line for a typical flow: `use obzenflow_stages::prelude::*;`.
//!
//! It brings the flow builder and what a run returns, the handler traits for stages of your
//! own, the ready-made sources, transforms, aggregations and sinks of this crate, and the
//! record types they pass. Names that only a few flows need (journal configuration, replay,
//! metrics) stay in their modules.
//!
//! ```
//! use obzenflow_stages::prelude::*;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Clone, Debug, Serialize, Deserialize)]
//! struct Order {
//!     id: u64,
//!     cents: u64,
//! }
//!
//! impl TypedPayload for Order {
//!     const EVENT_TYPE: &'static str = "order";
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let orders = (1..=3).map(|id| Order { id, cents: id * 100 });
//! let sink = CollectSink::new();
//! let mut flow = FlowBuilder::new("orders");
//! let orders = flow.add_source("orders", IterSource::from_payloads(orders));
//! let large = flow.add_transform("large", typed::filter(|order: &Order| order.cents >= 200), &orders);
//! flow.add_sink("collect", sink.clone(), &large);
//! let flow = flow.journals(Journals::memory()).build()?;
//! let report = tokio::runtime::Runtime::new()?.block_on(flow.run())?;
//! assert!(report.is_success(), "{report}");
//! assert_eq!(sink.events().len(), 2);
//! # Ok(())
//! # }
//! ```

pub use obzenflow_core::{ChainEvent, ErrorChain, ErrorKind, Record, TypedPayload};
pub use obzenflow_runtime::pipeline::{
    Flow, FlowBuilder, FlowError, FlowFailure, FlowHandle, FlowReport, FlowState, GraphError,
    Journals, StageRef, StageReport, Upstream,
};
pub use obzenflow_runtime::stages::{
    AsyncSinkHandler, AsyncSourceHandler, AsyncTransformHandler, ErrorBudget, FailureKind,
    HandlerFailure, RecordError, RecordResult, SinkHandler, SourceHandler, SourcePoll, StageConfig,
    StageState, StatefulHandler, TransformHandler,
};

pub use crate::joins::{IntervalJoin, JoinStrategy, LookupJoin, LookupMode};
pub use crate::sinks::{
    CollectSink, ConsoleSink, CsvSink, DeadLetter, DeadLetterSink, JsonLinesSink, NullSink,
};
pub use crate::sources::{CsvSource, CsvSourceConfig, IterSource, JsonLinesSource};
pub use crate::stateful::{Aggregate, Window};
pub use crate::transforms::typed;
pub use crate::transforms::{filter, flat_map, map, try_map};
