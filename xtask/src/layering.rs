//! The layering check: the dependency graph from `cargo metadata` must respect
//! core <- fsm <- runtime <- stages <- examples, with tokio kept out of core and fsm; and inside
//! the runtime, each top-level module may use only the modules below it ([`modules`]).
//!
//! The rules are data (`RULES`, `modules::MODULE_ORDERS`); the crate check is a pure function
//! of the metadata JSON so it can be unit-tested on hand-written graphs, and the module check
//! one of each file's path and contents.

mod modules;
mod scan;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt;

use serde_json::Value;

use crate::cmd;
use crate::error::XtaskError;

/// Every workspace crate, by package name. A crate missing here or in the workspace is reported,
/// so the rules cannot silently fall out of date.
const WORKSPACE_CRATES: &[&str] = &[
    "obzenflow_core",
    "obzenflow_fsm",
    "obzenflow_runtime",
    "obzenflow_stages",
    "obzenflow_examples",
    "xtask",
];

/// A set of packages a rule applies to.
#[derive(Clone, Copy, Debug)]
enum Crates {
    /// Packages with one of these names.
    Named(&'static [&'static str]),
    /// Every workspace member.
    Workspace,
}

/// How far from the depending crate a rule looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reach {
    /// Only the crate's own dependency declarations.
    Direct,
    /// Everything reachable through normal and build dependencies.
    Transitive,
}

/// One layering rule: no crate in `from` may depend on a crate in `to`.
#[derive(Clone, Copy, Debug)]
struct Rule {
    /// The depending crates.
    from: Crates,
    /// The forbidden dependencies.
    to: Crates,
    /// Direct edges only, or the transitive closure.
    reach: Reach,
    /// Whether dev-dependencies count too (normal and build dependencies always do).
    include_dev: bool,
}

/// The layering of the workspace as data.
const RULES: &[Rule] = &[
    Rule {
        from: Crates::Named(&["obzenflow_core"]),
        to: Crates::Named(&["tokio"]),
        reach: Reach::Transitive,
        include_dev: false,
    },
    Rule {
        from: Crates::Named(&["obzenflow_core"]),
        to: Crates::Workspace,
        reach: Reach::Direct,
        include_dev: false,
    },
    Rule {
        from: Crates::Named(&["obzenflow_fsm"]),
        to: Crates::Named(&["tokio"]),
        reach: Reach::Transitive,
        include_dev: false,
    },
    Rule {
        from: Crates::Named(&["obzenflow_fsm"]),
        to: Crates::Named(&[
            "obzenflow_runtime",
            "obzenflow_stages",
            "obzenflow_examples",
        ]),
        reach: Reach::Direct,
        include_dev: false,
    },
    Rule {
        from: Crates::Named(&["obzenflow_runtime"]),
        to: Crates::Named(&["obzenflow_stages", "obzenflow_examples"]),
        reach: Reach::Direct,
        include_dev: false,
    },
    Rule {
        from: Crates::Named(&["obzenflow_stages"]),
        to: Crates::Named(&["obzenflow_examples"]),
        reach: Reach::Direct,
        include_dev: false,
    },
    Rule {
        from: Crates::Workspace,
        to: Crates::Named(&["xtask"]),
        reach: Reach::Direct,
        include_dev: true,
    },
    Rule {
        from: Crates::Named(&["xtask"]),
        to: Crates::Workspace,
        reach: Reach::Direct,
        include_dev: true,
    },
];

/// A dependency kind as `cargo metadata` spells it in `dep_kinds`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum DepKind {
    /// `kind: null`: a `[dependencies]` entry.
    Normal,
    /// `kind: "build"`: a `[build-dependencies]` entry.
    Build,
    /// `kind: "dev"`: a `[dev-dependencies]` entry.
    Dev,
}

impl DepKind {
    /// Parses one `dep_kinds[].kind` value.
    fn from_json(kind: &Value) -> Result<Self, XtaskError> {
        match kind {
            Value::Null => Ok(Self::Normal),
            Value::String(kind) if kind == "build" => Ok(Self::Build),
            Value::String(kind) if kind == "dev" => Ok(Self::Dev),
            _ => Err(XtaskError::MetadataShape {
                field: "resolve.nodes[].deps[].dep_kinds[].kind",
            }),
        }
    }

    /// The word used in violation messages.
    fn label(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Build => "build",
            Self::Dev => "dev",
        }
    }
}

/// A layering violation, printed one per line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Violation {
    /// A forbidden dependency edge or path.
    Dependency {
        /// Package names from the depending crate to the forbidden one.
        path: Vec<String>,
        /// The kinds of a direct edge; empty for a transitive path.
        kinds: Vec<DepKind>,
    },
    /// A crate the rules name is not a workspace member.
    MissingCrate {
        /// Its package name.
        name: String,
    },
    /// A workspace member the rules do not know about.
    UnknownCrate {
        /// Its package name.
        name: String,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dependency { path, kinds } => {
                let (from, to) = (&path[0], &path[path.len() - 1]);
                let kind = if kinds.is_empty() {
                    "transitive".to_owned()
                } else {
                    kinds.iter().map(|kind| kind.label()).collect::<Vec<_>>().join(" and ")
                };
                let chain = path.join(" -> ");
                write!(f, "layering: {chain} ({kind} dependency): {from} must not depend on {to}")
            }
            Self::MissingCrate { name } => {
                write!(f, "layering: workspace crate {name} is missing from cargo metadata")
            }
            Self::UnknownCrate { name } => write!(
                f,
                "layering: workspace crate {name} has no layering rules; add it to xtask/src/layering.rs"
            ),
        }
    }
}

/// One resolved dependency edge.
#[derive(Debug)]
struct Edge {
    /// Index of the dependency in `Graph::names`.
    to: usize,
    /// The kinds this dependency is declared with.
    kinds: Vec<DepKind>,
}

/// The resolved package graph, packages addressed by index.
#[derive(Debug)]
struct Graph {
    /// Package names.
    names: Vec<String>,
    /// Whether each package is a workspace member.
    in_workspace: Vec<bool>,
    /// Outgoing dependency edges of each package.
    edges: Vec<Vec<Edge>>,
}

/// `value[key]`, or an error naming `key`.
fn field<'a>(value: &'a Value, key: &'static str) -> Result<&'a Value, XtaskError> {
    value
        .get(key)
        .ok_or(XtaskError::MetadataShape { field: key })
}

/// `value[key]` as an array.
pub(crate) fn array<'a>(value: &'a Value, key: &'static str) -> Result<&'a Vec<Value>, XtaskError> {
    field(value, key)?
        .as_array()
        .ok_or(XtaskError::MetadataShape { field: key })
}

/// `value[key]` as a string.
pub(crate) fn string<'a>(value: &'a Value, key: &'static str) -> Result<&'a str, XtaskError> {
    field(value, key)?
        .as_str()
        .ok_or(XtaskError::MetadataShape { field: key })
}

impl Graph {
    /// Builds the graph from `cargo metadata --format-version 1` output (with `resolve`).
    fn from_metadata(metadata: &Value) -> Result<Self, XtaskError> {
        let packages = array(metadata, "packages")?;
        let mut index_of = HashMap::new();
        let mut names = Vec::with_capacity(packages.len());
        for package in packages {
            index_of.insert(string(package, "id")?, names.len());
            names.push(string(package, "name")?.to_owned());
        }
        let lookup = |id: &str| {
            index_of.get(id).copied().ok_or(XtaskError::MetadataShape {
                field: "packages[].id",
            })
        };
        let mut in_workspace = vec![false; names.len()];
        for member in array(metadata, "workspace_members")? {
            let id = member.as_str().ok_or(XtaskError::MetadataShape {
                field: "workspace_members",
            })?;
            in_workspace[lookup(id)?] = true;
        }
        let mut edges: Vec<Vec<Edge>> = names.iter().map(|_| Vec::new()).collect();
        for node in array(field(metadata, "resolve")?, "nodes")? {
            let from = lookup(string(node, "id")?)?;
            for dep in array(node, "deps")? {
                let to = lookup(string(dep, "pkg")?)?;
                let kinds = parse_dep_kinds(dep)?;
                edges[from].push(Edge { to, kinds });
            }
        }
        Ok(Self {
            names,
            in_workspace,
            edges,
        })
    }

    /// Whether package `index` is in `crates`.
    fn is_in(&self, index: usize, crates: Crates) -> bool {
        match crates {
            Crates::Named(names) => names.contains(&self.names[index].as_str()),
            Crates::Workspace => self.in_workspace[index],
        }
    }

    /// Workspace members missing from, or unknown to, `WORKSPACE_CRATES`.
    fn membership_violations(&self) -> Vec<Violation> {
        let members: BTreeSet<&str> = (0..self.names.len())
            .filter(|&index| self.in_workspace[index])
            .map(|index| self.names[index].as_str())
            .collect();
        let missing = WORKSPACE_CRATES
            .iter()
            .filter(|name| !members.contains(*name));
        let unknown = members
            .iter()
            .filter(|name| !WORKSPACE_CRATES.contains(name));
        missing
            .map(|name| Violation::MissingCrate {
                name: (*name).to_owned(),
            })
            .chain(unknown.map(|name| Violation::UnknownCrate {
                name: (*name).to_owned(),
            }))
            .collect()
    }

    /// Violations of `rule` by package `from`.
    fn rule_violations(&self, rule: &Rule, from: usize) -> Vec<Violation> {
        match rule.reach {
            Reach::Direct => self.direct_violations(rule, from),
            Reach::Transitive => self.transitive_violations(rule, from),
        }
    }

    /// Forbidden direct edges out of `from`.
    fn direct_violations(&self, rule: &Rule, from: usize) -> Vec<Violation> {
        let counts = |kind: &&DepKind| rule.include_dev || **kind != DepKind::Dev;
        self.edges[from]
            .iter()
            .filter(|edge| edge.to != from && self.is_in(edge.to, rule.to))
            .filter_map(|edge| {
                let kinds: Vec<DepKind> = edge.kinds.iter().filter(counts).copied().collect();
                let path = vec![self.names[from].clone(), self.names[edge.to].clone()];
                (!kinds.is_empty()).then_some(Violation::Dependency { path, kinds })
            })
            .collect()
    }

    /// Forbidden packages reachable from `from` through normal and build edges, each reported
    /// once with a shortest path. A direct edge is reported with its kinds.
    fn transitive_violations(&self, rule: &Rule, from: usize) -> Vec<Violation> {
        let mut parent: Vec<Option<usize>> = vec![None; self.names.len()];
        let mut seen = vec![false; self.names.len()];
        let mut queue = VecDeque::from([from]);
        seen[from] = true;
        let mut violations = Vec::new();
        while let Some(package) = queue.pop_front() {
            for edge in &self.edges[package] {
                if seen[edge.to] || edge.kinds.iter().all(|kind| *kind == DepKind::Dev) {
                    continue;
                }
                seen[edge.to] = true;
                parent[edge.to] = Some(package);
                queue.push_back(edge.to);
                if self.is_in(edge.to, rule.to) {
                    violations.push(self.path_violation(&parent, edge));
                }
            }
        }
        violations
    }

    /// The violation for reaching `edge.to`, walking `parent` links back to the start.
    fn path_violation(&self, parent: &[Option<usize>], edge: &Edge) -> Violation {
        let mut path = vec![self.names[edge.to].clone()];
        let mut cursor = parent[edge.to];
        while let Some(package) = cursor {
            path.push(self.names[package].clone());
            cursor = parent[package];
        }
        path.reverse();
        let kinds = if path.len() == 2 {
            edge.kinds
                .iter()
                .filter(|kind| **kind != DepKind::Dev)
                .copied()
                .collect()
        } else {
            Vec::new()
        };
        Violation::Dependency { path, kinds }
    }
}

/// Parses `dep_kinds` of one resolved dependency; old cargo without it means a normal edge.
fn parse_dep_kinds(dep: &Value) -> Result<Vec<DepKind>, XtaskError> {
    let Some(dep_kinds) = dep.get("dep_kinds").and_then(Value::as_array) else {
        return Ok(vec![DepKind::Normal]);
    };
    let mut kinds = dep_kinds
        .iter()
        .map(|dep_kind| DepKind::from_json(field(dep_kind, "kind")?))
        .collect::<Result<Vec<_>, _>>()?;
    kinds.sort();
    kinds.dedup();
    Ok(kinds)
}

/// Checks the layering rules against `cargo metadata` JSON; returns every violation, deduplicated.
pub(crate) fn check(metadata: &Value) -> Result<Vec<Violation>, XtaskError> {
    let graph = Graph::from_metadata(metadata)?;
    let mut violations = graph.membership_violations();
    for rule in RULES {
        for from in (0..graph.names.len()).filter(|&index| graph.in_workspace[index]) {
            if graph.is_in(from, rule.from) {
                violations.extend(graph.rule_violations(rule, from));
            }
        }
    }
    let mut seen_paths = BTreeSet::new();
    violations.retain(|violation| match violation {
        Violation::Dependency { path, .. } => seen_paths.insert(path.clone()),
        _ => true,
    });
    Ok(violations)
}

/// `cargo xtask layering`: runs the crate and the module checks on this workspace and prints
/// each violation.
pub(crate) fn run() -> Result<(), XtaskError> {
    // All features, so that optional dependencies are checked too.
    let metadata = cmd::cargo_metadata(&["--all-features"])?;
    let violations = check(&metadata)?;
    for violation in &violations {
        eprintln!("{violation}");
    }
    let (module_violations, files) = modules::check_workspace(cmd::workspace_root())?;
    for violation in &module_violations {
        eprintln!("{violation}");
    }
    if !module_violations.is_empty() {
        for order in modules::MODULE_ORDERS {
            eprintln!("{}", modules::describe(order));
        }
    }
    let count = violations.len() + module_violations.len();
    if count == 0 {
        println!(
            "layering: {} workspace crates, {} crate rules; {} in {files} files; no violations",
            WORKSPACE_CRATES.len(),
            RULES.len(),
            modules::summary(),
        );
        Ok(())
    } else {
        Err(XtaskError::Violations {
            check: "layering",
            count,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Metadata for the six workspace crates plus `edges` as (from, to, kind) with kind
    /// "normal", "dev" or "build"; any name not in the workspace becomes a registry package.
    fn metadata(edges: &[(&str, &str, &str)]) -> Value {
        let id = |name: &str| {
            if WORKSPACE_CRATES.contains(&name) {
                format!("path+file:///ws/{name}#0.1.0")
            } else {
                format!("registry+https://github.com/rust-lang/crates.io-index#{name}@1.0.0")
            }
        };
        let mut names: BTreeSet<&str> = WORKSPACE_CRATES.iter().copied().collect();
        names.extend(edges.iter().flat_map(|(from, to, _)| [*from, *to]));
        let packages: Vec<Value> = names
            .iter()
            .map(|name| json!({ "id": id(name), "name": name }))
            .collect();
        let nodes: Vec<Value> = names
            .iter()
            .map(|name| {
                let deps: Vec<Value> = edges
                    .iter()
                    .filter(|(from, _, _)| from == name)
                    .map(|(_, to, kind)| {
                        let kind = if *kind == "normal" { Value::Null } else { json!(kind) };
                        json!({ "name": to, "pkg": id(to), "dep_kinds": [{ "kind": kind, "target": null }] })
                    })
                    .collect();
                json!({ "id": id(name), "deps": deps })
            })
            .collect();
        let members: Vec<String> = WORKSPACE_CRATES.iter().map(|name| id(name)).collect();
        json!({ "packages": packages, "workspace_members": members, "resolve": { "nodes": nodes } })
    }

    /// The printed form of every violation.
    fn messages(metadata: &Value) -> Vec<String> {
        check(metadata)
            .expect("metadata parses")
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// The intended layering, with tokio where it belongs and dev-only where it is allowed.
    const CLEAN: &[(&str, &str, &str)] = &[
        ("obzenflow_fsm", "obzenflow_core", "normal"),
        ("obzenflow_fsm", "tokio", "dev"),
        ("obzenflow_runtime", "obzenflow_core", "normal"),
        ("obzenflow_runtime", "obzenflow_fsm", "normal"),
        ("obzenflow_runtime", "tokio", "normal"),
        ("obzenflow_stages", "obzenflow_runtime", "normal"),
        ("obzenflow_examples", "obzenflow_stages", "normal"),
        ("xtask", "serde_json", "normal"),
    ];

    #[test]
    fn clean_graph_has_no_violations() {
        assert_eq!(messages(&metadata(CLEAN)), Vec::<String>::new());
    }

    #[test]
    fn tokio_in_core_names_the_edge() {
        let mut edges = CLEAN.to_vec();
        edges.push(("obzenflow_core", "tokio", "normal"));
        assert_eq!(
            messages(&metadata(&edges)),
            [
                "layering: obzenflow_core -> tokio (normal dependency): obzenflow_core must not depend on tokio",
                "layering: obzenflow_fsm -> obzenflow_core -> tokio (transitive dependency): obzenflow_fsm must not depend on tokio",
            ]
        );
    }

    #[test]
    fn transitive_tokio_in_core_names_the_path() {
        let mut edges = CLEAN.to_vec();
        edges.push(("obzenflow_core", "tokio-util", "normal"));
        edges.push(("tokio-util", "tokio", "normal"));
        assert_eq!(
            messages(&metadata(&edges)),
            [
                "layering: obzenflow_core -> tokio-util -> tokio (transitive dependency): obzenflow_core must not depend on tokio",
                "layering: obzenflow_fsm -> obzenflow_core -> tokio-util -> tokio (transitive dependency): obzenflow_fsm must not depend on tokio",
            ]
        );
    }

    #[test]
    fn dev_dependencies_count_only_for_xtask_rules() {
        let mut edges = CLEAN.to_vec();
        edges.push(("obzenflow_core", "tokio", "dev"));
        edges.push(("obzenflow_runtime", "obzenflow_stages", "dev"));
        assert_eq!(messages(&metadata(&edges)), Vec::<String>::new());
        edges.push(("obzenflow_stages", "xtask", "dev"));
        assert_eq!(
            messages(&metadata(&edges)),
            ["layering: obzenflow_stages -> xtask (dev dependency): obzenflow_stages must not depend on xtask"]
        );
    }

    #[test]
    fn upward_edges_are_reported_once_each() {
        let mut edges = CLEAN.to_vec();
        edges.push(("obzenflow_core", "obzenflow_fsm", "build"));
        edges.push(("obzenflow_runtime", "obzenflow_stages", "normal"));
        edges.push(("obzenflow_core", "xtask", "normal"));
        edges.push(("xtask", "obzenflow_core", "normal"));
        assert_eq!(
            messages(&metadata(&edges)),
            [
                "layering: obzenflow_core -> obzenflow_fsm (build dependency): obzenflow_core must not depend on obzenflow_fsm",
                "layering: obzenflow_core -> xtask (normal dependency): obzenflow_core must not depend on xtask",
                "layering: obzenflow_runtime -> obzenflow_stages (normal dependency): obzenflow_runtime must not depend on obzenflow_stages",
                "layering: xtask -> obzenflow_core (normal dependency): xtask must not depend on obzenflow_core",
            ]
        );
    }

    #[test]
    fn unknown_and_missing_workspace_crates_are_reported() {
        let mut metadata = metadata(CLEAN);
        let members = metadata["workspace_members"]
            .as_array_mut()
            .expect("members array");
        members.retain(|id| {
            !id.as_str()
                .is_some_and(|id| id.contains("obzenflow_stages"))
        });
        members.push(json!(
            "registry+https://github.com/rust-lang/crates.io-index#tokio@1.0.0"
        ));
        assert_eq!(
            messages(&metadata),
            [
                "layering: workspace crate obzenflow_stages is missing from cargo metadata",
                "layering: workspace crate tokio has no layering rules; add it to xtask/src/layering.rs",
            ]
        );
    }

    /// A literal excerpt in the exact shape cargo prints, with core reaching tokio.
    const LITERAL_METADATA: &str = r#"{
      "packages": [
        { "id": "path+file:///ws/obzenflow_core#0.1.0", "name": "obzenflow_core" },
        { "id": "path+file:///ws/obzenflow_fsm#0.1.0", "name": "obzenflow_fsm" },
        { "id": "path+file:///ws/obzenflow_runtime#0.1.0", "name": "obzenflow_runtime" },
        { "id": "path+file:///ws/obzenflow_stages#0.1.0", "name": "obzenflow_stages" },
        { "id": "path+file:///ws/examples#obzenflow_examples@0.1.0", "name": "obzenflow_examples" },
        { "id": "path+file:///ws/xtask#0.1.0", "name": "xtask" },
        { "id": "registry+https://github.com/rust-lang/crates.io-index#tokio@1.47.0", "name": "tokio" }
      ],
      "workspace_members": [
        "path+file:///ws/obzenflow_core#0.1.0",
        "path+file:///ws/obzenflow_fsm#0.1.0",
        "path+file:///ws/obzenflow_runtime#0.1.0",
        "path+file:///ws/obzenflow_stages#0.1.0",
        "path+file:///ws/examples#obzenflow_examples@0.1.0",
        "path+file:///ws/xtask#0.1.0"
      ],
      "resolve": { "root": null, "nodes": [
        { "id": "path+file:///ws/obzenflow_core#0.1.0", "dependencies": [], "features": [], "deps": [
          { "name": "tokio", "pkg": "registry+https://github.com/rust-lang/crates.io-index#tokio@1.47.0",
            "dep_kinds": [ { "kind": null, "target": null }, { "kind": "dev", "target": null } ] }
        ] },
        { "id": "path+file:///ws/obzenflow_fsm#0.1.0", "dependencies": [], "features": [], "deps": [
          { "name": "obzenflow_core", "pkg": "path+file:///ws/obzenflow_core#0.1.0",
            "dep_kinds": [ { "kind": null, "target": null } ] }
        ] }
      ] }
    }"#;

    #[test]
    fn literal_metadata_reports_direct_and_inherited_tokio() {
        let metadata: Value = serde_json::from_str(LITERAL_METADATA).expect("valid JSON");
        assert_eq!(
            messages(&metadata),
            [
                "layering: obzenflow_core -> tokio (normal dependency): obzenflow_core must not depend on tokio",
                "layering: obzenflow_fsm -> obzenflow_core -> tokio (transitive dependency): obzenflow_fsm must not depend on tokio",
            ]
        );
    }

    #[test]
    fn metadata_without_resolve_is_an_error() {
        let result = check(&json!({ "packages": [], "workspace_members": [] }));
        assert!(matches!(
            result,
            Err(XtaskError::MetadataShape { field: "resolve" })
        ));
    }
}
