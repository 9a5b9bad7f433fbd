//! The ObzenFlow side: a typed CSV source, validation and enrichment, three keyed aggregations
//! and file sinks of their results, built from the public API of the runtime and the stages.
//!
//! ```text
//! flights -> validate -> enrich -+-> by_carrier -> carriers.csv
//!                                +-> by_origin  -> origins.csv
//!                                +-> by_route   -+-> routes.csv
//!                                                +-> top_routes -> top_routes.jsonl
//! ```

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use obzenflow_stages::prelude::*;

use crate::outputs::Outputs;
use crate::records::{
    enrich, fold_carrier, fold_origin, fold_route, more_flights_first, new_carrier, new_origin,
    new_route, validate, CarrierStats, EnrichedFlight, Flight, OriginStats, RouteCount,
    ValidFlight, TOP_ROUTES,
};
use crate::BenchError;

/// What a flow run measured.
pub(crate) struct FlowOutcome {
    /// From just before the flow was built to `Flow::run` returning.
    pub(crate) elapsed: Duration,
    /// Rows the source read.
    pub(crate) rows: u64,
    /// Rows the validation put on the error lane.
    pub(crate) rejected: u64,
    /// Where the disk journals are, for disk journals.
    pub(crate) run_dir: Option<std::path::PathBuf>,
    /// What survives a crash, in words.
    pub(crate) durability: String,
}

/// Runs the flow over `input` with `journals`, writing `outputs`. `carrier_names` is the
/// lookup table the enrichment captures.
pub(crate) async fn run(
    input: &Path,
    journals: Journals,
    outputs: &Outputs,
    carrier_names: HashMap<String, String>,
) -> Result<FlowOutcome, BenchError> {
    let started = Instant::now();
    let mut flow = FlowBuilder::new("csv-typed");
    let flights = flow.add_async_source("flights", CsvSource::typed::<Flight>(input));
    let valid = flow.add_transform(
        "validate",
        typed::try_map(|flight: Flight| validate(flight).map_err(RecordError::validation)),
        &flights,
    );
    let enriched = flow.add_transform(
        "enrich",
        typed::map(move |flight: ValidFlight| enrich(flight, &carrier_names)),
        &valid,
    );
    let carriers = flow.add_stateful("by_carrier", by_carrier(), &enriched);
    let origins = flow.add_stateful("by_origin", by_origin(), &enriched);
    let routes = flow.add_stateful("by_route", by_route(), &enriched);
    let top = flow.add_stateful("top_routes", top_routes(), &routes);
    let sinks = [
        flow.add_sink(
            "carriers",
            CsvSink::typed::<CarrierStats>(&outputs.carriers),
            &carriers,
        ),
        flow.add_sink(
            "origins",
            CsvSink::typed::<OriginStats>(&outputs.origins),
            &origins,
        ),
        flow.add_sink(
            "routes",
            CsvSink::typed::<RouteCount>(&outputs.routes),
            &routes,
        ),
        flow.add_sink(
            "top_routes_file",
            JsonLinesSink::new(&outputs.top_routes),
            &top,
        ),
    ];
    let report = flow.journals(journals).build()?.run().await?;
    let elapsed = started.elapsed();
    check(&report, &sinks)?;
    let count =
        |stage: &StageRef, count: fn(&StageReport) -> u64| report.stage(stage).map_or(0, count);
    Ok(FlowOutcome {
        elapsed,
        rows: count(&flights, |stage| stage.records_in),
        rejected: count(&valid, |stage| stage.records_errored),
        run_dir: report.run_dir.clone(),
        durability: report.durability.clone(),
    })
}

/// Per carrier: flights and mean arrival delay.
fn by_carrier() -> Aggregate<EnrichedFlight, String, CarrierStats> {
    Aggregate::fold(
        |flight: &EnrichedFlight| flight.carrier.clone(),
        |group| new_carrier(&group.key),
        |stats: &mut CarrierStats, flight: &EnrichedFlight| fold_carrier(stats, flight),
    )
}

/// Per origin: departures and total distance.
fn by_origin() -> Aggregate<EnrichedFlight, String, OriginStats> {
    Aggregate::fold(
        |flight: &EnrichedFlight| flight.origin.clone(),
        |group| new_origin(&group.key),
        |stats: &mut OriginStats, flight: &EnrichedFlight| fold_origin(stats, flight),
    )
}

/// Per route: flights.
fn by_route() -> Aggregate<EnrichedFlight, (String, String), RouteCount> {
    Aggregate::fold(
        |flight: &EnrichedFlight| (flight.origin.clone(), flight.dest.clone()),
        |group| new_route(&group.key.0, &group.key.1),
        |count: &mut RouteCount, flight: &EnrichedFlight| fold_route(count, flight),
    )
}

/// The routes with the most flights, from the per-route counts (one record per route).
fn top_routes() -> Aggregate<RouteCount, (String, String), RouteCount> {
    Aggregate::reduce(
        |count: &RouteCount| (count.origin.clone(), count.dest.clone()),
        |total: &mut RouteCount, count: &RouteCount| total.flights += count.flights,
    )
    .top_n(TOP_ROUTES, more_flights_first)
}

/// The flow must have drained, and every sink written its file.
fn check(report: &FlowReport, sinks: &[StageRef]) -> Result<(), BenchError> {
    if !report.is_success() {
        return Err(format!("the flow was not a success:\n{report}").into());
    }
    let sinks_errored: u64 = sinks
        .iter()
        .filter_map(|sink| report.stage(sink))
        .map(|stage| stage.records_errored)
        .sum();
    if sinks_errored > 0 {
        return Err(
            format!("the sinks put {sinks_errored} records on the error lane:\n{report}").into(),
        );
    }
    Ok(())
}
