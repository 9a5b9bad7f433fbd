//! The quickstart's data: an orders export generated deterministically (with a few broken rows
//! on purpose), the record types of the flow, and the validation the flow applies.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::Path;

use obzenflow_core::{Timestamp, TypedPayload};
use obzenflow_runtime::stages::RecordError;
use serde::{Deserialize, Serialize};

use crate::random::XorShift;

/// The header row of the orders file.
pub const HEADER: &str =
    "order_id,placed_at,customer_id,customer_name,country,product,quantity,unit_price,status";

/// One row of the orders file, as the CSV source decodes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// `ORD-000001`.
    pub order_id: String,
    /// When the order was placed, `2024-01-01T08:15:00Z`.
    pub placed_at: String,
    /// `C0042`.
    pub customer_id: String,
    /// The customer's name.
    pub customer_name: String,
    /// Two-letter country code.
    pub country: String,
    /// What was ordered.
    pub product: String,
    /// How many.
    pub quantity: u32,
    /// Price of one, in dollars.
    pub unit_price: f64,
    /// `paid`, `refunded` or `cancelled`.
    pub status: String,
}

impl TypedPayload for Order {
    const EVENT_TYPE: &'static str = "order";
}

/// A paid order, checked and priced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sale {
    /// The order's id.
    pub order_id: String,
    /// The UTC day the order was placed, `2024-01-01`.
    pub day: String,
    /// The customer's id.
    pub customer_id: String,
    /// The customer's name.
    pub customer_name: String,
    /// Two-letter country code.
    pub country: String,
    /// Quantity times unit price.
    pub revenue: f64,
}

impl TypedPayload for Sale {
    const EVENT_TYPE: &'static str = "sale";
}

/// Revenue of one customer over the whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerRevenue {
    /// The customer's id.
    pub customer_id: String,
    /// The customer's name.
    pub customer_name: String,
    /// Paid orders.
    pub orders: u64,
    /// Total revenue, in dollars.
    pub revenue: f64,
}

impl TypedPayload for CustomerRevenue {
    const EVENT_TYPE: &'static str = "revenue.customer";
}

/// Revenue of one day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailyRevenue {
    /// The UTC day, `2024-01-01`.
    pub day: String,
    /// Paid orders that day.
    pub orders: u64,
    /// Total revenue that day, in dollars.
    pub revenue: f64,
}

impl TypedPayload for DailyRevenue {
    const EVENT_TYPE: &'static str = "revenue.day";
}

/// Adds two amounts of money, rounding to the cent so totals stay exact in JSON
/// (`158266.05`, not `158266.0500000003`).
///
/// ```
/// use obzenflow_examples::orders::add_money;
///
/// assert_eq!(add_money(0.1, 0.2).to_string(), "0.3");
/// ```
pub fn add_money(total: f64, amount: f64) -> f64 {
    ((total + amount) * 100.0).round() / 100.0
}

/// Checks a paid order and prices it: the quantity must be positive, the price not negative,
/// and `placed_at` a real UTC date-time.
///
/// ```
/// use obzenflow_examples::orders::{sale_from, Order};
///
/// let order = Order {
///     order_id: "ORD-1".into(), placed_at: "2024-01-05T10:00:00Z".into(),
///     customer_id: "C1".into(), customer_name: "Ada".into(), country: "GB".into(),
///     product: "Kettle".into(), quantity: 2, unit_price: 10.5, status: "paid".into(),
/// };
/// let sale = sale_from(order)?;
/// assert_eq!((sale.day.as_str(), sale.revenue), ("2024-01-05", 21.0));
/// # Ok::<(), obzenflow_runtime::stages::RecordError>(())
/// ```
pub fn sale_from(order: Order) -> Result<Sale, RecordError> {
    if order.quantity == 0 {
        return Err(RecordError::validation(format!(
            "order {}: quantity must be positive",
            order.order_id
        )));
    }
    if !(order.unit_price >= 0.0 && order.unit_price.is_finite()) {
        return Err(RecordError::validation(format!(
            "order {}: unit price {} is not a price",
            order.order_id, order.unit_price
        )));
    }
    let day = utc_day(&order.placed_at).ok_or_else(|| {
        RecordError::validation(format!(
            "order {}: placed_at `{}` is not a UTC date-time",
            order.order_id, order.placed_at
        ))
    })?;
    Ok(Sale {
        revenue: (f64::from(order.quantity) * order.unit_price * 100.0).round() / 100.0,
        order_id: order.order_id,
        day: day.to_owned(),
        customer_id: order.customer_id,
        customer_name: order.customer_name,
        country: order.country,
    })
}

/// The `YYYY-MM-DD` part of a `YYYY-MM-DDTHH:MM:SSZ` date-time, if it is one.
fn utc_day(placed_at: &str) -> Option<&str> {
    let bytes = placed_at.as_bytes();
    let shape_ok = bytes.len() == 20
        && bytes.iter().enumerate().all(|(index, byte)| match index {
            4 | 7 => *byte == b'-',
            10 => *byte == b'T',
            13 | 16 => *byte == b':',
            19 => *byte == b'Z',
            _ => byte.is_ascii_digit(),
        });
    if !shape_ok {
        return None;
    }
    let number = |range: std::ops::Range<usize>| placed_at[range].parse::<u32>().ok();
    let month = number(5..7)?;
    let day = number(8..10)?;
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let valid = (1..=12).contains(&month)
        && (1..=days_in_month(number(0..4)?, month)).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60;
    valid.then(|| &placed_at[..10])
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// How the orders file is generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrdersConfig {
    /// Data rows (the header aside), broken ones included.
    pub rows: u64,
    /// Distinct customers.
    pub customers: u64,
    /// Days the orders span, from 2024-01-01.
    pub days: u64,
    /// How many rows are broken on purpose, spread evenly through the file.
    pub broken_rows: u64,
    /// The random seed: the same seed gives the same file.
    pub seed: u64,
}

impl OrdersConfig {
    /// The quickstart's full data set: 100,000 orders over a quarter.
    pub const FULL: OrdersConfig = OrdersConfig {
        rows: 100_000,
        customers: 2_500,
        days: 91,
        broken_rows: 25,
        seed: 2024,
    };
    /// The smoke-test data set: 2,000 orders.
    pub const SMOKE: OrdersConfig = OrdersConfig {
        rows: 2_000,
        customers: 300,
        days: 91,
        broken_rows: 10,
        seed: 2024,
    };
}

const FIRST_NAMES: [&str; 16] = [
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Margaret",
    "Dennis",
    "Frances",
    "Ken",
    "Radia",
    "Tony",
    "Hedy",
    "John",
    "Katherine",
    "Niklaus",
];
const LAST_NAMES: [&str; 12] = [
    "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Hamilton", "Ritchie", "Allen",
    "Thompson", "Perlman", "Hoare",
];
const COUNTRIES: [&str; 8] = ["US", "US", "US", "GB", "DE", "FR", "JP", "BR"];
const PRODUCTS: [(&str, f64); 8] = [
    ("Espresso machine", 249.0),
    ("Grinder", 129.0),
    ("Kettle", 39.5),
    ("Pour-over kit", 24.0),
    ("Beans 1kg", 18.9),
    ("Milk frother", 59.0),
    ("Scale", 32.0),
    ("Mug set", 21.5),
];
/// 2024-01-01T00:00:00Z, in seconds since the epoch.
const START_SECONDS: u64 = 1_704_067_200;

/// The orders file could not be written.
#[derive(Debug)]
pub struct WriteOrdersError {
    /// The file being written.
    pub path: std::path::PathBuf,
    /// What the operating system said.
    pub source: io::Error,
}

impl std::fmt::Display for WriteOrdersError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot write the orders file `{}`", self.path.display())
    }
}

impl std::error::Error for WriteOrdersError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Writes the orders file to `path` (creating its directory) and returns how many data rows
/// it holds. The same `config` always writes the same bytes.
///
/// Another run may be reading `path` right now, so it is never rewritten in place: a file that
/// already holds these bytes is left alone, and otherwise the bytes go to a new temporary file
/// of a unique name (`.<name>.<pid>.<random>.tmp`, created with `create_new`) that is renamed
/// over `path` once complete. A reader sees the old file or the new one, whole.
///
/// ```no_run
/// use obzenflow_examples::orders::{write_orders, OrdersConfig};
///
/// let rows = write_orders("target/obzenflow/data/orders.csv".as_ref(), OrdersConfig::SMOKE)?;
/// assert_eq!(rows, 2_000);
/// # Ok::<(), obzenflow_examples::orders::WriteOrdersError>(())
/// ```
pub fn write_orders(path: &Path, config: OrdersConfig) -> Result<u64, WriteOrdersError> {
    write_rows(path, config).map_err(|source| WriteOrdersError {
        path: path.to_path_buf(),
        source,
    })
}

fn write_rows(path: &Path, config: OrdersConfig) -> io::Result<u64> {
    let bytes = order_bytes(config)?;
    if holds(path, &bytes) {
        return Ok(config.rows);
    }
    let parent = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty());
    if let Some(parent) = parent {
        fs::create_dir_all(parent)?;
    }
    let tmp = temp_path(path);
    let written = (|| {
        let mut file = File::options().write(true).create_new(true).open(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written.map(|()| config.rows)
}

/// Whether `path` is a regular file holding exactly `bytes` (checked by size first, so a large
/// or special file is never read).
fn holds(path: &Path, bytes: &[u8]) -> bool {
    let regular_of_size = fs::symlink_metadata(path)
        .is_ok_and(|metadata| metadata.is_file() && metadata.len() == bytes.len() as u64);
    regular_of_size && fs::read(path).is_ok_and(|existing| existing == bytes)
}

/// `.<name>.<pid>.<random>.tmp` next to `path`: no other run picks the same name.
fn temp_path(path: &Path) -> std::path::PathBuf {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    hasher.write_u128(nanos);
    let name = path
        .file_name()
        .map_or_else(|| "orders".into(), |name| name.to_string_lossy());
    let tmp = format!(
        ".{name}.{}.{:016x}.tmp",
        std::process::id(),
        hasher.finish()
    );
    path.with_file_name(tmp)
}

/// The whole orders file for `config`, in memory (about 8 MB for the full data set).
fn order_bytes(config: OrdersConfig) -> io::Result<Vec<u8>> {
    let mut out = BufWriter::new(Vec::new());
    writeln!(out, "{HEADER}")?;
    let mut random = XorShift::new(config.seed);
    let spacing = config.rows / config.broken_rows.max(1);
    for index in 0..config.rows {
        let row = order_row(&mut random, index, &config);
        let broken = config.broken_rows > 0
            && index % spacing.max(1) == spacing / 2
            && index / spacing.max(1) < config.broken_rows;
        if broken {
            out.write_all(&break_row(&row, index / spacing.max(1)))?;
        } else {
            out.write_all(row.as_bytes())?;
        }
        out.write_all(b"\n")?;
    }
    out.into_inner().map_err(io::IntoInnerError::into_error)
}

/// One well-formed row.
fn order_row(random: &mut XorShift, index: u64, config: &OrdersConfig) -> String {
    // Orders are spread evenly over the period, in time order, like a real export.
    let seconds = START_SECONDS + index * config.days * 86_400 / config.rows.max(1);
    let placed_at = Timestamp::from_micros(seconds * 1_000_000).to_string();
    let placed_at = placed_at.replace(".000000", "");
    // A few customers order far more than the rest; scattering the ranks over the ids keeps
    // the best customers from being simply C0000, C0001, ...
    let rank = (random.unit().powf(1.5) * config.customers as f64) as u64;
    let customer = (rank * 7_919 + 1_234) % config.customers.max(1);
    let mixed = customer.wrapping_mul(2_654_435_761) >> 7;
    let first = FIRST_NAMES[(mixed % 16) as usize];
    let last = LAST_NAMES[(mixed / 16 % 12) as usize];
    let country = random.pick(&COUNTRIES).copied().unwrap_or("US");
    let (product, base_price) = random.pick(&PRODUCTS).copied().unwrap_or(PRODUCTS[0]);
    let quantity = 1 + random.below(4) * random.below(2) + random.below(2);
    let unit_price = (base_price * (0.9 + random.unit() * 0.2) * 100.0).round() / 100.0;
    let status = match random.below(100) {
        0..=89 => "paid",
        90..=95 => "refunded",
        _ => "cancelled",
    };
    format!(
        "ORD-{:06},{placed_at},C{customer:04},{first} {last},{country},{product},{quantity},\
         {unit_price:.2},{status}",
        index + 1
    )
}

/// Breaks a row in one of five ways, so every kind of bad input shows up in the run report.
fn break_row(row: &str, which: u64) -> Vec<u8> {
    let mut fields: Vec<String> = row.split(',').map(str::to_owned).collect();
    match which % 5 {
        // Too few fields: the CSV source rejects it.
        0 => fields.truncate(4),
        // A quantity that is not a number: the CSV source rejects it.
        1 => fields[6] = "two".to_owned(),
        // A month that does not exist: the validation step rejects it.
        2 => {
            if fields[1].len() >= 7 {
                fields[1].replace_range(5..7, "13");
            }
        }
        // A quantity of zero: the validation step rejects it.
        3 => fields[6] = "0".to_owned(),
        // Bytes that are not UTF-8 in a name: the CSV source rejects it.
        _ => {
            let mut bytes = fields[..3].join(",").into_bytes();
            bytes.extend_from_slice(b",Ren\xe9e Descartes,");
            bytes.extend_from_slice(fields[4..].join(",").as_bytes());
            return bytes;
        }
    }
    fields.join(",").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_failure_names_the_file_and_leaves_the_cause_to_its_source() {
        let error = WriteOrdersError {
            path: "data/orders.csv".into(),
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        };
        assert_eq!(
            error.to_string(),
            "cannot write the orders file `data/orders.csv`"
        );
        assert_eq!(
            obzenflow_core::ErrorChain::new(&error).to_string(),
            "cannot write the orders file `data/orders.csv`: permission denied"
        );
    }

    #[test]
    fn days_are_checked() {
        assert_eq!(utc_day("2024-02-29T23:59:59Z"), Some("2024-02-29"));
        assert_eq!(utc_day("2023-02-29T00:00:00Z"), None);
        assert_eq!(utc_day("2024-13-01T00:00:00Z"), None);
        assert_eq!(utc_day("2024-01-01 00:00:00"), None);
        assert_eq!(utc_day("2024-01-01T24:00:00Z"), None);
    }

    #[test]
    fn the_file_is_deterministic_and_has_its_broken_rows() {
        let dir = tempfile::tempdir().unwrap();
        let (first, second) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
        assert_eq!(write_orders(&first, OrdersConfig::SMOKE).unwrap(), 2_000);
        write_orders(&second, OrdersConfig::SMOKE).unwrap();
        let bytes = fs::read(&first).unwrap();
        assert_eq!(bytes, fs::read(&second).unwrap());
        let lines: Vec<&[u8]> = bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(lines.len(), 2_001);
        assert_eq!(lines[0], HEADER.as_bytes());
        let not_utf8 = lines
            .iter()
            .filter(|l| std::str::from_utf8(l).is_err())
            .count();
        assert_eq!(not_utf8, 2);
        let short = lines
            .iter()
            .filter(|l| l.split(|b| *b == b',').count() == 4)
            .count();
        assert_eq!(short, 2);
        let text = String::from_utf8_lossy(&bytes);
        assert_eq!(text.matches(",two,").count(), 2);
        assert_eq!(text.matches("-13-").count(), 2);
    }

    #[test]
    fn the_file_is_never_rewritten_under_a_reader() {
        use std::io::Read;
        use std::os::unix::fs::MetadataExt;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orders.csv");
        write_orders(&path, OrdersConfig::SMOKE).unwrap();
        let smoke = fs::read(&path).unwrap();
        let inode = fs::metadata(&path).unwrap().ino();

        // The same bytes: the file is left alone, not truncated and rewritten.
        let mut reader = File::open(&path).unwrap();
        write_orders(&path, OrdersConfig::SMOKE).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().ino(), inode);

        // Other bytes: a new file is renamed into place; the reader still reads the old one,
        // whole.
        let other = OrdersConfig {
            rows: 500,
            ..OrdersConfig::SMOKE
        };
        write_orders(&path, other).unwrap();
        assert_ne!(fs::metadata(&path).unwrap().ino(), inode);
        let mut read = Vec::new();
        reader.read_to_end(&mut read).unwrap();
        assert_eq!(read, smoke);
        assert_eq!(fs::read(&path).unwrap(), order_bytes(other).unwrap());
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["orders.csv"], "no temporary file is left");
    }

    #[test]
    fn broken_dates_fail_validation() {
        let row = "ORD-000001,2024-01-05T10:00:00Z,C0001,A B,US,Kettle,1,1.00,paid";
        let broken = String::from_utf8(break_row(row, 2)).unwrap();
        assert!(broken.contains(",2024-13-05T10:00:00Z,"), "{broken}");
    }
}
