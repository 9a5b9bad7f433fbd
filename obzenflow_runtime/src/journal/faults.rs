//! Test-only fault injection for disk journals (feature `fault-injection`): a plan of write and
//! fsync failures that tests hand to [`DiskJournalConfig::faults`](super::DiskJournalConfig).
//!
//! A plan is plain data. Each disk journal picks the faults that name it when it opens and
//! counts its own writes and syncs, so there is no global state and tests run in parallel.
//! The failures look like the real ones to everything above the file: the same `io::Error`s
//! (`ENOSPC`, `EIO`) come back through the same code paths, and a short write really leaves a
//! partial frame in the segment for the writer to cut back.
//!
//! Without the feature none of this is compiled and disk journals carry no trace of it.

use std::fs::File;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use obzenflow_core::{JournalId, Lane};

/// One failure to inject into one disk journal.
///
/// `at` counts from 1 since the journal was opened: the `at`-th batch write for
/// [`FaultKind::NoSpace`] and [`FaultKind::ShortWrite`] (one per append, or one per part of an
/// append that a reader's backpressure window split), the `at`-th fsync for
/// [`FaultKind::FailingSync`] (one per append under `SyncPolicy::EveryBatch`, one per group
/// commit under `SyncPolicy::Interval`, and the final one at `close`). A fault with `at == 0`
/// never fires.
///
/// ```no_run
/// use obzenflow_core::Lane;
/// use obzenflow_runtime::journal::{DiskJournalConfig, FaultKind, JournalFault};
/// use obzenflow_runtime::pipeline::Journals;
///
/// // The second write to the `double` stage's data journal finds the disk full.
/// let journals = Journals::disk("target/test-runs").with_disk_config(DiskJournalConfig {
///     faults: vec![JournalFault::new("double", Lane::Data, FaultKind::NoSpace, 2)],
///     ..DiskJournalConfig::default()
/// });
/// # let _ = journals;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JournalFault {
    /// The journal's name: its stage's (or system component's) name, as in [`JournalId::name`].
    pub journal: String,
    /// Which of the owner's journals.
    pub lane: Lane,
    /// What goes wrong.
    pub kind: FaultKind,
    /// Which write or fsync fails, counted from 1.
    pub at: u64,
}

impl JournalFault {
    /// The `at`-th write or fsync (per `kind`) of the journal `journal`/`lane` fails.
    ///
    /// ```
    /// use obzenflow_core::Lane;
    /// use obzenflow_runtime::journal::{FaultKind, JournalFault};
    ///
    /// let fault = JournalFault::new("orders", Lane::Data, FaultKind::FailingSync, 3);
    /// assert_eq!(fault.journal, "orders");
    /// assert_eq!(fault.at, 3);
    /// ```
    pub fn new(journal: impl Into<String>, lane: Lane, kind: FaultKind, at: u64) -> Self {
        Self {
            journal: journal.into(),
            lane,
            kind,
            at,
        }
    }

    fn targets(&self, journal: &JournalId) -> bool {
        *self.journal == *journal.name && self.lane == journal.lane
    }
}

/// What an injected fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// The write fails before any byte reaches the file, with `ENOSPC` ("No space left on
    /// device", [`io::ErrorKind::StorageFull`]).
    NoSpace,
    /// About half of the batch reaches the file, then the write fails with
    /// [`io::ErrorKind::WriteZero`], like a device that fills up in the middle of a write. The
    /// segment then holds a torn frame, which the writer must cut back.
    ShortWrite,
    /// The fsync fails with `EIO` ("Input/output error") and syncs nothing.
    FailingSync,
}

impl FaultKind {
    fn is_write(self) -> bool {
        matches!(self, Self::NoSpace | Self::ShortWrite)
    }
}

/// The write faults of one journal and its count of batch writes; owned by its writer.
#[derive(Debug, Default)]
pub(crate) struct WriteFaults {
    planned: Vec<(u64, FaultKind)>,
    writes: u64,
    /// The fault the current batch hits at its first write to the file.
    armed: Option<FaultKind>,
}

impl WriteFaults {
    /// The write faults of `plan` that target `journal`.
    pub(crate) fn for_journal(plan: &[JournalFault], journal: &JournalId) -> Self {
        let planned = plan
            .iter()
            .filter(|fault| fault.kind.is_write() && fault.targets(journal))
            .map(|fault| (fault.at, fault.kind))
            .collect();
        Self {
            planned,
            ..Self::default()
        }
    }

    /// Counts a batch write and arms the fault planned for it, if any.
    pub(crate) fn begin_batch(&mut self) {
        self.writes += 1;
        let writes = self.writes;
        self.armed = self
            .planned
            .iter()
            .find(|(at, _)| *at == writes)
            .map(|(_, kind)| *kind);
    }

    /// Writes `bytes` to `file`, or fails as the armed fault says.
    pub(crate) fn write_all(&mut self, mut file: &File, bytes: &[u8]) -> io::Result<()> {
        match self.armed.take() {
            None => file.write_all(bytes),
            Some(FaultKind::ShortWrite) => {
                let written = (bytes.len() / 2).max(1).min(bytes.len());
                file.write_all(&bytes[..written])?;
                Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    format!("short write: {written} of {} bytes written", bytes.len()),
                ))
            }
            Some(FaultKind::NoSpace | FaultKind::FailingSync) => Err(no_space()),
        }
    }
}

/// The fsync faults of one journal and its count of syncs; shared by everything that syncs it.
#[derive(Debug, Default)]
pub(crate) struct SyncFaults {
    failing: Vec<u64>,
    syncs: AtomicU64,
}

impl SyncFaults {
    /// The fsync faults of `plan` that target `journal`.
    pub(crate) fn for_journal(plan: &[JournalFault], journal: &JournalId) -> Self {
        let failing = plan
            .iter()
            .filter(|fault| fault.kind == FaultKind::FailingSync && fault.targets(journal))
            .map(|fault| fault.at)
            .collect();
        Self {
            failing,
            syncs: AtomicU64::new(0),
        }
    }

    /// Counts a sync; fails it with `EIO` if it is planned to fail.
    pub(crate) fn check(&self) -> io::Result<()> {
        let sync = self.syncs.fetch_add(1, Ordering::AcqRel) + 1;
        if self.failing.contains(&sync) {
            return Err(io_error());
        }
        Ok(())
    }
}

/// `ENOSPC` as the OS reports it.
fn no_space() -> io::Error {
    #[cfg(unix)]
    {
        // ENOSPC is 28 on Linux, macOS and the BSDs.
        io::Error::from_raw_os_error(28)
    }
    #[cfg(not(unix))]
    {
        io::Error::new(io::ErrorKind::StorageFull, "no space left on device")
    }
}

/// `EIO` as the OS reports it.
fn io_error() -> io::Error {
    #[cfg(unix)]
    {
        // EIO is 5 on every Unix.
        io::Error::from_raw_os_error(5)
    }
    #[cfg(not(unix))]
    {
        io::Error::other("input/output error")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use obzenflow_core::{StageId, WriterId};

    fn id(name: &str, lane: Lane) -> JournalId {
        JournalId::new(WriterId::Stage(StageId::new()), name, lane)
    }

    #[test]
    fn a_journal_takes_only_the_faults_that_name_it() {
        let plan = vec![
            JournalFault::new("double", Lane::Data, FaultKind::NoSpace, 2),
            JournalFault::new("double", Lane::Error, FaultKind::NoSpace, 1),
            JournalFault::new("numbers", Lane::Data, FaultKind::ShortWrite, 1),
            JournalFault::new("double", Lane::Data, FaultKind::FailingSync, 1),
        ];
        let writes = WriteFaults::for_journal(&plan, &id("double", Lane::Data));
        assert_eq!(writes.planned, vec![(2, FaultKind::NoSpace)]);
        let syncs = SyncFaults::for_journal(&plan, &id("double", Lane::Data));
        assert_eq!(syncs.failing, vec![1]);
        let none = SyncFaults::for_journal(&plan, &id("collect", Lane::Data));
        assert!(none.failing.is_empty());
    }

    #[test]
    fn only_the_planned_sync_fails() {
        let plan = vec![JournalFault::new(
            "orders",
            Lane::Data,
            FaultKind::FailingSync,
            2,
        )];
        let syncs = SyncFaults::for_journal(&plan, &id("orders", Lane::Data));
        assert!(syncs.check().is_ok());
        let error = syncs.check().expect_err("the second sync fails");
        if cfg!(unix) {
            assert_eq!(error.raw_os_error(), Some(5));
        }
        assert!(syncs.check().is_ok());
    }

    #[test]
    fn no_space_is_enospc() {
        assert_eq!(no_space().kind(), io::ErrorKind::StorageFull);
        if cfg!(unix) {
            assert_eq!(no_space().raw_os_error(), Some(28));
        }
    }

    #[test]
    fn a_short_write_leaves_part_of_the_batch_in_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("segment");
        let file = File::create(&path).expect("create");
        let plan = vec![JournalFault::new(
            "orders",
            Lane::Data,
            FaultKind::ShortWrite,
            2,
        )];
        let mut writes = WriteFaults::for_journal(&plan, &id("orders", Lane::Data));
        writes.begin_batch();
        writes.write_all(&file, b"first").expect("first write");
        writes.begin_batch();
        let error = writes.write_all(&file, b"0123456789").expect_err("short");
        assert_eq!(error.kind(), io::ErrorKind::WriteZero);
        assert_eq!(error.to_string(), "short write: 5 of 10 bytes written");
        assert_eq!(std::fs::read(&path).expect("read"), b"first01234");
        // The fault fired once; the same batch's next write goes through.
        writes.write_all(&file, b"!").expect("disarmed");
    }
}
