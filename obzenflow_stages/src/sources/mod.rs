//! Sources: records from memory, from JSON Lines and CSV files, and from a rate-limited
//! generator.
//!
//! File sources never stop on a bad line. A line that cannot be decoded (malformed JSON or CSV,
//! a value of the wrong type, invalid UTF-8, a length over the limit) becomes an error-lane
//! record: its status is `ProcessingStatus::Error` with
//! [`ErrorKind::Decode`](obzenflow_core::ErrorKind::Decode) and the message
//! `<file>:<line>: <what was wrong>`, and its payload is a [`BadRow`] quoting the start of the
//! raw line. A file that cannot be opened or read at all fails the source from `initialize`,
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
