//! The packaging check: every library crate is ready to publish on its own, as a user depends
//! on it one crate at a time.
//!
//! Which crates are libraries comes from `cargo metadata`: every workspace member except those
//! named in `UNPUBLISHED`, which must say `publish = false`. So a new crate is packaged unless it
//! is listed there. First, each library's manifest is checked: the metadata crates.io shows
//! (description, license, repository, documentation, readme, keywords, categories), docs.rs
//! settings for a crate with features, and dependencies on other library crates pinned to their
//! exact release. Then `cargo package` packages every library with every feature and verifies
//! each package by building it on its own, the other libraries coming from their packages
//! (cargo's local overlay registry), never from the workspace or crates.io. A warning from that
//! command fails the check, except for the tests and benchmarks it leaves out as intended.
//!
//! The manifest rules are a pure function of the metadata JSON, unit-tested on hand-written
//! manifests; only `run` reads files and runs cargo.

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::cmd;
use crate::error::XtaskError;
use crate::layering::{array, string};

/// Workspace members that are never published; each must set `publish = false`. Every other
/// member is a library crate.
const UNPUBLISHED: &[&str] = &["obzenflow_examples", "xtask"];

/// Manifest fields every library crate sets, as `cargo metadata` names them.
const REQUIRED_FIELDS: &[&str] = &[
    "description",
    "license",
    "repository",
    "documentation",
    "readme",
    "rust_version",
];

/// crates.io takes at most this many keywords, and at most this many categories.
const MAX_KEYWORDS: usize = 5;
/// crates.io's longest keyword.
const MAX_KEYWORD_CHARS: usize = 20;
/// crates.io takes at most this many categories.
const MAX_CATEGORIES: usize = 5;

/// The crate attribute that labels feature-gated items on docs.rs (`--cfg docsrs`); without
/// `docsrs`, on stable, it is nothing.
const DOC_CFG_ATTRIBUTE: &str = "#![cfg_attr(docsrs, feature(doc_cfg))]";

/// What `cargo package` prints for a target its package leaves out (tests and benchmarks stay
/// in the repository), before and after the target.
const LEFT_OUT: (&str, &str) = (
    "warning: ignoring ",
    " is not included in the published package",
);
/// What cargo prints before retrying a failed download; the retry decides.
const NETWORK_RETRY: &str = "warning: spurious network error";

/// The library crates to package, and what is wrong with the manifests.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Library crates by package name, in `cargo metadata` order.
    pub(crate) libraries: Vec<String>,
    /// One message per broken rule.
    pub(crate) violations: Vec<String>,
}

/// `package[key]` as a non-empty string, if it is one.
fn text<'a>(package: &'a Value, key: &str) -> Option<&'a str> {
    package[key]
        .as_str()
        .filter(|value| !value.trim().is_empty())
}

/// `package[key]` as a list of strings; absent or mistyped reads as empty.
fn strings<'a>(package: &'a Value, key: &str) -> Vec<&'a str> {
    package[key]
        .as_array()
        .map(|values| values.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Whether `keyword` is one crates.io accepts: ASCII, starting with a letter or digit, then
/// letters, digits, `_`, `-` or `+`, at most `MAX_KEYWORD_CHARS` long.
fn valid_keyword(keyword: &str) -> bool {
    let mut chars = keyword.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'))
        && keyword.len() <= MAX_KEYWORD_CHARS
}

/// The violations of the crates.io metadata rules by library `name`.
fn metadata_violations(name: &str, package: &Value) -> Vec<String> {
    let mut violations: Vec<String> = REQUIRED_FIELDS
        .iter()
        .filter(|key| text(package, key).is_none())
        .map(|key| format!("package: {name} sets no `{}`", key.replace('_', "-")))
        .collect();
    let docs = format!("https://docs.rs/{name}");
    if let Some(documentation) = text(package, "documentation").filter(|url| *url != docs) {
        violations.push(format!(
            "package: {name} has documentation = \"{documentation}\"; its docs are at {docs}"
        ));
    }
    let keywords = strings(package, "keywords");
    if keywords.is_empty() || keywords.len() > MAX_KEYWORDS {
        violations.push(format!(
            "package: {name} has {} keywords; crates.io takes 1 to {MAX_KEYWORDS}",
            keywords.len()
        ));
    }
    violations.extend(
        keywords
            .iter()
            .filter(|keyword| !valid_keyword(keyword))
            .map(|keyword| {
                format!(
                    "package: {name} has keyword `{keyword}`; crates.io takes ASCII letters, \
                     digits, `_`, `-` and `+`, at most {MAX_KEYWORD_CHARS}, starting with a \
                     letter or digit"
                )
            }),
    );
    let categories = strings(package, "categories").len();
    if categories == 0 || categories > MAX_CATEGORIES {
        violations.push(format!(
            "package: {name} has {categories} categories; crates.io takes 1 to {MAX_CATEGORIES}"
        ));
    }
    violations
}

/// The violations of the docs.rs rule by library `name`, whose `src/lib.rs` reads `lib`: a crate
/// with features is documented with them (`all-features` or `features`) under `--cfg docsrs`,
/// and its crate root enables `doc_cfg` there, so each feature-gated item is labelled.
fn docs_rs_violations(name: &str, package: &Value, lib: &str) -> Vec<String> {
    let has_features = package["features"]
        .as_object()
        .is_some_and(|features| !features.is_empty());
    if !has_features {
        return Vec::new();
    }
    let docs_rs = &package["metadata"]["docs"]["rs"];
    let mut violations = Vec::new();
    let documents_features =
        docs_rs["all-features"] == Value::Bool(true) || !strings(docs_rs, "features").is_empty();
    if !documents_features {
        violations.push(format!(
            "package: {name} has features but its [package.metadata.docs.rs] sets neither \
             `all-features = true` nor `features`"
        ));
    }
    let args = strings(docs_rs, "rustdoc-args");
    if !args.windows(2).any(|pair| pair == ["--cfg", "docsrs"]) {
        violations.push(format!(
            "package: {name} has features but its [package.metadata.docs.rs] rustdoc-args lack \
             \"--cfg\", \"docsrs\""
        ));
    }
    if !lib.lines().any(|line| line.trim() == DOC_CFG_ATTRIBUTE) {
        violations.push(format!(
            "package: {name} has features but src/lib.rs lacks `{DOC_CFG_ATTRIBUTE}`"
        ));
    }
    violations
}

/// The violations of the pinning rule by library `name`: a dependency on another library crate
/// asks for exactly that crate's release (`=version`), so the package depends on the release it
/// was verified with, whatever else crates.io holds under that name.
fn pin_violations(name: &str, package: &Value, versions: &[(&str, &str)]) -> Vec<String> {
    let dependencies = package["dependencies"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    dependencies
        .iter()
        .filter_map(|dependency| {
            let dependency_name = dependency["name"].as_str()?;
            let (_, version) = versions.iter().find(|(lib, _)| *lib == dependency_name)?;
            let req = dependency["req"].as_str().unwrap_or("*");
            (req != format!("={version}")).then(|| {
                format!(
                    "package: {name} depends on {dependency_name} `{req}`; pin it to the \
                     workspace release, `={version}`"
                )
            })
        })
        .collect()
}

/// Checks the manifests of every workspace member in `metadata` (`cargo metadata
/// --format-version 1`, `--no-deps` is enough); `lib_source` gives the contents of a library's
/// crate root, from its `lib` target's `src_path`.
pub(crate) fn check(
    metadata: &Value,
    lib_source: &dyn Fn(&str) -> Result<String, XtaskError>,
) -> Result<Plan, XtaskError> {
    let members: BTreeSet<&str> = array(metadata, "workspace_members")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut plan = Plan::default();
    let mut libraries = Vec::new();
    let mut names = BTreeSet::new();
    for package in array(metadata, "packages")? {
        if !members.contains(string(package, "id")?) {
            continue;
        }
        let name = string(package, "name")?;
        names.insert(name);
        let never_published = package["publish"].as_array().is_some_and(Vec::is_empty);
        match (UNPUBLISHED.contains(&name), never_published) {
            (true, true) => {}
            (true, false) => plan.violations.push(format!(
                "package: {name} is never published and must set `publish = false`"
            )),
            (false, true) => plan.violations.push(format!(
                "package: {name} sets `publish = false`; a library crate is published (if it \
                 is not a library, add it to UNPUBLISHED in xtask/src/package.rs)"
            )),
            (false, false) => libraries.push((name, package)),
        }
    }
    plan.violations.extend(
        UNPUBLISHED
            .iter()
            .filter(|name| !names.contains(*name))
            .map(|name| format!("package: {name} is in UNPUBLISHED but not a workspace member")),
    );
    let versions = libraries
        .iter()
        .map(|(name, package)| Ok((*name, string(package, "version")?)))
        .collect::<Result<Vec<_>, XtaskError>>()?;
    for (name, package) in &libraries {
        let lib = lib_src_path(package).map_or(Ok(String::new()), lib_source)?;
        plan.violations.extend(metadata_violations(name, package));
        plan.violations
            .extend(docs_rs_violations(name, package, &lib));
        plan.violations
            .extend(pin_violations(name, package, &versions));
        plan.libraries.push((*name).to_owned());
    }
    Ok(plan)
}

/// The `src_path` of the package's `lib` target, if it has one.
fn lib_src_path(package: &Value) -> Option<&str> {
    package["targets"].as_array()?.iter().find_map(|target| {
        let is_lib = target["kind"]
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|kind| kind == "lib"));
        is_lib.then(|| target["src_path"].as_str()).flatten()
    })
}

/// How `run` treats one line `cargo package` writes to stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Line {
    /// A target the package leaves out, as intended: counted, not shown.
    LeftOut,
    /// Any other warning: shown, and it fails the check.
    Warning,
    /// Progress, a network retry, an error: shown.
    Other,
}

/// Classifies one stderr line of `cargo package`.
fn classify(line: &str) -> Line {
    let (before, after) = LEFT_OUT;
    if line.starts_with(before) && line.ends_with(after) {
        Line::LeftOut
    } else if line.starts_with("warning") && !line.starts_with(NETWORK_RETRY) {
        Line::Warning
    } else {
        Line::Other
    }
}

/// `cargo package` for `libraries`: every feature, verified, the lock file kept as it is. The
/// work tree is packaged as it stands (`--allow-dirty`): the check is about the packages, the
/// same tree the other steps test, not about what git has committed.
fn package_command(libraries: &[String]) -> Command {
    let mut command = cmd::cargo(["package", "--locked", "--allow-dirty", "--all-features"]);
    for library in libraries {
        command.args(["-p", library]);
    }
    // Plain text, so warnings are recognised whatever the terminal.
    command.env("CARGO_TERM_COLOR", "never");
    command
}

/// Runs `command`, echoing its stderr but the left-out targets, and fails unless it exits
/// successfully without warnings.
fn run_package(command: &mut Command) -> Result<(), XtaskError> {
    let described = cmd::describe(command);
    let spawn_error = |source| XtaskError::Spawn {
        command: described.clone(),
        source,
    };
    let mut child = command
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_error)?;
    let (mut left_out, mut warnings) = (0, 0);
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines() {
            let line = line.map_err(spawn_error)?;
            match classify(&line) {
                Line::LeftOut => left_out += 1,
                Line::Warning => {
                    warnings += 1;
                    eprintln!("{line}");
                }
                Line::Other => eprintln!("{line}"),
            }
        }
    }
    let status = child.wait().map_err(spawn_error)?;
    println!("package: {left_out} test and bench targets stay in the repository, as intended");
    if !status.success() {
        return Err(XtaskError::CommandFailed {
            command: described,
            status,
        });
    }
    if warnings > 0 {
        eprintln!("package: a library crate's package must build without warnings");
        return Err(XtaskError::Violations {
            check: "package",
            count: warnings,
        });
    }
    Ok(())
}

/// `cargo xtask package`: checks the library manifests, then packages and verifies every library.
pub(crate) fn run() -> Result<(), XtaskError> {
    let metadata = cmd::cargo_metadata(&["--no-deps"])?;
    let read = |path: &str| {
        let path = PathBuf::from(path);
        fs::read_to_string(&path).map_err(|source| XtaskError::Io { path, source })
    };
    let plan = check(&metadata, &read)?;
    for violation in &plan.violations {
        eprintln!("{violation}");
    }
    if !plan.violations.is_empty() {
        return Err(XtaskError::Violations {
            check: "package",
            count: plan.violations.len(),
        });
    }
    println!(
        "package: {} library crates: {}",
        plan.libraries.len(),
        plan.libraries.join(", ")
    );
    let target = metadata["target_directory"].as_str().map(PathBuf::from);
    let verify_dir = target
        .as_deref()
        .map(|target| target.join("package-verify"));
    forget_earlier_packages(&plan.libraries, target.as_deref(), verify_dir.as_deref())?;
    let mut command = package_command(&plan.libraries);
    if let Some(verify_dir) = &verify_dir {
        command.arg("--target-dir").arg(verify_dir);
    }
    println!("package: {}", cmd::describe(&command));
    run_package(&mut command)
}

/// Removes what earlier `cargo package` runs left of these libraries: the packages and their
/// verification builds (`<target>/package`), and what cargo unpacked of them into its source
/// cache. Verifying a package builds it against the other libraries' packages, which cargo
/// serves from a temporary local registry, unpacks under
/// `$CARGO_HOME/registry/src/-<hash>/<name>-<version>` and builds as registry crates; it
/// unpacks and builds a name and version only once, so without this a library that changed
/// since the last run but kept its version is verified against its old code. Only those
/// local registries (`-<hash>`) are touched, never crates.io's. The verification builds go to
/// a target directory of their own (`verify_dir`), where the build records of these libraries
/// are removed so they are rebuilt and their dependencies are not.
fn forget_earlier_packages(
    libraries: &[String],
    target: Option<&Path>,
    verify_dir: Option<&Path>,
) -> Result<(), XtaskError> {
    let remove =
        |path: PathBuf| fs::remove_dir_all(&path).map_err(|source| XtaskError::Io { path, source });
    let ours = |name: &str| {
        libraries.iter().any(|library| {
            name.strip_prefix(library.as_str())
                .is_some_and(|rest| rest.starts_with('-'))
        })
    };
    if let Some(packages) = target.map(|target| target.join("package")) {
        if packages.exists() {
            remove(packages)?;
        }
    }
    if let Some(fingerprints) = verify_dir.map(|dir| dir.join("debug").join(".fingerprint")) {
        for entry in fs::read_dir(fingerprints).into_iter().flatten().flatten() {
            if ours(&entry.file_name().to_string_lossy()) {
                remove(entry.path())?;
            }
        }
    }
    let cargo_home = match std::env::var_os("CARGO_HOME") {
        Some(home) => PathBuf::from(home),
        None => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(".cargo"),
            None => return Ok(()),
        },
    };
    let Ok(registries) = fs::read_dir(cargo_home.join("registry").join("src")) else {
        return Ok(());
    };
    for registry in registries.flatten() {
        if !registry.file_name().to_string_lossy().starts_with('-') {
            continue;
        }
        let Ok(unpacked) = fs::read_dir(registry.path()) else {
            continue;
        };
        for crate_dir in unpacked.flatten() {
            if ours(&crate_dir.file_name().to_string_lossy()) {
                remove(crate_dir.path())?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A library manifest that keeps every rule, as `cargo metadata` prints it.
    fn library(name: &str, dependencies: &[(&str, &str)]) -> Value {
        let dependencies: Vec<Value> = dependencies
            .iter()
            .map(|(dependency, req)| json!({ "name": dependency, "req": req, "kind": null }))
            .collect();
        json!({
            "id": format!("path+file:///ws/{name}#0.1.0"),
            "name": name,
            "version": "0.1.0",
            "publish": null,
            "description": "A crate.",
            "license": "MIT OR Apache-2.0",
            "repository": "https://example.org/ws",
            "documentation": format!("https://docs.rs/{name}"),
            "readme": "README.md",
            "rust_version": "1.89",
            "keywords": ["obzenflow", "dataflow"],
            "categories": ["asynchronous"],
            "features": {},
            "metadata": null,
            "dependencies": dependencies,
            "targets": [{ "kind": ["lib"], "name": name, "src_path": format!("/ws/{name}/src/lib.rs") }],
        })
    }

    /// A member that is never published.
    fn unpublished(name: &str) -> Value {
        json!({
            "id": format!("path+file:///ws/{name}#0.1.0"),
            "name": name,
            "version": "0.1.0",
            "publish": [],
            "features": {},
            "dependencies": [],
            "targets": [],
        })
    }

    /// Metadata whose workspace members are `packages`, plus one registry package.
    fn metadata(mut packages: Vec<Value>) -> Value {
        let members: Vec<Value> = packages
            .iter()
            .map(|package| package["id"].clone())
            .collect();
        packages.push(json!({
            "id": "registry+https://github.com/rust-lang/crates.io-index#tokio@1.0.0",
            "name": "tokio",
            "version": "1.0.0",
            "publish": null,
        }));
        json!({ "packages": packages, "workspace_members": members })
    }

    /// The four libraries, pinned to each other, and the two unpublished members.
    fn workspace() -> Vec<Value> {
        vec![
            library("obzenflow_core", &[("serde", "^1")]),
            library("obzenflow_fsm", &[]),
            library(
                "obzenflow_runtime",
                &[("obzenflow_core", "=0.1.0"), ("obzenflow_fsm", "=0.1.0")],
            ),
            library(
                "obzenflow_stages",
                &[
                    ("obzenflow_core", "=0.1.0"),
                    ("obzenflow_runtime", "=0.1.0"),
                ],
            ),
            unpublished("obzenflow_examples"),
            unpublished("xtask"),
        ]
    }

    /// `check` with every crate root reading `lib`.
    fn plan_with_lib(packages: Vec<Value>, lib: &str) -> Plan {
        check(&metadata(packages), &|_| Ok(lib.to_owned())).expect("metadata parses")
    }

    /// `check` with crate roots that hold no attribute.
    fn plan(packages: Vec<Value>) -> Plan {
        plan_with_lib(packages, "//! A crate.\n")
    }

    #[test]
    fn the_libraries_are_the_members_minus_the_unpublished_ones() {
        let plan = plan(workspace());
        assert_eq!(plan.violations, Vec::<String>::new());
        assert_eq!(
            plan.libraries,
            [
                "obzenflow_core",
                "obzenflow_fsm",
                "obzenflow_runtime",
                "obzenflow_stages"
            ]
        );
    }

    #[test]
    fn a_new_member_is_packaged_unless_it_is_listed_as_unpublished() {
        let mut packages = workspace();
        packages.push(library("obzenflow_sql", &[("obzenflow_core", "=0.1.0")]));
        let plan = plan(packages);
        assert_eq!(plan.violations, Vec::<String>::new());
        assert_eq!(
            plan.libraries.last().map(String::as_str),
            Some("obzenflow_sql")
        );
    }

    #[test]
    fn publish_false_must_match_the_unpublished_list() {
        let mut packages = workspace();
        packages[1]["publish"] = json!([]);
        packages[4]["publish"] = Value::Null;
        packages.pop();
        let plan = plan(packages);
        assert_eq!(
            plan.violations,
            [
                "package: obzenflow_fsm sets `publish = false`; a library crate is published (if it is not a library, add it to UNPUBLISHED in xtask/src/package.rs)",
                "package: obzenflow_examples is never published and must set `publish = false`",
                "package: xtask is in UNPUBLISHED but not a workspace member",
            ]
        );
        assert!(!plan.libraries.iter().any(|name| name == "obzenflow_fsm"));
    }

    #[test]
    fn missing_and_malformed_crates_io_metadata_is_named() {
        let mut packages = workspace();
        let core = &mut packages[0];
        core["description"] = Value::Null;
        core["readme"] = json!("");
        core["documentation"] = json!("https://docs.rs/obzenflow_fsm");
        core["keywords"] = json!(["a", "b", "c", "d", "e", "f"]);
        core["categories"] = json!([]);
        packages[1]["keywords"] =
            json!(["state machine", "-fsm", "ünicode", "abcdefghijklmnopqrstu"]);
        assert_eq!(
            plan(packages).violations,
            [
                "package: obzenflow_core sets no `description`",
                "package: obzenflow_core sets no `readme`",
                "package: obzenflow_core has documentation = \"https://docs.rs/obzenflow_fsm\"; its docs are at https://docs.rs/obzenflow_core",
                "package: obzenflow_core has 6 keywords; crates.io takes 1 to 5",
                "package: obzenflow_core has 0 categories; crates.io takes 1 to 5",
                "package: obzenflow_fsm has keyword `state machine`; crates.io takes ASCII letters, digits, `_`, `-` and `+`, at most 20, starting with a letter or digit",
                "package: obzenflow_fsm has keyword `-fsm`; crates.io takes ASCII letters, digits, `_`, `-` and `+`, at most 20, starting with a letter or digit",
                "package: obzenflow_fsm has keyword `ünicode`; crates.io takes ASCII letters, digits, `_`, `-` and `+`, at most 20, starting with a letter or digit",
                "package: obzenflow_fsm has keyword `abcdefghijklmnopqrstu`; crates.io takes ASCII letters, digits, `_`, `-` and `+`, at most 20, starting with a letter or digit",
            ]
        );
    }

    #[test]
    fn a_library_dependency_must_be_pinned_to_the_exact_release() {
        let mut packages = workspace();
        packages[3]["dependencies"] = json!([
            { "name": "obzenflow_core", "req": "^0.1.0", "kind": null },
            { "name": "obzenflow_runtime", "req": "=0.2.0", "kind": null },
            { "name": "serde", "req": "^1", "kind": null },
        ]);
        assert_eq!(
            plan(packages).violations,
            [
                "package: obzenflow_stages depends on obzenflow_core `^0.1.0`; pin it to the workspace release, `=0.1.0`",
                "package: obzenflow_stages depends on obzenflow_runtime `=0.2.0`; pin it to the workspace release, `=0.1.0`",
            ]
        );
    }

    #[test]
    fn a_crate_with_features_is_documented_with_them_labelled() {
        let mut packages = workspace();
        packages[2]["features"] = json!({ "cli": ["dep:clap"] });
        assert_eq!(
            plan(packages.clone()).violations,
            [
                "package: obzenflow_runtime has features but its [package.metadata.docs.rs] sets neither `all-features = true` nor `features`",
                "package: obzenflow_runtime has features but its [package.metadata.docs.rs] rustdoc-args lack \"--cfg\", \"docsrs\"",
                "package: obzenflow_runtime has features but src/lib.rs lacks `#![cfg_attr(docsrs, feature(doc_cfg))]`",
            ]
        );
        packages[2]["metadata"] = json!({ "docs": { "rs": { "all-features": true, "rustdoc-args": ["--cfg", "docsrs"] } } });
        let lib = format!("//! A crate.\n{DOC_CFG_ATTRIBUTE}\n");
        assert_eq!(
            plan_with_lib(packages, &lib).violations,
            Vec::<String>::new()
        );
    }

    #[test]
    fn only_warnings_other_than_left_out_targets_fail_the_packaging() {
        let left_out = "warning: ignoring test `crash` as `tests/crash.rs` is not included in the published package";
        assert_eq!(classify(left_out), Line::LeftOut);
        assert_eq!(
            classify("warning: manifest has no description, license, license-file, documentation, homepage or repository."),
            Line::Warning
        );
        assert_eq!(classify("warning: unused variable: `x`"), Line::Warning);
        assert_eq!(
            classify("warning: spurious network error (2 tries remaining): timed out"),
            Line::Other
        );
        assert_eq!(classify("   Verifying obzenflow_core v0.1.0"), Line::Other);
        assert_eq!(
            classify("error: failed to verify package tarball"),
            Line::Other
        );
    }

    #[test]
    fn the_command_packages_every_library_with_every_feature_verified() {
        let command = package_command(&["a".to_owned(), "b".to_owned()]);
        assert_eq!(
            cmd::describe(&command),
            "cargo package --locked --allow-dirty --all-features -p a -p b"
        );
    }
}
