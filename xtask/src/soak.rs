//! `cargo xtask soak`: runs a flow under backpressure for a while and watches its memory.
//!
//! Builds the flow benchmark in release mode (as `cargo xtask bench` does) and runs its soak
//! scenario once per journal storage, each in a process of its own: a depth-3 flow whose
//! source generates records without end into a sink paced at 50,000 records per second, so
//! the edges' windows stay full and the source spends most of its time blocked on its window
//! (`obzenflow_runtime/benches/flow/soak.rs`). The run prints a progress line once a second;
//! at each, this samples the process's resident set size (`VmRSS` of `/proc/<pid>/status`)
//! and prints the curve: time, RSS, and the records the sink has delivered so far. Disk
//! journals go under `target/soak/journals`, which is removed after each run.
//!
//! ```text
//! cargo xtask soak [--seconds N] [--storage memory|disk|both]
//! ```
//!
//! The verdict ignores the first quarter of the run (warm-up: the windows, caches and the
//! allocator filling up) and compares the median RSS of the last quarter with that of the
//! second: within 10% (and never less than 2 MiB) is flat; more is growing, and the command
//! fails. The process runs with glibc's `MALLOC_ARENA_MAX=1` unless the environment sets it
//! (see `DEFAULT_ARENA_MAX` for why). Not part of CI: it takes a minute per storage.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;

use serde_json::Value;

use crate::bench;
use crate::cmd;
use crate::error::XtaskError;

/// How long each storage runs by default.
const DEFAULT_SECONDS: u64 = 60;
/// The shortest run whose quarters hold two samples each.
const MIN_SECONDS: u64 = 8;
/// How much the last quarter's median RSS may exceed the second quarter's, as a share of it.
const TOLERANCE_RATIO: f64 = 0.10;
/// The least growth counted as growing, whatever the ratio: allocator noise on a small heap.
const TOLERANCE_FLOOR_KIB: u64 = 2 * 1024;
/// Where disk journals go, relative to the workspace root; removed after each run.
const JOURNAL_DIR: &str = "target/soak/journals";
/// Every storage the soak scenario runs with.
const STORAGES: &[&str] = &["memory", "disk"];
/// glibc's environment variable capping its malloc arenas.
const ARENA_MAX_VARIABLE: &str = "MALLOC_ARENA_MAX";
/// The arenas the soaking process gets unless the caller's environment sets
/// [`ARENA_MAX_VARIABLE`]: one, so that RSS follows the flow's live memory. With glibc's
/// default of an arena per thread, each arena keeps the high-water mark of what the tasks
/// running on its thread allocated; when a stage task first moves to tokio's other worker,
/// RSS steps up by about one journal retention's worth (12-15 MiB here) at a random moment,
/// once, and stays there: bounded, but indistinguishable from growth in a one-minute curve.
const DEFAULT_ARENA_MAX: &str = "1";

/// The options of `cargo xtask soak`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Options {
    /// How long each storage runs.
    seconds: u64,
    /// The storages to run, in order.
    storages: Vec<&'static str>,
}

impl Options {
    /// Parses `[--seconds N] [--storage memory|disk|both]`.
    fn parse(arguments: &[String]) -> Result<Self, XtaskError> {
        let mut options = Self {
            seconds: DEFAULT_SECONDS,
            storages: STORAGES.to_vec(),
        };
        let mut rest = arguments.iter();
        while let Some(argument) = rest.next() {
            let mut value = || {
                rest.next()
                    .ok_or_else(|| invalid(argument, "needs a value"))
            };
            match argument.as_str() {
                "--seconds" => {
                    let value = value()?;
                    options.seconds = value
                        .parse()
                        .ok()
                        .filter(|seconds| *seconds >= MIN_SECONDS)
                        .ok_or_else(|| invalid(value, "is not a number of seconds (8 or more)"))?;
                }
                "--storage" => {
                    let value = value()?;
                    options.storages = match value.as_str() {
                        "both" => STORAGES.to_vec(),
                        one => STORAGES
                            .iter()
                            .copied()
                            .filter(|storage| *storage == one)
                            .collect(),
                    };
                    if options.storages.is_empty() {
                        return Err(invalid(value, "is not a storage (memory, disk, both)"));
                    }
                }
                other => {
                    return Err(invalid(
                        other,
                        "is not an option (--seconds N, --storage memory|disk|both)",
                    ))
                }
            }
        }
        Ok(options)
    }
}

fn invalid(argument: &str, reason: &'static str) -> XtaskError {
    XtaskError::InvalidArgument {
        subcommand: "soak",
        argument: argument.to_owned(),
        reason,
    }
}

/// One sample of the soaking process.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    /// Seconds since the flow started running.
    seconds: f64,
    /// Its resident set size.
    rss_kib: u64,
    /// Records its sink had delivered by then.
    records: Option<u64>,
}

/// The verdict on a curve: flat or growing after warm-up.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Verdict {
    /// Median RSS of the second quarter of the run.
    early_kib: u64,
    /// Median RSS of the last quarter of the run.
    late_kib: u64,
    /// How much `late_kib` may exceed `early_kib` and still be flat.
    tolerance_kib: u64,
}

impl Verdict {
    /// Judges the samples of a run of `seconds`; `None` when a quarter holds no sample.
    fn of(samples: &[Sample], seconds: f64) -> Option<Self> {
        let quarter = |from: f64, to: f64| {
            let mut values: Vec<u64> = samples
                .iter()
                .filter(|sample| sample.seconds >= from * seconds && sample.seconds <= to * seconds)
                .map(|sample| sample.rss_kib)
                .collect();
            values.sort_unstable();
            values.get(values.len() / 2).copied()
        };
        let early_kib = quarter(0.25, 0.5)?;
        let late_kib = quarter(0.75, 1.0)?;
        let tolerance_kib = ((early_kib as f64 * TOLERANCE_RATIO) as u64).max(TOLERANCE_FLOOR_KIB);
        Some(Self {
            early_kib,
            late_kib,
            tolerance_kib,
        })
    }

    fn is_flat(&self) -> bool {
        self.late_kib <= self.early_kib + self.tolerance_kib
    }

    /// One line: both medians, the change and the tolerance, then `flat` or `growing`.
    fn describe(&self, seconds: u64) -> String {
        let change = self.late_kib as f64 - self.early_kib as f64;
        format!(
            "median RSS {} in the second quarter ({}-{} s), {} in the last ({}-{} s): {:+.1} MiB \
             ({:+.1}%), tolerance {}: {}",
            mib(self.early_kib),
            seconds / 4,
            seconds / 2,
            mib(self.late_kib),
            seconds * 3 / 4,
            seconds,
            change / 1024.0,
            100.0 * change / self.early_kib.max(1) as f64,
            mib(self.tolerance_kib),
            if self.is_flat() { "flat" } else { "growing" },
        )
    }
}

/// `cargo xtask soak [--seconds N] [--storage memory|disk|both]`.
pub(crate) fn run(arguments: &[String]) -> Result<(), XtaskError> {
    let options = Options::parse(arguments)?;
    let executables = bench::build(&[bench::FLOW_BENCH])?;
    let flow = bench::executable(&executables, bench::FLOW_BENCH)?;
    let mut growing = Vec::new();
    let mut verdicts = Vec::new();
    for storage in &options.storages {
        let scenario = format!("soak-{storage}");
        let verdict = soak(flow, &scenario, options.seconds)?;
        if !verdict.is_flat() {
            growing.push(scenario.clone());
        }
        verdicts.push((scenario, verdict));
    }
    println!();
    for (scenario, verdict) in &verdicts {
        println!("{scenario}: {}", verdict.describe(options.seconds));
    }
    if growing.is_empty() {
        Ok(())
    } else {
        Err(XtaskError::SoakGrowing { scenarios: growing })
    }
}

/// Runs `scenario` for `seconds`, printing its RSS curve, and judges the curve.
fn soak(flow: &Path, scenario: &str, seconds: u64) -> Result<Verdict, XtaskError> {
    let journal_dir = cmd::workspace_root().join(JOURNAL_DIR);
    let arena_max = std::env::var(ARENA_MAX_VARIABLE).unwrap_or(DEFAULT_ARENA_MAX.to_owned());
    let mut command = Command::new(flow);
    command
        .current_dir(cmd::workspace_root())
        .arg(scenario)
        .args(["--seconds", &seconds.to_string()])
        .arg("--dir")
        .arg(&journal_dir)
        .env(ARENA_MAX_VARIABLE, &arena_max)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    println!();
    println!("==> {scenario} for {seconds} s, {ARENA_MAX_VARIABLE}={arena_max}");
    println!("{:>8} {:>10} {:>14}", "time s", "RSS MiB", "records");
    let outcome = run_sampled(&mut command);
    // The run removes its own run directory; this catches what a failed run left behind.
    if let Err(source) = std::fs::remove_dir_all(&journal_dir) {
        if source.kind() != std::io::ErrorKind::NotFound {
            return Err(XtaskError::Write {
                path: journal_dir,
                source,
            });
        }
    }
    let (status, samples, figures) = outcome?;
    if !status.success() {
        return Err(XtaskError::CommandFailed {
            command: cmd::describe(&command),
            status,
        });
    }
    let figures = figures.ok_or_else(|| XtaskError::BenchOutput {
        scenario: scenario.to_owned(),
        reason: "it printed no final figures".to_owned(),
    })?;
    println!("{}", describe_figures(&figures));
    let verdict = Verdict::of(&samples, seconds as f64).ok_or_else(|| XtaskError::BenchOutput {
        scenario: scenario.to_owned(),
        reason: format!(
            "a quarter of the run has no RSS sample ({} samples)",
            samples.len()
        ),
    })?;
    println!("{}", verdict.describe(seconds));
    Ok(verdict)
}

/// Spawns `command` and, each time it prints a progress line, samples its RSS and prints the
/// sample; returns how it exited, the samples and its final figures.
fn run_sampled(
    command: &mut Command,
) -> Result<(ExitStatus, Vec<Sample>, Option<Value>), XtaskError> {
    let described = cmd::describe(command);
    let spawn_error = |source| XtaskError::Spawn {
        command: described.clone(),
        source,
    };
    let mut child = command.spawn().map_err(spawn_error)?;
    let status_path = format!("/proc/{}/status", child.id());
    let reader = child
        .stdout
        .take()
        .map(|stdout| thread::spawn(move || sample_progress(stdout, &status_path)));
    let status = child.wait().map_err(spawn_error)?;
    // The reader ends with the process's stdout; a panic in it has been printed already.
    let (samples, figures) = match reader.map(thread::JoinHandle::join) {
        Some(Ok(read)) => read,
        Some(Err(_)) | None => (Vec::new(), None),
    };
    Ok((status, samples, figures))
}

/// Reads the soaking process's stdout: at each progress line, samples the process's RSS from
/// `status_path` at once, so the sample, its time and its record count belong together; keeps
/// the final figures (the object with a `scenario`). Other lines are passed through.
fn sample_progress(stdout: impl Read, status_path: &str) -> (Vec<Sample>, Option<Value>) {
    let mut samples = Vec::new();
    let mut figures = None;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let Ok(value) = serde_json::from_str::<Value>(&line) else {
            println!("{line}");
            continue;
        };
        if value.get("scenario").is_some() {
            figures = Some(value);
            continue;
        }
        let (Some(seconds), Some(rss_kib)) =
            (value["elapsed_seconds"].as_f64(), read_rss_kib(status_path))
        else {
            println!("{line}");
            continue;
        };
        let sample = Sample {
            seconds,
            rss_kib,
            records: value["records"].as_u64(),
        };
        println!("{}", sample_line(&sample));
        samples.push(sample);
    }
    (samples, figures)
}

/// `VmRSS` in KiB from the `/proc/<pid>/status` at `path`; `None` once the process is gone.
fn read_rss_kib(path: &str) -> Option<u64> {
    let status = std::fs::read_to_string(path).ok()?;
    parse_vm_rss_kib(&status)
}

fn parse_vm_rss_kib(status: &str) -> Option<u64> {
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?;
    line.trim().trim_end_matches("kB").trim().parse().ok()
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn sample_line(sample: &Sample) -> String {
    let records = sample.records.map_or_else(|| "-".to_owned(), thousands);
    format!(
        "{:>8.1} {:>10.1} {:>14}",
        sample.seconds,
        sample.rss_kib as f64 / 1024.0,
        records
    )
}

/// `1234567` as `1,234,567`.
fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

/// The run's own figures in one line: throughput, backpressure, peak RSS, journal bytes.
fn describe_figures(figures: &Value) -> String {
    let number = |key: &str| figures[key].as_f64().unwrap_or(f64::NAN);
    let mut line = format!(
        "{} records delivered at {:.0}/s (sink paced at {}/s); source blocked on its window {:.0}% \
         of the time; peak RSS {}",
        thousands(figures["records"].as_u64().unwrap_or(0)),
        number("records_per_sec"),
        thousands(figures["sink_rate"].as_u64().unwrap_or(0)),
        100.0 * number("source_blocked_share"),
        mib(figures["peak_rss_kib"].as_u64().unwrap_or(0)),
    );
    if let Some(bytes) = figures["journal_bytes"].as_u64() {
        line.push_str(&format!(
            "; journals {:.0} MiB",
            bytes as f64 / (1024.0 * 1024.0)
        ));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arguments(words: &[&str]) -> Vec<String> {
        words.iter().map(|word| (*word).to_owned()).collect()
    }

    fn curve(rss_kib: impl Fn(u64) -> u64) -> Vec<Sample> {
        (1..=60)
            .map(|second| Sample {
                seconds: second as f64 + 0.01,
                rss_kib: rss_kib(second),
                records: Some(second * 50_000),
            })
            .collect()
    }

    #[test]
    fn options_default_to_a_minute_of_each_storage() {
        let options = Options::parse(&[]).expect("no options");
        assert_eq!(options.seconds, 60);
        assert_eq!(options.storages, vec!["memory", "disk"]);
        let options = Options::parse(&arguments(&["--seconds", "20", "--storage", "disk"]))
            .expect("valid options");
        assert_eq!((options.seconds, options.storages), (20, vec!["disk"]));
        for bad in [
            &["--seconds", "3"][..],
            &["--seconds"],
            &["--storage", "tape"],
            &["--rounds", "2"],
            &["disk"],
        ] {
            assert!(matches!(
                Options::parse(&arguments(bad)),
                Err(XtaskError::InvalidArgument { .. })
            ));
        }
    }

    #[test]
    fn a_curve_that_settles_after_warm_up_is_flat() {
        // Steep warm-up, then noise of +-1 MiB around 30 MiB.
        let samples = curve(|second| match second {
            0..=10 => second * 3 * 1024,
            _ => 30 * 1024 + (second % 3) * 1024 - 1024,
        });
        let verdict = Verdict::of(&samples, 60.0).expect("every quarter sampled");
        assert!(verdict.is_flat(), "{verdict:?}");
        assert_eq!(verdict.tolerance_kib, 3072);
    }

    #[test]
    fn a_curve_that_keeps_climbing_is_growing() {
        // 0.2 MiB a second: 6 MiB between the quarters' medians.
        let samples = curve(|second| 30 * 1024 + second * 205);
        let verdict = Verdict::of(&samples, 60.0).expect("every quarter sampled");
        assert!(!verdict.is_flat(), "{verdict:?}");
        assert!(verdict.describe(60).ends_with("growing"));
    }

    #[test]
    fn a_run_without_samples_in_a_quarter_has_no_verdict() {
        let samples = curve(|_| 1024);
        assert_eq!(Verdict::of(&samples[..20], 60.0), None);
    }

    #[test]
    fn status_lines_and_numbers_are_read_and_printed() {
        let status = "Name:\tflow\nVmHWM:\t  40000 kB\nVmRSS:\t   31744 kB\nThreads:\t4\n";
        assert_eq!(parse_vm_rss_kib(status), Some(31_744));
        assert_eq!(parse_vm_rss_kib("Name:\tzombie\n"), None);
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
        assert_eq!(mib(31_744), "31.0 MiB");
    }
}
