//! Stage handles and inputs: what [`FlowBuilder`](super::FlowBuilder)'s `add_*` methods return
//! and take, so a flow is wired top to bottom without repeating stage names.

use std::sync::Arc;

use obzenflow_core::Lane;

use crate::stages::EdgeConfig;

/// A stage added to a flow by one of [`FlowBuilder`](super::FlowBuilder)'s `add_*` methods:
/// the stages added after it take it as their input.
///
/// A handle names its stage, so it also works wherever the builder takes a stage name
/// ([`configure`](super::FlowBuilder::configure), [`accept`](super::FlowBuilder::accept),
/// [`FlowReport::stage`](super::FlowReport::stage)): `&handle` converts into the name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StageRef {
    name: Arc<str>,
}

impl StageRef {
    pub(crate) fn new(name: &str) -> Self {
        Self {
            name: Arc::from(name),
        }
    }

    /// The stage's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The stage's error lane as an input of another stage: the records this stage rejected
    /// (and the errored records it passed on), each in error status with its kind, message,
    /// the stage that raised it and, where the source knew it, the source position.
    ///
    /// The stage reading it gets those records as they are, error status and all; a sink
    /// writes them (a dead-letter file), a transform repairs them and sends its output on
    /// (redrive). An error lane is not its stage's output: a transform or source still needs
    /// a data edge.
    pub fn errors(&self) -> Upstream {
        Upstream {
            stage: self.name.clone(),
            lane: Lane::Error,
            window: EdgeConfig::DEFAULT_WINDOW.get(),
        }
    }

    /// The stage's records, read with a backpressure window of `window` records instead of
    /// the default: this stage never runs more than `window` records ahead of the reader.
    pub fn with_window(&self, window: u64) -> Upstream {
        Upstream::from(self).with_window(window)
    }
}

impl From<&StageRef> for String {
    fn from(stage: &StageRef) -> Self {
        stage.name.to_string()
    }
}

impl AsRef<str> for StageRef {
    fn as_ref(&self) -> &str {
        &self.name
    }
}

impl std::fmt::Display for StageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

/// One input of a stage: another stage's records ([`&StageRef`](StageRef)) or its error lane
/// ([`StageRef::errors`]), with the edge's backpressure window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    stage: Arc<str>,
    lane: Lane,
    window: u64,
}

impl Upstream {
    /// The same input read with a backpressure window of `window` records.
    ///
    /// A window of 0 would let nothing through;
    /// [`build`](super::FlowBuilder::build) refuses it naming the edge.
    pub fn with_window(mut self, window: u64) -> Self {
        self.window = window;
        self
    }

    /// The upstream stage's name.
    pub fn stage(&self) -> &str {
        &self.stage
    }

    /// Whether this input is the upstream's error lane.
    pub fn is_error_lane(&self) -> bool {
        self.lane == Lane::Error
    }

    pub(crate) fn lane(&self) -> Lane {
        self.lane
    }

    pub(crate) fn window(&self) -> u64 {
        self.window
    }
}

impl From<&StageRef> for Upstream {
    fn from(stage: &StageRef) -> Self {
        Self {
            stage: stage.name.clone(),
            lane: Lane::Data,
            window: EdgeConfig::DEFAULT_WINDOW.get(),
        }
    }
}

/// The inputs of a stage, as `add_*` takes them: one upstream (`&stage`, `stage.errors()`)
/// or several (`[&a, &b]`, `[a.errors(), b.errors()]`, a `Vec`), read together, each with
/// its own cursor and end-of-stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstreams(pub(crate) Vec<Upstream>);

impl From<&StageRef> for Upstreams {
    fn from(stage: &StageRef) -> Self {
        Self(vec![stage.into()])
    }
}

impl From<Upstream> for Upstreams {
    fn from(upstream: Upstream) -> Self {
        Self(vec![upstream])
    }
}

impl<T: Into<Upstream>, const N: usize> From<[T; N]> for Upstreams {
    fn from(upstreams: [T; N]) -> Self {
        Self(upstreams.into_iter().map(Into::into).collect())
    }
}

impl<T: Into<Upstream>> From<Vec<T>> for Upstreams {
    fn from(upstreams: Vec<T>) -> Self {
        Self(upstreams.into_iter().map(Into::into).collect())
    }
}
