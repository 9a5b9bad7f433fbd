//! Journals on NATS JetStream (feature `jetstream`), and local `nats-server` processes to run
//! them against in tests, examples and benchmarks; workers, which run one flow's stages in
//! several processes on one run.

mod cli;
mod journals;
mod positions;
mod reader;
mod server;
mod workers;

pub use cli::run_cli;
pub use journals::{JetStreamConfig, JetStreamError, JetStreamJournals};
pub use reader::JetStreamReader;
pub use server::{LocalNats, LocalNatsConfig, LocalNatsError};
pub use workers::{StageOutcome, WorkerArgs, WorkerError};
