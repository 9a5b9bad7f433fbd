//! The joins benchmark's results (`examples/benches/joins`): each join flow's throughput over
//! the hand-written single-thread code's of the same join and size, the check that every engine
//! emitted the same records, the window join's peak memory as its streams double, its table and
//! its targets. Like `report.rs`, everything here is a pure function of the runs.

use std::fmt::Write as _;

use serde_json::{json, Value};

use super::report::{grouped, judged, mebibytes, noisy_label};

/// The `benchmark` field of the joins runs.
pub(crate) const BENCHMARK: &str = "joins";
/// The joins scenarios at their default sizes, each join's single-thread engine first.
pub(crate) const SCENARIOS: &[&str] = &[
    "join-lookup-single",
    "join-lookup-memory",
    "join-lookup-disk",
    "join-window-single",
    "join-window-memory",
    "join-window-disk",
];
/// The window-join scenarios run again with twice the records per stream, for peak memory.
pub(crate) const DOUBLED: &[&str] = &["join-window-single", "join-window-disk"];
/// Records per stream of the window join by default, and doubled.
pub(crate) const WINDOW_RECORDS: u64 = 500_000;
/// The engine every join flow is compared with.
const SINGLE: &str = "single";

/// Whether `result` is a joins run.
pub(crate) fn is_joins(result: &Value) -> bool {
    result["benchmark"] == BENCHMARK
}

/// Whether `scenario` belongs to the joins benchmark.
pub(crate) fn is_joins_scenario(scenario: &str) -> bool {
    SCENARIOS.contains(&scenario)
}

/// Gives every join flow its throughput ratio to the single-thread run of the same join and
/// size (`ratio_to_single`).
pub(crate) fn attach_ratios(results: &mut [Value]) {
    let singles: Vec<(Value, Value, f64)> = results
        .iter()
        .filter(|result| is_joins(result) && result["engine"] == SINGLE)
        .filter_map(|single| {
            Some((
                single["join"].clone(),
                single["records"].clone(),
                single["records_per_sec"].as_f64()?,
            ))
        })
        .collect();
    for result in results.iter_mut() {
        if !is_joins(result) || result["engine"] == SINGLE {
            continue;
        }
        let single = singles
            .iter()
            .find(|(join, records, _)| *join == result["join"] && *records == result["records"]);
        if let (Some((_, _, single)), Some(rate)) = (single, result["records_per_sec"].as_f64()) {
            result["ratio_to_single"] = json!(rate / single);
        }
    }
}

/// Every engine of one join and size must have emitted the same records (count and
/// order-independent checksum); `Err` names the runs that differ.
pub(crate) fn check_agreement(runs: &[Vec<Value>]) -> Result<(), String> {
    let join_runs: Vec<&Value> = runs.iter().flatten().filter(|run| is_joins(run)).collect();
    let mut differing = Vec::new();
    for run in &join_runs {
        let Some(first) = join_runs
            .iter()
            .find(|other| other["join"] == run["join"] && other["records"] == run["records"])
        else {
            continue;
        };
        if (&first["emitted"], &first["checksum"]) != (&run["emitted"], &run["checksum"]) {
            differing.push(format!(
                "{} emitted {} (checksum {}) where {} emitted {} (checksum {})",
                run["scenario"],
                run["emitted"],
                run["checksum"],
                first["scenario"],
                first["emitted"],
                first["checksum"]
            ));
        }
    }
    if differing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the join engines disagree: {}",
            differing.join("; ")
        ))
    }
}

/// The joins runs as a table, or an empty string when there are none.
pub(crate) fn table(results: &[Value]) -> String {
    let runs: Vec<&Value> = results.iter().filter(|result| is_joins(result)).collect();
    if runs.is_empty() {
        return String::new();
    }
    let mut table = format!(
        "{:<28} {:>10} {:>11} {:>9} {:>7} {:>10} {:>11} {:>10}\n",
        "joins", "records", "records/s", "vs single", "CPU s", "peak RSS", "peak state", "emitted"
    );
    for run in runs {
        let _ = writeln!(
            table,
            "{:<28} {:>10} {:>11} {:>9} {:>7} {:>10} {:>11} {:>10}",
            noisy_label(run),
            grouped(run["records"].as_f64()),
            grouped(run["records_per_sec"].as_f64()),
            run["ratio_to_single"]
                .as_f64()
                .map_or("-".to_owned(), |ratio| format!("{:.0}%", ratio * 100.0)),
            run["cpu_seconds"]
                .as_f64()
                .map_or("-".to_owned(), |cpu| format!("{cpu:.2}")),
            mebibytes(run["peak_rss_kib"].as_f64()),
            grouped(run["peak_state_records"].as_f64()),
            grouped(run["emitted"].as_f64()),
        );
    }
    table
}

/// The joins targets: the lookup join on disk journals at least 40% of the hand-written
/// throughput; the window join's peak RSS flat (within 25%) when its streams double.
pub(crate) fn targets(results: &[Value]) -> Vec<Value> {
    let find = |join: &str, engine: &str, records: u64| {
        results.iter().find(|result| {
            is_joins(result)
                && result["join"] == join
                && result["engine"] == engine
                && result["records"].as_u64() == Some(records)
        })
    };
    let lookup = || -> Option<Value> {
        let ratio = find("lookup", "disk", 1_000_000)?["ratio_to_single"].as_f64()?;
        Some(judged(
            "join-lookup, disk journals: at least 40% of the hand-written HashMap join".to_owned(),
            format!("{:.0}%", ratio * 100.0),
            ratio >= 0.4,
        ))
    };
    let flat = || -> Option<Value> {
        let small = find("window", "disk", 2 * WINDOW_RECORDS)?["peak_rss_kib"].as_f64()?;
        let large = find("window", "disk", 4 * WINDOW_RECORDS)?["peak_rss_kib"].as_f64()?;
        Some(judged(
            "join-window, disk journals: peak RSS flat (within 25%) when the streams double"
                .to_owned(),
            format!("{} -> {}", mebibytes(Some(small)), mebibytes(Some(large))),
            large <= small * 1.25,
        ))
    };
    [lookup(), flat()].into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(join: &str, engine: &str, records: u64, rate: f64, checksum: &str) -> Value {
        json!({
            "scenario": format!("join-{join}-{engine}"), "benchmark": BENCHMARK, "join": join,
            "engine": engine, "label": format!("join-{join}-{engine}"), "records": records,
            "records_per_sec": rate, "cpu_seconds": 1.0, "peak_rss_kib": 20_480,
            "emitted": 10, "checksum": checksum, "peak_state_records": 100,
        })
    }

    #[test]
    fn join_flows_are_measured_against_the_single_thread_of_their_join_and_judged() {
        let mut doubled = run("window", "disk", 2_000_000, 50.0, "b");
        doubled["peak_rss_kib"] = json!(40_960);
        let mut results = vec![
            run("lookup", "single", 1_000_000, 100.0, "a"),
            run("lookup", "disk", 1_000_000, 45.0, "a"),
            run("window", "single", 1_000_000, 200.0, "b"),
            run("window", "disk", 1_000_000, 50.0, "b"),
            doubled,
        ];
        attach_ratios(&mut results);
        assert_eq!(results[1]["ratio_to_single"], 0.45);
        assert_eq!(results[3]["ratio_to_single"], 0.25);
        assert!(results[4].get("ratio_to_single").is_none());
        let verdicts: Vec<bool> = targets(&results)
            .iter()
            .map(|target| target["met"] == true)
            .collect();
        assert_eq!(
            verdicts,
            [true, false],
            "45% meets 40%; a doubled RSS is not flat"
        );
        assert_eq!(table(&results).lines().count(), 6);
    }

    #[test]
    fn engines_of_one_join_that_emitted_different_records_fail_the_check() {
        let agree = [vec![
            run("lookup", "single", 10, 1.0, "a"),
            run("lookup", "disk", 10, 1.0, "a"),
            run("window", "disk", 10, 1.0, "b"),
        ]];
        assert_eq!(check_agreement(&agree), Ok(()));
        let disagree = [vec![
            run("lookup", "single", 10, 1.0, "a"),
            run("lookup", "memory", 10, 1.0, "c"),
        ]];
        let error = check_agreement(&disagree).unwrap_err();
        assert!(error.contains("join-lookup-memory"), "{error}");
    }
}
