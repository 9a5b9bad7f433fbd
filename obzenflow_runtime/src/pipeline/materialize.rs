//! Materialization: turn a validated [`Flow`] into journals, readers and running supervisors.
//!
//! Everything that can fail for reasons of the environment (creating the run directory,
//! opening journals) happens here, before any stage runs, so `Flow::start` returns those
//! failures as typed errors and a flow never half-starts.

use std::num::NonZeroU64;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use obzenflow_core::{FlowId, Journal, JournalReader, Lane, RunId, StageId, SystemComponent};
use tokio::sync::watch;

use super::builder::Flow;
use super::config::Journals;
use super::context::{PipelineContext, StageControl};
use super::error::FlowError;
use super::fsm::FlowState;
use super::handle::FlowCommand;
use super::remote_window::{RemoteOutput, RemoteWindow};
use super::shared::{RunShared, StageObserver};
use super::supervisor::PipelineSupervisor;
use crate::journal::{
    external_run_error, inspect, BackpressureObserver, JournalFactory, JournalStorage,
    RunDirectory, RunLock, RunManifest, RunStatus, RunStore, StageJournals, SyncPolicy,
};
use crate::metrics::{AggregatorSetup, EdgeTracker, FlowSnapshot, MetricsConfig, MetricsHandle};
use crate::stages::{Inputs, StageCounters, StageInfo, StageWiring};
use crate::supervised_base::{spawn_supervised, SupervisorConfig, SupervisorHandle};

/// The handle of a flow's pipeline supervisor.
pub(crate) type PipelineHandle = SupervisorHandle<FlowCommand, FlowState>;

/// What a worker (`Flow::start_worker`) brings to materialization: the run it joined, and
/// readers of the edges whose upstream runs in another process. The flow materialized is then
/// the worker's part of the flow (`worker::split`), its stages only.
pub(crate) struct WorkerRun {
    /// The run's manifest as the journal service records it: every stage of the flow.
    pub(crate) manifest: RunManifest,
    /// The store of the worker's journals.
    pub(crate) store: Arc<dyn RunStore>,
    /// Where and how durably, as the backend describes it.
    pub(crate) description: String,
    /// Per stage of the worker, in its order: the readers of its inputs from other processes,
    /// each with its place among the stage's inputs.
    pub(crate) remote_inputs: Vec<Vec<(usize, Box<dyn JournalReader>)>>,
    /// The edges from the worker's stages to stages of other processes, whose windows follow
    /// the remote readers' positions.
    pub(crate) remote_outputs: Vec<RemoteOutput>,
}

/// Creates the run's journals, spawns every stage and the pipeline supervisor; for a worker,
/// only the worker's stages, with the ids and run of the joined manifest.
pub(crate) fn materialize(
    flow: Flow,
    mut worker: Option<WorkerRun>,
) -> Result<(PipelineHandle, Arc<RunShared>), FlowError> {
    let teardown_deadline = flow.teardown_deadline;
    let (flow_id, run_id) = match &worker {
        Some(worker) => (worker.manifest.flow_id, worker.manifest.run_id),
        None => (FlowId::new(), RunId::new()),
    };
    // Every task spawned for this run (stages, aggregator, pipeline) logs inside this span.
    let run_span = tracing::info_span!("flow", flow = %flow.name, %run_id);
    let _in_run_span = run_span.enter();
    // A journal keeps at least its largest window in memory, for the windowed readers of
    // edges into other processes too, which follow a remote reader over the cache.
    let remote_windows = worker
        .iter()
        .flat_map(|worker| worker.remote_outputs.iter().map(|output| output.window));
    let largest_window = flow
        .windows
        .iter()
        .copied()
        .chain(remote_windows)
        .map(NonZeroU64::get)
        .max()
        .unwrap_or(0);
    let stage_ids: Vec<StageId> = match &worker {
        Some(worker) => flow
            .stages
            .iter()
            .map(|stage| recorded_stage_id(&worker.manifest, &stage.name))
            .collect(),
        None => flow.stages.iter().map(|_| StageId::new()).collect(),
    };
    // Made before the journals, which are opened with them: a stage's counters are told of
    // every wait of its journals' appends for a slow reader.
    let counters: Vec<Arc<StageCounters>> = flow
        .stages
        .iter()
        .map(|_| Arc::new(StageCounters::new(flow.metrics.enabled)))
        .collect();
    let stages = PreparedStages {
        ids: &stage_ids,
        counters: &counters,
    };
    let run = open_run(
        &flow,
        (flow_id, run_id),
        stages,
        largest_window,
        worker.as_ref(),
    )?;
    let OpenedRun {
        factory,
        run_lock,
        manifest,
        journals,
        system_journal,
        metrics_journal,
        earlier_incomplete_runs,
    } = run;
    let mut edges = EdgeTracker::new(flow.metrics.enabled);
    let mut inputs = open_inputs(&flow, &journals, &mut edges)?;
    // Registered before any stage runs, as the in-process readers are: the writer waits for
    // a remote reader that has not started yet.
    let remote_windows = match worker.as_mut() {
        Some(worker) => open_remote_windows(&journals, std::mem::take(&mut worker.remote_outputs))?,
        None => Vec::new(),
    };
    if let Some(worker) = worker.as_mut() {
        for (stage_inputs, remote) in inputs.iter_mut().zip(worker.remote_inputs.drain(..)) {
            // Inserted in the order of their places, each place is final when it is taken.
            for (place, reader) in remote {
                stage_inputs.insert(place.min(stage_inputs.len()), reader);
            }
        }
    }

    let mut upstreams = vec![Vec::new(); flow.stages.len()];
    for &(from, to) in &flow.graph.edges {
        upstreams[to].push(from);
    }
    let accepted = flow.accepted;
    let started = Instant::now();
    let mut observers = Vec::with_capacity(flow.stages.len());
    let mut controls = Vec::with_capacity(flow.stages.len());
    // A worker's stages may name any stage of the flow, those of other processes too.
    let stage_names: Arc<[(StageId, Arc<str>)]> = match &worker {
        Some(worker) => worker
            .manifest
            .stages
            .iter()
            .map(|stage| (stage.stage_id, Arc::from(stage.name.as_str())))
            .collect(),
        None => flow
            .stages
            .iter()
            .zip(&stage_ids)
            .map(|(spec, id)| (*id, Arc::from(spec.name.as_str())))
            .collect(),
    };
    for (index, spec) in flow.stages.into_iter().enumerate() {
        let info = Arc::new(StageInfo {
            name: Arc::from(spec.name.as_str()),
            stage_id: stage_ids[index],
            kind: spec.kind,
            flow_id,
            run_id,
            replay_of: flow.replay_of.clone(),
            stage_names: stage_names.clone(),
        });
        let counters = counters[index].clone();
        let readers = std::mem::take(&mut inputs[index]);
        let upstreams = readers
            .iter()
            .map(|reader| reader.journal_id().clone())
            .collect();
        let wiring = StageWiring {
            info: info.clone(),
            config: spec.config,
            upstreams,
            inputs: (!spec.kind.is_source()).then(|| Inputs::new(info.name.clone(), readers)),
            data: journals[index].data.clone(),
            error: journals[index].error.clone(),
            counters: counters.clone(),
        };
        let handle = (spec.factory)(wiring);
        observers.push(StageObserver {
            name: info.name.clone(),
            kind: spec.kind,
            counters,
            state: handle.state(),
            data: journals[index].data.clone(),
        });
        controls.push(StageControl {
            info,
            handle,
            data: journals[index].data.clone(),
            error: journals[index].error.clone(),
        });
    }

    for (writer, window) in remote_windows {
        window.spawn(observers[writer].state.clone());
    }

    let identity = (flow.name.clone(), flow_id, run_id, started);
    let (metrics, snapshots) =
        spawn_metrics(&flow.metrics, metrics_journal, identity, &observers, edges);
    let shared = Arc::new(RunShared {
        flow_name: flow.name.clone(),
        flow_id,
        run_id,
        started,
        run_dir: factory
            .run_dir()
            .map(|run_dir| run_dir.path().to_path_buf()),
        durability: factory.storage().to_string(),
        earlier_incomplete_runs,
        stages: observers,
        upstreams,
        accepted,
        snapshots,
        end_not_recorded: Mutex::new(None),
    });
    let supervisor = PipelineSupervisor {
        shared: shared.clone(),
        stage_states: shared
            .stages
            .iter()
            .map(|stage| stage.state.clone())
            .collect(),
        system_journal,
        factory,
        manifest: Mutex::new(manifest),
        _run_lock: run_lock,
        outcome: Mutex::new(None),
        metrics,
    };
    let handle = spawn_supervised(
        supervisor,
        FlowState::Created,
        PipelineContext::new(controls, teardown_deadline),
        SupervisorConfig::default(),
    );
    Ok((handle, shared))
}

/// The aggregator's handle and snapshots, or neither when metrics are disabled.
type SpawnedMetrics = (
    Option<MetricsHandle>,
    Option<watch::Receiver<Arc<FlowSnapshot>>>,
);

/// Spawns the flow's metrics aggregator, with its own system journal, when metrics are
/// enabled.
fn spawn_metrics(
    config: &MetricsConfig,
    system_journal: Option<Arc<dyn Journal>>,
    (flow_name, flow_id, run_id, started): (Arc<str>, FlowId, RunId, Instant),
    stages: &[StageObserver],
    edges: EdgeTracker,
) -> SpawnedMetrics {
    let Some(system_journal) = system_journal.filter(|_| config.enabled) else {
        return (None, None);
    };
    let (handle, snapshots) = MetricsHandle::spawn(AggregatorSetup {
        config: config.clone(),
        flow_name,
        flow_id,
        run_id,
        started,
        stages: stages.to_vec(),
        edges: edges.into_probes(),
        system_journal,
    });
    (Some(handle), Some(snapshots))
}

/// What a run opens before any task is spawned.
struct OpenedRun {
    factory: JournalFactory,
    /// Held for the whole run, for disk journals.
    run_lock: Option<RunLock>,
    /// The manifest as first written, for disk journals.
    manifest: Option<RunManifest>,
    journals: Vec<StageJournals>,
    system_journal: Arc<dyn Journal>,
    /// The aggregator's journal, when metrics are enabled.
    metrics_journal: Option<Arc<dyn Journal>>,
    earlier_incomplete_runs: Vec<PathBuf>,
}

/// The ids and counters of a flow's stages, in the flow's order, made before anything is
/// opened.
#[derive(Clone, Copy)]
struct PreparedStages<'a> {
    ids: &'a [StageId],
    counters: &'a [Arc<StageCounters>],
}

/// Creates the run directory (for disk journals) with its lock and first manifest, then opens
/// every journal. A journal that cannot be opened fails the start, and the manifest records
/// the run as failed: no run directory is left without one, or reading as running.
fn open_run(
    flow: &Flow,
    (flow_id, run_id): (FlowId, RunId),
    stages: PreparedStages<'_>,
    largest_window: u64,
    worker: Option<&WorkerRun>,
) -> Result<OpenedRun, FlowError> {
    let (factory, run_lock, manifest, earlier_incomplete_runs) = match worker {
        Some(worker) => worker_factory(worker, largest_window)?,
        None => journal_factory(flow, flow_id, run_id, stages.ids, largest_window)?,
    };
    // A worker's pipeline and metrics journals stay in its process: every process of the run
    // has its own, which cannot share one journal of the service.
    let system_factory = match worker {
        Some(_) => JournalFactory::memory(),
        None => factory.clone(),
    };
    let opened = open_journals(flow, (&factory, &system_factory), stages);
    let (journals, system_journal, metrics_journal) = match opened {
        Ok(opened) => opened,
        Err(error) => {
            // A run in a journal service records its failed start at its first store, which
            // never comes: it has no manifest there, as a run whose directory was not made.
            if let (Some(run_dir), Some(mut manifest)) = (factory.run_dir(), manifest) {
                manifest.finish_because(
                    RunStatus::Failed,
                    format!(
                        "the run could not start: {}",
                        obzenflow_core::ErrorChain::new(&error)
                    ),
                );
                if let Err(manifest_error) = run_dir.write_manifest(&manifest) {
                    tracing::error!(error = %obzenflow_core::ErrorChain::new(&manifest_error), "cannot record the failed start");
                }
            }
            return Err(error);
        }
    };
    Ok(OpenedRun {
        factory,
        run_lock,
        manifest,
        journals,
        system_journal,
        metrics_journal,
        earlier_incomplete_runs,
    })
}

/// Every stage's journals, the pipeline's and (with metrics) the aggregator's.
type RunJournals = (
    Vec<StageJournals>,
    Arc<dyn Journal>,
    Option<Arc<dyn Journal>>,
);

/// Opens every journal of the run; a stage's journals tell its counters of their waits.
fn open_journals(
    flow: &Flow,
    (factory, system_factory): (&JournalFactory, &JournalFactory),
    stages: PreparedStages<'_>,
) -> Result<RunJournals, FlowError> {
    let journals = flow
        .stages
        .iter()
        .zip(stages.ids.iter().zip(stages.counters))
        .map(|(stage, (stage_id, counters))| {
            let backpressure: Arc<dyn BackpressureObserver> = counters.clone();
            factory.observed_stage_journals(&stage.name, *stage_id, Some(backpressure))
        })
        .collect::<Result<Vec<StageJournals>, _>>()?;
    let (system_journal, _) = system_factory.system_journal(SystemComponent::Pipeline)?;
    let metrics_journal = if flow.metrics.enabled {
        Some(
            system_factory
                .system_journal(SystemComponent::MetricsAggregator)?
                .0,
        )
    } else {
        None
    };
    Ok((journals, system_journal, metrics_journal))
}

/// The run's journal factory and, for disk journals, the run directory's lock, its first
/// manifest and the flow's earlier incomplete runs (looked for before this run's directory
/// exists, so it is never among them).
type RunStorage = (
    JournalFactory,
    Option<RunLock>,
    Option<RunManifest>,
    Vec<PathBuf>,
);

fn journal_factory(
    flow: &Flow,
    flow_id: FlowId,
    run_id: RunId,
    stage_ids: &[StageId],
    largest_window: u64,
) -> Result<RunStorage, FlowError> {
    match &flow.journals {
        Journals::Memory {
            retain_records: None,
        } => Ok((JournalFactory::memory(), None, None, Vec::new())),
        Journals::Memory {
            retain_records: Some(retain),
        } => {
            let window = usize::try_from(largest_window).unwrap_or(usize::MAX);
            let storage = JournalStorage::BoundedMemory {
                retain_records: (*retain).max(window),
            };
            Ok((JournalFactory::new(storage)?, None, None, Vec::new()))
        }
        Journals::Disk { base_dir, config } => {
            let earlier_incomplete_runs = inspect::incomplete_runs(base_dir, &flow.name);
            let manifest = initial_manifest(flow, flow_id, run_id, stage_ids, config.sync);
            let (run_dir, run_lock) = RunDirectory::create(base_dir, &manifest)?;
            let factory = JournalFactory::new(JournalStorage::Disk {
                run_dir,
                config: config.clone(),
            })?;
            Ok((
                factory,
                Some(run_lock),
                Some(manifest),
                earlier_incomplete_runs,
            ))
        }
        Journals::Backend(backend) => {
            let description = backend.describe();
            let mut manifest =
                initial_manifest(flow, flow_id, run_id, stage_ids, SyncPolicy::default());
            manifest.sync_policy = description.clone();
            let run = backend
                .begin_run(&manifest)
                .map_err(|source| external_run_error("begin", &manifest, source))?;
            external_storage(run, description, largest_window, manifest)
        }
    }
}

/// The journal factory of a worker: its journals in the store of the run it joined, the
/// manifest as the service recorded it.
fn worker_factory(worker: &WorkerRun, largest_window: u64) -> Result<RunStorage, FlowError> {
    external_storage(
        worker.store.clone(),
        worker.description.clone(),
        largest_window,
        worker.manifest.clone(),
    )
}

/// Journals in a journal service's run store, keeping at least the largest window in memory.
fn external_storage(
    run: Arc<dyn RunStore>,
    description: String,
    largest_window: u64,
    manifest: RunManifest,
) -> Result<RunStorage, FlowError> {
    let window = usize::try_from(largest_window).unwrap_or(usize::MAX);
    let factory = JournalFactory::new(JournalStorage::External {
        run,
        description,
        retain_records: Journals::DEFAULT_MEMORY_RETENTION.max(window),
    })?;
    Ok((factory, None, Some(manifest), Vec::new()))
}

/// The id the manifest records for stage `name`; `start_worker` checked that it names every
/// stage of the flow, so the fallback is never taken.
pub(crate) fn recorded_stage_id(manifest: &RunManifest, name: &str) -> StageId {
    manifest
        .stages
        .iter()
        .find(|stage| stage.name == name)
        .map_or_else(StageId::new, |stage| stage.stage_id)
}

pub(crate) fn initial_manifest(
    flow: &Flow,
    flow_id: FlowId,
    run_id: RunId,
    stage_ids: &[StageId],
    sync: SyncPolicy,
) -> RunManifest {
    let mut manifest = RunManifest::new(flow.name.as_ref(), flow_id, run_id, sync);
    for (stage, stage_id) in flow.stages.iter().zip(stage_ids) {
        manifest.add_stage(&stage.name, *stage_id, stage.kind.as_str());
    }
    manifest.add_system_journal(SystemComponent::Pipeline.as_str());
    if flow.metrics.enabled {
        manifest.add_system_journal(SystemComponent::MetricsAggregator.as_str());
    }
    manifest.replayed_from = flow
        .replay_of
        .as_ref()
        .map(|original| original.run_dir.clone());
    manifest
}

/// Opens a windowed reader at the start of the journal each remote output reads, for its
/// follower; returns them with the writing stage's index.
fn open_remote_windows(
    journals: &[StageJournals],
    outputs: Vec<RemoteOutput>,
) -> Result<Vec<(usize, RemoteWindow)>, FlowError> {
    outputs
        .into_iter()
        .map(|output| {
            let journal = match output.lane {
                Lane::Error => &journals[output.writer].error,
                _ => &journals[output.writer].data,
            };
            let reader = journal.reader(0, Some(output.window))?;
            let window = RemoteWindow {
                reader,
                feed: output.feed,
                reading_stage: output.reading_stage,
            };
            Ok((output.writer, window))
        })
        .collect()
}

/// Opens one reader per edge, positioned at the start, with the edge's backpressure window;
/// returns them grouped by the reading stage.
fn open_inputs(
    flow: &Flow,
    journals: &[StageJournals],
    edges: &mut EdgeTracker,
) -> Result<Vec<Vec<Box<dyn JournalReader>>>, FlowError> {
    let mut inputs: Vec<Vec<Box<dyn JournalReader>>> =
        (0..flow.stages.len()).map(|_| Vec::new()).collect();
    for (edge, (from, to)) in flow.graph.edges.iter().enumerate() {
        let upstream = match flow.graph.lanes[edge] {
            Lane::Error => &journals[*from].error,
            _ => &journals[*from].data,
        };
        let reader = upstream.reader(0, Some(flow.windows[edge]))?;
        let reader = edges.track(reader, upstream, (*from, *to));
        inputs[*to].push(reader);
    }
    Ok(inputs)
}
