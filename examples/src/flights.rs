//! Flight data for the `csv_typed` benchmark: a seeded, deterministic CSV of flight rows shaped
//! like the US DOT on-time data (19 of its columns, about 90 bytes a row), about 3% of them
//! cancelled flights with `NA` in the time and delay columns. The same row count and seed give
//! the same bytes on every machine.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::random::XorShift;

/// The header row, in the DOT data's column names.
pub const HEADER: &str = "Year,Month,DayofMonth,DayOfWeek,DepTime,CRSDepTime,ArrTime,CRSArrTime,\
UniqueCarrier,FlightNum,TailNum,ActualElapsedTime,CRSElapsedTime,AirTime,ArrDelay,DepDelay,\
Origin,Dest,Distance";
/// The carrier codes of the data set and their names, as the DOT's lookup table has them.
pub const CARRIERS: &[(&str, &str)] = &[
    ("WN", "Southwest Airlines"),
    ("AA", "American Airlines"),
    ("DL", "Delta Air Lines"),
    ("UA", "United Airlines"),
    ("US", "US Airways"),
    ("NW", "Northwest Airlines"),
    ("CO", "Continental Airlines"),
    ("MQ", "American Eagle Airlines"),
    ("OO", "SkyWest Airlines"),
    ("XE", "ExpressJet Airlines"),
    ("EV", "Atlantic Southeast Airlines"),
    ("FL", "AirTran Airways"),
    ("YV", "Mesa Airlines"),
    ("9E", "Pinnacle Airlines"),
    ("OH", "Comair"),
    ("B6", "JetBlue Airways"),
    ("AS", "Alaska Airlines"),
    ("F9", "Frontier Airlines"),
    ("HA", "Hawaiian Airlines"),
    ("AQ", "Aloha Airlines"),
];
/// How many airports the rows fly between.
const AIRPORTS: u64 = 300;
/// Cancelled flights per 10,000 rows.
const CANCELLED_PER_10K: u64 = 300;
/// Three-letter codes there are (26^3).
const CODES: u64 = 26 * 26 * 26;
/// Coprime with [`CODES`], so that `index * CODE_STRIDE % CODES` is unique per airport index.
const CODE_STRIDE: u64 = 7_919;

/// The file of `rows` rows generated from `seed` under `dir`: `flights-<rows>-seed<seed>.csv`.
///
/// ```
/// use std::path::Path;
/// use obzenflow_examples::flights::input_path;
///
/// assert!(input_path(Path::new("data"), 1000, 7).ends_with("flights-1000-seed7.csv"));
/// ```
pub fn input_path(dir: &Path, rows: u64, seed: u64) -> PathBuf {
    dir.join(format!("flights-{rows}-seed{seed}.csv"))
}

/// The file of `rows` rows from `seed` under `dir` (see [`input_path`]), written first if it is
/// not there yet, through a temporary file renamed into place so that a file at the path is
/// always complete.
///
/// ```no_run
/// use std::path::Path;
/// use obzenflow_examples::flights::ensure_input;
///
/// let path = ensure_input(Path::new("target/bench/csv-typed"), 1_000_000, 2008)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn ensure_input(dir: &Path, rows: u64, seed: u64) -> io::Result<PathBuf> {
    let path = input_path(dir, rows, seed);
    if path.is_file() {
        return Ok(path);
    }
    fs::create_dir_all(dir)?;
    let partial = path.with_extension("csv.tmp");
    let mut writer = BufWriter::new(File::create(&partial)?);
    write_rows(&mut writer, rows, seed)?;
    writer
        .into_inner()
        .map_err(io::IntoInnerError::into_error)?;
    fs::rename(&partial, &path)?;
    Ok(path)
}

/// Writes the header and `rows` rows generated from `seed`.
///
/// ```
/// let mut csv = Vec::new();
/// obzenflow_examples::flights::write_rows(&mut csv, 3, 7)?;
/// assert_eq!(String::from_utf8_lossy(&csv).lines().count(), 4);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn write_rows(out: &mut impl Write, rows: u64, seed: u64) -> io::Result<()> {
    writeln!(out, "{HEADER}")?;
    let mut random = XorShift::new(seed);
    for _ in 0..rows {
        write_row(out, &mut random)?;
    }
    Ok(())
}

/// The airport code of airport `index`: three letters, unique per index.
fn airport(index: u64) -> [u8; 3] {
    let code = (index * CODE_STRIDE + 1_234) % CODES;
    let letter = |n: u64| b'A' + (n % 26) as u8;
    [letter(code / 676), letter(code / 26), letter(code)]
}

/// An airport index, skewed towards low indices as traffic is towards hubs.
fn skewed_airport(random: &mut XorShift) -> u64 {
    let unit = random.unit();
    ((unit * unit * AIRPORTS as f64) as u64).min(AIRPORTS - 1)
}

/// `hhmm` plus `minutes`, wrapped at midnight.
fn add_minutes(hhmm: u16, minutes: i32) -> u16 {
    let total = i32::from(hhmm / 100) * 60 + i32::from(hhmm % 100) + minutes;
    let total = total.rem_euclid(24 * 60);
    (total / 60 * 100 + total % 60) as u16
}

/// One row.
fn write_row(out: &mut impl Write, random: &mut XorShift) -> io::Result<()> {
    let month = 1 + random.below(12);
    let day = 1 + random.below(28);
    let day_of_week = 1 + random.below(7);
    let (carrier, _) = random.pick(CARRIERS).copied().unwrap_or(("WN", ""));
    let flight_num = 1 + random.below(7_000);
    let tail = 100 + random.below(900);
    let tail_letters = [b'A' + random.below(26) as u8, b'A' + random.below(26) as u8];
    let origin = skewed_airport(random);
    let dest = (origin + 1 + skewed_airport(random) % (AIRPORTS - 1)) % AIRPORTS;
    // A route's distance is fixed by its airports.
    let distance = 100 + (origin * 31 + dest * 17) * 7 % 2_600;
    let crs_dep = (6 + random.below(17)) as u16 * 100 + random.below(60) as u16;
    let crs_elapsed = (distance / 8 + 30) as i32;
    let crs_arr = add_minutes(crs_dep, crs_elapsed);
    let cancelled = random.below(10_000) < CANCELLED_PER_10K;
    // Mostly a few minutes either way, one flight in twenty up to three hours late.
    let dep_delay = if random.below(20) == 0 {
        15 + random.below(165) as i32
    } else {
        random.below(30) as i32 - 10
    };
    let actual_elapsed = crs_elapsed + random.below(40) as i32 - 15;
    let air_time = actual_elapsed - 10 - random.below(20) as i32;
    let arr_delay = dep_delay + actual_elapsed - crs_elapsed;
    let dep_time = add_minutes(crs_dep, dep_delay);
    let arr_time = add_minutes(dep_time, actual_elapsed);
    let [o1, o2, o3] = airport(origin);
    let [d1, d2, d3] = airport(dest);
    let (origin, dest) = ([o1, o2, o3], [d1, d2, d3]);
    let origin = std::str::from_utf8(&origin).unwrap_or("XXX");
    let dest = std::str::from_utf8(&dest).unwrap_or("XXX");
    let tail_letters = std::str::from_utf8(&tail_letters).unwrap_or("XX");
    write!(out, "2008,{month},{day},{day_of_week},")?;
    if cancelled {
        write!(out, "NA,{crs_dep},NA,{crs_arr},")?;
    } else {
        write!(out, "{dep_time},{crs_dep},{arr_time},{crs_arr},")?;
    }
    write!(out, "{carrier},{flight_num},N{tail}{tail_letters},")?;
    if cancelled {
        write!(out, "NA,{crs_elapsed},NA,NA,NA,")?;
    } else {
        write!(
            out,
            "{actual_elapsed},{crs_elapsed},{air_time},{arr_delay},{dep_delay},"
        )?;
    }
    writeln!(out, "{origin},{dest},{distance}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_fixed_by_the_seed_and_shaped_like_the_header() {
        let mut first = Vec::new();
        write_rows(&mut first, 2_000, 7).unwrap();
        let mut second = Vec::new();
        write_rows(&mut second, 2_000, 7).unwrap();
        assert_eq!(first, second);
        let text = String::from_utf8(first).unwrap();
        let columns = HEADER.split(',').count();
        assert_eq!(columns, 19);
        assert!(text.lines().all(|line| line.split(',').count() == columns));
        let cancelled = text.lines().filter(|line| line.contains("NA")).count();
        assert!((30..90).contains(&cancelled), "{cancelled} cancelled rows");
    }

    #[test]
    fn times_wrap_at_midnight_and_codes_are_unique() {
        assert_eq!(add_minutes(2350, 20), 10);
        assert_eq!(add_minutes(5, -10), 2355);
        let codes: std::collections::HashSet<[u8; 3]> = (0..AIRPORTS).map(airport).collect();
        assert_eq!(codes.len() as u64, AIRPORTS);
    }
}
