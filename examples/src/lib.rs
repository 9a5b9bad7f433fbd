//! Shared helpers for the ObzenFlow examples: smoke mode, output locations, the deterministic
//! orders data set of the quickstart, the flight data set of the `csv_typed` benchmark, and a
//! progress bar driven by a running flow.

pub mod flights;
pub mod orders;
pub mod progress;
pub mod random;

use std::path::PathBuf;

/// The environment variable that asks every example for a small input and a fast finish.
pub const SMOKE_ENV: &str = "OBZENFLOW_SMOKE";

/// Whether the example runs in smoke mode (`OBZENFLOW_SMOKE=1`): small input, no progress bar.
///
/// ```
/// let _small = obzenflow_examples::smoke_mode();
/// ```
pub fn smoke_mode() -> bool {
    std::env::var(SMOKE_ENV).is_ok_and(|value| value == "1" || value == "true")
}

/// Where examples write their input data: `target/obzenflow/data`, relative to the working
/// directory like the runtime's default run directories.
///
/// ```
/// assert!(obzenflow_examples::data_dir().ends_with("data"));
/// ```
pub fn data_dir() -> PathBuf {
    PathBuf::from("target/obzenflow/data")
}

/// Where examples write their outputs: `target/obzenflow/out`.
///
/// ```
/// assert!(obzenflow_examples::out_dir().ends_with("out"));
/// ```
pub fn out_dir() -> PathBuf {
    PathBuf::from("target/obzenflow/out")
}

/// Logs warnings and errors to stderr; `RUST_LOG=info` (or `debug`) shows more.
///
/// ```
/// obzenflow_examples::init_tracing();
/// ```
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // A second initialization (from a test) keeps the first subscriber; that is fine.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Formats `n` with thousands separators: `1234567` -> `1,234,567`.
///
/// ```
/// assert_eq!(obzenflow_examples::thousands(1_234_567), "1,234,567");
/// assert_eq!(obzenflow_examples::thousands(12), "12");
/// ```
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Formats an amount of money with two decimals and thousands separators: `$12,345.60`.
///
/// ```
/// assert_eq!(obzenflow_examples::dollars(12_345.6), "$12,345.60");
/// assert_eq!(obzenflow_examples::dollars(0.5), "$0.50");
/// ```
pub fn dollars(amount: f64) -> String {
    let cents = (amount * 100.0).round().max(0.0) as u64;
    format!("${}.{:02}", thousands(cents / 100), cents % 100)
}
