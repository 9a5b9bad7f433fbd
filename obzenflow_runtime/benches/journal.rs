//! Journal micro-benchmark: one writer task appends small order records in batches while one
//! reader task reads them back, through a memory journal and disk journals under two sync
//! policies, next to a plain tokio mpsc channel doing the same hand-off.
//!
//! Run with `cargo bench -p obzenflow_runtime --bench journal`; set `OBZENFLOW_BENCH_RECORDS`
//! to change the record count (default 1,000,000).

use std::num::NonZeroU64;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use obzenflow_core::{ChainEvent, Journal, JournalError, JournalId, Lane, StageId, WriterId};
use obzenflow_runtime::journal::{
    DiskJournal, DiskJournalConfig, MemoryJournal, SyncPolicy, SyncScheduler,
};
use serde_json::json;

const BATCH: u64 = 1024;
/// The reader's backpressure window; the disk cache is at least this large, so the reader is
/// always served from memory.
const WINDOW: u64 = 65_536;

type BenchError = Box<dyn std::error::Error + Send + Sync>;

/// One benchmark row.
struct Outcome {
    case: String,
    records: u64,
    elapsed: Duration,
    bytes: Option<u64>,
}

fn main() -> Result<(), BenchError> {
    let records = env_number("OBZENFLOW_BENCH_RECORDS", 1_000_000)?;
    let rounds = env_number("OBZENFLOW_BENCH_ROUNDS", 3)?.max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    println!(
        "journal benchmark: {records} records in batches of {BATCH}, one writer task and one \
         reader task (window {WINDOW}); median of {rounds} rounds"
    );
    let mut table = Vec::new();
    for case in CASES {
        let mut outcomes = Vec::new();
        for _ in 0..rounds {
            outcomes.push(runtime.block_on(run_case(*case, records))?);
        }
        outcomes.sort_by_key(|outcome| outcome.elapsed);
        table.push(outcomes.swap_remove(outcomes.len() / 2));
    }
    print_table(&table);
    Ok(())
}

fn env_number(name: &str, default: u64) -> Result<u64, BenchError> {
    match std::env::var(name) {
        Ok(text) => Ok(text.parse()?),
        Err(_) => Ok(default),
    }
}

/// What one row of the table measures.
#[derive(Debug, Clone, Copy)]
enum Case {
    Mpsc,
    Memory,
    BoundedMemory,
    Disk(SyncPolicy),
}

const CASES: &[Case] = &[
    Case::Mpsc,
    Case::Memory,
    Case::BoundedMemory,
    Case::Disk(SyncPolicy::Interval(Duration::from_millis(50))),
    Case::Disk(SyncPolicy::EveryBatch),
];

async fn run_case(case: Case, records: u64) -> Result<Outcome, BenchError> {
    match case {
        Case::Mpsc => mpsc_baseline(records).await,
        Case::Memory => {
            let journal = Arc::new(MemoryJournal::new(journal_id()));
            run_journal(
                "memory journal, keeps every record".into(),
                journal,
                records,
            )
            .await
        }
        Case::BoundedMemory => {
            let journal = Arc::new(MemoryJournal::bounded(journal_id(), WINDOW as usize));
            let case = format!("memory journal, keeps the last {WINDOW}");
            run_journal(case, journal, records).await
        }
        Case::Disk(sync) => run_disk(sync, records).await,
    }
}

fn journal_id() -> JournalId {
    JournalId::new(WriterId::Stage(StageId::new()), "orders", Lane::Data)
}

fn batch(first: u64, records: u64) -> Vec<ChainEvent> {
    (first..(first + BATCH).min(records))
        .map(|i| {
            ChainEvent::data(
                "order",
                json!({"id": i, "customer": format!("c{}", i % 1000), "amount": i as f64 * 0.01}),
            )
        })
        .collect()
}

async fn run_disk(sync: SyncPolicy, records: u64) -> Result<Outcome, BenchError> {
    let dir = tempfile::tempdir()?;
    let scheduler = SyncScheduler::start()?;
    let config = DiskJournalConfig {
        sync,
        ..DiskJournalConfig::default()
    };
    let journal_dir = dir.path().join("orders");
    let journal = Arc::new(DiskJournal::open(
        &journal_dir,
        journal_id(),
        &config,
        &scheduler,
    )?);
    let case = format!("disk journal, {sync}");
    let mut outcome = run_journal(case, journal, records).await?;
    outcome.bytes = Some(directory_bytes(&journal_dir)?);
    Ok(outcome)
}

async fn run_journal(
    case: String,
    journal: Arc<dyn Journal>,
    records: u64,
) -> Result<Outcome, BenchError> {
    let mut reader = journal.reader(0, NonZeroU64::new(WINDOW))?;
    let started = Instant::now();
    let reading = tokio::spawn(async move {
        let mut batch = Vec::with_capacity(BATCH as usize);
        let mut seen = 0_u64;
        loop {
            batch.clear();
            let read = reader.read(BATCH as usize, &mut batch)?;
            if read == 0 {
                match reader.wait().await {
                    Ok(()) => continue,
                    Err(JournalError::Closed { .. }) => return Ok::<_, JournalError>(seen),
                    Err(error) => return Err(error),
                }
            }
            seen += read as u64;
        }
    });
    let writer_journal = Arc::clone(&journal);
    let writing = tokio::spawn(async move {
        for first in (0..records).step_by(BATCH as usize) {
            writer_journal.append(batch(first, records)).await?;
        }
        writer_journal.close().await
    });
    writing.await??;
    let seen = reading.await??;
    let elapsed = started.elapsed();
    assert_eq!(seen, records, "{case}: the reader saw every record");
    Ok(Outcome {
        case,
        records,
        elapsed,
        bytes: None,
    })
}

/// The same hand-off through a bounded tokio channel of batches: the cost floor.
async fn mpsc_baseline(records: u64) -> Result<Outcome, BenchError> {
    let (sender, mut receiver) =
        tokio::sync::mpsc::channel::<Vec<ChainEvent>>((WINDOW / BATCH) as usize);
    let started = Instant::now();
    let reading = tokio::spawn(async move {
        let mut seen = 0_u64;
        while let Some(batch) = receiver.recv().await {
            seen += batch.len() as u64;
        }
        seen
    });
    for first in (0..records).step_by(BATCH as usize) {
        sender.send(batch(first, records)).await?;
    }
    drop(sender);
    let seen = reading.await?;
    assert_eq!(seen, records);
    Ok(Outcome {
        case: "tokio mpsc baseline (no journal)".into(),
        records,
        elapsed: started.elapsed(),
        bytes: None,
    })
}

fn directory_bytes(dir: &Path) -> std::io::Result<u64> {
    let mut bytes = 0;
    for entry in std::fs::read_dir(dir)? {
        bytes += entry?.metadata()?.len();
    }
    Ok(bytes)
}

fn print_table(outcomes: &[Outcome]) {
    println!();
    println!(
        "{:<44} {:>14} {:>10} {:>14}",
        "case", "records/s", "seconds", "bytes/record"
    );
    for outcome in outcomes {
        let seconds = outcome.elapsed.as_secs_f64();
        let rate = outcome.records as f64 / seconds;
        let bytes = match outcome.bytes {
            Some(bytes) => format!("{:.1}", bytes as f64 / outcome.records as f64),
            None => "-".to_owned(),
        };
        println!(
            "{:<44} {:>14.0} {:>10.3} {:>14}",
            outcome.case, rate, seconds, bytes
        );
    }
}
