//! The record types and the per-record work both engines share: a flight row as the CSV holds
//! it, the validation that rejects cancelled flights, the enrichment from the carrier table,
//! and the three aggregations' fold steps. The flow and the single-thread loop call the same
//! functions, so the only difference between them is what moves the records.

use std::collections::HashMap;

use obzenflow_core::TypedPayload;
use obzenflow_examples::flights::CARRIERS;
use serde::{Deserialize, Serialize};

/// One row of the input, column for column. The time and delay columns of a cancelled flight
/// hold `NA`; `csv::invalid_option` reads a value that does not parse as `None`, and reads a
/// JSON `null` (how `None` travels between stages) as `None` too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Flight {
    #[serde(rename = "Year")]
    pub(crate) year: u16,
    #[serde(rename = "Month")]
    pub(crate) month: u8,
    #[serde(rename = "DayofMonth")]
    pub(crate) day_of_month: u8,
    #[serde(rename = "DayOfWeek")]
    pub(crate) day_of_week: u8,
    #[serde(rename = "DepTime", deserialize_with = "csv::invalid_option")]
    pub(crate) dep_time: Option<u16>,
    #[serde(rename = "CRSDepTime")]
    pub(crate) crs_dep_time: u16,
    #[serde(rename = "ArrTime", deserialize_with = "csv::invalid_option")]
    pub(crate) arr_time: Option<u16>,
    #[serde(rename = "CRSArrTime")]
    pub(crate) crs_arr_time: u16,
    #[serde(rename = "UniqueCarrier")]
    pub(crate) unique_carrier: String,
    #[serde(rename = "FlightNum")]
    pub(crate) flight_num: u32,
    #[serde(rename = "TailNum")]
    pub(crate) tail_num: String,
    #[serde(rename = "ActualElapsedTime", deserialize_with = "csv::invalid_option")]
    pub(crate) actual_elapsed_time: Option<i32>,
    #[serde(rename = "CRSElapsedTime")]
    pub(crate) crs_elapsed_time: i32,
    #[serde(rename = "AirTime", deserialize_with = "csv::invalid_option")]
    pub(crate) air_time: Option<i32>,
    #[serde(rename = "ArrDelay", deserialize_with = "csv::invalid_option")]
    pub(crate) arr_delay: Option<i32>,
    #[serde(rename = "DepDelay", deserialize_with = "csv::invalid_option")]
    pub(crate) dep_delay: Option<i32>,
    #[serde(rename = "Origin")]
    pub(crate) origin: String,
    #[serde(rename = "Dest")]
    pub(crate) dest: String,
    #[serde(rename = "Distance")]
    pub(crate) distance: u32,
}

impl TypedPayload for Flight {
    const EVENT_TYPE: &'static str = "flight";
}

/// A flight that flew: its delays are numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ValidFlight {
    pub(crate) carrier: String,
    pub(crate) flight_num: u32,
    pub(crate) origin: String,
    pub(crate) dest: String,
    pub(crate) dep_delay: i32,
    pub(crate) arr_delay: i32,
    pub(crate) distance: u32,
}

impl TypedPayload for ValidFlight {
    const EVENT_TYPE: &'static str = "flight.valid";
}

/// A valid flight with its carrier's name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct EnrichedFlight {
    pub(crate) carrier: String,
    pub(crate) carrier_name: String,
    pub(crate) flight_num: u32,
    pub(crate) origin: String,
    pub(crate) dest: String,
    pub(crate) dep_delay: i32,
    pub(crate) arr_delay: i32,
    pub(crate) distance: u32,
}

impl TypedPayload for EnrichedFlight {
    const EVENT_TYPE: &'static str = "flight.enriched";
}

/// Per carrier: flights and arrival delay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CarrierStats {
    pub(crate) carrier: String,
    pub(crate) carrier_name: String,
    pub(crate) flights: u64,
    pub(crate) total_arr_delay: i64,
    pub(crate) mean_arr_delay: f64,
}

impl TypedPayload for CarrierStats {
    const EVENT_TYPE: &'static str = "carrier.stats";
}

/// Per origin airport: departures and the distance they flew.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct OriginStats {
    pub(crate) origin: String,
    pub(crate) departures: u64,
    pub(crate) total_distance: u64,
}

impl TypedPayload for OriginStats {
    const EVENT_TYPE: &'static str = "origin.stats";
}

/// Per route (origin, destination): flights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RouteCount {
    pub(crate) origin: String,
    pub(crate) dest: String,
    pub(crate) flights: u64,
}

impl TypedPayload for RouteCount {
    const EVENT_TYPE: &'static str = "route.count";
}

/// How many routes the top-routes output keeps.
pub(crate) const TOP_ROUTES: usize = 5;

/// The lookup table the enrichment reads: carrier code to carrier name.
pub(crate) fn carrier_names() -> HashMap<String, String> {
    CARRIERS
        .iter()
        .map(|(code, name)| ((*code).to_owned(), (*name).to_owned()))
        .collect()
}

/// A flight that flew, or why it is rejected: a cancelled flight has no departure or arrival
/// (its time and delay columns are `NA`).
pub(crate) fn validate(flight: Flight) -> Result<ValidFlight, String> {
    let flew = flight.dep_time.is_some()
        && flight.arr_time.is_some()
        && flight.actual_elapsed_time.is_some()
        && flight.air_time.is_some();
    match (flight.dep_delay, flight.arr_delay) {
        (Some(dep_delay), Some(arr_delay)) if flew => Ok(ValidFlight {
            carrier: flight.unique_carrier,
            flight_num: flight.flight_num,
            origin: flight.origin,
            dest: flight.dest,
            dep_delay,
            arr_delay,
            distance: flight.distance,
        }),
        _ => Err(format!(
            "flight {}{} on {}-{:02}-{:02} from {}: cancelled, its times and delays are NA",
            flight.unique_carrier,
            flight.flight_num,
            flight.year,
            flight.month,
            flight.day_of_month,
            flight.origin
        )),
    }
}

/// The flight with its carrier's name from `names` (`unknown` for a code not in the table).
pub(crate) fn enrich(flight: ValidFlight, names: &HashMap<String, String>) -> EnrichedFlight {
    let carrier_name = names
        .get(&flight.carrier)
        .cloned()
        .unwrap_or_else(|| "unknown".to_owned());
    EnrichedFlight {
        carrier: flight.carrier,
        carrier_name,
        flight_num: flight.flight_num,
        origin: flight.origin,
        dest: flight.dest,
        dep_delay: flight.dep_delay,
        arr_delay: flight.arr_delay,
        distance: flight.distance,
    }
}

/// A carrier's statistics before its first flight.
pub(crate) fn new_carrier(carrier: &str) -> CarrierStats {
    CarrierStats {
        carrier: carrier.to_owned(),
        carrier_name: String::new(),
        flights: 0,
        total_arr_delay: 0,
        mean_arr_delay: 0.0,
    }
}

/// Counts `flight` into its carrier's statistics. The mean is recomputed from exact integer
/// sums, so it does not depend on the order flights arrive in.
pub(crate) fn fold_carrier(stats: &mut CarrierStats, flight: &EnrichedFlight) {
    if stats.carrier_name.is_empty() {
        stats.carrier_name.clone_from(&flight.carrier_name);
    }
    stats.flights += 1;
    stats.total_arr_delay += i64::from(flight.arr_delay);
    stats.mean_arr_delay = stats.total_arr_delay as f64 / stats.flights as f64;
}

/// An origin's statistics before its first departure.
pub(crate) fn new_origin(origin: &str) -> OriginStats {
    OriginStats {
        origin: origin.to_owned(),
        departures: 0,
        total_distance: 0,
    }
}

/// Counts `flight` into its origin's statistics.
pub(crate) fn fold_origin(stats: &mut OriginStats, flight: &EnrichedFlight) {
    stats.departures += 1;
    stats.total_distance += u64::from(flight.distance);
}

/// A route's count before its first flight.
pub(crate) fn new_route(origin: &str, dest: &str) -> RouteCount {
    RouteCount {
        origin: origin.to_owned(),
        dest: dest.to_owned(),
        flights: 0,
    }
}

/// Counts `flight` into its route's count.
pub(crate) fn fold_route(count: &mut RouteCount, _flight: &EnrichedFlight) {
    count.flights += 1;
}

/// The order of the top routes: most flights first (ties keep their key order).
pub(crate) fn more_flights_first(a: &RouteCount, b: &RouteCount) -> std::cmp::Ordering {
    b.flights.cmp(&a.flights)
}
