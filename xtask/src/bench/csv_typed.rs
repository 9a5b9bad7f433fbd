//! The csv-typed benchmark's results: each flow's wall and CPU time over the single-thread
//! engine's, the check that every run computed the same aggregates, its table and its targets.
//!
//! Runs are the JSON objects `examples/benches/csv_typed` prints; like `report.rs`, everything
//! here is a pure function of them.

use std::fmt::Write as _;

use serde_json::{json, Value};

use super::report::{grouped, judged, mebibytes, noisy_label};

/// The `benchmark` field of the csv-typed runs.
pub(crate) const BENCHMARK: &str = "csv-typed";
/// The csv-typed scenarios, the single-thread engine first.
pub(crate) const SCENARIOS: &[&str] = &["csv-typed-single", "csv-typed-memory", "csv-typed-disk"];
/// The engine every csv-typed run is compared with.
const SINGLE: &str = "single";

/// Whether `result` is a csv-typed run.
pub(crate) fn is_csv_typed(result: &Value) -> bool {
    result["benchmark"] == BENCHMARK
}

/// Gives every csv-typed flow its wall and CPU time as multiples of the single-thread run's
/// (`wall_ratio_to_single`, `cpu_ratio_to_single`).
pub(crate) fn attach_ratios(results: &mut [Value]) {
    let Some(single) = results
        .iter()
        .find(|result| is_csv_typed(result) && result["engine"] == SINGLE)
        .map(|single| (single["seconds"].as_f64(), single["cpu_seconds"].as_f64()))
    else {
        return;
    };
    for result in results.iter_mut() {
        if !is_csv_typed(result) || result["engine"] == SINGLE {
            continue;
        }
        if let (Some(wall), Some(single_wall)) = (result["seconds"].as_f64(), single.0) {
            result["wall_ratio_to_single"] = json!(wall / single_wall);
        }
        if let (Some(cpu), Some(single_cpu)) = (result["cpu_seconds"].as_f64(), single.1) {
            result["cpu_ratio_to_single"] = json!(cpu / single_cpu.max(0.01));
        }
    }
}

/// Every csv-typed round must have rejected the same rows and written the same aggregates
/// (equal checksums of its output files); `Err` says which rounds differ from the first.
pub(crate) fn check_agreement(runs: &[Vec<Value>]) -> Result<(), String> {
    let csv_runs: Vec<&Value> = runs
        .iter()
        .flatten()
        .filter(|run| is_csv_typed(run))
        .collect();
    let Some(first) = csv_runs.first() else {
        return Ok(());
    };
    let fingerprint = |run: &Value| {
        (
            run["aggregates_checksum"].clone(),
            run["rejected_rows"].clone(),
        )
    };
    let differing: Vec<String> = csv_runs
        .iter()
        .filter(|run| fingerprint(run) != fingerprint(first))
        .map(|run| {
            format!(
                "{} (checksum {}, {} rows rejected)",
                run["scenario"], run["aggregates_checksum"], run["rejected_rows"]
            )
        })
        .collect();
    if differing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "the engines disagree: {} wrote checksum {} with {} rows rejected, but {}",
        first["scenario"],
        first["aggregates_checksum"],
        first["rejected_rows"],
        differing.join(", ")
    ))
}

/// The csv-typed runs as a table, or an empty string when there are none.
pub(crate) fn table(results: &[Value]) -> String {
    let runs: Vec<&Value> = results
        .iter()
        .filter(|result| is_csv_typed(result))
        .collect();
    let Some(first) = runs.first() else {
        return String::new();
    };
    let mut table = format!(
        "csv-typed: {} rows, {} input bytes ({:.0} B/row), {} rejected, aggregates checksum {}\n",
        grouped(first["records"].as_f64()),
        grouped(first["input_bytes"].as_f64()),
        first["input_bytes"].as_f64().unwrap_or(0.0) / first["records"].as_f64().unwrap_or(1.0),
        grouped(first["rejected_rows"].as_f64()),
        first["aggregates_checksum"].as_str().unwrap_or("-"),
    );
    let _ = writeln!(
        table,
        "{:<24} {:>8} {:>11} {:>9} {:>7} {:>10} {:>10} {:>12}",
        "scenario",
        "wall s",
        "rows/s",
        "vs single",
        "CPU s",
        "CPU/single",
        "peak RSS",
        "journal/input"
    );
    for run in runs {
        let _ = writeln!(
            table,
            "{:<24} {:>8} {:>11} {:>9} {:>7} {:>10} {:>10} {:>12}",
            noisy_label(run),
            seconds(run["seconds"].as_f64()),
            grouped(run["records_per_sec"].as_f64()),
            times(run["wall_ratio_to_single"].as_f64()),
            seconds(run["cpu_seconds"].as_f64()),
            times(run["cpu_ratio_to_single"].as_f64()),
            mebibytes(run["peak_rss_kib"].as_f64()),
            times(run["journal_bytes_per_input_byte"].as_f64()),
        );
    }
    table
}

/// The csv-typed targets: the flows' wall time over the single thread's, and the journals'
/// size over the input's.
pub(crate) fn targets(results: &[Value]) -> Vec<Value> {
    let find = |engine: &str| {
        results
            .iter()
            .find(|result| is_csv_typed(result) && result["engine"] == engine)
    };
    let wall = |engine: &str, limit: f64| -> Option<Value> {
        let ratio = find(engine)?["wall_ratio_to_single"].as_f64()?;
        Some(judged(
            format!(
                "csv-typed, {engine} journals: wall time at most {limit:.0}x the single thread"
            ),
            format!("{ratio:.2}x"),
            ratio <= limit,
        ))
    };
    let journal = || -> Option<Value> {
        let ratio = find("disk")?["journal_bytes_per_input_byte"].as_f64()?;
        Some(judged(
            "csv-typed, disk journals: journal bytes at most 2x the input CSV".to_owned(),
            format!("{ratio:.2}x"),
            ratio <= 2.0,
        ))
    };
    [wall("disk", 3.0), wall("memory", 2.0), journal()]
        .into_iter()
        .flatten()
        .collect()
}

/// Seconds with two decimals, or `-`.
fn seconds(value: Option<f64>) -> String {
    value.map_or("-".to_owned(), |value| format!("{value:.2}"))
}

/// A ratio as a multiple with two decimals, or `-`.
fn times(value: Option<f64>) -> String {
    value.map_or("-".to_owned(), |value| format!("{value:.2}x"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(engine: &str, seconds: f64, checksum: &str) -> Value {
        json!({
            "scenario": format!("csv-typed-{engine}"), "benchmark": BENCHMARK, "engine": engine,
            "label": format!("csv-typed-{engine}"), "records": 1_000_000, "seconds": seconds,
            "cpu_seconds": seconds, "records_per_sec": 1_000_000.0 / seconds,
            "input_bytes": 85_000_000, "rejected_rows": 30_000, "aggregates_checksum": checksum,
            "peak_rss_kib": 10_240,
        })
    }

    #[test]
    fn flows_are_measured_against_the_single_thread_and_judged() {
        let mut disk = run("disk", 4.0, "ab");
        disk["journal_bytes_per_input_byte"] = json!(9.5);
        let mut results = vec![
            run("single", 1.0, "ab"),
            run("memory", 1.5, "ab"),
            disk,
            json!({"scenario": "memory-depth3", "engine": "memory", "seconds": 1.0}),
        ];
        attach_ratios(&mut results);
        assert_eq!(results[1]["wall_ratio_to_single"], 1.5);
        assert_eq!(results[2]["wall_ratio_to_single"], 4.0);
        assert!(results[0].get("wall_ratio_to_single").is_none());
        assert!(results[3].get("wall_ratio_to_single").is_none());
        let verdicts: Vec<(String, bool)> = targets(&results)
            .iter()
            .map(|target| {
                (
                    target["measured"].as_str().unwrap_or_default().to_owned(),
                    target["met"] == true,
                )
            })
            .collect();
        assert_eq!(
            verdicts,
            [
                ("4.00x".to_owned(), false),
                ("1.50x".to_owned(), true),
                ("9.50x".to_owned(), false),
            ]
        );
        let table = table(&results);
        assert_eq!(table.lines().count(), 5);
        assert!(table
            .lines()
            .nth(3)
            .is_some_and(|line| line.contains("1.50x")));
    }

    #[test]
    fn engines_that_wrote_different_aggregates_fail_the_check() {
        let agree = [
            vec![run("single", 1.0, "ab")],
            vec![run("memory", 1.5, "ab")],
        ];
        assert_eq!(check_agreement(&agree), Ok(()));
        let disagree = [vec![run("single", 1.0, "ab")], vec![run("disk", 3.0, "cd")]];
        let error = check_agreement(&disagree).unwrap_err();
        assert!(error.contains("csv-typed-disk"), "{error}");
        let mut fewer = run("memory", 1.5, "ab");
        fewer["rejected_rows"] = json!(29_999);
        assert!(check_agreement(&[vec![run("single", 1.0, "ab"), fewer]]).is_err());
        assert_eq!(check_agreement(&[]), Ok(()));
    }
}
