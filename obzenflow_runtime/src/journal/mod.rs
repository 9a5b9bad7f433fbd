//! Journals: the durable, append-only transport between stages.
//!
//! Every stage appends what it emits to its own data journal (and bad records to its error
//! journal); each downstream stage reads that journal with its own cursor. This module holds
//! the implementations of the [`obzenflow_core::Journal`] port:
//!
//! - [`MemoryJournal`] and [`DiskJournal`] share one in-process core: a cache of
//!   `Record` records, the committed count, the registry of readers with
//!   backpressure windows, and write-then-notify wake-ups (no reader or writer ever polls).
//!   Storage is a strategy: nothing for memory journals, segment files for disk journals.
//!   A journal opened with a backpressure observer (the pipeline opens a stage's journals with
//!   the stage's counters) tells it how long each append waited for a slow reader; the
//!   journal uses no other module of the crate.
//! - On disk a journal is a directory of segment files ([`segment_file_name`]) holding frames
//!   ([`frame`]) of records in a compact binary encoding ([`codec`]). Opening validates every
//!   segment and cuts a torn tail ([`RecoveryReport`]); [`SegmentReader`] reads frames back
//!   from a file, [`decode_segment_bytes`] from memory, with the same checks.
//! - [`SyncPolicy`] says when appended records reach stable storage; [`SyncScheduler`] is the
//!   one group-commit thread a run shares between its journals.
//! - A journal closed in order ends with a seal ([`codec::Seal`]): its counts and a running
//!   hash over its frames, and for a stage's data journal its error journal's as well. One set
//!   of checks, run by every reader, holds a journal to its seal and its records to each other.
//! - [`RunDirectory`] lays out a run on disk with its [`RunManifest`]; [`inspect`] lists,
//!   reads and validates a run's journals without changing them.
//! - [`ExternalJournal`] runs the same core with its frames stored by a journal service
//!   outside the runtime ([`JournalBackend`], [`RunStore`], [`FrameStore`]): the disk
//!   journal's frames and seal, sent one frame at a time and acknowledged once stored.
//! - [`JournalFactory`] makes the data and error journals of each stage of a run, in memory
//!   or on disk ([`JournalStorage`]).
//! - With the test-only feature `fault-injection`, `JournalFault` plans make disk journals
//!   fail a write (`ENOSPC`, a short write) or an fsync (`EIO`) on cue.

mod audit;
mod backpressure;
mod check;
pub mod codec;
mod core;
mod disk;
mod disk_read;
mod escape;
mod external;
mod factory;
#[cfg(feature = "fault-injection")]
mod faults;
mod files;
mod forwarded;
pub mod frame;
pub mod inspect;
mod memory;
mod reader;
mod run_dir;
mod segment;
mod storage;
mod sync;

pub(crate) use backpressure::BackpressureObserver;
pub use disk::{DiskJournal, DiskJournalConfig, RecoveryReport};
pub(crate) use external::run_error as external_run_error;
pub use external::{
    BackendError, ExternalJournal, FrameStore, JoinedRun, JournalBackend, PositionFeed, RunStore,
    StoredFrame,
};
pub(crate) use factory::StageJournals;
pub use factory::{JournalFactory, JournalStorage};
#[cfg(feature = "fault-injection")]
pub use faults::{FaultKind, JournalFault};
#[cfg(feature = "cli")]
pub(crate) use files::is_temp_name;
pub use memory::MemoryJournal;
pub(crate) use run_dir::name_problem;
#[cfg(feature = "fault-injection")]
pub use run_dir::Interruption;
pub(crate) use run_dir::RunLock;
pub use run_dir::{
    CreateStep, ManifestJournal, ManifestStage, RunDirError, RunDirectory, RunManifest, RunState,
    RunStatus,
};
pub use segment::{
    decode_segment_bytes, parse_segment_file_name, segment_file_name, DamagedFrame, FrameError,
    SegmentReader,
};
pub use sync::{SyncPolicy, SyncScheduler};
