//! [`MemoryJournal`]: a journal kept entirely in memory, with the disk journal's semantics.

use std::fmt;
use std::num::NonZeroU64;
use std::sync::Arc;

use obzenflow_core::{ChainEvent, Journal, JournalError, JournalId, JournalReader, SeqRange};

use super::backpressure::BackpressureObserver;
use super::core::JournalCore;
use super::storage::Storage;

/// A journal whose only storage is its record cache: every record stays in memory until the
/// journal is dropped (or, for [`MemoryJournal::bounded`], until it is among the oldest beyond
/// the retention limit). Appends, readers, backpressure windows and close behave exactly as for
/// a [`DiskJournal`](super::DiskJournal), which runs the same core.
///
/// ```
/// use obzenflow_core::{ChainEvent, Journal, JournalId, Lane, StageId, WriterId};
/// use obzenflow_runtime::journal::MemoryJournal;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let id = JournalId::new(WriterId::Stage(StageId::new()), "orders", Lane::Data);
/// let journal = MemoryJournal::new(id);
/// let mut reader = journal.reader(0, None)?;
/// let range = journal
///     .append(vec![ChainEvent::data("order", serde_json::json!({"id": 1}))])
///     .await?;
/// assert_eq!((range.start, range.end), (0, 1));
/// reader.wait().await?;
/// let mut records = Vec::new();
/// assert_eq!(reader.read(16, &mut records)?, 1);
/// journal.close().await?;
/// assert!(reader.wait().await.is_err());
/// # Ok::<(), obzenflow_core::JournalError>(())
/// # }).unwrap();
/// ```
pub struct MemoryJournal {
    core: JournalCore,
}

impl MemoryJournal {
    /// An empty journal that keeps every record.
    pub fn new(id: JournalId) -> Self {
        Self {
            core: JournalCore::new(id, Storage::Memory, 0, None, None),
        }
    }

    /// An empty journal that keeps at most the most recent `retain_records` records, so a long
    /// run's memory stays flat; while it has readers with a window and none without, it also
    /// drops (a batch at a time) the records all of them have read. Readers whose
    /// backpressure window is at most `retain_records` never miss a record; a reader that
    /// falls further behind, or opens at a record already dropped, gets
    /// [`JournalError::Evicted`].
    ///
    /// ```
    /// use obzenflow_core::{ChainEvent, Journal, JournalError, JournalId, Lane, StageId, WriterId};
    /// use obzenflow_runtime::journal::MemoryJournal;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let id = JournalId::new(WriterId::Stage(StageId::new()), "orders", Lane::Data);
    /// let journal = MemoryJournal::bounded(id, 2);
    /// let events = (0..3).map(|i| ChainEvent::data("order", serde_json::json!({"id": i})));
    /// journal.append(events.collect()).await?;
    /// assert!(matches!(journal.reader(0, None), Err(JournalError::Evicted { oldest: 1, .. })));
    /// assert!(journal.reader(1, None).is_ok());
    /// # Ok::<(), JournalError>(())
    /// # }).unwrap();
    /// ```
    pub fn bounded(id: JournalId, retain_records: usize) -> Self {
        Self {
            core: JournalCore::new(id, Storage::Memory, 0, Some(retain_records), None),
        }
    }

    /// The same journal, telling `observer` (if any) of every wait of its appends for a slow
    /// reader.
    pub(crate) fn with_backpressure_observer(
        self,
        observer: Option<Arc<dyn BackpressureObserver>>,
    ) -> Self {
        Self {
            core: self.core.with_backpressure_observer(observer),
        }
    }

    /// Whether the journal was closed.
    pub fn is_closed(&self) -> bool {
        self.core.is_closed()
    }
}

impl fmt::Debug for MemoryJournal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryJournal")
            .field("id", self.core.id())
            .field("committed", &self.core.committed())
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl Journal for MemoryJournal {
    fn id(&self) -> &JournalId {
        self.core.id()
    }

    /// Cancel safety: not cancel safe; see [`Journal::append`].
    async fn append(&self, events: Vec<ChainEvent>) -> Result<SeqRange, JournalError> {
        self.core
            .append(events, obzenflow_core::Forwards::default())
            .await
    }

    fn committed(&self) -> u64 {
        self.core.committed()
    }

    /// Equal to [`Journal::committed`]: there is no storage to sync.
    fn durable(&self) -> u64 {
        self.core.committed()
    }

    fn reader(
        &self,
        from: u64,
        window: Option<NonZeroU64>,
    ) -> Result<Box<dyn JournalReader>, JournalError> {
        self.core.reader(from, window)
    }

    /// Cancel safety: not cancel safe. The journal refuses appends from the first poll on;
    /// cancelled before it finished, readers are not yet told it closed: call `close` again.
    async fn close(&self) -> Result<(), JournalError> {
        self.core.close().await
    }
}
