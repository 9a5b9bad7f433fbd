//! What `cargo xtask bench` runs: its options and its list of scenarios.
//!
//! Scenario names are the flow benchmark's (`obzenflow_runtime/benches/flow/scenario.rs`):
//! `<engine>-<shape>`, where a shape's depth counts every stage, source and sink included; and
//! the csv-typed benchmark's (`examples/benches/csv_typed`): `csv-typed-<engine>`; and the
//! joins benchmark's (`examples/benches/joins`): `join-<lookup|window>-<engine>`.

use super::csv_typed::SCENARIOS as CSV_TYPED_SCENARIOS;
use super::joins::{
    is_joins_scenario, DOUBLED as JOINS_DOUBLED, SCENARIOS as JOINS_SCENARIOS, WINDOW_RECORDS,
};
use crate::error::XtaskError;

/// Rounds per scenario by default: the median of three shrugs off one noisy run.
pub(crate) const DEFAULT_ROUNDS: usize = 3;
/// Records of the runs `--full` adds, to check that peak memory is flat in the input size.
pub(crate) const FULL_RECORDS: u64 = 10_000_000;

/// What moves the records: the tokio baseline, the single-thread loop, the baseline with a
/// file, then flows by journal storage.
const ENGINES: &[&str] = &[
    "baseline",
    "single",
    "baseline-file",
    "memory",
    "disk",
    "disk-every",
];
/// Pipeline shapes: 2, 3 and 10 stages in a line, and source -> map -> 4 sinks.
const SHAPES: &[&str] = &["depth2", "depth3", "depth10", "fanout4"];
/// Engines of the trickle runs (depth 3, one record per millisecond): wake-up latency.
const TRICKLE_ENGINES: &[&str] = &["baseline", "memory", "disk"];
/// Idle flows: CPU used while waiting 5 s for input.
const IDLE_SCENARIOS: &[&str] = &["idle-memory", "idle-disk"];
/// Scenarios `--full` runs again with [`FULL_RECORDS`].
const FULL_SCENARIOS: &[&str] = &["baseline-depth3", "memory-depth3", "disk-depth3"];
/// The filter that selects the journal micro-benchmark.
const JOURNAL_FILTER: &str = "journal";

/// The options of `cargo xtask bench`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Options {
    /// Whether to add the 10,000,000-record runs.
    pub(crate) full: bool,
    /// Runs per scenario; the median is kept.
    pub(crate) rounds: usize,
    /// Substrings of the scenario names to run; empty runs everything.
    pub(crate) filters: Vec<String>,
}

impl Options {
    /// Parses `[--full] [--rounds N] [FILTER...]`.
    pub(crate) fn parse(arguments: &[String]) -> Result<Self, XtaskError> {
        let mut options = Self {
            full: false,
            rounds: DEFAULT_ROUNDS,
            filters: Vec::new(),
        };
        let mut rest = arguments.iter();
        while let Some(argument) = rest.next() {
            match argument.as_str() {
                "--full" => options.full = true,
                "--rounds" => {
                    let value = rest
                        .next()
                        .ok_or_else(|| invalid(argument, "needs a number"))?;
                    options.rounds = value
                        .parse()
                        .ok()
                        .filter(|rounds| *rounds >= 1)
                        .ok_or_else(|| invalid(value, "is not a number of rounds (1 or more)"))?;
                }
                flag if flag.starts_with('-') => {
                    return Err(invalid(flag, "is not an option (--full, --rounds N)"))
                }
                filter => options.filters.push(filter.to_owned()),
            }
        }
        Ok(options)
    }

    /// The command line these options came from, for the results file.
    pub(crate) fn command_line(&self) -> String {
        let mut words = vec!["cargo xtask bench".to_owned()];
        if self.full {
            words.push("--full".to_owned());
        }
        if self.rounds != DEFAULT_ROUNDS {
            words.push(format!("--rounds {}", self.rounds));
        }
        words.extend(self.filters.iter().cloned());
        words.join(" ")
    }

    /// Whether the journal micro-benchmark runs: always, unless filters leave it out.
    pub(crate) fn runs_journal_bench(&self) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|filter| filter == JOURNAL_FILTER)
    }

    fn selects(&self, scenario: &str) -> bool {
        self.filters.is_empty()
            || self
                .filters
                .iter()
                .any(|filter| scenario.contains(filter.as_str()))
    }
}

fn invalid(argument: &str, reason: &'static str) -> XtaskError {
    XtaskError::InvalidArgument {
        subcommand: "bench",
        argument: argument.to_owned(),
        reason,
    }
}

/// One planned run of the flow benchmark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Planned {
    /// The scenario name the benchmark takes.
    pub(crate) scenario: String,
    /// Records to run, or `None` for the benchmark's default.
    pub(crate) records: Option<u64>,
}

impl Planned {
    fn new(scenario: String, records: Option<u64>) -> Self {
        Self { scenario, records }
    }

    /// Whether the scenario belongs to the csv-typed benchmark rather than the flow benchmark.
    pub(crate) fn is_csv_typed(&self) -> bool {
        CSV_TYPED_SCENARIOS.contains(&self.scenario.as_str())
    }

    /// Whether the scenario belongs to the joins benchmark.
    pub(crate) fn is_joins(&self) -> bool {
        is_joins_scenario(&self.scenario)
    }

    /// The scenario name, with the record count when it is not the default.
    pub(crate) fn label(&self) -> String {
        match self.records {
            Some(records) => format!("{} ({}M)", self.scenario, records / 1_000_000),
            None => self.scenario.clone(),
        }
    }
}

/// Every scenario `options` selects, in run order: each shape's baseline before its flows.
pub(crate) fn scenarios(options: &Options) -> Vec<Planned> {
    let mut planned: Vec<Planned> = SHAPES
        .iter()
        .flat_map(|shape| {
            ENGINES
                .iter()
                .map(move |engine| format!("{engine}-{shape}"))
        })
        .chain(
            TRICKLE_ENGINES
                .iter()
                .map(|engine| format!("{engine}-trickle")),
        )
        .chain(IDLE_SCENARIOS.iter().map(|name| (*name).to_owned()))
        .chain(CSV_TYPED_SCENARIOS.iter().map(|name| (*name).to_owned()))
        .chain(JOINS_SCENARIOS.iter().map(|name| (*name).to_owned()))
        .map(|scenario| Planned::new(scenario, None))
        .collect();
    // The window join again with twice the records per stream: its peak memory must not grow.
    planned.extend(
        JOINS_DOUBLED
            .iter()
            .map(|name| Planned::new((*name).to_owned(), Some(2 * WINDOW_RECORDS))),
    );
    if options.full {
        let full = FULL_SCENARIOS
            .iter()
            .map(|name| Planned::new((*name).to_owned(), Some(FULL_RECORDS)));
        planned.extend(full);
    }
    planned.retain(|planned| options.selects(&planned.scenario));
    planned
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(arguments: &[&str]) -> Result<Options, XtaskError> {
        let arguments: Vec<String> = arguments
            .iter()
            .map(|argument| (*argument).to_owned())
            .collect();
        Options::parse(&arguments)
    }

    #[test]
    fn options_parse_flags_rounds_and_filters() {
        let options = parse(&["--full", "--rounds", "5", "depth3", "journal"]).expect("valid");
        assert_eq!(
            options,
            Options {
                full: true,
                rounds: 5,
                filters: vec!["depth3".to_owned(), "journal".to_owned()],
            }
        );
        assert_eq!(
            options.command_line(),
            "cargo xtask bench --full --rounds 5 depth3 journal"
        );
        assert!(options.runs_journal_bench());
        assert!(!parse(&["depth3"]).expect("valid").runs_journal_bench());
        assert!(parse(&[]).expect("valid").runs_journal_bench());
    }

    #[test]
    fn options_reject_unknown_flags_and_bad_rounds() {
        for arguments in [
            &["--fast"][..],
            &["--rounds"],
            &["--rounds", "0"],
            &["--rounds", "x"],
        ] {
            let result = parse(arguments);
            assert!(
                matches!(
                    result,
                    Err(XtaskError::InvalidArgument {
                        subcommand: "bench",
                        ..
                    })
                ),
                "{arguments:?} gave {result:?}"
            );
        }
    }

    #[test]
    fn the_default_plan_runs_every_shape_trickle_and_idle_but_not_ten_million() {
        let planned = scenarios(&parse(&[]).expect("valid"));
        assert_eq!(
            planned.len(),
            SHAPES.len() * ENGINES.len()
                + 3
                + 2
                + CSV_TYPED_SCENARIOS.len()
                + JOINS_SCENARIOS.len()
                + JOINS_DOUBLED.len()
        );
        assert_eq!(planned[0], Planned::new("baseline-depth2".to_owned(), None));
        assert!(planned
            .iter()
            .all(|planned| planned.records.is_none() || planned.is_joins()));
        let names: Vec<&str> = planned
            .iter()
            .map(|planned| planned.scenario.as_str())
            .collect();
        for name in [
            "disk-every-depth10",
            "single-depth10",
            "memory-fanout4",
            "disk-trickle",
            "idle-disk",
            "csv-typed-single",
            "csv-typed-disk",
            "join-lookup-disk",
            "join-window-single",
        ] {
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
        assert!(planned
            .iter()
            .filter(|planned| planned.is_csv_typed())
            .all(|planned| planned.scenario.starts_with("csv-typed-")));
    }

    #[test]
    fn full_adds_ten_million_runs_and_filters_select_by_substring() {
        let planned = scenarios(&parse(&["--full", "disk-depth3"]).expect("valid"));
        assert_eq!(
            planned,
            [
                Planned::new("disk-depth3".to_owned(), None),
                Planned::new("disk-depth3".to_owned(), Some(FULL_RECORDS)),
            ]
        );
        assert_eq!(planned[1].label(), "disk-depth3 (10M)");
    }
}
