//! The hand-written equivalent on one thread: the csv crate and serde read the rows into the
//! same `Flight` struct, then one loop validates, enriches and folds each flight into three
//! `HashMap`s, and the results are written in the flow's formats and orders. No runtime, no
//! channels, no journals: the COST baseline of the csv-typed flow.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::outputs::Outputs;
use crate::records::{
    enrich, fold_carrier, fold_origin, fold_route, more_flights_first, new_carrier, new_origin,
    new_route, validate, CarrierStats, Flight, OriginStats, RouteCount, TOP_ROUTES,
};
use crate::{context, BenchError};

/// What a single-thread run measured.
pub(crate) struct SingleOutcome {
    /// From opening the input to the last output written.
    pub(crate) elapsed: Duration,
    /// Rows read.
    pub(crate) rows: u64,
    /// Rows the validation rejected.
    pub(crate) rejected: u64,
}

/// The three aggregations' state.
#[derive(Default)]
struct Aggregates {
    carriers: HashMap<String, CarrierStats>,
    origins: HashMap<String, OriginStats>,
    routes: HashMap<(String, String), RouteCount>,
}

/// Reads `input`, aggregates it and writes `outputs`, all on the calling thread.
pub(crate) fn run(
    input: &Path,
    outputs: &Outputs,
    carrier_names: &HashMap<String, String>,
) -> Result<SingleOutcome, BenchError> {
    let started = Instant::now();
    // The flow's CSV source trims fields by default; so does this reader.
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(input)
        .map_err(context(format!("cannot open {}", input.display())))?;
    let mut aggregates = Aggregates::default();
    let (mut rows, mut rejected) = (0, 0);
    for row in reader.deserialize::<Flight>() {
        rows += 1;
        let flight = row.map_err(context(format!("bad row {rows} in {}", input.display())))?;
        let Ok(valid) = validate(flight) else {
            rejected += 1;
            continue;
        };
        let flight = enrich(valid, carrier_names);
        let carrier = aggregates
            .carriers
            .entry(flight.carrier.clone())
            .or_insert_with_key(|carrier| new_carrier(carrier));
        fold_carrier(carrier, &flight);
        let origin = aggregates
            .origins
            .entry(flight.origin.clone())
            .or_insert_with_key(|origin| new_origin(origin));
        fold_origin(origin, &flight);
        let route = aggregates
            .routes
            .entry((flight.origin.clone(), flight.dest.clone()))
            .or_insert_with_key(|(origin, dest)| new_route(origin, dest));
        fold_route(route, &flight);
    }
    write_outputs(aggregates, outputs)?;
    Ok(SingleOutcome {
        elapsed: started.elapsed(),
        rows,
        rejected,
    })
}

/// Writes the aggregates as the flow's sinks do: groups in key order, the top routes sorted
/// stably by flights so that ties keep key order, as `Aggregate::top_n` does.
fn write_outputs(aggregates: Aggregates, outputs: &Outputs) -> Result<(), BenchError> {
    write_csv(&outputs.carriers, sorted_by_key(aggregates.carriers))?;
    write_csv(&outputs.origins, sorted_by_key(aggregates.origins))?;
    let routes = sorted_by_key(aggregates.routes);
    let mut top: Vec<&RouteCount> = routes.iter().collect();
    top.sort_by(|a, b| more_flights_first(a, b));
    top.truncate(TOP_ROUTES);
    write_json_lines(&outputs.top_routes, &top)?;
    write_csv(&outputs.routes, routes)
}

/// The map's values in key order.
fn sorted_by_key<K: Ord, V>(groups: HashMap<K, V>) -> Vec<V> {
    let mut groups: Vec<(K, V)> = groups.into_iter().collect();
    groups.sort_by(|(a, _), (b, _)| a.cmp(b));
    groups.into_iter().map(|(_, value)| value).collect()
}

/// One CSV row per value, with a header row, as `CsvSink::typed` writes them.
fn write_csv<T: Serialize>(path: &Path, values: Vec<T>) -> Result<(), BenchError> {
    let mut writer = csv::Writer::from_path(path)
        .map_err(context(format!("cannot create {}", path.display())))?;
    for value in values {
        writer.serialize(value)?;
    }
    writer.flush()?;
    Ok(())
}

/// One JSON object per line, as `JsonLinesSink` writes payloads: through a JSON value, whose
/// object keys are sorted.
fn write_json_lines<T: Serialize>(path: &Path, values: &[T]) -> Result<(), BenchError> {
    let file = File::create(path).map_err(context(format!("cannot create {}", path.display())))?;
    let mut writer = BufWriter::new(file);
    for value in values {
        serde_json::to_writer(&mut writer, &serde_json::to_value(value)?)?;
        writer.write_all(b"\n")?;
    }
    writer.flush()?;
    Ok(())
}
