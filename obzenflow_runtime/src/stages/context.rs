//! What a stage knows about itself, and the mutable context its lifecycle actions receive.

use std::fmt;
use std::sync::Arc;

use obzenflow_core::{FlowContext, FlowId, RunId, StageId, WriterId};

use super::environment::{ReplayOf, RunEnvironment};
use super::outputs::Outputs;

/// The kind of a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StageKind {
    /// Produces records from outside the flow.
    Source,
    /// Turns each record into zero or more records.
    Transform,
    /// Folds records into state and emits results.
    Stateful,
    /// Reads several inputs, knowing which each record came from (a `MultiInputHandler`).
    Join,
    /// Delivers records out of the flow.
    Sink,
}

impl StageKind {
    /// The stable lowercase name (`source`, `transform`, `stateful`, `join`, `sink`).
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Source => "source",
            Self::Transform => "transform",
            Self::Stateful => "stateful",
            Self::Join => "join",
            Self::Sink => "sink",
        }
    }

    /// Whether this kind produces records rather than reading them.
    pub const fn is_source(&self) -> bool {
        matches!(self, Self::Source)
    }
}

impl fmt::Display for StageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The identity of one stage within one run.
#[derive(Debug, Clone)]
pub(crate) struct StageInfo {
    /// The stage's name, unique within the flow.
    pub name: Arc<str>,
    /// The stage's id.
    pub stage_id: StageId,
    /// The stage's kind.
    pub kind: StageKind,
    /// The flow's id.
    pub flow_id: FlowId,
    /// The run's id.
    pub run_id: RunId,
    /// The archived run this run replays, if it is a replay.
    pub replay_of: Option<ReplayOf>,
    /// Every stage of the run, by id, to name the stage an errored record names by id.
    pub stage_names: Arc<[(StageId, Arc<str>)]>,
}

impl StageInfo {
    /// The writer id the stage stamps on what it appends.
    pub(crate) fn writer_id(&self) -> WriterId {
        WriterId::Stage(self.stage_id)
    }

    /// What the stage's handler may know about the run.
    pub(crate) fn environment(&self) -> RunEnvironment {
        let environment = RunEnvironment::new(self.name.as_ref(), self.run_id)
            .with_stage_names(self.stage_names.clone());
        match &self.replay_of {
            Some(original) => environment.replaying(original.clone()),
            None => environment,
        }
    }

    /// The flow context the stage stamps on what it appends.
    pub(crate) fn flow_context(&self) -> FlowContext {
        FlowContext {
            flow_id: self.flow_id,
            run_id: self.run_id,
            stage_id: self.stage_id,
        }
    }
}

/// The mutable context of a stage's lifecycle machine.
#[derive(Debug)]
pub(crate) struct StageContext {
    /// Who the stage is.
    pub info: Arc<StageInfo>,
    pub(crate) outputs: Outputs,
}
