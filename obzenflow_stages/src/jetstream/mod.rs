//! Journals on NATS JetStream (feature `jetstream`), and local `nats-server` processes to run
//! them against in tests, examples and benchmarks.

mod journals;
mod server;

pub use journals::{JetStreamConfig, JetStreamError, JetStreamJournals};
pub use server::{LocalNats, LocalNatsConfig, LocalNatsError};
