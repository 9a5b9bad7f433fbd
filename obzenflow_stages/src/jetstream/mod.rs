//! Journals on NATS JetStream (feature `jetstream`), and local `nats-server` processes to run
//! them against in tests, examples and benchmarks.

mod server;

pub use server::{LocalNats, LocalNatsConfig, LocalNatsError};
