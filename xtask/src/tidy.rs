//! The tidy check: source rules that neither rustc nor clippy enforce, such as module docs on
//! every file, no `yield_now` waiting in library code, no ignored or should-panic tests and no
//! library file naming (`include_str!`, `#[path]`) a file its crate's package does not hold; and
//! documents that must quote a file verbatim, such as ARCHITECTURE.md's copy of a diagram that a
//! unit test renders from the code into a file of its crate.
//!
//! Scanning and quoting are pure functions of paths and contents; only `run` touches the file
//! system.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use crate::cmd;
use crate::error::XtaskError;

// The attribute patterns are assembled with `concat!` so that this file never contains them
// literally and does not trip its own check.
/// The start of an ignore attribute on a test.
const IGNORE_ATTRIBUTE: &str = concat!("#[", "ignore");
/// The start of a should-panic attribute on a test.
const SHOULD_PANIC_ATTRIBUTE: &str = concat!("#[", "should_panic");
/// The line after which the rest of a file is test code.
const CFG_TEST: &str = "#[cfg(test)]";

/// Which files a pattern applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    /// Every `.rs` file in the repository.
    Everywhere,
    /// Files under `obzenflow_*/src`.
    Library,
    /// Files under `obzenflow_*/src`, outside `tests` modules and `#[cfg(test)]` sections.
    LibraryOutsideTests,
}

/// A forbidden piece of code.
#[derive(Clone, Copy, Debug)]
struct Pattern {
    /// The text that must not appear on a code line.
    needle: &'static str,
    /// What is printed for a match.
    reason: &'static str,
    /// Where the pattern is forbidden.
    scope: Scope,
}

/// Every forbidden pattern. Comment lines are never matched against these.
const PATTERNS: &[Pattern] = &[
    Pattern {
        needle: IGNORE_ATTRIBUTE,
        reason:
            "test marked ignore: a test that cannot fail is a defect; make it pass or delete it",
        scope: Scope::Everywhere,
    },
    Pattern {
        needle: SHOULD_PANIC_ATTRIBUTE,
        reason: "test marked should_panic: assert on the Err instead",
        scope: Scope::Everywhere,
    },
    Pattern {
        needle: "yield_now",
        reason: "yield_now in library code: await a channel, a watch or a deadline instead",
        scope: Scope::LibraryOutsideTests,
    },
    Pattern {
        needle: "todo!(",
        reason: "todo!( in library code: finish it or return an error",
        scope: Scope::Library,
    },
    Pattern {
        needle: "unimplemented!(",
        reason: "unimplemented!( in library code: finish it or return an error",
        scope: Scope::Library,
    },
];

/// A document that must contain the text of a file verbatim. The file lives in the crate whose
/// unit test keeps it equal to what the code renders, so the test runs from the published
/// package too; this check carries it on to the document, which is outside every package.
#[derive(Clone, Copy, Debug)]
struct Quote {
    /// The quoting document, workspace-relative.
    document: &'static str,
    /// The quoted file, workspace-relative.
    quoted: &'static str,
    /// What is printed when the document does not hold the file's text.
    reason: &'static str,
}

/// Every quote the tidy check enforces.
const QUOTES: &[Quote] = &[Quote {
    document: "ARCHITECTURE.md",
    quoted: "obzenflow_runtime/src/stages/source_lifecycle.mmd",
    reason:
        "does not quote obzenflow_runtime/src/stages/source_lifecycle.mmd verbatim (the source \
             lifecycle, which a unit test in stages/lifecycle.rs renders from StageMachine); \
             copy the file into its mermaid block",
}];

/// Reported for a quoted file that is empty, which any document would trivially contain.
const EMPTY_QUOTE: &str = "is empty: a quoted file must hold the text its document quotes";

/// How library code names another file at compile time; the literal path follows.
const FILE_REFERENCES: &[&str] = &["include_str!(\"", "include_bytes!(\"", "#[path = \""];
/// Reported for a library file that names a file its crate's package does not hold.
const OUTSIDE_PACKAGE: &str = "names a file outside its crate's src/ and README.md, which its \
     package does not hold: `cargo test` of the published crate would not compile; keep the \
     file in the crate or move the check to the workspace (see QUOTES in xtask/src/tidy.rs)";

/// Reported for a file whose first non-empty line is not a module doc.
const MISSING_MODULE_DOC: &str = "missing //! module doc on line 1";
/// Reported for a doc example fenced as ignored.
const IGNORED_DOC_EXAMPLE: &str = "doc example marked ignore: use no_run so it still compiles";

/// One tidy violation, printed as `path:line: reason` (or `path: reason` for whole-file ones).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Violation {
    /// Workspace-relative path with `/` separators.
    path: String,
    /// One-based line number, if the violation is on a line.
    line: Option<usize>,
    /// Why it is a violation.
    reason: &'static str,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.path, self.reason),
            None => write!(f, "{}: {}", self.path, self.reason),
        }
    }
}

/// What a file is, judged from its workspace-relative path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileClass {
    /// Must start with a module doc.
    needs_module_doc: bool,
    /// Lives under `obzenflow_*/src`.
    library: bool,
    /// Lives in a `tests` directory or is a `tests.rs` module.
    test_module: bool,
}

/// Classifies a workspace-relative path with `/` separators.
fn classify(path: &str) -> FileClass {
    let components: Vec<&str> = path.split('/').collect();
    let first = components[0];
    let second = components.get(1).copied();
    let library = first.starts_with("obzenflow_") && second == Some("src");
    let needs_module_doc =
        library || first == "examples" || (first == "xtask" && second == Some("src"));
    let (file_name, directories) = components.split_last().unwrap_or((&"", &[]));
    let test_module = *file_name == "tests.rs" || directories.contains(&"tests");
    FileClass {
        needs_module_doc,
        library,
        test_module,
    }
}

/// Whether the first non-empty line is a module doc (`//!`, or `#![doc` for an included README).
fn has_module_doc(contents: &str) -> bool {
    contents
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .is_some_and(|line| line.starts_with("//!") || line.starts_with("#![doc"))
}

/// Whether a comment line opens a doc example fenced as `ignore`.
fn opens_ignored_doc_example(comment: &str) -> bool {
    let text = comment
        .trim_start_matches('/')
        .trim_start_matches('!')
        .trim_start();
    text.strip_prefix("```")
        .is_some_and(|info| info.split(',').any(|word| word.trim() == "ignore"))
}

/// The literal paths a code line names with `FILE_REFERENCES`.
fn referenced_files(line: &str) -> Vec<&str> {
    FILE_REFERENCES
        .iter()
        .flat_map(|opening| {
            line.match_indices(opening)
                .map(|(at, _)| at + opening.len())
        })
        .filter_map(|start| line[start..].split_once('"').map(|(literal, _)| literal))
        .collect()
}

/// Whether `literal`, named by the library file at workspace-relative `path`, is in its crate's
/// package: under the crate's `src/`, or its `README.md` (the `include` list of every library
/// manifest).
fn in_package(path: &str, literal: &str) -> bool {
    let mut resolved: Vec<&str> = path.split('/').collect();
    resolved.pop();
    for component in literal.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                if resolved.pop().is_none() {
                    return false;
                }
            }
            name => resolved.push(name),
        }
    }
    let crate_dir = path.split('/').next().unwrap_or_default();
    match resolved.as_slice() {
        [first, "src", _, ..] => *first == crate_dir,
        [first, "README.md"] => *first == crate_dir,
        _ => false,
    }
}

/// Whether `pattern` is forbidden on a code line of a file of class `class`.
fn applies(pattern: &Pattern, class: FileClass, in_test_section: bool) -> bool {
    match pattern.scope {
        Scope::Everywhere => true,
        Scope::Library => class.library,
        Scope::LibraryOutsideTests => class.library && !class.test_module && !in_test_section,
    }
}

/// Scans one file. `path` is workspace-relative with `/` separators.
pub(crate) fn scan(path: &str, contents: &str) -> Vec<Violation> {
    let class = classify(path);
    let violation = |line, reason| Violation {
        path: path.to_owned(),
        line,
        reason,
    };
    let mut violations = Vec::new();
    if class.needs_module_doc && !has_module_doc(contents) {
        violations.push(violation(None, MISSING_MODULE_DOC));
    }
    let mut in_test_section = false;
    for (index, line) in contents.lines().enumerate() {
        let trimmed = line.trim_start();
        in_test_section |= trimmed.starts_with(CFG_TEST);
        if trimmed.starts_with("//") {
            if opens_ignored_doc_example(trimmed) {
                violations.push(violation(Some(index + 1), IGNORED_DOC_EXAMPLE));
            }
            continue;
        }
        for pattern in PATTERNS {
            if applies(pattern, class, in_test_section) && line.contains(pattern.needle) {
                violations.push(violation(Some(index + 1), pattern.reason));
            }
        }
        if class.library
            && referenced_files(line)
                .iter()
                .any(|literal| !in_package(path, literal))
        {
            violations.push(violation(Some(index + 1), OUTSIDE_PACKAGE));
        }
    }
    violations
}

/// The violation of `quote`, if any, given the document's and the quoted file's contents.
fn check_quote(quote: &Quote, document: &str, quoted: &str) -> Option<Violation> {
    if quoted.trim().is_empty() {
        Some(Violation {
            path: quote.quoted.to_owned(),
            line: None,
            reason: EMPTY_QUOTE,
        })
    } else if document.contains(quoted) {
        None
    } else {
        Some(Violation {
            path: quote.document.to_owned(),
            line: None,
            reason: quote.reason,
        })
    }
}

/// Reads a workspace-relative file.
fn read(root: &Path, relative: &str) -> Result<String, XtaskError> {
    let path = root.join(relative);
    fs::read_to_string(&path).map_err(|source| XtaskError::Io { path, source })
}

/// Collects every `.rs` file under `directory`, skipping hidden directories and cargo build
/// directories (`root/target`, and any `target` cargo marked with a `CACHEDIR.TAG`, such as the
/// fuzz crate's).
fn collect_rust_files(
    root: &Path,
    directory: &Path,
    files: &mut Vec<PathBuf>,
) -> Result<(), XtaskError> {
    let io_error = |source| XtaskError::Io {
        path: directory.to_owned(),
        source,
    };
    for entry in fs::read_dir(directory).map_err(io_error)? {
        let path = entry.map_err(io_error)?.path();
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        if path.is_dir() {
            let build_dir = path == root.join("target")
                || (name == "target" && path.join("CACHEDIR.TAG").is_file());
            if !name.starts_with('.') && !build_dir {
                collect_rust_files(root, &path, files)?;
            }
        } else if name.ends_with(".rs") {
            files.push(path);
        }
    }
    Ok(())
}

/// `path` relative to `root`, with `/` separators on every platform.
fn relative_path(root: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(root).unwrap_or(path);
    let components: Vec<_> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect();
    components.join("/")
}

/// `cargo xtask tidy`: scans every `.rs` file of the repository and checks every quote,
/// printing each violation.
pub(crate) fn run() -> Result<(), XtaskError> {
    let root = cmd::workspace_root();
    let mut files = Vec::new();
    collect_rust_files(root, root, &mut files)?;
    files.sort();
    let mut count = 0;
    for file in &files {
        let contents = fs::read_to_string(file).map_err(|source| XtaskError::Io {
            path: file.clone(),
            source,
        })?;
        for violation in scan(&relative_path(root, file), &contents) {
            eprintln!("{violation}");
            count += 1;
        }
    }
    for violation in readme_snippets(root)? {
        eprintln!("{violation}");
        count += 1;
    }
    for quote in QUOTES {
        let (document, quoted) = (read(root, quote.document)?, read(root, quote.quoted)?);
        if let Some(violation) = check_quote(quote, &document, &quoted) {
            eprintln!("{violation}");
            count += 1;
        }
    }
    if count == 0 {
        println!(
            "tidy: {} files and {} quoted files checked, no violations",
            files.len(),
            QUOTES.len()
        );
        Ok(())
    } else {
        Err(XtaskError::Violations {
            check: "tidy",
            count,
        })
    }
}

/// Code a README shows, kept in a compiled (and smoke-run) example: `(readme, example)`.
const README_SNIPPETS: &[(&str, &str)] = &[
    ("README.md", "examples/examples/minimal.rs"),
    ("examples/README.md", "examples/examples/minimal.rs"),
];

/// Marks where the part of an example that a README shows begins.
const SNIPPET_BEGIN: &str = "// README: begin\n";
/// Marks where it ends.
const SNIPPET_END: &str = "// README: end\n";

const README_SNIPPET_MISSING: &str =
    "README does not show the example's code between its `// README: begin` and `end` markers as written; copy it again";
const SNIPPET_MARKERS_MISSING: &str =
    "example has no `// README: begin` and `// README: end` lines";

/// The part of `example` between its markers, if it has them.
fn snippet(example: &str) -> Option<&str> {
    let start = example.find(SNIPPET_BEGIN)? + SNIPPET_BEGIN.len();
    let end = start + example[start..].find(SNIPPET_END)?;
    Some(&example[start..end])
}

/// Whether `readme` shows `code` as one fenced Rust block.
fn readme_shows(readme: &str, code: &str) -> bool {
    readme.contains(&format!("```rust\n{code}```\n"))
}

/// Checks that each README shows its example's code exactly, so that the code a user copies
/// from the README is code that compiles and runs.
fn readme_snippets(root: &Path) -> Result<Vec<Violation>, XtaskError> {
    let read = |relative: &str| {
        let path = root.join(relative);
        fs::read_to_string(&path).map_err(|source| XtaskError::Io { path, source })
    };
    let mut violations = Vec::new();
    for (readme, example) in README_SNIPPETS {
        let code = read(example)?;
        match snippet(&code) {
            Some(code) if readme_shows(&read(readme)?, code) => {}
            Some(_) => violations.push(Violation {
                path: (*readme).to_owned(),
                line: None,
                reason: README_SNIPPET_MISSING,
            }),
            None => violations.push(Violation {
                path: (*example).to_owned(),
                line: None,
                reason: SNIPPET_MARKERS_MISSING,
            }),
        }
    }
    Ok(violations)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_readme_shows_an_example_only_as_written() {
        let example = "//! doc\n\n// README: begin\nfn main() {}\n// README: end\n";
        let code = snippet(example).unwrap();
        assert_eq!(code, "fn main() {}\n");
        assert!(readme_shows("# Use\n\n```rust\nfn main() {}\n```\n", code));
        assert!(!readme_shows("```rust\nfn main() { }\n```\n", code));
        assert_eq!(snippet("fn main() {}\n"), None);
    }

    /// The printed form of every violation in one file.
    fn messages(path: &str, contents: &str) -> Vec<String> {
        scan(path, contents)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn missing_module_doc_is_reported_where_docs_are_required() {
        let contents = "\n\nuse std::fmt;\n";
        let expected = ["obzenflow_core/src/id.rs: missing //! module doc on line 1"];
        assert_eq!(messages("obzenflow_core/src/id.rs", contents), expected);
        assert_eq!(messages("examples/examples/csv.rs", contents).len(), 1);
        assert_eq!(messages("xtask/src/main.rs", contents).len(), 1);
        assert_eq!(
            messages("obzenflow_core/tests/journal.rs", contents),
            Vec::<String>::new()
        );
        assert_eq!(messages("obzenflow_core/src/empty.rs", "").len(), 1);
    }

    #[test]
    fn module_doc_after_blank_lines_or_included_readme_is_accepted() {
        assert_eq!(
            messages("obzenflow_fsm/src/lib.rs", "\n//! The fsm.\n"),
            Vec::<String>::new()
        );
        let readme = "#![doc = include_str!(\"../README.md\")]\n";
        assert_eq!(
            messages("obzenflow_fsm/src/lib.rs", readme),
            Vec::<String>::new()
        );
        let plain_comment = "// Not a doc.\n//! Too late.\n";
        assert_eq!(messages("obzenflow_fsm/src/lib.rs", plain_comment).len(), 1);
    }

    #[test]
    fn yield_now_is_reported_in_library_code_only() {
        let contents = "//! Loop.\nasync fn spin() {\n    tokio::task::yield_now().await;\n}\n";
        assert_eq!(
            messages("obzenflow_runtime/src/run_loop.rs", contents),
            ["obzenflow_runtime/src/run_loop.rs:3: yield_now in library code: await a channel, a watch or a deadline instead"]
        );
        assert_eq!(
            messages("obzenflow_runtime/tests/loop.rs", contents),
            Vec::<String>::new()
        );
        assert_eq!(
            messages("obzenflow_runtime/src/tests/loop.rs", contents),
            Vec::<String>::new()
        );
        assert_eq!(
            messages("obzenflow_runtime/src/tests.rs", contents),
            Vec::<String>::new()
        );
        assert_eq!(
            messages("examples/src/lib.rs", contents),
            Vec::<String>::new()
        );
    }

    #[test]
    fn yield_now_after_cfg_test_or_in_comments_is_allowed() {
        let contents = "//! Loop.\n/// Never calls yield_now.\nfn run() {}\n\n#[cfg(test)]\nmod tests {\n    async fn t() { tokio::task::yield_now().await }\n}\n";
        assert_eq!(
            messages("obzenflow_runtime/src/run_loop.rs", contents),
            Vec::<String>::new()
        );
    }

    #[test]
    fn ignored_and_should_panic_tests_are_reported_everywhere() {
        let contents = format!(
            "//! Tests.\n#[test]\n{IGNORE_ATTRIBUTE} = \"slow\"]\nfn slow() {{}}\n#[test]\n{SHOULD_PANIC_ATTRIBUTE}]\nfn boom() {{}}\n"
        );
        assert_eq!(
            messages("obzenflow_stages/tests/map.rs", &contents),
            [
                "obzenflow_stages/tests/map.rs:3: test marked ignore: a test that cannot fail is a defect; make it pass or delete it",
                "obzenflow_stages/tests/map.rs:6: test marked should_panic: assert on the Err instead",
            ]
        );
        let commented = format!("//! Tests.\n// Never write {IGNORE_ATTRIBUTE}].\n");
        assert_eq!(
            messages("obzenflow_stages/tests/map.rs", &commented),
            Vec::<String>::new()
        );
    }

    #[test]
    fn ignored_doc_examples_are_reported() {
        let fence = concat!("``", "`");
        let contents = format!("//! Docs.\n/// {fence}rust,ignore\n/// {fence}\n/// {fence}no_run\n/// {fence}\nfn f() {{}}\n");
        assert_eq!(
            messages("obzenflow_runtime/src/handle.rs", &contents),
            ["obzenflow_runtime/src/handle.rs:2: doc example marked ignore: use no_run so it still compiles"]
        );
    }

    #[test]
    fn todo_and_unimplemented_are_reported_in_library_code() {
        let contents = "//! Stub.\nfn a() { todo!() }\nfn b() { unimplemented!(\"later\") }\n";
        assert_eq!(messages("obzenflow_fsm/src/machine.rs", contents).len(), 2);
        assert_eq!(
            messages("examples/examples/demo.rs", contents),
            Vec::<String>::new()
        );
    }

    #[test]
    fn library_code_names_only_files_its_package_holds() {
        let lib = "//! Docs.\n#![doc = include_str!(\"../README.md\")]\n";
        assert_eq!(
            messages("obzenflow_core/src/lib.rs", lib),
            Vec::<String>::new()
        );
        let inside = "//! Docs.\n#[doc = include_str!(\"doc_countdown.txt\")]\nconst D: &[u8] = include_bytes!(\"./../stages/d.mmd\");\n";
        assert_eq!(
            messages("obzenflow_runtime/src/supervised_base/handle.rs", inside),
            Vec::<String>::new()
        );
        let outside = "//! Docs.\n#[cfg(test)]\nmod tests {\n    const A: &str = include_str!(\"../../../ARCHITECTURE.md\");\n    const T: &str = include_str!(\"../../tests/data.csv\");\n    #[path = \"../../../obzenflow_core/src/id.rs\"]\n    mod id;\n}\n";
        let reported: Vec<String> = (4..=6)
            .map(|line| {
                format!("obzenflow_runtime/src/stages/lifecycle.rs:{line}: {OUTSIDE_PACKAGE}")
            })
            .collect();
        assert_eq!(
            messages("obzenflow_runtime/src/stages/lifecycle.rs", outside),
            reported
        );
        let escaping = "//! Docs.\nconst X: &str = include_str!(\"../../../../../etc/passwd\");\n";
        assert_eq!(messages("obzenflow_core/src/lib.rs", escaping).len(), 1);
        assert_eq!(
            messages("obzenflow_runtime/tests/journal_support/mod.rs", outside),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_document_must_hold_the_quoted_file_verbatim() {
        let quote = &QUOTES[0];
        let diagram = "stateDiagram-v2\n    [*] --> created\n";
        let document = format!("# Architecture\n\n```mermaid\n{diagram}```\n");
        assert_eq!(check_quote(quote, &document, diagram), None);
        let drifted = document.replace("created", "made");
        assert_eq!(
            check_quote(quote, &drifted, diagram).map(|violation| violation.to_string()),
            Some(format!("ARCHITECTURE.md: {}", quote.reason))
        );
    }

    #[test]
    fn an_empty_quoted_file_is_a_violation_not_a_match() {
        let quote = &QUOTES[0];
        assert_eq!(
            check_quote(quote, "anything", "\n").map(|violation| violation.to_string()),
            Some(format!("{}: {EMPTY_QUOTE}", quote.quoted))
        );
    }

    #[test]
    fn relative_paths_use_forward_slashes() {
        let root = Path::new("/ws");
        let file = root.join("obzenflow_core").join("src").join("lib.rs");
        assert_eq!(relative_path(root, &file), "obzenflow_core/src/lib.rs");
    }
}
