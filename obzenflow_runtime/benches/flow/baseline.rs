//! The hand-written baseline: one tokio task per stage, connected by bounded
//! `tokio::sync::mpsc` channels of records, doing the same per-record work as the flow and
//! nothing else (no journal, no ids, no lifecycle). Its `file` variant also appends every
//! record to a buffered file in the source and fsyncs it once at the end.

use std::borrow::Borrow;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use tokio::sync::mpsc::{channel, Receiver, Sender};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::scenario::{Pace, Shape};
use crate::work::{add_tax, order, Tally};
use crate::{context, BenchError, RunOutcome};

/// Capacity of each channel, in records: the baseline's backpressure window.
const CHANNEL_CAPACITY: usize = 1024;
/// Buffer of the `file` variant's writer.
const FILE_BUFFER_BYTES: usize = 64 * 1024;

/// Runs `records` records through a baseline pipeline of `shape`. With `file_dir`, the source
/// also appends each record as a JSON line to a file there, removed after its size is taken.
pub(crate) async fn run(
    shape: Shape,
    pace: Pace,
    records: u64,
    file_dir: Option<&Path>,
) -> Result<RunOutcome, BenchError> {
    let file_path = file_dir.map(|dir| dir.join(format!("baseline-{}.jsonl", std::process::id())));
    let file = match &file_path {
        Some(path) => Some(open_file(path)?),
        None => None,
    };
    let started = Instant::now();
    let (source_tx, mut upstream) = channel(CHANNEL_CAPACITY);
    let source = tokio::spawn(source(source_tx, records, pace, file));
    // A fan-out's one map is the broadcasting map spawned with its sinks.
    let maps_in_line = match shape {
        Shape::Chain { .. } => shape.maps(),
        Shape::FanOut { .. } => 0,
    };
    let mut maps = Vec::new();
    for _ in 0..maps_in_line {
        let (tx, rx) = channel(CHANNEL_CAPACITY);
        maps.push(tokio::spawn(map(upstream, tx)));
        upstream = rx;
    }
    let sinks = match shape {
        Shape::Chain { .. } => vec![tokio::spawn(sink(upstream))],
        Shape::FanOut { sinks } => fan_out(upstream, sinks, &mut maps),
    };
    source.await??;
    for map in maps {
        map.await?;
    }
    let mut tally = Tally::new();
    for sink in sinks {
        tally.merge(&sink.await?);
    }
    let elapsed = started.elapsed();
    let journal_bytes = match &file_path {
        Some(path) => Some(take_file_size(path)?),
        None => None,
    };
    Ok(RunOutcome {
        records,
        elapsed,
        tally,
        journal_bytes,
        durability: match file_path {
            Some(_) => "buffered file, one fsync at the end".to_owned(),
            None => "none".to_owned(),
        },
    })
}

fn open_file(path: &Path) -> Result<BufWriter<File>, BenchError> {
    let file = File::create(path).map_err(context(format!("cannot create {}", path.display())))?;
    Ok(BufWriter::with_capacity(FILE_BUFFER_BYTES, file))
}

/// The file's size, then removes it.
fn take_file_size(path: &PathBuf) -> Result<u64, BenchError> {
    let bytes = std::fs::metadata(path)?.len();
    std::fs::remove_file(path)?;
    Ok(bytes)
}

/// Generates the records, appending each to `file` first when there is one.
async fn source(
    tx: Sender<Value>,
    records: u64,
    pace: Pace,
    mut file: Option<BufWriter<File>>,
) -> std::io::Result<()> {
    let mut ticker = match pace {
        Pace::Flat => None,
        Pace::Every(period) => {
            let mut ticker = tokio::time::interval(period);
            ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
            Some(ticker)
        }
    };
    for index in 0..records {
        if let Some(ticker) = &mut ticker {
            ticker.tick().await;
        }
        let record = order(index);
        if let Some(file) = &mut file {
            serde_json::to_writer(&mut *file, &record)?;
            file.write_all(b"\n")?;
        }
        if tx.send(record).await.is_err() {
            return Err(std::io::Error::other("the next stage stopped early"));
        }
    }
    if let Some(mut file) = file {
        file.flush()?;
        file.get_ref().sync_data()?;
    }
    Ok(())
}

/// Adds the tax field to each record and passes it on.
async fn map(mut rx: Receiver<Value>, tx: Sender<Value>) {
    while let Some(mut record) = rx.recv().await {
        add_tax(&mut record);
        if tx.send(record).await.is_err() {
            return;
        }
    }
}

/// Spawns one map that shares each record with `sinks` sinks, and the sinks.
fn fan_out(
    upstream: Receiver<Value>,
    sinks: usize,
    maps: &mut Vec<JoinHandle<()>>,
) -> Vec<JoinHandle<Tally>> {
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..sinks).map(|_| channel(CHANNEL_CAPACITY)).unzip();
    maps.push(tokio::spawn(broadcasting_map(upstream, senders)));
    receivers
        .into_iter()
        .map(|rx| tokio::spawn(sink(rx)))
        .collect()
}

/// Adds the tax field to each record and sends one shared copy to every sink.
async fn broadcasting_map(mut rx: Receiver<Value>, senders: Vec<Sender<Arc<Value>>>) {
    while let Some(mut record) = rx.recv().await {
        add_tax(&mut record);
        let shared = Arc::new(record);
        for tx in &senders {
            if tx.send(Arc::clone(&shared)).await.is_err() {
                return;
            }
        }
    }
}

/// Tallies every record until the channel closes.
async fn sink<M: Borrow<Value>>(mut rx: Receiver<M>) -> Tally {
    let mut tally = Tally::new();
    while let Some(record) = rx.recv().await {
        tally.observe(record.borrow());
    }
    tally
}
