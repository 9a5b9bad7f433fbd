//! `FlowBuilder`: name stages, wire edges, validate, then start.

mod multi_input;

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use obzenflow_core::Lane;

use super::config::Journals;
use super::error::FlowError;
use super::graph::{Graph, GraphError, NamedEdge};
use super::handle::FlowHandle;
use super::outcome::FindingKind;
use super::report::FlowReport;
use super::wiring::{StageRef, Upstreams};
use crate::metrics::MetricsConfig;
use crate::replay::ReplayRequest;
use crate::stages::{
    spawn_stage, AsyncSinkHandler, AsyncSourceHandler, AsyncTransformHandler, EdgeConfig,
    ErrorBudget, RecordType, ReplayOf, SinkHandler, SourceHandler, StageConfig, StageHandle,
    StageKind, StageWiring, StatefulHandler, TransformHandler,
};
use crate::stages::{
    AsyncTransform, SinkLogic, SourceLogic, Stateful, SyncSink, SyncSource, SyncTransform,
    TransformLogic,
};

/// Builds the stage supervisor of one stage once its journals exist.
pub(crate) type StageFactory = Box<dyn FnOnce(StageWiring) -> StageHandle + Send>;

/// One declared stage.
pub(crate) struct StageSpec {
    pub(crate) name: String,
    pub(crate) kind: StageKind,
    pub(crate) config: StageConfig,
    pub(crate) factory: StageFactory,
    /// What the stage's handler says it decodes and emits.
    pub(crate) types: StageTypes,
    /// The inputs of a multi-input stage, in order; `None` for any number of one kind.
    pub(crate) inputs: Option<multi_input::DeclaredInputs>,
}

/// What a stage's handler says it decodes and emits; `None` for any record.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StageTypes {
    pub(crate) input: Option<RecordType>,
    pub(crate) output: Option<RecordType>,
}

/// One declared edge.
#[derive(Debug, Clone)]
pub(crate) struct EdgeSpec {
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) window: u64,
    /// The lane of `from` the edge reads: data, or the error lane.
    pub(crate) lane: Lane,
}

/// Declares a flow: its stages, the edges between them, and where journals live.
///
/// ```no_run
/// use obzenflow_core::ChainEvent;
/// use obzenflow_runtime::pipeline::{FlowBuilder, Journals};
/// use obzenflow_runtime::stages::{HandlerFailure, RecordError, SinkHandler, SourceHandler, SourcePoll, TransformHandler};
///
/// struct Numbers(u64);
/// impl SourceHandler for Numbers {
///     fn next_batch(&mut self, _max: usize) -> Result<SourcePoll, HandlerFailure> {
///         if self.0 == 0 { return Ok(SourcePoll::Done); }
///         self.0 -= 1;
///         Ok(SourcePoll::Records(vec![ChainEvent::data("n", serde_json::json!(self.0))]))
///     }
/// }
/// struct Double;
/// impl TransformHandler for Double {
///     fn process(&mut self, event: &ChainEvent) -> Result<Vec<ChainEvent>, RecordError> {
///         let n = event.json().and_then(|p| p.as_u64()).ok_or("not a number")?;
///         Ok(vec![ChainEvent::data("n", serde_json::json!(n * 2))])
///     }
/// }
/// struct Print;
/// impl SinkHandler for Print {
///     fn consume(&mut self, event: &ChainEvent) -> Result<(), RecordError> {
///         println!("{:?}", event.payload());
///         Ok(())
///     }
/// }
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let mut flow = FlowBuilder::new("doubler");
/// let numbers = flow.add_source("numbers", Numbers(10));
/// let double = flow.add_transform("double", Double, &numbers);
/// let print = flow.add_sink("print", Print, &double);
/// let report = flow.journals(Journals::memory()).build()?.run().await?;
/// assert_eq!(report.stage(&print).unwrap().records_in, 10);
/// # Ok(())
/// # }
/// ```
///
/// Each `add_*` method returns the stage's [`StageRef`], which the stages added after it take
/// as their input: one upstream (`&numbers`), several (`[&a, &b]`, a fan-in), or a stage's
/// error lane ([`StageRef::errors`]). Where both ends of an edge are typed,
/// [`build`](Self::build) checks that the upstream emits what the downstream decodes.
///
/// For graphs made at run time, the same flow can be declared by name: `source`,
/// `transform`, `sink`, ... then [`edge`](Self::edge), [`chain`](Self::chain) and
/// [`error_edge`](Self::error_edge).
///
/// ```no_run
/// # use obzenflow_runtime::pipeline::FlowBuilder;
/// # fn declare(numbers: impl obzenflow_runtime::stages::SourceHandler, double: impl obzenflow_runtime::stages::TransformHandler, print: impl obzenflow_runtime::stages::SinkHandler) -> FlowBuilder {
/// FlowBuilder::new("doubler")
///     .source("numbers", numbers)
///     .transform("double", double)
///     .sink("print", print)
///     .chain(["numbers", "double", "print"])
/// # }
/// ```
#[must_use = "a flow builder does nothing until `build()` and `start()` or `run()`"]
pub struct FlowBuilder {
    name: String,
    stages: Vec<StageSpec>,
    edges: Vec<EdgeSpec>,
    configs: Vec<(String, StageConfig)>,
    journals: Journals,
    teardown_deadline: Duration,
    replay: ReplayRequest,
    metrics: MetricsConfig,
    accepted: Vec<(String, FindingKind)>,
}

impl FlowBuilder {
    /// How long cancelled stages get to stop before their tasks are aborted, by default.
    pub const DEFAULT_TEARDOWN_DEADLINE: Duration = Duration::from_secs(10);

    /// A flow named `name` with no stages, journaling to disk under the default base directory.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            stages: Vec::new(),
            edges: Vec::new(),
            configs: Vec::new(),
            journals: Journals::default(),
            teardown_deadline: Self::DEFAULT_TEARDOWN_DEADLINE,
            replay: ReplayRequest::default(),
            metrics: MetricsConfig::default(),
            accepted: Vec::new(),
        }
    }

    fn push_stage(
        &mut self,
        name: impl Into<String>,
        kind: StageKind,
        factory: StageFactory,
        types: StageTypes,
    ) -> StageRef {
        let name = name.into();
        let stage = StageRef::new(&name);
        self.stages.push(StageSpec {
            name,
            kind,
            config: StageConfig::default(),
            factory,
            types,
            inputs: None,
        });
        stage
    }

    /// Adds a source whose calls return at once; returns its handle for wiring.
    ///
    /// ```no_run
    /// use obzenflow_core::ChainEvent;
    /// use obzenflow_runtime::pipeline::{FlowBuilder, Journals};
    /// use obzenflow_runtime::stages::{HandlerFailure, RecordError, SinkHandler, SourceHandler, SourcePoll, TransformHandler};
    /// # struct Numbers(u64);
    /// # impl SourceHandler for Numbers {
    /// #     fn next_batch(&mut self, _max: usize) -> Result<SourcePoll, HandlerFailure> {
    /// #         if self.0 == 0 { return Ok(SourcePoll::Done); }
    /// #         self.0 -= 1;
    /// #         Ok(SourcePoll::Records(vec![ChainEvent::data("n", serde_json::json!(self.0))]))
    /// #     }
    /// # }
    /// # struct Halve;
    /// # impl TransformHandler for Halve {
    /// #     fn process(&mut self, event: &ChainEvent) -> Result<Vec<ChainEvent>, RecordError> {
    /// #         let n = event.json().and_then(|p| p.as_u64()).ok_or("not a number")?;
    /// #         if n % 2 == 1 { return Err(RecordError::validation("odd")); }
    /// #         Ok(vec![ChainEvent::data("n", serde_json::json!(n / 2))])
    /// #     }
    /// # }
    /// # struct Print;
    /// # impl SinkHandler for Print {
    /// #     fn consume(&mut self, event: &ChainEvent) -> Result<(), RecordError> {
    /// #         println!("{:?}", event.payload());
    /// #         Ok(())
    /// #     }
    /// # }
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut flow = FlowBuilder::new("halves");
    /// let numbers = flow.add_source("numbers", Numbers(10));
    /// let halve = flow.add_transform("halve", Halve, &numbers);
    /// flow.add_sink("print", Print, &halve);
    /// // The odd numbers `halve` rejected, with why:
    /// flow.add_sink("rejected", Print, halve.errors());
    /// let report = flow.journals(Journals::memory()).build()?.run().await?;
    /// assert_eq!(report.stage("rejected").unwrap().records_in, 5);
    /// # Ok(())
    /// # }
    /// ```
    pub fn add_source(&mut self, name: impl Into<String>, handler: impl SourceHandler) -> StageRef {
        let types = StageTypes {
            input: None,
            output: handler.output_type(),
        };
        let factory = source_factory(SyncSource(handler));
        self.push_stage(name, StageKind::Source, factory, types)
    }

    /// Adds a source that awaits its records; returns its handle for wiring.
    pub fn add_async_source(
        &mut self,
        name: impl Into<String>,
        handler: impl AsyncSourceHandler,
    ) -> StageRef {
        let types = StageTypes {
            input: None,
            output: handler.output_type(),
        };
        self.push_stage(name, StageKind::Source, source_factory(handler), types)
    }

    /// Adds a transform reading `input` (one upstream or several, data or error lanes);
    /// returns its handle for wiring.
    pub fn add_transform(
        &mut self,
        name: impl Into<String>,
        handler: impl TransformHandler,
        input: impl Into<Upstreams>,
    ) -> StageRef {
        let stage = self.declare_transform(name, StageKind::Transform, handler);
        self.wire(input, &stage);
        stage
    }

    /// Adds a transform that processes batches and may await, reading `input`; returns its
    /// handle for wiring.
    pub fn add_async_transform(
        &mut self,
        name: impl Into<String>,
        handler: impl AsyncTransformHandler,
        input: impl Into<Upstreams>,
    ) -> StageRef {
        let types = StageTypes {
            input: handler.input_type(),
            output: handler.output_type(),
        };
        let stage = self.reader(name, StageKind::Transform, AsyncTransform(handler), types);
        self.wire(input, &stage);
        stage
    }

    /// Adds a stateful stage reading `input` (see [`stateful`](Self::stateful)); returns its
    /// handle for wiring.
    pub fn add_stateful(
        &mut self,
        name: impl Into<String>,
        handler: impl StatefulHandler,
        input: impl Into<Upstreams>,
    ) -> StageRef {
        let stage = self.declare_transform(name, StageKind::Stateful, Stateful(handler));
        self.wire(input, &stage);
        stage
    }

    /// Adds a sink reading `input`; returns its handle (for
    /// [`configure`](Self::configure), [`accept`](Self::accept), or its error lane).
    pub fn add_sink(
        &mut self,
        name: impl Into<String>,
        handler: impl SinkHandler,
        input: impl Into<Upstreams>,
    ) -> StageRef {
        let types = handler.input_type();
        let stage = self.declare_sink(name, SyncSink(handler), types);
        self.wire(input, &stage);
        stage
    }

    /// Adds a sink that delivers batches and may await, reading `input`; returns its handle.
    pub fn add_async_sink(
        &mut self,
        name: impl Into<String>,
        handler: impl AsyncSinkHandler,
        input: impl Into<Upstreams>,
    ) -> StageRef {
        let types = handler.input_type();
        let stage = self.declare_sink(name, handler, types);
        self.wire(input, &stage);
        stage
    }

    /// Declares the edges from each of `input` into `stage`.
    fn wire(&mut self, input: impl Into<Upstreams>, stage: &StageRef) {
        for upstream in input.into().0 {
            self.edges.push(EdgeSpec {
                from: upstream.stage().to_owned(),
                to: stage.name().to_owned(),
                window: upstream.window(),
                lane: upstream.lane(),
            });
        }
    }

    /// Adds a source whose calls return at once.
    pub fn source(mut self, name: impl Into<String>, handler: impl SourceHandler) -> Self {
        self.add_source(name, handler);
        self
    }

    /// Adds a source that awaits its records.
    pub fn async_source(
        mut self,
        name: impl Into<String>,
        handler: impl AsyncSourceHandler,
    ) -> Self {
        self.add_async_source(name, handler);
        self
    }

    /// Adds a transform.
    pub fn transform(mut self, name: impl Into<String>, handler: impl TransformHandler) -> Self {
        self.declare_transform(name, StageKind::Transform, handler);
        self
    }

    /// Adds a transform that processes batches and may await.
    pub fn async_transform(
        mut self,
        name: impl Into<String>,
        handler: impl AsyncTransformHandler,
    ) -> Self {
        let types = StageTypes {
            input: handler.input_type(),
            output: handler.output_type(),
        };
        self.reader(name, StageKind::Transform, AsyncTransform(handler), types);
        self
    }

    /// Adds a stateful stage: a [`StatefulHandler`] that folds records into state and emits
    /// from it when its input ends ([`StatefulHandler::finish`]) and whenever part of it is
    /// complete, such as `obzenflow_stages::stateful::Aggregate`.
    ///
    /// It is a kind of its own: [`StageKind::Stateful`] (`stateful`) in the flow report and
    /// the metrics snapshots, and a record it absorbs into its state is not counted in
    /// `records_filtered`. It reads, checks types and keeps an error lane as a transform does.
    pub fn stateful(mut self, name: impl Into<String>, handler: impl StatefulHandler) -> Self {
        self.declare_transform(name, StageKind::Stateful, Stateful(handler));
        self
    }

    fn declare_transform(
        &mut self,
        name: impl Into<String>,
        kind: StageKind,
        handler: impl TransformHandler,
    ) -> StageRef {
        let types = StageTypes {
            input: handler.input_type(),
            output: handler.output_type(),
        };
        self.reader(name, kind, SyncTransform::new(handler), types)
    }

    fn reader(
        &mut self,
        name: impl Into<String>,
        kind: StageKind,
        processor: impl crate::stages::TimedProcessor,
        types: StageTypes,
    ) -> StageRef {
        let factory: StageFactory = Box::new(move |mut wiring: StageWiring| {
            let inputs = wiring.take_inputs();
            let logic = TransformLogic::new(kind, wiring.info.name.clone(), processor, inputs);
            spawn_stage(logic, wiring)
        });
        self.push_stage(name, kind, factory, types)
    }

    /// Adds a sink.
    pub fn sink(mut self, name: impl Into<String>, handler: impl SinkHandler) -> Self {
        let input = handler.input_type();
        self.declare_sink(name, SyncSink(handler), input);
        self
    }

    /// Adds a sink that delivers batches and may await.
    pub fn async_sink(mut self, name: impl Into<String>, handler: impl AsyncSinkHandler) -> Self {
        let input = handler.input_type();
        self.declare_sink(name, handler, input);
        self
    }

    fn declare_sink(
        &mut self,
        name: impl Into<String>,
        handler: impl AsyncSinkHandler,
        input: Option<RecordType>,
    ) -> StageRef {
        let factory: StageFactory = Box::new(move |mut wiring: StageWiring| {
            let inputs = wiring.take_inputs();
            let logic = SinkLogic::new(wiring.info.clone(), handler, inputs);
            spawn_stage(logic, wiring)
        });
        let types = StageTypes {
            input,
            output: None,
        };
        self.push_stage(name, StageKind::Sink, factory, types)
    }

    /// Connects `from` to `to` with the default backpressure window.
    pub fn edge(self, from: impl Into<String>, to: impl Into<String>) -> Self {
        self.edge_with_window(from, to, EdgeConfig::DEFAULT_WINDOW.get())
    }

    /// Connects `from` to `to`; `from` never runs more than `window` records ahead of `to`.
    ///
    /// A window of 0 would let nothing through; [`build`](Self::build) refuses it with
    /// [`GraphError::ZeroWindow`] naming the edge.
    pub fn edge_with_window(
        mut self,
        from: impl Into<String>,
        to: impl Into<String>,
        window: u64,
    ) -> Self {
        self.edges.push(EdgeSpec {
            from: from.into(),
            to: to.into(),
            window,
            lane: Lane::Data,
        });
        self
    }

    /// Connects the error lane of `from` to `to`, as [`StageRef::errors`] does for a handle:
    /// `to` reads the records `from` put on its error lane, in error status.
    pub fn error_edge(mut self, from: impl Into<String>, to: impl Into<String>) -> Self {
        self.edges.push(EdgeSpec {
            from: from.into(),
            to: to.into(),
            window: EdgeConfig::DEFAULT_WINDOW.get(),
            lane: Lane::Error,
        });
        self
    }

    /// Connects the named stages one after the other.
    pub fn chain<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        for pair in names.windows(2) {
            self = self.edge(pair[0].clone(), pair[1].clone());
        }
        self
    }

    /// Sets the configuration of the stage named `name`.
    ///
    /// [`build`](Self::build) refuses a name that matches no stage
    /// ([`FlowError::UnknownStageConfig`]) and a configuration that cannot work
    /// ([`FlowError::InvalidConfig`]): a `batch_limit` or `control_capacity` of 0, or an
    /// [`ErrorBudget::MaxRatio`] ratio outside `0.0..=1.0`.
    pub fn configure(mut self, name: impl Into<String>, config: StageConfig) -> Self {
        self.configs.push((name.into(), config));
        self
    }

    /// How long cancelled stages get to stop before their tasks are aborted. A stage only
    /// ignores cancellation while a handler call never returns.
    pub fn teardown_deadline(mut self, deadline: Duration) -> Self {
        self.teardown_deadline = deadline;
        self
    }

    /// Chooses where journals live (disk by default).
    pub fn journals(mut self, journals: Journals) -> Self {
        self.journals = journals;
        self
    }

    /// Replays the run in `run_dir`: every source reads its archived journals
    /// ([`ArchiveSource`](crate::replay::ArchiveSource)) instead of calling its handler, every
    /// other stage runs its current code, and the new run's manifest records `replayed_from`.
    ///
    /// [`build`](Self::build) reads the archived manifest and fails with
    /// [`FlowError::Replay`] if the run did not complete (see
    /// [`allow_incomplete_replay`](Self::allow_incomplete_replay)) or has no source of the same
    /// name for a source of this flow. Compare the runs afterwards with
    /// [`replay::verify`](crate::replay::verify).
    ///
    /// ```no_run
    /// use obzenflow_core::ChainEvent;
    /// use obzenflow_runtime::pipeline::{FlowBuilder, Journals};
    /// use obzenflow_runtime::stages::{HandlerFailure, RecordError, SinkHandler, SourceHandler, SourcePoll};
    ///
    /// struct Orders;
    /// impl SourceHandler for Orders {
    ///     fn next_batch(&mut self, _max: usize) -> Result<SourcePoll, HandlerFailure> {
    ///         Ok(SourcePoll::Done)
    ///     }
    /// }
    /// struct Print;
    /// impl SinkHandler for Print {
    ///     fn consume(&mut self, event: &ChainEvent) -> Result<(), RecordError> {
    ///         println!("{:?}", event.payload());
    ///         Ok(())
    ///     }
    /// }
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let original = "target/obzenflow/runs/run_0190f1c2a3b47c8d9e0f112233445566";
    /// let report = FlowBuilder::new("orders")
    ///     .source("orders", Orders)
    ///     .sink("print", Print)
    ///     .edge("orders", "print")
    ///     .journals(Journals::disk("target/obzenflow/runs"))
    ///     .replay_from(original)
    ///     .build()?
    ///     .run()
    ///     .await?;
    /// let verdict = obzenflow_runtime::replay::verify(original, report.run_dir.as_ref().unwrap())?;
    /// println!("{verdict}");
    /// # Ok(())
    /// # }
    /// ```
    pub fn replay_from(mut self, run_dir: impl Into<PathBuf>) -> Self {
        self.replay.run_dir = Some(run_dir.into());
        self
    }

    /// Lets [`replay_from`](Self::replay_from) replay a run whose manifest status is not
    /// `completed` (it failed, was cancelled, or its process died): its sources replay what
    /// their journals hold, even without an end-of-stream marker.
    pub fn allow_incomplete_replay(mut self) -> Self {
        self.replay.allow_incomplete = true;
        self
    }

    /// Chooses how the flow collects metrics (enabled, folded every second, by default);
    /// [`MetricsConfig::disabled`] keeps only the counts, to measure what instrumentation
    /// costs.
    pub fn metrics(mut self, metrics: MetricsConfig) -> Self {
        self.metrics = metrics;
        self
    }

    /// Declares that a finding of `kind` about the stage named `name` is acceptable: the
    /// report still lists it (as accepted) but it does not make the run unsuccessful.
    ///
    /// Without it, a drained run in which a stage rejected every record it read
    /// ([`FindingKind::RejectedEverything`]) or a sink received nothing while its sources
    /// produced records ([`FindingKind::SinkReceivedNothing`]) is not a success
    /// ([`FlowReport::is_success`]). [`build`](Self::build) refuses a name that matches no
    /// stage ([`FlowError::UnknownStageConfig`]) and a kind the stage cannot have, such as
    /// `SinkReceivedNothing` for a transform ([`FlowError::InvalidConfig`]).
    ///
    /// ```no_run
    /// # fn declare(builder: obzenflow_runtime::pipeline::FlowBuilder) -> obzenflow_runtime::pipeline::FlowBuilder {
    /// use obzenflow_runtime::pipeline::FindingKind;
    ///
    /// // Quarantine runs: every record is expected to fail validation.
    /// builder
    ///     .accept("validate", FindingKind::RejectedEverything)
    ///     .accept("out", FindingKind::SinkReceivedNothing)
    /// # }
    /// ```
    pub fn accept(mut self, name: impl Into<String>, kind: FindingKind) -> Self {
        self.accepted.push((name.into(), kind));
        self
    }

    /// Refuses an edge whose upstream emits one record type and whose downstream decodes
    /// another, where both handlers say.
    fn check_types(&self, graph: &Graph) -> Result<(), GraphError> {
        // An error lane carries whatever its stage rejected or passed on in error status: no
        // one record type.
        let data_edges = graph
            .edges
            .iter()
            .zip(&graph.lanes)
            .filter(|(_, lane)| **lane == Lane::Data);
        for (&(from, to), _) in data_edges {
            let (upstream, downstream) = (&self.stages[from], &self.stages[to]);
            if let (Some(emits), Some(decodes)) = (upstream.types.output, downstream.types.input) {
                if !emits.matches(&decodes) {
                    return Err(GraphError::TypeMismatch {
                        from: upstream.name.clone(),
                        emits,
                        to: downstream.name.clone(),
                        decodes,
                    });
                }
            }
        }
        Ok(())
    }

    /// Validates the graph and returns a flow ready to start.
    ///
    /// Nothing is created or started before every check passes: a graph error
    /// ([`FlowError::Graph`]: a cycle, an edge naming an unknown stage, a stage name used twice,
    /// a zero window, ...) or a configuration error leaves no run directory behind.
    ///
    /// For a replay ([`replay_from`](Self::replay_from)) it also reads and checks the archived
    /// run's manifest.
    pub fn build(mut self) -> Result<Flow, FlowError> {
        let shape: Vec<(String, StageKind)> = self
            .stages
            .iter()
            .map(|stage| (stage.name.clone(), stage.kind))
            .collect();
        let named_edges: Vec<NamedEdge> = self
            .edges
            .iter()
            .map(|edge| NamedEdge {
                from: edge.from.clone(),
                to: edge.to.clone(),
                lane: edge.lane,
            })
            .collect();
        let graph = Graph::validate(&self.name, shape, &named_edges)?;
        self.check_types(&graph)?;
        self.check_inputs(&graph)?;
        let mut windows = Vec::with_capacity(self.edges.len());
        for (edge, named) in self.edges.iter().zip(&named_edges) {
            let window = NonZeroU64::new(edge.window).ok_or_else(|| GraphError::ZeroWindow {
                from: named.upstream_label(),
                to: edge.to.clone(),
            })?;
            windows.push(window);
        }
        self.apply_configs()?;
        self.check_accepted()?;
        let replay_of = self.replay_sources()?;
        Ok(Flow {
            name: Arc::from(self.name),
            stages: self.stages,
            graph,
            windows,
            journals: self.journals,
            teardown_deadline: self.teardown_deadline,
            replay_of,
            metrics: self.metrics,
            accepted: self.accepted,
        })
    }

    /// Refuses an accepted finding naming no stage, or a kind its stage cannot have.
    fn check_accepted(&self) -> Result<(), FlowError> {
        for (name, kind) in &self.accepted {
            let stage = self
                .stages
                .iter()
                .find(|stage| stage.name == *name)
                .ok_or_else(|| FlowError::UnknownStageConfig { name: name.clone() })?;
            if !kind.applies_to(stage.kind) {
                return Err(FlowError::InvalidConfig {
                    stage: name.clone(),
                    reason: format!("a {} cannot have the finding {kind:?}", stage.kind.as_str()),
                });
            }
        }
        Ok(())
    }

    /// For a replay, swaps every source's factory for one replaying its archived journals and
    /// returns the archived run.
    fn replay_sources(&mut self) -> Result<Option<ReplayOf>, FlowError> {
        let Some(archive) = self.replay.open()? else {
            return Ok(None);
        };
        for stage in self
            .stages
            .iter_mut()
            .filter(|stage| stage.kind.is_source())
        {
            let source = archive.source(&stage.name)?;
            stage.factory = source_factory(SyncSource(source));
        }
        Ok(Some(ReplayOf {
            run_id: archive.run_id(),
            run_dir: archive.run_dir().to_path_buf(),
        }))
    }

    fn apply_configs(&mut self) -> Result<(), FlowError> {
        let index: HashMap<String, usize> = self
            .stages
            .iter()
            .enumerate()
            .map(|(position, stage)| (stage.name.clone(), position))
            .collect();
        for (name, config) in self.configs.drain(..) {
            let position = *index
                .get(&name)
                .ok_or(FlowError::UnknownStageConfig { name: name.clone() })?;
            if let Some(reason) = config_problem(&config) {
                return Err(FlowError::InvalidConfig {
                    stage: name,
                    reason: reason.to_owned(),
                });
            }
            self.stages[position].config = config;
        }
        Ok(())
    }
}

/// What is wrong with a stage configuration a user gave, if anything. A zero capacity would
/// otherwise be raised to 1 without a word, and a ratio outside `0.0..=1.0` (or NaN) would
/// fail every stage or none.
fn config_problem(config: &StageConfig) -> Option<&'static str> {
    if config.batch_limit == 0 {
        return Some("batch_limit must be at least 1");
    }
    if config.control_capacity == 0 {
        return Some("control_capacity must be at least 1");
    }
    match config.error_budget {
        ErrorBudget::MaxRatio { ratio, .. } if !(0.0..=1.0).contains(&ratio) => {
            Some("the error budget's ratio must be between 0.0 and 1.0")
        }
        _ => None,
    }
}

/// A validated flow, ready to start.
#[must_use = "a built flow does nothing until `start()` or `run()`"]
pub struct Flow {
    pub(crate) name: Arc<str>,
    pub(crate) stages: Vec<StageSpec>,
    pub(crate) graph: Graph,
    /// Backpressure window of each edge, indexed like `graph.edges`.
    pub(crate) windows: Vec<NonZeroU64>,
    pub(crate) journals: Journals,
    pub(crate) teardown_deadline: Duration,
    /// The archived run this run replays, if it is a replay.
    pub(crate) replay_of: Option<ReplayOf>,
    /// How the run collects metrics.
    pub(crate) metrics: MetricsConfig,
    /// The findings declared acceptable, by stage name.
    pub(crate) accepted: Vec<(String, FindingKind)>,
}

impl std::fmt::Debug for Flow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stages: Vec<&str> = self
            .stages
            .iter()
            .map(|stage| stage.name.as_str())
            .collect();
        f.debug_struct("Flow")
            .field("name", &self.name)
            .field("stages", &stages)
            .field("edges", &self.graph.edges)
            .finish_non_exhaustive()
    }
}

/// The factory of a source stage running `handler`.
fn source_factory(handler: impl AsyncSourceHandler) -> StageFactory {
    Box::new(move |wiring: StageWiring| {
        let logic = SourceLogic::new(wiring.info.name.clone(), handler, wiring.config.batch_limit);
        spawn_stage(logic, wiring)
    })
}

impl Flow {
    /// The flow's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Starts the flow and returns its handle. Must be called within a tokio runtime.
    pub fn start(self) -> Result<FlowHandle, FlowError> {
        FlowHandle::start(self)
    }

    /// Starts the flow and waits for it to finish.
    ///
    /// Cancel safety: dropping this future leaves the flow running to completion in the
    /// background.
    pub async fn run(self) -> Result<FlowReport, FlowError> {
        self.start()?.wait().await
    }
}
