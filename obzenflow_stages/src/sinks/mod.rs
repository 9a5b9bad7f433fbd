//! Sinks: the console, JSON Lines and CSV files, dead-letter files for error lanes, a
//! collector for tests, and a null sink.
//!
//! File sinks write to a uniquely named `<path>.<pid>.<random>.tmp` and rename it to `<path>`
//! when the flow drains, so a file at `<path>` is always complete; a run that fails or is cancelled leaves the previous file
//! untouched. Their delivery receipts report the records and bytes written. A write that fails
//! puts its record (and every later one) on the error lane and fails the stage at drain, so
//! nothing is lost without a record.

mod collect;
mod console;
mod csv;
mod dead_letter;
mod file;
mod jsonl;
mod null;

pub use self::csv::CsvSink;
pub use collect::CollectSink;
pub use console::ConsoleSink;
pub use dead_letter::{DeadLetter, DeadLetterSink};
pub use file::FileSinkConfig;
pub use jsonl::JsonLinesSink;
pub use null::NullSink;
