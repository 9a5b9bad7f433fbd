//! Turning benchmark runs into results: the median round per scenario, each run's ratios to
//! the tokio baseline and to the single-thread loop of the same shape, the design targets, the table, and the machine they ran on.
//!
//! Runs are the JSON objects the flow benchmark prints (`obzenflow_runtime/benches/flow`);
//! everything here is a pure function of them, so it is unit-tested on hand-written runs.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::{json, Value};

use super::plan::Planned;

/// The `pace` of runs that go flat out, as the flow benchmark prints it; only those have a
/// throughput worth comparing.
const FLAT_OUT: &str = "flat out";
/// The engine name of the plain baseline.
const BASELINE: &str = "baseline";
/// The engine name of the single-thread loop, the COST baseline.
const SINGLE: &str = "single";
/// Clock ticks per second of `/proc/stat` (`USER_HZ`, 100 on every Linux target).
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;
/// Cores other processes may use, on average over a run, before the run counts as noisy: on a
/// shared 2-core machine a compile next door can halve a throughput figure.
pub(crate) const NOISY_OTHER_LOAD: f64 = 0.1;

/// The machine, from `/proc`: cores, CPU model, memory and kernel.
pub(crate) fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    json!({
        "nproc": std::thread::available_parallelism().map(usize::from).ok(),
        "cpu_model": proc_field(&cpuinfo, "model name"),
        "memory_total_kib": proc_field(&meminfo, "MemTotal")
            .and_then(|total| total.trim_end_matches("kB").trim().parse::<u64>().ok()),
        "kernel": kernel.trim(),
    })
}

/// The value of the first `key: value` line of a `/proc` file.
fn proc_field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        (name.trim() == key).then(|| value.trim().to_owned())
    })
}

/// Busy CPU seconds of the whole machine since boot, from the `cpu` line of `/proc/stat`:
/// user, nice, system, irq, softirq and steal time.
pub(crate) fn machine_busy_seconds(stat: &str) -> Option<f64> {
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    // user nice system idle iowait irq softirq steal ...
    let busy: u64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|index| ticks.get(*index))
        .sum();
    Some(busy as f64 / CLOCK_TICKS_PER_SECOND)
}

/// Records how many cores other processes used, on average, while a run took `wall_seconds`
/// and the whole machine was busy for `machine_busy` CPU seconds.
pub(crate) fn attach_other_load(figures: &mut Value, machine_busy: f64, wall_seconds: f64) {
    let own = figures["process_cpu_seconds"].as_f64().unwrap_or(0.0);
    let other = (machine_busy - own).max(0.0);
    figures["other_load"] = json!(other / wall_seconds.max(f64::EPSILON));
}

/// Whether other processes took enough CPU during a run to distort it.
fn is_noisy(run: &Value) -> bool {
    run["other_load"].as_f64().unwrap_or(0.0) > NOISY_OTHER_LOAD
}

/// One line about the machine, for the console.
pub(crate) fn describe_machine(machine: &Value) -> String {
    let memory_gib = machine["memory_total_kib"].as_f64().unwrap_or(0.0) / (1024.0 * 1024.0);
    format!(
        "machine: {} cores, {}, {memory_gib:.1} GiB, Linux {}",
        machine["nproc"],
        machine["cpu_model"].as_str().unwrap_or("unknown CPU"),
        machine["kernel"].as_str().unwrap_or("?"),
    )
}

/// One line per finished run, for the console.
pub(crate) fn progress_line(planned: &Planned, figures: &Value) -> String {
    let label = planned.label();
    let mut line = match figures["idle_cpu_seconds"].as_f64() {
        Some(cpu) => format!("{label:<24} {cpu:.3} CPU s while idle"),
        None if super::csv_typed::is_csv_typed(figures) || super::joins::is_joins(figures) => {
            format!(
                "{label:<24} {:>11} rows/s      wall {:.2} s   peak RSS {}",
                grouped(figures["records_per_sec"].as_f64()),
                figures["seconds"].as_f64().unwrap_or_default(),
                mebibytes(figures["peak_rss_kib"].as_f64()),
            )
        }
        None => format!(
            "{label:<24} {:>11} records/s   p50 {:>9} µs   peak RSS {}",
            grouped(figures["records_per_sec"].as_f64()),
            micros(figures["latency_p50_us"].as_f64()),
            mebibytes(figures["peak_rss_kib"].as_f64()),
        ),
    };
    if is_noisy(figures) {
        let load = figures["other_load"].as_f64().unwrap_or_default();
        let _ = write!(line, "   (noisy: other processes used {load:.2} cores)");
    }
    line
}

/// Per scenario, its median round with every round's key figure and, for flows, the ratio of
/// its throughput to the baseline's of the same shape and size.
pub(crate) fn summarize(scenarios: &[Planned], runs: &[Vec<Value>]) -> Vec<Value> {
    let mut results: Vec<Value> = scenarios
        .iter()
        .zip(runs)
        .filter_map(|(planned, runs)| median_run(planned, runs))
        .collect();
    attach_ratios(&mut results);
    super::csv_typed::attach_ratios(&mut results);
    results
}

/// The figure rounds are ranked by: throughput, or CPU time for idle runs.
fn rank_key(run: &Value) -> f64 {
    run["records_per_sec"]
        .as_f64()
        .or_else(|| run["idle_cpu_seconds"].as_f64())
        .unwrap_or(0.0)
}

/// The round with the median key (the lower one for an even count) among the quiet rounds,
/// or among all rounds when none was quiet; labelled, and flagged `noisy` in that case.
fn median_run(planned: &Planned, runs: &[Value]) -> Option<Value> {
    let quiet: Vec<&Value> = runs.iter().filter(|run| !is_noisy(run)).collect();
    let mut ranked = if quiet.is_empty() {
        runs.iter().collect()
    } else {
        quiet
    };
    ranked.sort_by(|left, right| rank_key(left).total_cmp(&rank_key(right)));
    let mut chosen = (*ranked.get(ranked.len().checked_sub(1)? / 2)?).clone();
    chosen["noisy"] = json!(is_noisy(&chosen));
    chosen["label"] = json!(planned.label());
    chosen["rounds"] = json!(runs.iter().map(rank_key).collect::<Vec<f64>>());
    let loads: Vec<f64> = runs
        .iter()
        .map(|run| run["other_load"].as_f64().unwrap_or(0.0))
        .collect();
    chosen["rounds_other_load"] = json!(loads);
    Some(chosen)
}

/// Gives every run its throughput ratio to the tokio baseline (`ratio_to_baseline`) and to the
/// single-thread loop (`ratio_to_single`) of the same shape, size and pace, where measured.
fn attach_ratios(results: &mut [Value]) {
    let baselines = rates_of(results, BASELINE);
    let singles = rates_of(results, SINGLE);
    for result in results.iter_mut() {
        let Some((shape, records, rate)) = comparable(result) else {
            continue;
        };
        let key = (shape, records);
        let engine = result["engine"].as_str().unwrap_or_default().to_owned();
        if engine != BASELINE && engine != SINGLE {
            if let Some(baseline) = baselines.get(&key) {
                result["ratio_to_baseline"] = json!(rate / baseline);
            }
        }
        if engine != SINGLE {
            if let Some(single) = singles.get(&key) {
                result["ratio_to_single"] = json!(rate / single);
            }
        }
    }
}

/// A flat-out run's shape, record count and throughput; `None` for other runs.
fn comparable(result: &Value) -> Option<(String, u64, f64)> {
    if result["pace"] != FLAT_OUT {
        return None;
    }
    Some((
        result["shape"].as_str()?.to_owned(),
        result["records"].as_u64()?,
        result["records_per_sec"].as_f64()?,
    ))
}

/// The throughput of `engine`'s runs by shape and record count.
fn rates_of(results: &[Value], engine: &str) -> HashMap<(String, u64), f64> {
    results
        .iter()
        .filter(|result| result["engine"] == engine)
        .filter_map(comparable)
        .map(|(shape, records, rate)| ((shape, records), rate))
        .collect()
}

/// The result labelled `label`.
fn find<'a>(results: &'a [Value], label: &str) -> Option<&'a Value> {
    results.iter().find(|result| result["label"] == label)
}

/// One design target, judged.
pub(super) fn judged(target: String, measured: String, met: bool) -> Value {
    json!({ "target": target, "measured": measured, "met": met })
}

/// A flow's throughput as a share of the baseline's: at least `minimum`.
fn ratio_target(results: &[Value], label: &str, what: &str, minimum: f64) -> Option<Value> {
    let ratio = find(results, label)?["ratio_to_baseline"].as_f64()?;
    let met = ratio >= minimum;
    let mut measured = format!("{:.0}% of the baseline", ratio * 100.0);
    if !met {
        let _ = write!(
            measured,
            ", short by {:.0} points",
            (minimum - ratio) * 100.0
        );
    }
    let target = format!(
        "{what}: at least {:.0}% of the baseline ({label})",
        minimum * 100.0
    );
    Some(judged(target, measured, met))
}

/// The CPU an idle flow used: under `limit` seconds.
fn idle_target(results: &[Value], label: &str, limit: f64) -> Option<Value> {
    let result = find(results, label)?;
    let cpu = result["idle_cpu_seconds"].as_f64()?;
    let window = result["idle_window_seconds"].as_f64().unwrap_or(0.0);
    let target = format!("idle flow ({label}): under {limit} CPU s in {window:.0} s");
    Some(judged(target, format!("{cpu:.3} CPU s"), cpu < limit))
}

/// The wake-up latency per hop of a trickle run: its median end-to-end latency over its hops.
fn wake_target(results: &[Value], label: &str, limit_us: f64) -> Option<Value> {
    let result = find(results, label)?;
    let hops = result["stages"].as_f64()? - 1.0;
    let per_hop = result["latency_p50_us"].as_f64()? / hops;
    let target =
        format!("wake-up latency per hop ({label}, p50 / {hops:.0} hops): under {limit_us:.0} µs");
    Some(judged(
        target,
        format!("{per_hop:.1} µs"),
        per_hop < limit_us,
    ))
}

/// Peak memory of the 10M run against the 1M run: within `tolerance` (a fraction).
fn flat_memory_target(results: &[Value], scenario: &str, tolerance: f64) -> Option<Value> {
    let small = find(results, scenario)?["peak_rss_kib"].as_f64()?;
    let full_label = Planned {
        scenario: scenario.to_owned(),
        records: Some(super::plan::FULL_RECORDS),
    }
    .label();
    let large = find(results, &full_label)?["peak_rss_kib"].as_f64()?;
    let growth = large / small - 1.0;
    let target = format!(
        "peak RSS flat in N ({scenario}): 10M within {:.0}% of 1M",
        tolerance * 100.0
    );
    let measured = format!(
        "{} at 1M, {} at 10M ({:+.1}%)",
        mebibytes(Some(small)),
        mebibytes(Some(large)),
        growth * 100.0
    );
    Some(judged(target, measured, growth.abs() < tolerance))
}

/// The design targets (`DESIGN.md`, "Targets") that the results can judge.
pub(crate) fn targets(results: &[Value]) -> Vec<Value> {
    [
        ratio_target(
            results,
            "disk-depth3",
            "depth 3, disk journals, group commit",
            0.50,
        ),
        ratio_target(results, "memory-depth3", "depth 3, memory journals", 0.80),
        idle_target(results, "idle-memory", 0.05),
        idle_target(results, "idle-disk", 0.05),
        wake_target(results, "memory-trickle", 100.0),
        wake_target(results, "disk-trickle", 100.0),
        flat_memory_target(results, "memory-depth3", 0.20),
        flat_memory_target(results, "disk-depth3", 0.20),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The targets, one line each.
pub(crate) fn target_lines(targets: &[Value]) -> String {
    let mut lines = String::from("targets:\n");
    for target in targets {
        let verdict = if target["met"] == true {
            "met   "
        } else {
            "MISSED"
        };
        let _ = writeln!(
            lines,
            "  {verdict} {}: {}",
            target["target"].as_str().unwrap_or_default(),
            target["measured"].as_str().unwrap_or_default()
        );
    }
    lines
}

/// The results as a table: throughput runs first, then idle runs.
pub(crate) fn table(results: &[Value]) -> String {
    let mut table = format!(
        "{:<24} {:>10} {:>11} {:>8} {:>9} {:>10} {:>10} {:>10} {:>8} {:>7}\n",
        "scenario",
        "records",
        "records/s",
        "vs base",
        "vs single",
        "p50 µs",
        "p99 µs",
        "peak RSS",
        "B/rec",
        "CPU s"
    );
    // The csv-typed runs have a table of their own (`csv_typed::table`).
    let (idle, runs): (Vec<&Value>, Vec<&Value>) = results
        .iter()
        .filter(|result| !super::csv_typed::is_csv_typed(result) && !super::joins::is_joins(result))
        .partition(|result| result["idle_cpu_seconds"].is_number());
    if idle.is_empty() && runs.is_empty() {
        return String::new();
    }
    let mut any_noisy = false;
    for run in runs {
        any_noisy |= run["noisy"] == true;
        let _ = writeln!(
            table,
            "{:<24} {:>10} {:>11} {:>8} {:>9} {:>10} {:>10} {:>10} {:>8} {:>7}",
            noisy_label(run),
            grouped(run["records"].as_f64()),
            grouped(run["records_per_sec"].as_f64()),
            percent(run["ratio_to_baseline"].as_f64()),
            percent(run["ratio_to_single"].as_f64()),
            micros(run["latency_p50_us"].as_f64()),
            micros(run["latency_p99_us"].as_f64()),
            mebibytes(run["peak_rss_kib"].as_f64()),
            run["journal_bytes_per_record"]
                .as_f64()
                .map_or("-".to_owned(), |bytes| format!("{bytes:.0}")),
            run["cpu_seconds"]
                .as_f64()
                .map_or("-".to_owned(), |cpu| format!("{cpu:.2}")),
        );
    }
    for run in idle {
        any_noisy |= run["noisy"] == true;
        let _ = writeln!(
            table,
            "{:<24} {:.3} CPU s over a {:.0} s idle window, peak RSS {}",
            noisy_label(run),
            run["idle_cpu_seconds"].as_f64().unwrap_or_default(),
            run["idle_window_seconds"].as_f64().unwrap_or_default(),
            mebibytes(run["peak_rss_kib"].as_f64()),
        );
    }
    if any_noisy {
        let _ = writeln!(
            table,
            "* every round of this scenario shared the machine with other processes using more \
             than {NOISY_OTHER_LOAD} cores on average: its figures are unreliable"
        );
    }
    table
}

/// A result's label, starred when its figures come from a noisy round.
pub(super) fn noisy_label(run: &Value) -> String {
    let label = run["label"].as_str().unwrap_or_default();
    if run["noisy"] == true {
        format!("{label} *")
    } else {
        label.to_owned()
    }
}

/// A whole number with thousands separators, or `-`.
pub(super) fn grouped(value: Option<f64>) -> String {
    let Some(value) = value else {
        return "-".to_owned();
    };
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Microseconds: whole above 100, one decimal below; `-` when absent.
fn micros(value: Option<f64>) -> String {
    match value {
        Some(value) if value >= 100.0 => grouped(Some(value)),
        Some(value) => format!("{value:.1}"),
        None => "-".to_owned(),
    }
}

/// KiB as MiB with one decimal, or `-`.
pub(super) fn mebibytes(kib: Option<f64>) -> String {
    kib.map_or("-".to_owned(), |kib| format!("{:.1} MiB", kib / 1024.0))
}

/// A ratio as a whole percentage, or `-`.
pub(super) fn percent(ratio: Option<f64>) -> String {
    ratio.map_or("-".to_owned(), |ratio| format!("{:.0}%", ratio * 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(scenario: &str, records: Option<u64>) -> Planned {
        Planned {
            scenario: scenario.to_owned(),
            records,
        }
    }

    fn run(engine: &str, shape: &str, records: u64, rate: f64, rss_kib: u64) -> Value {
        json!({
            "scenario": format!("{engine}-{shape}"), "engine": engine, "shape": shape,
            "stages": 3, "pace": FLAT_OUT, "records": records, "records_per_sec": rate,
            "latency_p50_us": 250.0, "latency_p99_us": 900.0, "peak_rss_kib": rss_kib,
        })
    }

    #[test]
    fn the_median_round_is_kept_and_runs_get_their_baseline_and_single_ratios() {
        let scenarios = [
            planned("baseline-depth3", None),
            planned("disk-depth3", None),
            planned("single-depth3", None),
        ];
        let runs = [
            vec![
                run("baseline", "depth3", 1_000_000, 900.0, 10),
                run("baseline", "depth3", 1_000_000, 1000.0, 10),
                run("baseline", "depth3", 1_000_000, 100.0, 10),
            ],
            vec![
                run("disk", "depth3", 1_000_000, 450.0, 10),
                run("disk", "depth3", 1_000_000, 600.0, 10),
            ],
            vec![run("single", "depth3", 1_000_000, 1800.0, 10)],
        ];
        let results = summarize(&scenarios, &runs);
        assert_eq!(results[0]["records_per_sec"], 900.0);
        assert_eq!(results[0]["rounds"], json!([900.0, 1000.0, 100.0]));
        assert!(results[0].get("ratio_to_baseline").is_none());
        // Two rounds: the lower one is kept.
        assert_eq!(results[1]["records_per_sec"], 450.0);
        assert_eq!(results[1]["ratio_to_baseline"], 0.5);
        assert_eq!(results[1]["label"], "disk-depth3");
        // Both the baseline and the flow are measured against the single-thread loop, which
        // is measured against nothing.
        assert_eq!(results[0]["ratio_to_single"], 0.5);
        assert_eq!(results[1]["ratio_to_single"], 0.25);
        assert!(results[2].get("ratio_to_single").is_none());
        assert!(results[2].get("ratio_to_baseline").is_none());
    }

    #[test]
    fn quiet_rounds_are_preferred_and_noise_is_measured_from_proc_stat() {
        let mut noisy = run("memory", "depth3", 1_000_000, 100.0, 10);
        attach_other_load(&mut noisy, 3.0, 2.0);
        let mut quiet = run("memory", "depth3", 1_000_000, 900.0, 10);
        quiet["process_cpu_seconds"] = json!(1.9);
        attach_other_load(&mut quiet, 2.0, 2.0);
        assert_eq!(noisy["other_load"], 1.5);
        assert!((quiet["other_load"].as_f64().unwrap_or(1.0) - 0.05).abs() < 1e-9);
        let chosen = median_run(
            &planned("memory-depth3", None),
            &[noisy.clone(), quiet, noisy.clone()],
        )
        .expect("three rounds");
        assert_eq!(
            (
                chosen["records_per_sec"].as_f64(),
                chosen["noisy"].as_bool()
            ),
            (Some(900.0), Some(false))
        );
        let chosen = median_run(&planned("memory-depth3", None), &[noisy]).expect("one round");
        assert_eq!(chosen["noisy"], true);
        let stat = "cpu  100 5 50 1000 7 2 3 40 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n";
        assert_eq!(machine_busy_seconds(stat), Some(2.0));
        assert_eq!(machine_busy_seconds("intr 1 2 3"), None);
    }

    #[test]
    fn ratios_compare_only_runs_of_the_same_shape_size_and_pace() {
        let mut trickle = run("memory", "depth3", 1_000_000, 1.0, 10);
        trickle["pace"] = json!("one record every 1000 µs");
        let mut results = vec![
            run("baseline", "depth3", 1_000_000, 1000.0, 10),
            run("memory", "depth10", 1_000_000, 500.0, 10),
            run("memory", "depth3", 10_000_000, 500.0, 10),
            trickle,
        ];
        attach_ratios(&mut results);
        assert!(results
            .iter()
            .all(|result| result.get("ratio_to_baseline").is_none()));
    }

    #[test]
    fn targets_are_judged_with_their_margins() {
        let mut disk = run("disk", "depth3", 1_000_000, 400.0, 100_000);
        disk["label"] = json!("disk-depth3");
        disk["ratio_to_baseline"] = json!(0.4);
        let mut memory = run("memory", "depth3", 1_000_000, 900.0, 100_000);
        memory["label"] = json!("memory-depth3");
        memory["ratio_to_baseline"] = json!(0.9);
        let mut large = run("disk", "depth3", 10_000_000, 400.0, 130_000);
        large["label"] = json!("disk-depth3 (10M)");
        let idle =
            json!({"label": "idle-disk", "idle_cpu_seconds": 0.01, "idle_window_seconds": 5.0});
        let mut trickle = run("memory", "depth3", 2_000, 1000.0, 10);
        trickle["label"] = json!("memory-trickle");
        let targets = targets(&[disk, memory, large, idle, trickle]);
        let verdicts: Vec<(&str, bool)> = targets
            .iter()
            .map(|target| {
                (
                    target["measured"].as_str().unwrap_or_default(),
                    target["met"] == true,
                )
            })
            .collect();
        assert_eq!(
            verdicts,
            [
                ("40% of the baseline, short by 10 points", false),
                ("90% of the baseline", true),
                ("0.010 CPU s", true),
                ("125.0 µs", false),
                ("97.7 MiB at 1M, 127.0 MiB at 10M (+30.0%)", false),
            ]
        );
        assert!(target_lines(&targets).contains("MISSED"));
    }

    #[test]
    fn numbers_are_formatted_for_people() {
        assert_eq!(grouped(Some(1_234_567.4)), "1,234,567");
        assert_eq!(grouped(Some(999.0)), "999");
        assert_eq!(grouped(None), "-");
        assert_eq!(micros(Some(12.34)), "12.3");
        assert_eq!(micros(Some(38_567.9)), "38,568");
        assert_eq!(percent(Some(0.654)), "65%");
        assert_eq!(mebibytes(Some(2048.0)), "2.0 MiB");
        assert_eq!(
            proc_field("processor\t: 0\nmodel name\t: AMD EPYC\n", "model name").as_deref(),
            Some("AMD EPYC")
        );
    }

    #[test]
    fn the_table_has_a_row_per_run_and_a_line_per_idle_flow() {
        let mut disk = run("disk", "depth3", 1_000_000, 340_000.0, 180_000);
        disk["label"] = json!("disk-depth3");
        disk["ratio_to_baseline"] = json!(0.7);
        disk["journal_bytes_per_record"] = json!(435.9);
        let idle = json!({"label": "idle-memory", "idle_cpu_seconds": 0.0, "idle_window_seconds": 5.0, "peak_rss_kib": 8192});
        let table = table(&[disk, idle]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[1].starts_with("disk-depth3"));
        assert!(
            lines[1].contains("340,000") && lines[1].contains("70%") && lines[1].contains("436")
        );
        assert_eq!(
            lines[2],
            "idle-memory              0.000 CPU s over a 5 s idle window, peak RSS 8.0 MiB"
        );
    }
}
