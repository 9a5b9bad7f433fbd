//! Crash recovery under `SIGKILL`: a disk-journal flow (`numbers -> double -> collect`, fsync
//! on every batch) runs in a child process that is killed at seeded points across its run;
//! after every kill the parent checks what the issue of record promises:
//!
//! - the run directory reads as incomplete, through the inspection API
//!   ([`RunDirectory::state`], [`inspect::validate_run`]) and through the `obzenflow` CLI;
//! - every journal opens, a torn tail (if any) cut and reported;
//! - every record a journal reported as durable (the child prints each stage's
//!   `journal_durable` from the metrics snapshots) is present, in order, and none twice;
//! - running the flow again over the same input completes, delivers every source record, and
//!   its report states the at-least-once guarantee and names the interrupted run.
//!
//! This is a test binary with its own `main` (`harness = false`): the parent re-runs its own
//! executable as the child. `OBZENFLOW_CRASH_RUNS` sets the number of kills (default 24),
//! `OBZENFLOW_CRASH_SEED` the seed (default fixed); `cargo xtask crash --runs 200` runs the long
//! version in release mode.

mod support;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Instant;

use obzenflow_core::Lane;
use obzenflow_core::{JournalId, WriterId};
use obzenflow_runtime::cli::{self, Exit};
use obzenflow_runtime::journal::inspect::{self, JournalHealth};
use obzenflow_runtime::journal::{
    DiskJournal, DiskJournalConfig, RunDirectory, RunState, SyncPolicy, SyncScheduler,
};
use obzenflow_runtime::metrics::MetricsConfig;
use obzenflow_runtime::pipeline::{FlowHandle, Journals};
use support::{doubling_flow, Collect};

/// Set in the child's environment: what the child does, and where.
const CHILD_MODE: &str = "OBZENFLOW_CRASH_CHILD";
const CHILD_BASE: &str = "OBZENFLOW_CRASH_BASE";
/// How many source records the flow's input has.
const INPUT_RECORDS: u64 = 20_000;
/// The stages, in flow order.
const STAGES: [&str; 3] = ["numbers", "double", "collect"];
const FLOW_NAME: &str = "crash";
const DEFAULT_RUNS: u64 = 24;
const DEFAULT_SEED: u64 = 0x0b2e_7f10_c4a5_4e11;

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().collect();
    if arguments.iter().any(|argument| argument == "--list") {
        // What `cargo test -- --list` and test runners expect of a test binary.
        println!("sigkill_recovery: test");
        return ExitCode::SUCCESS;
    }
    match std::env::var(CHILD_MODE).as_deref() {
        Ok("run") => child(false),
        Ok("restart") => child(true),
        _ => parent(),
    }
}

// ---------------------------------------------------------------------------------------------
// The child: runs the flow, printing each stage's durable count as it grows.

fn child(restart: bool) -> ExitCode {
    let base = PathBuf::from(std::env::var_os(CHILD_BASE).expect("base directory"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let handle = doubling_flow(FLOW_NAME, INPUT_RECORDS, None, Collect::default())
            .journals(Journals::disk(&base).with_sync_policy(SyncPolicy::EveryBatch))
            .metrics(MetricsConfig::default().with_interval(MetricsConfig::MIN_INTERVAL))
            .build()
            .and_then(|flow| flow.start())
            .expect("the flow starts");
        if restart {
            let report = handle.wait().await.expect("the restarted flow runs");
            println!("{report}");
            let delivered = report.stage("collect").map_or(0, |sink| sink.records_out);
            println!("sink delivered {delivered}");
            return if report.is_success() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
        }
        report_durability(handle).await;
        ExitCode::SUCCESS
    })
}

/// Prints `durable <stage> <records>` whenever a stage's durable count grows, until the flow
/// ends (or the process is killed).
async fn report_durability(handle: FlowHandle) {
    let mut snapshots = handle.snapshots();
    let mut printed = [0_u64; STAGES.len()];
    loop {
        let snapshot = snapshots.borrow_and_update().clone();
        for (index, stage) in snapshot.stages.iter().enumerate() {
            if stage.journal_durable > printed[index] {
                printed[index] = stage.journal_durable;
                println!("durable {} {}", stage.name, stage.journal_durable);
            }
        }
        if snapshots.changed().await.is_err() {
            break;
        }
    }
    let _ = handle.wait().await;
    println!("finished");
}

// ---------------------------------------------------------------------------------------------
// The parent: kills children at seeded points and checks what they left.

fn parent() -> ExitCode {
    let runs = env_number("OBZENFLOW_CRASH_RUNS", DEFAULT_RUNS);
    let seed = env_number("OBZENFLOW_CRASH_SEED", DEFAULT_SEED);
    let started = Instant::now();
    let mut rng = SplitMix64(seed);
    let mut tally = Tally::default();
    for kill in 0..runs {
        let point = KillPoint {
            // Kill points spread over the whole run, never past the end of the input.
            source_durable: rng.below(INPUT_RECORDS * 9 / 10),
            later_reports: rng.below(3),
        };
        let base = tempfile::tempdir().expect("temporary directory");
        if let Err(failure) = kill_and_check(kill, point, base.path(), &mut tally) {
            eprintln!("crash test FAILED at kill {kill} (seed {seed:#x}, {point:?}): {failure}");
            eprintln!("reproduce: OBZENFLOW_CRASH_SEED={seed:#x} OBZENFLOW_CRASH_RUNS={runs}");
            return ExitCode::FAILURE;
        }
    }
    println!(
        "crash test: {runs} kills (seed {seed:#x}) in {:.1?}: {} killed mid-append (records on \
         disk past the last reported durable point), {} finished before the kill; {} torn tails \
         cut; {} durable records checked; every run incomplete, every journal opened, no \
         durable record lost, none duplicated; every restart completed",
        started.elapsed(),
        tally.mid_append,
        tally.finished_first,
        tally.torn_tails,
        tally.durable_checked,
    );
    ExitCode::SUCCESS
}

#[derive(Debug, Clone, Copy)]
struct KillPoint {
    /// Kill once the source's journal reported at least this many durable records...
    source_durable: u64,
    /// ...and this many durability reports (of any stage) later, so kills land at different
    /// places of the stages' append cycles.
    later_reports: u64,
}

#[derive(Debug, Default)]
struct Tally {
    mid_append: u64,
    finished_first: u64,
    torn_tails: u64,
    durable_checked: u64,
}

fn kill_and_check(
    kill: u64,
    point: KillPoint,
    base: &Path,
    tally: &mut Tally,
) -> Result<(), String> {
    let mut child = spawn_child("run", base)?;
    let lines = read_lines(&mut child);
    let durable = run_until(&lines, point)?;
    let finished = durable.is_none();
    if finished {
        tally.finished_first += 1;
    }
    child
        .kill()
        .map_err(|error| format!("cannot kill the child: {error}"))?;
    child
        .wait()
        .map_err(|error| format!("cannot reap the child: {error}"))?;
    // Durable counts the child printed between the trigger and its death count too.
    let mut durable = durable.unwrap_or_default();
    for line in lines.iter() {
        record_durable(&line, &mut durable);
    }
    let run_dir = only_run(base)?;
    if finished {
        return Ok(());
    }
    check_incomplete(&run_dir, base)?;
    let on_disk = open_journals(&run_dir, tally)?;
    for (index, stage) in STAGES.iter().enumerate() {
        if on_disk[index] < durable[index] {
            return Err(format!(
                "`{stage}` reported {} durable records but its journal holds {}",
                durable[index], on_disk[index]
            ));
        }
        tally.durable_checked += durable[index];
    }
    if on_disk
        .iter()
        .zip(&durable)
        .any(|(disk, durable)| disk > durable)
    {
        tally.mid_append += 1;
    }
    check_records(&run_dir)?;
    check_restart(base, &run_dir)?;
    println!(
        "kill {kill:>3}: after {} durable source records (+{} reports): on disk {on_disk:?}, \
         reported durable {durable:?}",
        point.source_durable, point.later_reports
    );
    Ok(())
}

fn spawn_child(mode: &str, base: &Path) -> Result<Child, String> {
    let executable = std::env::current_exe().map_err(|error| error.to_string())?;
    Command::new(executable)
        .env(CHILD_MODE, mode)
        .env(CHILD_BASE, base)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|error| format!("cannot start the child: {error}"))
}

/// The child's stdout, line by line, read on a thread so the parent can block on a channel.
fn read_lines(child: &mut Child) -> Receiver<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

/// Reads the child's reports until the kill point; returns the durable counts so far, or
/// `None` if the child finished first.
fn run_until(lines: &Receiver<String>, point: KillPoint) -> Result<Option<[u64; 3]>, String> {
    let mut durable = [0; 3];
    let mut reports_after: Option<u64> = None;
    loop {
        let Ok(line) = lines.recv() else {
            return Err("the child died before reaching its kill point".to_owned());
        };
        if line == "finished" {
            return Ok(None);
        }
        record_durable(&line, &mut durable);
        match reports_after.as_mut() {
            Some(reports) => *reports += 1,
            None if durable[0] >= point.source_durable => reports_after = Some(0),
            None => {}
        }
        if reports_after == Some(point.later_reports) {
            return Ok(Some(durable));
        }
    }
}

fn record_durable(line: &str, durable: &mut [u64; 3]) {
    let mut words = line.split(' ');
    let (Some("durable"), Some(stage), Some(count)) = (words.next(), words.next(), words.next())
    else {
        return;
    };
    if let (Some(index), Ok(count)) = (STAGES.iter().position(|name| *name == stage), count.parse())
    {
        durable[index] = durable[index].max(count);
    }
}

fn only_run(base: &Path) -> Result<PathBuf, String> {
    let runs: Vec<PathBuf> = std::fs::read_dir(base)
        .map_err(|error| error.to_string())?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .collect();
    match runs.as_slice() {
        [run] => Ok(run.clone()),
        other => Err(format!("expected one run directory, found {other:?}")),
    }
}

/// The killed run reads as incomplete through the inspection API and the CLI.
fn check_incomplete(run_dir: &Path, base: &Path) -> Result<(), String> {
    let run = RunDirectory::open(run_dir).map_err(|error| error.to_string())?;
    let state = run.state().map_err(|error| error.to_string())?;
    if state != RunState::Incomplete {
        return Err(format!("the killed run reads as `{state}`, not incomplete"));
    }
    let report = inspect::validate_run(run_dir).map_err(|error| error.to_string())?;
    if report.is_clean() || !report.to_string().contains("state: incomplete") {
        return Err(format!(
            "validation does not report the run incomplete:\n{report}"
        ));
    }
    let base = base.to_str().expect("UTF-8 temporary path");
    let run_dir = run_dir.to_str().expect("UTF-8 temporary path");
    let (exit, stdout) = obzenflow(&["--base", base, "runs"]);
    if exit != Exit::Success || !stdout.contains("incomplete") {
        return Err(format!(
            "`obzenflow runs` does not say incomplete:\n{stdout}"
        ));
    }
    let (exit, stdout) = obzenflow(&["validate", run_dir]);
    if exit != Exit::Findings || !stdout.contains("state: incomplete") {
        return Err(format!(
            "`obzenflow validate` ({exit:?}) does not say incomplete:\n{stdout}"
        ));
    }
    Ok(())
}

fn obzenflow(arguments: &[&str]) -> (Exit, String) {
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let exit = cli::run(
        std::iter::once("obzenflow").chain(arguments.iter().copied()),
        &mut stdout,
        &mut stderr,
    );
    let mut text = String::from_utf8_lossy(&stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&stderr));
    (exit, text)
}

/// Opens every stage's data journal the way a run would (cutting a torn tail), returning how
/// many records each holds.
fn open_journals(run_dir: &Path, tally: &mut Tally) -> Result<[u64; 3], String> {
    let report = inspect::validate_run(run_dir).map_err(|error| error.to_string())?;
    for journal in &report.journals {
        if let JournalHealth::Corrupt { .. } = journal.health {
            return Err(format!("a journal is corrupt, not just torn:\n{report}"));
        }
    }
    let scheduler = SyncScheduler::start().map_err(|error| error.to_string())?;
    let config = DiskJournalConfig {
        sync: SyncPolicy::EveryBatch,
        ..DiskJournalConfig::default()
    };
    let run = RunDirectory::open(run_dir).map_err(|error| error.to_string())?;
    let mut records = [0; 3];
    for (index, stage) in STAGES.iter().enumerate() {
        for lane in [Lane::Data, Lane::Error] {
            let dir = run
                .journal_dir(stage, lane)
                .map_err(|error| error.to_string())?;
            let id = JournalId::new(WriterId::Unassigned, *stage, lane);
            let journal = DiskJournal::open(&dir, id, &config, &scheduler)
                .map_err(|error| format!("journal {stage}.{lane} does not open: {error}"))?;
            if let Some(recovery) = journal.recovery() {
                println!("    recovered: {recovery}");
                tally.torn_tails += 1;
            }
            if lane == Lane::Data {
                records[index] = obzenflow_core::Journal::committed(&journal);
            }
        }
    }
    Ok(records)
}

/// Each journal holds a prefix of what the flow produces: the source's numbers in order from
/// 0, every record once.
fn check_records(run_dir: &Path) -> Result<(), String> {
    for stage in STAGES {
        let mut ids = HashSet::new();
        let mut numbers = Vec::new();
        let records =
            inspect::read_journal(run_dir, stage, Lane::Data).map_err(|error| error.to_string())?;
        for record in records {
            let record = record.map_err(|error| format!("{stage}: {error}"))?;
            if !ids.insert(record.id) {
                return Err(format!("`{stage}` holds record {} twice", record.id));
            }
            if let Some(n) = record.json().and_then(|payload| payload["n"].as_u64()) {
                numbers.push(n);
            }
        }
        if stage != "collect" && numbers.iter().copied().ne(0..numbers.len() as u64) {
            return Err(format!("`{stage}` does not hold 0, 1, 2, ... in order"));
        }
    }
    Ok(())
}

/// Running the flow again over the same input completes and says what it promised.
fn check_restart(base: &Path, interrupted: &Path) -> Result<(), String> {
    let child = spawn_child("restart", base)?;
    let output = child
        .wait_with_output()
        .map_err(|error| format!("the restart did not run: {error}"))?;
    let report = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!("the restart failed:\n{report}"));
    }
    let expected = [
        "completed".to_owned(),
        "guarantee: at-least-once from the source".to_owned(),
        format!(
            "earlier run {} of this flow is incomplete",
            interrupted.display()
        ),
        format!("sink delivered {INPUT_RECORDS}"),
    ];
    for text in &expected {
        if !report.contains(text.as_str()) {
            return Err(format!("the restart's report lacks `{text}`:\n{report}"));
        }
    }
    Ok(())
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) => {
            let parsed = match text.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => text.parse(),
            };
            parsed.unwrap_or_else(|_| panic!("{name}={text} is not a number"))
        }
        Err(_) => default,
    }
}

/// A tiny seeded generator (SplitMix64): reproducible kill points without a dependency.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }
}
