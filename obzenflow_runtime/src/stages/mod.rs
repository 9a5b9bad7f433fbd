//! Stage supervisors: sources, transforms, stateful stages and sinks, each a supervised
//! lifecycle machine that reads its upstream journals and appends to its own.
//!
//! Every kind shares one lifecycle (its states are [`StageState`]) and one supervisor; what
//! differs is the kind's strategy for `Running` and `Draining` (source, transform, sink). User
//! code plugs in through the handler traits: [`SourceHandler`], [`TransformHandler`],
//! [`SinkHandler`] and their async forms, and [`MultiInputHandler`] for a stage that reads
//! several inputs and must know which one each record came from (joins).

mod config;
mod context;
mod counters;
mod environment;
mod error;
pub(crate) mod error_counts;
mod handle;
pub(crate) mod histogram;
mod inputs;
mod lifecycle;
mod logic;
mod multi_input;
mod outputs;
mod record_type;
mod sink;
mod source;
mod state_size;
mod supervisor;
mod transform;

pub use config::{EdgeConfig, ErrorBudget, StageConfig};
pub(crate) use context::StageInfo;
pub use context::StageKind;
pub use counters::{CounterSnapshot, StageCounters};
pub use environment::{ReplayOf, RunEnvironment};
pub use error::{FailureKind, HandlerFailure, RecordError, StageError, StageFailure};
pub use handle::{StageCommand, StageHandle};
pub use lifecycle::StageState;
pub use multi_input::{InputRole, InputSpec, MultiInputHandler, ReadPolicy, RunOutputs};
pub use record_type::RecordType;
pub use sink::{AsyncSinkHandler, SinkHandler};
pub use source::{AsyncSourceHandler, SourceHandler, SourcePoll};
pub use state_size::{StateGauge, StateSize};
pub use transform::{AsyncTransformHandler, RecordResult, StatefulHandler, TransformHandler};

pub(crate) use inputs::Inputs;
pub(crate) use multi_input::SyncMultiInput;
pub(crate) use sink::{SinkLogic, SyncSink};
pub(crate) use source::{SourceLogic, SyncSource};
pub(crate) use supervisor::{spawn_stage, StageWiring};
pub(crate) use transform::{
    AsyncTransform, Stateful, SyncTransform, TimedProcessor, TransformLogic,
};
