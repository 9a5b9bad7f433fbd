//! `FlowBuilder::multi_input` and `FlowBuilder::join`: stages that read several inputs and
//! know which one each record came from, and the checks `build()` makes of their wiring.

use obzenflow_core::Lane;

use super::{FlowBuilder, StageFactory, StageTypes};
use crate::pipeline::graph::{Graph, GraphError};
use crate::pipeline::wiring::{StageRef, Upstream, Upstreams};
use crate::stages::InputSpec;
use crate::stages::{
    spawn_stage, InputRole, MultiInputHandler, StageKind, StageWiring, SyncMultiInput,
    TransformLogic,
};

/// What a multi-input stage declared about its inputs.
pub(crate) struct DeclaredInputs {
    /// Its inputs, in order.
    specs: Vec<InputSpec>,
    /// The inputs it reads to their end first.
    read_first: Vec<usize>,
}

impl FlowBuilder {
    /// Adds a stage that reads several inputs ([`MultiInputHandler`]); its kind is
    /// [`StageKind::Join`].
    ///
    /// Its inputs are numbered in the order the edges into it are declared (with
    /// [`edge`](Self::edge), [`chain`](Self::chain), ...): the first edge into it feeds input
    /// 0, the next input 1. [`build`](Self::build) refuses the flow with
    /// [`GraphError::MissingInput`] naming the stage and the input when an input has no edge,
    /// [`GraphError::ExtraInput`] when there is an edge too many, and
    /// [`GraphError::TypeMismatch`] when an input's declared record type differs from what its
    /// upstream emits.
    ///
    /// ```no_run
    /// # use obzenflow_core::ChainEvent;
    /// # use obzenflow_runtime::pipeline::FlowBuilder;
    /// # use obzenflow_runtime::stages::*;
    /// # struct Union;
    /// # impl MultiInputHandler for Union {
    /// #     fn inputs(&self) -> Vec<InputSpec> { vec![InputSpec::stream("a"), InputSpec::stream("b")] }
    /// #     fn process_into(&mut self, _: usize, e: &ChainEvent, out: &mut Vec<ChainEvent>) -> Result<(), RecordError> { out.push(e.clone()); Ok(()) }
    /// # }
    /// # fn declare(builder: FlowBuilder) -> FlowBuilder {
    /// builder
    ///     .multi_input("union", Union)
    ///     .edge("left", "union") // input 0
    ///     .edge("right", "union") // input 1
    /// # }
    /// ```
    pub fn multi_input(mut self, name: impl Into<String>, handler: impl MultiInputHandler) -> Self {
        self.declare_multi_input(name, handler);
        self
    }

    /// Adds a stage that reads several inputs ([`MultiInputHandler`]) and wires `inputs` to
    /// it, in order: the first feeds input 0 (see [`multi_input`](Self::multi_input) for the
    /// checks `build` makes). Returns its handle.
    pub fn add_multi_input(
        &mut self,
        name: impl Into<String>,
        handler: impl MultiInputHandler,
        inputs: impl Into<Upstreams>,
    ) -> StageRef {
        let stage = self.declare_multi_input(name, handler);
        self.wire(inputs, &stage);
        stage
    }

    /// Adds a two-input stage such as `obzenflow_stages::joins::LookupJoin`, reading
    /// `reference` as input 0 and `stream` as input 1; returns its handle.
    ///
    /// ```no_run
    /// # use obzenflow_core::ChainEvent;
    /// # use obzenflow_runtime::pipeline::FlowBuilder;
    /// # use obzenflow_runtime::stages::*;
    /// # struct Enrich;
    /// # impl MultiInputHandler for Enrich {
    /// #     fn inputs(&self) -> Vec<InputSpec> { vec![InputSpec::state("reference"), InputSpec::stream("stream")] }
    /// #     fn process_into(&mut self, _: usize, e: &ChainEvent, out: &mut Vec<ChainEvent>) -> Result<(), RecordError> { out.push(e.clone()); Ok(()) }
    /// # }
    /// # fn declare(flow: &mut FlowBuilder, airlines: obzenflow_runtime::pipeline::StageRef, flights: obzenflow_runtime::pipeline::StageRef) {
    /// let enriched = flow.add_join("enrich", Enrich, &airlines, &flights);
    /// # }
    /// ```
    pub fn add_join(
        &mut self,
        name: impl Into<String>,
        handler: impl MultiInputHandler,
        reference: impl Into<Upstream>,
        stream: impl Into<Upstream>,
    ) -> StageRef {
        let stage = self.declare_multi_input(name, handler);
        self.wire([reference.into(), stream.into()], &stage);
        stage
    }

    fn declare_multi_input(
        &mut self,
        name: impl Into<String>,
        handler: impl MultiInputHandler,
    ) -> StageRef {
        let inputs = handler.inputs();
        let first = handler.read_policy().first().to_vec();
        let read_first = first.clone();
        let types = StageTypes {
            input: None,
            output: handler.output_type(),
        };
        // A record that produces nothing is filtered only on a stream input; past the declared
        // inputs (a wiring error `build` refuses) nothing is counted as filtered.
        let mut filtered_when_empty: Vec<bool> = inputs
            .iter()
            .map(|input| input.role() == InputRole::Stream)
            .collect();
        filtered_when_empty.push(false);
        let factory: StageFactory = Box::new(move |mut wiring: StageWiring| {
            let mut reading = wiring.take_inputs();
            reading.read_first(first);
            let logic = TransformLogic::with_filtering(
                wiring.info.name.clone(),
                SyncMultiInput::new(handler),
                reading,
                filtered_when_empty,
            );
            spawn_stage(logic, wiring)
        });
        let stage = self.push_stage(name, StageKind::Join, factory, types);
        if let Some(spec) = self.stages.last_mut() {
            spec.inputs = Some(DeclaredInputs {
                specs: inputs,
                read_first,
            });
        }
        stage
    }

    /// Adds a two-input stage such as `obzenflow_stages::joins::LookupJoin` and wires it:
    /// `reference` feeds input 0 and `stream` input 1 (as [`multi_input`](Self::multi_input)
    /// followed by `edge(reference, name)` and `edge(stream, name)`).
    ///
    /// ```no_run
    /// # use obzenflow_core::ChainEvent;
    /// # use obzenflow_runtime::pipeline::FlowBuilder;
    /// # use obzenflow_runtime::stages::*;
    /// # struct Enrich;
    /// # impl MultiInputHandler for Enrich {
    /// #     fn inputs(&self) -> Vec<InputSpec> { vec![InputSpec::state("reference"), InputSpec::stream("stream")] }
    /// #     fn process_into(&mut self, _: usize, e: &ChainEvent, out: &mut Vec<ChainEvent>) -> Result<(), RecordError> { out.push(e.clone()); Ok(()) }
    /// # }
    /// # fn declare(builder: FlowBuilder) -> FlowBuilder {
    /// builder.join("enrich", Enrich, "airlines", "flights")
    /// # }
    /// ```
    pub fn join(
        self,
        name: impl Into<String>,
        handler: impl MultiInputHandler,
        reference: impl Into<String>,
        stream: impl Into<String>,
    ) -> Self {
        let name = name.into();
        self.multi_input(name.clone(), handler)
            .edge(reference, name.clone())
            .edge(stream, name)
    }

    /// Refuses a multi-input stage with an input left unwired or an edge too many, or whose
    /// input's declared type differs from what its upstream emits.
    pub(super) fn check_inputs(&self, graph: &Graph) -> Result<(), GraphError> {
        let mut wired = vec![0usize; self.stages.len()];
        for (&(from, to), lane) in graph.edges.iter().zip(&graph.lanes) {
            let downstream = &self.stages[to];
            let Some(DeclaredInputs { specs: inputs, .. }) = &downstream.inputs else {
                continue;
            };
            let index = wired[to];
            wired[to] += 1;
            let upstream = &self.stages[from];
            let Some(input) = inputs.get(index) else {
                return Err(GraphError::ExtraInput {
                    stage: downstream.name.clone(),
                    kind: downstream.kind,
                    from: upstream.name.clone(),
                    inputs: names(inputs),
                });
            };
            // An error lane carries no one record type.
            let emitted = upstream.types.output.filter(|_| *lane == Lane::Data);
            if let (Some(emits), Some(decodes)) = (emitted, input.record_type()) {
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
        for (stage, wired) in self.stages.iter().zip(wired) {
            let Some(DeclaredInputs { specs: inputs, .. }) = &stage.inputs else {
                continue;
            };
            if let Some(input) = inputs.get(wired) {
                return Err(GraphError::MissingInput {
                    stage: stage.name.clone(),
                    kind: stage.kind,
                    input: input.name().to_owned(),
                    index: wired,
                    inputs: names(inputs),
                });
            }
        }
        self.check_hydration(graph)
    }

    /// Refuses a stage that reads some inputs to their end first when one of them shares an
    /// upstream with an input it holds back: the held-back branch would stop reading the
    /// shared upstream once its backpressure window filled, which would stop the branch read
    /// first too, and the stage would wait for an end that never comes.
    fn check_hydration(&self, graph: &Graph) -> Result<(), GraphError> {
        for (position, stage) in self.stages.iter().enumerate() {
            let Some(declared) = &stage.inputs else {
                continue;
            };
            if declared.read_first.is_empty() {
                continue;
            }
            let upstreams: Vec<usize> = graph
                .edges
                .iter()
                .filter(|(_, to)| *to == position)
                .map(|(from, _)| *from)
                .collect();
            let lineage: Vec<Vec<bool>> = upstreams
                .iter()
                .map(|upstream| ancestors_and_self(graph, *upstream))
                .collect();
            for first in declared
                .read_first
                .iter()
                .filter(|first| **first < upstreams.len())
            {
                for (other, other_lineage) in lineage.iter().enumerate() {
                    if declared.read_first.contains(&other) {
                        continue;
                    }
                    let shared = (0..self.stages.len())
                        .find(|node| lineage[*first][*node] && other_lineage[*node]);
                    if let Some(shared) = shared {
                        return Err(GraphError::HydrationDeadlock {
                            stage: stage.name.clone(),
                            first: declared.specs[*first].name().to_owned(),
                            held_back: declared
                                .specs
                                .get(other)
                                .map_or_else(|| other.to_string(), |spec| spec.name().to_owned()),
                            shared: self.stages[shared].name.clone(),
                        });
                    }
                }
            }
        }
        Ok(())
    }
}

/// Every stage `node` reads from, directly or not, and `node` itself.
fn ancestors_and_self(graph: &Graph, node: usize) -> Vec<bool> {
    let mut seen = vec![false; graph.stages.len()];
    let mut pending = vec![node];
    while let Some(next) = pending.pop() {
        if std::mem::replace(&mut seen[next], true) {
            continue;
        }
        pending.extend(
            graph
                .edges
                .iter()
                .filter(|(_, to)| *to == next)
                .map(|(from, _)| *from),
        );
    }
    seen
}

fn names(inputs: &[InputSpec]) -> Vec<String> {
    inputs.iter().map(|input| input.name().to_owned()).collect()
}
