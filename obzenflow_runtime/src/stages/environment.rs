//! What a sink handler may know about the run it is part of: the run's id and, for a replay,
//! which run it replays and where a replay's outputs go by default.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use obzenflow_core::{RunId, StageId};

/// The run a sink is part of, given to its handler once before `initialize`
/// ([`SinkHandler::prepare`](super::SinkHandler::prepare)).
///
/// A handler that writes files reads it to keep a replay
/// ([`FlowBuilder::replay_from`](crate::pipeline::FlowBuilder::replay_from)) from overwriting
/// the original run's outputs: [`replay_output_path`](Self::replay_output_path) names the
/// separate place the file sinks of `obzenflow_stages` write to during a replay.
///
/// ```
/// use std::path::Path;
/// use obzenflow_core::RunId;
/// use obzenflow_runtime::stages::{ReplayOf, RunEnvironment};
///
/// let live = RunEnvironment::new("out", RunId::new());
/// assert!(!live.is_replay());
/// assert_eq!(live.replay_output_path(Path::new("out/rows.jsonl")), None);
///
/// let original = ReplayOf { run_id: RunId::new(), run_dir: "runs/run_0".into() };
/// let replay = RunEnvironment::new("out", RunId::new()).replaying(original);
/// let moved = replay.replay_output_path(Path::new("out/rows.jsonl")).unwrap();
/// assert_eq!(moved, Path::new("out/replays").join(replay.run_id().to_string()).join("rows.jsonl"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunEnvironment {
    stage: String,
    run_id: RunId,
    replay_of: Option<ReplayOf>,
    stage_names: Arc<[(StageId, Arc<str>)]>,
}

/// The archived run a replay replays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayOf {
    /// The archived run's id.
    pub run_id: RunId,
    /// The archived run directory, absolute (as the replay's manifest records it in
    /// `replayed_from`).
    pub run_dir: PathBuf,
}

impl RunEnvironment {
    /// The environment of stage `stage` in run `run_id`, not a replay. The runtime builds it;
    /// this constructor is for testing handlers on their own.
    pub fn new(stage: impl Into<String>, run_id: RunId) -> Self {
        Self {
            stage: stage.into(),
            run_id,
            replay_of: None,
            stage_names: Arc::from([]),
        }
    }

    /// The same environment knowing the run's stages by id (the runtime gives every stage
    /// of the flow; a test gives the ones it needs).
    pub fn with_stage_names(mut self, stages: impl Into<Arc<[(StageId, Arc<str>)]>>) -> Self {
        self.stage_names = stages.into();
        self
    }

    /// The name of the run's stage `id`: the stage an errored record's status names
    /// ([`ProcessingStatus::Error`](obzenflow_core::ProcessingStatus::Error)), or the writer
    /// of a record. `None` for an id of no stage of this run.
    pub fn stage_name(&self, id: StageId) -> Option<&str> {
        self.stage_names
            .iter()
            .find(|(stage, _)| *stage == id)
            .map(|(_, name)| &**name)
    }

    /// The same environment in a replay of `original`.
    pub fn replaying(mut self, original: ReplayOf) -> Self {
        self.replay_of = Some(original);
        self
    }

    /// The stage's name.
    pub fn stage(&self) -> &str {
        &self.stage
    }

    /// The id of this run (for a replay, the replay's own id, which names its run directory).
    pub fn run_id(&self) -> RunId {
        self.run_id
    }

    /// Whether this run replays an archived run.
    pub fn is_replay(&self) -> bool {
        self.replay_of.is_some()
    }

    /// The archived run this run replays, if it is a replay.
    pub fn replay_of(&self) -> Option<&ReplayOf> {
        self.replay_of.as_ref()
    }

    /// During a replay, where an output the flow writes to `path` goes instead so the original
    /// run's output stays as it was: `<dir of path>/replays/<this run's id>/<file name of path>`
    /// (the run id is the name of the replay's run directory). `None` when not a replay.
    pub fn replay_output_path(&self, path: &Path) -> Option<PathBuf> {
        self.replay_of.as_ref()?;
        let dir = path.parent().unwrap_or_else(|| Path::new(""));
        let file_name = path.file_name().unwrap_or(path.as_os_str());
        Some(
            dir.join("replays")
                .join(self.run_id.to_string())
                .join(file_name),
        )
    }
}
