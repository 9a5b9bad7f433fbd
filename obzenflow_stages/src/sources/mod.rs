//! Sources: records from memory, from JSON Lines and CSV files, and from a rate-limited
//! generator.
//!
//! File sources never stop on a bad line. A line that cannot be decoded (malformed JSON or CSV,
//! a value of the wrong type, invalid UTF-8, a length over the limit) becomes an error-lane
//! record: its status is `ProcessingStatus::Error` with
//! [`ErrorKind::Decode`](obzenflow_core::ErrorKind::Decode) and the message
//! `<file>:<line>: <what was wrong>`, and its payload is a [`BadRow`] quoting the start of the
//! raw line. Every record a file source emits, good or bad, carries its origin
//! ([`ChainEvent::origin`](obzenflow_core::ChainEvent::origin())): the path as the source was
//! given it and the 1-based line the record starts on (for CSV, the physical line, counting
//! the header row and the lines of quoted fields that span lines), which the runtime hands on
//! to every record derived from it. A file that cannot be opened or read at all fails the source from `initialize`,
//! with an error naming the path and the operating system's reason; a file truncated, replaced
//! or rewritten while it is read fails the source when it reaches the end of its input.
//!
//! A file source returns to its supervisor after at most about one length limit of bytes. The
//! file sources are [`AsyncSourceHandler`](obzenflow_runtime::stages::AsyncSourceHandler)s: on a
//! FIFO or other stream without input, `next_batch` awaits the descriptor on tokio's reactor,
//! with no timer, and a cancel or a graceful stop reaches the source by dropping that wait.

mod csv;
mod file;
mod generator;
mod iter;
mod jsonl;

pub use self::csv::{CsvSource, CsvSourceConfig};
pub use file::BadRow;
pub use generator::{GeneratorConfig, GeneratorSource};
pub use iter::{IterSource, PayloadToEvent};
pub use jsonl::JsonLinesSource;
