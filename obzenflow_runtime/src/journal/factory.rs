//! [`JournalFactory`]: makes the journals of a run's stages, in memory or in a run directory.

use std::fmt;
use std::sync::Arc;

use obzenflow_core::{Journal, JournalError, JournalId, Lane, StageId, SystemComponent, WriterId};

use super::backpressure::BackpressureObserver;
use super::disk::{DiskJournal, DiskJournalConfig, RecoveryReport};
use super::external::{ExternalJournal, RunStore};
use super::forwarded::SiblingJournals;
use super::memory::MemoryJournal;
use super::run_dir::{RunDirError, RunDirectory};
use super::storage::{CompanionDigest, LaneLink};
use super::sync::SyncScheduler;

/// Where a run's journals live.
#[derive(Clone)]
pub enum JournalStorage {
    /// In memory only, every record kept until the run ends: fast, not persisted.
    Memory,
    /// In memory only, each journal keeping at most its most recent `retain_records` records
    /// (fewer once its readers have read them), so memory stays flat however long the run.
    /// Readers whose backpressure window is at most `retain_records` never miss a record.
    BoundedMemory {
        /// How many recent records each journal keeps.
        retain_records: usize,
    },
    /// In segment files under a run directory.
    Disk {
        /// The run's directory.
        run_dir: RunDirectory,
        /// How each journal stores and syncs.
        config: DiskJournalConfig,
    },
    /// In a journal service ([`JournalBackend`](super::JournalBackend)), each journal keeping
    /// its most recent `retain_records` records in memory for readers in this process.
    External {
        /// The run in the service.
        run: Arc<dyn RunStore>,
        /// Where and how durably, as the backend describes it.
        description: String,
        /// How many recent records each journal keeps in memory.
        retain_records: usize,
    },
}

impl fmt::Display for JournalStorage {
    /// How durable the journals are, for a run summary.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory => f.write_str("in-memory journals (not persisted)"),
            Self::BoundedMemory { retain_records } => write!(
                f,
                "in-memory journals keeping at most the last {retain_records} records (not persisted)"
            ),
            Self::Disk { config, .. } => write!(f, "disk journals, {}", config.sync),
            Self::External { description, .. } => f.write_str(description),
        }
    }
}

/// The two journals of a stage.
#[derive(Clone)]
pub struct StageJournals {
    /// What the stage emits.
    pub data: Arc<dyn Journal>,
    /// Records that failed at the stage.
    pub error: Arc<dyn Journal>,
    /// Torn tails cut while opening existing journals.
    pub recovered: Vec<RecoveryReport>,
}

impl fmt::Debug for JournalStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory => f.write_str("Memory"),
            Self::BoundedMemory { retain_records } => f
                .debug_struct("BoundedMemory")
                .field("retain_records", retain_records)
                .finish(),
            Self::Disk { run_dir, config } => f
                .debug_struct("Disk")
                .field("run_dir", run_dir)
                .field("config", config)
                .finish(),
            Self::External {
                description,
                retain_records,
                ..
            } => f
                .debug_struct("External")
                .field("description", description)
                .field("retain_records", retain_records)
                .finish_non_exhaustive(),
        }
    }
}

impl fmt::Debug for StageJournals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StageJournals")
            .field("data", self.data.id())
            .field("error", self.error.id())
            .field("recovered", &self.recovered)
            .finish()
    }
}

/// Makes the journals of a run, all of one storage kind.
///
/// For disk storage it owns the run's [`SyncScheduler`], shared by every journal it makes.
///
/// ```no_run
/// use obzenflow_core::{FlowId, RunId, StageId};
/// use obzenflow_runtime::journal::{
///     DiskJournalConfig, JournalFactory, JournalStorage, RunDirectory, RunManifest, SyncPolicy,
/// };
///
/// let manifest = RunManifest::new("orders", FlowId::new(), RunId::new(), SyncPolicy::default());
/// let (run_dir, _lock) = RunDirectory::create("runs", &manifest)?;
/// let storage = JournalStorage::Disk { run_dir, config: DiskJournalConfig::default() };
/// let factory = JournalFactory::new(storage)?;
/// let parse = factory.stage_journals("parse", StageId::new())?;
/// println!("{} -> {}", parse.data.id(), factory.storage());
/// # Ok::<(), obzenflow_runtime::journal::RunDirError>(())
/// ```
#[derive(Debug, Clone)]
pub struct JournalFactory {
    storage: JournalStorage,
    scheduler: Option<SyncScheduler>,
    /// The disk journals made so far, which later ones may refer into.
    run: SiblingJournals,
}

impl JournalFactory {
    /// A factory for `storage`; starts the sync thread for disk storage.
    pub fn new(storage: JournalStorage) -> Result<Self, RunDirError> {
        let scheduler = match &storage {
            JournalStorage::Memory
            | JournalStorage::BoundedMemory { .. }
            | JournalStorage::External { .. } => None,
            JournalStorage::Disk { run_dir, .. } => Some(start_scheduler(run_dir)?),
        };
        Ok(Self {
            storage,
            scheduler,
            run: SiblingJournals::default(),
        })
    }

    /// A factory of in-memory journals.
    pub fn memory() -> Self {
        Self {
            storage: JournalStorage::Memory,
            scheduler: None,
            run: SiblingJournals::default(),
        }
    }

    /// Where the journals live.
    pub fn storage(&self) -> &JournalStorage {
        &self.storage
    }

    /// The run directory, for disk storage.
    pub fn run_dir(&self) -> Option<&RunDirectory> {
        match &self.storage {
            JournalStorage::Disk { run_dir, .. } => Some(run_dir),
            JournalStorage::Memory
            | JournalStorage::BoundedMemory { .. }
            | JournalStorage::External { .. } => None,
        }
    }

    /// Opens (or creates) the data and error journals of the stage `name`.
    pub fn stage_journals(
        &self,
        name: &str,
        stage_id: StageId,
    ) -> Result<StageJournals, RunDirError> {
        self.observed_stage_journals(name, stage_id, None)
    }

    /// [`JournalFactory::stage_journals`], both journals telling `backpressure` (the stage's
    /// counters, for the pipeline) of every wait of their appends for a slow reader.
    pub(crate) fn observed_stage_journals(
        &self,
        name: &str,
        stage_id: StageId,
        backpressure: Option<Arc<dyn BackpressureObserver>>,
    ) -> Result<StageJournals, RunDirError> {
        let owner = WriterId::Stage(stage_id);
        // The data journal's seal carries what the error journal holds.
        let companion = CompanionDigest::default();
        let error_link = LaneLink::Publishes(companion.clone());
        let error_id = JournalId::new(owner, name, Lane::Error);
        let (error, error_recovery) = self.journal(error_id, error_link, backpressure.clone())?;
        let data_link = LaneLink::Carries(companion);
        let data_id = JournalId::new(owner, name, Lane::Data);
        let (data, data_recovery) = self.journal(data_id, data_link, backpressure)?;
        Ok(StageJournals {
            data,
            error,
            recovered: data_recovery.into_iter().chain(error_recovery).collect(),
        })
    }

    /// Opens (or creates) the journal of a system component.
    pub fn system_journal(
        &self,
        component: SystemComponent,
    ) -> Result<(Arc<dyn Journal>, Option<RecoveryReport>), RunDirError> {
        let owner = WriterId::System(component);
        self.journal(
            JournalId::new(owner, component.as_str(), Lane::System),
            LaneLink::Alone,
            None,
        )
    }

    fn journal(
        &self,
        id: JournalId,
        link: LaneLink,
        backpressure: Option<Arc<dyn BackpressureObserver>>,
    ) -> Result<(Arc<dyn Journal>, Option<RecoveryReport>), RunDirError> {
        let (run_dir, config) = match &self.storage {
            JournalStorage::Memory => {
                let journal = MemoryJournal::new(id).with_backpressure_observer(backpressure);
                return Ok((Arc::new(journal), None));
            }
            JournalStorage::BoundedMemory { retain_records } => {
                let journal = MemoryJournal::bounded(id, *retain_records)
                    .with_backpressure_observer(backpressure);
                return Ok((Arc::new(journal), None));
            }
            JournalStorage::External {
                run,
                retain_records,
                ..
            } => {
                let store = run
                    .frame_store(&id)
                    .map_err(|source| RunDirError::Journal {
                        path: id.to_string().into(),
                        source: JournalError::Backend {
                            journal: id.clone(),
                            operation: "open",
                            source,
                        },
                    })?;
                let journal = ExternalJournal::linked(id, store, link, Some(*retain_records))
                    .with_backpressure_observer(backpressure);
                return Ok((Arc::new(journal), None));
            }
            JournalStorage::Disk { run_dir, config } => (run_dir, config),
        };
        // `new` starts a scheduler for every disk storage; this fallback is never taken.
        let scheduler = match &self.scheduler {
            Some(scheduler) => scheduler.clone(),
            None => start_scheduler(run_dir)?,
        };
        let dir = run_dir.journal_dir(&id.name, id.lane)?;
        let run = Some(self.run.clone());
        let journal = DiskJournal::open_linked(dir.clone(), id, config, &scheduler, link, run)
            .map_err(|source| RunDirError::Journal { path: dir, source })?
            .with_backpressure_observer(backpressure);
        let recovery = journal.recovery().cloned();
        Ok((Arc::new(journal), recovery))
    }
}

fn start_scheduler(run_dir: &RunDirectory) -> Result<SyncScheduler, RunDirError> {
    SyncScheduler::start().map_err(|source| RunDirError::Io {
        operation: "start the journal sync thread for",
        path: run_dir.path().to_path_buf(),
        source,
    })
}
