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
//! Besides those kills across the run, a quarter as many again land in its first milliseconds:
//! right at spawn, and at seeded short delays after the child says it started, that it is
//! starting the flow (creating the run directory and opening the journals) and that the flow
//! started (journals open, no record yet). The child prints each of those markers and the
//! parent kills on reading it (after the seeded delay, which only picks the kill point, so
//! kills spread over the window rather than landing where the parent happens to react). After
//! such a kill either no run directory is listed (at most a hidden temporary directory, which
//! listings skip) or the run reads as incomplete as above and the restart names it; `obzenflow
//! runs` and `validate` answer within a deadline, without panicking.
//!
//! This is a test binary with its own `main` (`harness = false`): the parent re-runs its own
//! executable as the child. `OBZENFLOW_CRASH_RUNS` sets the number of kills across the run
//! (default 24), `OBZENFLOW_CRASH_EARLY_RUNS` the number of early kills (default a quarter of
//! that, rounded up), `OBZENFLOW_CRASH_SEED` the
//! seed (default fixed); `cargo xtask crash --runs 200` runs the long version in release mode.

mod support;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use obzenflow_core::Lane;
use obzenflow_core::{ErrorChain, JournalId, WriterId};
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
/// Mixed into the seed for the early kill points, so adding them left the others unchanged.
const EARLY_SEED_MIX: u64 = 0x5eed_0fea_714b_1100;
/// The longest seeded delay between a start-up marker and its kill.
const EARLY_DELAY_MAX_MICROS: u64 = 3_000;
/// How long `obzenflow runs` or `validate` may take on a killed run before the test calls it a
/// hang; far above what they take.
const CLI_DEADLINE: Duration = Duration::from_secs(60);

/// What the child prints as it starts, in order, before any durability report.
const MARKERS: [&str; 3] = [
    // First thing in `main`: nothing of the run exists yet.
    "process started",
    // Right before `Flow::start`, which creates the run directory and opens the journals.
    "flow starting",
    // Right after it: the journals are open, the stages starting.
    "flow started",
];

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
    if !restart {
        println!("{}", MARKERS[0]);
    }
    let base = PathBuf::from(std::env::var_os(CHILD_BASE).expect("base directory"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let flow = doubling_flow(FLOW_NAME, INPUT_RECORDS, None, Collect::default())
            .journals(Journals::disk(&base).with_sync_policy(SyncPolicy::EveryBatch))
            .metrics(MetricsConfig::default().with_interval(MetricsConfig::MIN_INTERVAL))
            .build()
            .expect("the flow builds");
        if !restart {
            println!("{}", MARKERS[1]);
        }
        let handle = flow.start().expect("the flow starts");
        if !restart {
            println!("{}", MARKERS[2]);
        }
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
    let early = env_number("OBZENFLOW_CRASH_EARLY_RUNS", runs.div_ceil(4));
    let mut points: Vec<KillPoint> = (0..runs)
        .map(|_| KillPoint::Durable {
            // Kill points spread over the whole run, never past the end of the input.
            source_durable: rng.below(INPUT_RECORDS * 9 / 10),
            later_reports: rng.below(3),
        })
        .collect();
    let mut early_rng = SplitMix64(seed ^ EARLY_SEED_MIX);
    points.extend((0..early).map(|index| match index % 4 {
        0 => KillPoint::AtSpawn,
        window => KillPoint::AfterMarker {
            marker: MARKERS[(window - 1) as usize],
            delay_micros: early_rng.below(EARLY_DELAY_MAX_MICROS + 1),
        },
    }));
    for (kill, point) in points.into_iter().enumerate() {
        let base = tempfile::tempdir().expect("temporary directory");
        if let Err(failure) = kill_and_check(kill, point, base.path(), &mut tally) {
            eprintln!("crash test FAILED at kill {kill} (seed {seed:#x}, {point:?}): {failure}");
            eprintln!("reproduce: OBZENFLOW_CRASH_SEED={seed:#x} OBZENFLOW_CRASH_RUNS={runs}");
            return ExitCode::FAILURE;
        }
    }
    println!(
        "crash test: {runs} kills across the run and {early} in its first milliseconds (seed \
         {seed:#x}) in {:.1?}: {} killed mid-append (records on disk past the last reported \
         durable point), {} finished before the kill; {} early kills left no run (temporary \
         directories left: {}), {} an incomplete run; {} torn tails cut; {} durable records \
         checked; every run incomplete, every journal opened, no durable record lost, none \
         duplicated; every restart completed",
        started.elapsed(),
        tally.mid_append,
        tally.finished_first,
        tally.no_run,
        tally.temporary_dirs,
        tally.early_incomplete,
        tally.torn_tails,
        tally.durable_checked,
    );
    ExitCode::SUCCESS
}

#[derive(Debug, Clone, Copy)]
enum KillPoint {
    /// Kill once the source's journal reported at least `source_durable` durable records and
    /// `later_reports` durability reports (of any stage) later, so kills land at different
    /// places of the stages' append cycles.
    Durable {
        source_durable: u64,
        later_reports: u64,
    },
    /// Kill right after the spawn returns, before the child has run much, if any, of `main`.
    AtSpawn,
    /// Kill `delay_micros` after the child printed `marker`.
    AfterMarker {
        marker: &'static str,
        delay_micros: u64,
    },
}

impl KillPoint {
    fn is_early(self) -> bool {
        !matches!(self, Self::Durable { .. })
    }
}

#[derive(Debug, Default)]
struct Tally {
    mid_append: u64,
    finished_first: u64,
    torn_tails: u64,
    durable_checked: u64,
    /// Early kills that left no run directory in the listing.
    no_run: u64,
    /// Hidden temporary run directories those kills left.
    temporary_dirs: u64,
    /// Early kills that left a run directory (which must read as incomplete).
    early_incomplete: u64,
}

fn kill_and_check(
    kill: usize,
    point: KillPoint,
    base: &Path,
    tally: &mut Tally,
) -> Result<(), String> {
    let mut child = spawn_child("run", base)?;
    let lines = read_lines(&mut child);
    let durable = match point {
        KillPoint::Durable {
            source_durable,
            later_reports,
        } => run_until(&lines, source_durable, later_reports)?,
        KillPoint::AtSpawn => Some([0; 3]),
        KillPoint::AfterMarker {
            marker,
            delay_micros,
        } => {
            wait_for_marker(&lines, marker)?;
            // Not a wait for anything: the delay only picks where in the window the kill lands.
            std::thread::sleep(Duration::from_micros(delay_micros));
            Some([0; 3])
        }
    };
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
    let (listed, temporary_dirs) = listed_run(base)?;
    tally.temporary_dirs += temporary_dirs;
    let Some(run_dir) = listed else {
        if !point.is_early() {
            return Err("a kill after durable records left no run directory".to_owned());
        }
        check_no_run(base)?;
        tally.no_run += 1;
        println!("kill {kill:>3}: {point:?}: no run directory, {temporary_dirs} temporary ones");
        return Ok(());
    };
    if finished {
        return Ok(());
    }
    if point.is_early() {
        tally.early_incomplete += 1;
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
    if !point.is_early()
        && on_disk
            .iter()
            .zip(&durable)
            .any(|(disk, durable)| disk > durable)
    {
        tally.mid_append += 1;
    }
    check_records(&run_dir)?;
    check_restart(base, Some(&run_dir))?;
    match point {
        KillPoint::Durable {
            source_durable,
            later_reports,
        } => println!(
            "kill {kill:>3}: after {source_durable} durable source records (+{later_reports} \
             reports): on disk {on_disk:?}, reported durable {durable:?}"
        ),
        early => println!(
            "kill {kill:>3}: {early:?}: incomplete run, {} of {} journal directories, on disk \
             {on_disk:?}",
            journal_dirs(&run_dir),
            STAGES.len() * 2,
        ),
    }
    Ok(())
}

/// How many of the stages' journal directories exist in `run_dir`.
fn journal_dirs(run_dir: &Path) -> usize {
    let Ok(run) = RunDirectory::open(run_dir) else {
        return 0;
    };
    STAGES
        .iter()
        .flat_map(|stage| [Lane::Data, Lane::Error].map(|lane| run.journal_dir(stage, lane)))
        .filter(|dir| dir.as_ref().is_ok_and(|dir| dir.exists()))
        .count()
}

/// After a kill that left no run directory: the listing answers and names no run, and a new
/// run completes without naming an earlier one.
fn check_no_run(base: &Path) -> Result<(), String> {
    let (exit, stdout) = obzenflow(&["--base", utf8(base), "runs"])?;
    if exit != Exit::Success || stdout.contains("incomplete") || stdout.contains("running") {
        return Err(format!(
            "`obzenflow runs` ({exit:?}) over a base without runs says:\n{stdout}"
        ));
    }
    check_restart(base, None)
}

/// An error as the test reports it: its chain, each cause once.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    ErrorChain::new(error).to_string()
}

fn spawn_child(mode: &str, base: &Path) -> Result<Child, String> {
    let executable = std::env::current_exe().map_err(|error| chain(&error))?;
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

/// Reads the child's lines until it prints `marker`.
fn wait_for_marker(lines: &Receiver<String>, marker: &str) -> Result<(), String> {
    loop {
        match lines.recv() {
            Ok(line) if line == marker => return Ok(()),
            Ok(_) => {}
            Err(_) => return Err(format!("the child died before printing `{marker}`")),
        }
    }
}

/// Reads the child's reports until the kill point; returns the durable counts so far, or
/// `None` if the child finished first.
fn run_until(
    lines: &Receiver<String>,
    source_durable: u64,
    later_reports: u64,
) -> Result<Option<[u64; 3]>, String> {
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
            None if durable[0] >= source_durable => reports_after = Some(0),
            None => {}
        }
        if reports_after == Some(later_reports) {
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

/// The run directory in `base`, if any (at most one entry besides hidden temporary directories
/// `.<run id>.<pid>.<random>.tmp`, what a kill during creation leaves), and how many of those
/// there are.
fn listed_run(base: &Path) -> Result<(Option<PathBuf>, u64), String> {
    let mut runs = Vec::new();
    let mut temporary_dirs = 0;
    for entry in std::fs::read_dir(base).map_err(|error| chain(&error))? {
        let path = entry.map_err(|error| chain(&error))?.path();
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("");
        if name.starts_with('.') && name.ends_with(".tmp") {
            temporary_dirs += 1;
        } else {
            runs.push(path);
        }
    }
    match runs.as_slice() {
        [] => Ok((None, temporary_dirs)),
        [run] => Ok((Some(run.clone()), temporary_dirs)),
        other => Err(format!(
            "expected at most one run directory, found {other:?}"
        )),
    }
}

fn utf8(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temporary path")
}

/// The killed run reads as incomplete through the inspection API and the CLI.
fn check_incomplete(run_dir: &Path, base: &Path) -> Result<(), String> {
    let run = RunDirectory::open(run_dir).map_err(|error| chain(&error))?;
    let state = run.state().map_err(|error| chain(&error))?;
    if state != RunState::Incomplete {
        return Err(format!("the killed run reads as `{state}`, not incomplete"));
    }
    let report = inspect::validate_run(run_dir).map_err(|error| chain(&error))?;
    if report.is_clean() || !report.to_string().contains("state: incomplete") {
        return Err(format!(
            "validation does not report the run incomplete:\n{report}"
        ));
    }
    let (exit, stdout) = obzenflow(&["--base", utf8(base), "runs"])?;
    if exit != Exit::Success || !stdout.contains("incomplete") {
        return Err(format!(
            "`obzenflow runs` does not say incomplete:\n{stdout}"
        ));
    }
    let (exit, stdout) = obzenflow(&["validate", utf8(run_dir)])?;
    if exit != Exit::Findings || !stdout.contains("state: incomplete") {
        return Err(format!(
            "`obzenflow validate` ({exit:?}) does not say incomplete:\n{stdout}"
        ));
    }
    Ok(())
}

/// Runs the `obzenflow` CLI on `arguments` on a thread, and fails if it panics or has not
/// answered within [`CLI_DEADLINE`] (a hang); returns its exit and its output.
fn obzenflow(arguments: &[&str]) -> Result<(Exit, String), String> {
    let owned: Vec<String> = arguments
        .iter()
        .map(|argument| (*argument).to_owned())
        .collect();
    let (sender, receiver) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let exit = cli::run(
            std::iter::once("obzenflow").chain(owned.iter().map(String::as_str)),
            &mut stdout,
            &mut stderr,
        );
        let mut text = String::from_utf8_lossy(&stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&stderr));
        let _ = sender.send((exit, text));
    });
    match receiver.recv_timeout(CLI_DEADLINE) {
        Ok(answer) => Ok(answer),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(format!(
            "`obzenflow {}` did not answer within {CLI_DEADLINE:?}",
            arguments.join(" ")
        )),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let panic = worker.join().err().map_or_else(String::new, |payload| {
                payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| {
                        payload
                            .downcast_ref::<&str>()
                            .map(|text| (*text).to_owned())
                    })
                    .unwrap_or_default()
            });
            Err(format!(
                "`obzenflow {}` panicked: {panic}",
                arguments.join(" ")
            ))
        }
    }
}

/// Opens every stage's data journal the way a run would (cutting a torn tail), returning how
/// many records each holds.
fn open_journals(run_dir: &Path, tally: &mut Tally) -> Result<[u64; 3], String> {
    let report = inspect::validate_run(run_dir).map_err(|error| chain(&error))?;
    for journal in &report.journals {
        if let JournalHealth::Corrupt { .. } = journal.health {
            return Err(format!("a journal is corrupt, not just torn:\n{report}"));
        }
    }
    let scheduler = SyncScheduler::start().map_err(|error| chain(&error))?;
    let config = DiskJournalConfig {
        sync: SyncPolicy::EveryBatch,
        ..DiskJournalConfig::default()
    };
    let run = RunDirectory::open(run_dir).map_err(|error| chain(&error))?;
    let mut records = [0; 3];
    for (index, stage) in STAGES.iter().enumerate() {
        for lane in [Lane::Data, Lane::Error] {
            let dir = run
                .journal_dir(stage, lane)
                .map_err(|error| chain(&error))?;
            if !dir.exists() {
                // Killed before this journal was created: it holds nothing, and opening it
                // here would create it.
                continue;
            }
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
    let run = RunDirectory::open(run_dir).map_err(|error| chain(&error))?;
    for stage in STAGES {
        let dir = run
            .journal_dir(stage, Lane::Data)
            .map_err(|error| chain(&error))?;
        if !dir.exists() {
            continue;
        }
        let mut ids = HashSet::new();
        let mut numbers = Vec::new();
        let records =
            inspect::read_journal(run_dir, stage, Lane::Data).map_err(|error| chain(&error))?;
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

/// Running the flow again over the same input completes and says what it promised, naming
/// the interrupted run if there is one, and no earlier run otherwise.
fn check_restart(base: &Path, interrupted: Option<&Path>) -> Result<(), String> {
    let child = spawn_child("restart", base)?;
    let output = child
        .wait_with_output()
        .map_err(|error| format!("the restart did not run: {error}"))?;
    let report = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!("the restart failed:\n{report}"));
    }
    let mut expected = vec![
        "completed".to_owned(),
        "guarantee: at-least-once from the source".to_owned(),
        format!("sink delivered {INPUT_RECORDS}"),
    ];
    match interrupted {
        Some(run_dir) => expected.push(format!(
            "earlier run {} of this flow is incomplete",
            run_dir.display()
        )),
        None if report.contains("earlier run") => {
            return Err(format!(
                "the restart names an earlier run where none was listed:\n{report}"
            ));
        }
        None => {}
    }
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
