//! One reader's cursor over a journal: reads from the record cache, falls back to the segment
//! files for records that already left it, and waits for commits without polling.

use std::sync::Arc;

use obzenflow_core::{JournalError, JournalId, JournalReader, Record};

use super::core::CoreShared;
use super::disk_read::DiskCursor;

/// The reader every journal hands out.
pub(crate) struct CoreReader {
    shared: Arc<CoreShared>,
    position: u64,
    /// The reader's slot in the window registry, if it holds the writer back.
    slot: Option<usize>,
    /// Where the last read from the segment files stopped, to continue without seeking.
    disk_cursor: Option<DiskCursor>,
}

impl CoreReader {
    pub(crate) fn new(shared: Arc<CoreShared>, position: u64, slot: Option<usize>) -> Self {
        Self {
            shared,
            position,
            slot,
            disk_cursor: None,
        }
    }

    /// Reads from the cache; `Err(cache_base)` if `position` is older than the cache.
    fn read_cached(&mut self, max: usize, out: &mut Vec<Record>) -> Result<usize, u64> {
        let mut state = self.shared.lock();
        if self.position < state.cache.base {
            return Err(state.cache.base);
        }
        let count = state.cache.copy_into(self.position, max, out);
        self.position += count as u64;
        let wake = match self.slot {
            Some(slot) if count > 0 => self.shared.advance_reader(&mut state, slot, self.position),
            _ => false,
        };
        drop(state);
        if wake {
            self.shared.wake_writer();
        }
        Ok(count)
    }

    fn read_from_disk(
        &mut self,
        limit: u64,
        max: usize,
        out: &mut Vec<Record>,
    ) -> Result<usize, JournalError> {
        let Some(disk) = self.shared.disk.as_ref() else {
            // A bounded memory journal dropped these records for good.
            return Err(self.shared.evicted(self.position, limit));
        };
        let count = disk.read(&mut self.disk_cursor, self.position, limit, max, out)?;
        self.position += count as u64;
        if let Some(slot) = self.slot.filter(|_| count > 0) {
            let wake = {
                let mut state = self.shared.lock();
                self.shared.advance_reader(&mut state, slot, self.position)
            };
            if wake {
                self.shared.wake_writer();
            }
        }
        Ok(count)
    }
}

#[async_trait::async_trait]
impl JournalReader for CoreReader {
    fn journal_id(&self) -> &JournalId {
        &self.shared.id
    }

    fn position(&self) -> u64 {
        self.position
    }

    fn read(&mut self, max: usize, out: &mut Vec<Record>) -> Result<usize, JournalError> {
        if max == 0 || self.position >= self.shared.committed() {
            return Ok(0);
        }
        match self.read_cached(max, out) {
            Ok(count) => Ok(count),
            // The records between here and the cache are on disk; read at most up to the cache
            // so the next call goes back to the cheap path as soon as it can.
            Err(cache_base) => self.read_from_disk(cache_base, max, out),
        }
    }

    /// Cancel safety: cancel safe; nothing is consumed until [`JournalReader::read`].
    async fn wait(&self) -> Result<(), JournalError> {
        loop {
            let notified = self.shared.records_added.notified();
            let mut notified = std::pin::pin!(notified);
            // Register for the wake-up before checking, so a commit between the check and the
            // await is not missed.
            notified.as_mut().enable();
            if self.shared.committed() > self.position {
                return Ok(());
            }
            if self.shared.is_closed() {
                // `closed` is set after the last commit, so this re-check is final.
                if self.shared.committed() > self.position {
                    return Ok(());
                }
                return Err(JournalError::Closed {
                    journal: self.shared.id.clone(),
                });
            }
            notified.await;
        }
    }
}

impl Drop for CoreReader {
    fn drop(&mut self) {
        match self.slot.take() {
            Some(slot) => self.shared.unregister_reader(slot),
            None => self.shared.unregister_unwindowed(),
        }
    }
}
