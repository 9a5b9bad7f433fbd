//! Where a flow's journals live.

use std::path::PathBuf;
use std::sync::Arc;

use crate::journal::{DiskJournalConfig, JournalBackend, SyncPolicy};

/// Where a flow keeps its journals.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Journals {
    /// In memory: fast, gone when the process ends.
    Memory {
        /// How many recent records each journal keeps at most; `None` keeps every record.
        /// Live readers never fall further behind than their backpressure window, so a bound
        /// of at least the largest window loses nothing they need and keeps memory flat. A
        /// bounded journal also drops records every one of its readers has read.
        retain_records: Option<usize>,
    },
    /// On disk, one run directory per run under `base_dir`.
    Disk {
        /// The directory run directories are created in.
        base_dir: PathBuf,
        /// Segment size, cache size and fsync policy.
        config: DiskJournalConfig,
    },
    /// In a journal service outside the runtime (NATS JetStream: `obzenflow_stages`, feature
    /// `jetstream`), which also keeps the run's manifest.
    Backend(Arc<dyn JournalBackend>),
}

impl Journals {
    /// The default base directory of run directories, relative to the working directory.
    pub const DEFAULT_BASE_DIR: &'static str = "target/obzenflow/runs";

    /// How many recent records an in-memory journal keeps by default.
    pub const DEFAULT_MEMORY_RETENTION: usize = 4_096;

    /// In-memory journals keeping the most recent [`Journals::DEFAULT_MEMORY_RETENTION`]
    /// records each (never fewer than the largest edge window).
    pub fn memory() -> Self {
        Self::Memory {
            retain_records: Some(Self::DEFAULT_MEMORY_RETENTION),
        }
    }

    /// In-memory journals keeping every record, for tests that read journals afterwards.
    pub fn memory_unbounded() -> Self {
        Self::Memory {
            retain_records: None,
        }
    }

    /// Disk journals under `base_dir`, with the default configuration (group commit).
    pub fn disk(base_dir: impl Into<PathBuf>) -> Self {
        Self::Disk {
            base_dir: base_dir.into(),
            config: DiskJournalConfig::default(),
        }
    }

    /// Journals in the journal service `backend`.
    pub fn backend(backend: Arc<dyn JournalBackend>) -> Self {
        Self::Backend(backend)
    }

    /// The same storage with `sync` as the fsync policy (ignored for memory journals).
    pub fn with_sync_policy(mut self, sync: SyncPolicy) -> Self {
        if let Self::Disk { config, .. } = &mut self {
            config.sync = sync;
        }
        self
    }

    /// The same storage with `config` for every disk journal (ignored for memory journals).
    pub fn with_disk_config(mut self, disk_config: DiskJournalConfig) -> Self {
        if let Self::Disk { config, .. } = &mut self {
            *config = disk_config;
        }
        self
    }
}

impl Default for Journals {
    /// Disk journals under [`Journals::DEFAULT_BASE_DIR`] with group commit.
    fn default() -> Self {
        Self::disk(Self::DEFAULT_BASE_DIR)
    }
}
