//! The module layering check: inside a crate, each top-level module may use only the modules
//! below it in the crate's module order, so module dependencies are one-way too.
//!
//! The orders are data (`MODULE_ORDERS`). Each `.rs` file under a crate's `src` is mapped to
//! its top-level module, and every path in it that starts at the crate root (see [`scan`]) is
//! checked against the order. Checking a file is a pure function of its path and contents;
//! only [`check_workspace`] reads the file system.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use super::scan;
use crate::error::XtaskError;

/// The top-level modules of one crate, bottom first: each may use only those before it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ModuleOrder {
    /// The crate's package name, for messages.
    pub(crate) krate: &'static str,
    /// Its source directory, workspace-relative.
    pub(crate) src: &'static str,
    /// Its top-level modules, bottom first.
    pub(crate) bottom_up: &'static [&'static str],
    /// Entries of `src` that are no module of the library: its root, binary targets.
    pub(crate) not_modules: &'static [&'static str],
}

/// The module layering of the workspace as data.
///
/// `obzenflow_runtime`: the journal is at the bottom and uses no other module; lifecycle facts
/// and `wait_any` are helpers over the journal port and futures; `supervised_base` is the
/// supervision loop every supervisor runs in; stages are supervised and read and write
/// journals; metrics observe stages (their counters and states); replay re-reads journals
/// through a stage handler; the pipeline builds and runs flows of all of these; the CLI is on
/// top.
pub(crate) const MODULE_ORDERS: &[ModuleOrder] = &[ModuleOrder {
    krate: "obzenflow_runtime",
    src: "obzenflow_runtime/src",
    bottom_up: &[
        "journal",
        "facts",
        "wait_any",
        "supervised_base",
        "stages",
        "metrics",
        "replay",
        "pipeline",
        "cli",
    ],
    not_modules: &["lib.rs", "main.rs", "bin"],
}];

/// A module layering violation, printed one per line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Violation {
    /// A path in `from` names a module at or above it.
    Upward {
        /// Workspace-relative file.
        path: String,
        /// One-based line.
        line: usize,
        /// The file's top-level module.
        from: &'static str,
        /// The module it must not use.
        to: &'static str,
        /// The offending `use` item or path.
        text: String,
    },
    /// A path names something at the crate root that is no module of the order (an item
    /// re-exported at the root, a glob of the root).
    NotAModule {
        /// Workspace-relative file.
        path: String,
        /// One-based line.
        line: usize,
        /// What it names below `crate::`.
        name: String,
        /// The offending `use` item or path.
        text: String,
    },
    /// A top-level module the order does not list.
    UnknownModule {
        /// Its workspace-relative path.
        path: String,
        /// The crate.
        krate: &'static str,
    },
    /// A module the order lists that the crate does not have.
    MissingModule {
        /// Its name.
        name: &'static str,
        /// The crate's source directory.
        src: &'static str,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Upward {
                path,
                line,
                from,
                to,
                text,
            } => write!(
                f,
                "layering: {path}:{line}: {from} must not use {to} ({text})"
            ),
            Self::NotAModule {
                path,
                line,
                name,
                text,
            } => {
                let what = if name == "*" {
                    "a glob of the crate root hides which modules it uses".to_owned()
                } else {
                    format!("crate::{name} is no module of the module order")
                };
                write!(f, "layering: {path}:{line}: {what} ({text})")
            }
            Self::UnknownModule { path, krate } => write!(
                f,
                "layering: {path}: module of {krate} has no place in its module order; add it to xtask/src/layering/modules.rs"
            ),
            Self::MissingModule { name, src } => write!(
                f,
                "layering: module {name} of the module order is missing from {src}"
            ),
        }
    }
}

/// The module path below the crate root of the file at `relative` (a path under `src` with
/// `/` separators): `["metrics", "fsm"]` for `metrics/fsm.rs`, `["metrics"]` for
/// `metrics/mod.rs` and `metrics.rs`.
fn module_path(relative: &str) -> Vec<String> {
    let mut path: Vec<String> = relative
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_owned)
        .collect();
    if path.len() > 1 && path.last().is_some_and(|last| last == "mod") {
        path.pop();
    }
    path
}

/// Checks one file of `order`'s crate. `path` is workspace-relative with `/` separators and
/// lies under `order.src`; a file of no listed module is not checked here.
pub(crate) fn check_file(order: &ModuleOrder, path: &str, contents: &str) -> Vec<Violation> {
    let relative = path
        .strip_prefix(order.src)
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or(path);
    let module_path = module_path(relative);
    let Some(from) = position(order, &module_path[0]) else {
        return Vec::new();
    };
    scan::references(&module_path, contents)
        .into_iter()
        .filter_map(|reference| match position(order, &reference.module) {
            Some(to) if to <= from => None,
            Some(to) => Some(Violation::Upward {
                path: path.to_owned(),
                line: reference.line,
                from: order.bottom_up[from],
                to: order.bottom_up[to],
                text: reference.text,
            }),
            None => Some(Violation::NotAModule {
                path: path.to_owned(),
                line: reference.line,
                name: reference.module,
                text: reference.text,
            }),
        })
        .collect()
}

/// Where `name` is in the order, bottom first.
fn position(order: &ModuleOrder, name: &str) -> Option<usize> {
    order.bottom_up.iter().position(|module| *module == name)
}

/// Modules found under `src` that the order does not list, and listed ones not found.
/// `entries` are the names directly under `src` (files with their `.rs`).
pub(crate) fn membership_violations(order: &ModuleOrder, entries: &[String]) -> Vec<Violation> {
    let modules: Vec<&str> = entries
        .iter()
        .filter(|entry| !order.not_modules.contains(&entry.as_str()))
        .map(|entry| entry.trim_end_matches(".rs"))
        .collect();
    let unknown = entries
        .iter()
        .filter(|entry| !order.not_modules.contains(&entry.as_str()))
        .filter(|entry| position(order, entry.trim_end_matches(".rs")).is_none())
        .map(|entry| Violation::UnknownModule {
            path: format!("{}/{entry}", order.src),
            krate: order.krate,
        });
    let missing = order
        .bottom_up
        .iter()
        .filter(|name| !modules.contains(name))
        .map(|name| Violation::MissingModule {
            name,
            src: order.src,
        });
    unknown.chain(missing).collect()
}

/// Checks every crate of [`MODULE_ORDERS`] under the workspace `root`; returns the
/// violations and how many files were scanned.
pub(crate) fn check_workspace(root: &Path) -> Result<(Vec<Violation>, usize), XtaskError> {
    let mut violations = Vec::new();
    let mut scanned = 0;
    for order in MODULE_ORDERS {
        let src = root.join(order.src);
        let mut entries = read_names(&src)?;
        entries.sort();
        violations.extend(membership_violations(order, &entries));
        let mut files = Vec::new();
        for entry in entries
            .iter()
            .filter(|entry| !order.not_modules.contains(&entry.as_str()))
        {
            collect_rust_files(&src.join(entry), &mut files)?;
        }
        files.sort();
        for file in &files {
            let contents = fs::read_to_string(file).map_err(|source| XtaskError::Io {
                path: file.clone(),
                source,
            })?;
            violations.extend(check_file(order, &relative_path(root, file), &contents));
        }
        scanned += files.len();
    }
    Ok((violations, scanned))
}

/// The names of the entries of `directory`.
fn read_names(directory: &Path) -> Result<Vec<String>, XtaskError> {
    let io_error = |source| XtaskError::Io {
        path: directory.to_owned(),
        source,
    };
    fs::read_dir(directory)
        .map_err(io_error)?
        .map(|entry| {
            let entry = entry.map_err(io_error)?;
            Ok(entry.file_name().to_string_lossy().into_owned())
        })
        .collect()
}

/// `path` itself if it is a `.rs` file, else every `.rs` file under it.
fn collect_rust_files(path: &Path, files: &mut Vec<PathBuf>) -> Result<(), XtaskError> {
    if !path.is_dir() {
        if path.extension().is_some_and(|extension| extension == "rs") {
            files.push(path.to_owned());
        }
        return Ok(());
    }
    for name in read_names(path)? {
        collect_rust_files(&path.join(name), files)?;
    }
    Ok(())
}

/// `path` relative to `root`, with `/` separators on every platform.
fn relative_path(root: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(root).unwrap_or(path);
    let components: Vec<_> = relative
        .components()
        .map(|component| component.as_os_str().to_string_lossy())
        .collect();
    components.join("/")
}

/// What the module check covers, for the summary line: `9 modules of obzenflow_runtime`.
pub(crate) fn summary() -> String {
    let orders: Vec<String> = MODULE_ORDERS
        .iter()
        .map(|order| format!("{} modules of {}", order.bottom_up.len(), order.krate))
        .collect();
    orders.join(", ")
}

/// The order of `order`'s modules, for the line printed after its violations.
pub(crate) fn describe(order: &ModuleOrder) -> String {
    format!(
        "layering: {} modules, bottom first: {}; each may use only those before it",
        order.krate,
        order.bottom_up.join(" < ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The runtime's order, as the check uses it.
    const RUNTIME: &ModuleOrder = &MODULE_ORDERS[0];

    fn messages(path: &str, contents: &str) -> Vec<String> {
        check_file(RUNTIME, path, contents)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn an_upward_use_is_reported_with_file_line_and_item() {
        let contents = "//! Core.\n\nuse std::sync::Arc;\n\nuse super::reader::CoreReader;\nuse crate::metrics::backpressure::BackpressureWait;\n";
        assert_eq!(
            messages("obzenflow_runtime/src/journal/core.rs", contents),
            ["layering: obzenflow_runtime/src/journal/core.rs:6: journal must not use metrics (use crate::metrics::backpressure::BackpressureWait;)"]
        );
    }

    #[test]
    fn downward_and_own_module_uses_are_allowed() {
        let contents = "//! Outputs.\nuse crate::journal::MemoryJournal;\nuse crate::stages::StageKind;\nuse crate::{facts::seal, wait_any::wait_any};\nuse super::counters::StageCounters;\n";
        assert_eq!(
            messages("obzenflow_runtime/src/stages/outputs.rs", contents),
            Vec::<String>::new()
        );
    }

    #[test]
    fn only_the_upward_entries_of_a_group_are_reported() {
        let contents = "//! Supervisor.\nuse crate::{\n    journal::RunLock,\n    replay::{ReplayError, ReplayRequest},\n    stages::StageState,\n};\n";
        assert_eq!(
            messages("obzenflow_runtime/src/metrics/aggregator.rs", contents),
            ["layering: obzenflow_runtime/src/metrics/aggregator.rs:4: metrics must not use replay (use crate::{journal::RunLock, replay::{ReplayError, ReplayRequest}, stages::StageState};)"]
        );
    }

    #[test]
    fn a_fully_qualified_path_in_code_is_reported_but_a_doc_link_is_not() {
        let contents = "//! See [`FlowHandle`](crate::pipeline::FlowHandle).\n/// Also [`crate::pipeline`].\nfn f() {\n    let _ = crate::pipeline::Journals::memory();\n}\n";
        assert_eq!(
            messages("obzenflow_runtime/src/metrics/mod.rs", contents),
            ["layering: obzenflow_runtime/src/metrics/mod.rs:4: metrics must not use pipeline (crate::pipeline::Journals::memory)"]
        );
    }

    #[test]
    fn a_super_chain_out_of_the_module_is_checked_like_crate() {
        let contents = "//! Fsm.\n#[cfg(test)]\nmod tests {\n    fn f() { super::super::collector::fold(); }\n    fn g() { super::super::super::pipeline::go(); }\n}\n";
        assert_eq!(
            messages("obzenflow_runtime/src/metrics/fsm.rs", contents),
            ["layering: obzenflow_runtime/src/metrics/fsm.rs:5: metrics must not use pipeline (super::super::super::pipeline::go)"]
        );
    }

    #[test]
    fn names_at_the_root_that_are_no_module_are_reported() {
        let contents = "//! Cli.\nuse crate::Reexported;\nuse crate::*;\n";
        assert_eq!(
            messages("obzenflow_runtime/src/cli/mod.rs", contents),
            [
                "layering: obzenflow_runtime/src/cli/mod.rs:2: crate::Reexported is no module of the module order (use crate::Reexported;)",
                "layering: obzenflow_runtime/src/cli/mod.rs:3: a glob of the crate root hides which modules it uses (use crate::*;)",
            ]
        );
    }

    #[test]
    fn top_level_files_map_to_their_module() {
        let contents = "//! Facts.\nuse crate::stages::StageKind;\n";
        assert_eq!(
            messages("obzenflow_runtime/src/facts.rs", contents),
            ["layering: obzenflow_runtime/src/facts.rs:2: facts must not use stages (use crate::stages::StageKind;)"]
        );
        assert_eq!(module_path("journal/mod.rs"), ["journal"]);
        assert_eq!(module_path("journal/core.rs"), ["journal", "core"]);
        assert_eq!(module_path("wait_any.rs"), ["wait_any"]);
    }

    #[test]
    fn unknown_and_missing_modules_are_reported() {
        let mut entries: Vec<String> = RUNTIME
            .bottom_up
            .iter()
            .filter(|name| **name != "replay")
            .map(|name| (*name).to_owned())
            .collect();
        entries.extend(["lib.rs", "bin", "extra.rs", "facts.rs"].map(str::to_owned));
        entries.retain(|entry| entry != "facts");
        let messages: Vec<String> = membership_violations(RUNTIME, &entries)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            messages,
            [
                "layering: obzenflow_runtime/src/extra.rs: module of obzenflow_runtime has no place in its module order; add it to xtask/src/layering/modules.rs",
                "layering: module replay of the module order is missing from obzenflow_runtime/src",
            ]
        );
    }

    #[test]
    fn every_module_appears_once_in_each_order() {
        for order in MODULE_ORDERS {
            for (index, name) in order.bottom_up.iter().enumerate() {
                assert_eq!(
                    position(order, name),
                    Some(index),
                    "{name} in {}",
                    order.krate
                );
            }
        }
    }
}
