//! Flow graph validation: every check runs before anything starts, and every error names the
//! stages involved.

use std::collections::{BTreeSet, HashMap};

use obzenflow_core::Lane;

use crate::stages::{RecordType, StageKind};

/// A flow graph is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GraphError {
    /// The flow has no stages.
    #[error("flow `{flow}` has no stages")]
    Empty {
        /// The flow name.
        flow: String,
    },
    /// A stage name cannot name the stage's journal directories.
    #[error("stage name `{}` cannot be used: {reason}", name.escape_debug())]
    InvalidStageName {
        /// The name given.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// Two stages share a name.
    #[error("stage name `{name}` is used twice")]
    DuplicateStage {
        /// The repeated name.
        name: String,
    },
    /// An edge names a stage that does not exist.
    #[error("edge {from} -> {to} names unknown stage `{unknown}`")]
    UnknownStage {
        /// The edge's upstream.
        from: String,
        /// The edge's downstream.
        to: String,
        /// The name that matches no stage.
        unknown: String,
    },
    /// The same edge is declared twice.
    #[error("edge {from} -> {to} is declared twice")]
    DuplicateEdge {
        /// The edge's upstream.
        from: String,
        /// The edge's downstream.
        to: String,
    },
    /// An edge points into a source.
    #[error("source `{source_stage}` cannot have an input (edge {from} -> {source_stage})")]
    SourceWithInput {
        /// The source.
        source_stage: String,
        /// The upstream the edge comes from.
        from: String,
    },
    /// An edge leaves a sink.
    #[error("sink `{sink}` cannot have an output (edge {sink} -> {to})")]
    SinkWithOutput {
        /// The sink.
        sink: String,
        /// The downstream the edge goes to.
        to: String,
    },
    /// A stage that is not a source has no input.
    #[error("{kind} `{stage}` has no input: connect it to an upstream stage")]
    NoInput {
        /// The stage.
        stage: String,
        /// Its kind.
        kind: StageKind,
    },
    /// A stage that is not a sink has no output.
    #[error("{kind} `{stage}` has no output: connect it to a downstream stage")]
    NoOutput {
        /// The stage.
        stage: String,
        /// Its kind.
        kind: StageKind,
    },
    /// The graph has a cycle.
    #[error("the flow has a cycle through {}", stages.join(" -> "))]
    Cycle {
        /// The stages on the cycle, in order, the first repeated at the end.
        stages: Vec<String>,
    },
    /// An edge's upstream emits one record type and its downstream decodes another: every
    /// record would go to the downstream's error lane.
    #[error(
        "edge {from} -> {to} cannot carry records: `{from}` emits {emits}, but `{to}` decodes {decodes}"
    )]
    TypeMismatch {
        /// The upstream stage.
        from: String,
        /// What it emits.
        emits: RecordType,
        /// The downstream stage.
        to: String,
        /// What it decodes.
        decodes: RecordType,
    },
    /// A stage that reads named inputs (a join, a multi-input stage) has no edge for one of
    /// them.
    #[error(
        "{kind} `{stage}` has no edge for its input `{input}` (input {index} of {}); declare one edge per input, in order",
        inputs.join(", ")
    )]
    MissingInput {
        /// The stage.
        stage: String,
        /// Its kind.
        kind: StageKind,
        /// The input without an edge.
        input: String,
        /// Its index.
        index: usize,
        /// Every input the stage expects, in order.
        inputs: Vec<String>,
    },
    /// A stage that reads named inputs has more edges than inputs.
    #[error(
        "{kind} `{stage}` reads {} inputs ({}), but edge {from} -> {stage} is one more",
        inputs.len(),
        inputs.join(", ")
    )]
    ExtraInput {
        /// The stage.
        stage: String,
        /// Its kind.
        kind: StageKind,
        /// The upstream of the edge too many.
        from: String,
        /// Every input the stage expects, in order.
        inputs: Vec<String>,
    },
    /// A stage reads an input to its end first (`ReadPolicy::hydrate_first`) that shares an
    /// upstream with an input it holds back: once the held-back branch's backpressure window
    /// filled, the shared upstream would stop, the input read first would never end, and the
    /// flow would hang.
    #[error(
        "`{stage}` reads its input `{first}` to its end before `{held_back}`, but both read from `{shared}`: the held-back branch would stop `{shared}` and `{first}` would never end; use a live read policy or separate sources"
    )]
    HydrationDeadlock {
        /// The stage.
        stage: String,
        /// The input it reads first.
        first: String,
        /// The input it holds back.
        held_back: String,
        /// A stage both inputs read from.
        shared: String,
    },
    /// An edge has a zero backpressure window.
    #[error("edge {from} -> {to} has a backpressure window of 0; it must be at least 1")]
    ZeroWindow {
        /// The edge's upstream.
        from: String,
        /// The edge's downstream.
        to: String,
    },
}

/// An edge as declared: the upstream's name, the downstream's, and which lane of the upstream
/// it reads ([`Lane::Data`], or [`Lane::Error`] for an error-lane edge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NamedEdge {
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) lane: Lane,
}

impl NamedEdge {
    /// How error messages name the edge's upstream end: the stage, or `stage.errors` for its
    /// error lane.
    pub(crate) fn upstream_label(&self) -> String {
        match self.lane {
            Lane::Error => format!("{}.errors", self.from),
            _ => self.from.clone(),
        }
    }
}

/// The shape of a flow, as validated: stage names and kinds, and edges by index.
#[derive(Debug, Clone)]
pub(crate) struct Graph {
    pub(crate) stages: Vec<(String, StageKind)>,
    /// `(upstream, downstream)` stage indices.
    pub(crate) edges: Vec<(usize, usize)>,
    /// The lane of its upstream each edge reads, indexed like `edges`.
    pub(crate) lanes: Vec<Lane>,
}

impl Graph {
    /// Validates stages and named edges; returns the graph with edges resolved to indices.
    pub(crate) fn validate(
        flow: &str,
        stages: Vec<(String, StageKind)>,
        edges: &[NamedEdge],
    ) -> Result<Self, GraphError> {
        if stages.is_empty() {
            return Err(GraphError::Empty {
                flow: flow.to_owned(),
            });
        }
        let index = index_stages(&stages)?;
        let resolved = resolve_edges(&stages, &index, edges)?;
        let graph = Self {
            stages,
            edges: resolved,
            lanes: edges.iter().map(|edge| edge.lane).collect(),
        };
        graph.check_ends()?;
        graph.check_acyclic()?;
        Ok(graph)
    }

    fn check_ends(&self) -> Result<(), GraphError> {
        for (position, (name, kind)) in self.stages.iter().enumerate() {
            let has_input = self.edges.iter().any(|(_, to)| *to == position);
            // An error-lane edge is not the stage's output: its records still need a way on.
            let has_output = self
                .edges
                .iter()
                .zip(&self.lanes)
                .any(|((from, _), lane)| *from == position && *lane == Lane::Data);
            if !kind.is_source() && !has_input {
                return Err(GraphError::NoInput {
                    stage: name.clone(),
                    kind: *kind,
                });
            }
            if *kind != StageKind::Sink && !has_output {
                return Err(GraphError::NoOutput {
                    stage: name.clone(),
                    kind: *kind,
                });
            }
        }
        Ok(())
    }

    /// Depth-first search for a back edge; reports the cycle it closes.
    fn check_acyclic(&self) -> Result<(), GraphError> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            OnPath,
            Done,
        }
        let count = self.stages.len();
        let mut marks = vec![Mark::New; count];
        for start in 0..count {
            if marks[start] != Mark::New {
                continue;
            }
            // Iterative DFS: (node, next edge index to explore).
            let mut path: Vec<(usize, usize)> = vec![(start, 0)];
            marks[start] = Mark::OnPath;
            while let Some((node, cursor)) = path.last_mut() {
                let node = *node;
                let next = self.edges[*cursor..]
                    .iter()
                    .position(|(from, _)| *from == node)
                    .map(|offset| *cursor + offset);
                let Some(edge) = next else {
                    marks[node] = Mark::Done;
                    path.pop();
                    continue;
                };
                *cursor = edge + 1;
                let child = self.edges[edge].1;
                match marks[child] {
                    Mark::New => {
                        marks[child] = Mark::OnPath;
                        path.push((child, 0));
                    }
                    Mark::OnPath => return Err(self.cycle_error(&path, child)),
                    Mark::Done => {}
                }
            }
        }
        Ok(())
    }

    fn cycle_error(&self, path: &[(usize, usize)], back_to: usize) -> GraphError {
        let from = path
            .iter()
            .position(|(node, _)| *node == back_to)
            .unwrap_or(0);
        let mut stages: Vec<String> = path[from..]
            .iter()
            .map(|(node, _)| self.stages[*node].0.clone())
            .collect();
        stages.push(self.stages[back_to].0.clone());
        GraphError::Cycle { stages }
    }
}

/// Why `name` cannot be a stage name, if it cannot. A stage's name names its journal
/// directories (`stages/<name>/data`), so names follow the run directory's rules whatever the
/// journals: a flow that builds on memory journals also builds on disk, and a refused name
/// leaves no half-made run directory behind.
fn stage_name_problem(name: &str) -> Option<&'static str> {
    crate::journal::name_problem(name)
}

fn index_stages(stages: &[(String, StageKind)]) -> Result<HashMap<&str, usize>, GraphError> {
    let mut index = HashMap::with_capacity(stages.len());
    for (position, (name, _)) in stages.iter().enumerate() {
        if let Some(reason) = stage_name_problem(name) {
            return Err(GraphError::InvalidStageName {
                name: name.clone(),
                reason,
            });
        }
        if index.insert(name.as_str(), position).is_some() {
            return Err(GraphError::DuplicateStage { name: name.clone() });
        }
    }
    Ok(index)
}

fn resolve_edges(
    stages: &[(String, StageKind)],
    index: &HashMap<&str, usize>,
    edges: &[NamedEdge],
) -> Result<Vec<(usize, usize)>, GraphError> {
    let mut seen = BTreeSet::new();
    let mut resolved = Vec::with_capacity(edges.len());
    for edge in edges {
        let (from, to) = (edge.upstream_label(), edge.to.clone());
        let lookup = |name: &String| {
            index
                .get(name.as_str())
                .copied()
                .ok_or_else(|| GraphError::UnknownStage {
                    from: from.clone(),
                    to: to.clone(),
                    unknown: name.clone(),
                })
        };
        let (upstream, downstream) = (lookup(&edge.from)?, lookup(&edge.to)?);
        if !seen.insert((upstream, downstream, edge.lane == Lane::Error)) {
            return Err(GraphError::DuplicateEdge { from, to });
        }
        if stages[downstream].1.is_source() {
            return Err(GraphError::SourceWithInput {
                source_stage: to,
                from,
            });
        }
        // A sink has no data output; its error lane (records it could not deliver) may feed
        // another stage.
        if stages[upstream].1 == StageKind::Sink && edge.lane == Lane::Data {
            return Err(GraphError::SinkWithOutput { sink: from, to });
        }
        resolved.push((upstream, downstream));
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use StageKind::{Sink, Source, Transform};

    fn stages(list: &[(&str, StageKind)]) -> Vec<(String, StageKind)> {
        list.iter()
            .map(|(name, kind)| (name.to_string(), *kind))
            .collect()
    }

    fn edges(list: &[(&str, &str)]) -> Vec<NamedEdge> {
        list.iter()
            .map(|(from, to)| match from.strip_suffix(".errors") {
                Some(stage) => NamedEdge {
                    from: stage.to_string(),
                    to: to.to_string(),
                    lane: Lane::Error,
                },
                None => NamedEdge {
                    from: from.to_string(),
                    to: to.to_string(),
                    lane: Lane::Data,
                },
            })
            .collect()
    }

    fn validate(s: &[(&str, StageKind)], e: &[(&str, &str)]) -> Result<Graph, GraphError> {
        Graph::validate("test", stages(s), &edges(e))
    }

    #[test]
    fn linear_and_diamond_graphs_are_valid() {
        validate(
            &[("a", Source), ("b", Transform), ("c", Sink)],
            &[("a", "b"), ("b", "c")],
        )
        .unwrap();
        validate(
            &[
                ("a", Source),
                ("b", Transform),
                ("c", Transform),
                ("d", Sink),
            ],
            &[("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")],
        )
        .unwrap();
    }

    #[test]
    fn errors_name_the_stages() {
        let cases: Vec<(Result<Graph, GraphError>, &str)> = vec![
            (validate(&[], &[]), "flow `test` has no stages"),
            (
                validate(&[("a", Source), ("a", Sink)], &[]),
                "stage name `a` is used twice",
            ),
            (
                validate(&[("in/out", Source), ("b", Sink)], &[("in/out", "b")]),
                "stage name `in/out` cannot be used: it contains a path separator, a colon or \
                 a control character",
            ),
            (
                validate(&[("a\nb", Source), ("b", Sink)], &[("a\nb", "b")]),
                "stage name `a\\nb` cannot be used: it contains a path separator, a colon or \
                 a control character",
            ),
            (
                validate(&[("a", Source), ("b", Sink)], &[("a", "nope")]),
                "edge a -> nope names unknown stage `nope`",
            ),
            (
                validate(&[("a", Source), ("b", Sink)], &[("a", "b"), ("a", "b")]),
                "edge a -> b is declared twice",
            ),
            (
                validate(
                    &[("a", Source), ("b", Source), ("c", Sink)],
                    &[("a", "b"), ("b", "c")],
                ),
                "source `b` cannot have an input (edge a -> b)",
            ),
            (
                validate(
                    &[("a", Source), ("b", Sink), ("c", Sink)],
                    &[("a", "b"), ("b", "c")],
                ),
                "sink `b` cannot have an output (edge b -> c)",
            ),
            (
                validate(
                    &[("a", Source), ("t", Transform), ("b", Sink)],
                    &[("a", "b")],
                ),
                "transform `t` has no input: connect it to an upstream stage",
            ),
            (
                validate(
                    &[("a", Source), ("t", Transform), ("b", Sink)],
                    &[("a", "b"), ("a", "t")],
                ),
                "transform `t` has no output: connect it to a downstream stage",
            ),
        ];
        for (result, expected) in cases {
            assert_eq!(result.unwrap_err().to_string(), expected);
        }
    }

    #[test]
    fn cycles_are_reported_with_their_path() {
        let error = validate(
            &[
                ("src", Source),
                ("x", Transform),
                ("y", Transform),
                ("z", Transform),
                ("out", Sink),
            ],
            &[
                ("src", "x"),
                ("x", "y"),
                ("y", "z"),
                ("z", "x"),
                ("z", "out"),
            ],
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "the flow has a cycle through x -> y -> z -> x"
        );
    }

    #[test]
    fn error_lane_edges_may_leave_sinks_but_are_not_a_stages_output() {
        let graph = validate(
            &[
                ("a", Source),
                ("t", Transform),
                ("out", Sink),
                ("dead", Sink),
            ],
            &[
                ("a", "t"),
                ("t", "out"),
                ("a.errors", "dead"),
                ("t.errors", "dead"),
                ("out.errors", "dead"),
            ],
        )
        .unwrap();
        assert_eq!(
            graph.lanes,
            [
                Lane::Data,
                Lane::Data,
                Lane::Error,
                Lane::Error,
                Lane::Error
            ]
        );
        let cases: Vec<(Result<Graph, GraphError>, &str)> = vec![
            (
                validate(
                    &[("a", Source), ("t", Transform), ("dead", Sink)],
                    &[("a", "t"), ("t.errors", "dead")],
                ),
                "transform `t` has no output: connect it to a downstream stage",
            ),
            (
                validate(
                    &[("a", Source), ("b", Sink)],
                    &[("a", "b"), ("a.errors", "b"), ("a.errors", "b")],
                ),
                "edge a.errors -> b is declared twice",
            ),
            (
                validate(&[("a", Source), ("b", Sink)], &[("nope.errors", "b")]),
                "edge nope.errors -> b names unknown stage `nope`",
            ),
            (
                validate(
                    &[("a", Source), ("t", Transform), ("b", Sink)],
                    &[("a", "t"), ("t", "b"), ("t.errors", "t")],
                ),
                "the flow has a cycle through t -> t",
            ),
        ];
        for (result, expected) in cases {
            assert_eq!(result.unwrap_err().to_string(), expected);
        }
    }
}
