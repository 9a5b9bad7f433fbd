//! Journals on NATS JetStream (feature `jetstream`), and local `nats-server` processes to run
//! them against in tests, examples and benchmarks.

mod cli;
mod journals;
mod reader;
mod server;

pub use cli::run_cli;
pub use journals::{JetStreamConfig, JetStreamError, JetStreamJournals};
pub use reader::JetStreamReader;
pub use server::{LocalNats, LocalNatsConfig, LocalNatsError};
