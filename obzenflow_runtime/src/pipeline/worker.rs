//! Workers: one flow's stages in several processes. Every process builds the whole flow (so the
//! typed wiring is checked everywhere) and [`Flow::start_worker`] spawns only the stages its
//! [`WorkerSpec`] names.
//!
//! The processes share a run in a journal service ([`Journals::Backend`]): the first worker to
//! join records the run's manifest (the stage ids every process then uses), each worker's
//! stages write their journals there, and an edge whose upstream runs in another process is
//! read through the service ([`RunStore::remote_reader`](crate::journal::RunStore)), a
//! [`JournalReader`] like any other: the stage inputs, the end-of-stream markers and the edge
//! contract are the ones of a flow in one process. A worker's end is recorded for its stages
//! only; the service tells the run's outcome from every stage's (completed once every stage of
//! the flow completed, failed once one failed).
//!
//! A worker that starts (again) starts its stages over: the service drops what an earlier
//! process of theirs left in their journals, and their inputs from other processes are read
//! from the first record.
//!
//! An edge from a stage of the worker to a stage of another process keeps its backpressure
//! window: the worker follows how far the remote reader has read
//! ([`RunStore::remote_position`](crate::journal::RunStore::remote_position)) with a windowed
//! reader of the writer's journal, registered before any stage runs, so the writer never runs
//! more than the edge's window ahead of the remote reader and waits for one that has not
//! started yet (`remote_window.rs` says when the window is released).

use std::num::NonZeroU64;
use std::sync::Arc;

use obzenflow_core::{FlowId, JournalId, JournalReader, Lane, RunId, StageId, WriterId};

use super::builder::Flow;
use super::config::Journals;
use super::error::FlowError;
use super::graph::Graph;
use super::handle::FlowHandle;
use super::materialize::{initial_manifest, recorded_stage_id, WorkerRun};
use super::remote_window::RemoteOutput;
use super::report::FlowReport;
use crate::journal::{JournalBackend, RunManifest, SyncPolicy};

/// Which part of a run a worker process runs: the run (the same id in every process of it)
/// and the names of the stages this process spawns.
///
/// ```
/// use obzenflow_core::RunId;
/// use obzenflow_runtime::pipeline::WorkerSpec;
///
/// let spec = WorkerSpec::new(RunId::new(), ["parse", "enrich"]);
/// assert_eq!(spec.stages, ["parse", "enrich"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[must_use = "a worker spec does nothing until given to `Flow::start_worker`"]
pub struct WorkerSpec {
    /// The run every worker of it joins.
    pub run_id: RunId,
    /// The stages this worker runs, by name.
    pub stages: Vec<String>,
}

impl WorkerSpec {
    /// The worker of run `run_id` that runs `stages`.
    pub fn new(run_id: RunId, stages: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            run_id,
            stages: stages.into_iter().map(Into::into).collect(),
        }
    }
}

/// An edge from a stage of the worker to a stage of another process.
struct OutgoingEdge {
    /// The writing stage, by its index in the worker's part of the flow, and its name.
    writer: usize,
    writer_name: String,
    /// The reading stage's name, the lane it reads and the edge's window.
    reading_stage: String,
    lane: Lane,
    window: NonZeroU64,
}

/// An edge into a stage of the worker from a stage of another process.
struct RemoteEdge {
    /// The reading stage, by its index in the worker's part of the flow.
    reader: usize,
    /// Its place among the reading stage's inputs.
    place: usize,
    /// The upstream stage's name and the lane read.
    upstream: String,
    lane: Lane,
}

impl Flow {
    /// Starts this process's part of a run split over several processes: joins run
    /// `spec.run_id` in the flow's journal service (which must be a
    /// [`Journals::Backend`] that runs workers, such as JetStream), opens readers of the edges
    /// whose upstream runs elsewhere, and spawns the stages `spec.stages` names. The handle's
    /// report covers those stages; the service records their outcome for the run.
    ///
    /// ```no_run
    /// use obzenflow_core::RunId;
    /// use obzenflow_runtime::pipeline::{Flow, WorkerSpec};
    ///
    /// # async fn worker(flow: Flow, run_id: RunId) -> Result<(), obzenflow_runtime::pipeline::FlowError> {
    /// let report = flow.start_worker(WorkerSpec::new(run_id, ["sink"])).await?.wait().await?;
    /// println!("{report}");
    /// # Ok(()) }
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: a dropped start may have recorded the run's manifest and opened
    /// readers; the next start of the same worker starts its stages over.
    pub async fn start_worker(self, spec: WorkerSpec) -> Result<FlowHandle, FlowError> {
        let invalid = |reason: String| FlowError::InvalidWorker {
            flow: self.name.to_string(),
            reason,
        };
        let Journals::Backend(backend) = &self.journals else {
            return Err(invalid(
                "a worker needs journals in a journal service (`Journals::backend`)".to_owned(),
            ));
        };
        let backend: Arc<dyn JournalBackend> = backend.clone();
        if let Some(problem) = spec_problem(&self, &spec) {
            return Err(invalid(problem));
        }
        let description = backend.describe();
        let stage_ids: Vec<StageId> = self.stages.iter().map(|_| StageId::new()).collect();
        let mut proposal = initial_manifest(
            &self,
            FlowId::new(),
            spec.run_id,
            &stage_ids,
            SyncPolicy::default(),
        );
        // Each process keeps its pipeline and metrics journals to itself.
        proposal.system_journals.clear();
        proposal.sync_policy = description.clone();
        let joined = backend
            .join_run(&proposal, &spec.stages)
            .await
            .map_err(|source| FlowError::WorkerJoin {
                run_id: spec.run_id,
                source,
            })?;
        if let Some(problem) = manifest_problem(&proposal, &joined.manifest) {
            return Err(invalid(problem));
        }
        let (part, remote_edges, outgoing) = split(self, &spec.stages);
        let mut remote_inputs: Vec<Vec<(usize, Box<dyn JournalReader>)>> =
            (0..part.stages.len()).map(|_| Vec::new()).collect();
        for edge in remote_edges {
            let journal = recorded_journal(&joined.manifest, &edge.upstream, edge.lane);
            let reading_stage = part.stages[edge.reader].name.clone();
            let reader = joined
                .store
                .remote_reader(&journal, &reading_stage)
                .await
                .map_err(|source| FlowError::WorkerInput {
                    stage: reading_stage,
                    journal: journal.clone(),
                    source,
                })?;
            remote_inputs[edge.reader].push((edge.place, reader));
        }
        let mut remote_outputs = Vec::with_capacity(outgoing.len());
        for edge in outgoing {
            let journal = recorded_journal(&joined.manifest, &edge.writer_name, edge.lane);
            let feed = joined
                .store
                .remote_position(&journal, &edge.reading_stage)
                .await
                .map_err(|source| FlowError::WorkerOutput {
                    stage: edge.reading_stage.clone(),
                    journal: journal.clone(),
                    source,
                })?;
            match feed {
                Some(feed) => remote_outputs.push(RemoteOutput {
                    writer: edge.writer,
                    lane: edge.lane,
                    window: edge.window,
                    reading_stage: edge.reading_stage,
                    feed,
                }),
                None => tracing::warn!(
                    journal = %journal,
                    reading_stage = %edge.reading_stage,
                    "the journal service cannot tell this reader's positions; the edge holds the writer back by nothing"
                ),
            }
        }
        FlowHandle::start_worker(
            part,
            WorkerRun {
                manifest: joined.manifest,
                store: joined.store,
                description,
                remote_inputs,
                remote_outputs,
            },
        )
    }

    /// [`Flow::start_worker`], then waits for the worker's stages to finish.
    ///
    /// # Cancel safety
    ///
    /// Dropping this future once the worker started leaves its stages running in the
    /// background, as [`Flow::run`] does.
    pub async fn run_worker(self, spec: WorkerSpec) -> Result<FlowReport, FlowError> {
        self.start_worker(spec).await?.wait().await
    }
}

/// What makes `spec` unfit to run a part of `flow`, if anything.
fn spec_problem(flow: &Flow, spec: &WorkerSpec) -> Option<String> {
    if spec.stages.is_empty() {
        return Some("the worker names no stage to run".to_owned());
    }
    if flow.replay_of.is_some() {
        return Some("a replay runs in one process, not in workers".to_owned());
    }
    for (index, name) in spec.stages.iter().enumerate() {
        if !flow.stages.iter().any(|stage| stage.name == *name) {
            return Some(format!("the flow has no stage `{name}`"));
        }
        if spec.stages[..index].contains(name) {
            return Some(format!("stage `{name}` is named twice"));
        }
    }
    None
}

/// What makes the recorded manifest another flow's than the one `proposal` describes.
fn manifest_problem(proposal: &RunManifest, recorded: &RunManifest) -> Option<String> {
    if recorded.flow_name != proposal.flow_name {
        return Some(format!(
            "run {} is a run of flow `{}`",
            recorded.run_id, recorded.flow_name
        ));
    }
    let shape = |manifest: &RunManifest| -> Vec<(String, String)> {
        manifest
            .stages
            .iter()
            .map(|stage| (stage.name.clone(), stage.kind.clone()))
            .collect()
    };
    (shape(recorded) != shape(proposal)).then(|| {
        format!(
            "run {} was begun by a flow `{}` of other stages",
            recorded.run_id, recorded.flow_name
        )
    })
}

/// The id of the `lane` journal of stage `name` in the recorded manifest.
fn recorded_journal(manifest: &RunManifest, name: &str, lane: Lane) -> JournalId {
    let stage_id = recorded_stage_id(manifest, name);
    JournalId::new(WriterId::Stage(stage_id), name, lane)
}

/// The worker's part of `flow`: the stages `local` names, in the flow's order, the edges
/// between them, the edges into them from the other stages and the edges from them to the
/// other stages.
fn split(mut flow: Flow, local: &[String]) -> (Flow, Vec<RemoteEdge>, Vec<OutgoingEdge>) {
    let is_local: Vec<bool> = flow
        .stages
        .iter()
        .map(|stage| local.contains(&stage.name))
        .collect();
    let mut new_index = vec![None; is_local.len()];
    let mut next = 0;
    for (index, local) in is_local.iter().enumerate() {
        if *local {
            new_index[index] = Some(next);
            next += 1;
        }
    }
    let mut edges = Vec::new();
    let mut lanes = Vec::new();
    let mut windows = Vec::new();
    let mut remote = Vec::new();
    let mut outgoing = Vec::new();
    let mut places = vec![0_usize; is_local.len()];
    for (edge, &(from, to)) in flow.graph.edges.iter().enumerate() {
        let Some(reader) = new_index[to] else {
            if let Some(writer) = new_index[from] {
                outgoing.push(OutgoingEdge {
                    writer,
                    writer_name: flow.stages[from].name.clone(),
                    reading_stage: flow.stages[to].name.clone(),
                    lane: flow.graph.lanes[edge],
                    window: flow.windows[edge],
                });
            }
            continue;
        };
        let place = places[to];
        places[to] += 1;
        match new_index[from] {
            Some(upstream) => {
                edges.push((upstream, reader));
                lanes.push(flow.graph.lanes[edge]);
                windows.push(flow.windows[edge]);
            }
            None => remote.push(RemoteEdge {
                reader,
                place,
                upstream: flow.stages[from].name.clone(),
                lane: flow.graph.lanes[edge],
            }),
        }
    }
    let stages = std::mem::take(&mut flow.stages)
        .into_iter()
        .zip(&is_local)
        .filter_map(|(stage, local)| local.then_some(stage))
        .collect();
    let graph_stages = flow
        .graph
        .stages
        .iter()
        .zip(&is_local)
        .filter(|(_, local)| **local)
        .map(|(stage, _)| stage.clone())
        .collect();
    flow.stages = stages;
    flow.graph = Graph {
        stages: graph_stages,
        edges,
        lanes,
    };
    flow.windows = windows;
    // Findings declared for stages of other processes are theirs to report.
    flow.accepted.retain(|(name, _)| local.contains(name));
    (flow, remote, outgoing)
}
