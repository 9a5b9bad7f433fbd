//! The in-process core every journal shares: the record cache, the committed count, the
//! registry of windowed readers and the wake-ups. Storage is a strategy ([`Storage`]) plugged
//! into the append path, so memory and disk journals run the same logic.
//!
//! Invariants:
//! - `committed` only grows, and only after the records below it are in the cache (and, for
//!   disk journals, written to their segment): write, then notify.
//! - While a windowed reader is registered, an append never makes `committed - position`
//!   exceed the reader's window; it commits what fits and waits for the reader to move.

use std::collections::VecDeque;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use obzenflow_core::{
    ChainEvent, Forwards, JournalError, JournalId, JournalReader, Record, SeqRange,
};
use tokio::sync::Notify;

use super::backpressure::{BackpressureObserver, BackpressureWait};
use super::disk_read::DiskRecords;
use super::reader::CoreReader;
use super::storage::Storage;

/// What readers and the writer of one journal share.
pub(crate) struct CoreShared {
    pub(crate) id: JournalId,
    state: Mutex<CoreState>,
    committed: AtomicU64,
    /// Set by `close` before it waits for an append in flight: refuse further appends.
    closing: AtomicBool,
    /// Set by `close` once nothing more can be committed: readers may report `Closed`.
    closed: AtomicBool,
    /// Woken (all waiters) whenever records are committed or the journal closes.
    pub(crate) records_added: Notify,
    /// Woken (the one blocked writer) when a windowed reader moves or leaves.
    reader_progress: Notify,
    /// Where records that left the cache can still be read; `None` for memory journals.
    pub(crate) disk: Option<Arc<DiskRecords>>,
}

pub(crate) struct CoreState {
    pub(crate) cache: RecordCache,
    readers: WindowRegistry,
    writer_waiting: bool,
}

impl CoreShared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, CoreState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn committed(&self) -> u64 {
        self.committed.load(Ordering::Acquire)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Moves a windowed reader's position; wakes the writer if it was waiting.
    pub(crate) fn advance_reader(&self, state: &mut CoreState, slot: usize, position: u64) -> bool {
        state.readers.set_position(slot, position);
        std::mem::take(&mut state.writer_waiting)
    }

    /// Forgets a reader without a window.
    pub(crate) fn unregister_unwindowed(&self) {
        let mut state = self.lock();
        state.readers.unwindowed = state.readers.unwindowed.saturating_sub(1);
    }

    /// Removes a windowed reader; wakes the writer if it was waiting.
    pub(crate) fn unregister_reader(&self, slot: usize) {
        let wake = {
            let mut state = self.lock();
            state.readers.remove(slot);
            std::mem::take(&mut state.writer_waiting)
        };
        if wake {
            self.wake_writer();
        }
    }

    pub(crate) fn evicted(&self, requested: u64, oldest: u64) -> JournalError {
        JournalError::Evicted {
            journal: self.id.clone(),
            requested,
            oldest,
        }
    }

    pub(crate) fn wake_writer(&self) {
        // `notify_one` keeps a permit if the writer has not started waiting yet, so a wake-up
        // between its check and its await is not lost.
        self.reader_progress.notify_one();
    }

    /// Makes `records` visible after `committed` and wakes waiting readers; returns the new
    /// committed count.
    fn publish(&self, records: Vec<Record>) -> u64 {
        let (committed, evicted) = {
            let mut state = self.lock();
            state.cache.records.extend(records);
            let consumed = state.readers.consumed();
            let evicted = state.cache.evict(consumed);
            let committed = state.cache.end();
            self.committed.store(committed, Ordering::Release);
            (committed, evicted)
        };
        // Dropping evicted records can free payloads: do it outside the lock.
        drop(evicted);
        self.records_added.notify_waiters();
        committed
    }
}

/// The most recent records, shared with readers as `Record` clones.
pub(crate) struct RecordCache {
    /// The sequence of the oldest cached record.
    pub(crate) base: u64,
    pub(crate) records: VecDeque<Record>,
    /// `None` keeps every record (an unbounded memory journal, whose cache is its storage).
    capacity: Option<usize>,
}

impl RecordCache {
    pub(crate) fn end(&self) -> u64 {
        self.base + self.records.len() as u64
    }

    /// Clones up to `max` records from `from` (which must be cached) into `out`.
    pub(crate) fn copy_into(&self, from: u64, max: usize, out: &mut Vec<Record>) -> usize {
        let skip = usize::try_from(from - self.base).unwrap_or(usize::MAX);
        let available = self.records.len().saturating_sub(skip);
        let count = available.min(max);
        out.extend(self.records.range(skip..skip + count).cloned());
        count
    }

    /// Drops the records beyond the capacity, and those every reader has read (`consumed`, the
    /// slowest position when every reader is known): they are needed by nobody, and dropping
    /// them early keeps memory to the readers' actual lag rather than the capacity.
    fn evict(&mut self, consumed: Option<u64>) -> Vec<Record> {
        let Some(capacity) = self.capacity else {
            return Vec::new();
        };
        let read_by_all = consumed.map_or(0, |position| {
            usize::try_from(position.saturating_sub(self.base)).unwrap_or(usize::MAX)
        });
        let excess = self
            .records
            .len()
            .saturating_sub(capacity)
            .max(read_by_all.min(self.records.len()));
        self.base += excess as u64;
        self.records.drain(..excess).collect()
    }
}

/// Positions and windows of the readers that hold the writer back, and how many readers
/// without a window are open.
#[derive(Default)]
struct WindowRegistry {
    slots: Vec<Option<(u64, u64)>>,
    free: Vec<usize>,
    unwindowed: usize,
}

impl WindowRegistry {
    /// The position every reader has passed: the slowest windowed reader's, when there is at
    /// least one and no reader without a window (whose position the registry does not know).
    fn consumed(&self) -> Option<u64> {
        if self.unwindowed > 0 {
            return None;
        }
        self.slots
            .iter()
            .flatten()
            .map(|(position, _)| *position)
            .min()
    }

    fn register(&mut self, position: u64, window: u64) -> usize {
        match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some((position, window));
                slot
            }
            None => {
                self.slots.push(Some((position, window)));
                self.slots.len() - 1
            }
        }
    }

    fn set_position(&mut self, slot: usize, position: u64) {
        if let Some(Some((current, _))) = self.slots.get_mut(slot) {
            *current = position;
        }
    }

    fn remove(&mut self, slot: usize) {
        if let Some(entry) = self.slots.get_mut(slot) {
            if entry.take().is_some() {
                self.free.push(slot);
            }
        }
    }

    /// How many records may be committed after `committed` without overrunning a window;
    /// `None` if no reader has a window.
    fn space(&self, committed: u64) -> Option<u64> {
        self.slots
            .iter()
            .flatten()
            .map(|(position, window)| position.saturating_add(*window).saturating_sub(committed))
            .min()
    }
}

/// A journal: the shared core plus its storage strategy, which the append lock serializes.
pub(crate) struct JournalCore {
    shared: Arc<CoreShared>,
    storage: tokio::sync::Mutex<Storage>,
    /// Told of every wait for a slow reader; `None` for a journal opened without an observer.
    backpressure: Option<Arc<dyn BackpressureObserver>>,
}

impl JournalCore {
    /// A journal whose first `committed` records are already stored (and not cached).
    pub(crate) fn new(
        id: JournalId,
        storage: Storage,
        committed: u64,
        cache_capacity: Option<usize>,
        disk: Option<Arc<DiskRecords>>,
    ) -> Self {
        let cache = RecordCache {
            base: committed,
            records: VecDeque::new(),
            capacity: cache_capacity,
        };
        let shared = CoreShared {
            id,
            state: Mutex::new(CoreState {
                cache,
                readers: WindowRegistry::default(),
                writer_waiting: false,
            }),
            committed: AtomicU64::new(committed),
            closing: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            records_added: Notify::new(),
            reader_progress: Notify::new(),
            disk,
        };
        Self {
            shared: Arc::new(shared),
            storage: tokio::sync::Mutex::new(storage),
            backpressure: None,
        }
    }

    /// The same journal, telling `observer` (if any) of every wait of its appends for a slow
    /// reader.
    pub(crate) fn with_backpressure_observer(
        mut self,
        observer: Option<Arc<dyn BackpressureObserver>>,
    ) -> Self {
        self.backpressure = observer;
        self
    }

    pub(crate) fn id(&self) -> &JournalId {
        &self.shared.id
    }

    pub(crate) fn committed(&self) -> u64 {
        self.shared.committed()
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// Appends `events`, in chunks that respect every reader's window; `forwards` says which
    /// carry content already stored in another journal (see [`Journal::append_forwarding`]).
    ///
    /// [`Journal::append_forwarding`]: obzenflow_core::Journal::append_forwarding
    pub(crate) async fn append(
        &self,
        events: Vec<ChainEvent>,
        forwards: Forwards<'_>,
    ) -> Result<SeqRange, JournalError> {
        let mut storage = self.storage.lock().await;
        if self.shared.closing.load(Ordering::Acquire) {
            return Err(self.closed_error());
        }
        storage.check_usable()?;
        let start = self.shared.committed();
        // One allocation for the batch's records, shared by the cache and every reader.
        let mut rest = Record::batch(events);
        let mut written = 0;
        while !rest.is_empty() {
            let space = self.wait_for_space(rest.len()).await?;
            let chunk = if space >= rest.len() {
                std::mem::take(&mut rest)
            } else {
                let tail = rest.split_off(space);
                std::mem::replace(&mut rest, tail)
            };
            let chunk_forwards = Forwards {
                journals: forwards.journals,
                records: forwards
                    .records
                    .get(written..written + chunk.len())
                    .unwrap_or_default(),
            };
            written += chunk.len();
            storage.write(self.shared.committed(), &chunk, chunk_forwards)?;
            let committed = self.shared.publish(chunk);
            storage.after_commit(committed).await?;
        }
        let end = self.shared.committed();
        tracing::trace!(journal = %self.shared.id, start, end, "batch committed");
        Ok(SeqRange { start, end })
    }

    /// Waits until at least one record fits in every window; returns how many of `wanted` fit.
    /// A wait is timed (only when it happens) and reported to the journal's observer.
    async fn wait_for_space(&self, wanted: usize) -> Result<usize, JournalError> {
        let mut waited = BackpressureWait::new(self.backpressure.as_deref());
        loop {
            {
                let mut state = self.shared.lock();
                if self.shared.closing.load(Ordering::Acquire) {
                    return Err(self.closed_error());
                }
                match state.readers.space(state.cache.end()) {
                    None => return Ok(wanted),
                    Some(0) => state.writer_waiting = true,
                    Some(space) => {
                        return Ok(usize::try_from(space).unwrap_or(usize::MAX).min(wanted))
                    }
                }
            }
            waited.begin();
            self.shared.reader_progress.notified().await;
        }
    }

    /// Opens a reader at `from`, registering its window.
    pub(crate) fn reader(
        &self,
        from: u64,
        window: Option<NonZeroU64>,
    ) -> Result<Box<dyn JournalReader>, JournalError> {
        let mut state = self.shared.lock();
        let committed = state.cache.end();
        if from > committed {
            return Err(JournalError::OutOfRange {
                journal: self.shared.id.clone(),
                requested: from,
                committed,
            });
        }
        if from < state.cache.base && self.shared.disk.is_none() {
            return Err(self.shared.evicted(from, state.cache.base));
        }
        let slot = window.map(|window| state.readers.register(from, window.get()));
        if slot.is_none() {
            state.readers.unwindowed += 1;
        }
        drop(state);
        Ok(Box::new(CoreReader::new(
            Arc::clone(&self.shared),
            from,
            slot,
        )))
    }

    /// Refuses further appends, waits for an append in flight, closes the storage and wakes
    /// every reader. Closing twice is a no-op.
    pub(crate) async fn close(&self) -> Result<(), JournalError> {
        self.shared.closing.store(true, Ordering::Release);
        self.shared.wake_writer();
        let mut storage = self.storage.lock().await;
        let result = match self.shared.is_closed() {
            true => Ok(()),
            false => storage.close().await,
        };
        self.shared.closed.store(true, Ordering::Release);
        self.shared.records_added.notify_waiters();
        tracing::debug!(
            journal = %self.shared.id,
            committed = self.shared.committed(),
            "journal closed"
        );
        result
    }

    fn closed_error(&self) -> JournalError {
        JournalError::Closed {
            journal: self.shared.id.clone(),
        }
    }
}
