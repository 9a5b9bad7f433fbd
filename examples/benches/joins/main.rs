//! The joins benchmark: a lookup join of a stream against a reference table, and an interval
//! join of two streams, each as an ObzenFlow flow (`LookupJoin`, `IntervalJoin`) with memory or
//! disk journals and as hand-written single-threaded `HashMap` code doing the same work, one
//! scenario per process.
//!
//! `cargo xtask bench join` builds this binary and runs it once per scenario and round; by hand:
//!
//! ```text
//! cargo bench -p obzenflow_examples --bench joins -- <scenario> [--records N] [--dir DIR]
//! ```
//!
//! Scenarios: `join-lookup-{single,memory,disk}` (N stream records, 1,000,000 by default,
//! against a 100,000-row reference; about 9% of the stream has no match and is dropped, an
//! inner join) and `join-window-{single,memory,disk}` (two streams of N records each, 500,000
//! by default, keys in 0..1000, ten microseconds apart with up to 50 µs of jitter, joined within
//! ±5 ms). Inputs are generated lazily from a fixed seed, so a run holds only what its engine
//! holds. Every engine reports how many records it emitted and an order-independent checksum
//! of them, which `cargo xtask bench` compares across engines. The run prints one JSON object
//! on one line of stdout.

#[path = "../csv_typed/measure.rs"]
mod measure;

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use obzenflow_core::{ChainEvent, Timestamp, TypedPayload};
use obzenflow_examples::random::XorShift;
use obzenflow_runtime::pipeline::{FlowBuilder, Journals};
use obzenflow_runtime::stages::{RecordError, RecordType, SinkHandler};
use obzenflow_stages::joins::{IntervalJoin, LookupJoin};
use obzenflow_stages::sources::IterSource;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The error type of the benchmark: every failure ends the process with a message.
type BenchError = Box<dyn std::error::Error + Send + Sync>;

/// The name every result carries, so `cargo xtask bench` reports these runs apart.
const BENCHMARK: &str = "joins";
/// Rows of the lookup join's reference table.
const REFERENCE_ROWS: u32 = 100_000;
/// Stream keys are drawn from this range, so about 9% of them have no reference row.
const STREAM_KEYS: u64 = 110_000;
/// Keys of the interval join's streams.
const WINDOW_KEYS: u64 = 1_000;
/// The interval join's bounds: a right record within ±5 ms of a left one.
const WINDOW: Duration = Duration::from_millis(5);
/// How far behind its side's latest record a record may be: more than the 50 µs of jitter, so
/// no record is late.
const LATENESS: Duration = Duration::from_micros(100);
/// Where disk journals go by default.
const BENCH_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/bench/joins");

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Airline {
    code: u32,
    name: String,
}
impl TypedPayload for Airline {
    const EVENT_TYPE: &'static str = "bench.airline";
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Flight {
    id: u64,
    code: u32,
    cents: u64,
}
impl TypedPayload for Flight {
    const EVENT_TYPE: &'static str = "bench.flight";
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Enriched {
    id: u64,
    code: u32,
    name: String,
    cents: u64,
}
impl TypedPayload for Enriched {
    const EVENT_TYPE: &'static str = "bench.flight.enriched";
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Tick {
    id: u64,
    key: u32,
    at_us: u64,
}
impl TypedPayload for Tick {
    const EVENT_TYPE: &'static str = "bench.tick";
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pair {
    left: u64,
    right: u64,
    key: u32,
}
impl TypedPayload for Pair {
    const EVENT_TYPE: &'static str = "bench.pair";
}

fn airlines() -> impl Iterator<Item = Airline> {
    (0..REFERENCE_ROWS).map(|code| Airline {
        code,
        name: format!("Airline number {code}"),
    })
}

fn flights(records: u64) -> impl Iterator<Item = Flight> {
    let mut random = XorShift::new(11);
    (0..records).map(move |id| Flight {
        id,
        code: random.below(STREAM_KEYS) as u32,
        cents: random.below(100_000),
    })
}

fn ticks(records: u64, seed: u64) -> impl Iterator<Item = Tick> {
    let mut random = XorShift::new(seed);
    (0..records).map(move |id| Tick {
        id,
        key: random.below(WINDOW_KEYS) as u32,
        at_us: id * 10 + random.below(50),
    })
}

fn combine(flight: &Flight, airline: &Airline) -> Enriched {
    Enriched {
        id: flight.id,
        code: flight.code,
        name: airline.name.clone(),
        cents: flight.cents,
    }
}

fn pair(left: &Tick, right: &Tick) -> Pair {
    Pair {
        left: left.id,
        right: right.id,
        key: left.key,
    }
}

/// An order-independent checksum of outputs: a sum of mixed values.
fn mix(value: u64) -> u64 {
    let mixed = value.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    mixed ^ (mixed >> 29)
}

fn enriched_sum(enriched: &Enriched) -> u64 {
    mix(enriched.id ^ (u64::from(enriched.code) << 40) ^ (enriched.name.len() as u64) << 20)
        .wrapping_add(enriched.cents)
}

fn pair_sum(pair: &Pair) -> u64 {
    mix(pair.left << 32 ^ pair.right ^ u64::from(pair.key) << 52)
}

/// The hand-written lookup join: load the table into a `HashMap`, then enrich each record.
fn single_lookup(records: u64) -> (u64, u64) {
    let table: HashMap<u32, Airline> = airlines().map(|airline| (airline.code, airline)).collect();
    let (mut emitted, mut checksum) = (0u64, 0u64);
    for flight in flights(records) {
        if let Some(airline) = table.get(&flight.code) {
            let enriched = combine(&flight, airline);
            emitted += 1;
            checksum = checksum.wrapping_add(enriched_sum(&enriched));
        }
    }
    (emitted, checksum)
}

/// One side of the hand-written interval join: records by key, and in arrival order for
/// eviction.
#[derive(Default)]
struct Held {
    by_key: HashMap<u32, Vec<Tick>>,
    order: VecDeque<(u64, u32, u64)>,
    max_us: u64,
}

impl Held {
    fn evict_before(&mut self, threshold: u64) {
        while let Some(&(at_us, key, id)) = self.order.front() {
            if at_us >= threshold {
                break;
            }
            self.order.pop_front();
            if let Some(held) = self.by_key.get_mut(&key) {
                held.retain(|tick| tick.id != id);
            }
        }
    }

    fn hold(&mut self, tick: Tick) {
        self.max_us = self.max_us.max(tick.at_us);
        self.order.push_back((tick.at_us, tick.key, tick.id));
        self.by_key.entry(tick.key).or_default().push(tick);
    }
}

/// The hand-written interval join: the two streams alternately, each record matched against
/// the other side's held records of its key, then held; held records evicted once the other
/// side has moved past their window.
fn single_window(records: u64) -> (u64, u64) {
    let bound = WINDOW.as_micros() as u64;
    // A held record can still match a record up to the lateness behind the other side's latest.
    let horizon = bound + LATENESS.as_micros() as u64;
    let (mut left, mut right) = (Held::default(), Held::default());
    let (mut emitted, mut checksum) = (0u64, 0u64);
    for (a, b) in ticks(records, 21).zip(ticks(records, 22)) {
        for held in right.by_key.get(&a.key).into_iter().flatten() {
            if held.at_us + bound >= a.at_us && held.at_us <= a.at_us + bound {
                emitted += 1;
                checksum = checksum.wrapping_add(pair_sum(&pair(&a, held)));
            }
        }
        left.hold(a);
        right.evict_before(left.max_us.saturating_sub(horizon));
        for held in left.by_key.get(&b.key).into_iter().flatten() {
            if b.at_us + bound >= held.at_us && b.at_us <= held.at_us + bound {
                emitted += 1;
                checksum = checksum.wrapping_add(pair_sum(&pair(held, &b)));
            }
        }
        right.hold(b);
        left.evict_before(right.max_us.saturating_sub(horizon));
    }
    (emitted, checksum)
}

/// A sink that counts and checksums what reaches it, by reference.
struct Checksum<T> {
    emitted: Arc<AtomicU64>,
    checksum: Arc<AtomicU64>,
    sum: fn(&T) -> u64,
    local: (u64, u64),
}

impl<T: TypedPayload> SinkHandler for Checksum<T> {
    fn consume(&mut self, event: &ChainEvent) -> Result<(), RecordError> {
        let sum = T::with_event(event, self.sum)?;
        self.local.0 += 1;
        self.local.1 = self.local.1.wrapping_add(sum);
        Ok(())
    }

    fn input_type(&self) -> Option<RecordType> {
        Some(RecordType::of::<T>())
    }

    fn flush(
        &mut self,
    ) -> Result<Option<obzenflow_core::DeliveryReceipt>, obzenflow_runtime::stages::HandlerFailure>
    {
        self.emitted.store(self.local.0, Ordering::Relaxed);
        self.checksum.store(self.local.1, Ordering::Relaxed);
        Ok(None)
    }
}

/// What a flow run measured.
struct FlowOutcome {
    emitted: u64,
    checksum: u64,
    peak_state_records: Option<u64>,
    run_dir: Option<PathBuf>,
}

async fn run_flow<T: TypedPayload>(
    builder: FlowBuilder,
    sum: fn(&T) -> u64,
) -> Result<FlowOutcome, BenchError> {
    let (emitted, checksum) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let sink = Checksum {
        emitted: emitted.clone(),
        checksum: checksum.clone(),
        sum,
        local: (0, 0),
    };
    let report = builder
        .sink("sum", sink)
        .edge("join", "sum")
        .build()?
        .run()
        .await?;
    if !report.is_success() {
        return Err(format!("the flow did not succeed:\n{report}").into());
    }
    Ok(FlowOutcome {
        emitted: emitted.load(Ordering::Relaxed),
        checksum: checksum.load(Ordering::Relaxed),
        peak_state_records: report
            .stage("join")
            .and_then(|stage| stage.state_size)
            .map(|gauge| gauge.peak.records),
        run_dir: report.run_dir.clone(),
    })
}

fn lookup_flow(records: u64, journals: Journals) -> FlowBuilder {
    let join = LookupJoin::new(
        |airline: &Airline| airline.code,
        |flight: &Flight| flight.code,
        |flight: &Flight, airline: Option<&Airline>| {
            // An inner join calls the combine function only with a match.
            combine(flight, airline.expect("inner join"))
        },
    );
    FlowBuilder::new("bench-join-lookup")
        .source("airlines", IterSource::from_payloads(airlines()))
        .source("flights", IterSource::from_payloads(flights(records)))
        .join("join", join, "airlines", "flights")
        .journals(journals)
}

fn window_flow(records: u64, journals: Journals) -> FlowBuilder {
    let join = IntervalJoin::new(|left: &Tick| left.key, |right: &Tick| right.key, pair)
        .between(WINDOW, WINDOW)
        .allowed_lateness(LATENESS)
        .event_time(
            |left: &Tick| Timestamp::from_micros(left.at_us),
            |right: &Tick| Timestamp::from_micros(right.at_us),
        );
    FlowBuilder::new("bench-join-window")
        .source("left", IterSource::from_payloads(ticks(records, 21)))
        .source("right", IterSource::from_payloads(ticks(records, 22)))
        .join("join", join, "left", "right")
        .journals(journals)
}

/// The command line: `<join>-<engine>`, `--records N`, `--dir DIR`.
struct Arguments {
    join: &'static str,
    engine: &'static str,
    records: Option<u64>,
    journal_dir: PathBuf,
}

fn parse_arguments(arguments: &[String]) -> Result<Option<Arguments>, BenchError> {
    let mut scenario = None;
    let mut records = None;
    let mut journal_dir = Path::new(BENCH_DIR).join("journals");
    let mut rest = arguments.iter();
    while let Some(argument) = rest.next() {
        match argument.as_str() {
            "--bench" => {}
            "--records" => {
                let value = rest.next().ok_or("--records needs a number")?;
                records = Some(value.parse()?);
            }
            "--dir" => journal_dir = PathBuf::from(rest.next().ok_or("--dir needs a path")?),
            name => scenario = Some(name.to_owned()),
        }
    }
    let Some(scenario) = scenario else {
        return Ok(None);
    };
    for join in ["lookup", "window"] {
        for engine in ["single", "memory", "disk"] {
            if scenario == format!("join-{join}-{engine}") {
                return Ok(Some(Arguments {
                    join,
                    engine,
                    records,
                    journal_dir,
                }));
            }
        }
    }
    Err(format!("unknown scenario `{scenario}`").into())
}

fn run(arguments: &Arguments) -> Result<Value, BenchError> {
    let records = arguments.records.unwrap_or(match arguments.join {
        "lookup" => 1_000_000,
        _ => 500_000,
    });
    let started = Instant::now();
    let cpu_before = measure::cpu_seconds()?;
    // The wall and CPU time since the start, read where each engine's work ends.
    let finished = || -> Result<(Duration, f64), BenchError> {
        Ok((started.elapsed(), measure::cpu_seconds()? - cpu_before))
    };
    let (emitted, checksum, peak_state, journal_bytes, (elapsed, cpu_seconds)) =
        if arguments.engine == "single" {
            let (emitted, checksum) = match arguments.join {
                "lookup" => single_lookup(records),
                _ => single_window(records),
            };
            (emitted, checksum, None, None, finished()?)
        } else {
            let journals = match arguments.engine {
                "memory" => Journals::memory(),
                _ => {
                    std::fs::create_dir_all(&arguments.journal_dir)?;
                    Journals::disk(&arguments.journal_dir)
                }
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let outcome = runtime.block_on(async {
                match arguments.join {
                    "lookup" => run_flow(lookup_flow(records, journals), enriched_sum).await,
                    _ => run_flow(window_flow(records, journals), pair_sum).await,
                }
            })?;
            drop(runtime);
            // The run ends here: measuring and removing its journals is not the flow's work.
            let finished = finished()?;
            let journal_bytes = match &outcome.run_dir {
                Some(run_dir) => {
                    let bytes = measure::segment_bytes(run_dir)?;
                    std::fs::remove_dir_all(run_dir)?;
                    Some(bytes)
                }
                None => None,
            };
            (
                outcome.emitted,
                outcome.checksum,
                outcome.peak_state_records,
                journal_bytes,
                finished,
            )
        };
    let seconds = elapsed.as_secs_f64();
    // Stream records per second: the lookup join's stream, both streams of the window join.
    let stream_records = match arguments.join {
        "lookup" => records,
        _ => 2 * records,
    };
    Ok(json!({
        "scenario": format!("join-{}-{}", arguments.join, arguments.engine),
        "benchmark": BENCHMARK,
        "join": arguments.join,
        "engine": arguments.engine,
        "records": stream_records,
        "seconds": seconds,
        "records_per_sec": stream_records as f64 / seconds,
        "cpu_seconds": cpu_seconds,
        "emitted": emitted,
        "checksum": format!("{checksum:016x}"),
        "peak_state_records": peak_state,
        "journal_bytes": journal_bytes,
    }))
}

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let arguments = match parse_arguments(&arguments) {
        Ok(Some(arguments)) => arguments,
        Ok(None) => {
            println!("usage: joins join-{{lookup,window}}-{{single,memory,disk}} [--records N] [--dir DIR]");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let figures = run(&arguments).and_then(|mut figures| {
        figures["peak_rss_kib"] = json!(measure::peak_rss_kib()?);
        figures["process_cpu_seconds"] = json!(measure::cpu_seconds()?);
        Ok(figures)
    });
    match figures {
        Ok(figures) => {
            println!("{figures}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
